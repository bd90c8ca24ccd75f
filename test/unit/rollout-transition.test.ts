// The rollout state machine, pure (shared/domain/rollout-transition.ts): every change is one transition with
// the records it writes against their revisions, config/current after it, and the effects it owes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePlan, resolveStages, type FleetZone } from '../../shared/domain/rollout-plan.js';
import {
  CONTROLLER,
  RolloutRefused,
  evaluateRollout,
  newRollout,
  type Evaluation,
  type StagedRollout,
} from '../../shared/domain/rollout.js';
import {
  decisionTransition,
  holdTransition,
  publishTransition,
  rollbackToTransition,
  type ConfigurationState,
  type PublishInput,
} from '../../shared/domain/rollout-transition.js';
import { planText } from '../helpers/rollout-plan.js';

const t = suite('rollout state machine (pure)');
const MIN = 60_000;
const T0 = new Date('2026-11-28T08:00:00Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * MIN);
const bob = { by: 'bob', reason: 'checked' };

const PLAN = parsePlan(
  planText([
    { name: 'canary', select: { label: 'osquery-ring=canary' }, bakeMinutes: 30 },
    { name: '100%', select: { percent: 100 }, bakeMinutes: 30 },
  ]),
  'plan',
);
const fleet: FleetZone[] = ['b', 'c', 'd'].map((z, i) => ({
  project: 'p',
  zone: `us-east1-${z}`,
  hosts: 4,
  labels: new Set(i === 0 ? ['osquery-ring=canary'] : []),
}));

function running(): StagedRollout {
  const { stages, skipped } = resolveStages(PLAN, 'v2', fleet);
  return newRollout({ version: 'v2', baseline: 'v1', stages, skipped, observe: PLAN.observe, actor: bob, now: T0 });
}
const under = (r: StagedRollout): ConfigurationState => ({
  current: { configVersion: 'v1', rollout: r.configVersion },
  rollout: r,
  currentRollout: null,
});
function halted(): StagedRollout {
  const r = running();
  const e = evaluateRollout(
    r,
    {
      snapshots: { p: { at: at(5).toISOString(), zones: {}, zoneVersions: {} } },
      noncompliant: [{ instanceId: '1', name: 'h1', project: 'p', zone: 'us-east1-b', at: at(2) }],
      silent: [],
      incidents: [],
      cpu: [],
      memory: [],
      denylisted: [],
      capped: [],
    },
    at(5),
  );
  const gate = e.gates.find((g) => !g.passed)!;
  return decisionTransition(under(r), { kind: 'halt', gate, dedupKey: 'rollout.halted:v2:r2' }, CONTROLLER, at(5), e)
    .writes[0]!.rollout;
}
const publishing = (input: Partial<PublishInput>): PublishInput => ({
  version: 'v2',
  previous: null,
  republished: false,
  allAtOnce: false,
  stages: () => ({ ...resolveStages(PLAN, input.version ?? 'v2', fleet), observe: PLAN.observe }),
  actor: bob,
  now: at(60),
  ...input,
});

t('a halt opens its episode; leaving it by resume or rollback ends it; the zones it moves come back', () => {
  const r = halted();
  assert.is(r.status, 'halted');
  const resume = decisionTransition(under(r), { kind: 'resume' }, bob, at(20));
  assert.equal(resume.closes, ['rollout.halted:v2:r2']);
  assert.equal(resume.zones, { kind: 'moved', keys: ['p/us-east1-b'] }, 'the canary gets the target again');
  assert.equal(
    resume.writes.map((w) => w.expectedRevision),
    [r.revision],
  );
  const rollback = decisionTransition(under(r), { kind: 'rollback' }, bob, at(20));
  assert.equal(rollback.closes, ['rollout.halted:v2:r2']);
  assert.equal(rollback.zones, { kind: 'moved', keys: [] }, 'halted: every zone is on the baseline already');
  const start = decisionTransition(under(running()), { kind: 'pause' }, bob, at(1));
  assert.equal([start.opens, start.closes], [[], []]);
  assert.throws(
    () => decisionTransition({ ...under(r), rollout: null }, { kind: 'promote' }, bob, at(20)),
    (e: unknown) => e instanceof RolloutRefused && /no rollout under way/.test((e as Error).message),
  );
});

t('publish: the refusals live in one place, before anything is uploaded', () => {
  assert.throws(
    () => publishTransition(under(halted()), publishing({})),
    /was halted at stage canary: only an operator resumes it/,
  );
  assert.throws(
    () => publishTransition(under(running()), publishing({ version: 'v3' })),
    /the rollout of v2 is running at stage canary: let it complete, or roll it back/,
  );
});

t('publish --all-at-once of the version under way completes it; of a halted one, ends the halt too', () => {
  for (const r of [running(), halted()]) {
    const plan = publishTransition(under(r), publishing({ allAtOnce: true }));
    assert.is(plan.rollout.status, 'completed');
    assert.is(plan.rollout.history.at(-1)!.action, 'published-all-at-once');
    assert.equal(plan.transition.current, { configVersion: 'v2', rollout: null });
    assert.equal(plan.transition.zones, { kind: 'fleet' });
    assert.equal(plan.transition.closes, r.status === 'halted' ? ['rollout.halted:v2:r2'] : []);
  }
});

t('publish of another version over a halted one supersedes it and ends its halt', () => {
  const plan = publishTransition(under(halted()), publishing({ version: 'v3' }));
  assert.equal(
    plan.transition.writes.map((w) => [w.rollout.configVersion, w.rollout.status, w.expectedRevision]),
    [
      ['v3', 'running', null],
      ['v2', 'superseded', 2],
    ],
  );
  assert.equal(plan.transition.closes, ['rollout.halted:v2:r2']);
  assert.equal(plan.transition.current, { configVersion: 'v1', rollout: 'v3' });
});

t('publish of the current version records nothing, unless its files were uploaded again', () => {
  const current: StagedRollout = { ...running(), status: 'completed' };
  const state: ConfigurationState = {
    current: { configVersion: 'v2', rollout: null },
    rollout: null,
    currentRollout: current,
  };
  const same = publishTransition(state, publishing({}));
  assert.equal([same.recorded, same.transition.writes, same.transition.current], [false, [], null]);
  const repaired = publishTransition(state, publishing({ republished: true }));
  assert.is(repaired.recorded, true);
  assert.equal(
    repaired.transition.writes.map((w) => [w.rollout.history.at(-1)!.action, w.published, w.expectedRevision]),
    [['republished', true, current.revision]],
  );
  assert.equal(repaired.transition.zones, { kind: 'fleet' }, 'every zone is brought to the new generations');
});

t('rollback --to: the rollout under way records it, the version becomes current, every zone goes to it', () => {
  const tr = rollbackToTransition(under(running()), 'v1', null, bob, at(10));
  assert.equal(
    tr.writes.map((w) => [w.rollout.configVersion, w.rollout.status]),
    [['v2', 'rolled-back']],
  );
  assert.equal(tr.current, { configVersion: 'v1', rollout: null });
  assert.equal(tr.zones, { kind: 'fleet' });
});

t('a hold opens rollout.stalled once, keeps it while it lasts, ends it on fresh evidence or any decision', () => {
  const r = running();
  const evaluation = (stalled: Evaluation['stalled']): Evaluation => ({
    ...evaluateRollout(
      r,
      {
        snapshots: { p: null },
        noncompliant: [],
        silent: [],
        incidents: [],
        cpu: [],
        memory: [],
        denylisted: [],
        capped: [],
      },
      at(40),
    ),
    stalled,
  });
  const stalled = [{ project: 'p', lastAuditAt: null, reason: 'p: never audited' }];
  const first = holdTransition(under(r), evaluation(stalled), at(40));
  assert.equal(
    first.opens.map((o) => [o.kind, o.dedupKey]),
    [['rollout.stalled', `rollout.stalled:v2:${at(40).getTime()}`]],
  );
  const held = first.rollout;
  const again = holdTransition(under(held), evaluation(stalled), at(50));
  assert.equal([again.opens, again.closes, again.rollout.stall], [[], [], held.stall]);
  const fresh = holdTransition(under(held), evaluation([]), at(60));
  assert.equal([fresh.closes, fresh.rollout.stall], [[held.stall!.dedupKey], null]);
  const paused = decisionTransition(under(held), { kind: 'pause' }, bob, at(60));
  assert.equal([paused.closes, paused.writes[0]!.rollout.stall], [[held.stall!.dedupKey], null]);
});

t.run();
