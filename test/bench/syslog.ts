// `syslog.busyHost`: turning syslog ingestion on is a configuration version like any other. A fleet of ten
// zones of two VMs runs a baseline that ingests no syslog; the default bundle (ingestion on) is published by
// the default plan (shared/osquery/rollout.json), so the canary zone gets it first, and one canary host
// logs 1,000 syslog lines a second (the others 1). Every 5 simulated minutes: the agents check in, an audit
// run closes (the controller judges the canary's gates at its close), and every VM's osqueryd runs one round
// (infra/local/simulator: rsyslog, the pipe, the rate limit, the syslog query, its CPU and memory); the
// lines logHeartbeat's subscription filter passes go to logHeartbeat's use case, as the subscription would
// deliver them, the others (the SIEM's) are counted. The simulator runs in this process: the busy host's
// 75,000 result lines a round are counted where they are made, not pushed through the Pub/Sub emulator.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const SYSLOG_RECORD = 'syslog.busyHost';

export interface SyslogRecord {
  name: typeof SYSLOG_RECORD;
  hosts: number;
  /** What the busy host's programs log. */
  linesPerSecond: number;
  /** What its osqueryd ingested (the rest was dropped at the pipe). */
  ingestedPerSecond: number;
  /** The busy host's osqueryd as logHeartbeat recorded it on the new version (the highest seen). */
  osquerydCpuPercent: number;
  rssMb: number;
  /** The canary's gates: halted, or the rollout went past the canary. */
  halted: boolean;
  haltGate: string | null;
  /** The stage the rollout reached when the bench stopped watching, and its status. */
  stageReached: string;
  status: string;
  thresholds: { cpuPercent: number; rssMiB: number };
  /** Syslog result lines the busy host shipped per simulated hour, and their bytes (the SIEM's share). */
  busyLinesPerHour: number;
  busyMbPerHour: number;
  simulatedMinutes: number;
  wallMs: number;
}

const PROJECT = 'bench-syslog';
const ZONES = 10;
const TICK_MS = 5 * 60_000;
const MAX_TICKS = 24;
const BUSY_LINES_PER_SECOND = 1000;
const QUIET_LINES_PER_SECOND = 1;
const DEFAULT_BUNDLE_DIR = path.resolve(import.meta.dirname, '../../shared/osquery/bundle');

/** The default bundle without syslog ingestion: the baseline the fleet runs before it is turned on. */
function withoutSyslog(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-nosyslog-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  const flags = path.join(dir, 'osquery.flags');
  writeFileSync(flags, readFileSync(flags, 'utf8').replace(/^--enable_syslog=true$/m, '--enable_syslog=false'));
  const confPath = path.join(dir, 'osquery.conf');
  const conf = JSON.parse(readFileSync(confPath, 'utf8'));
  delete conf.packs.syslog;
  writeFileSync(confPath, JSON.stringify(conf, null, 2));
  rmSync(path.join(dir, 'packs/syslog.conf'));
  rmSync(path.join(dir, 'rsyslog'), { recursive: true });
  return dir;
}

export async function measureSyslogBusyHost(options: { log?: (line: string) => void } = {}): Promise<SyslogRecord> {
  const say = options.log ?? (() => undefined);
  const started = performance.now();
  const { startSimulator } = await import('../../infra/local/simulator/server.js');
  const { osquerydRound, runningVersion, shipsLogs } = await import('../../infra/local/simulator/logs.js');
  const { runAgents } = await import('../../infra/local/simulator/agent.js');
  const { compileFilter } = await import('../../infra/local/pubsub-filter.js');
  const { resetClients, clients } = await import('../../shared/clients.js');
  const { resetConfig } = await import('../../shared/config.js');

  // This process's clients go to an in-process simulator for this record (restored after).
  const sim = await startSimulator({ agentIntervalMs: 0 });
  const saved = { ...process.env };
  Object.assign(process.env, {
    GOOGLE_API_ENDPOINT: sim.url,
    TARGET_PROJECTS: PROJECT,
    SILENCE_THRESHOLD_MINUTES: '60',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '0',
  });
  resetConfig();
  resetClients();
  try {
    const { publish, loadPlan } = await import('../../shared/usecases/publish.js');
    const { runAuditShard } = await import('../../shared/usecases/audit.js');
    const { createRun } = await import('../../shared/adapters/audits.js');
    const { getRollout } = await import('../../shared/adapters/rollouts.js');
    const { getHost } = await import('../../shared/adapters/hosts.js');
    const { HeartbeatEngine, recordLogMessage } = await import('../../shared/usecases/heartbeat.js');
    const { LOG_HEARTBEAT_FILTER, SYSLOG_QUERY } = await import('../../shared/osquery/log-routing.js');
    const { config } = await import('../../shared/config.js');

    const res = await fetch(
      `http://${process.env.FIRESTORE_EMULATOR_HOST}/emulator/v1/projects/${process.env.GOOGLE_CLOUD_PROJECT}` +
        '/databases/(default)/documents',
      { method: 'DELETE' },
    );
    if (!res.ok) throw new Error(`clearing Firestore failed: ${res.status}`);
    const pubsub = await clients.pubsub();
    if (!(await pubsub.topic(config().ALERT_TOPIC).exists())[0]) await pubsub.topic(config().ALERT_TOPIC).create();
    const engine = new HeartbeatEngine();

    const world = sim.world;
    world.setProjectMetadata(PROJECT, { 'enable-osconfig': 'TRUE' });
    for (let z = 0; z < ZONES; z++)
      for (const n of [1, 2])
        world.addVm({
          project: PROJECT,
          zone: `bench-zone-${z}`,
          name: `vm-${z}-${n}`,
          os: 'debian-12',
          labels: z === 0 ? { 'osquery-ring': 'canary' } : {},
        });
    const vms = [...world.vms.values()];
    const busy = vms.find((vm) => vm.name === 'vm-0-1')!;
    for (const vm of vms) vm.syslog.linesPerSecond = vm === busy ? BUSY_LINES_PER_SECOND : QUIET_LINES_PER_SECOND;

    const passes = compileFilter(LOG_HEARTBEAT_FILTER);
    const t0 = Date.now() - (MAX_TICKS + 4) * TICK_MS;
    let tick = 0;
    let k = 0;
    const at = () => new Date(t0 + tick * TICK_MS);
    const busyShipped = { lines: 0, bytes: 0, ticks: 0 };
    /** Agents, the audit run (the controller at its close), one round of every shipping VM's osqueryd. */
    const runTick = async (target: string | null) => {
      tick += 1;
      const now = at();
      runAgents(world, now);
      const runId = `bench-syslog-${t0}-${tick}`;
      await createRun(runId, [PROJECT], now);
      await runAuditShard({ runId, project: PROJECT }, now);
      const through: Array<Promise<unknown>> = [];
      for (const vm of vms) {
        if (!shipsLogs(vm)) continue;
        const identity = { gce_instance_id: vm.id, gce_project_id: vm.project, gce_zone: vm.zone };
        const onTarget = target !== null && runningVersion(vm) === target;
        let sample = '';
        let syslogLines = 0;
        for (const { line, attributes } of osquerydRound(world, vm, now)) {
          const attrs = { ...identity, ...attributes };
          if (passes(attrs))
            through.push(
              recordLogMessage(
                engine,
                { data: Buffer.from(JSON.stringify(line)), attributes: attrs, messageId: `s${k++}`, publishTime: now },
                new Date(now.getTime() + 5_000),
              ),
            );
          else if (attributes.osquery_name === SYSLOG_QUERY) {
            syslogLines += 1;
            sample ||= JSON.stringify({ ...line, ...attrs });
          }
        }
        if (vm === busy && onTarget) {
          busyShipped.lines += syslogLines;
          busyShipped.bytes += syslogLines * Buffer.byteLength(sample);
          busyShipped.ticks += 1;
        }
      }
      await Promise.all(through);
    };

    const baseline = await publish({ projects: [PROJECT], bundleDir: withoutSyslog(), now: at() });
    await runTick(null);
    await runTick(null);
    const plan = await loadPlan();
    const report = await publish({
      projects: [PROJECT],
      plan,
      now: at(),
      actor: { by: 'bench', reason: 'syslog ingestion on' },
    });
    const target = report.configVersion;
    say(`baseline ${baseline.configVersion} (no syslog), target ${target} (syslog on), ${report.rollout.mode}`);
    let cpu = 0;
    let rss = 0;
    let staged = (await getRollout(target))?.staged;
    for (let i = 0; i < MAX_TICKS; i++) {
      await runTick(target);
      const host = await getHost(busy.id);
      const o = (host as { osqueryd?: { cpuPercent: number | null; rssBytes: number } } | null)?.osqueryd;
      if (runningVersion(busy) === target && o) {
        cpu = Math.max(cpu, o.cpuPercent ?? 0);
        rss = Math.max(rss, o.rssBytes);
      }
      staged = (await getRollout(target))?.staged;
      if (!staged || staged.status !== 'running' || staged.stage > 0) break;
    }
    const gates = plan.gates as { osquerydCpu?: { cpuPercent: number }; osquerydMemory?: { rssMiB: number } };
    const hours = (busyShipped.ticks * TICK_MS) / 3600_000 || 1;
    const stage = staged?.stages[staged.stage]?.name ?? '?';
    say(
      `busy host: ${busy.syslog.ingested} lines ingested, ${busy.syslog.dropped} dropped; rollout ${staged?.status} ` +
        `at stage ${stage}${staged?.halt ? ` (halted by ${staged.halt.gate})` : ''}`,
    );
    const ingestSeconds = (busyShipped.ticks * TICK_MS) / 1000;
    return {
      name: SYSLOG_RECORD,
      hosts: vms.length,
      linesPerSecond: BUSY_LINES_PER_SECOND,
      ingestedPerSecond: ingestSeconds ? Math.round(busyShipped.lines / ingestSeconds) : 0,
      osquerydCpuPercent: Math.round(cpu * 100) / 100,
      rssMb: Math.round(rss / 2 ** 20),
      halted: staged?.status === 'halted',
      haltGate: staged?.halt?.gate ?? null,
      stageReached: stage,
      status: staged?.status ?? 'none',
      thresholds: { cpuPercent: gates.osquerydCpu?.cpuPercent ?? 0, rssMiB: gates.osquerydMemory?.rssMiB ?? 0 },
      busyLinesPerHour: Math.round(busyShipped.lines / hours),
      busyMbPerHour: Math.round(busyShipped.bytes / hours / 2 ** 20),
      simulatedMinutes: (tick * TICK_MS) / 60_000,
      wallMs: Math.round(performance.now() - started),
    };
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
    resetConfig();
    resetClients();
    await sim.close();
  }
}
