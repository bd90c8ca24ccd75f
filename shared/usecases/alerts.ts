// Alert delivery: what alert episodes owe, sent on ALERT_TOPIC at most once per message (docs/contracts.md).
import { config } from '../config.js';
import { log } from '../log.js';
import { alertMessage, owedMessages } from '../domain/alerts.js';
import * as alerts from '../adapters/alerts.js';
import { publishJson } from '../adapters/pubsub.js';

/**
 * Sends what one episode owes. The lease keeps two senders (a heartbeat and an audit) from sending the
 * same message; the sent times are recorded after the publish, so a resolution staged meanwhile stays
 * owed. A failed publish leaves the debt for the next delivery (every audit sends what is owed).
 */
async function deliverEpisode(key: string): Promise<number> {
  const episode = await alerts.leaseEpisode(key, owedMessages);
  if (!episode) return 0;
  const owes = owedMessages(episode);
  const sent: { firing?: Date; resolved?: Date } = {};
  try {
    for (const status of ['firing', 'resolved'] as const) {
      if (!owes[status]) continue;
      const attributes = { kind: episode.kind, status, severity: episode.severity };
      await publishJson(config().ALERT_TOPIC, alertMessage(episode, status), attributes);
      sent[status] = new Date();
    }
  } finally {
    await alerts.recordSent(key, sent, owedMessages);
  }
  return Object.keys(sent).length;
}

/** Sends what the given episodes owe; a failure is logged and the message left owed. Returns how many were sent. */
export async function deliverAlerts(keys: Iterable<string>): Promise<number> {
  let sent = 0;
  for (const key of new Set(keys)) {
    try {
      sent += await deliverEpisode(key);
    } catch (error) {
      log.error(
        { dedupKey: key, reason: error instanceof Error ? error.message : String(error) },
        'alert not sent; owed to the next flush',
      );
    }
  }
  return sent;
}

/** Sends what the given episodes owe, and whatever earlier deliveries left owed (a publish failed, a sender died). */
export async function deliverOwedAlerts(keys: Iterable<string>): Promise<number> {
  return deliverAlerts([...keys, ...(await alerts.owedAlertKeys())]);
}
