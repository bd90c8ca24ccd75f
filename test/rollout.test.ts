// Progressive rollout on the local stack: publish starts a staged rollout, the controller runs at the close
// of each audit run (the simulator's agents and osqueryd, the Firestore and Pub/Sub emulators) and promotes a
// good version through every stage; a zone new mid-rollout, redelivered ticks and concurrent controllers,
// operator commands, plan validation. A bad version per gate: rollout-gates.test.ts. The clock is simulated
// (test/helpers/rollout.ts).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { createVm } from './helpers/fleet.js';
import { loadPlan, publish } from '../shared/usecases/publish.js';
import { auditProject } from '../shared/usecases/audit.js';
import { controlRollout, runCommand } from '../shared/usecases/rollout.js';
import { createRun } from '../shared/adapters/audits.js';
import { readCurrent } from '../shared/adapters/rollouts.js';
import { PlanInvalid } from '../shared/domain/rollout-plan.js';
import {
  CANARY,
  MIN,
  P,
  PLAN,
  Timeline,
  baselineThenTarget,
  bundleVariant,
  record,
  rejects,
  rolloutSuite,
  startTarget,
  zoneVersions,
} from './helpers/rollout.js';

const t = rolloutSuite('progressive rollout');

t(
  'a good version walks every stage in order, each after its bake time and gates, and becomes current',
  async ({ stack }) => {
    let target = '';
    const timeline = new Timeline(stack, () => target);
    const baseline = await baselineThenTarget(timeline);
    const report = await startTarget(timeline, 7200);
    target = report.configVersion;
    assert.is(report.rollout.mode, 'staged');
    assert.is(report.rollout.baseline, baseline);
    assert.equal(
      report.rollout.stages.map((s) => [s.name, s.zones.length]),
      [
        ['canary', 1],
        ['30%', 2],
        ['60%', 3],
        ['100%', 4],
      ],
    );
    assert.equal(report.rollout.stages[0]!.zones, [CANARY]);
    assert.equal(
      [...zoneVersions(stack)].filter(([, v]) => v === target).map(([z]) => z),
      [CANARY],
      'only the canary zone got the target',
    );
    assert.is((await readCurrent()).configVersion, baseline, 'the baseline stays current');

    const stageAtTick: Array<{ tick: number; stage: number; status: string }> = [];
    for (let i = 0; i < 30; i++) {
      await timeline.run();
      const r = await record(target);
      stageAtTick.push({ tick: timeline.tick, stage: r.stage, status: r.status });
      // No zone outside the stages reached ever has the target.
      const reached = new Set(r.stages.slice(0, r.stage + 1).flatMap((s) => s.zones));
      for (const [zone, version] of zoneVersions(stack))
        if (r.status !== 'completed') assert.ok(version !== target || reached.has(zone), `${zone} outside the stages`);
      if (r.status === 'completed') break;
    }
    const r = await record(target);
    assert.is(r.status, 'completed');
    const promotions = r.history.filter((h) => h.action === 'promoted' || h.action === 'completed');
    assert.equal(
      promotions.map((h) => h.stage),
      ['30%', '60%', '100%', '100%'],
      'each stage in order, then completed',
    );
    // Each stage was left only after its bake time.
    for (const [i, s] of r.stages.entries()) {
      const left = promotions[i]!.at.getTime();
      assert.ok(left - s.startedAt!.getTime() >= s.bakeMinutes * MIN, `${s.name} baked ${s.bakeMinutes} min`);
    }
    assert.ok(
      r.evaluation!.gates.every((g) => g.passed),
      'every gate passed at the last decision',
    );
    assert.is((await readCurrent()).configVersion, target, 'the target became current');
    assert.is((await readCurrent()).rollout, null);
    for (const [zone, version] of zoneVersions(stack)) assert.is(version, target, zone);
    // The stages' zones got the target stage after stage.
    const firstExposure = (stage: number) => Math.min(...r.stages[stage]!.zones.map((z) => timeline.exposed.get(z)!));
    for (let i = 1; i < r.stages.length; i++) assert.ok(firstExposure(i) > firstExposure(i - 1));
  },
);

t(
  'a zone created during the rollout gets the baseline, then the target only when a stage is promoted',
  async ({ stack }) => {
    let target = '';
    const timeline = new Timeline(stack, () => target);
    const baseline = await baselineThenTarget(timeline);
    target = (await startTarget(timeline, 3600)).configVersion;
    await timeline.run();
    // A VM in a zone that held none: vmLifecycle creates the zone's assignment.
    await createVm(stack, { project: P, zone: 'asia-east1-a', name: 'late', os: 'debian-12' });
    const created = zoneVersions(stack).get(`${P}/asia-east1-a`);
    assert.is(created, baseline, 'the new zone gets the baseline');
    for (let i = 0; i < 30 && (await record(target)).status === 'running'; i++) {
      await timeline.run();
      if ((await record(target)).status === 'running')
        assert.is(zoneVersions(stack).get(`${P}/asia-east1-a`), baseline, 'outside every stage: the baseline');
    }
    assert.is((await record(target)).status, 'completed');
    // Completed: the target is current; the next audit's heal stage brings the zone outside the stages to it.
    await timeline.run();
    assert.is(zoneVersions(stack).get(`${P}/asia-east1-a`), target, 'it gets the target once the rollout completes');
  },
);

t('a redelivered tick and two controllers at once promote once', async ({ stack }) => {
  let target = '';
  const timeline = new Timeline(stack, () => target);
  await baselineThenTarget(timeline);
  target = (await startTarget(timeline, 1800)).configVersion;
  // Run ticks until the controller would promote; the promoting tick is run without its controller first.
  for (let i = 0; i < 10; i++) {
    await timeline.run();
    if ((await record(target)).stage > 0) break;
  }
  const promoted = await record(target);
  assert.is(promoted.stage, 1, 'promoted to the second stage');
  const runId = `tick-${timeline.t0}-${timeline.tick}`;
  // The same run again (a redelivered shard): the run was already evaluated.
  const again = await controlRollout(runId, timeline.at());
  assert.is(again.action, 'duplicate');
  assert.is((await record(target)).revision, promoted.revision);

  // Two controllers at once on a rollout ready to promote: exactly one decision is written.
  for (let i = 0; i < 10; i++) {
    timeline.tick += 1;
    const at = timeline.at();
    await stack.control('POST', '/agents/run', { at: at.toISOString() });
    const before = await record(target);
    // The audit run without its controller: the shard's audit only (a run of one project closes here).
    const runId2 = `tick-${timeline.t0}-${timeline.tick}`;
    await createRun(runId2, [P], at);
    await auditProject(P, { now: at, runId: runId2 }); // writes the project's snapshot for the gates
    await timeline.shipLogs(at);
    const outcomes = await Promise.all([
      controlRollout(runId2, at),
      controlRollout(runId2, at),
      controlRollout(`${runId2}-x`, at),
    ]);
    const after = await record(target);
    const decided = outcomes.filter((o) => o.action === 'promote');
    if (after.stage > before.stage) {
      assert.is(decided.length, 1, `one controller promoted: ${outcomes.map((o) => o.action).join(', ')}`);
      assert.is(after.stage, before.stage + 1, 'promoted by one stage');
      assert.is(after.revision, before.revision + 1, 'one decision written');
      assert.is(after.history.filter((h) => h.action === 'promoted').length, before.stage + 1);
      return;
    }
    assert.is(decided.length, 0);
  }
  assert.unreachable('the rollout was never ready to promote');
});

t('operator commands: pause, promote, rollback with who and why', async ({ stack }) => {
  let target = '';
  const timeline = new Timeline(stack, () => target);
  const baseline = await baselineThenTarget(timeline);
  target = (await startTarget(timeline, 2400)).configVersion;
  const who = { by: 'alice', reason: 'waiting for the change window' };
  await rejects(() => runCommand('pause', { by: 'alice', reason: '' }), /--reason/);
  const paused = await runCommand('pause', who, { now: timeline.at() });
  assert.is(paused.status, 'paused');
  await timeline.run();
  assert.is((await record(target)).stage, 0, 'a paused rollout is not promoted');
  const promoted = await runCommand('promote', { by: 'bob', reason: 'canary looked fine' }, { now: timeline.at() });
  assert.is(promoted.stage, '30%');
  for (const zone of (await record(target)).stages[1]!.zones) assert.is(zoneVersions(stack).get(zone), target, zone);
  const back = await runCommand('rollback', { by: 'carol', reason: 'customer report' }, { now: timeline.at() });
  assert.is(back.status, 'rolled-back');
  for (const [zone, version] of zoneVersions(stack)) assert.is(version, baseline, zone);
  const r = await record(target);
  assert.equal(
    r.history.slice(1).map((h) => [h.action, h.by, h.reason]),
    [
      ['paused', 'alice', 'waiting for the change window'],
      ['promoted', 'bob', 'canary looked fine'],
      ['rolled-back', 'carol', 'customer report'],
    ],
  );
  await rejects(
    () => publish({ projects: [P], plan: PLAN, bundleDir: bundleVariant(2400) }),
    /only an operator resumes it/,
  );
});

t(
  'plan validation: an unknown field, an empty stage, a threshold out of range ' +
    'are refused before anything is published',
  async ({ stack }) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const base = JSON.parse(JSON.stringify(PLAN)) as Record<string, any>;
    const cases: Array<[string, (p: typeof base) => void, RegExp]> = [
      ['unknown field', (p) => (p.stages[1].bakeMinute = 5), /stages\[1\] \(30%\): Unrecognized key.*"bakeMinute"/],
      [
        'empty stage',
        (p) => (p.stages[0].select = {}),
        /stages\[0\] \(canary\)\.select: select exactly one of zones, projects, label or percent/,
      ],
      ['empty zone list', (p) => (p.stages[0].select = { zones: [] }), /zones is empty/],
      [
        'threshold out of range',
        (p) => (p.gates.silent.maxPercent = 150),
        /gates\.silent\.maxPercent: maxPercent: a percentage from 0 to 100/,
      ],
      ['no stages', (p) => (p.stages = []), /stages: stages is empty/],
    ];
    for (const [what, change, message] of cases) {
      const plan = JSON.parse(JSON.stringify(base));
      change(plan);
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'plan-')), 'rollout.json');
      writeFileSync(file, JSON.stringify(plan));
      try {
        await publish({ projects: [P], planFile: file });
        assert.unreachable(what);
      } catch (error) {
        assert.instance(error, PlanInvalid, what);
        assert.match((error as Error).message, message, what);
      }
    }
    assert.is(stack.sim.world.objects.size, 0, 'nothing uploaded');
    assert.is(stack.sim.world.assignments.size, 0, 'no assignment');
    assert.is((await readCurrent()).configVersion, null, 'nothing recorded');
    // The plan beside the bundle is valid.
    assert.equal(
      (await loadPlan()).stages.map((s) => s.name),
      ['canary', '10%', '50%', '100%'],
    );
  },
);
t.run();
