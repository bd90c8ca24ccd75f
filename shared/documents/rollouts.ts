// rollouts/{configVersion}: what was published, where it is rolled out, and its staged rollout (stages,
// gates, decisions); config/current: the version zones outside a rollout get, and the rollout under way.
import { z } from 'zod';
import type { ZoneRollout } from '../domain/assignment.js';
import type { ConfigFile, PolicyConfig } from '../domain/policy.js';
import type {
  Evaluation,
  HaltRecord,
  HistoryEntry,
  HostRef,
  StageRecord,
  StagedRollout,
  StallRecord,
} from '../domain/rollout.js';
import { GATE_NAMES, type Gates } from '../domain/rollout-plan.js';
import { absentAsNull, readsAs, timestamp, type DocumentDefinition } from './document.js';

const gateName = z.enum(GATE_NAMES);
const gateUnit = z.enum(['%', 'queries', '% over baseline']);
const maxPercent = z.number().describe('the share of the targeted hosts it holds up to (percent)');
const percent = z.object({ maxPercent });

/** The health gates of a stage, as the plan gave them (shared/osquery/rollout.json). */
export const gates = readsAs<Gates>()(
  z
    .object({
      noncompliant: percent.describe('hosts that went noncompliant on the target'),
      silent: percent.describe('hosts that went silent on the target'),
      incidents: percent.describe('hosts with a Cloud Monitoring incident on the target'),
      osquerydCpu: z
        .object({ cpuPercent: z.number().describe('a host counts above this CPU (percent of a core)'), maxPercent })
        .describe("hosts whose osqueryd worker's CPU is above cpuPercent"),
      osquerydMemory: z
        .object({ rssMiB: z.number().describe('a host counts above this resident memory (MiB)'), maxPercent })
        .describe("hosts whose osqueryd worker's memory is above rssMiB"),
      denylistedQueries: z
        .object({ max: z.number().describe('queries it holds up to') })
        .describe('queries of the target the watchdog denylisted on some host'),
      logVolume: z
        .object({
          maxIncreasePercent: z.number().describe("it holds up to this increase over the baseline's (percent)"),
        })
        .optional()
        .describe("log bytes per host and day the target's hosts ship against the baseline's (absent: not judged)"),
    })
    .describe("the stage's health gates, as the plan set them"),
);

const hostRef = readsAs<HostRef>()(
  z.object({
    instanceId: z.string().describe('the Compute instance id'),
    name: z.string().describe("the VM's name"),
    project: z.string().describe('its project'),
    zone: z.string().describe('its zone'),
  }),
);

const stageRecord = readsAs<StageRecord>()(
  z.object({
    name: z.string().describe("the stage's name in the plan"),
    bakeMinutes: z.number().describe('how long its hosts are watched before the next stage'),
    gates,
    zones: z.array(z.string()).describe('`project/zone`, in the order they were chosen'),
    hosts: z.number().describe('in-scope VMs in those zones when the rollout started'),
    startedAt: timestamp.nullable().describe('when its zones got the target (null: not reached yet)'),
  }),
);

const haltRecord = readsAs<HaltRecord>()(
  z
    .object({
      at: timestamp.describe('when it halted'),
      stage: z.string().describe('the stage it halted in'),
      gate: gateName.describe('the gate that tripped'),
      value: z.number().describe("the gate's value (percent of the targeted hosts, or queries)"),
      threshold: z.number().describe("the gate's threshold"),
      unit: gateUnit.describe('`%`, `queries` or `% over baseline`'),
      count: z.number().describe('how many hosts (or queries) tripped it'),
      hosts: z.array(hostRef).describe('the hosts that tripped it (at most a few)'),
      queries: z.array(z.string()).describe('denylisted queries (the denylistedQueries gate)'),
      dedupKey: z.string().describe('its rollout.halted alert episode (alerts/{dedupKey})'),
    })
    .describe('why it halted (null: it did not)'),
);

const evaluation = readsAs<Evaluation>()(
  z
    .object({
      at: timestamp.describe('when the controller looked'),
      runId: z.string().nullable().describe('the audit run whose close it was made at (null: by hand)'),
      revision: z.number().describe('the revision it was made on'),
      stage: z.string().describe('the stage reached'),
      gates: z
        .array(
          z.object({
            gate: gateName.describe('the gate'),
            value: z.number().describe('its value (percent of the targeted hosts, or queries)'),
            threshold: z.number().describe('its threshold'),
            unit: gateUnit.describe('`%`, `queries` or `% over baseline`'),
            passed: z.boolean().describe('the value is at or below the threshold'),
            hosts: z.array(hostRef).describe('hosts that count against it (at most a few)'),
            count: z.number().describe('how many count against it'),
            queries: z.array(z.string()).describe('denylisted queries (the denylistedQueries gate)'),
            capped: z.boolean().describe('the count is a lower bound (the listing hit its limit)'),
          }),
        )
        .describe("each gate's value against its threshold"),
      stages: z
        .array(
          z.object({
            name: z.string().describe("the stage's name"),
            zones: z.array(z.string()).describe('its zones (`project/zone`)'),
            bakeMinutes: z.number().describe('its bake time'),
            startedAt: timestamp.nullable().describe('when its zones got the target (null: not yet)'),
            state: z.enum(['done', 'current', 'waiting']).describe('reached and passed, reached, or not yet'),
            targeted: z.number().describe('hosts that can run a version, by the latest snapshots'),
            onTarget: z.number().describe('in-scope hosts that reported the target'),
            onBaseline: z.number().describe('in-scope hosts that reported the baseline'),
            notRunning: z
              .number()
              .optional()
              .describe('of those on the target, hosts whose own lines say osqueryd does not run it yet'),
          }),
        )
        .describe('each stage as the status page shows it'),
      observed: z
        .object({
          stage: z.number().describe("the stage's hosts that reported on the target"),
          needed: z.number().describe('how many of them it needs'),
          total: z.number().describe('hosts on the target in every stage reached'),
          minHosts: z.number().describe('how many of those it needs in all'),
        })
        .describe("how many of the stage's hosts reported on the target, and how many it needs"),
      stale: z.array(z.string()).describe('projects of the stages reached without a fresh successful audit'),
      stalled: z
        .array(
          z.object({
            project: z.string().describe('the project'),
            lastAuditAt: z.string().nullable().describe('its last successful audit (ISO 8601; null: none)'),
            reason: z.string().describe('why it is stalled'),
          }),
        )
        .optional()
        .describe('of those, the ones waited on longer than the evidence bound'),
      bakeLeftMinutes: z.number().describe("what is left of the stage's bake time"),
      next: z
        .object({
          action: z.enum(['promote', 'complete', 'hold', 'halt', 'none']).describe('the decision'),
          reason: z.string().describe('why, in a sentence'),
        })
        .describe('what the controller does next, and why'),
    })
    .describe("the controller's latest look (what `rollout status` and the status page show)"),
);

const stallRecord = readsAs<StallRecord>()(
  z
    .object({
      since: timestamp.describe('when it began'),
      dedupKey: z.string().describe('its rollout.stalled alert episode'),
      projects: z.array(z.string()).describe('the projects without a fresh successful audit'),
    })
    .describe('the open rollout.stalled episode (null: none)'),
);

const HISTORY_ACTIONS = [
  'started',
  'promoted',
  'completed',
  'halted',
  'paused',
  'resumed',
  'rolled-back',
  'superseded',
  'published-all-at-once',
  'republished',
] as const;

const historyEntry = readsAs<HistoryEntry>()(
  z.object({
    at: timestamp.describe('when'),
    action: z.enum(HISTORY_ACTIONS).describe('what was decided'),
    stage: z.string().nullable().describe('the stage after the action (null: none)'),
    by: z.string().describe('who: `controller`, or the operator'),
    reason: z.string().describe('why'),
  }),
);

/** The staged rollout, kept in fields of rollouts/{version} beside what was published. */
export const stagedRollout = readsAs<StagedRollout>()(
  z.object({
    configVersion: z.string().describe('the version (the document id)'),
    mode: z.enum(['staged', 'all-at-once']).describe('`staged`, or `all-at-once` (every zone at once)'),
    status: z
      .enum(['running', 'paused', 'halted', 'rolled-back', 'completed', 'superseded'])
      .describe("the rollout's status (`halted` reads as it says)"),
    baseline: absentAsNull(z.string()).describe('config/current when it started (null: nothing was published)'),
    startedAt: timestamp.describe('when it started'),
    stage: z.number().describe('the stage reached (index into `stages`)'),
    stages: z.array(stageRecord).describe('the plan resolved to zones'),
    skipped: z
      .array(z.object({ name: z.string().describe("the stage's name"), reason: z.string().describe('why') }))
      .nullish()
      .transform((v) => v ?? [])
      .describe('stages of the plan that selected no zone'),
    observe: z
      .object({
        minPercent: z.number().describe("the share of a stage's hosts that must report on the target (percent)"),
        minHosts: z.number().describe('and at least this many hosts'),
      })
      .describe("the share and number of a stage's hosts that must report before it is promoted"),
    revision: z.number().describe('incremented by every decision (a decision is written against its revision)'),
    resumedAt: absentAsNull(timestamp).describe('when a halted or rolled-back rollout was resumed'),
    halt: absentAsNull(haltRecord),
    evaluation: absentAsNull(evaluation),
    stall: absentAsNull(stallRecord).describe('the open rollout.stalled episode (null or absent: none)'),
    history: z
      .array(historyEntry)
      .nullish()
      .transform((v) => v ?? [])
      .describe('every decision: started, promoted, halted, resumed, ...'),
  }),
);

const configFile = readsAs<ConfigFile>()(
  z.object({
    source: z.string().describe('bundle-relative path'),
    vmPath: z.string().describe('where the VM gets it'),
    permissions: z.string().describe('its file mode (`0644`)'),
    content: z.string().optional().describe('inline content (small files)'),
    gcs: z
      .object({
        bucket: z.string().describe('the bucket'),
        object: z.string().describe('the object'),
        generation: z.string().describe("the object's generation"),
      })
      .optional()
      .describe('the Cloud Storage object, pinned by generation'),
  }),
);

const policyConfig = readsAs<PolicyConfig>()(
  z
    .object({
      configVersion: z.string().describe('the version'),
      osqueryVersion: z
        .string()
        .optional()
        .describe(
          "the osquery version the policy pins (the bundle's osquery.version); absent on versions recorded " +
            "before pinning: the repository's pinned version",
        ),
      files: z.array(configFile).describe('the files the OS policy puts on the VM'),
      syslogPipe: z
        .string()
        .nullish()
        .describe('the pipe osqueryd reads syslog from (null or absent: it ingests none)'),
    })
    .describe('what vmLifecycle needs to create an assignment at this version'),
);

/** A zone's assignment at this version; `updatedAt` is when it was noted (not read back). */
const zoneRollout = z
  .object({
    project: z.string().describe('the project'),
    zone: z.string().describe('the zone'),
    assignment: z.string().describe("the OS policy assignment's id"),
    revisionId: z.string().describe("the assignment's revision"),
    rolloutState: z.string().describe("OS Config's rollout state (`SUCCEEDED`, ...)"),
    updatedAt: timestamp.optional().describe('when it was noted (server time)'),
  })
  .transform(({ updatedAt: _noted, ...zone }): ZoneRollout => zone);

/** What publish records of a version, and where it is rolled out (the rest: the staged rollout's fields). */
export const publishedRecord = z.object({
  configVersion: z.string().describe('the version: a digest of its rendered files'),
  publishedAt: timestamp.describe('when it was first published'),
  bucket: z.string().nullable().describe('the Cloud Storage bucket its large files are in (null: all inline)'),
  files: z
    .array(
      z.object({
        source: z.string().describe('bundle-relative path'),
        vmPath: z.string().describe('where the VM gets it'),
        sha256: z.string().describe('its digest'),
        size: z.number().describe('its size in bytes'),
        object: z.string().optional().describe('its Cloud Storage object'),
        generation: z.string().optional().describe("the object's generation"),
      }),
    )
    .describe('the files of the version'),
  policyConfig,
  zones: z
    .record(z.string(), zoneRollout)
    .meta({ key: 'project/zone' })
    .describe('each zone whose assignment is at this version (a zone is taken off before it moves away)'),
  hostCounts: z
    .record(z.string(), z.record(z.string(), z.number()).meta({ key: 'state' }))
    .meta({ key: 'project' })
    .optional()
    .describe('hosts per state that run this version, per project (written by the audit)'),
});

/** The whole stored document: what was published, and its staged rollout's fields (absent before one). */
export const rolloutDocument = publishedRecord.extend(stagedRollout.omit({ configVersion: true }).partial().shape);

/** The revision alone (a decision is written only against the revision it was made on). */
export const rolloutRevision = z.object({ revision: stagedRollout.shape.revision.optional() });

export const currentConfig = z.object({
  configVersion: absentAsNull(z.string()).describe('the version every zone outside a rollout gets (null: none yet)'),
  rollout: absentAsNull(z.string()).describe('the target of the staged rollout that has not completed (null: none)'),
  since: absentAsNull(timestamp).describe('when `configVersion` became what it is'),
});

/** The stored form of a staged rollout's fields (the id is the document's). */
export const stagedData = ({
  configVersion: _id,
  ...fields
}: StagedRollout): Omit<z.input<typeof stagedRollout>, 'configVersion'> => fields;

export const ROLLOUT_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'rollouts/{configVersion}',
    description:
      'One document per published configuration version: its files, the policy built from them, the zones ' +
      "whose assignment is at it, the audit's hosts per state, and its staged rollout (mode, stages, gates, " +
      'decisions), the fields of the same document. Written by publish, the rollout controller and commands, ' +
      'the audit (zones, hostCounts).',
    schema: rolloutDocument,
  },
  {
    path: 'config/current',
    description:
      'The version zones outside a rollout get, and the rollout under way: what publish, vmLifecycle and the ' +
      "audit's heal stage read to pick each zone's version.",
    schema: currentConfig,
  },
];
