// `npm run bench [-- --hosts N] [--only PREFIX[,PREFIX]] [--out FILE]`: each function's cold start, the
// fleet audit at scale (one 10,000-VM project, and 100,000 VMs in 100 projects through the fan-out) and
// logHeartbeat's coalescing, against the simulator and the emulators, beside naive baselines measured in
// the same run. --only runs just the records whose names start with one of the prefixes (coldstart,
// audit, heartbeat, enroll, or a full name such as coldstart.logHeartbeat or audit.fleet100k).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEmulators } from '../../infra/local/emulators.js';
import { startSimulatorProcess, useBenchStack } from './simulator-process.js';
import { FUNCTION_NAMES, functionList, memorySize, type FunctionName } from '../../functions/manifest.js';
import { quietKnownWarnings } from '../../shared/warnings.js';
import { ENROLL_RECORD, ENROLL_SINK_TOPIC, type EnrollLatencyRecord } from './enroll-latency.js';
import { ROLLOUT_RECORDS, type RolloutRecord } from './rollout.js';
import type { TelemetryRecord } from './heartbeat-telemetry.js';
import {
  COST_RECORD,
  costPer1000Vms,
  LOG_VOLUME_RECORD,
  measureLogVolume,
  type CostRecord,
  type LogVolumeRecord,
} from './log-volume.js';
import { FLEET100K_RECORD, type Fleet100kRecord } from './fleet100k.js';
import { SYSLOG_RECORD, type SyslogRecord } from './syslog.js';
import { SILENCE_RECORDS, type BacklogReplayRecord, type SilenceStormRecord } from './silence.js';
import { heartbeatEvent } from './heartbeat-event.js';
import { DRIFT_RECORD, type DriftRecord } from './drift.js';
import { PROJECTS10K_RECORD, type Projects10kRecord } from './projects10k.js';

quietKnownWarnings();
const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '10000' },
    zones: { type: 'string', default: '10' },
    // audit.fleet100k's fleet (smaller ones try the bench out; the record is defined at 100 x 1,000)
    'fleet-projects': { type: 'string', default: '100' },
    'fleet-vms-per-project': { type: 'string', default: '1000' },
    only: { type: 'string' },
    out: { type: 'string' },
    'rollout-vms': { type: 'string', default: '2000' },
    'rollout-zones': { type: 'string', default: '40' },
    // audit.projects10k's fleet (the record is defined at 10,000 x 10; fewer are measured and projected)
    'p10k-projects': { type: 'string', default: '10000' },
    'p10k-vms-per-project': { type: 'string', default: '10' },
  },
});
const ONLY = values.only
  ?.split(',')
  .map((p) => p.trim())
  .filter(Boolean);
const wants = (name: string) => !ONLY || ONLY.some((prefix) => name.startsWith(prefix));
const FLEET_RECORDS = [
  'audit.first',
  'audit.unchanged',
  'audit.naive',
  'heartbeat.coalesced',
  'heartbeat.naive',
  'heartbeat.telemetry',
  LOG_VOLUME_RECORD,
  COST_RECORD,
];
const ENROLL = wants(ENROLL_RECORD);
const ROLLOUTS = ROLLOUT_RECORDS.filter(wants);
const FLEET100K = wants(`${FLEET100K_RECORD}.first`) || wants(`${FLEET100K_RECORD}.unchanged`);
const SYSLOG = wants(SYSLOG_RECORD);
const SILENCE = SILENCE_RECORDS.some(wants);
const DRIFT = wants(DRIFT_RECORD);
const PROJECTS10K = wants(PROJECTS10K_RECORD);
const COLDSTART_RUNS = 3;
/** The audit.* records of the 10,000-VM project: each the median of this many runs, one project each. */
const AUDIT_RUNS = 3;
/** The functions that call Compute Engine (granted compute.*); the others have the 400 ms / 150 MB import target. */
const COMPUTE_USERS: FunctionName[] = functionList()
  .filter((f) => f.permissions.target.some((p) => p.startsWith('compute.')))
  .map((f) => f.name);
if (
  ONLY &&
  !FLEET_RECORDS.some(wants) &&
  !FUNCTION_NAMES.some((f) => wants(`coldstart.${f}`)) &&
  !ENROLL &&
  ROLLOUTS.length === 0 &&
  !FLEET100K &&
  !SYSLOG &&
  !SILENCE &&
  !DRIFT &&
  !PROJECTS10K
) {
  console.error(
    `--only ${values.only}: no record starts with that (records: coldstart.<function>, ` +
      `${[
        ...FLEET_RECORDS,
        ENROLL_RECORD,
        `${FLEET100K_RECORD}.first`,
        `${FLEET100K_RECORD}.unchanged`,
        ...ROLLOUT_RECORDS,
        SYSLOG_RECORD,
        DRIFT_RECORD,
        PROJECTS10K_RECORD,
      ].join(', ')})`,
  );
  process.exit(2);
}
const HOSTS = Number(values.hosts);
const HEARTBEAT_HOSTS = Math.min(5000, HOSTS);
const HEARTBEAT_LINES = 20;
const ZONES = Number(values.zones);
/** One 10,000-VM project per run of the audit.* records (a first audit needs a project never audited). */
const AUDIT_PROJECTS = Array.from({ length: AUDIT_RUNS }, (_, i) => `bench-project-${i + 1}`);
const PROJECT = AUDIT_PROJECTS[0]!;

export interface BenchRecord {
  name: string;
  hosts: number;
  wallMs: number;
  apiCalls: number;
  firestoreWrites: number;
  [extra: string]: unknown;
}

/** One function's cold start: medians over COLDSTART_RUNS fresh processes (test/bench/coldstart.mjs). */
export interface ColdStartRecord {
  name: string;
  runs: number;
  /** Importing dist/functions/index.js, the module every function's instance loads. */
  importMs: number;
  importRssMb: number;
  /** Import plus the Functions Framework's server listening. */
  readyMs: number;
  /** The first event, end to end (it loads what the handler uses). */
  firstEventMs: number;
  /** Peak resident memory of the process, first event included: the figure the memory size is from. */
  peakRssMb: number;
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * Samples this process's resident memory until stop(), which returns the peak growth in MB: what an
 * audit of the project needs on top of fleetAuditShard's cold start (functions.tf adds it). An upper
 * bound: this process has no memory limit, so its heap also holds garbage a smaller one would collect.
 */
function sampleRss(): { stop: () => number } {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  return {
    stop: () => {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return Math.round((peak - before) / 2 ** 20);
    },
  };
}

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Builds dist/ (npm run build) unless it is newer than every source file it is built from. */
function ensureBuilt(): string {
  const main = path.join(ROOT, 'dist/functions/index.js');
  const built = (() => {
    try {
      return statSync(main).mtimeMs;
    } catch {
      return 0;
    }
  })();
  const newest = Math.max(
    ...['functions', 'shared', 'cli'].flatMap((dir) =>
      readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts') || f.endsWith('.json'))
        .map((f) => statSync(path.join(ROOT, dir, f)).mtimeMs),
    ),
    statSync(path.join(ROOT, 'package-lock.json')).mtimeMs,
  );
  if (newest > built) {
    process.stdout.write('building dist/ (npm run build)... ');
    execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' });
    console.log('done');
  }
  return main;
}

const mainModule = FUNCTION_NAMES.some((f) => wants(`coldstart.${f}`)) || FLEET100K ? ensureBuilt() : null;
const emulators = await startEmulators();
const simulator = await startSimulatorProcess(
  emulators,
  // enroll.latency: every project's audit entries through the log sink (nothing else creates VMs with entries).
  ['--audit-log-topic', ENROLL_SINK_TOPIC],
  // BENCH_CPU_PROF=<dir>: a CPU profile of the simulator (and of audit.fleet100k's function instances).
  process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [],
);
const control = simulator.control;
const simRequests = simulator.requests;
useBenchStack(emulators, simulator, AUDIT_PROJECTS);
const records: BenchRecord[] = [];
const coldStarts: ColdStartRecord[] = [];
const enrollments: EnrollLatencyRecord[] = [];
const fleet100k: Fleet100kRecord[] = [];
const rollouts: RolloutRecord[] = [];
const syslogs: SyslogRecord[] = [];
const logCosts: Array<LogVolumeRecord | CostRecord> = [];
const silences: Array<SilenceStormRecord | BacklogReplayRecord> = [];
const drifts: DriftRecord[] = [];
const projects10k: Projects10kRecord[] = [];
/** Families whose measurement failed: the others' figures are still printed and written, and the bench exits 1. */
const failures: string[] = [];
const family = async (name: string, measure: () => Promise<void>) => {
  try {
    await measure();
  } catch (error) {
    failures.push(name);
    console.error(`\n${name} failed:`, error);
  }
};
try {
  if (mainModule) await family('coldstart', async () => void coldStarts.push(...(await measureColdStarts(mainModule))));
  if (FLEET_RECORDS.some(wants)) await family('audit/heartbeat', fleetBenchmarks);
  if (ENROLL)
    await family(ENROLL_RECORD, async () => {
      process.stdout.write(`${ENROLL_RECORD}: 200 VMs in another project, through the log sink... `);
      const { measureEnrollLatency } = await import('./enroll-latency.js');
      enrollments.push(await measureEnrollLatency({ control }));
      console.log('done');
    });
  if (FLEET100K)
    await family(FLEET100K_RECORD, async () => {
      console.log(
        `${FLEET100K_RECORD}: ${values['fleet-vms-per-project']} VMs in each of ` +
          `${values['fleet-projects']} projects, through fleetAudit and fleetAuditShard instances`,
      );
      const { measureFleet100k } = await import('./fleet100k.js');
      const measured = await measureFleet100k({
        control,
        simRequests,
        mainModule: mainModule!,
        projects: Number(values['fleet-projects']),
        unchanged: wants(`${FLEET100K_RECORD}.unchanged`),
        vmsPerProject: Number(values['fleet-vms-per-project']),
        log: (line) => console.log(`  ${line}`),
      });
      fleet100k.push(...measured.filter((r) => wants(r.name)));
    });
  // Last: each scenario empties the simulator and Firestore for its own fleet.
  if (ROLLOUTS.length)
    await family('rollout', async () => {
      const { measureRollout } = await import('./rollout.js');
      for (const name of ROLLOUTS) {
        const mode =
          name === 'rollout.staged' ? 'staged' : name === 'rollout.agentUpgrade' ? 'agentUpgrade' : 'allAtOnce';
        console.log(`${name}: a bad version on ${values['rollout-vms']} VMs in ${values['rollout-zones']} zones...`);
        const r = await measureRollout({
          control,
          mode,
          vms: Number(values['rollout-vms']),
          zones: Number(values['rollout-zones']),
          log: (line) => console.log(`  ${line}`),
        });
        rollouts.push(r);
        console.log(
          `  ${name}: ${r.exposedHosts} of ${r.hosts} hosts exposed (${(r.exposedShare * 100).toFixed(1)}%, canary ` +
            `${(r.canaryShare * 100).toFixed(1)}%), ` +
            (r.halted ? `halted after ${r.haltAfterMs! / 60_000} simulated min` : 'never halted'),
        );
      }
    });
  // Its own project of 5,000 hosts on the simulator process.
  if (SILENCE)
    await family('silence', async () => {
      console.log('silence.storm, backlog.replay: 5,000 hosts, 30% silent at once, then an hour of backlog...');
      const { measureSilence } = await import('./silence.js');
      silences.push(...(await measureSilence({ control, hosts: 5000, log: (line) => console.log(`  ${line}`) })));
    });
  // Its own in-process simulator and fleet: after the others, which use the simulator process.
  if (SYSLOG)
    await family(SYSLOG_RECORD, async () => {
      console.log(`${SYSLOG_RECORD}: a canary where one host logs 1,000 syslog lines a second...`);
      const { measureSyslogBusyHost } = await import('./syslog.js');
      syslogs.push(await measureSyslogBusyHost({ log: (line) => console.log(`  ${line}`) }));
    });
  if (DRIFT)
    await family(DRIFT_RECORD, async () => {
      console.log(`${DRIFT_RECORD}: 1% of 5,000 hosts left on an old configuration...`);
      const { measureDriftDetection } = await import('./drift.js');
      drifts.push(measureDriftDetection());
    });
  // Last: it sets the global API budget and points the clients at its own in-process simulator.
  if (PROJECTS10K)
    await family(PROJECTS10K_RECORD, async () => {
      console.log(`${PROJECTS10K_RECORD}: the rolling audit inside Google's default quotas, time scaled...`);
      const { measureProjects10k } = await import('./projects10k.js');
      projects10k.push(
        await measureProjects10k({
          projects: Number(values['p10k-projects']),
          vmsPerProject: Number(values['p10k-vms-per-project']),
          log: (line) => console.log(`  ${line}`),
        }),
      );
    });
} finally {
  simulator.kill();
  await emulators.stop();
}

async function fleetBenchmarks(): Promise<void> {
  const { publish } = await import('../../shared/usecases/publish.js');
  const { runAuditShard } = await import('../../shared/usecases/audit.js');
  const { createRun } = await import('../../shared/adapters/audits.js');
  const { usageSince, usageSnapshot, totalApiCalls } = await import('../../shared/metrics.js');
  const { clients } = await import('../../shared/clients.js');

  process.stdout.write(`setting up ${HOSTS} VMs in ${ZONES} zones of each of ${AUDIT_RUNS} projects... `);
  const oses = ['debian-12', 'ubuntu-2204', 'rhel-9', 'rocky-9'] as const;
  const perZone = Math.floor(HOSTS / ZONES);
  for (const project of AUDIT_PROJECTS) await setUpProject(project);
  async function setUpProject(project: string): Promise<void> {
    await control('POST', '/projects', { id: project, metadata: { 'enable-osconfig': 'TRUE' } });
    for (let z = 0; z < ZONES; z++) {
      // Per zone: 2% without an agent, 1% failing the policy, the rest healthy; no audit-log events.
      const zone = `bench-zone-${z}`;
      const faulty = [
        { count: Math.floor(perZone * 0.02), agent: false, prefix: 'noagent' },
        { count: Math.floor(perZone * 0.01), policyFailure: 'install-osquery', prefix: 'failing' },
      ];
      for (const f of faulty)
        if (f.count)
          await control('POST', '/vms:bulk', {
            project,
            zone,
            namePrefix: `${f.prefix}-${z}`,
            count: f.count,
            os: oses[z % 4],
            as: 'none',
            agent: f.agent ?? true,
            policyFailure: f.policyFailure ?? null,
          });
      await control('POST', '/vms:bulk', {
        project,
        zone,
        namePrefix: `vm-${z}`,
        count: perZone - faulty.reduce((a, f) => a + f.count, 0),
        os: oses[z % 4],
        as: 'none',
      });
    }
  }
  await publish();
  await control('POST', '/agents/run');
  // A fresh emulator's JVM is slow for its first few thousand writes: warm it up, so every figure
  // below (the baselines run later) is measured on a warm emulator.
  {
    const db = clients.firestore();
    for (let round = 0; round < 4; round++) {
      const batch = db.batch();
      for (let i = 0; i < 490; i++)
        batch.set(db.collection('bench_warmup').doc(`${round}-${i}`), { i, at: new Date() });
      await batch.commit();
    }
    await db.collection('bench_warmup').get();
  }
  console.log('done');

  // The real path: a run document, fleetAuditShard's reconcile, the run summary, the fleet status.
  const audit = async (name: string, runId: string, project: string): Promise<BenchRecord> => {
    await createRun(runId, [project], new Date());
    const simBefore = await simRequests();
    const before = usageSnapshot();
    const rss = sampleRss();
    const t0 = performance.now();
    await runAuditShard({ runId, project });
    const wallMs = Math.round(performance.now() - t0);
    const rssGrowthMb = rss.stop();
    const spent = usageSince(before);
    const simCalls = (await simRequests()) - simBefore;
    const run = (await clients.firestore().collection('audits').doc(runId).get()).data()!;
    return {
      name,
      hosts: HOSTS,
      wallMs,
      apiCalls: totalApiCalls(spent),
      apiCallsSeenBySimulator: simCalls,
      apiCallsByMethod: spent.apiCalls,
      firestoreWrites: spent.firestoreWrites,
      hostWrites: run.hostWrites,
      coverage: run.coverage,
      counts: run.counts,
      rssGrowthMb,
    };
  };
  // Each audit.* record is the run of median wall time among AUDIT_RUNS, one project each (a first audit
  // needs a project never audited), so one noisy run on a shared machine does not decide the ratios.
  const medianRun = (runs: BenchRecord[]): BenchRecord => {
    const byWall = [...runs].sort((a, b) => a.wallMs - b.wallMs);
    return { ...byWall[Math.floor(byWall.length / 2)]!, runs: runs.length, wallMsRuns: runs.map((r) => r.wallMs) };
  };
  // audit.first also discovers the hosts the heartbeat records need.
  const firsts: BenchRecord[] = [];
  for (const [i, project] of AUDIT_PROJECTS.entries())
    firsts.push(await audit('audit.first', `bench-first-${i + 1}`, project));
  if (wants('audit.first')) records.push(medianRun(firsts));
  if (wants('audit.unchanged')) {
    const unchangedRuns: BenchRecord[] = [];
    for (const [i, project] of AUDIT_PROJECTS.entries())
      unchangedRuns.push(await audit('audit.unchanged', `bench-unchanged-${i + 1}`, project));
    records.push(medianRun(unchangedRuns));
  }

  // Naive baseline: for each VM, one report call and one Firestore write, one after the other.
  if (wants('audit.naive')) {
    const naiveRuns: BenchRecord[] = [];
    for (const project of AUDIT_PROJECTS) naiveRuns.push(await naiveAudit(project));
    records.push(medianRun(naiveRuns));
  }
  async function naiveAudit(project: string): Promise<BenchRecord> {
    const { listProjectVms } = await import('../../shared/adapters/compute.js');
    const before = usageSnapshot();
    const t0 = performance.now();
    const vms = await listProjectVms(project);
    const db = clients.firestore();
    let writes = 0;
    for (const vm of vms) {
      let state = 'unknown';
      try {
        const [report] = await (
          await clients.osConfig()
        ).getOSPolicyAssignmentReport({
          name:
            `projects/${project}/locations/${vm.zone}/instances/${vm.instanceId}` +
            '/osPolicyAssignments/osquery/report',
        });
        state = String(report.osPolicyCompliances?.[0]?.complianceState ?? 'unknown');
      } catch {
        state = 'no-report';
      }
      await db
        .collection('naive_hosts')
        .doc(vm.instanceId)
        .set({ name: vm.name, zone: vm.zone, state, updatedAt: new Date() });
      writes += 1;
    }
    const wallMs = Math.round(performance.now() - t0);
    return {
      name: 'audit.naive',
      hosts: HOSTS,
      wallMs,
      apiCalls: totalApiCalls(usageSince(before)),
      firestoreWrites: writes,
    };
  }

  // logHeartbeat: 5,000 hosts x 20 lines, one line per message (the shipper publishes one record per
  // message), 64 deliveries in flight as one busy function instance would see them.
  if (wants('heartbeat.coalesced') || wants('heartbeat.naive')) {
    const { logHeartbeat, logHeartbeatEngine } = await import('../../functions/log-heartbeat.js');
    const { mapLimit } = await import('../../shared/rate.js');
    const db = clients.firestore();
    const hostIds = (
      await db.collection('hosts').where('project', '==', PROJECT).select().limit(HEARTBEAT_HOSTS).get()
    ).docs.map((d) => d.id);
    const t0 = Math.floor(Date.now() / 1000) - 20 * 15;
    const messages: Array<{ id: string; line: number }> = [];
    for (let j = 0; j < HEARTBEAT_LINES; j++) for (const id of hostIds) messages.push({ id, line: t0 + j * 15 });
    const event = (m: { id: string; line: number }, k: number) => heartbeatEvent(`m${k}`, m.id, PROJECT, m.line);
    logHeartbeatEngine.renew(); // one instance, fresh: it has seen none of these hosts
    const before = usageSnapshot();
    let t = performance.now();
    await mapLimit(messages, 64, (m, k) => logHeartbeat(event(m, k) as never));
    let wallMs = Math.round(performance.now() - t);
    records.push({
      name: 'heartbeat.coalesced',
      hosts: hostIds.length,
      lines: messages.length,
      wallMs,
      linesPerSec: Math.round(messages.length / (wallMs / 1000)),
      apiCalls: 0,
      firestoreWrites: usageSince(before).firestoreWrites,
    });

    // Naive baseline: every line written to its host document.
    t = performance.now();
    await mapLimit(messages, 64, (m) =>
      db
        .collection('hosts')
        .doc(m.id)
        .update({ lastLogAt: new Date(m.line * 1000) }),
    );
    wallMs = Math.round(performance.now() - t);
    records.push({
      name: 'heartbeat.naive',
      hosts: hostIds.length,
      lines: messages.length,
      wallMs,
      linesPerSec: Math.round(messages.length / (wallMs / 1000)),
      apiCalls: 0,
      firestoreWrites: messages.length,
    });
  }
  // After the coalesced records: its hour of lines is newer than theirs, which would then be stale.
  if (wants('heartbeat.telemetry')) {
    const { telemetryBenchmark } = await import('./heartbeat-telemetry.js');
    records.push({ ...(await telemetryBenchmark(PROJECT, HEARTBEAT_HOSTS)) });
  }
  // Log volume per query (and, with heartbeat.telemetry's counts, the orchestrator's own month per 1,000 VMs).
  if (wants(LOG_VOLUME_RECORD) || wants(COST_RECORD)) {
    process.stdout.write(`${LOG_VOLUME_RECORD}: ${HEARTBEAT_HOSTS} hosts x two hours of shipped lines... `);
    const volume = await measureLogVolume(HEARTBEAT_HOSTS);
    console.log('done');
    logCosts.push(volume);
    const tel = records.find((r) => r.name === 'heartbeat.telemetry') as unknown as TelemetryRecord | undefined;
    if (tel) {
      const gib = Number.parseInt(memorySize(functionList().find((f) => f.name === 'logHeartbeat')!.peakMb), 10);
      logCosts.push(costPer1000Vms(tel, volume.filteredBytesPerHostHour, gib / 1024));
    }
  }
}

const byName = Object.fromEntries(records.map((r) => [r.name, r]));
/** One table row: each value right-aligned to its width (the first left-aligned). */
const row = (cells: Array<[unknown, number]>) =>
  cells.map(([v, w], i) => (i === 0 ? String(v).padEnd(w) : String(v).padStart(w))).join(' ');
const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}x`;

if (coldStarts.length > 0) {
  console.log(
    '\nname                          import ms  import MB   ready ms  1st event ms  peak MB   ' +
      `(median of ${COLDSTART_RUNS} fresh processes)`,
  );
  for (const r of coldStarts)
    console.log(
      row([
        [r.name, 28],
        [r.importMs, 10],
        [r.importRssMb, 10],
        [r.readyMs, 10],
        [r.firstEventMs, 13],
        [r.peakRssMb, 9],
      ]),
    );
  const light = coldStarts.filter((r) => !COMPUTE_USERS.includes(r.name.replace('coldstart.', '') as FunctionName));
  console.log(
    `targets: functions that never call Compute import in < 400 ms and < 150 MB: ` +
      light.map((r) => `${r.name.replace('coldstart.', '')} ${r.importMs} ms ${r.importRssMb} MB`).join(', '),
  );
}

const naive = byName['audit.naive'];
const audits = records.filter((rec) => rec.name.startsWith('audit.'));
if (audits.length > 0) {
  console.log(
    '\nname              hosts    wall ms   API calls   Firestore writes   RSS growth MB   vs naive (wall)   ' +
      `(median of ${AUDIT_RUNS} runs)`,
  );
  for (const r of audits) {
    const vsNaive = !naive ? '' : r === naive ? '1.0x' : `${ratio(naive.wallMs, r.wallMs)} faster`;
    console.log(
      `${row([
        [r.name, 16],
        [r.hosts, 6],
        [r.wallMs, 10],
        [r.apiCalls, 11],
        [r.firestoreWrites, 18],
        [r.rssGrowthMb ?? '', 15],
      ])}   ${vsNaive}`,
    );
  }
}
const first = byName['audit.first'];
const unchanged = byName['audit.unchanged'];
if (unchanged)
  console.log(
    '\ntargets: unchanged audit writes <= changed hosts + 5 ' +
      "(project snapshot, run result, the run's close, fleet status, osquery's cost status): " +
      `${unchanged.firestoreWrites} writes`,
  );
if (first && unchanged) {
  const computePages = Math.ceil(HOSTS / 500);
  console.log(
    `         API calls <= ceil(N/500) + 2 per zone per page + 1 (the project's metadata) = ${computePages} + ` +
      `${2 * ZONES} + 1 = ${computePages + 2 * ZONES + 1}: unchanged ${unchanged.apiCalls}; first ${first.apiCalls} ` +
      `(it also reads each zone's OS policy assignment once: + ${ZONES})`,
  );
  if (naive)
    console.log(
      `         wall time >= 10x naive: first ${ratio(naive.wallMs, first.wallMs)}, ` +
        `unchanged ${ratio(naive.wallMs, unchanged.wallMs)}`,
    );
}
const hb = byName['heartbeat.coalesced'];
const hbNaive = byName['heartbeat.naive'];
if (hb && hbNaive) {
  console.log('\nname                  hosts    lines   wall ms   lines/s   Firestore writes');
  for (const r of [hb, hbNaive]) {
    console.log(
      row([
        [r.name, 20],
        [r.hosts, 6],
        [r.lines, 8],
        [r.wallMs, 9],
        [r.linesPerSec, 9],
        [r.firestoreWrites, 18],
      ]),
    );
  }
  console.log(
    `targets: writes <= one per host per window: ${hb.firestoreWrites} for ${hb.hosts} hosts; ` +
      `throughput >= 10x naive: ${ratio(hb.linesPerSec as number, hbNaive.linesPerSec as number)}`,
  );
}
const tel = byName['heartbeat.telemetry'];
if (tel) {
  const t = tel as unknown as TelemetryRecord;
  console.log(
    `\nheartbeat.telemetry: ${t.hosts} hosts x one hour, ${t.lines} lines ` +
      `(${t.heartbeats} heartbeats, ${t.snapshots} osquery_schedule snapshots, ` +
      `${t.lines - t.heartbeats - t.snapshots} other results), ${t.queries} queries, ${t.windows} windows`,
  );
  console.log('                      invocations   Firestore writes   wall ms');
  console.log(
    `filtered + aggregated ${row([
      [t.invocations, 11],
      [t.firestoreWrites, 18],
      [t.wallMs, 9],
    ])}`,
  );
  console.log(
    `naive                 ${row([
      [t.naiveInvocations, 11],
      [t.naiveFirestoreWrites, 18],
      [t.naiveWallMs, 9],
    ])}`,
  );
  console.log(
    `pull (next hour)      ${row([
      [t.pullInvocations, 11],
      [t.pullFirestoreWrites, 18],
      [t.pullWallMs, 9],
    ])}   ${t.pullLines} filtered lines drained, ${t.pullHostWrites} host writes`,
  );
  console.log(
    `targets: invocations >= 5x fewer than one per line: ${ratio(t.naiveInvocations, t.invocations)} fewer ` +
      `(pull delivery: ${ratio(t.naiveInvocations, t.pullInvocations)}); ` +
      `writes <= hosts x windows + queries x windows = ${t.hosts * t.windows + t.queries * t.windows}: ` +
      `${t.firestoreWrites} ` +
      `(${t.hostWrites} host, ${t.queryStatsWrites} queryStats)`,
  );
}
if (fleet100k.length > 0) {
  console.log(
    '\nname                        hosts  projects   wall ms   API calls   Firestore writes   host writes   ' +
      'peak shard RSS MB',
  );
  for (const r of fleet100k)
    console.log(
      row([
        [r.name, 24],
        [r.hosts, 9],
        [r.projects, 9],
        [r.wallMs, 9],
        [r.apiCalls, 11],
        [r.firestoreWrites, 18],
        [r.hostWrites, 13],
        [r.peakShardRssMb, 19],
      ]),
    );
  for (const r of fleet100k)
    console.log(
      `${r.name}: run ${r.runStatus}, ${r.shardPushes} shard pushes (${r.redeliveredShards} redelivered) to ` +
        `${r.shardInstances} instances, counts ${JSON.stringify(r.counts)}, coverage ${r.coverage}`,
    );
  const unchanged100k = fleet100k.find((r) => r.name.endsWith('.unchanged'));
  if (unchanged100k) {
    // The summary: the run document (created with its plan's one bucket, shards published, closed), each
    // project's status snapshot and result, the fleet status and osquery's cost status.
    const summary = 4 + 2 * unchanged100k.projects + 2;
    const ok = unchanged100k.hostWrites === 0 && unchanged100k.firestoreWrites === summary;
    console.log(
      `targets: the unchanged run writes nothing but the summary (${summary} writes): ` +
        `${unchanged100k.firestoreWrites} writes, ${unchanged100k.hostWrites} host writes ${ok ? 'OK' : 'FAILED'}; ` +
        'within a 15-minute tick: ' +
        fleet100k.map((r) => `${r.name} ${(r.wallMs / 60_000).toFixed(1)} min`).join(', '),
    );
    if (!ok) process.exitCode = 1;
  }
}
for (const e of enrollments)
  console.log(
    `\n${e.name}: ${e.vms} VMs (${e.createdPerSecond}/s) created -> pending through the log sink: ` +
      `p50 ${e.p50Ms} ms, p95 ${e.p95Ms} ms, max ${e.maxMs} ms; ` +
      `the audit path waits ${e.auditPathMeanMs / 60_000} min on average ` +
      `(${ratio(e.auditPathMeanMs, e.p95Ms)} the p95)`,
  );
for (const r of syslogs)
  console.log(
    `\n${r.name}: ${r.hosts} hosts, one logging ${r.linesPerSecond} lines/s (${r.ingestedPerSecond}/s ingested): ` +
      `osqueryd ${r.osquerydCpuPercent}% CPU, ${r.rssMb} MB against the canary's ${r.thresholds.cpuPercent}% and ` +
      `${r.thresholds.rssMiB} MiB: ` +
      (r.halted ? `halted by ${r.haltGate}; ` : `not halted (${r.status}, stage ${r.stageReached}); `) +
      `${r.busyLinesPerHour} lines (${r.busyMbPerHour} MB) an hour to the SIEM`,
  );
const vol = logCosts.find((r): r is LogVolumeRecord => r.name === LOG_VOLUME_RECORD);
if (vol)
  console.log(
    `\n${LOG_VOLUME_RECORD}: ${vol.hosts} hosts x one hour, ${vol.queries} queries: measured ${vol.measuredBytes} B ` +
      `shipped, ${vol.shippedBytes} B truly shipped ` +
      `(error ${vol.errorPct}%, worst query ${vol.worstQueryErrorPct}%); ` +
      `osquery's output_size ${vol.outputBytes} B; ${vol.bytesPerHostDay} B per host a day; ` +
      `queryStats writes ${vol.writes} (bound ${vol.writeBound})\n` +
      `targets: errorPct <= 5: ${vol.errorPct <= 5 ? 'met' : 'MISSED'}; ` +
      `writes within the bound: ${vol.writes <= vol.writeBound ? 'met' : 'MISSED'}`,
  );
const cost = logCosts.find((r): r is CostRecord => r.name === COST_RECORD);
if (cost)
  console.log(
    `${COST_RECORD}: $${cost.usdPerMonth} a month (functions $${cost.functionsUsd}, Firestore $${cost.firestoreUsd}, ` +
      `Pub/Sub $${cost.pubsubUsd}) from ${cost.invocations} invocations, ${cost.firestoreReads} reads, ` +
      `${cost.firestoreWrites} writes, ${cost.pubsubBytes} Pub/Sub bytes an hour; excludes ${cost.excludes}`,
  );
for (const r of silences)
  if (r.name === 'silence.storm') {
    const ok = r.fleetAlerts === 1 && r.hostAlerts === 0;
    console.log(
      `\n${r.name}: ${r.silentHosts} of ${r.hosts} hosts silent at once in ${r.wallMs} ms: ` +
        `${r.fleetAlerts} fleet.silent, ` +
        `${r.hostAlerts} host.silent sent (naive: ${r.naiveHostAlerts}) ${ok ? 'OK' : 'FAILED'}`,
    );
    if (!ok) process.exitCode = 1;
  } else {
    const ok = r.wrongEpisodes === 0 && r.hostWrites <= r.writeBound && r.silencedWhileBehind === 0;
    console.log(
      `${r.name}: ${r.backlogLines} lines of ${r.hosts} hosts drained in ${r.drainMs} ms: ` +
        `${r.hostWrites} host writes (bound ${r.writeBound}; naive ${r.naiveHostWrites}, ` +
        `${ratio(r.naiveHostWrites, Math.max(1, r.hostWrites))} more), ${r.wrongEpisodes} wrong episodes, ` +
        `${r.silencedWhileBehind} silenced while behind ${ok ? 'OK' : 'FAILED'}`,
    );
    if (!ok) process.exitCode = 1;
  }
for (const r of drifts) {
  const ok = r.detectedHosts === r.driftedHosts && r.maxDetectMs <= r.boundMs && r.falseAlerts === 0;
  console.log(
    `\n${r.name}: ${r.detectedHosts} of ${r.driftedHosts} drifted hosts (of ${r.hosts}) detected, p95 ` +
      `${(r.p95DetectMs / 60_000).toFixed(1)} min, max ${(r.maxDetectMs / 60_000).toFixed(1)} min after their first ` +
      `drifted line (bound ${(r.boundMs / 60_000).toFixed(1)} min), ${r.falseAlerts} false alerts; OS Config's ` +
      `compliance alone: ${r.naiveDetectedHosts} of ${r.driftedHosts} ${ok ? 'OK' : 'FAILED'}`,
  );
  if (!ok) process.exitCode = 1;
}
for (const r of projects10k) {
  const ok = r.api429 === 0 && r.everyProjectWithinCycle;
  console.log(
    `\n${r.name}: ${r.projects} projects (${r.vms} VMs) in ${r.ticks} ticks (bound ${r.cycleBoundTicks}): a cycle of ` +
      `${r.cycleMs / 60_000} min at Google's default quotas ` +
      `(${(r.cycleMsScaled / 1000).toFixed(0)} s scaled x${r.timeScale}), ` +
      `${r.api429} 429s, peaks ${JSON.stringify(r.peakPerMinute)} within quotas ${JSON.stringify(r.quotaPerMinute)}; ` +
      `${r.readsPerProject} OS Config reads and ${r.auditMsPerProject} ms per project; ` +
      `run document ${r.runDocBytes} bytes` +
      (r.projected
        ? `; projected: 10,000 projects in ${r.projected.cycleMinutes} min (${r.projected.ticks} ticks; bound ` +
          `${r.projected.boundMinutes} min), 1,000 in ${r.projected.cycleMinutesAt1000} min; a tick's projects ` +
          `take ${r.projected.tickReadsMeasured} of the ${r.projected.tickReadsBudget} reads its budget allows`
        : '') +
      ` ${ok ? 'OK' : 'FAILED'}`,
  );
  if (!ok) process.exitCode = 1;
}
if (values.out) {
  writeFileSync(
    values.out,
    `${JSON.stringify(
      [
        ...coldStarts,
        ...records,
        ...enrollments,
        ...fleet100k,
        ...rollouts,
        ...syslogs,
        ...logCosts,
        ...silences,
        ...drifts,
        ...projects10k,
      ],
      null,
      2,
    )}\n`,
  );
  console.log(`figures written to ${values.out}`);
}
if (failures.length > 0) console.error(`failed: ${failures.join(', ')} (their figures are missing above)`);
process.exit(failures.length > 0 ? 1 : (process.exitCode ?? 0));

/**
 * Each function's cold start, COLDSTART_RUNS times, each in a fresh process (test/bench/coldstart.mjs):
 * import the built main module, start the Functions Framework's server, deliver one real event against
 * the emulators and the simulator. The events work on a small project of their own.
 */
async function measureColdStarts(mainModule: string): Promise<ColdStartRecord[]> {
  const { clients } = await import('../../shared/clients.js');
  const { config } = await import('../../shared/config.js');
  const { createRun } = await import('../../shared/adapters/audits.js');
  const { buildAuditLogEvent } = await import('../../infra/local/simulator/eventarc.js');
  const project = 'coldstart-project';
  const zone = 'coldstart-zone-a';
  const c = config();
  const pubsub = await clients.pubsub();
  for (const topic of [c.AUDIT_SHARD_TOPIC, c.ALERT_TOPIC])
    if (!(await pubsub.topic(topic).exists())[0]) await pubsub.topic(topic).create();
  await control('POST', '/projects', { id: project, metadata: { 'enable-osconfig': 'TRUE' } });
  const vms: Array<{ id: string; name: string }> = [];
  for (let i = 0; i < COLDSTART_RUNS; i++)
    vms.push(await control('POST', '/vms', { project, zone, name: `coldstart-vm-${i}`, os: 'debian-12' }));
  await control('POST', '/agents/run');

  const pubsubEvent = (topic: string, data: unknown, attributes: Record<string, string> = {}) => {
    const id = randomBytes(8).toString('hex');
    const time = new Date().toISOString();
    return {
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
        'ce-source': `//pubsub.googleapis.com/projects/${emulators.projectId}/topics/${topic}`,
        'ce-id': id,
        'ce-time': time,
      },
      body: JSON.stringify({
        message: {
          data: Buffer.from(typeof data === 'string' ? data : JSON.stringify(data)).toString('base64'),
          attributes,
          messageId: id,
          publishTime: time,
        },
        subscription: `projects/${emulators.projectId}/subscriptions/${topic}-push`,
      }),
    };
  };
  // One event per run; each function's work is checked after it, so a handler that acknowledged a
  // failure cannot pass as a fast cold start.
  const DRAIN_TOPIC = 'coldstart-drain-logs';
  const DRAIN_SUBSCRIPTION = 'coldstart-drain';
  const drainVms: Array<{ id: string; name: string }> = [];
  // A function without a scenario yet is listed, not measured: its manifest peak is then an estimate.
  type Scenario = (run: number) => Promise<{ event: unknown; check: () => Promise<boolean> }>;
  const scenarios: Partial<Record<FunctionName, Scenario>> = {
    vmLifecycle: async (run) => {
      const vm = vms[run]!;
      const resourceName = `projects/${project}/zones/${zone}/instances/${vm.name}`;
      const spec = {
        project,
        zone,
        resourceName,
        method: 'v1.compute.instances.insert',
        instanceId: vm.id,
        targetId: vm.id,
      };
      return {
        event: buildAuditLogEvent(spec, `operation-coldstart-${run}`, 'last'),
        check: async () => (await clients.firestore().collection('hosts').doc(vm.id).get()).exists,
      };
    },
    fleetAudit: async (run) => {
      const runs = clients.firestore().collection('audits');
      const before = (await runs.count().get()).data().count;
      return {
        event: pubsubEvent(c.AUDIT_TICK_TOPIC, { source: `coldstart-${run}` }),
        check: async () => (await runs.count().get()).data().count === before + 1,
      };
    },
    fleetAuditShard: async (run) => {
      const runId = `coldstart-${Date.now()}-${run}`;
      await createRun(runId, [project], new Date());
      return {
        event: pubsubEvent(c.AUDIT_SHARD_TOPIC, { runId, project }),
        check: async () =>
          (await clients.firestore().collection('audits').doc(runId).collection('projects').doc(project).get()).exists,
      };
    },
    // logHeartbeat's heaviest path: the line that ends a silent episode also publishes its `resolved`
    // alert (Pub/Sub). Each run's host is made silent first, as in production: logs two hours old,
    // then an audit.
    logHeartbeat: async (run) => {
      const vm = vms[run]!;
      if (run === 0) await silenceHosts();
      const unixTime = Math.floor(Date.now() / 1000);
      return {
        event: pubsubEvent(
          c.LOG_TOPIC,
          { name: 'heartbeat', unixTime, action: 'snapshot', snapshot: [] },
          { gce_instance_id: vm.id, gce_project_id: project, gce_zone: zone, log_type: 'snapshot' },
        ),
        check: async () => {
          const host = (await clients.firestore().collection('hosts').doc(vm.id).get()).data();
          return host?.state === 'reporting' && host.lastLogAt?.toMillis() === unixTime * 1000;
        },
      };
    },
    // The same path through the pull delivery: the heartbeat waits on the drain's pull subscription, the
    // event is the scheduler's tick. Hosts of their own (logHeartbeat's have reported by now), made silent.
    logHeartbeatDrain: async (run) => {
      if (run === 0) {
        for (let i = 0; i < COLDSTART_RUNS; i++)
          drainVms.push(
            await control('POST', '/vms', { project, zone, name: `coldstart-drain-vm-${i}`, os: 'debian-12' }),
          );
        await control('POST', '/agents/run');
        await silenceHosts(drainVms);
        if (!(await pubsub.topic(DRAIN_TOPIC).exists())[0]) await pubsub.topic(DRAIN_TOPIC).create();
        await pubsub.topic(DRAIN_TOPIC).createSubscription(DRAIN_SUBSCRIPTION, { ackDeadlineSeconds: 120 });
      }
      const vm = drainVms[run]!;
      const unixTime = Math.floor(Date.now() / 1000);
      await pubsub.topic(DRAIN_TOPIC).publishMessage({
        json: { name: 'heartbeat', unixTime, action: 'snapshot', snapshot: [] },
        attributes: { gce_instance_id: vm.id, gce_project_id: project, gce_zone: zone, log_type: 'snapshot' },
      });
      return {
        event: pubsubEvent(c.LOG_DRAIN_TICK_TOPIC, { source: `coldstart-${run}` }),
        check: async () => {
          const host = (await clients.firestore().collection('hosts').doc(vm.id).get()).data();
          return host?.state === 'reporting' && host.lastLogAt?.toMillis() === unixTime * 1000;
        },
      };
    },
    monitoringAlert: async (run) => {
      const vm = vms[run]!;
      const incidentId = `coldstart-${Date.now()}-${run}`;
      const incident = {
        incident_id: incidentId,
        state: 'open',
        started_at: Math.floor(Date.now() / 1000),
        resource: { type: 'gce_instance', labels: { instance_id: vm.id, project_id: project, zone } },
        policy_name: 'osqueryd CPU above 10%',
      };
      return {
        event: pubsubEvent(c.INCIDENT_TOPIC, { version: '1.2', incident }),
        check: async () => {
          const open = (await clients.firestore().collection('hosts').doc(vm.id).get()).get('openIncidents');
          return Array.isArray(open) && open.some((i: { incidentId?: string }) => i.incidentId === incidentId);
        },
      };
    },
    // The status page's JSON: the child exits non-zero unless it answered 2xx; it writes nothing.
    fleetStatus: async () => ({
      event: { method: 'GET', path: '/api/status', headers: { accept: 'application/json' }, body: '' },
      check: async () => true,
    }),
  };

  async function silenceHosts(hosts = vms): Promise<void> {
    const { auditProject } = await import('../../shared/usecases/audit.js');
    const { HeartbeatEngine, recordLogMessage } = await import('../../shared/usecases/heartbeat.js');
    const engine = new HeartbeatEngine();
    await auditProject(project); // discovers the hosts, heals the zone's assignment
    await control('POST', '/agents/run'); // the agents apply it and report compliant
    const twoHoursAgo = Math.floor(Date.now() / 1000) - 7200;
    for (const vm of hosts)
      await recordLogMessage(engine, {
        data: Buffer.from(JSON.stringify({ name: 'heartbeat', unixTime: twoHoursAgo })),
        attributes: { gce_instance_id: vm.id, gce_project_id: project, gce_zone: zone },
        messageId: null,
        publishTime: null,
      });
    await auditProject(project);
    for (const vm of hosts) {
      const state = (await clients.firestore().collection('hosts').doc(vm.id).get()).get('state');
      if (state !== 'silent') throw new Error(`coldstart.logHeartbeat: host ${vm.id} is ${state}, not silent`);
    }
  }

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TARGET_PROJECTS: project,
    LOG_LEVEL: 'error',
    LOG_HEARTBEAT_SUBSCRIPTION: DRAIN_SUBSCRIPTION,
  };
  delete env.NODE_OPTIONS;
  const out: ColdStartRecord[] = [];
  for (const fn of FUNCTION_NAMES) {
    const name = `coldstart.${fn}`;
    if (!wants(name)) continue;
    const scenario = scenarios[fn];
    if (!scenario) {
      console.log(`${name}: no cold-start scenario yet (test/bench/bench.ts), so its peak is not measured`);
      continue;
    }
    process.stdout.write(`${name}: `);
    const runs: Array<Omit<ColdStartRecord, 'name' | 'runs'>> = [];
    for (let run = 0; run < COLDSTART_RUNS; run++) {
      const { event, check } = await scenario(run);
      const child = await runChild(
        [path.join(import.meta.dirname, 'coldstart.mjs'), mainModule, fn, JSON.stringify(event)],
        env,
      );
      const line = child.stdout.split('\n').find((l) => l.startsWith('{"coldstart"'));
      if (child.code !== 0 || !line)
        throw new Error(`${name}: the cold start failed (exit ${child.code}):\n${child.stdout}${child.stderr}`);
      if (!(await check())) throw new Error(`${name}: the event was answered but its work is not in Firestore`);
      runs.push(JSON.parse(line));
      process.stdout.write('.');
    }
    const pick = (k: keyof (typeof runs)[number]) => median(runs.map((r) => r[k] as number));
    out.push({
      name,
      runs: COLDSTART_RUNS,
      importMs: pick('importMs'),
      importRssMb: pick('importRssMb'),
      readyMs: pick('readyMs'),
      firstEventMs: pick('firstEventMs'),
      peakRssMb: pick('peakRssMb'),
    });
    console.log(' done');
  }
  return out;
}

function runChild(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
