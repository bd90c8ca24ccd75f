// Pub/Sub: publishing JSON messages (audit shards, alerts), reading the Pub/Sub CloudEvent form, and
// pulling from a subscription (logHeartbeatDrain).
import type { PubSub } from '@google-cloud/pubsub';
import type { z } from 'zod';
import { clients, type Awaitable } from '../clients.js';
import { clientRetryOff, statusOf, withRetry } from '../errors.js';
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

// --- Synchronous pull (logHeartbeatDrain) ---------------------------------------------------------

type Subscriber = Awaited<ReturnType<typeof clients.subscriber>>;

/** A pulled message: what the push form carries, and the ack id that acknowledges or releases it. */
export interface PulledMessage {
  ackId: string;
  message: PubSubMessage;
}

/** gRPC DEADLINE_EXCEEDED: a pull that found nothing to return within its wait. */
const DEADLINE_EXCEEDED = 4;
/** Ack ids per acknowledge or modifyAckDeadline request (a request carries at most 512 KB). */
const ACK_CHUNK = 500;

function dateOf(t: { seconds?: unknown; nanos?: number | null } | null | undefined): Date | null {
  if (!t || t.seconds === undefined || t.seconds === null) return null;
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
}

/**
 * Up to `maxMessages` from a subscription, waiting at most `waitMs` for the first (none: an empty
 * list). Pub/Sub may answer with fewer than are waiting, never with more than asked.
 */
export async function pullMessages(
  subscription: string,
  maxMessages: number,
  waitMs: number,
  subscriber: Awaitable<Subscriber> = clients.subscriber(),
): Promise<PulledMessage[]> {
  const client = await subscriber;
  return withRetry(async () => {
    let response;
    try {
      [response] = await client.pull({ subscription, maxMessages }, { ...clientRetryOff(), timeout: waitMs });
    } catch (error) {
      // Whatever the service had handed out when the call gave up comes back after its ack deadline.
      if (statusOf(error) === DEADLINE_EXCEEDED) return [];
      throw error;
    }
    return (response.receivedMessages ?? []).map((r) => ({
      ackId: r.ackId!,
      message: {
        data: Buffer.from(r.message?.data ?? ''),
        attributes: (r.message?.attributes ?? {}) as Record<string, string>,
        messageId: r.message?.messageId || null,
        publishTime: dateOf(r.message?.publishTime),
      },
    }));
  });
}

/** Sends ack ids in requests of at most ACK_CHUNK, each retried on its own. */
async function inAckChunks(ackIds: readonly string[], send: (chunk: string[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < ackIds.length; i += ACK_CHUNK) {
    const chunk = ackIds.slice(i, i + ACK_CHUNK);
    await withRetry(() => send(chunk));
  }
}

/** Acknowledges pulled messages: Pub/Sub will not deliver them again. */
export async function acknowledge(
  subscription: string,
  ackIds: readonly string[],
  subscriber: Awaitable<Subscriber> = clients.subscriber(),
): Promise<void> {
  const client = await subscriber;
  await inAckChunks(ackIds, (chunk) => client.acknowledge({ subscription, ackIds: chunk }, clientRetryOff()));
}

/**
 * Releases pulled messages for redelivery now (ack deadline 0; the subscription's retry policy, where
 * it has one, delays them). A failure here only delays them until their ack deadline expires.
 */
export async function release(
  subscription: string,
  ackIds: readonly string[],
  subscriber: Awaitable<Subscriber> = clients.subscriber(),
): Promise<void> {
  const client = await subscriber;
  await inAckChunks(ackIds, (chunk) =>
    client.modifyAckDeadline({ subscription, ackIds: chunk, ackDeadlineSeconds: 0 }, clientRetryOff()),
  );
}
