// Pub/Sub: publishing JSON messages (audit shards, alerts), and reading the Pub/Sub CloudEvent form.
import type { z } from 'zod';
import { clients } from '../clients.js';
import { withRetry } from '../errors.js';
import { countApiCall } from '../metrics.js';
import type { PubSubMessage } from '../domain/pubsub-message.js';

export { messageOf, type PubSubMessage } from '../domain/pubsub-message.js';

/** Publishes one JSON message; resolves to its message id. */
export async function publishJson(
  topic: string,
  data: unknown,
  attributes: Record<string, string> = {},
): Promise<string> {
  const pubsub = await clients.pubsub();
  return withRetry(() => {
    countApiCall('pubsub.publish');
    return pubsub.topic(topic).publishMessage({ json: data, attributes });
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
