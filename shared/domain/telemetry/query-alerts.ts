// Query alerts (pure): query.expensive and query.denylisted from a query's fleet summary, their episodes kept
// on its queryStats document, evaluated at each audit run's close with the windows to expire.
import { episodeKey, type EpisodeChange, type QueryAlertKind } from '../alerts.js';
import {
  CLASS_THRESHOLDS_MS,
  expiredWindows,
  QUERY_STATS_KEEP_HOURS,
  summarizeQuery,
  type QueryStatsDoc,
  type QuerySummary,
} from './query-stats.js';

export type { QueryAlertKind };

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
      `${s.query} (${s.configVersion}) costs ${Math.round(s.cpuP95)} ms CPU per run at p95 ` +
      `(threshold ${thresholds.expensiveP95Ms} ms)`;
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
