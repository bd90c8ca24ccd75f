// Serves every function of functions/index.ts on its own loopback port through the Functions
// Framework (as Cloud Functions would: one function per server), and wires Pub/Sub push subscriptions
// of the emulator to them.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const FUNCTION_NAMES = [
  'vmLifecycle',
  'fleetAudit',
  'fleetAuditShard',
  'logHeartbeat',
  'monitoringAlert',
] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

export interface ServedFunctions {
  urls: Record<FunctionName, string>;
  /** Points every trigger at the served functions: Pub/Sub push subscriptions (and the alert topic). */
  wireTriggers(): Promise<void>;
  close(): Promise<void>;
}

/** Call only after the environment is set: functions/index.ts validates configuration as it loads. */
export async function serveFunctions(basePort = 0): Promise<ServedFunctions> {
  const { getTestServer } = await import('@google-cloud/functions-framework/testing');
  await import('../../functions/index.js');
  const servers: Server[] = [];
  const urls = {} as Record<FunctionName, string>;
  for (const [i, name] of FUNCTION_NAMES.entries()) {
    const server = getTestServer(name);
    await new Promise<void>((resolve) => server.listen(basePort ? basePort + i : 0, '127.0.0.1', () => resolve()));
    servers.push(server);
    urls[name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }
  const { config } = await import('../../shared/config.js');
  return {
    urls,
    wireTriggers: () => {
      const c = config();
      return wirePushSubscriptions(
        [
          { topic: c.AUDIT_TICK_TOPIC, functionUrl: urls.fleetAudit },
          { topic: c.AUDIT_SHARD_TOPIC, functionUrl: urls.fleetAuditShard },
          { topic: c.LOG_TOPIC, functionUrl: urls.logHeartbeat },
          { topic: c.INCIDENT_TOPIC, functionUrl: urls.monitoringAlert },
        ],
        [c.ALERT_TOPIC],
      );
    },
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise((resolve) => {
              s.closeAllConnections();
              s.close(resolve);
            }),
        ),
      );
    },
  };
}

/**
 * Creates topics and push subscriptions in the Pub/Sub emulator: topic -> function. The push path names
 * the topic so the Functions Framework builds the messagePublished CloudEvent with the right source.
 */
export async function wirePushSubscriptions(
  routes: Array<{ topic: string; functionUrl: string }>,
  extraTopics: string[] = [],
): Promise<void> {
  const { PubSub } = await import('@google-cloud/pubsub');
  const projectId = process.env.GOOGLE_CLOUD_PROJECT!;
  const pubsub = new PubSub({ projectId });
  const ensureTopic = async (name: string) => {
    const topic = pubsub.topic(name);
    const [exists] = await topic.exists();
    if (!exists) await topic.create();
    return topic;
  };
  for (const name of extraTopics) await ensureTopic(name);
  for (const { topic: name, functionUrl } of routes) {
    const topic = await ensureTopic(name);
    const subscription = topic.subscription(`${name}-push`);
    const [exists] = await subscription.exists();
    const pushEndpoint = `${functionUrl}projects/${projectId}/topics/${name}`;
    if (exists) await subscription.modifyPushConfig({ pushEndpoint });
    else await topic.createSubscription(`${name}-push`, { pushConfig: { pushEndpoint }, ackDeadlineSeconds: 60 });
  }
  await pubsub.close();
}
