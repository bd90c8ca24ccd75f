// Progressive rollout on the local stack: publish starts a staged rollout, the controller runs at the close
// of each audit run (the simulator's agents and osqueryd, the Firestore and Pub/Sub emulators), promotes a
// good version through every stage and halts a bad one in the first stage that observes it, rolling every
// zone back to the baseline. The clock is simulated: audits, agents and log lines run at tick times that
// lie in the past (log lines from the future are not trusted), ten minutes apart.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { type Stack, stackSuite } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { clients } from '../shared/clients.js';
import { config } from '../shared/config.js';
import { publish } from '../shared/usecases/publish.js';
import { runAuditShard } from '../shared/usecases/audit.js';
import { controlRollout, runCommand } from '../shared/usecases/rollout.js';
import { handleIncident } from '../shared/usecases/incidents.js';
import { createRun } from '../shared/adapters/audits.js';
import { getRollout, readCurrent } from '../shared/adapters/rollouts.js';
import { getHost } from '../shared/adapters/hosts.js';
import { DEFAULT_BUNDLE_DIR } from '../shared/osquery/bundle.js';
import { configVersionOfPolicy } from '../shared/domain/policy.js';
import { parsePlan, PlanInvalid, type RolloutPlan } from '../shared/domain/rollout-plan.js';
import { windowOf } from '../shared/domain/telemetry.js';
import { runningVersion, shipsLogs } from '../infra/local/simulator/logs.js';
import type { SimAssignment } from '../infra/local/simulator/world.js';

const P = 'roll-prod';
const MIN = 60_000;
const STEP = 10 * MIN;
/** Ten zones, two VMs each; the first is the canary ring. */
const ZONES = [
  'us-central1-a',
  'us-central1-b',
  'us-central1-c',
  'us-central1-f',
  'us-east1-b',
  'us-east1-c',
  'us-east1-d',
  'europe-west1-b',
  'europe-west1-c',
  'europe-west1-d',
];
const CANARY = `${P}/${ZONES[0]}`;

const PLAN: RolloutPlan = parsePlan(
  JSON.stringify({
    stages: [
      { name: 'canary', select: { label: 'osquery-ring=canary' }, bakeMinutes: 30 },
      { name: '30%', select: { percent: 30 }, bakeMinutes: 30 },
      { name: '60%', select: { percent: 60 }, bakeMinutes: 30 },
      { name: '100%', select: { percent: 100 }, bakeMinutes: 30 },
    ],
    gates: {
      noncompliant: { maxPercent: 5 },
      silent: { maxPercent: 5 },
      incidents: { maxPercent: 5 },
      osquerydCpu: { cpuPercent: 25, maxPercent: 5 },
      osquerydMemory: { rssMiB: 512, maxPercent: 5 },
      denylistedQueries: { max: 0 },
    },
    observe: { minPercent: 50, minHosts: 1 },
  }),
  'test plan',
);

const t = stackSuite(
  'progressive rollout',
  {
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'osquery-config-test',
    LOG_TOPIC: 'osquery-logs',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    SILENCE_THRESHOLD_MINUTES: '15',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '0',
  },
  async (stack) => {
    await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
    for (const [i, zone] of ZONES.entries())
      for (const n of [1, 2])
        stack.sim.world.addVm({
          project: P,
          zone,
          name: `vm-${i}-${n}`,
          os: 'debian-12',
          labels: i === 0 ? { 'osquery-ring': 'canary' } : {},
        });
  },
);

/** A copy of the bundle with one query's interval changed: another configuration version. */
function bundleVariant(interval: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  const packPath = path.join(dir, 'packs/users.conf');
  const pack = JSON.parse(readFileSync(packPath, 'utf8'));
  pack.queries.sudoers.interval = interval;
  writeFileSync(packPath, JSON.stringify(pack, null, 2));
  return dir;
}

const versionOf = (a: SimAssignment) => configVersionOfPolicy((a.body.osPolicies as Array<{ id: string }>)[0]!.id);
const zoneVersions = (stack: Stack) =>
  new Map([...stack.sim.world.assignments.values()].map((a) => [`${a.project}/${a.zone}`, versionOf(a)]));

/** A simulated timeline: every tick runs the agents, one audit run (the controller at its close) and a log round. */
class Timeline {
  tick = 0;
  /** Zones that ever had the target's assignment, and at which tick. */
  exposed = new Map<string, number>();
  readonly t0 = Date.now() - 8 * 60 * MIN;
  constructor(
    readonly stack: Stack,
    readonly target: () => string,
  ) {}

  at(tick = this.tick) {
    return new Date(this.t0 + tick * STEP);
  }

  noteExposure() {
    for (const [zone, version] of zoneVersions(this.stack))
      if (version === this.target() && !this.exposed.has(zone)) this.exposed.set(zone, this.tick);
  }

  /** Agents check in, the audit run (and the controller at its close), then one round of logs. */
  async run(between: (at: Date) => Promise<void> = async () => undefined) {
    this.tick += 1;
    const at = this.at();
    this.noteExposure();
    await this.stack.control('POST', '/agents/run', { at: at.toISOString() });
    await between(at);
    const runId = `tick-${this.t0}-${this.tick}`;
    await createRun(runId, [P], at);
    await runAuditShard({ runId, project: P }, at);
    this.noteExposure();
    await this.shipLogs(at);
  }

  async shipLogs(at: Date) {
    const world = this.stack.sim.world;
    const shipping = [...world.vms.values()].filter(
      (vm) => shipsLogs(vm) && !world.badVersions.get(runningVersion(vm) ?? '')?.logsStopped,
    );
    await this.stack.control('POST', '/logs/ship', { at: at.toISOString() });
    const second = Math.floor(at.getTime() / 1000) * 1000;
    for (const vm of shipping)
      for (let i = 0; ; i++) {
        const host = await getHost(vm.id);
        if (!host || (host.lastLogAt?.getTime() ?? 0) >= second) break;
        if (i > 200) throw new Error(`no heartbeat from ${vm.name} at ${at.toISOString()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
  }
}

async function rejects(fn: () => Promise<unknown>, message: RegExp) {
  try {
    await fn();
  } catch (error) {
    assert.match((error as Error).message, message);
    return;
  }
  assert.unreachable(`expected an error matching ${message}`);
}

async function record(version: string) {
  const r = await getRollout(version);
  if (!r?.staged) throw new Error(`no staged rollout of ${version}`);
  return r.staged;
}

/** The baseline (published first, all at once: nothing before it) and the staged target. */
async function baselineThenTarget(timeline: Timeline) {
  const baseline = await publish({ projects: [P], plan: PLAN, now: timeline.at(0) });
  assert.is(baseline.rollout.mode, 'all-at-once', 'the first version has no baseline: it goes everywhere');
  await timeline.run();
  await timeline.run();
  return baseline.configVersion;
}

async function startTarget(timeline: Timeline, interval: number) {
  const report = await publish({
    projects: [P],
    plan: PLAN,
    bundleDir: bundleVariant(interval),
    now: timeline.at(),
    actor: { by: 'test', reason: 'new queries' },
  });
  return report;
}

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

type BadCase = {
  gate: string;
  /** Make the target bad on the simulator, before its first tick. */
  before?: (stack: Stack, target: string) => Promise<void>;
  /** Between the agents and the audit of each tick: telemetry documents, incidents. */
  during?: (stack: Stack, target: string, at: Date) => Promise<void>;
};

/** Hosts whose VM runs `version` now (by the OS policy osqueryd was restarted for). */
const vmsOn = (stack: Stack, version: string) =>
  [...stack.sim.world.vms.values()].filter((vm) => runningVersion(vm) === version);

async function writeOsqueryd(
  stack: Stack,
  version: string,
  at: Date,
  sample: { cpuPercent: number; rssBytes: number },
) {
  const db = clients.firestore();
  for (const vm of vmsOn(stack, version))
    if (await getHost(vm.id))
      await db
        .collection('hosts')
        .doc(vm.id)
        .update({ osqueryd: { ...sample, at } });
}

const BAD: BadCase[] = [
  {
    gate: 'noncompliant',
    before: (stack, v) => stack.control('PUT', `/versions/${v}/bad`, { policyFailing: true }),
  },
  { gate: 'silent', before: (stack, v) => stack.control('PUT', `/versions/${v}/bad`, { logsStopped: true }) },
  {
    gate: 'incidents',
    during: async (stack, v, at) => {
      for (const vm of vmsOn(stack, v))
        await handleIncident(
          {
            version: '1.2',
            incident: {
              incident_id: `inc-${vm.id}`,
              state: 'open',
              started_at: Math.floor(at.getTime() / 1000),
              resource: { type: 'gce_instance', labels: { instance_id: vm.id, project_id: P, zone: vm.zone } },
              policy_name: 'osqueryd cpu',
              summary: 'CPU above 90% for 5 minutes',
            },
          },
          at,
        );
    },
  },
  {
    gate: 'osquerydCpu',
    during: (stack, v, at) => writeOsqueryd(stack, v, at, { cpuPercent: 85, rssBytes: 60 * 1024 * 1024 }),
  },
  {
    gate: 'osquerydMemory',
    during: (stack, v, at) => writeOsqueryd(stack, v, at, { cpuPercent: 1, rssBytes: 900 * 1024 * 1024 }),
  },
  {
    gate: 'denylistedQueries',
    during: async (stack, v, at) => {
      if (vmsOn(stack, v).length === 0) return;
      await clients
        .firestore()
        .collection('queryStats')
        .doc(`${v}~pack_users_sudoers`)
        .set(
          { configVersion: v, query: 'pack_users_sudoers', windows: { [windowOf(at)]: { denylisted: 2 } } },
          { merge: true },
        );
    },
  },
];

for (const bad of BAD)
  t(
    `a bad version (gate ${bad.gate}) halts in the canary: every zone back on the baseline, one rollout.halted`,
    async ({ stack }) => {
      const alerts = await subscribe(config().ALERT_TOPIC, `rollout-${bad.gate.toLowerCase()}-${Date.now()}`);
      let target = '';
      const timeline = new Timeline(stack, () => target);
      const baseline = await baselineThenTarget(timeline);
      await drain(alerts);
      // The version is known before it is published (its content decides it): the simulator is told first.
      const dir = bundleVariant(5400);
      const { renderBundle } = await import('../shared/osquery/render.js');
      const { loadBundle } = await import('../shared/osquery/bundle.js');
      const { renderSettings } = await import('../shared/config.js');
      target = renderBundle(await loadBundle(dir), renderSettings()).configVersion;
      await bad.before?.(stack, target);
      const report = await publish({ projects: [P], plan: PLAN, bundleDir: dir, now: timeline.at() });
      assert.is(report.configVersion, target);

      for (let i = 0; i < 12; i++) {
        await timeline.run((at) => bad.during?.(stack, target, at) ?? Promise.resolve());
        if ((await record(target)).status !== 'running') break;
      }
      const r = await record(target);
      assert.is(r.status, 'halted', `halted (${r.evaluation?.next.reason})`);
      assert.is(r.halt!.stage, 'canary', 'halted in the first stage');
      assert.is(r.halt!.gate, bad.gate);
      assert.ok(r.halt!.value > r.halt!.threshold, `${r.halt!.value} above ${r.halt!.threshold}`);
      if (bad.gate === 'denylistedQueries') assert.equal(r.halt!.queries, ['pack_users_sudoers']);
      else assert.ok(r.halt!.hosts.length > 0 && r.halt!.hosts.every((h) => `${h.project}/${h.zone}` === CANARY));
      assert.equal([...timeline.exposed.keys()], [CANARY], 'no zone outside the canary ever had the target');
      for (const [zone, version] of zoneVersions(stack)) assert.is(version, baseline, `${zone} back on the baseline`);
      const current = await readCurrent();
      assert.is(current.configVersion, baseline);

      // More ticks (and a redelivered one) change nothing and send nothing more.
      await timeline.run();
      await controlRollout(`tick-${timeline.t0}-${timeline.tick}`, timeline.at());
      const messages = (await drain(alerts)).map((m) => m.data as Record<string, unknown>);
      const halted = messages.filter((m) => m.kind === 'rollout.halted');
      assert.is(halted.length, 1, 'exactly one rollout.halted');
      assert.is(halted[0]!.severity, 'critical');
      assert.is(halted[0]!.status, 'firing');
      assert.is(halted[0]!.version, target);
      assert.is(halted[0]!.stage, 'canary');
      assert.is(halted[0]!.gate, bad.gate);
      assert.is(halted[0]!.value, r.halt!.value);
      assert.is(halted[0]!.threshold, r.halt!.threshold);
      assert.is((await record(target)).revision, r.revision, 'nothing decided after the halt');
      // The agents apply the baseline again: the hosts report it.
      await timeline.run();
      for (const vm of stack.sim.world.vms.values()) assert.is(runningVersion(vm), baseline, vm.name);
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
    const { auditProject } = await import('../shared/usecases/audit.js');
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
  'plan validation: an unknown field, an empty stage, a threshold out of range are refused before anything is published',
  async ({ stack }) => {
    const base = JSON.parse(JSON.stringify(PLAN)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
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
    const { loadPlan } = await import('../shared/usecases/publish.js');
    assert.equal(
      (await loadPlan()).stages.map((s) => s.name),
      ['canary', '10%', '50%', '100%'],
    );
  },
);

t.run();
