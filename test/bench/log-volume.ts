// logs.volume: what each query ships, measured the product's way and checked against what was shipped.
// A fleet of simulated hosts (the simulator's osqueryd and shipper count: every scheduled query of the
// bundle) runs two hours; every osquery_schedule snapshot line is parsed and folded as logHeartbeat folds
// it (parseLogLines, foldSchedule), and its queryStats increments go through logHeartbeat's real buffer and
// adapter into the Firestore emulator. The second hour's queryStats figures (measuredBytes) are compared
// with the bytes the shipper really published between each host's snapshots (shippedBytes). The host
// writes are heartbeat.telemetry's business: the shipped counts ride on lines it already writes for.
//
// cost.per1000vms: the orchestrator's own month per 1,000 VMs, from heartbeat.telemetry's measured counts
// (invocations, Firestore writes, busy time) and this run's, at the cost model's prices.
import {
  resolveCosts,
  newOsqueryd,
  runRound,
  ROUND_SECONDS,
  scheduleFromFiles,
  startWorker,
} from '../../infra/local/simulator/osqueryd.js';
import { newShipperCount, shipLines } from '../../infra/local/simulator/shipper.js';
import { clients } from '../../shared/clients.js';
import { prices } from '../../shared/config.js';
import { monthlyOrchestratorCost, type Prices } from '../../shared/domain/cost-model.js';
import { parseLogLines } from '../../shared/domain/heartbeat.js';
import { messageBytes } from '../../shared/domain/log-volume.js';
import type { ScheduleBaseline } from '../../shared/domain/telemetry/query-cost.js';
import { foldSchedule, windowOf } from '../../shared/domain/telemetry/query-stats.js';
import { usageSince, usageSnapshot } from '../../shared/metrics.js';
import { loadBundle } from '../../shared/osquery/bundle.js';
import { HEARTBEAT_QUERY, SCHEDULE_QUERY } from '../../shared/osquery/log-routing.js';
import { renderBundle } from '../../shared/osquery/render.js';

export const LOG_VOLUME_RECORD = 'logs.volume';
export const COST_RECORD = 'cost.per1000vms';

export interface LogVolumeRecord {
  name: 'logs.volume';
  hosts: number;
  queries: number;
  /** The second hour's shipped bytes as queryStats holds them (the product's figure). */
  measuredBytes: number;
  /** The bytes the simulated shippers published between the same snapshots (the truth). */
  shippedBytes: number;
  /** |measured - shipped| / shipped, percent. */
  errorPct: number;
  /** Worst query's error, percent (queries that shipped at least 1 KiB). */
  worstQueryErrorPct: number;
  /** osquery's output_size over the same hour: what the queries returned, before the differential. */
  outputBytes: number;
  /** queryStats writes for the two hours, and the bound: one per document per write window. */
  writes: number;
  writeBound: number;
  /** Lines shipped per host and hour, and bytes per host and day, in the measured hour. */
  linesPerHostHour: number;
  bytesPerHostDay: number;
  /** Heartbeat and schedule lines' bytes per host and hour: what the filtered subscription delivers. */
  filteredBytesPerHostHour: number;
}

export interface CostRecord {
  name: 'cost.per1000vms';
  usdPerMonth: number;
  functionsUsd: number;
  firestoreUsd: number;
  pubsubUsd: number;
  /** Per 1,000 VMs and hour, as measured (heartbeat.telemetry's push hour, scaled). */
  invocations: number;
  firestoreReads: number;
  firestoreWrites: number;
  pubsubBytes: number;
  gibSeconds: number;
  vcpuSeconds: number;
  prices: Prices;
  /** What the figure leaves out. */
  excludes: string;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export async function measureLogVolume(hostCount: number): Promise<LogVolumeRecord> {
  const { QueryStatsBuffer } = await import('../../shared/usecases/heartbeat/query-stats-buffer.js');
  const { writeQueryStats } = await import('../../shared/adapters/telemetry.js');
  const { config } = await import('../../shared/config.js');
  const db = clients.firestore();
  const rendered = renderBundle(await loadBundle(), { logTopic: 'osquery-logs', logTopicProject: 'bench' });
  const files = Object.fromEntries(
    rendered.files.filter((f) => f.vmPath.startsWith('/etc/osquery/')).map((f) => [f.vmPath, f.content]),
  );
  const schedule = scheduleFromFiles(files);
  const version = `logs-${Date.now().toString(36)}`;
  const random = seeded(24);
  // Two hours ending a minute ago; workers and shippers started an hour before.
  const rounds = (2 * 3600) / ROUND_SECONDS;
  const t0 = Date.now() - 2 * 3600_000 - 60_000;
  const hosts = Array.from({ length: hostCount }, (_, i) => ({
    host: { id: `${9_000_000 + i}`, name: `logs-vm-${i}` },
    worker: startWorker(schedule, version, new Date(t0 - 3600_000), { storedResults: 'all' }),
    count: newShipperCount(new Date(t0 - 3600_000)),
    baseline: null as ScheduleBaseline | null,
    /** Bytes shipped since the host's last snapshot, per query (null before its first). */
    since: null as Map<string, number> | null,
  }));
  const costs = resolveCosts(new Map(), version, newOsqueryd());
  const stats = new QueryStatsBuffer((increments) => writeQueryStats(increments, db));
  const truth = new Map<string, number>();
  let measuredHourLines = 0;
  let filteredBytes = 0;
  const before = usageSnapshot();
  for (let r = 0; r < rounds; r++) {
    const now = new Date(t0 + (r + 1) * ROUND_SECONDS * 1000);
    const secondHour = r >= rounds / 2;
    for (const h of hosts) {
      for (const m of shipLines(h.count, runRound(h.host, h.worker, costs, now, random), {
        gce_instance_id: h.host.id,
      })) {
        const name = m.attributes.osquery_name!;
        if (secondHour) measuredHourLines += 1;
        if (secondHour && (name === SCHEDULE_QUERY || name === HEARTBEAT_QUERY))
          filteredBytes += messageBytes(m.data, m.attributes);
        if (name === SCHEDULE_QUERY) {
          const parsed = parseLogLines(m.data.toString('utf8'), now.getTime() + 5_000);
          const snapshots = parsed.telemetry.flatMap((t) => (t.kind === 'schedule' ? [t.snapshot] : []));
          const fold = foldSchedule(h.baseline, snapshots, version);
          h.baseline = fold.next ?? h.baseline;
          await stats.add(fold.increments, now.getTime() + 5_000);
          // The truth the second hour's increments must add up to: what shipped since the previous snapshot.
          if (h.since && secondHour) for (const [q, n] of h.since) truth.set(q, (truth.get(q) ?? 0) + n);
          h.since = new Map();
        }
        if (h.since) h.since.set(name, (h.since.get(name) ?? 0) + messageBytes(m.data, m.attributes));
      }
    }
  }
  await stats.flush();
  const writes = usageSince(before).firestoreWrites;
  const docs = (await db.collection('queryStats').where('configVersion', '==', version).get()).docs;
  // The windows of the second hour's snapshots (each host's lands in the hour of its own time).
  const measuredWindows = new Set(
    Array.from({ length: rounds / 2 }, (_, i) => windowOf(t0 + (rounds / 2 + i + 1) * ROUND_SECONDS * 1000)),
  );
  let measuredBytes = 0;
  let outputBytes = 0;
  let worst = 0;
  for (const d of docs) {
    const windows = (d.get('windows') ?? {}) as Record<string, { shippedBytes?: number; outputBytes?: number }>;
    let q = 0;
    for (const [w, c] of Object.entries(windows))
      if (measuredWindows.has(w)) {
        q += c.shippedBytes ?? 0;
        outputBytes += c.outputBytes ?? 0;
      }
    measuredBytes += q;
    const t = truth.get(String(d.get('query'))) ?? 0;
    if (t >= 1024) worst = Math.max(worst, (100 * Math.abs(q - t)) / t);
  }
  const shippedBytes = [...truth.values()].reduce((a, b) => a + b, 0);
  const windowSeconds = config().QUERY_STATS_WRITE_WINDOW_SECONDS;
  return {
    name: 'logs.volume',
    hosts: hostCount,
    queries: docs.length,
    measuredBytes,
    shippedBytes,
    errorPct: Math.round((10_000 * Math.abs(measuredBytes - shippedBytes)) / Math.max(1, shippedBytes)) / 100,
    worstQueryErrorPct: Math.round(worst * 100) / 100,
    outputBytes,
    writes,
    // Each document at most once per write window over the two hours (plus the final flush).
    writeBound: docs.length * (Math.ceil((2 * 3600) / Math.max(1, windowSeconds)) + 1),
    linesPerHostHour: Math.round((measuredHourLines / hostCount) * 10) / 10,
    bytesPerHostDay: Math.round((shippedBytes / hostCount) * 24),
    filteredBytesPerHostHour: Math.round(filteredBytes / hostCount),
  };
}

/**
 * The orchestrator's month per 1,000 VMs from heartbeat.telemetry's measured hour (invocations, Firestore
 * writes, busy time) at logHeartbeat's memory, and this run's prices. The logs' own Pub/Sub bytes are the
 * fleet's (logs.volume prices them per query); the orchestrator's share is the filtered subscription's.
 */
export function costPer1000Vms(
  telemetry: { hosts: number; invocations: number; firestoreWrites: number; hostWrites: number; wallMs: number },
  filteredBytesPerHostHour: number,
  memoryGiB: number,
  used: Prices = prices(),
): CostRecord {
  const per1000 = 1000 / Math.max(1, telemetry.hosts);
  const busySeconds = (telemetry.wallMs / 1000) * per1000;
  // The batcher reads each host it writes (one getAll per batch, a read per document).
  const firestoreReads = Math.round(telemetry.hostWrites * per1000);
  const ops = {
    invocations: Math.round(telemetry.invocations * per1000),
    gibSeconds: busySeconds * memoryGiB,
    vcpuSeconds: busySeconds,
    firestoreReads,
    firestoreWrites: Math.round(telemetry.firestoreWrites * per1000),
    pubsubBytes: Math.round(filteredBytesPerHostHour * 1000),
    hours: 1,
  };
  const cost = monthlyOrchestratorCost(ops, used);
  const r2 = (n: number) => Math.round(n * 100) / 100;
  return {
    name: 'cost.per1000vms',
    usdPerMonth: r2(cost.usdPerMonth),
    functionsUsd: r2(cost.functionsUsd),
    firestoreUsd: r2(cost.firestoreUsd),
    pubsubUsd: r2(cost.pubsubUsd),
    ...ops,
    gibSeconds: r2(ops.gibSeconds),
    vcpuSeconds: r2(ops.vcpuSeconds),
    prices: used,
    excludes:
      'the audit (its Firestore reads and writes; Compute and OS Config calls are free, quota-bound), ' +
      'the status page, the rollout controller, ' +
      'free tiers; busy time is the bench wall time on the emulator (an upper bound of billed time)',
  };
}
