// pipeline/{subscriptionId}: a log subscription's backlog as Cloud Monitoring reports it (monitoringAlert).
import { z } from 'zod';
import type { PipelineRecord } from '../domain/pipeline.js';
import { readsAs, timestamp, type DocumentDefinition } from './document.js';

export const pipelineRecord = readsAs<PipelineRecord>()(
  z.object({
    subscription: z.string().describe("the subscription's id (also the document's id)"),
    role: z
      .enum(['heartbeat', 'siem'])
      .describe("`siem` for SIEM_SUBSCRIPTION, else `heartbeat` (logHeartbeat's push or pull subscription)"),
    openIncidents: z.array(z.string()).describe("the ids of the subscription's backlog incidents still open"),
    episode: z
      .object({
        dedupKey: z.string().describe("the pipeline.backlog episode's key"),
        since: timestamp.describe('when it began (its first incident)'),
      })
      .nullable()
      .describe('the open pipeline.backlog episode (null: the subscription keeps up)'),
    lag: z
      .object({
        oldestUnackedSeconds: z
          .number()
          .nullable()
          .describe('subscription/oldest_unacked_message_age as the newest age incident observed it, seconds'),
        oldestUnackedAt: timestamp.nullable().describe('when it was observed (that incident began)'),
        undeliveredMessages: z
          .number()
          .nullable()
          .describe('subscription/num_undelivered_messages as the newest count incident observed it'),
        undeliveredAt: timestamp.nullable().describe('when it was observed (that incident began)'),
      })
      .nullish()
      .describe(
        "the backlog measured by the open incidents' observed values, cleared when the episode closes " +
          '(null or absent: not measured)',
      ),
  }),
);

export const pipelineData = (r: PipelineRecord): z.input<typeof pipelineRecord> => r;

export const PIPELINE_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'pipeline/{subscriptionId}',
    description:
      "One document per log subscription Cloud Monitoring watches (the heartbeat's and the SIEM's), written by " +
      'monitoringAlert; the audit reads the heartbeat ones: while one has an episode open, silence is not decided.',
    schema: pipelineRecord,
  },
];
