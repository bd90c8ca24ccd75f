// What each scheduled query costs in logs (pure): the bytes and lines that actually ship, per query, as the
// log shipper counts them, beside what osquery says it returned (osquery_schedule's output_size).
//
// Why the shipper counts: logHeartbeat sees only heartbeat and osquery_schedule lines (the subscription's
// filter keeps the fleet's results away from functions), so it cannot size the result lines itself; sampling
// them through the filter would invoke a function per sampled line and still estimate; the SIEM
// subscription's metrics (topic/byte_cost, message_sizes) carry no query name. The shipper sees every line
// anyway: it keeps, per osquery_name, cumulative lines and message bytes since it started, and stamps them
// on the hourly osquery_schedule snapshot line as it passes (`shipped`), which logHeartbeat already reads.
// Deltas against the host's previous snapshot (kept in hosts/{id}.querySchedule.shipped) go into the same
// queryStats windows as the CPU figures: no new document, no extra write.
//
// osquery's output_size is not the bytes logged: it counts column names and values of every row a run
// returned, before the differential (a differential query ships only its changed rows), and none of the
// line's envelope (name, host identifier, times, decorations). The two are shown side by side, not mixed.
import { isCounter, MAX_QUERIES_PER_SNAPSHOT, queryNameProblem, reject, type Rejections } from './trust.js';

/** The line the run's close logs per version, read by the log-based metric log_volume (infra/terraform). */
export const LOG_VOLUME_MESSAGE = 'log volume of a version';

/** The field the shipper adds to the osquery_schedule snapshot line. */
export const SHIPPED_FIELD = 'shipped';

/** One query's lines and bytes shipped since the shipper started. */
export interface ShippedCounter {
  lines: number;
  bytes: number;
}

/** The shipper's cumulative counts, as stamped on a snapshot line. */
export interface ShippedCounts {
  /** When the shipper started, seconds since the epoch: a restart counts from zero. */
  since: number;
  queries: Record<string, ShippedCounter>;
}

/**
 * A Pub/Sub message's size as the shipper counts it: its data and its attributes' keys and values (what
 * Pub/Sub bills as throughput, less its per-request minimum; docs/log-cost.md).
 */
export function messageBytes(data: string | Uint8Array, attributes: Record<string, string> = {}): number {
  const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
  let n = typeof data === 'string' ? bytes(data) : data.byteLength;
  for (const [k, v] of Object.entries(attributes)) n += bytes(k) + bytes(v);
  return n;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | null => {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v)) return Number(v);
  return null;
};

/**
 * A snapshot line's `shipped` field -> the counts; null when absent (a shipper that does not count) or out
 * of range (the reason into `rejected`): the snapshot's other telemetry is used all the same.
 */
export function shippedCountsOf(line: Record<string, unknown>, rejected: Rejections = {}): ShippedCounts | null {
  const field = line[SHIPPED_FIELD];
  if (field === undefined) return null;
  const since = isObject(field) ? num(field.since) : null;
  const queries = isObject(field) && isObject(field.queries) ? field.queries : null;
  if (since === null || since <= 0 || !queries || Object.keys(queries).length > MAX_QUERIES_PER_SNAPSHOT) {
    reject(rejected, 'shipped-value');
    return null;
  }
  const out: Record<string, ShippedCounter> = {};
  for (const [name, c] of Object.entries(queries)) {
    const lines = isObject(c) ? num(c.lines) : null;
    const bytes = isObject(c) ? num(c.bytes) : null;
    if (queryNameProblem(name) || lines === null || bytes === null || !isCounter(lines) || !isCounter(bytes)) {
      reject(rejected, 'shipped-value');
      continue;
    }
    out[name] = { lines, bytes };
  }
  return { since, queries: out };
}

/** What the shipper shipped between two snapshots of a host: per query, and the time it covers. */
export interface ShippedStep {
  /** ms the deltas cover; null when they cannot be attributed (no baseline count, a shipper of unknown age). */
  spanMs: number | null;
  deltas: Record<string, ShippedCounter>;
}

/**
 * Pure: the shipper's counts on a snapshot against the host's previous snapshot (`before`, at `beforeAt`).
 * The same shipper: the differences since then. A shipper that started after the previous snapshot (or
 * whose counts went backwards, a restart): everything since it started. No previous counts and a shipper
 * older than the previous snapshot: nothing (the counts span an unknown time).
 */
export function shippedStep(
  before: ShippedCounts | null,
  beforeAt: number | null,
  now: ShippedCounts | null,
  at: number,
): ShippedStep {
  const none: ShippedStep = { spanMs: null, deltas: {} };
  if (!now) return none;
  const startMs = now.since * 1000;
  const same =
    before !== null &&
    before.since === now.since &&
    !Object.entries(now.queries).some(
      ([q, c]) =>
        Object.hasOwn(before.queries, q) && (c.lines < before.queries[q]!.lines || c.bytes < before.queries[q]!.bytes),
    );
  if (same && beforeAt !== null && at > beforeAt) {
    const deltas: Record<string, ShippedCounter> = {};
    for (const [q, c] of Object.entries(now.queries)) {
      const b = Object.hasOwn(before.queries, q) ? before.queries[q]! : { lines: 0, bytes: 0 };
      deltas[q] = { lines: c.lines - b.lines, bytes: c.bytes - b.bytes };
    }
    return { spanMs: at - beforeAt, deltas };
  }
  const restarted = beforeAt !== null && startMs >= beforeAt;
  if (!restarted || at <= startMs) return none;
  return { spanMs: at - startMs, deltas: { ...now.queries } };
}

/**
 * Pure: the increments a shipped step adds to the window `w` (`windows.h2026120704`) of each scheduled
 * query's document: every query of the schedule gets the span (a query that shipped nothing weighs zero
 * over it), those that shipped get their lines and bytes.
 */
export function shippedIncrements(step: ShippedStep, query: string, w: string): Record<string, number> {
  if (step.spanMs === null) return {};
  const inc: Record<string, number> = { [`${w}.shippedSpanMs`]: step.spanMs };
  const d = Object.hasOwn(step.deltas, query) ? step.deltas[query]! : null;
  if (d && d.lines > 0) inc[`${w}.shippedLines`] = d.lines;
  if (d && d.bytes > 0) inc[`${w}.shippedBytes`] = d.bytes;
  return inc;
}

/** The volume counters of a queryStats window (the CPU ones are in telemetry/query-stats.ts). */
export interface VolumeWindow {
  snapshots?: number;
  outputBytes?: number;
  spanMs?: number;
  shippedLines?: number;
  shippedBytes?: number;
  shippedSpanMs?: number;
}

const DAY_MS = 86_400_000;

/** One query's log volume per host and day, and for the fleet that runs it. */
export interface QueryVolume {
  configVersion: string;
  query: string;
  /** Hosts it was measured on (host snapshots in one window, at most). */
  hosts: number;
  /** What shipped, per host and day (the shipper's count); null when no shipper counted. */
  shippedBytesPerHostDay: number | null;
  shippedLinesPerHostDay: number | null;
  /** What osquery returned (output_size: every row, before the differential), per host and day. */
  outputBytesPerHostDay: number | null;
  /** shipped x hosts: what the fleet on this version ships a day. */
  shippedBytesPerDay: number | null;
}

/** Pure: the volume of one query over some windows (those summarized: the current hour and the ones before). */
export function queryVolume(doc: { configVersion: string; query: string }, windows: VolumeWindow[]): QueryVolume {
  const total = (k: keyof VolumeWindow) => windows.reduce((n, w) => n + (w[k] ?? 0), 0);
  const hosts = Math.max(0, ...windows.map((w) => w.snapshots ?? 0));
  const shippedSpan = total('shippedSpanMs');
  const outputSpan = total('spanMs');
  const perDay = (n: number, span: number) => (span > 0 ? (n * DAY_MS) / span : null);
  const shippedBytesPerHostDay = perDay(total('shippedBytes'), shippedSpan);
  return {
    configVersion: doc.configVersion,
    query: doc.query,
    hosts,
    shippedBytesPerHostDay,
    shippedLinesPerHostDay: perDay(total('shippedLines'), shippedSpan),
    outputBytesPerHostDay: perDay(total('outputBytes'), outputSpan),
    shippedBytesPerDay: shippedBytesPerHostDay === null ? null : shippedBytesPerHostDay * hosts,
  };
}

/** A configuration version's log volume: the sum of its queries, per host and day and for its fleet. */
export interface VersionVolume {
  configVersion: string;
  hosts: number;
  shippedBytesPerHostDay: number;
  shippedBytesPerDay: number;
  /** Its queries, most bytes first. */
  queries: QueryVolume[];
}

/** Pure: per version, the queries' volumes summed (a query nothing counted adds nothing). */
export function versionVolumes(volumes: QueryVolume[]): VersionVolume[] {
  const byVersion = new Map<string, QueryVolume[]>();
  for (const v of volumes) byVersion.set(v.configVersion, [...(byVersion.get(v.configVersion) ?? []), v]);
  return [...byVersion.entries()]
    .map(([configVersion, qs]) => ({
      configVersion,
      hosts: Math.max(0, ...qs.map((q) => q.hosts)),
      shippedBytesPerHostDay: qs.reduce((n, q) => n + (q.shippedBytesPerHostDay ?? 0), 0),
      shippedBytesPerDay: qs.reduce((n, q) => n + (q.shippedBytesPerDay ?? 0), 0),
      queries: [...qs].sort(byBytes),
    }))
    .sort((a, b) => b.shippedBytesPerDay - a.shippedBytesPerDay || a.configVersion.localeCompare(b.configVersion));
}

/** Most shipped bytes a day first, then by name. */
export const byBytes = (a: QueryVolume, b: QueryVolume) =>
  (b.shippedBytesPerDay ?? -1) - (a.shippedBytesPerDay ?? -1) || a.query.localeCompare(b.query);
