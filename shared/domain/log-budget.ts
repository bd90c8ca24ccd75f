// The log budget (pure): a configuration version's shipped bytes per host and day against
// LOG_BYTES_PER_HOST_DAY (and, optionally, each of its queries against LOG_BYTES_PER_QUERY_HOST_DAY), and
// the logs.overBudget episode per version it opens and closes at an audit run's close. The episode's start
// is kept in logBudgets/{configVersion} while it is open, so a second evaluation opens nothing twice.
import { episodeKey, type EpisodeChange } from './alerts.js';
import { overBudget } from './cost-model.js';
import type { VersionVolume } from './log-volume.js';

/** The budget, bytes shipped per host and day; null: none (the default: no fleet-wide figure fits all). */
export interface LogBudget {
  bytesPerHostDay: number | null;
  /** Optional: any single query above this puts its version over budget too. */
  queryBytesPerHostDay: number | null;
}

export const NO_LOG_BUDGET: LogBudget = { bytesPerHostDay: null, queryBytesPerHostDay: null };

export const LOG_BUDGET_ALERT = 'logs.overBudget' as const;

const kib = (n: number) => `${Math.round(n / 1024).toLocaleString('en-US')} KiB`;

/** Pure: why a version is over budget (its total, or the queries above the per-query budget); null when not. */
export function overBudgetReason(v: VersionVolume, budget: LogBudget): string | null {
  const parts: string[] = [];
  if (overBudget(v.shippedBytesPerHostDay, budget.bytesPerHostDay))
    parts.push(`ships ${kib(v.shippedBytesPerHostDay)} per host a day (budget ${kib(budget.bytesPerHostDay!)})`);
  const queries = v.queries.filter((q) => overBudget(q.shippedBytesPerHostDay ?? 0, budget.queryBytesPerHostDay));
  if (queries.length > 0)
    parts.push(
      queries
        .slice(0, 5)
        .map((q) => `${q.query} ${kib(q.shippedBytesPerHostDay!)}`)
        .join(', ') + ` per host a day (per-query budget ${kib(budget.queryBytesPerHostDay!)})`,
    );
  return parts.length > 0 ? `${v.configVersion} ${parts.join('; ')}` : null;
}

/** The episode key: a version id may hold `/`, not a document id's character. */
export const budgetEpisodeKey = (configVersion: string, since: Date) =>
  episodeKey(LOG_BUDGET_ALERT, configVersion.replace(/%/g, '%25').replace(/\//g, '%2F'), since);

export interface LogBudgetPlan {
  /** The open episode's start after this evaluation (null: none open: the record is deleted). */
  since: Date | null;
  episodes: EpisodeChange[];
  changed: boolean;
}

/**
 * Pure: given the episode open for a version (its start, or null) and its volume now (null: nothing measured
 * in the windows summarized), the episode to open or close. Over budget with none open: opens one; under
 * budget (or no budget any more) with one open: closes it; otherwise nothing.
 */
export function planLogBudget(
  configVersion: string,
  open: Date | null,
  volume: VersionVolume | null,
  budget: LogBudget,
  now: Date,
): LogBudgetPlan {
  const reason = volume ? overBudgetReason(volume, budget) : null;
  if (reason && !open) {
    const details = {
      configVersion,
      value: Math.round(volume!.shippedBytesPerHostDay),
      threshold: budget.bytesPerHostDay,
      queryThreshold: budget.queryBytesPerHostDay,
      unit: 'bytes/host/day',
    };
    const dedupKey = budgetEpisodeKey(configVersion, now);
    const episode: EpisodeChange = {
      open: { kind: LOG_BUDGET_ALERT, severity: 'warning', dedupKey, host: null, reason, since: now, details },
    };
    return { since: now, episodes: [episode], changed: true };
  }
  if (!reason && open) {
    const dedupKey = budgetEpisodeKey(configVersion, open);
    const close = { kind: LOG_BUDGET_ALERT, instanceId: '', previousSince: open, at: now, dedupKey };
    return { since: null, episodes: [{ close }], changed: true };
  }
  return { since: open, episodes: [], changed: false };
}
