// Reading osquery's log lines (pure): the worker's CPU and memory from the 5-minute heartbeat, and every
// scheduled query's counters from the hourly osquery_schedule snapshot. A value osquery cannot report is
// refused where it is read (shared/domain/trust.ts), so nothing past here trusts a VM blindly.
//
// Units, from osquery's source (osquery/tables/system/linux/processes.cpp, specs/utility/osquery_schedule.table):
// processes.user_time/system_time are milliseconds (clock ticks x 1000 / CLK_TCK), resident_size bytes
// (VmRSS x 1024), start_time seconds since the epoch; osquery_schedule.user_time/system_time/wall_time_ms
// are cumulative milliseconds and output_size cumulative bytes, all since the worker process started.
import { HEARTBEAT_QUERY, SCHEDULE_QUERY } from '../../osquery/log-routing.js';
import { shippedCountsOf, type ShippedCounts } from '../log-volume.js';
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
} from '../trust.js';
import { runningOf, type RunningEvidence } from '../drift.js';

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
  /** What osqueryd runs, from osquery_info and the decorations (shared/domain/drift.ts). */
  running?: RunningEvidence;
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
  return { pid, startTime, userMs, systemMs, rssBytes, at, running: runningOf(line, row, at) };
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

/** The counters of QueryCounters that only grow while the worker runs: deltas are taken of these. */
export const QUERY_COUNTERS = ['executions', 'outputBytes', 'userMs', 'systemMs', 'wallMs'] as const;

export interface ScheduleSnapshot {
  /** The line's time, ms since the epoch. */
  at: number;
  /** The worker the counters belong to; null when the snapshot lacks worker_pid/worker_start_time (older bundles). */
  worker: WorkerId | null;
  queries: Record<string, QueryCounters>;
  /** The log shipper's counts stamped on the line (shared/domain/log-volume.ts); absent: none. */
  shipped?: ShippedCounts | null;
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
      !QUERY_COUNTERS.every((k) => isCounter(counters[k])) ||
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
  const shipped = shippedCountsOf(line, rejected);
  return { at, worker, queries, ...(shipped ? { shipped } : {}) };
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

/**
 * A message's data (JSON lines or a JSON array of lines) ->
 * the telemetry in it; other and malformed lines are skipped.
 */
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

/** The same worker process: a restart changes its pid or start time. */
export const sameWorker = (a: WorkerId, b: WorkerId) => a.pid === b.pid && a.startTime === b.startTime;
