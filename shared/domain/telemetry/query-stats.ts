// Fleet statistics per scheduled query and configuration version (pure): the hosts' deltas as increments of
// hourly windows (queryStats documents), their histograms and percentiles, and a query's summary.
import type { QueryAlertKind } from '../alerts.js';
import { QUERY_COUNTERS, type ScheduleSnapshot } from './log-lines.js';
import { shippedIncrements, shippedStep } from '../log-volume.js';
import { scheduleStep, type ScheduleBaseline, type ScheduleStep } from './query-cost.js';

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
  /** Lines and message bytes the log shipper shipped, and the time they cover (shared/domain/log-volume.ts). */
  shippedLines?: number;
  shippedBytes?: number;
  shippedSpanMs?: number;
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
      for (const k of QUERY_COUNTERS) if (d[k] > 0) inc[`${w}.${k}`] = d[k];
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
    for (const k of ['snapshots', 'measured', 'denylisted', 'spanMs', ...QUERY_COUNTERS] as const) out[k] += w[k] ?? 0;
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
    // Log volume: the shipper's counts against the previous snapshot's, in the same documents' increments.
    const shipped = shippedStep(
      current?.shipped ?? null,
      current?.at.getTime() ?? null,
      snapshot.shipped ?? null,
      snapshot.at,
    );
    if (snapshot.shipped) step.next.shipped = snapshot.shipped;
    current = step.next;
    changed = true;
    const w = `windows.${windowOf(snapshot.at)}`;
    for (const inc of statsIncrements(step, configVersion))
      increments.push({ ...inc, increments: { ...inc.increments, ...shippedIncrements(shipped, inc.query, w) } });
  }
  return { next: changed ? current : null, increments };
}
