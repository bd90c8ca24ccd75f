// Pub/Sub: publishing JSON messages (audit shards, alerts), and reading the Pub/Sub CloudEvent form.
import type { PubSub } from '@google-cloud/pubsub';
import { z } from 'zod';
import { clients, type Awaitable } from '../clients.js';
import { clientRetryOff, withRetry } from '../errors.js';
import { countApiCall } from '../metrics.js';

/** Publishes one JSON message; resolves to its message id. withRetry retries it, the publisher's own retry is off. */
export async function publishJson(
  topic: string,
  data: unknown,
  attributes: Record<string, string> = {},
  pubsub: Awaitable<PubSub> = clients.pubsub(),
): Promise<string> {
  const publisher = (await pubsub).topic(topic, { gaxOpts: clientRetryOff() });
  return withRetry(() => {
    countApiCall('pubsub.publish');
    return publisher.publishMessage({ json: data, attributes });
  });
}

const pubsubEvent = z.object({
  message: z.object({
    data: z.string().optional(),
    attributes: z.record(z.string(), z.string()).nullish(),
    messageId: z.string().optional(),
    publishTime: z.string().optional(),
  }),
  subscription: z.string().optional(),
});

export interface PubSubMessage {
  data: Buffer;
  attributes: Record<string, string>;
  messageId: string | null;
  publishTime: Date | null;
}

/** The message inside a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent, or a reason it is not one. */
export function messageOf(eventData: unknown): { ok: true; message: PubSubMessage } | { ok: false; reason: string } {
  const parsed = pubsubEvent.safeParse(eventData);
  if (!parsed.success)
    return {
      ok: false,
      reason: `not a Pub/Sub message: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; ')}`,
    };
  const m = parsed.data.message;
  return {
    ok: true,
    message: {
      data: Buffer.from(m.data ?? '', 'base64'),
      attributes: m.attributes ?? {},
      messageId: m.messageId ?? null,
      publishTime: m.publishTime ? new Date(m.publishTime) : null,
    },
  };
}

/** The message data as JSON validated by `schema`, or a reason. */
export function jsonOf<T>(
  message: PubSubMessage,
  schema: z.ZodType<T>,
): { ok: true; value: T } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(message.data.toString('utf8'));
  } catch {
    return { ok: false, reason: 'message data is not JSON' };
  }
  const parsed = schema.safeParse(json);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, reason: parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; ') };
}
