// What each scheduled query costs on one host (pure): an osquery_schedule snapshot against the host's last
// one (its baseline, kept on the host document), as per-query deltas.
import { HEARTBEAT_QUERY } from '../../osquery/log-routing.js';
import type { ShippedCounts } from '../log-volume.js';
import { QUERY_COUNTERS, sameWorker, type ScheduleSnapshot, type WorkerId } from './log-lines.js';

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
  /** The shipper's counts on that snapshot (log volume is measured against them); absent: none. */
  shipped?: ShippedCounts | null;
  /**
   * The queries that snapshot said the watchdog denylisted (a silence's evidence), the heartbeat first, at most
   * MAX_DENYLISTED_KEPT; absent: a baseline written before it was kept.
   */
  denylisted?: string[];
}

/**
 * How many denylisted query names a host keeps: enough to name what the watchdog killed the worker for, and
 * bounded whatever a VM claims (each name was checked where the snapshot was read: trust.ts).
 */
export const MAX_DENYLISTED_KEPT = 20;

/** Pure: the snapshot's denylisted queries as the host keeps them: the heartbeat first, then by name, bounded. */
export function denylistedOf(queries: ScheduleSnapshot['queries']): string[] {
  const names = Object.entries(queries)
    .filter(([, c]) => c.denylisted)
    .map(([name]) => name)
    .sort((a, b) => Number(b === HEARTBEAT_QUERY) - Number(a === HEARTBEAT_QUERY) || (a < b ? -1 : a > b ? 1 : 0));
  return names.slice(0, MAX_DENYLISTED_KEPT);
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

/** Pure: an osquery_schedule snapshot against the host's baseline -> per-query deltas and the next baseline. */
export function scheduleStep(baseline: ScheduleBaseline | null, snapshot: ScheduleSnapshot): ScheduleStep {
  if (baseline && snapshot.at <= baseline.at.getTime()) return { kind: 'stale', spanMs: null, next: null, deltas: [] };
  let kind: ScheduleStep['kind'] = baseline ? 'interval' : 'first';
  if (baseline) {
    const otherWorker = baseline.worker && snapshot.worker && !sameWorker(baseline.worker, snapshot.worker);
    // hasOwn: a query named `constructor` is not Object.prototype's.
    const backwards = Object.entries(snapshot.queries).some(([name, c]) => {
      return Object.hasOwn(baseline.queries, name) && QUERY_COUNTERS.some((k) => c[k] < baseline.queries[name]![k]);
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
    if (before) for (const k of QUERY_COUNTERS) d[k] -= before[k];
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
  const next = {
    at: new Date(snapshot.at),
    worker: snapshot.worker,
    queries,
    denylisted: denylistedOf(snapshot.queries),
  };
  return { kind, spanMs, next, deltas };
}
