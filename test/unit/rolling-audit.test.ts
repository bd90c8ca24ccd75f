// The rolling audit's plan, pure: what a tick audits first, and that every project is audited within the
// cycle bound however the priorities fall.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  auditAgeMs,
  auditFresh,
  planRollingTick,
  readsPerProject,
  type RollingCandidate,
} from '../../shared/domain/rolling-audit.js';

const t = suite('rolling audit');
const MIN = 60_000;

const candidate = (project: string, over: Partial<RollingCandidate> = {}): RollingCandidate => ({
  project,
  lastAuditAt: new Date(0),
  zones: 1,
  inRolloutStage: false,
  needsAction: false,
  ...over,
});

t('audit age: one notion (never audited is not fresh)', () => {
  const now = new Date(10 * MIN);
  assert.is(auditAgeMs(new Date(4 * MIN), now), 6 * MIN);
  assert.is(auditAgeMs(new Date(4 * MIN).toISOString(), now), 6 * MIN);
  assert.is(auditAgeMs(null, now), null);
  assert.ok(auditFresh(6 * MIN, 6 * MIN));
  assert.not.ok(auditFresh(6 * MIN + 1, 6 * MIN));
  assert.not.ok(auditFresh(null, 6 * MIN));
});

t('everything fits one tick: a full pass, oldest first', () => {
  const plan = planRollingTick(
    [candidate('b', { lastAuditAt: new Date(5) }), candidate('a', { lastAuditAt: null })],
    6,
  );
  assert.equal(plan, { selected: ['a', 'b'], reads: 6, fullPass: true, cycleTicks: 1 });
});

t('over budget: half to the longest unaudited, half to the rollout stage, then hosts needing action', () => {
  const projects = [
    ...Array.from({ length: 10 }, (_, i) => candidate(`old-${i}`, { lastAuditAt: new Date(i * MIN) })),
    candidate('stage', { lastAuditAt: new Date(100 * MIN), inRolloutStage: true }),
    candidate('silent', { lastAuditAt: new Date(100 * MIN), needsAction: true }),
    candidate('quiet', { lastAuditAt: new Date(100 * MIN) }),
  ];
  const plan = planRollingTick(projects, readsPerProject(1) * 4);
  assert.equal(plan.selected, ['old-0', 'old-1', 'stage', 'silent']);
  assert.is(plan.fullPass, false);
  assert.ok(plan.reads <= 12);
});

t('every project within the cycle bound, whatever asks for attention each tick (simulated ticks)', () => {
  let projects = Array.from({ length: 200 }, (_, i) =>
    candidate(`p-${String(i).padStart(3, '0')}`, { zones: 1 + (i % 4), lastAuditAt: i % 7 ? new Date(i) : null }),
  );
  const readsPerTick = 120;
  const first = planRollingTick(projects, readsPerTick);
  const bound = first.cycleTicks;
  const lastAudited = new Map<string, number>();
  for (let tick = 1; tick <= 3 * bound; tick++) {
    // A third of the fleet always asks for attention: it must not starve the rest.
    projects = projects.map((c, i) => ({ ...c, needsAction: (i + tick) % 3 === 0, inRolloutStage: i < 10 }));
    const plan = planRollingTick(projects, readsPerTick);
    assert.ok(plan.reads <= readsPerTick, `tick ${tick}: ${plan.reads} reads`);
    for (const p of plan.selected) lastAudited.set(p, tick);
    projects = projects.map((c) =>
      plan.selected.includes(c.project) ? { ...c, lastAuditAt: new Date(tick * MIN) } : c,
    );
    if (tick >= bound)
      for (const c of projects) {
        const last = lastAudited.get(c.project);
        assert.ok(last !== undefined && tick - last < bound, `${c.project} unaudited for ${bound} ticks at ${tick}`);
      }
  }
});

t.run();
