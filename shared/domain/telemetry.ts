// osquery's own telemetry, pure: the worker's CPU and memory from the 5-minute heartbeat, the cost of
// every scheduled query from the hourly osquery_schedule snapshot, and the decisions taken on them
// (host.performance with source osquery, per-query statistics per configuration version, the query
// classes, query.expensive and query.denylisted).
//
// Units, from osquery's source (osquery/tables/system/linux/processes.cpp, specs/utility/osquery_schedule.table):
// processes.user_time/system_time are milliseconds (clock ticks x 1000 / CLK_TCK), resident_size bytes
// (VmRSS x 1024), start_time seconds since the epoch; osquery_schedule.user_time/system_time/wall_time_ms
// are cumulative milliseconds and output_size cumulative bytes, all since the worker process started.
import { HEARTBEAT_QUERY, SCHEDULE_QUERY } from '../osquery/log-routing.js';
import { episodeKey, type AlertHost, type EpisodeChange } from './alerts.js';
import {
  inWindow,
  isCounter,
  isPid,
  MAX_INTERVAL_SECONDS,
  MAX_QUERIES_PER_SNAPSHOT,
  queryNameProblem,
  reject,
  STORABLE_TIMES,
  type Rejections,
  type TimeWindow,
} from './trust.js';

// --- Reading log lines --------------------------------------------------------------------------

/**
 * A number, or a numeric string as osquery writes them (numerics: false). A string of 400 digits reads as
 * Infinity: the callers' range checks (shared/domain/trust.ts) refuse it.
 */
function num(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return null;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The line's rows: a snapshot's `snapshot` array, or a differential line's `columns`. */
function rowsOf(line: Record<string, unknown>): Array<Record<string, unknown>> {
  if (Array.isArray(line.snapshot)) return line.snapshot.filter(isObject);
  return isObject(line.columns) ? [line.columns] : [];
}

/** The line's time in ms: unixTime (seconds, number or numeric string). */
function lineTimeMs(line: Record<string, unknown>): number | null {
  const s = num(line.unixTime);
  return s !== null && s > 0 ? s * 1000 : null;
}

/** The osquery worker process, as osquery_info names it. A restart changes both (pid reuse is caught by start_time). */
export interface WorkerId {
  pid: number;
  /** Seconds since the epoch. */
  startTime: number;
}

/** One heartbeat's view of the osquery worker: cumulative CPU since it started, memory now. */
export interface WorkerSample extends WorkerId {
  userMs: number;
  systemMs: number;
  rssBytes: number;
  /** When the heartbeat ran, ms since the epoch (heartbeat_at, else the line's unixTime). */
  at: number;
}

/** A worker's start (seconds since the epoch): after the epoch, and not later than the window allows. */
const isStartTime = (seconds: number, window: TimeWindow) =>
  Number.isFinite(seconds) && seconds > 0 && seconds * 1000 <= window.latest;

/**
 * A heartbeat line -> the worker sample; null for other lines and heartbeats without the worker columns
 * (older bundles). A sample with a value out of range (a time outside `window`, a pid, start time or counter
 * osquery cannot report) is null too, and its reason is added to `rejected`: the line still counts for
 * lastLogAt, its telemetry does not.
 */
export function workerSampleOf(
  line: unknown,
  window: TimeWindow = STORABLE_TIMES,
  rejected: Rejections = {},
): WorkerSample | null {
  if (!isObject(line) || line.name !== HEARTBEAT_QUERY) return null;
  const row = rowsOf(line)[0];
  if (!row) return null;
  const pid = num(row.pid);
  const startTime = num(row.start_time);
  const userMs = num(row.user_time);
  const systemMs = num(row.system_time);
  const rssBytes = num(row.resident_size);
  if (pid === null || startTime === null || userMs === null || systemMs === null || rssBytes === null) return null;
  const heartbeatAt = num(row.heartbeat_at);
  const at = heartbeatAt !== null ? heartbeatAt * 1000 : lineTimeMs(line);
  if (at === null || !inWindow(at, window)) {
    reject(rejected, 'telemetry-time');
    return null;
  }
  if (!isPid(pid) || !isStartTime(startTime, window) || ![userMs, systemMs, rssBytes].every(isCounter)) {
    reject(rejected, 'heartbeat-value');
    return null;
  }
  return { pid, startTime, userMs, systemMs, rssBytes, at };
}

/** One scheduled query's cumulative counters in an osquery_schedule snapshot. */
export interface QueryCounters {
  executions: number;
  outputBytes: number;
  userMs: number;
  systemMs: number;
  wallMs: number;
  denylisted: boolean;
  /** Seconds; null when the row does not say. */
  interval: number | null;
}

export interface ScheduleSnapshot {
  /** The line's time, ms since the epoch. */
  at: number;
  /** The worker the counters belong to; null when the snapshot lacks worker_pid/worker_start_time (older bundles). */
  worker: WorkerId | null;
  queries: Record<string, QueryCounters>;
}

/**
 * An osquery_schedule snapshot line -> the counters of every scheduled query; null for other lines. A
 * snapshot outside `window` or with more than MAX_QUERIES_PER_SNAPSHOT rows is null; a row whose name or
 * counters are out of range is left out. Each reason is added to `rejected`.
 */
export function scheduleSnapshotOf(
  line: unknown,
  window: TimeWindow = STORABLE_TIMES,
  rejected: Rejections = {},
): ScheduleSnapshot | null {
  if (!isObject(line) || line.name !== SCHEDULE_QUERY) return null;
  const at = lineTimeMs(line);
  if (at === null) return null;
  if (!inWindow(at, window)) {
    reject(rejected, 'telemetry-time');
    return null;
  }
  const rows = rowsOf(line);
  if (rows.length > MAX_QUERIES_PER_SNAPSHOT) {
    reject(rejected, 'schedule-too-many-queries');
    return null;
  }
  let worker: WorkerId | null = null;
  const queries: Record<string, QueryCounters> = {};
  for (const row of rows) {
    const name = typeof row.name === 'string' ? row.name : null;
    const executions = num(row.executions);
    if (!name || executions === null || executions < 0) continue;
    if (queryNameProblem(name)) {
      reject(rejected, 'query-name');
      continue;
    }
    const wallMs = num(row.wall_time_ms) ?? (num(row.wall_time) ?? 0) * 1000;
    const counters: QueryCounters = {
      executions,
      outputBytes: Math.max(0, num(row.output_size) ?? 0),
      userMs: Math.max(0, num(row.user_time) ?? 0),
      systemMs: Math.max(0, num(row.system_time) ?? 0),
      wallMs: Math.max(0, wallMs),
      denylisted: num(row.denylisted) === 1 || row.denylisted === true,
      interval: num(row.interval),
    };
    const { interval } = counters;
    if (
      !COUNTERS.every((k) => isCounter(counters[k])) ||
      (interval !== null && !(interval >= 0 && interval <= MAX_INTERVAL_SECONDS))
    ) {
      reject(rejected, 'query-value');
      continue;
    }
    queries[name] = counters;
    const pid = num(row.worker_pid);
    const startTime = num(row.worker_start_time);
    if (!worker && pid !== null && isPid(pid) && startTime !== null && isStartTime(startTime, window))
      worker = { pid, startTime };
  }
  return { at, worker, queries };
}

export type Telemetry = { kind: 'heartbeat'; sample: WorkerSample } | { kind: 'schedule'; snapshot: ScheduleSnapshot };

/** A parsed log line -> its telemetry, if it carries any (and what in it was out of range, into `rejected`). */
export function telemetryOf(
  line: unknown,
  window: TimeWindow = STORABLE_TIMES,
  rejected: Rejections = {},
): Telemetry | null {
  const sample = workerSampleOf(line, window, rejected);
  if (sample) return { kind: 'heartbeat', sample };
  const snapshot = scheduleSnapshotOf(line, window, rejected);
  return snapshot ? { kind: 'schedule', snapshot } : null;
}

/** A message's data (JSON lines or a JSON array of lines) -> the telemetry in it; other and malformed lines are skipped. */
export function parseTelemetry(data: string): Telemetry[] {
  const text = data.trim();
  let lines: unknown[] = [];
  if (text.startsWith('[')) {
    try {
      const array = JSON.parse(text) as unknown;
      if (Array.isArray(array)) lines = array;
    } catch {
      // fall through to line by line
    }
  }
  if (lines.length === 0)
    for (const raw of text.split('\n')) {
      if (!raw.trim()) continue;
      try {
        lines.push(JSON.parse(raw));
      } catch {
        // malformed: counted by the heartbeat parser, nothing to read here
      }
    }
  return lines.map((line) => telemetryOf(line)).filter((t): t is Telemetry => t !== null);
}

const sameWorker = (a: WorkerId, b: WorkerId) => a.pid === b.pid && a.startTime === b.startTime;

// --- osqueryd CPU and memory per host -------------------------------------------------------------

/**
 * What a heartbeat sample does to a host's baseline (its previous sample):
 * - `interval`: same worker, newer, counters not backwards: CPU% over the interval;
 * - `first` (no baseline), `restart` (another pid or start_time), `reset` (counters went backwards):
 *   the sample becomes the baseline, no interval;
 * - `stale`: not newer than the baseline (out-of-order delivery or a redelivery): ignored.
 */
export type CpuStep =
  | { kind: 'interval'; cpuPercent: number; intervalMs: number }
  | { kind: 'first' | 'restart' | 'reset' }
  | { kind: 'stale' };

/** CPU% is of one core: (user + system CPU time) / wall time, like top and osquery's watchdog. */
export function cpuStep(
  baseline: (WorkerId & { userMs: number; systemMs: number; at: number }) | null,
  sample: WorkerSample,
): CpuStep {
  if (!baseline) return { kind: 'first' };
  if (sample.at <= baseline.at) return { kind: 'stale' };
  if (!sameWorker(baseline, sample)) return { kind: 'restart' };
  if (sample.userMs < baseline.userMs || sample.systemMs < baseline.systemMs) return { kind: 'reset' };
  const cpuMs = sample.userMs - baseline.userMs + (sample.systemMs - baseline.systemMs);
  const intervalMs = sample.at - baseline.at;
  // Rounded to a thousandth of a percent: more is noise (CPU time comes in 10 ms ticks), less is not stored.
  return { kind: 'interval', cpuPercent: Math.round((cpuMs / intervalMs) * 100_000) / 1000, intervalMs };
}

export interface PerformanceThresholds {
  /** Percent of one core. */
  cpuPercent: number;
  /** Consecutive heartbeat intervals above cpuPercent before it fires. */
  consecutive: number;
  /** Resident memory of the worker. */
  rssBytes: number;
}

const MiB = 1024 * 1024;

/**
 * The review's 10% on two consecutive heartbeats (10 minutes); memory at 300 MiB, about 85% of the
 * bundle's 350 MB watchdog limit, so the alert comes before the watchdog kills the worker.
 */
export const DEFAULT_PERFORMANCE_THRESHOLDS: PerformanceThresholds = {
  cpuPercent: 10,
  consecutive: 2,
  rssBytes: 300 * MiB,
};

export type PerformanceCause = 'cpu' | 'memory' | 'cpu+memory';

/**
 * The host document's `osqueryd` field: the contract's {cpuPercent, rssBytes, at}, the baseline the next
 * heartbeat is measured against, and the decision state carried from one heartbeat to the next.
 */
export interface OsquerydState {
  /** osqueryd worker CPU over the last interval, percent of one core; null right after a first sample or restart. */
  cpuPercent: number | null;
  rssBytes: number;
  /** The heartbeat's time. */
  at: Date;
  pid: number;
  startTime: number;
  userMs: number;
  systemMs: number;
  /** Consecutive measured intervals above the CPU threshold, up to this heartbeat. */
  cpuOver: number;
  /** The open host.performance (source osquery) episode. */
  episode: { since: Date; cause: PerformanceCause } | null;
}

export interface OsquerydDecision {
  step: CpuStep['kind'];
  /** The field to write; null when the sample is stale (nothing is written, nothing alerts). */
  next: OsquerydState | null;
  /** Opens host.performance: the episode starts at this heartbeat. */
  fire: { since: Date; cause: PerformanceCause; reason: string } | null;
  /** Closes the open episode. */
  resolve: { since: Date; at: Date; reason: string } | null;
}

const pct = (n: number) => `${Math.round(n * 10) / 10}%`;
const mib = (n: number) => `${Math.round(n / MiB)} MiB`;

/**
 * Pure: a heartbeat sample against the host's `osqueryd` field. CPU above the threshold on
 * `consecutive` measured intervals, or memory above its threshold on any heartbeat, opens an episode;
 * a heartbeat where neither holds closes it. A heartbeat without an interval (first sample, restart)
 * neither counts as over nor as recovered for CPU. A stale sample (redelivered, out of order) changes
 * nothing, so redelivery never fires or resolves twice.
 */
export function decideOsqueryd(
  previous: OsquerydState | null,
  sample: WorkerSample,
  thresholds: PerformanceThresholds = DEFAULT_PERFORMANCE_THRESHOLDS,
): OsquerydDecision {
  const step = cpuStep(previous && { ...previous, at: previous.at.getTime() }, sample);
  if (step.kind === 'stale') return { step: step.kind, next: null, fire: null, resolve: null };
  const cpuPercent = step.kind === 'interval' ? step.cpuPercent : null;
  const cpuOver =
    cpuPercent === null
      ? (previous?.cpuOver ?? 0)
      : cpuPercent > thresholds.cpuPercent
        ? (previous?.cpuOver ?? 0) + 1
        : 0;
  const cpuHot = cpuOver >= thresholds.consecutive;
  const memoryHot = sample.rssBytes > thresholds.rssBytes;
  const cause: PerformanceCause | null =
    cpuHot && memoryHot ? 'cpu+memory' : cpuHot ? 'cpu' : memoryHot ? 'memory' : null;
  const at = new Date(sample.at);
  let episode = previous?.episode ?? null;
  let fire: OsquerydDecision['fire'] = null;
  let resolve: OsquerydDecision['resolve'] = null;
  if (!episode && cause) {
    const parts: string[] = [];
    if (cpuHot)
      parts.push(
        `osqueryd CPU ${pct(cpuPercent ?? 0)} of a core on ${cpuOver} consecutive heartbeats (threshold ${pct(thresholds.cpuPercent)})`,
      );
    if (memoryHot) parts.push(`osqueryd memory ${mib(sample.rssBytes)} (threshold ${mib(thresholds.rssBytes)})`);
    episode = { since: at, cause };
    fire = { since: at, cause, reason: parts.join('; ') };
  } else if (episode && !cause) {
    resolve = {
      since: episode.since,
      at,
      reason: `osqueryd back to ${cpuPercent === null ? 'n/a' : pct(cpuPercent)} CPU, ${mib(sample.rssBytes)}`,
    };
    episode = null;
  }
  const next: OsquerydState = {
    cpuPercent,
    rssBytes: sample.rssBytes,
    at,
    pid: sample.pid,
    startTime: sample.startTime,
    userMs: sample.userMs,
    systemMs: sample.systemMs,
    cpuOver,
    episode,
  };
  return { step: step.kind, next, fire, resolve };
}

/** What several heartbeats of a host, written together, do to its `osqueryd` field and its episode. */
export interface OsquerydFold {
  /** The field to write; null when every sample was stale. */
  next: OsquerydState | null;
  /** The episode open after the samples that was not open before them: it fires. */
  open: { since: Date; cause: PerformanceCause; reason: string } | null;
  /** The episode open before the samples and closed after them: it resolves. */
  close: { since: Date; at: Date; reason: string } | null;
}

/**
 * Pure: the heartbeats a host sent since its last write (a write window holds one in production, several
 * when deliveries pile up), in time order through decideOsqueryd, so consecutive heartbeats count exactly
 * however they were coalesced. The write carries the net change of the episode: one that opened and
 * closed between two writes (within one write window, only in a backlog of old heartbeats) is over by the
 * time it is seen and does not alert.
 */
export function foldOsqueryd(
  previous: OsquerydState | null,
  samples: readonly WorkerSample[],
  thresholds: PerformanceThresholds = DEFAULT_PERFORMANCE_THRESHOLDS,
): OsquerydFold {
  let state = previous;
  let changed = false;
  let fire: OsquerydDecision['fire'] = null;
  let resolve: OsquerydDecision['resolve'] = null;
  const before = previous?.episode ?? null;
  for (const sample of [...samples].sort((a, b) => a.at - b.at)) {
    const d = decideOsqueryd(state, sample, thresholds);
    if (!d.next) continue;
    state = d.next;
    changed = true;
    if (d.fire) fire = d.fire;
    if (d.resolve && before && d.resolve.since.getTime() === before.since.getTime()) resolve ??= d.resolve;
  }
  const after = state?.episode ?? null;
  const same = before !== null && after !== null && before.since.getTime() === after.since.getTime();
  return {
    next: changed ? state : null,
    open: after && !same ? fire : null,
    close: before && !same ? resolve : null,
  };
}

/** host.performance from osquery's own heartbeats: a warning, like Cloud Monitoring's. */
export const PERFORMANCE_SOURCE = 'osquery';

/** Pure: the host.performance (source osquery) episode records a fold opens or closes. */
export function performanceEpisodes(host: AlertHost, fold: OsquerydFold): EpisodeChange {
  const change: EpisodeChange = {};
  if (fold.close)
    change.close = {
      kind: 'host.performance',
      instanceId: host.instanceId,
      previousSince: fold.close.since,
      at: fold.close.at,
    };
  if (fold.open)
    change.open = {
      kind: 'host.performance',
      severity: 'warning',
      dedupKey: episodeKey('host.performance', host.instanceId, fold.open.since),
      host,
      reason: fold.open.reason,
      since: fold.open.since,
      source: PERFORMANCE_SOURCE,
    };
  return change;
}

// --- Query cost per host: osquery_schedule deltas -------------------------------------------------

export interface QueryBaselineEntry {
  executions: number;
  outputBytes: number;
  userMs: number;
  systemMs: number;
  wallMs: number;
}

/** Kept on the host document (`querySchedule`): the last snapshot's counters, to measure the next one against. */
export interface ScheduleBaseline {
  at: Date;
  worker: WorkerId | null;
  queries: Record<string, QueryBaselineEntry>;
}

export interface QueryDelta {
  query: string;
  interval: number | null;
  executions: number;
  outputBytes: number;
  userMs: number;
  systemMs: number;
  wallMs: number;
  /** Per execution over the delta; null when the query did not run in it. */
  userMsPerExecution: number | null;
  systemMsPerExecution: number | null;
  denylisted: boolean;
}

export interface ScheduleStep {
  /**
   * `interval`: measured against the baseline; `restart`: another worker (or counters went backwards),
   * counted from zero; `first`: no baseline, counted from zero but over an unknown span (the worker
   * may have run for weeks), so its executions and bytes are not attributed to a window; `stale`: not
   * newer than the baseline, ignored.
   */
  kind: 'interval' | 'restart' | 'first' | 'stale';
  /**
   * The time the deltas cover, ms: since the baseline (interval), since the worker started (restart,
   * first: the snapshot names its worker); null when unknown (an older bundle's snapshot without
   * worker columns after a restart or as a first), and then no totals are attributed.
   */
  spanMs: number | null;
  /** The baseline to keep; null when stale (nothing to write). */
  next: ScheduleBaseline | null;
  /** One per query in the snapshot; empty when stale. */
  deltas: QueryDelta[];
}

const COUNTERS = ['executions', 'outputBytes', 'userMs', 'systemMs', 'wallMs'] as const;

/** Pure: an osquery_schedule snapshot against the host's baseline -> per-query deltas and the next baseline. */
export function scheduleStep(baseline: ScheduleBaseline | null, snapshot: ScheduleSnapshot): ScheduleStep {
  if (baseline && snapshot.at <= baseline.at.getTime()) return { kind: 'stale', spanMs: null, next: null, deltas: [] };
  let kind: ScheduleStep['kind'] = baseline ? 'interval' : 'first';
  if (baseline) {
    const otherWorker = baseline.worker && snapshot.worker && !sameWorker(baseline.worker, snapshot.worker);
    // hasOwn: a query named `constructor` is not Object.prototype's.
    const backwards = Object.entries(snapshot.queries).some(([name, c]) => {
      return Object.hasOwn(baseline.queries, name) && COUNTERS.some((k) => c[k] < baseline.queries[name]![k]);
    });
    if (otherWorker || backwards) kind = 'restart';
  }
  const deltas: QueryDelta[] = [];
  const queries: Record<string, QueryBaselineEntry> = {};
  for (const [query, c] of Object.entries(snapshot.queries)) {
    const before =
      kind === 'interval' && Object.hasOwn(baseline!.queries, query) ? baseline!.queries[query] : undefined;
    const counters: QueryBaselineEntry = {
      executions: c.executions,
      outputBytes: c.outputBytes,
      userMs: c.userMs,
      systemMs: c.systemMs,
      wallMs: c.wallMs,
    };
    const d = { ...counters };
    if (before) for (const k of COUNTERS) d[k] -= before[k];
    deltas.push({
      query,
      interval: c.interval,
      ...d,
      userMsPerExecution: d.executions > 0 ? d.userMs / d.executions : null,
      systemMsPerExecution: d.executions > 0 ? d.systemMs / d.executions : null,
      denylisted: c.denylisted,
    });
    queries[query] = counters;
  }
  const sinceStart = snapshot.worker ? snapshot.at - snapshot.worker.startTime * 1000 : null;
  const spanMs =
    kind === 'interval'
      ? snapshot.at - baseline!.at.getTime()
      : sinceStart !== null && sinceStart > 0
        ? sinceStart
        : null;
  return { kind, spanMs, next: { at: new Date(snapshot.at), worker: snapshot.worker, queries }, deltas };
}

/** What a host's schedule snapshots since its last write do: the baseline to keep and the statistics they add. */
export interface ScheduleFold {
  /** The baseline to write; null when every snapshot was stale. */
  next: ScheduleBaseline | null;
  increments: QueryStatsIncrement[];
}

/** Pure: the snapshots in time order through scheduleStep, their statistics on the host's configuration version. */
export function foldSchedule(
  baseline: ScheduleBaseline | null,
  snapshots: readonly ScheduleSnapshot[],
  configVersion: string,
): ScheduleFold {
  let current = baseline;
  let changed = false;
  const increments: QueryStatsIncrement[] = [];
  for (const snapshot of [...snapshots].sort((a, b) => a.at - b.at)) {
    const step = scheduleStep(current, snapshot);
    if (!step.next) continue;
    current = step.next;
    changed = true;
    increments.push(...statsIncrements(step, configVersion));
  }
  return { next: changed ? current : null, increments };
}

// --- Fleet statistics per (configVersion, query) ----------------------------------------------------
//
// queryStats/{configVersion}~{query} holds, per UTC hour of snapshot time (`windows.h2026112712`), counters
// that only ever grow by increments: host snapshots, executions, output bytes, CPU and wall ms and the
// time they cover (spanMs, for rates per host and hour), denylisted host snapshots, and two log-scale
// histograms of per-host ms per execution (user, system). Increments
// commute, so any number of logHeartbeat instances can buffer them and write one update per document per
// write window. A host lands in the window of its own snapshot (hourly, so about once per window): no
// per-host memory of past contributions is needed, a lost or late update costs one sample rather than a
// lasting skew, and hosts that stop reporting age out with their windows.

/** Histogram buckets: 0 = [0, 1) ms; k in 1..160 = [2^((k-1)/8), 2^(k/8)) ms; 161 = 2^20 ms (17.5 min) and above. */
export const BUCKETS_PER_OCTAVE = 8;
export const TOP_BUCKET = 20 * BUCKETS_PER_OCTAVE + 1;

/**
 * Read percentiles are within this relative error of the exact ones (or 0.5 ms below 1 ms): a bucket's
 * value is its geometric middle, at most 2^(1/16) from any value in it.
 */
export const PERCENTILE_PRECISION = 2 ** (1 / (2 * BUCKETS_PER_OCTAVE)) - 1;

export function costBucket(ms: number): number {
  if (!(ms >= 1)) return 0;
  // The epsilon keeps bucket bounds (2^(k/8)) in their own bucket despite log2's rounding.
  return Math.min(TOP_BUCKET, Math.floor(Math.log2(ms) * BUCKETS_PER_OCTAVE + 1e-9) + 1);
}

/** The value a bucket stands for when percentiles are read. */
export function bucketValue(bucket: number): number {
  if (bucket <= 0) return 0.5;
  if (bucket >= TOP_BUCKET) return 2 ** ((TOP_BUCKET - 1) / BUCKETS_PER_OCTAVE);
  return 2 ** ((bucket - 0.5) / BUCKETS_PER_OCTAVE);
}

/** Histogram counts by bucket key (`b0`, `b37`, ...). */
export type Histogram = Record<string, number>;

/**
 * The p-th percentile (0 < p < 1) as Fleet computes it (server/datastore/mysql/aggregated_stats.go): the
 * value at rank floor(n x p) + 1 of the sorted per-host values. Null for an empty histogram. Counts below
 * zero (an update applied before the one it follows) are read as zero.
 */
export function percentile(histogram: Histogram, p: number): number | null {
  const buckets = Object.entries(histogram)
    .map(([key, count]) => [Number(key.slice(1)), Math.max(0, count)] as const)
    .filter(([bucket, count]) => Number.isInteger(bucket) && count > 0)
    .sort((a, b) => a[0] - b[0]);
  const n = buckets.reduce((sum, [, count]) => sum + count, 0);
  if (n === 0) return null;
  const rank = Math.min(n, Math.floor(n * p) + 1);
  let seen = 0;
  for (const [bucket, count] of buckets) {
    seen += count;
    if (seen >= rank) return bucketValue(bucket);
  }
  return bucketValue(buckets[buckets.length - 1]![0]);
}

/** One window's counters (a map in the queryStats document). */
export interface QueryWindow {
  /** Host snapshots that listed the query. */
  snapshots: number;
  /** Host snapshots where it ran (the histograms' sample count). */
  measured: number;
  executions: number;
  outputBytes: number;
  userMs: number;
  systemMs: number;
  wallMs: number;
  /** The time the totals above cover, summed over host snapshots (ms). */
  spanMs: number;
  /** Host snapshots where it was denylisted. */
  denylisted: number;
  user: Histogram;
  system: Histogram;
}

/** queryStats/{id}: one per configuration version and query. */
export interface QueryStatsDoc {
  configVersion: string;
  query: string;
  interval: number | null;
  windows: Record<string, Partial<QueryWindow>>;
  /** Open query alert episodes: kind -> when the episode began. */
  alerts?: Partial<Record<QueryAlertKind, Date>>;
}

/** Firestore document id: `{configVersion}~{query}` (a `/` in a name is escaped, ids cannot hold it). */
export const queryStatsId = (configVersion: string, query: string) =>
  `${configVersion}~${query}`.replace(/%/g, '%25').replace(/\//g, '%2F');

/** The hour window of a time: `h` + UTC yyyymmddhh. */
export function windowOf(at: number | Date): string {
  const iso = new Date(at).toISOString();
  return `h${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}`;
}

/** The start of a window, ms since the epoch. */
export function windowStart(window: string): number {
  const m = /^h(\d{4})(\d{2})(\d{2})(\d{2})$/.exec(window);
  if (!m) throw new Error(`not a window id: ${window}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]));
}

/** The increments one host's schedule step owes one queryStats document. */
export interface QueryStatsIncrement {
  id: string;
  configVersion: string;
  query: string;
  interval: number | null;
  /** Field path (e.g. `windows.h2026112712.user.b37`) -> amount, for FieldValue.increment. */
  increments: Record<string, number>;
}

/** Pure: the statistics a host's schedule step adds, on the configuration version the host runs. */
export function statsIncrements(step: ScheduleStep, configVersion: string): QueryStatsIncrement[] {
  if (!step.next || step.kind === 'stale') return [];
  const w = `windows.${windowOf(step.next.at)}`;
  return step.deltas.map((d) => {
    const inc: Record<string, number> = { [`${w}.snapshots`]: 1 };
    if (d.denylisted) inc[`${w}.denylisted`] = 1;
    if (d.executions > 0) {
      inc[`${w}.measured`] = 1;
      inc[`${w}.user.b${costBucket(d.userMsPerExecution!)}`] = 1;
      inc[`${w}.system.b${costBucket(d.systemMsPerExecution!)}`] = 1;
    }
    // Totals with the time they cover, so rates are per host and hour whatever the span (an hour between
    // snapshots, or a worker's whole life on a first snapshot); without a known span, none.
    if (step.spanMs !== null) {
      inc[`${w}.spanMs`] = step.spanMs;
      for (const k of COUNTERS) if (d[k] > 0) inc[`${w}.${k}`] = d[k];
    }
    return {
      id: queryStatsId(configVersion, d.query),
      configVersion,
      query: d.query,
      interval: d.interval,
      increments: inc,
    };
  });
}

/**
 * Adds increments into a per-document buffer (what an instance writes at the end of its window). A buffer
 * holding `maxDocuments` documents takes more increments for those only; the number of increments refused
 * (for other documents) is returned.
 */
export function addIncrements(
  buffer: Map<string, QueryStatsIncrement>,
  increments: QueryStatsIncrement[],
  maxDocuments = Infinity,
): number {
  let refused = 0;
  for (const add of increments) {
    const into = buffer.get(add.id);
    if (!into && buffer.size >= maxDocuments) refused += 1;
    else if (!into) buffer.set(add.id, { ...add, increments: { ...add.increments } });
    if (!into) continue;
    for (const [path, n] of Object.entries(add.increments)) into.increments[path] = (into.increments[path] ?? 0) + n;
    into.interval ??= add.interval;
  }
  return refused;
}

/**
 * The increments as a nested object (`{windows: {h2026112712: {user: {b37: 1}}}}`), for a single
 * `set(..., {merge: true})` that creates the document when needed: set() takes keys literally, so dotted
 * paths would become field names with dots in them. The adapter swaps each number for FieldValue.increment.
 */
export function incrementTree(increments: Record<string, number>): Record<string, unknown> {
  const tree: Record<string, unknown> = {};
  for (const [path, n] of Object.entries(increments)) {
    const parts = path.split('.');
    let node = tree;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    node[parts[parts.length - 1]!] = ((node[parts[parts.length - 1]!] as number | undefined) ?? 0) + n;
  }
  return tree;
}

const emptyWindow = (): QueryWindow => ({
  snapshots: 0,
  measured: 0,
  executions: 0,
  outputBytes: 0,
  userMs: 0,
  systemMs: 0,
  wallMs: 0,
  spanMs: 0,
  denylisted: 0,
  user: {},
  system: {},
});

/** Sums windows (e.g. the last 24) into one. */
export function mergeWindows(windows: Array<Partial<QueryWindow>>): QueryWindow {
  const out = emptyWindow();
  for (const w of windows) {
    for (const k of ['snapshots', 'measured', 'denylisted', 'spanMs', ...COUNTERS] as const) out[k] += w[k] ?? 0;
    for (const h of ['user', 'system'] as const)
      for (const [b, n] of Object.entries(w[h] ?? {})) out[h][b] = (out[h][b] ?? 0) + n;
  }
  return out;
}

/** The windows of the last `hours` hours: the current (incomplete) one and the `hours` before it, newest first. */
export function recentWindows(now: number | Date, hours: number): string[] {
  const current = windowStart(windowOf(now));
  return Array.from({ length: hours + 1 }, (_, i) => windowOf(current - i * 3_600_000));
}

/** How long query statistics are kept: two days of hourly windows. */
export const QUERY_STATS_KEEP_HOURS = 48;

/** Windows older than `keepHours` complete hours: to delete. */
export function expiredWindows(doc: Pick<QueryStatsDoc, 'windows'>, now: number | Date, keepHours: number): string[] {
  const oldest = windowStart(windowOf(now)) - keepHours * 3_600_000;
  return Object.keys(doc.windows).filter((w) => /^h\d{10}$/.test(w) && windowStart(w) < oldest);
}

export type QueryClass = 'minimal' | 'considerable' | 'excessive' | 'undetermined';

/**
 * Fleet's performance impact (frontend getPerformanceImpactDescription): user_time_p50 + system_time_p50,
 * ms per execution across hosts: below 2000 minimal, below 4000 considerable, else excessive; a query that
 * never ran is undetermined.
 */
export const CLASS_THRESHOLDS_MS = { considerable: 2000, excessive: 4000 } as const;

export function classify(cpuP50Ms: number | null): QueryClass {
  if (cpuP50Ms === null) return 'undetermined';
  if (cpuP50Ms < CLASS_THRESHOLDS_MS.considerable) return 'minimal';
  if (cpuP50Ms < CLASS_THRESHOLDS_MS.excessive) return 'considerable';
  return 'excessive';
}

export interface QuerySummary {
  configVersion: string;
  query: string;
  interval: number | null;
  /** Hours summarized: the current window and this many before it. */
  hours: number;
  /** Host snapshots that listed it in one window, at most: each host snapshots once an hour. */
  hosts: number;
  /** Host snapshots where it ran: the percentiles' sample count. */
  samples: number;
  /** Executions and output per host and hour: totals over the time they cover. */
  executionsPerHostHour: number;
  outputBytesPerHostHour: number;
  /** The same for the fleet: per host and hour x hosts. */
  executionsPerHour: number;
  outputBytesPerHour: number;
  /** ms per execution across host snapshots (within PERCENTILE_PRECISION); null when it never ran. */
  userP50: number | null;
  userP95: number | null;
  systemP50: number | null;
  systemP95: number | null;
  /** user + system: Fleet's indicator at p50, and the same at p95. */
  cpuP50: number | null;
  cpuP95: number | null;
  /** Hosts that had it denylisted by the watchdog (host snapshots in one window, at most). */
  denylistedHosts: number;
  class: QueryClass;
}

const plus = (a: number | null, b: number | null) => (a === null || b === null ? null : a + b);

/**
 * Pure: the summary of a queryStats document over the current window and the `hours` before it (by
 * default the last one to two hours: a summary is never empty just because an hour began).
 */
export function summarizeQuery(doc: QueryStatsDoc, now: number | Date, hours = 1): QuerySummary {
  const windows = recentWindows(now, hours).map((id) => doc.windows[id] ?? {});
  const w = mergeWindows(windows);
  const userP50 = percentile(w.user, 0.5);
  const systemP50 = percentile(w.system, 0.5);
  const userP95 = percentile(w.user, 0.95);
  const systemP95 = percentile(w.system, 0.95);
  const cpuP50 = plus(userP50, systemP50);
  const hostHours = w.spanMs / 3_600_000;
  const hosts = Math.max(0, ...windows.map((x) => x.snapshots ?? 0));
  const perHostHour = (total: number) => (hostHours > 0 ? total / hostHours : 0);
  return {
    configVersion: doc.configVersion,
    query: doc.query,
    interval: doc.interval,
    hours,
    hosts,
    samples: w.measured,
    executionsPerHostHour: perHostHour(w.executions),
    outputBytesPerHostHour: perHostHour(w.outputBytes),
    executionsPerHour: perHostHour(w.executions) * hosts,
    outputBytesPerHour: perHostHour(w.outputBytes) * hosts,
    userP50,
    userP95,
    systemP50,
    systemP95,
    cpuP50,
    cpuP95: plus(userP95, systemP95),
    denylistedHosts: Math.max(0, ...windows.map((x) => x.denylisted ?? 0)),
    class: classify(cpuP50),
  };
}

// --- Query alerts ---------------------------------------------------------------------------------------

export type QueryAlertKind = 'query.denylisted' | 'query.expensive';

export interface QueryAlertThresholds {
  /** query.expensive fires when cpuP95 (user p95 + system p95, ms per execution) is above this. */
  expensiveP95Ms: number;
}

/** 2000 ms: the worst 5% of hosts spend more per run than Fleet still calls minimal. */
export const DEFAULT_QUERY_ALERT_THRESHOLDS: QueryAlertThresholds = {
  expensiveP95Ms: CLASS_THRESHOLDS_MS.considerable,
};

/** Which query alerts hold for a summary, with their reasons. */
export function queryAlertsOf(
  s: QuerySummary,
  thresholds: QueryAlertThresholds = DEFAULT_QUERY_ALERT_THRESHOLDS,
): Partial<Record<QueryAlertKind, string>> {
  const out: Partial<Record<QueryAlertKind, string>> = {};
  if (s.denylistedHosts > 0)
    out['query.denylisted'] =
      `${s.query} (${s.configVersion}) denylisted by the watchdog on ${s.denylistedHosts} host(s)`;
  if (s.cpuP95 !== null && s.cpuP95 > thresholds.expensiveP95Ms)
    out['query.expensive'] =
      `${s.query} (${s.configVersion}) costs ${Math.round(s.cpuP95)} ms CPU per run at p95 (threshold ${thresholds.expensiveP95Ms} ms)`;
  return out;
}

export interface QueryAlertChange {
  kind: QueryAlertKind;
  status: 'firing' | 'resolved';
  /** The episode's start: the evaluation that opened it. */
  since: Date;
  reason: string;
}

/**
 * Pure: given the episodes open for a query (kind -> since) and its summary now, the episodes to open
 * and to close. Evaluating the same summary twice opens nothing twice (the caller records what opened).
 */
export function queryAlertChanges(
  open: Partial<Record<QueryAlertKind, Date>>,
  summary: QuerySummary,
  at: Date,
  thresholds: QueryAlertThresholds = DEFAULT_QUERY_ALERT_THRESHOLDS,
): QueryAlertChange[] {
  const holds = queryAlertsOf(summary, thresholds);
  const changes: QueryAlertChange[] = [];
  for (const kind of ['query.denylisted', 'query.expensive'] as const) {
    const reason = holds[kind];
    const since = open[kind];
    if (reason && !since) changes.push({ kind, status: 'firing', since: at, reason });
    else if (!reason && since)
      changes.push({
        kind,
        status: 'resolved',
        since,
        reason: `${summary.query} (${summary.configVersion}) recovered`,
      });
  }
  return changes;
}

/** query.* alerts say what to look at; neither stops a host from reporting. */
const QUERY_ALERT_SEVERITY = 'warning' as const;

/** The episode key of a query alert: kind, the queryStats document, when it began. */
export const queryEpisodeKey = (kind: QueryAlertKind, statsId: string, since: Date) => episodeKey(kind, statsId, since);

/** What the audit's run close does to one queryStats document. */
export interface QueryStatsPlan {
  summary: QuerySummary;
  /** The open episodes after this evaluation (the document's `alerts`). */
  alerts: Partial<Record<QueryAlertKind, Date>>;
  /** The episode records to write with it: one firing or resolved change each. */
  episodes: EpisodeChange[];
  /** Windows past QUERY_STATS_KEEP_HOURS, to delete. */
  expired: string[];
  /** Nothing left (every window expired, no open episode): delete the document. */
  remove: boolean;
  /** Something to write. */
  changed: boolean;
}

/**
 * Pure: a queryStats document at the audit's run close: its summary over the last hours, the query
 * alerts that open or close (episodes kept on the document, so a second evaluation opens nothing twice),
 * and the windows to expire.
 */
export function planQueryStats(
  id: string,
  doc: QueryStatsDoc,
  now: Date,
  thresholds: QueryAlertThresholds = DEFAULT_QUERY_ALERT_THRESHOLDS,
  keepHours = QUERY_STATS_KEEP_HOURS,
): QueryStatsPlan {
  const summary = summarizeQuery(doc, now);
  const open = { ...(doc.alerts ?? {}) };
  const episodes: EpisodeChange[] = [];
  const query = { configVersion: doc.configVersion, name: doc.query };
  for (const c of queryAlertChanges(open, summary, now, thresholds)) {
    const dedupKey = queryEpisodeKey(c.kind, id, c.since);
    if (c.status === 'firing') {
      open[c.kind] = c.since;
      episodes.push({
        open: {
          kind: c.kind,
          severity: QUERY_ALERT_SEVERITY,
          dedupKey,
          host: null,
          reason: c.reason,
          since: c.since,
          query,
        },
      });
    } else {
      delete open[c.kind];
      episodes.push({ close: { kind: c.kind, instanceId: '', previousSince: c.since, at: now, dedupKey } });
    }
  }
  const expired = expiredWindows(doc, now, keepHours);
  const remove = expired.length === Object.keys(doc.windows).length && Object.keys(open).length === 0;
  return { summary, alerts: open, episodes, expired, remove, changed: episodes.length > 0 || expired.length > 0 };
}

// --- Where osqueryd costs most ---------------------------------------------------------------------

/** A host's osqueryd cost, as hosts/{id}.osqueryd keeps it. */
export interface HostCost {
  instanceId: string;
  name: string;
  project: string;
  zone: string;
  configVersion: string | null;
  /** Over the last heartbeat interval; null right after a first sample or a restart. */
  cpuPercent: number | null;
  rssBytes: number;
  at: Date;
  /** A host.performance (source osquery) episode is open. */
  alerting: boolean;
}

/** Most expensive first (p95 CPU, then p50, then executions per host and hour); queries that never ran last. */
export function byCost(a: QuerySummary, b: QuerySummary): number {
  return (
    (b.cpuP95 ?? -1) - (a.cpuP95 ?? -1) ||
    (b.cpuP50 ?? -1) - (a.cpuP50 ?? -1) ||
    b.executionsPerHostHour - a.executionsPerHostHour ||
    a.query.localeCompare(b.query) ||
    a.configVersion.localeCompare(b.configVersion)
  );
}

/** status/osquery: the status page's view of osquery's cost, written at each audit run's close. */
export interface OsqueryCostStatus {
  runId: string;
  at: string;
  /** The summaries cover the current hour and this many before it. */
  hours: number;
  topHosts: { cpu: Array<Omit<HostCost, 'at'> & { at: string }>; memory: Array<Omit<HostCost, 'at'> & { at: string }> };
  /** The most expensive queries of every configuration version with statistics, by cost. */
  topQueries: QuerySummary[];
  /** Queries (per version) with statistics in those hours. */
  queries: number;
}

/** How many hosts and queries the status page lists. */
export const STATUS_TOP = 10;

/** Pure: the snapshot from the top hosts and every query's summary (those with samples or denylisted). */
export function osqueryCostStatus(
  runId: string,
  now: Date,
  hosts: { cpu: HostCost[]; memory: HostCost[] },
  summaries: QuerySummary[],
): OsqueryCostStatus {
  const row = (h: HostCost) => ({ ...h, at: h.at.toISOString() });
  const seen = summaries.filter((s) => s.samples > 0 || s.denylistedHosts > 0);
  return {
    runId,
    at: now.toISOString(),
    hours: summaries[0]?.hours ?? 1,
    topHosts: { cpu: hosts.cpu.slice(0, STATUS_TOP).map(row), memory: hosts.memory.slice(0, STATUS_TOP).map(row) },
    topQueries: [...seen].sort(byCost).slice(0, STATUS_TOP),
    queries: seen.length,
  };
}
