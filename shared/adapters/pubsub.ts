// Pub/Sub: publishing JSON messages (audit shards, alerts), and reading the Pub/Sub CloudEvent form.
import type { PubSub } from '@google-cloud/pubsub';
import type { z } from 'zod';
import { clients, type Awaitable } from '../clients.js';
import { clientRetryOff, withRetry } from '../errors.js';
import { countApiCall } from '../metrics.js';
import type { PubSubMessage } from '../domain/pubsub-message.js';

export { messageOf, type PubSubMessage } from '../domain/pubsub-message.js';

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
