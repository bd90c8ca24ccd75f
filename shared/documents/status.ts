// status/fleet, status/fleet/projects/{project} and status/osquery: the snapshots the audit leaves for the
// status page, so a page view never reads the hosts collection.
import { z } from 'zod';
import type {
  FleetStatus,
  HistoryPoint,
  HostEntry,
  HostList,
  ProjectStatus,
  RunSummary,
  SyslogSummary,
} from '../domain/status.js';
import { SYSLOG_STATUSES } from '../domain/syslog.js';
import type { OsqueryCostStatus, QuerySummary } from '../domain/telemetry.js';
import { readsAs, type DocumentDefinition } from './document.js';
import { hostState } from './hosts.js';
import { stateCounts } from './audits.js';

const iso = z.string().describe('ISO 8601');
const perKey = (key: string) => z.record(z.string(), z.number()).meta({ key });
const zoneCounts = z.record(z.string(), stateCounts).meta({ key: 'zone' }).describe('hosts per state per zone');

const hostEntry = readsAs<HostEntry>()(
  z.object({
    instanceId: z.string().describe('the Compute instance id'),
    name: z.string().describe("the VM's name"),
    project: z.string().describe('its project'),
    zone: z.string().describe('its zone'),
    state: hostState.describe('its state'),
    reason: z.string().nullable().describe('why'),
    since: iso.describe('when the host entered its state (ISO 8601)'),
    cause: z.string().optional().describe('why it is quiet (absent: it is not)'),
  }),
);

const hostList = readsAs<HostList>()(
  z.object({
    total: z.number().describe('every host of the kind, whatever the cap'),
    byKey: perKey('state or reason').describe('needing action: per state; exempt: per reason'),
    hosts: z.array(hostEntry).describe('at most the cap (the evidence report lists them all)'),
    causes: perKey('cause')
      .optional()
      .describe('needing action: silent hosts per cause, and hosts held by a backlog (`pipeline-behind`)'),
  }),
);

const syslogSummary = readsAs<SyslogSummary>()(
  z
    .object({
      counts: z
        .partialRecord(z.enum(SYSLOG_STATUSES), z.number())
        .meta({ key: 'arriving|missing|off' })
        .describe('hosts per syslog status'),
      missing: z
        .array(
          z.object({
            instanceId: z.string().describe('the Compute instance id'),
            name: z.string().describe("the VM's name"),
            project: z.string().describe('its project'),
            zone: z.string().describe('its zone'),
            seenAt: z.string().nullable().describe('when its syslog results were last seen (null: never)'),
          }),
        )
        .describe('hosts whose syslog results are missing, longest first (capped)'),
    })
    .describe('syslog ingestion on the hosts expected to report (absent in snapshots before syslog ingestion)'),
);

export const projectStatus = readsAs<ProjectStatus>()(
  z.object({
    project: z.string().describe('the project (the document id)'),
    runId: z.string().describe('the audit run that wrote it'),
    at: iso.describe("the audit's clock: a snapshot never replaces a newer one"),
    counts: stateCounts.describe('hosts per state'),
    zones: zoneCounts,
    zoneVersions: z
      .record(z.string(), z.record(z.string(), stateCounts).meta({ key: 'version' }))
      .meta({ key: 'zone' })
      .describe("in-scope hosts per zone, per configuration version (`none`), per state: the rollout's denominators"),
    configVersions: perKey('version').describe('in-scope hosts per configuration version'),
    osqueryVersions: perKey('version').describe('in-scope hosts per osquery version (`none`: not inventoried)'),
    needingAction: hostList.describe('silent, noncompliant and blocked hosts'),
    exempt: hostList.describe('exempt hosts'),
    syslog: syslogSummary.optional(),
  }),
);

const historyPoint = readsAs<HistoryPoint>()(
  z.object({
    runId: z.string().describe('the run'),
    at: iso.describe('when the run started'),
    status: z.string().describe("the run's status"),
    coverage: z.number().nullable().describe('its coverage'),
    reporting: z.number().describe('hosts reporting'),
    expected: z.number().describe('hosts expected to report (in scope, not stopped)'),
  }),
);

const runSummary = readsAs<RunSummary>()(
  z.object({
    runId: z.string().describe('the run'),
    startedAt: iso.describe('when it started'),
    finishedAt: iso.nullable().describe('when it closed'),
    status: z.string().describe("the run's status (audits/{runId}.status)"),
    coverage: z.number().nullable().describe('reporting / expected'),
    counts: stateCounts.describe('hosts per state'),
    projects: z
      .record(
        z.string(),
        z.object({
          status: z.string().describe("the project's result"),
          error: z.string().nullish().describe('why it failed, or was skipped'),
        }),
      )
      .meta({ key: 'project' })
      .describe("each project's result"),
  }),
);

export const fleetStatus = readsAs<FleetStatus>()(
  z.object({
    run: runSummary
      .extend({
        reporting: z.number().describe('hosts reporting'),
        expected: z.number().describe('hosts expected to report (in scope, not stopped)'),
      })
      .describe('the run it is from, with its coverage parts'),
    projects: z
      .record(
        z.string(),
        z.object({
          runStatus: z.string().describe("the project's result in the run"),
          error: z.string().nullable().describe('why it failed, or was skipped'),
          snapshotRunId: z.string().nullable().describe('the run of its latest snapshot (possibly an earlier one)'),
          snapshotAt: z.string().nullable().describe("that snapshot's time"),
          counts: stateCounts.describe('hosts per state'),
          zones: zoneCounts,
        }),
      )
      .meta({ key: 'project' })
      .describe("each project of the run: its result and its latest snapshot's counts"),
    configVersions: perKey('version').describe('in-scope hosts per configuration version'),
    osqueryVersions: perKey('version').describe('in-scope hosts per osquery version'),
    needingAction: hostList.describe('silent, noncompliant and blocked hosts, most urgent first'),
    exempt: hostList.describe('exempt hosts'),
    syslog: syslogSummary.optional(),
    history: z.array(historyPoint).describe("the coverage chart's runs (a week of them)"),
    publishedAt: iso.describe('when it was written'),
  }),
);

const querySummary = readsAs<QuerySummary>()(
  z.object({
    configVersion: z.string().describe('the configuration version'),
    query: z.string().describe("the query's name"),
    interval: z.number().nullable().describe('its schedule interval (s)'),
    hours: z.number().describe('hours summarized besides the current one'),
    hosts: z.number().describe('host snapshots that listed it in one window, at most'),
    samples: z.number().describe("host snapshots where it ran (the percentiles' sample count)"),
    executionsPerHostHour: z.number().describe('executions per host and hour'),
    outputBytesPerHostHour: z.number().describe('output per host and hour'),
    executionsPerHour: z.number().describe('executions per hour, fleet-wide'),
    outputBytesPerHour: z.number().describe('output per hour, fleet-wide'),
    userP50: z.number().nullable().describe('user ms per execution, p50 across host snapshots'),
    userP95: z.number().nullable().describe('user ms per execution, p95'),
    systemP50: z.number().nullable().describe('system ms per execution, p50'),
    systemP95: z.number().nullable().describe('system ms per execution, p95'),
    cpuP50: z.number().nullable().describe("user + system at p50: Fleet's performance indicator"),
    cpuP95: z.number().nullable().describe('user + system at p95'),
    denylistedHosts: z.number().describe('hosts that had it denylisted'),
    class: z
      .enum(['minimal', 'considerable', 'excessive', 'undetermined'])
      .describe("Fleet's performance impact class, from cpuP50"),
  }),
);

const costRow = z.object({
  instanceId: z.string().describe('the Compute instance id'),
  name: z.string().describe("the VM's name"),
  project: z.string().describe('its project'),
  zone: z.string().describe('its zone'),
  configVersion: z.string().nullable().describe('its configuration version'),
  cpuPercent: z.number().nullable().describe('osqueryd CPU over its last interval (percent of a core)'),
  rssBytes: z.number().describe("osqueryd's resident memory"),
  at: iso.describe('the heartbeat it was measured at'),
  alerting: z.boolean().describe('a host.performance (source osquery) episode is open'),
});

export const osqueryStatus = readsAs<OsqueryCostStatus>()(
  z.object({
    runId: z.string().describe('the audit run whose close wrote it'),
    at: iso,
    hours: z.number().describe('the summaries cover the current hour and this many before it'),
    topHosts: z
      .object({
        cpu: z.array(costRow).describe('by CPU'),
        memory: z.array(costRow).describe('by memory'),
      })
      .describe('the hosts where osqueryd costs most, by CPU and by memory'),
    topQueries: z.array(querySummary).describe('the most expensive queries of every version, by cost'),
    queries: z.number().describe('queries (per version) with statistics in those hours'),
    logs: z
      .object({
        topQueries: z
          .array(
            z.object({
              configVersion: z.string().describe('the configuration version'),
              query: z.string().describe("the query's name"),
              hosts: z.number().describe('hosts it was measured on'),
              shippedBytesPerHostDay: z.number().describe('bytes the shipper shipped per host and day'),
              shippedBytesPerDay: z.number().describe('the same for the hosts that run it'),
              usdPerMonth: z.number().describe('its projected monthly log cost (USD, no free tier)'),
            }),
          )
          .describe('the queries that ship most bytes a day, every version (at most 10)'),
        bytesPerDay: z.number().describe('what the fleet ships a day, every version and query'),
        usdPerMonth: z.number().describe("the fleet's projected monthly log cost, USD (Pub/Sub and the SIEM)"),
        pubsubUsdPerMonth: z.number().describe("of which Pub/Sub's throughput (its free tier subtracted)"),
        siemUsdPerMonth: z.number().describe("of which the SIEM's ingestion"),
      })
      .optional()
      .describe('what the logs cost, over the same hours (absent: written before it was measured)'),
  }),
);

export const STATUS_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'status/fleet',
    description:
      "What the status page reads: written once per audit run when it closes, merging the run's project " +
      'snapshots, with the coverage history.',
    schema: fleetStatus,
  },
  {
    path: 'status/fleet/projects/{project}',
    description:
      "One project's snapshot, written by its audit shard before the result is recorded (a newer one is " +
      'never replaced); the rollout controller reads its zoneVersions.',
    schema: projectStatus,
  },
  {
    path: 'status/osquery',
    description: "osquery's cost for the status page (top hosts and queries), written at each audit run's close.",
    schema: osqueryStatus,
  },
];
