// alerts/{dedupKey}: one record per alert episode, which guards that each episode sends one `firing` and one
// `resolved` message on the alert topic, whatever the redeliveries and reruns.
import { z } from 'zod';
import type { AlertHost, AlertKind, AlertQuery, Episode } from '../domain/alerts.js';
import { readsAs, timestamp, type DocumentDefinition, type Same } from './document.js';

/** Every alert kind (docs/contracts.md lists each): exactly the domain's AlertKind, checked when compiling. */
export const ALERT_KINDS = [
  'host.silent',
  'host.noncompliant',
  'host.blocked',
  'host.performance',
  'host.drifted',
  'host.spoofed',
  'query.denylisted',
  'query.expensive',
  'logs.overBudget',
  'rollout.halted',
  'rollout.stalled',
  'pipeline.backlog',
  'fleet.silent',
] as const satisfies readonly AlertKind[];
const _everyAlertKind: Same<(typeof ALERT_KINDS)[number], AlertKind> = true;

export const alertHost = readsAs<AlertHost>()(
  z
    .object({
      instanceId: z.string().describe('the Compute instance id'),
      name: z.string().describe("the VM's name"),
      project: z.string().describe('its project'),
      zone: z.string().describe('its zone'),
    })
    .describe("the host's identity (null: no host's, e.g. rollout.*, query.*, an incident without a VM)"),
);

export const alertQuery = readsAs<AlertQuery>()(
  z
    .object({
      configVersion: z.string().describe('the configuration version'),
      name: z.string().describe("the query's name in the schedule"),
    })
    .describe('query.* alerts: the scheduled query of one configuration version they are about'),
);

const severity = z.enum(['info', 'warning', 'critical']);
const sentAt = timestamp.nullable().describe('when the message was published (null: owed)');

/** The episode as its messages need it, times as dates (shared/domain/alerts.ts Episode). */
const episodeShape = {
  dedupKey: z.string().describe("the episode's key, also the document's id: `{kind}:{instanceId}:{since ms}`"),
  kind: z.string().describe('the alert kind (docs/contracts.md: Alert messages)'),
  severity: severity.describe('`info`, `warning` or `critical`'),
  host: alertHost.nullable(),
  reason: z.string().nullable().describe('why, machine-readable'),
  since: timestamp.describe('when the problem began'),
  firing: z
    .object({ at: timestamp.describe('when it fired'), sentAt })
    .describe('the firing message: when, and when it was sent'),
  resolved: z
    .object({
      at: timestamp.describe('when it ended'),
      sentAt: sentAt.optional().transform((v) => v ?? null),
    })
    .nullable()
    .describe('the resolved message (null: still open)'),
  details: z
    .record(z.string(), z.unknown())
    .nullish()
    .describe('kind-specific fields both messages carry (rollout.halted: version, stage, gate, ...)'),
  source: z
    .string()
    .nullish()
    .describe('host.performance: `osquery` (its own heartbeats) or `monitoring` (Cloud Monitoring)'),
  query: alertQuery.nullish(),
};

/** An episode record as read: the episode, whether a message is owed, and the sender's lease. */
export const episodeDocument = z.object({
  ...episodeShape,
  owed: z.boolean().describe('some message of this episode is not sent yet (what a flush looks for)'),
  leaseUntil: timestamp.nullish().describe('a sender holds the episode until then (two senders never send twice)'),
  held: z
    .boolean()
    .nullish()
    .describe('host.silent held back by a fleet.silent storm: owes nothing until released (absent: not held)'),
  heldRun: z
    .string()
    .nullish()
    .describe(
      "held host.silent: held until this audit run's close decides the fleet's storm, then released or kept " +
        "by the fleet's fleet.silent (absent: a project's storm holds it)",
    ),
});

/** What the messages are built from: the episode without its delivery bookkeeping. */
export const episode = readsAs<Episode>()(z.object(episodeShape));

/**
 * A resolution recorded for an episode that has no record: its host entered the alerting state before
 * episodes were kept, so it never fired and owes nothing (shared/domain/alerts.ts owedMessages).
 */
export const unrecordedEpisode = z.object({
  resolved: episodeShape.resolved,
  owed: episodeDocument.shape.owed,
  leaseUntil: episodeDocument.shape.leaseUntil,
});

/** The fields the rollout's incidents gate reads (incidentsInZones' projection). */
export const incidentRow = episodeDocument.pick({ host: true, since: true, resolved: true });

/** The stored form of an episode record being opened. */
export const episodeData = (e: z.input<typeof episodeDocument>) => e;

export const ALERT_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'alerts/{dedupKey}',
    description:
      'One record per alert episode: each sends one `firing` and one `resolved` message however often ' +
      'events are redelivered or audits rerun. Written by whatever opens or closes the episode (the audit, ' +
      'vmLifecycle, logHeartbeat, monitoringAlert, the run close, the rollout controller) in the same commit ' +
      'as the change that owes it; the sent times by the sender. A resolution recorded for an episode ' +
      'that never fired holds `resolved` and `owed` only.',
    schema: episodeDocument,
  },
];
