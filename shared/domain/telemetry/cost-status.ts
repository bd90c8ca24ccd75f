// Where osqueryd costs most (pure): the hosts and queries the status page lists, as status/osquery keeps them.
import type { QuerySummary } from './query-stats.js';
import { monthlyLogCost, type Prices } from '../cost-model.js';
import { byBytes, type VersionVolume } from '../log-volume.js';

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
  /** What the fleet's logs cost (absent: written before it was measured). */
  logs?: LogCostStatus;
}

/** One query of a version by the bytes it ships, for the status page. */
export interface LogVolumeRow {
  configVersion: string;
  query: string;
  hosts: number;
  shippedBytesPerHostDay: number;
  shippedBytesPerDay: number;
  /** Its share of the projected monthly log cost (marginal: no free tier). */
  usdPerMonth: number;
}

/** status/osquery.logs: the queries that ship most and the fleet's projected monthly log cost. */
export interface LogCostStatus {
  /** Every version's queries, most bytes a day first (at most STATUS_TOP; those the shipper counted). */
  topQueries: LogVolumeRow[];
  /** What the fleet ships a day (every version, every query counted). */
  bytesPerDay: number;
  /** Its projected monthly cost: Pub/Sub and the SIEM, Pub/Sub's free tier subtracted. */
  usdPerMonth: number;
  pubsubUsdPerMonth: number;
  siemUsdPerMonth: number;
}

/** Pure: the status page's log figures from every version's volume at the prices in force. */
export function logCostStatus(volumes: VersionVolume[], prices: Prices): LogCostStatus {
  const bytesPerDay = volumes.reduce((n, v) => n + v.shippedBytesPerDay, 0);
  const fleet = monthlyLogCost(bytesPerDay, prices, true);
  const topQueries = volumes
    .flatMap((v) => v.queries)
    .filter((q) => q.shippedBytesPerDay !== null && q.shippedBytesPerHostDay !== null)
    .sort(byBytes)
    .slice(0, STATUS_TOP)
    .map((q) => ({
      configVersion: q.configVersion,
      query: q.query,
      hosts: q.hosts,
      shippedBytesPerHostDay: q.shippedBytesPerHostDay!,
      shippedBytesPerDay: q.shippedBytesPerDay!,
      usdPerMonth: monthlyLogCost(q.shippedBytesPerDay!, prices).usd,
    }));
  return {
    topQueries,
    bytesPerDay,
    usdPerMonth: fleet.usd,
    pubsubUsdPerMonth: fleet.pubsubUsd,
    siemUsdPerMonth: fleet.siemUsd,
  };
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
