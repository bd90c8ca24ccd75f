// hosts/{instanceId} and hosts/{instanceId}/transitions: one document per VM, and its state changes.
import { z } from 'zod';
import { HOST_STATES, type Host, type Transition } from '../domain/host.js';
import { SILENCE_CAUSES } from '../domain/silence-cause.js';
import type { OpenIncident } from '../domain/incident.js';
import type { SyslogEvidence } from '../domain/syslog.js';
import type { RunningState } from '../domain/drift.js';
import type { SpoofedState } from '../domain/heartbeat-identity.js';
import type { OsquerydState, ScheduleBaseline } from '../domain/telemetry.js';
import { MAX_DENYLISTED_KEPT } from '../domain/telemetry/query-cost.js';
import { absentAsNull, rebuildable, readsAs, timestamp, type DocumentDefinition } from './document.js';

const count = z.number();

export const hostState = z.enum(HOST_STATES);

/** hosts/{id}.syslog: logHeartbeat's evidence of syslog ingestion (shared/domain/syslog.ts). */
export const syslogEvidence = readsAs<SyslogEvidence>()(
  z
    .object({
      scheduledAt: timestamp.describe('the newest schedule snapshot that lists the syslog query'),
      seenAt: timestamp.nullable().describe('the newest snapshot whose syslog query returned rows (null: none yet)'),
    })
    .describe("syslog ingestion's evidence, written by logHeartbeat; absent until a snapshot says"),
);

/** hosts/{id}.osqueryd: the osquery worker's cost at its last heartbeat, and what the next one is measured against. */
export const osquerydState = readsAs<OsquerydState>()(
  z
    .object({
      cpuPercent: z
        .number()
        .nullable()
        .describe('worker CPU over the last heartbeat interval, percent of one core (null: first sample, restart)'),
      rssBytes: count.describe('resident memory at the heartbeat'),
      at: timestamp.describe("the heartbeat's time"),
      pid: count.describe("the worker's pid (a change is a restart)"),
      startTime: count.describe("the worker's start time, seconds since the epoch"),
      userMs: count.describe('cumulative user CPU, the baseline of the next interval'),
      systemMs: count.describe('cumulative system CPU, the baseline of the next interval'),
      cpuOver: count.describe('consecutive measured intervals above the CPU threshold'),
      restarts: count
        .optional()
        .describe('consecutive heartbeats from a new worker (0 after a measured interval): a crash loop'),
      episode: absentAsNull(
        z.object({
          since: timestamp.describe('when it began'),
          cause: z.enum(['cpu', 'memory', 'cpu+memory']).describe('what is over its threshold'),
        }),
      ).describe('the open host.performance (source osquery) episode (null or absent: none)'),
    })
    .describe("osqueryd's own cost: the contract's {cpuPercent, rssBytes, at}, and the next heartbeat's baseline"),
);

/** hosts/{id}.running: what osqueryd really runs, from its own heartbeat (shared/domain/drift.ts). */
export const runningState = readsAs<RunningState>()(
  z
    .object({
      osqueryVersion: z.string().nullable().describe('osquery_info.version of the running osqueryd'),
      configVersion: z
        .string()
        .nullable()
        .describe('the `config_version` decoration: the configuration osqueryd loaded (null: not stamped)'),
      configValid: z.boolean().nullable().describe('osquery_info.config_valid (false: a broken configuration)'),
      startTime: count.nullable().describe("the worker's start, seconds since the epoch"),
      watcher: z.boolean().nullable().describe('a watchdog watches the worker (osquery_info.watcher > 0)'),
      at: timestamp.describe('the time of the heartbeat line that proved it'),
      driftSince: timestamp
        .nullable()
        .describe('when what runs was first seen to differ from what OS Config applied (null: it matches)'),
      drift: z
        .string()
        .nullable()
        .describe('why: `config-version:{running}!={applied}`, `osquery-version:...`, `config-invalid`'),
      driftedSince: timestamp.nullable().describe('the open host.drifted episode began then (null: none)'),
    })
    .describe("what osqueryd really runs, written by logHeartbeat from osquery's own heartbeat"),
);

/** hosts/{id}.spoofed: heartbeats naming this host whose identity token is not its own (host.spoofed). */
export const spoofedState = readsAs<SpoofedState>()(
  z
    .object({
      since: timestamp.describe("the first forged heartbeat's time: the host.spoofed episode's start"),
      lastAt: timestamp.describe('the newest forged heartbeat recorded'),
      reason: z
        .enum([
          'token-malformed',
          'token-signature',
          'token-expired',
          'token-audience',
          'token-not-compute',
          'instance-mismatch',
          'project-mismatch',
          'zone-mismatch',
        ])
        .describe('why the token does not prove this host (docs/heartbeat.md: Whose line is it)'),
      sender: z
        .object({
          instanceId: z.string().describe('the instance id Google signed'),
          project: z.string().describe('its project'),
          zone: z.string().describe('its zone'),
          name: z.string().nullable().describe('its name'),
        })
        .nullable()
        .describe("the VM the token was issued to, when Google's signature holds (null: unknown)"),
      lines: count.describe('forged heartbeats recorded in the episode (at most one write per window)'),
      resolvedAt: timestamp
        .nullable()
        .describe('when a verified heartbeat resolved the episode (null: open), an hour after the last forged one'),
    })
    .describe('the host.spoofed episode, open or the last one resolved; absent: never spoofed'),
);

/** hosts/{id}.unsignedHeartbeats: heartbeats without an identity token (HEARTBEAT_UNSIGNED). */
export const unsignedHeartbeats = z
  .object({
    count: count.describe('heartbeats without an identity token received so far (counted per write window)'),
    lastAt: timestamp.describe('the newest of them'),
  })
  .describe('heartbeats without an identity token: accepted or not by HEARTBEAT_UNSIGNED; absent: none');

/** hosts/{id}.querySchedule: the last osquery_schedule snapshot's counters, per query. */
export const scheduleBaseline = readsAs<ScheduleBaseline>()(
  z
    .object({
      at: timestamp.describe("the snapshot's time"),
      worker: z
        .object({ pid: count.describe("the worker's pid"), startTime: count.describe("the worker's start time (s)") })
        .nullable()
        .describe('the worker that counted them (a new worker counts from zero)'),
      queries: z
        .record(
          z.string(),
          z.object({
            executions: count.describe('executions so far'),
            outputBytes: count.describe('output so far'),
            userMs: count.describe('user CPU so far'),
            systemMs: count.describe('system CPU so far'),
            wallMs: count.describe('wall time so far'),
          }),
        )
        .meta({ key: 'query' })
        .describe("each scheduled query's cumulative counters"),
      shipped: z
        .object({
          since: count.describe('when the shipper started (s): a restart counts from zero'),
          queries: z
            .record(
              z.string(),
              z.object({
                lines: count.describe('lines shipped so far'),
                bytes: count.describe('message bytes so far'),
              }),
            )
            .meta({ key: 'query' })
            .describe('per osquery_name'),
        })
        .nullable()
        .optional()
        .describe("the log shipper's counts stamped on that snapshot (absent: a shipper that does not count)"),
      denylisted: z
        .array(z.string())
        .max(MAX_DENYLISTED_KEPT)
        .optional()
        .describe(
          'the queries that snapshot says the watchdog denylisted, `heartbeat` first, ' +
            `at most ${MAX_DENYLISTED_KEPT} (a silence's evidence; absent: written before it was kept)`,
        ),
    })
    .describe('the schedule baseline the next snapshot is measured against, written by logHeartbeat'),
);

/** hosts/{id}.openIncidents: Cloud Monitoring incidents open on the VM (monitoringAlert). */
export const openIncident = readsAs<OpenIncident>()(
  z.object({
    incidentId: z.string().describe("Cloud Monitoring's incident id"),
    policy: z.string().nullable().describe('the alerting policy'),
    condition: z.string().nullable().describe("the policy's condition"),
    metric: z.string().nullable().describe('the metric type'),
    observed: z.string().nullable().describe('the observed value'),
    threshold: z.string().nullable().describe("the condition's threshold"),
    startedAt: timestamp.nullable().describe('when the incident began'),
    url: z.string().nullable().describe("the incident's console link"),
  }),
);

const identity = {
  instanceId: z.string().describe("the numeric Compute instance id, as a string (also the document's id)"),
  name: z.string().describe("the VM's name"),
  project: z.string().describe('its project id'),
  zone: z.string().describe('its zone, the short name (`us-central1-a`)'),
};

/** The fields the audit compares and the evidence report lists (the rest is derived). */
const record = {
  name: identity.name,
  project: identity.project,
  zone: identity.zone,
  state: hostState.describe('one of the host states (docs/contracts.md: Host states)'),
  reason: z
    .string()
    .nullable()
    .describe('machine-readable why (`gke-node`, `no-agent-detected`, `resource-execution-errors:install-osquery`)'),
  stateSince: timestamp.describe('when `state` last changed'),
  lastLogAt: timestamp.nullable().describe('the newest osquery log line seen for this VM; only logHeartbeat writes it'),
  osqueryVersion: z.string().nullable().describe('from OS Config inventory'),
  configVersion: z.string().nullable().describe('the configuration version the VM reported compliant with'),
  syslog: rebuildable('syslog', syslogEvidence),
  cause: z
    .enum(SILENCE_CAUSES)
    .nullish()
    .describe("why the host is quiet, the audit's diagnosis (docs/heartbeat.md); null or absent: it is not"),
};

/** A host as the orchestrator decides it: what vmLifecycle, the audit and logHeartbeat read and write. */
export const host = readsAs<Host>()(
  z.object({
    instanceId: identity.instanceId,
    ...record,
    inScope: z.boolean().describe('false only for `exempt` and `deleted` (queries filter on it)'),
    updatedAt: timestamp.describe('last write'),
  }),
);

/** A host as logHeartbeat reads it: the host and osquery's telemetry fields it keeps on the document. */
export const heartbeatHost = host.extend({
  osqueryd: rebuildable('osqueryd', osquerydState),
  querySchedule: rebuildable('querySchedule', scheduleBaseline),
  running: rebuildable('running', runningState),
  spoofed: spoofedState.nullish(),
  unsignedHeartbeats: rebuildable('unsignedHeartbeats', unsignedHeartbeats),
});

/**
 * The whole stored document: the host, logHeartbeat's telemetry fields and monitoringAlert's open
 * incidents. Fields other writers add are left alone.
 */
export const hostDocument = heartbeatHost.extend({
  openIncidents: z
    .array(openIncident)
    .optional()
    .describe('Cloud Monitoring incidents open on the VM (monitoringAlert); absent when none'),
});

/**
 * The audit's projection (listProjectHosts, streamHosts): the record and its update time, and of the
 * telemetry only what a silence's cause needs: the worker restarts, the watcher, the denylisted queries.
 */
export const auditedHost = z.object({
  ...record,
  updatedAt: host.shape.updatedAt,
  osqueryd: z
    .object({ restarts: count.optional().describe('consecutive heartbeats from a new worker') })
    .optional()
    // Telemetry is evidence, not the record: one that does not match costs the audit its restarts only.
    .catch(undefined)
    .describe("osqueryd's restarts (the rest of the field is not read by the audit)"),
  running: z
    .object({ watcher: runningState.shape.watcher.optional() })
    .optional()
    .catch(undefined)
    .describe('whether a watchdog watched the worker at the last heartbeat (the rest is not read by the audit)'),
  querySchedule: z
    .object({ at: scheduleBaseline.shape.at, denylisted: scheduleBaseline.shape.denylisted })
    .optional()
    .catch(undefined)
    .describe("the last snapshot's time and denylisted queries (the rest is not read by the audit)"),
});

/** The open incidents alone (updateOpenIncidents reads and rewrites the list). */
export const hostIncidents = hostDocument.pick({ openIncidents: true });

/** The rows of the hosts where osqueryd costs most (topHostsByCost's projection). */
export const hostCostRow = z.object({
  name: identity.name,
  project: identity.project,
  zone: identity.zone,
  configVersion: record.configVersion,
  osqueryd: z.object({
    cpuPercent: osquerydState.shape.cpuPercent.optional(),
    rssBytes: osquerydState.shape.rssBytes,
    at: osquerydState.shape.at,
    episode: osquerydState.shape.episode,
  }),
});

/** The stored form of a host: the domain's value as it is (the client stores its dates as timestamps). */
export const hostData = (h: Host): z.input<typeof host> => h;

/** The fields a heartbeat writes to a host (with the state change that ends a silent episode, if any). */
export type HeartbeatUpdate = Partial<z.input<typeof heartbeatHost>>;

export const transition = readsAs<Transition>()(
  z.object({
    from: hostState.nullable().describe('the state before (null: first recorded)'),
    to: hostState.describe('the state after'),
    reason: record.reason,
    at: timestamp.describe('when'),
    cause: z.string().describe('what caused it, e.g. `vmLifecycle v1.compute.instances.insert op-123`'),
  }),
);

export const transitionData = (t: Transition): z.input<typeof transition> => t;

export const HOST_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'hosts/{instanceId}',
    description:
      'One document per VM. vmLifecycle writes `exempt`, `blocked`, `pending` (reason `policy-targeted`) and ' +
      '`deleted` and never undoes a later state; the audit owns every state; only logHeartbeat writes ' +
      '`lastLogAt`, `osqueryd`, `querySchedule`, `syslog`, `running`, `spoofed` and `unsignedHeartbeats` ' +
      '(other writers merge around them).',
    schema: hostDocument,
  },
  {
    path: 'hosts/{instanceId}/transitions/{at}-{to}',
    description: "Each state change of a host, with an id that orders them (the change's ISO time and new state).",
    schema: transition,
  },
];
