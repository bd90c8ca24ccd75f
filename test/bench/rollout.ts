// `rollout.staged` and `rollout.allAtOnce`: a bad configuration version (its OS policy fails on every VM that
// applies it) published to a fleet of 40 zones, by the default plan (shared/osquery/rollout.json) and all at
// once, on the simulator and the emulators, on a simulated clock: every 15 minutes (the audit schedule) the
// agents check in and an audit run closes, the controller deciding at its close. Exposure counts the hosts
// whose OS Config report ever named the bad version (they applied it); the time to halt is simulated.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ROLLOUT_RECORDS = ['rollout.staged', 'rollout.allAtOnce', 'rollout.agentUpgrade'] as const;

/** rollout.agentUpgrade: an osquery release whose osqueryd crashes at start, through the default plan. */
const CRASHING_RELEASE = '5.24.0';

export interface RolloutRecord {
  name: (typeof ROLLOUT_RECORDS)[number];
  hosts: number;
  /** Hosts that ever ran the bad version. */
  exposedHosts: number;
  exposedShare: number;
  /** The plan's first stage (the canary ring) as a share of the hosts: the target for exposedShare. */
  canaryShare: number;
  halted: boolean;
  /** Simulated milliseconds from publish to the halt (null: never halted). */
  haltAfterMs: number | null;
  /** Simulated minutes watched after publish, and the zones that ever had the bad version. */
  watchedMinutes: number;
  exposedZones: number;
  zones: number;
}

const PROJECT = 'bench-rollout';
const TICK_MS = 15 * 60_000;
const TICKS = 12;

const DEFAULT_BUNDLE_DIR = path.resolve(import.meta.dirname, '../../shared/osquery/bundle');

/**
 * The bundle with one query's interval changed: another version, made bad on the simulator; or (agentUpgrade)
 * the bundle as it is but for the osquery release it pins.
 */
function badBundle(mode: Mode): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  if (mode === 'agentUpgrade') {
    writeFileSync(path.join(dir, 'osquery.version'), `${CRASHING_RELEASE}\n`);
    return dir;
  }
  const packPath = path.join(dir, 'packs/users.conf');
  const pack = JSON.parse(readFileSync(packPath, 'utf8'));
  pack.queries.sudoers.interval = 4321;
  writeFileSync(packPath, JSON.stringify(pack, null, 2));
  return dir;
}

type Mode = 'staged' | 'allAtOnce' | 'agentUpgrade';

export async function measureRollout(options: {
  control: (method: string, path: string, body?: unknown) => Promise<unknown>;
  mode: Mode;
  vms: number;
  zones: number;
  log?: (line: string) => void;
}): Promise<RolloutRecord> {
  const { control, mode, zones } = options;
  const say = options.log ?? (() => undefined);
  const { clients } = await import('../../shared/clients.js');
  const { config, resetConfig, renderSettings } = await import('../../shared/config.js');
  // No log path in this benchmark: hosts are judged by their OS Config reports (silence is not the fault here).
  process.env.SILENCE_THRESHOLD_MINUTES = '10080';
  process.env.TARGET_PROJECTS = PROJECT;
  resetConfig();
  const { publish, loadPlan } = await import('../../shared/usecases/publish.js');
  const { runAuditShard } = await import('../../shared/usecases/audit.js');
  const { createRun } = await import('../../shared/adapters/audits.js');
  const { getRollout } = await import('../../shared/adapters/rollouts.js');
  const { loadBundle } = await import('../../shared/osquery/bundle.js');
  const { renderBundle } = await import('../../shared/osquery/render.js');

  // The alert topic a consumer reads (rollout.halted, the hosts' alerts).
  const pubsub = await clients.pubsub();
  if (!(await pubsub.topic(config().ALERT_TOPIC).exists())[0]) await pubsub.topic(config().ALERT_TOPIC).create();
  // A fresh world: this fleet only, nothing published.
  await control('POST', '/reset');
  const res = await fetch(
    `http://${process.env.FIRESTORE_EMULATOR_HOST}/emulator/v1/projects/${process.env.GOOGLE_CLOUD_PROJECT}` +
      '/databases/(default)/documents',
    { method: 'DELETE' },
  );
  if (!res.ok) throw new Error(`clearing Firestore failed: ${res.status}`);
  await control('POST', '/projects', { id: PROJECT, metadata: { 'enable-osconfig': 'TRUE' } });
  const perZone = Math.floor(options.vms / zones);
  for (let z = 0; z < zones; z++)
    await control('POST', '/vms:bulk', {
      project: PROJECT,
      zone: `bench-zone-${z}`,
      namePrefix: `vm-${z}`,
      count: perZone,
      os: 'debian-12',
      as: 'none',
      // One zone is the canary ring.
      labels: z === 0 ? { 'osquery-ring': 'canary' } : {},
    });
  const hosts = perZone * zones;

  const t0 = Date.now() - (TICKS + 4) * TICK_MS;
  let tick = 0;
  const at = () => new Date(t0 + tick * TICK_MS);
  const exposed = new Set<string>();
  const exposedZones = new Set<string>();
  let target = '';
  const runTick = async () => {
    tick += 1;
    await control('POST', '/agents/run', { at: at().toISOString() });
    const runId = `bench-rollout-${mode}-${tick}`;
    await createRun(runId, [PROJECT], at());
    await runAuditShard({ runId, project: PROJECT }, at());
    if (!target) return;
    const onTarget = await clients
      .firestore()
      .collection('hosts')
      .where('configVersion', '==', target)
      .select('zone')
      .get();
    for (const d of onTarget.docs) {
      exposed.add(d.id);
      exposedZones.add(String(d.get('zone')));
    }
  };

  // The baseline, everywhere (the first version has nothing to stage against), judged by two audits.
  await publish({ projects: [PROJECT], now: at() });
  await runTick();
  await runTick();

  const dir = badBundle(mode);
  target = renderBundle(await loadBundle(dir), renderSettings()).configVersion;
  if (mode === 'agentUpgrade') await control('PUT', `/osquery/releases/${CRASHING_RELEASE}`, { crashesAtStart: true });
  else await control('PUT', `/versions/${target}/bad`, { policyFailing: true });
  const plan = await loadPlan();
  const publishedAt = at();
  const report = await publish({
    projects: [PROJECT],
    bundleDir: dir,
    plan,
    allAtOnce: mode === 'allAtOnce',
    now: publishedAt,
    actor: { by: 'bench', reason: 'a bad version' },
  });
  const first = report.rollout.stages[0];
  say(
    `${mode}: published ${target} (${report.rollout.mode}` +
      `${first ? `, first stage ${first.name}: ${first.zones.length} zone(s)` : ''})`,
  );
  // The plan's canary share of this fleet (the resolution a staged publish makes, from the same listing).
  const { resolveStages } = await import('../../shared/domain/rollout-plan.js');
  const { fleetZones } = await import('../../shared/usecases/assignments.js');
  const stage0 = resolveStages(plan, target, (await fleetZones([PROJECT])).zones).stages[0]!;

  let haltAt: Date | null = null;
  for (let i = 0; i < TICKS; i++) {
    await runTick();
    const staged = (await getRollout(target))?.staged;
    if (staged?.status === 'halted' && !haltAt) {
      haltAt = staged.halt!.at;
      const { stage, gate, value } = staged.halt!;
      const minutes = (haltAt.getTime() - publishedAt.getTime()) / 60_000;
      say(`${mode}: halted at simulated +${minutes} min in stage ${stage} (gate ${gate} ${value}%)`);
      // One more audit after the rollback, so hosts report the baseline again.
      await runTick();
      break;
    }
  }
  return {
    name: mode === 'staged' ? 'rollout.staged' : mode === 'agentUpgrade' ? 'rollout.agentUpgrade' : 'rollout.allAtOnce',
    hosts,
    exposedHosts: exposed.size,
    exposedShare: Math.round((exposed.size / hosts) * 10_000) / 10_000,
    canaryShare: Math.round((stage0.hosts / hosts) * 10_000) / 10_000,
    halted: haltAt !== null,
    haltAfterMs: haltAt ? haltAt.getTime() - publishedAt.getTime() : null,
    watchedMinutes: ((tick - 2) * TICK_MS) / 60_000,
    exposedZones: exposedZones.size,
    zones,
  };
}
