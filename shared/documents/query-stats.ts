// queryStats/{configVersion}~{query}: each scheduled query's cost per configuration version, in hourly windows
// of increments from every host's osquery_schedule snapshots.
import { z } from 'zod';
import type { QueryStatsDoc } from '../domain/telemetry.js';
import { absentAsNull, readsAs, timestamp, type DocumentDefinition } from './document.js';

const histogram = z
  .record(z.string(), z.number())
  .meta({ key: 'b<k>' })
  .describe('per-host ms per execution, log-scale buckets (8 per octave): bucket -> host snapshots');

/** One hour's counters; any may be missing (only what some increment touched is there). */
export const queryWindow = z
  .object({
    snapshots: z.number().describe('host snapshots that listed the query'),
    measured: z.number().describe("host snapshots where it ran (the histograms' sample count)"),
    executions: z.number().describe('executions'),
    outputBytes: z.number().describe('output'),
    userMs: z.number().describe('user CPU'),
    systemMs: z.number().describe('system CPU'),
    wallMs: z.number().describe('wall time'),
    spanMs: z.number().describe('the time those totals cover, summed over host snapshots'),
    denylisted: z.number().describe('host snapshots where the watchdog had it denylisted'),
    user: histogram,
    system: histogram,
    shippedLines: z.number().describe("lines the log shipper shipped (its count, not osquery's)"),
    shippedBytes: z.number().describe('message bytes the log shipper shipped: data and attributes'),
    shippedSpanMs: z.number().describe('the time the shipped totals cover, summed over host snapshots'),
  })
  .partial();

export const queryStatsDocument = readsAs<QueryStatsDoc>()(
  z.object({
    configVersion: z.string().describe("the hosts' configuration version (`none`: not recorded yet)"),
    query: z.string().describe("the query's name in the schedule"),
    interval: absentAsNull(z.number()).describe('its schedule interval, seconds (absent: not known)'),
    windows: z
      .record(z.string(), queryWindow)
      .meta({ key: 'hYYYYMMDDHH' })
      .default({})
      .describe('UTC hours of snapshot time (older than 48 hours are deleted)'),
    alerts: z
      .partialRecord(z.enum(['query.denylisted', 'query.expensive']), timestamp)
      .meta({ key: 'kind' })
      .optional()
      .describe('open query alert episodes: kind -> when it began (written by the run close)'),
  }),
);

/** The denylisted counts of some windows alone (the rollout's denylistedQueries gate reads only those). */
export const denylistedRow = z.object({
  query: queryStatsDocument.shape.query,
  windows: z.record(z.string(), queryWindow.pick({ denylisted: true })).optional(),
});

/** The shipped counters of some windows alone (the rollout's logVolume gate reads only those). */
export const shippedRow = z.object({
  query: queryStatsDocument.shape.query,
  windows: z.record(z.string(), queryWindow.pick({ shippedBytes: true, shippedSpanMs: true })).optional(),
});

/** logBudgets/{configVersion}: an open logs.overBudget episode of a version (deleted when it closes). */
export const logBudgetDocument = z.object({
  configVersion: z.string().describe('the configuration version over its log budget'),
  since: timestamp.describe('when its logs.overBudget episode began (the episode key holds it)'),
});

export const QUERY_STATS_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'queryStats/{configVersion}~{query}',
    description:
      "Each scheduled query's cost per configuration version (`/` in a name escaped as `%2F`): logHeartbeat " +
      'adds increments per window (one merge of FieldValue.increment per document per write window); the ' +
      "audit run's close summarizes them, keeps the query alerts and deletes expired windows.",
    schema: queryStatsDocument,
  },
  {
    path: 'logBudgets/{configVersion}',
    description:
      "A version's open logs.overBudget episode (`/` in the id escaped as `%2F`): created by the audit run's " +
      'close when its shipped bytes per host and day go over LOG_BYTES_PER_HOST_DAY (or one query over ' +
      'LOG_BYTES_PER_QUERY_HOST_DAY), deleted when it resolves, in the transaction that records the episode.',
    schema: logBudgetDocument,
  },
];
