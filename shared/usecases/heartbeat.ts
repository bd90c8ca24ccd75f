// logHeartbeat: when each host's osquery logs last arrived.
import { config } from '../config.js';
import { log } from '../log.js';
import { identityOf, parseLogLines, planHeartbeat, planHeartbeatWrite } from '../domain/heartbeat.js';
import type { PubSubMessage } from '../adapters/pubsub.js';
import type { Timestamp } from '@google-cloud/firestore';
import * as hosts from '../adapters/hosts.js';
import { deliverAlerts } from './alerts.js';

export type HeartbeatOutcome = 'recorded' | 'coalesced' | 'unchanged' | 'unknown-host' | 'no-identity' | 'no-lines';

/**
 * This instance's memory of each host it heard from. A Cloud Functions instance serves many messages:
 * inside the window after a write, a host's further lines cost no Firestore read or write. A host
 * written within the window cannot be silent (the threshold is many windows), so the write that ends a
 * silent episode is never held back by it.
 */
interface HostMemory {
  /** When this instance last recorded the host's lastLogAt (message time, ms), or null. */
  writtenAt: number | null;
  /** The newest line time this instance has acknowledged or is about to (ms). */
  newest: number;
  /** The write in flight for this host: messages arriving meanwhile are acknowledged with it. */
  writing: Promise<HeartbeatOutcome> | null;
}
const memory = new Map<string, HostMemory>();

export function forgetHeartbeatCache(): void {
  memory.clear();
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
  let host = memory.get(identity.instanceId);
  if (!host) memory.set(identity.instanceId, (host = { writtenAt: null, newest: 0, writing: null }));
  host.newest = Math.max(host.newest, parsed.newest);
  if (host.writing) {
    // The write in flight reads `newest` when it plans, and writes again if it recorded nothing while
    // newer lines came in: this line reaches lastLogAt with it. Its failure is this message's too
    // (rethrown, so Pub/Sub redelivers it).
    const outcome = await host.writing;
    return { ...base, outcome: outcome === 'unknown-host' ? outcome : 'coalesced' };
  }
  if (host.writtenAt !== null && now.getTime() - host.writtenAt < windowMs) return { ...base, outcome: 'coalesced' };

  const cause = `logHeartbeat ${message.messageId ?? ''}`.trim();
  const writing = writeNewest(identity.instanceId, host, windowMs, now, cause);
  host.writing = writing;
  try {
    const outcome = await writing;
    if (outcome === 'unknown-host') {
      memory.delete(identity.instanceId);
      log.warn(
        { instanceId: identity.instanceId, project: identity.project, zone: identity.zone, lines: parsed.lines },
        'logHeartbeat: log lines from an unknown host',
      );
    }
    return { ...base, outcome };
  } finally {
    host.writing = null;
  }
}

/**
 * Writes the host's newest acknowledged line time. When that records nothing (another writer got
 * there first with an older line, or a precondition was lost) while newer lines arrived, it writes
 * again, so no acknowledged line waits for a message that may never come.
 */
async function writeNewest(
  instanceId: string,
  host: HostMemory,
  windowMs: number,
  now: Date,
  cause: string,
): Promise<HeartbeatOutcome> {
  for (let attempt = 0; ; attempt++) {
    const { outcome, newest } = await queueWrite({
      instanceId,
      newest: () => host.newest,
      lastWrittenAt: host.writtenAt,
      windowMs,
      now,
      cause,
    });
    if (outcome === 'recorded') host.writtenAt = now.getTime();
    if (outcome !== 'unchanged' || host.newest <= newest || attempt >= 3) return outcome;
  }
}

interface PendingWrite {
  instanceId: string;
  /** Read when the write is planned: the newest line known by then. */
  newest: () => number;
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
interface WriteResult {
  outcome: HeartbeatOutcome;
  /** The line time the write planned with. */
  newest: number;
}
let queue: Array<{ write: PendingWrite; resolve: (r: WriteResult) => void; reject: (e: unknown) => void }> = [];
let timer: NodeJS.Timeout | undefined;

function queueWrite(write: PendingWrite): Promise<WriteResult> {
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
    const fast: Array<(typeof queue)[number] & { newest: number }> = [];
    for (const item of batch) {
      const newest = item.write.newest();
      const found = read.get(item.write.instanceId);
      if (!found) {
        item.resolve({ outcome: 'unknown-host', newest });
        continue;
      }
      const plan = planHeartbeat(
        found.host,
        newest,
        item.write.lastWrittenAt,
        item.write.now.getTime(),
        item.write.windowMs,
      );
      if (!plan.write) item.resolve({ outcome: 'unchanged', newest });
      // Ending a silent episode changes state and alerts: a transaction of its own.
      else if (plan.endsSilence) slow.push(item);
      else fast.push({ ...item, newest });
    }
    // One commit for the plain advances, each conditioned on the document being as read.
    const advances = new Map<string, { instanceId: string; lastLogAt: Date; readAt: Timestamp }>();
    for (const { write, newest } of fast) {
      const prior = advances.get(write.instanceId);
      if (!prior || prior.lastLogAt.getTime() < newest)
        advances.set(write.instanceId, {
          instanceId: write.instanceId,
          lastLogAt: new Date(newest),
          readAt: read.get(write.instanceId)!.updateTime,
        });
    }
    if (await hosts.advanceLastLogAt([...advances.values()], new Date()))
      fast.forEach((item) => item.resolve({ outcome: 'recorded', newest: item.newest }));
    else slow.push(...fast); // someone wrote in between: decide again, one transaction each
    await Promise.all(
      slow.map(async ({ write, resolve, reject }) => {
        try {
          // Planned again on a fresh read, with whatever newer lines arrived meanwhile.
          const newest = write.newest();
          const result = await hosts.recordHeartbeat(write.instanceId, (host) =>
            planHeartbeatWrite(host, newest, write.lastWrittenAt, write.now, write.windowMs, write.cause),
          );
          await deliverAlerts(result.alertKeys);
          resolve({ outcome: !result.known ? 'unknown-host' : result.written ? 'recorded' : 'unchanged', newest });
        } catch (error) {
          reject(error);
        }
      }),
    );
  } catch (error) {
    for (const b of batch) b.reject(error);
  }
}
