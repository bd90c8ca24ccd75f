// Pull subscriptions on the Pub/Sub emulator: what a consumer of the alert topic (or the dead-letter topic) sees.
import type { Subscription } from '@google-cloud/pubsub';
import { clients } from '../../shared/clients.js';

/** A pull subscription on `topic` (created with the topic when missing). */
export async function subscribe(topic: string, name: string): Promise<Subscription> {
  const pubsub = await clients.pubsub();
  if (!(await pubsub.topic(topic).exists())[0]) await pubsub.topic(topic).create();
  const subscription = pubsub.topic(topic).subscription(name);
  if ((await subscription.exists())[0]) return subscription;
  const [created] = await pubsub.topic(topic).createSubscription(name);
  return created;
}

/** Everything on a pull subscription right now. */
export async function drain(sub: Subscription): Promise<Array<{ data: unknown; attributes: Record<string, string> }>> {
  const { v1 } = await import('@google-cloud/pubsub');
  // The emulator's address and insecure credentials, as the PubSub client resolved them.
  const subscriber = new v1.SubscriberClient(
    (await (await clients.pubsub()).getClientConfig()) as unknown as ConstructorParameters<
      typeof v1.SubscriberClient
    >[0],
  );
  const out: Array<{ data: unknown; attributes: Record<string, string> }> = [];
  for (let i = 0; i < 10; i++) {
    const [response] = await subscriber.pull({ subscription: sub.name, maxMessages: 1000, returnImmediately: true });
    const messages = response.receivedMessages ?? [];
    if (messages.length === 0) break;
    for (const m of messages)
      out.push({
        data: JSON.parse(Buffer.from(m.message!.data as Uint8Array).toString()),
        attributes: (m.message!.attributes ?? {}) as Record<string, string>,
      });
    await subscriber.acknowledge({ subscription: sub.name, ackIds: messages.map((m) => m.ackId!) });
  }
  await subscriber.close();
  return out;
}
