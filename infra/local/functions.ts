// Serves every function of the manifest (functions/manifest.ts) on its own loopback port through the
// Functions Framework (as Cloud Functions would: one function per server), and wires Pub/Sub push
// subscriptions of the emulator to them from their triggers. logHeartbeat's delivery follows the setting,
// as Terraform's does: push, or pull when LOG_HEARTBEAT_SUBSCRIPTION is set (logHeartbeatDrain drains it
// on the drain tick).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFilterRelay, type FilterRelay } from './filter-relay.js';
import { FUNCTION_NAMES, deployedWith, functionList, type FunctionName } from '../../functions/manifest.js';
import { LOG_HEARTBEAT_FILTER } from '../../shared/osquery/log-routing.js';

/**
 * The topic an organisation (or folder, or per-project) log sink publishes Compute's audit entries to;
 * its push subscription delivers them to vmLifecycle. Terraform's `compute_audit_log_topic` defaults to it.
 */
export const COMPUTE_AUDIT_LOG_TOPIC = 'osquery-compute-audit-log';

/**
 * Pull delivery on the local stack: the topic the log filter relay republishes the lines that pass to
 * (the emulator stores a filter, it never applies it), where the pull subscription logHeartbeatDrain
 * drains is made. On Google Cloud the filtered pull subscription sits on the log topic itself.
 */
export const filteredLogTopic = (logTopic: string) => `${logTopic}-filtered`;

export interface ServedFunctions {
  urls: Record<FunctionName, string>;
  /** How the log topic's heartbeat lines reach the code: push (logHeartbeat) or pull (logHeartbeatDrain). */
  logDelivery: 'push' | 'pull';
  /**
   * Applies the log subscription's filter (the emulator stores filters, never applies them): in front of
   * logHeartbeat, or, in pull delivery, in front of the pull subscription logHeartbeatDrain drains.
   */
  logRelay: FilterRelay;
  /**
   * In front of vmLifecycle on the audit-log sink's subscription: no filter (Cloud Logging filters a sink,
   * not Pub/Sub), it passes every push on unchanged and counts them, so `npm start` can show the sink's
   * deliveries and tests can wait for them.
   */
  sinkRelay: FilterRelay;
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
  const { config, logHeartbeatSubscription, required } = await import('../../shared/config.js');
  const { clients } = await import('../../shared/clients.js');
  const logDelivery = config().LOG_HEARTBEAT_SUBSCRIPTION ? 'pull' : 'push';
  const filteredTopic = filteredLogTopic(config().LOG_TOPIC);
  const logRelay = await startFilterRelay(
    logDelivery === 'push'
      ? urls.logHeartbeat
      : async ({ data, attributes }) => {
          await (
            await clients.pubsub()
          )
            .topic(filteredTopic)
            .publishMessage({ data: Buffer.from(data, 'base64'), attributes });
        },
    basePort ? basePort + FUNCTION_NAMES.length : 0,
  );
  const sinkRelay = await startFilterRelay(urls.vmLifecycle, basePort ? basePort + FUNCTION_NAMES.length + 1 : 0);
  return {
    urls,
    logDelivery,
    logRelay,
    sinkRelay,
    wireTriggers: async () => {
      const c = config();
      const routes = functionList().flatMap(({ name, trigger, ...spec }) => {
        switch (trigger.kind) {
          case 'pubsub':
            // As in Terraform: an Eventarc Pub/Sub trigger, where the delivery deploys the function.
            return deployedWith(spec, logDelivery) ? [{ topic: required(trigger.topic), functionUrl: urls[name] }] : [];
          case 'filteredPush':
            // As in Terraform, with the filter applied by the relay (push: to the function; pull: to the
            // pull subscription the drain reads).
            return [{ topic: required(trigger.topic), functionUrl: logRelay.url, filter: trigger.filter }];
          case 'auditLog':
            // The simulator's Eventarc posts to the function itself; as in Terraform (sink.tf), the log
            // sink's topic is pushed to it too.
            return [{ topic: COMPUTE_AUDIT_LOG_TOPIC, functionUrl: sinkRelay.url }];
          case 'http':
            return [];
        }
      });
      await wirePushSubscriptions(routes, [c.ALERT_TOPIC]);
      await logRelay.useFilterOf(`${c.LOG_TOPIC}-push`);
      if (logDelivery === 'pull') await ensurePullSubscription(filteredTopic, logHeartbeatSubscription());
    },
    close: async () => {
      await logRelay.close();
      await sinkRelay.close();
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
 * The pull subscription logHeartbeatDrain drains (full name),
 * on `topic`, with the code's filter (stored, as in Terraform).
 */
async function ensurePullSubscription(topicName: string, subscription: string): Promise<void> {
  const { PubSub } = await import('@google-cloud/pubsub');
  const pubsub = new PubSub({ projectId: process.env.GOOGLE_CLOUD_PROJECT });
  try {
    const topic = pubsub.topic(topicName);
    if (!(await topic.exists())[0]) await topic.create();
    // Made anew (see wirePushSubscriptions): lines an earlier stack left unread are not this one's.
    const sub = pubsub.subscription(subscription);
    if ((await sub.exists())[0]) await sub.delete();
    await topic.createSubscription(subscription.split('/').pop()!, {
      filter: LOG_HEARTBEAT_FILTER,
      ackDeadlineSeconds: 120,
    });
  } finally {
    await pubsub.close();
  }
}

/**
 * Creates topics and push subscriptions in the Pub/Sub emulator: topic -> function. The push path names
 * the topic so the Functions Framework builds the messagePublished CloudEvent with the right source. A
 * subscription's filter cannot change, so one with another filter is replaced.
 */
export async function wirePushSubscriptions(
  routes: Array<{ topic: string; functionUrl: string; filter?: string }>,
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
  for (const { topic: name, functionUrl, filter = '' } of routes) {
    const topic = await ensureTopic(name);
    // Made anew, as a deployment makes it: a backlog an earlier stack left on the emulator (its endpoint
    // gone, the emulator still retrying) must not reach this stack's functions.
    const subscription = topic.subscription(`${name}-push`);
    if ((await subscription.exists())[0]) await subscription.delete();
    await topic.createSubscription(`${name}-push`, {
      pushConfig: { pushEndpoint: `${functionUrl}projects/${projectId}/topics/${name}` },
      ackDeadlineSeconds: 60,
      ...(filter ? { filter } : {}),
    });
  }
  await pubsub.close();
}
