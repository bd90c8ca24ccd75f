// The trust boundary of the log topic (pure): any VM can publish any line with any identity attributes,
// so every value read from a line is checked here before it can reach a host document, queryStats or an
// alert. A value outside these bounds is not written; the reason is counted per message (Rejections) and
// logged once per message by logHeartbeat, never once per value.

/** A line (or heartbeat) time further ahead of now than this is a wrong clock: it would pin lastLogAt ahead. */
export const MAX_FUTURE_MS = 5 * 60_000;

/**
 * A time older than this is not a delivery backlog (Pub/Sub keeps a message 31 days at most, fluentd
 * retries 72 hours before that): a wrong clock or a forged line.
 */
export const MAX_AGE_MS = 35 * 24 * 3_600_000;

/**
 * Firestore keeps times from year 1 to 9999; JavaScript dates end at 8.64e15 ms. A Date outside them fails
 * the whole commit it is in, locally, with an error that has no code.
 */
const LATEST_STORABLE_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

/** The times a value may carry, ms since the epoch (both ends included). */
export interface TimeWindow {
  earliest: number;
  latest: number;
}

/** Without a `now` to judge by (pure callers, tests): every time Firestore can store after the epoch. */
export const STORABLE_TIMES: TimeWindow = { earliest: 1, latest: LATEST_STORABLE_MS };

/** The times a line received at `now` may carry. */
export const timeWindow = (now: number): TimeWindow => ({ earliest: now - MAX_AGE_MS, latest: now + MAX_FUTURE_MS });

export const inWindow = (ms: number, window: TimeWindow): boolean =>
  Number.isFinite(ms) && ms >= Math.max(window.earliest, 1) && ms <= Math.min(window.latest, LATEST_STORABLE_MS);

/** Counters (CPU ms, bytes, executions) up to 2^53: sums of them stay exact, and no increment is absurd. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** A counter as osquery reports it: finite, not negative, at most MAX_COUNTER. */
export const isCounter = (n: number): boolean => Number.isFinite(n) && n >= 0 && n <= MAX_COUNTER;

/** A process id: Linux caps them at 2^22, Windows at 2^32. */
export const isPid = (n: number): boolean => Number.isInteger(n) && n > 0 && n < 2 ** 32;

/** A scheduled query's interval, seconds: osquery's maximum is a week. */
export const MAX_INTERVAL_SECONDS = 7 * 24 * 3_600;

/**
 * A query name's length in UTF-8 bytes. The name is a map key on the host (`querySchedule.queries.{name}`)
 * and part of a queryStats id (`{version}~{name}`, `/` and `%` escaped to three bytes each): both must stay
 * within Firestore's 1,500 bytes. osquery's `pack_{pack}_{query}` names are far shorter.
 */
export const MAX_QUERY_NAME_BYTES = 256;

/**
 * The queries one osquery_schedule snapshot may list. Their baseline is one map on the host document (at
 * most 1 MiB): 1,000 queries of the longest names and five counters each stay under 400 KB.
 */
export const MAX_QUERIES_PER_SNAPSHOT = 1_000;

/** Why a query name is not used as a key, or null when it can be. */
export function queryNameProblem(name: string): 'empty' | 'too-long' | 'reserved' | 'not-unicode' | null {
  if (name.length === 0) return 'empty';
  const bytes = Buffer.from(name, 'utf8');
  // A lone surrogate (JSON allows `\ud800`) is stored as U+FFFD: another key than the one read.
  if (bytes.toString('utf8') !== name) return 'not-unicode';
  if (bytes.length > MAX_QUERY_NAME_BYTES) return 'too-long';
  // Firestore reserves such map keys and document ids (and `__proto__` would not be a key of a plain object).
  if (/^__.*__$/.test(name)) return 'reserved';
  return null;
}

/** What was not trusted in a message, by reason: what logHeartbeat counts and logs. */
export type Rejection =
  /** A line that is not JSON, not an object, or has no usable time: not counted as a line. */
  | 'line-malformed'
  /** A line time ahead of now by more than MAX_FUTURE_MS. */
  | 'line-time-in-future'
  /** A line time older than MAX_AGE_MS. */
  | 'line-time-too-old'
  /** A heartbeat_at or snapshot time outside the window: the line counts, its telemetry does not. */
  | 'telemetry-time'
  /** A heartbeat whose pid, start_time or counters are out of range. */
  | 'heartbeat-value'
  /** An osquery_schedule snapshot with more than MAX_QUERIES_PER_SNAPSHOT queries: not used at all. */
  | 'schedule-too-many-queries'
  /** A schedule row whose query name is too long, reserved or not text: that row is skipped. */
  | 'query-name'
  /** A schedule row whose counters or interval are out of range: that row is skipped. */
  | 'query-value'
  /** The shipper's `shipped` counts on a snapshot (or one query's) out of range: not used. */
  | 'shipped-value'
  /** A host sent more telemetry within one write window than an instance keeps for it: the oldest went. */
  | 'telemetry-overflow';

export type Rejections = Partial<Record<Rejection, number>>;

export function reject(into: Rejections, reason: Rejection, n = 1): void {
  into[reason] = (into[reason] ?? 0) + n;
}

export function addRejections(into: Rejections, more: Rejections): void {
  for (const [reason, n] of Object.entries(more) as Array<[Rejection, number]>) reject(into, reason, n);
}
