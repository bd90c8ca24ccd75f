// logHeartbeat: when each host's osquery logs last arrived.
import { config } from '../config.js';
import { log } from '../log.js';
import { identityOf, parseLogLines, planHeartbeat } from '../domain/heartbeat.js';
import type { PubSubMessage } from '../adapters/pubsub.js';
import type { Timestamp } from '@google-cloud/firestore';
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
    log.warn(
      { lines: parsed.lines, attributes: message.attributes, messageId: message.messageId },
      'logHeartbeat: log lines without host identity attributes',
    );
    return { ...base, outcome: 'no-identity' };
  }
  if (parsed.newest === null) return { ...base, outcome: 'no-lines' };

  const windowMs = config().HEARTBEAT_WRITE_WINDOW_SECONDS * 1000;
  const cached = lastWritten.get(identity.instanceId);
  if (cached && now.getTime() - cached.at < windowMs) {
    cached.pendingNewest = Math.max(cached.pendingNewest, parsed.newest);
    return { ...base, outcome: 'coalesced' };
  }
  // Claimed before the write, so concurrent messages for the same host coalesce onto this one.
  const newest = Math.max(parsed.newest, cached?.pendingNewest ?? 0);
  lastWritten.set(identity.instanceId, { at: now.getTime(), pendingNewest: newest });
  try {
    const outcome = await queueWrite({
      instanceId: identity.instanceId,
      newest,
      lastWrittenAt: cached?.at ?? null,
      windowMs,
      now,
      cause: `logHeartbeat ${message.messageId ?? ''}`.trim(),
    });
    if (outcome !== 'recorded') {
      if (cached) lastWritten.set(identity.instanceId, cached);
      else lastWritten.delete(identity.instanceId);
    }
    if (outcome === 'unknown-host')
      log.warn(
        { instanceId: identity.instanceId, project: identity.project, zone: identity.zone, lines: parsed.lines },
        'logHeartbeat: log lines from an unknown host',
      );
    return { ...base, outcome };
  } catch (error) {
    if (cached) lastWritten.set(identity.instanceId, cached);
    else lastWritten.delete(identity.instanceId);
    throw error;
  }
}

interface PendingWrite {
  instanceId: string;
  newest: number;
  lastWrittenAt: number | null;
  windowMs: number;
  now: Date;
  cause: string;
}

// Messages handled concurrently by this instance share one read: their hosts are fetched together
// (getAll), then each lastLogAt is advanced with a write conditioned on what was read. A message is
// acknowledged only after its write.
const MAX_BATCH = 400;
const BATCH_DELAY_MS = 5;
let queue: Array<{ write: PendingWrite; resolve: (o: HeartbeatOutcome) => void; reject: (e: unknown) => void }> = [];
let timer: NodeJS.Timeout | undefined;

function queueWrite(write: PendingWrite): Promise<HeartbeatOutcome> {
  return new Promise((resolve, reject) => {
    queue.push({ write, resolve, reject });
    if (queue.length >= MAX_BATCH) flushQueue();
    else timer ??= setTimeout(flushQueue, BATCH_DELAY_MS);
  });
}

function flushQueue(): void {
  if (timer) clearTimeout(timer);
  timer = undefined;
  const batch = queue;
  queue = [];
  void writeBatch(batch);
}

async function writeBatch(batch: typeof queue): Promise<void> {
  try {
    const read = await hosts.readHosts([...new Set(batch.map((b) => b.write.instanceId))]);
    const slow: typeof queue = [];
    const fast: typeof queue = [];
    for (const item of batch) {
      const found = read.get(item.write.instanceId);
      if (!found) {
        item.resolve('unknown-host');
        continue;
      }
      const plan = planHeartbeat(
        found.host,
        item.write.newest,
        item.write.lastWrittenAt,
        item.write.now.getTime(),
        item.write.windowMs,
      );
      if (!plan.write) item.resolve('unchanged');
      // Ending a silent episode changes state and alerts: a transaction of its own.
      else (plan.endsSilence ? slow : fast).push(item);
    }
    // One commit for the plain advances, each conditioned on the document being as read.
    const advances = new Map<string, { instanceId: string; lastLogAt: Date; readAt: Timestamp }>();
    for (const { write } of fast) {
      const prior = advances.get(write.instanceId);
      if (!prior || prior.lastLogAt.getTime() < write.newest)
        advances.set(write.instanceId, {
          instanceId: write.instanceId,
          lastLogAt: new Date(write.newest),
          readAt: read.get(write.instanceId)!.updateTime,
        });
    }
    if (await hosts.advanceLastLogAt([...advances.values()], new Date()))
      fast.forEach((item) => item.resolve('recorded'));
    else slow.push(...fast); // someone wrote in between: decide again, one transaction each
    await Promise.all(
      slow.map(async ({ write, resolve, reject }) => {
        try {
          const result = await hosts.recordHeartbeat(
            write.instanceId,
            write.newest,
            write.lastWrittenAt,
            write.windowMs,
            write.now,
            write.cause,
          );
          resolve(!result.known ? 'unknown-host' : result.written ? 'recorded' : 'unchanged');
        } catch (error) {
          reject(error);
        }
      }),
    );
  } catch (error) {
    for (const b of batch) b.reject(error);
  }
}
