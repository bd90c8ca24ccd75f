// logHeartbeat: when each host's osquery logs last arrived, and what osquery says about its own cost
// (hosts/{id}.osqueryd and host.performance from the heartbeat, queryStats from osquery_schedule).
import { config, performanceThresholds } from '../config.js';
import { log } from '../log.js';
import {
  identityOf,
  parseLogLines,
  planHeartbeatWrite,
  type HeartbeatWrite,
  type PendingHeartbeat,
} from '../domain/heartbeat.js';
import {
  addIncrements,
  type QueryStatsIncrement,
  type ScheduleSnapshot,
  type WorkerSample,
} from '../domain/telemetry.js';
import type { PubSubMessage } from '../adapters/pubsub.js';
import type { Timestamp } from '@google-cloud/firestore';
import * as hosts from '../adapters/hosts.js';
import { writeQueryStats } from '../adapters/telemetry.js';
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
  /**
   * Heartbeat samples and schedule snapshots acknowledged and not yet written. Their counters are
   * cumulative, so one lost with an instance costs resolution, not correctness: the next one is measured
   * against the baseline on the host document.
   */
  samples: WorkerSample[];
  snapshots: ScheduleSnapshot[];
  /** The write in flight for this host: messages arriving meanwhile are acknowledged with it. */
  writing: Promise<HeartbeatOutcome> | null;
}
const memory = new Map<string, HostMemory>();

/**
 * queryStats increments of the hosts written, per document, until the stats window ends: then one
 * write per query document (increments commute, so instances need not agree on anything).
 */
const statsBuffer = new Map<string, QueryStatsIncrement>();
let statsSince: number | null = null;
let statsFlushing: Promise<number> | null = null;

export function forgetHeartbeatCache(): void {
  memory.clear();
  statsBuffer.clear();
  statsSince = null;
}

/**
 * Writes the buffered queryStats increments now (one write per query document); the number written.
 * A failed write keeps them for the next flush: the hosts' baselines have moved on, a redelivery would
 * not bring them back.
 */
export async function flushQueryStats(): Promise<number> {
  if (statsFlushing) await statsFlushing.catch(() => 0);
  if (statsBuffer.size === 0) return 0;
  const increments = [...statsBuffer.values()];
  statsBuffer.clear();
  statsSince = null;
  statsFlushing = writeQueryStats(increments);
  try {
    return await statsFlushing;
  } catch (error) {
    addIncrements(statsBuffer, increments);
    statsSince ??= Date.now();
    throw error;
  } finally {
    statsFlushing = null;
  }
}

/** Buffers a committed write's statistics; flushes when the buffer is older than the stats window. */
async function bufferQueryStats(increments: QueryStatsIncrement[], now: number): Promise<void> {
  if (increments.length > 0) {
    addIncrements(statsBuffer, increments);
    statsSince ??= now;
  }
  if (statsSince === null || now - statsSince < config().QUERY_STATS_WRITE_WINDOW_SECONDS * 1000) return;
  try {
    await flushQueryStats();
  } catch (error) {
    log.warn(
      { err: error, documents: statsBuffer.size },
      'logHeartbeat: queryStats write failed, kept for the next window',
    );
  }
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
  if (!host)
    memory.set(identity.instanceId, (host = { writtenAt: null, newest: 0, samples: [], snapshots: [], writing: null }));
  host.newest = Math.max(host.newest, parsed.newest);
  for (const t of parsed.telemetry)
    if (t.kind === 'heartbeat') host.samples.push(t.sample);
    else host.snapshots.push(t.snapshot);
  if (host.writing) {
    // The write in flight reads `newest` when it plans, and writes again if it recorded nothing while
    // newer lines came in: this line reaches lastLogAt with it. Its failure is this message's too
    // (rethrown, so Pub/Sub redelivers it).
    const outcome = await host.writing;
    return { ...base, outcome: outcome === 'unknown-host' ? outcome : 'coalesced' };
  }
  if (host.writtenAt !== null && now.getTime() - host.writtenAt < windowMs) {
    await bufferQueryStats([], now.getTime());
    return { ...base, outcome: 'coalesced' };
  }

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
    const { outcome, newest, written } = await queueWrite({
      instanceId,
      pending: () => ({ newest: host.newest, samples: [...host.samples], snapshots: [...host.snapshots] }),
      lastWrittenAt: host.writtenAt,
      windowMs,
      now,
      cause,
    });
    if (outcome === 'recorded') host.writtenAt = now.getTime();
    if (written) {
      // What the write carried (or found stale) is done; what arrived while it was in flight waits.
      const done = new Set<unknown>([...written.samples, ...written.snapshots]);
      host.samples = host.samples.filter((x) => !done.has(x));
      host.snapshots = host.snapshots.filter((x) => !done.has(x));
      await bufferQueryStats(written.stats, now.getTime());
    }
    if (outcome !== 'unchanged' || host.newest <= newest || attempt >= 3) return outcome;
  }
}

interface PendingWrite {
  instanceId: string;
  /** Read when the write is planned: the newest line and the telemetry known by then. */
  pending: () => PendingHeartbeat;
  lastWrittenAt: number | null;
  windowMs: number;
  now: Date;
  cause: string;
}

// Messages handled concurrently by this instance share one read: their hosts are fetched together
// (getAll), then each lastLogAt is advanced with a write conditioned on what was read. A message is
// acknowledged only after its write.
// At most 500 operations a commit: a host update and up to two host.performance episode records each.
const MAX_BATCH = 160;
const BATCH_DELAY_MS = 5;
interface WriteResult {
  outcome: HeartbeatOutcome;
  /** The line time the write planned with. */
  newest: number;
  /** The telemetry the committed write (or a decision to write nothing) disposed of, and the statistics it owes. */
  written?: PendingHeartbeat & { stats: QueryStatsIncrement[] };
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

type Planned = Extract<HeartbeatWrite, { write: 'update' }>;

async function writeBatch(batch: typeof queue): Promise<void> {
  try {
    const thresholds = performanceThresholds();
    const read = await hosts.readHosts([...new Set(batch.map((b) => b.write.instanceId))]);
    const slow: typeof queue = [];
    // One write per host in a commit: a host's messages share one memory, the first planned carries it all.
    const fast = new Map<
      string,
      { items: typeof queue; pending: PendingHeartbeat; planned: Planned; readAt: Timestamp }
    >();
    for (const item of batch) {
      const { write } = item;
      const pending = write.pending();
      const same = fast.get(write.instanceId);
      if (same) {
        same.items.push(item);
        continue;
      }
      const found = read.get(write.instanceId);
      if (!found) {
        item.resolve({ outcome: 'unknown-host', newest: pending.newest });
        continue;
      }
      const planned = planHeartbeatWrite(
        found.host,
        pending,
        write.lastWrittenAt,
        write.now,
        write.windowMs,
        write.cause,
        thresholds,
      );
      if (planned.write === 'nothing') item.resolve({ outcome: 'unchanged', newest: pending.newest });
      // Ending a silent episode changes state and alerts: a transaction of its own.
      else if (planned.change) slow.push(item);
      else fast.set(write.instanceId, { items: [item], pending, planned, readAt: found.updateTime });
    }
    // One commit for the plain updates, each conditioned on the document being as read.
    const updates = [...fast.entries()].map(([instanceId, f]) => ({
      instanceId,
      planned: f.planned,
      readAt: f.readAt,
    }));
    const committed = await hosts.writeHeartbeats(updates);
    if (committed.committed) {
      await deliverAlerts(committed.alertKeys);
      for (const f of fast.values())
        f.items.forEach((item, i) =>
          item.resolve({
            outcome: 'recorded',
            newest: f.pending.newest,
            ...(i === 0 ? { written: { ...f.pending, stats: f.planned.stats } } : {}),
          }),
        );
    } else for (const f of fast.values()) slow.push(...f.items); // someone wrote in between: decide again, one transaction each
    await Promise.all(
      slow.map(async ({ write, resolve, reject }) => {
        try {
          // Planned again on a fresh read, with whatever newer lines arrived meanwhile.
          const pending = write.pending();
          const result = await hosts.recordHeartbeat(write.instanceId, (host) =>
            planHeartbeatWrite(host, pending, write.lastWrittenAt, write.now, write.windowMs, write.cause, thresholds),
          );
          await deliverAlerts(result.alertKeys);
          resolve({
            outcome: !result.known ? 'unknown-host' : result.written ? 'recorded' : 'unchanged',
            newest: pending.newest,
            ...(result.written ? { written: { ...pending, stats: result.written.stats } } : {}),
          });
        } catch (error) {
          reject(error);
        }
      }),
    );
  } catch (error) {
    for (const b of batch) b.reject(error);
  }
}
