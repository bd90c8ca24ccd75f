// Where osqueryd costs most (pure): the hosts and queries the status page lists, as status/osquery keeps them.
import type { QuerySummary } from './query-stats.js';

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
