// osquery's cost at fleet level: the query alerts and the status page's snapshot at each audit run's
// close, and what `osq-orch queries` and `osq-orch hosts --top` read.
import { logBudget, prices, queryAlertThresholds } from '../config.js';
import { log } from '../log.js';
import {
  recentWindows,
  summarizeQuery,
  type QueryStatsDoc,
  type QuerySummary,
} from '../domain/telemetry/query-stats.js';
import {
  LOG_VOLUME_MESSAGE,
  queryVolume,
  versionVolumes,
  type QueryVolume,
  type VersionVolume,
} from '../domain/log-volume.js';
import { planLogBudget } from '../domain/log-budget.js';
import { planQueryStats } from '../domain/telemetry/query-alerts.js';
import {
  byCost,
  logCostStatus,
  osqueryCostStatus,
  STATUS_TOP,
  type HostCost,
  type OsqueryCostStatus,
} from '../domain/telemetry/cost-status.js';
import * as telemetry from '../adapters/telemetry.js';
import { deliverAlerts } from './alerts.js';

/**
 * At an audit run's close: every queryStats document's summary, its query.denylisted and query.expensive
 * episodes opened or closed (kept on the document, so a second evaluation sends nothing twice), its
 * expired windows deleted; then status/osquery for the status page. Returns the snapshot.
 */
export async function evaluateQueryCosts(runId: string, now = new Date()): Promise<OsqueryCostStatus> {
  const thresholds = queryAlertThresholds();
  const summaries: QuerySummary[] = [];
  const alertKeys: string[] = [];
  const listed = await telemetry.listQueryStats();
  for (const { id, doc } of listed) {
    const planned = planQueryStats(id, doc, now, thresholds);
    // Most documents change nothing at a run's close: only those that do are read again and written, in a transaction.
    if (!planned.changed) {
      summaries.push(planned.summary);
      continue;
    }
    const { plan, alertKeys: keys } = await telemetry.applyQueryStatsPlan(id, (d) =>
      planQueryStats(id, d, now, thresholds),
    );
    alertKeys.push(...keys);
    summaries.push(plan?.summary ?? summarizeQuery(doc, now));
  }
  const volumes = recentVersionVolumes(listed, now);
  alertKeys.push(...(await evaluateLogBudgets(volumes, now)));
  await deliverAlerts(alertKeys);
  const [cpu, memory] = await Promise.all([
    telemetry.topHostsByCost('cpu', STATUS_TOP),
    telemetry.topHostsByCost('memory', STATUS_TOP),
  ]);
  const status = {
    ...osqueryCostStatus(runId, now, { cpu, memory }, summaries),
    logs: logCostStatus(volumes, prices()),
  };
  await telemetry.writeOsqueryStatus(status);
  // One line per version for Cloud Monitoring's log-volume panel (the log-based metric log_volume): the
  // figure exists only here, at the run's close, and a log line needs no Monitoring client nor role.
  for (const v of volumes)
    log.info(
      {
        runId,
        configVersion: v.configVersion,
        hosts: v.hosts,
        shippedBytesPerHostDay: Math.round(v.shippedBytesPerHostDay),
        shippedBytesPerDay: Math.round(v.shippedBytesPerDay),
      },
      LOG_VOLUME_MESSAGE,
    );
  if (alertKeys.length > 0) log.info({ runId, alerts: alertKeys.length }, 'query alerts opened or closed');
  return status;
}

/** Every version's log volume over the current and the previous hour (the windows of `osq-orch queries`). */
function recentVersionVolumes(listed: Array<{ doc: QueryStatsDoc }>, now: Date): VersionVolume[] {
  const windows = recentWindows(now, 1);
  return versionVolumes(
    listed.map(({ doc }) =>
      queryVolume(
        doc,
        windows.map((w) => doc.windows[w] ?? {}),
      ),
    ),
  );
}

/**
 * logs.overBudget at a run's close: each version's shipped bytes per host and day over the last hour (the
 * windows of `osq-orch queries`) against the budget; an episode per version opened or closed, its start kept
 * in logBudgets/{version}. Only a version whose verdict changes is written. Returns the alert keys.
 */
async function evaluateLogBudgets(byVersion: VersionVolume[], now: Date): Promise<string[]> {
  const budget = logBudget();
  const volumes = new Map(byVersion.map((v) => [v.configVersion, v]));
  const open = await telemetry.openLogBudgets();
  const keys: string[] = [];
  for (const version of new Set([...volumes.keys(), ...open.keys()])) {
    const plan = (since: Date | null) => planLogBudget(version, since, volumes.get(version) ?? null, budget, now);
    if (!plan(open.get(version) ?? null).changed) continue;
    keys.push(...(await telemetry.applyLogBudgetPlan(version, plan)));
  }
  return keys;
}

/** `osq-orch queries`: every query of a version (or of all), summarized over the last hours, by cost. */
export async function queryCosts(configVersion?: string, now = new Date(), hours = 1): Promise<QuerySummary[]> {
  const docs = await telemetry.listQueryStats(configVersion);
  return docs.map(({ doc }) => summarizeQuery(doc, now, hours)).sort(byCost);
}

/** `osq-orch hosts --top`: the n in-scope hosts where osqueryd costs most. */
export function topHosts(by: 'cpu' | 'memory', n: number): Promise<HostCost[]> {
  return telemetry.topHostsByCost(by, n);
}

/**
 * `osq-orch queries`: each query's log volume (what the shipper shipped, per host and day, and osquery's
 * output_size beside it) over the same windows as its CPU summary.
 */
export async function queryVolumes(configVersion?: string, now = new Date(), hours = 1): Promise<QueryVolume[]> {
  const docs = await telemetry.listQueryStats(configVersion);
  const windows = recentWindows(now, hours);
  return docs.map(({ doc }) =>
    queryVolume(
      doc,
      windows.map((w) => doc.windows[w] ?? {}),
    ),
  );
}
