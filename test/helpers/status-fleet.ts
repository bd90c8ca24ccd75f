// A known fleet for the status page's tests: two projects audited twice (45 minutes apart, on a clock
// run ahead), so coverage, host states, reasons, exempt hosts and open alerts are known exactly.
import * as assert from 'uvu/assert';
import type { Stack } from './stack.js';
import { runAuditShard } from '../../shared/usecases/audit.js';
import { publish } from '../../shared/usecases/publish.js';
import { HeartbeatEngine, recordLogMessage } from '../../shared/usecases/heartbeat.js';
import { createRun } from '../../shared/adapters/audits.js';
import { getFleetStatus } from '../../shared/adapters/status.js';

export const A = 'stat-a';
export const B = 'stat-b';
export const Z1 = 'us-east1-b';
export const Z2 = 'europe-west4-a';
const MIN = 60_000;
const T0 = Date.now();
/** The fleet's clock: minutes after the suite started. */
export const at = (minutes: number) => new Date(T0 + minutes * MIN);

/** The settings the fleet is built with (startStack's environment). */
export const STATUS_FLEET_ENV = {
  TARGET_PROJECTS: `${A},${B}`,
  CONFIG_BUCKET: 'cfg',
  OSCONFIG_WRITES_PER_MINUTE: '6000',
  OSCONFIG_READS_PER_MINUTE: '6000',
  GRACE_PERIOD_MINUTES: '30',
};

export interface Fleet {
  ids: Record<string, string>;
  run1: string;
  run2: string;
  version: string;
}

/**
 * stat-a: r1, r2 reporting; quiet compliant but never a log line (silent); agentless (blocked);
 * failing its policy (noncompliant); a GKE node and an opted-out bastion (exempt); a stopped VM; doomed,
 * deleted between the runs. stat-b: r3 reporting, a Windows VM (exempt). Run 1 at minute 1 (nothing
 * reporting yet: coverage 0), run 2 at minute 45 (3 of 6 reporting: coverage 50 %).
 */
export async function buildStatusFleet(stack: Stack): Promise<Fleet> {
  for (const id of [A, B]) await stack.control('POST', '/projects', { id, metadata: { 'enable-osconfig': 'TRUE' } });
  const w = stack.sim.world;
  const add = (name: string, spec: Partial<Parameters<typeof w.addVm>[0]> = {}) =>
    w.addVm({ project: A, zone: Z1, name, os: 'debian-12', ...spec }).id;
  const ids = {
    r1: add('r1'),
    r2: add('r2', { os: 'ubuntu-2204' }),
    quiet: add('quiet'),
    agentless: add('agentless', { agentMissing: true }),
    failing: add('failing', { zone: Z2, os: 'rhel-9', policyFailure: 'install-osquery' }),
    gke: add('gke-pool-1', { zone: Z2, labels: { 'goog-gke-node': '' } }),
    bastion: add('bastion', { zone: Z2, labels: { 'osquery-exempt': 'true' } }),
    stopped: add('stopped', { zone: Z2, os: 'rocky-9', status: 'TERMINATED' }),
    doomed: add('doomed'),
    r3: add('r3', { project: B }),
    win: add('win-1', { project: B, os: 'windows-2022' }),
  };
  const { configVersion } = await publish({ projects: [A, B] });
  await stack.control('POST', '/agents/run');
  const audit = async (runId: string, now: Date) => {
    await createRun(runId, [A, B], now);
    for (const project of [A, B]) assert.is(await runAuditShard({ runId, project }, now), 'done');
    // The shard that closed the run published the fleet status.
    assert.ok(
      (await getFleetStatus())?.history.some((p) => p.runId === runId),
      `${runId} published`,
    );
  };
  await audit('run-1', at(1));
  w.removeVm(w.vms.get(ids.doomed)!);
  await stack.control('POST', '/agents/run');
  const engine = new HeartbeatEngine();
  // Two heartbeats each, 5 minutes apart, with osqueryd's worker (r1 at 14% of a core), and at the second
  // the hourly osquery_schedule snapshot: the status page's osquery cost comes from them.
  const cpuPercent: Record<string, number> = { [ids.r1]: 14, [ids.r2]: 2, [ids.r3]: 0.5 };
  for (const [k, minute] of [39, 44].entries())
    for (const [i, id] of [ids.r1, ids.r2, ids.r3].entries()) {
      const unixTime = Math.floor(at(minute).getTime() / 1000);
      const worker = { pid: 700 + i, start: Math.floor(at(30).getTime() / 1000) };
      const cpuMs = Math.round((cpuPercent[id]! / 100) * (unixTime - worker.start) * 1000);
      const lines = [
        {
          name: 'heartbeat',
          unixTime,
          snapshot: [
            {
              heartbeat_at: String(unixTime),
              pid: String(worker.pid),
              start_time: String(worker.start),
              user_time: String(cpuMs),
              system_time: '0',
              resident_size: String((40 + 10 * i) * 1024 * 1024),
            },
          ],
        },
        ...(k === 1 ? [scheduleSnapshot(unixTime, worker, i)] : []),
      ];
      await recordLogMessage(
        engine,
        {
          data: Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n')),
          attributes: { gce_instance_id: id },
          messageId: `m-${id}-${minute}`,
          publishTime: at(minute),
        },
        at(minute),
      );
    }
  await engine.stats.flush();
  await audit('run-2', at(45));
  return { ids, run1: 'run-1', run2: 'run-2', version: configVersion };
}

/** An osquery_schedule snapshot: a costly query (2.5 s of CPU a run), a cheap one, and one denylisted on r3. */
function scheduleSnapshot(unixTime: number, worker: { pid: number; start: number }, host: number) {
  const row = (name: string, interval: number, executions: number, msPerRun: number, denylisted = false) => ({
    name,
    interval: String(interval),
    executions: String(executions),
    denylisted: denylisted ? '1' : '0',
    output_size: String(executions * 2048),
    wall_time_ms: String(executions * msPerRun),
    user_time: String(executions * msPerRun),
    system_time: '0',
    worker_pid: String(worker.pid),
    worker_start_time: String(worker.start),
  });
  return {
    name: 'pack_osquery-health_osquery_schedule',
    unixTime,
    snapshot: [
      row('pack_fim_file_hashes', 3600, 1, 2500),
      row('pack_network_listening_ports', 300, 3, 40),
      row('pack_users_logged_in', 600, host === 2 ? 0 : 1, 15, host === 2),
    ],
  };
}
