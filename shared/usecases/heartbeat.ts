// logHeartbeat: when each host's osquery logs last arrived.
import { config } from '../config.js';
import { log } from '../log.js';
import { identityOf, parseLogLines } from '../domain/heartbeat.js';
import type { PubSubMessage } from '../adapters/pubsub.js';
import * as hosts from '../adapters/hosts.js';

export type HeartbeatOutcome = 'recorded' | 'coalesced' | 'unchanged' | 'unknown-host' | 'no-identity' | 'no-lines';

/**
 * This instance's memory of when it last wrote each host's lastLogAt. A Cloud Functions instance
 * serves many messages: inside the window, a host's further lines cost no Firestore read or write.
 * A host written within the window cannot be silent (the threshold is many windows), so the write
 * that ends a silent episode is never held back by it.
 */
const lastWritten = new Map<string, { at: number; pendingNewest: number }>();

export function forgetHeartbeatCache(): void {
  lastWritten.clear();
}

export interface HeartbeatResult {
  outcome: HeartbeatOutcome;
  lines: number;
  malformed: number;
  instanceId: string | null;
}

export async function recordLogMessage(message: PubSubMessage, now = new Date()): Promise<HeartbeatResult> {
  const identity = identityOf(message.attributes);
  const parsed = parseLogLines(message.data.toString('utf8'), now.getTime());
  const base = { lines: parsed.lines, malformed: parsed.malformed, instanceId: identity?.instanceId ?? null };
  if (!identity) {
    // Counted and reported, never dropped silently: a shipper without the identity contract.
    log.warn({ lines: parsed.lines, attributes: message.attributes, messageId: message.messageId }, 'logHeartbeat: log lines without host identity attributes');
    return { ...base, outcome: 'no-identity' };
  }
  if (parsed.newest === null) return { ...base, outcome: 'no-lines' };

  const windowMs = config().HEARTBEAT_WRITE_WINDOW_SECONDS * 1000;
  const cached = lastWritten.get(identity.instanceId);
  if (cached && now.getTime() - cached.at < windowMs) {
    cached.pendingNewest = Math.max(cached.pendingNewest, parsed.newest);
    return { ...base, outcome: 'coalesced' };
  }
  const newest = Math.max(parsed.newest, cached?.pendingNewest ?? 0);
  const result = await hosts.recordHeartbeat(identity.instanceId, newest, cached?.at ?? null, windowMs, now, `logHeartbeat ${message.messageId ?? ''}`.trim());
  if (!result.known) {
    log.warn({ instanceId: identity.instanceId, project: identity.project, zone: identity.zone, lines: parsed.lines }, 'logHeartbeat: log lines from an unknown host');
    return { ...base, outcome: 'unknown-host' };
  }
  if (result.written) lastWritten.set(identity.instanceId, { at: now.getTime(), pendingNewest: newest });
  return { ...base, outcome: result.written ? 'recorded' : 'unchanged' };
}
