// The progressive rollout's test fleet and simulated timeline (test/rollout*.test.ts): ten zones of two VMs,
// the first the canary ring; every tick runs the agents, one audit run (the controller at its close) and a
// log round, at tick times that lie in the past (log lines from the future are not trusted), ten minutes apart.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { type Stack, stackSuite } from './stack.js';
import { planText } from './rollout-plan.js';
import { publish } from '../../shared/usecases/publish.js';
import { runAuditShard } from '../../shared/usecases/audit.js';
import { createRun } from '../../shared/adapters/audits.js';
import { getRollout } from '../../shared/adapters/rollouts.js';
import { getHost } from '../../shared/adapters/hosts.js';
import { DEFAULT_BUNDLE_DIR } from '../../shared/osquery/bundle.js';
import { configVersionOfPolicy } from '../../shared/domain/policy.js';
import { parsePlan, type RolloutPlan } from '../../shared/domain/rollout-plan.js';
import { runningVersion, shipsLogs } from '../../infra/local/simulator/logs.js';
import type { SimAssignment } from '../../infra/local/simulator/world.js';

export const P = 'roll-prod';
export const MIN = 60_000;
export const STEP = 10 * MIN;
/** Ten zones, two VMs each; the first is the canary ring. */
export const ZONES = [
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
export const CANARY = `${P}/${ZONES[0]}`;

export const PLAN: RolloutPlan = parsePlan(
  planText([
    { name: 'canary', select: { label: 'osquery-ring=canary' }, bakeMinutes: 30 },
    { name: '30%', select: { percent: 30 }, bakeMinutes: 30 },
    { name: '60%', select: { percent: 60 }, bakeMinutes: 30 },
    { name: '100%', select: { percent: 100 }, bakeMinutes: 30 },
  ]),
  'test plan',
);

export const rolloutSuite = (name: string) =>
  stackSuite(
    name,
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
export function bundleVariant(interval: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  const packPath = path.join(dir, 'packs/users.conf');
  const pack = JSON.parse(readFileSync(packPath, 'utf8'));
  pack.queries.sudoers.interval = interval;
  writeFileSync(packPath, JSON.stringify(pack, null, 2));
  return dir;
}

export const versionOf = (a: SimAssignment) =>
  configVersionOfPolicy((a.body.osPolicies as Array<{ id: string }>)[0]!.id);
export const zoneVersions = (stack: Stack) =>
  new Map([...stack.sim.world.assignments.values()].map((a) => [`${a.project}/${a.zone}`, versionOf(a)]));

/** A simulated timeline: every tick runs the agents, one audit run (the controller at its close) and a log round. */
export class Timeline {
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

export async function rejects(fn: () => Promise<unknown>, message: RegExp) {
  try {
    await fn();
  } catch (error) {
    assert.match((error as Error).message, message);
    return;
  }
  assert.unreachable(`expected an error matching ${message}`);
}

export async function record(version: string) {
  const r = await getRollout(version);
  if (!r?.staged) throw new Error(`no staged rollout of ${version}`);
  return r.staged;
}

/** The baseline (published first, all at once: nothing before it) and the staged target. */
export async function baselineThenTarget(timeline: Timeline) {
  const baseline = await publish({ projects: [P], plan: PLAN, now: timeline.at(0) });
  assert.is(baseline.rollout.mode, 'all-at-once', 'the first version has no baseline: it goes everywhere');
  await timeline.run();
  await timeline.run();
  return baseline.configVersion;
}

export async function startTarget(timeline: Timeline, interval: number) {
  const report = await publish({
    projects: [P],
    plan: PLAN,
    bundleDir: bundleVariant(interval),
    now: timeline.at(),
    actor: { by: 'test', reason: 'new queries' },
  });
  return report;
}
