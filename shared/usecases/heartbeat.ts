// logHeartbeat: when each host's osquery logs last arrived, and what osquery says about its own cost
// (hosts/{id}.osqueryd and host.performance from the heartbeat, queryStats from osquery_schedule).
import { config, performanceThresholds, reconcileSettings } from '../config.js';
import { isTransient } from '../errors.js';
import { log } from '../log.js';
import {
  identityOf,
  MAX_PENDING_SAMPLES,
  MAX_PENDING_SNAPSHOTS,
  newestOf,
  parseLogLines,
  planHeartbeatWrite,
  type HeartbeatHost,
  type HeartbeatWrite,
  type PendingHeartbeat,
} from '../domain/heartbeat.js';
import type { ScheduleSnapshot, WorkerSample } from '../domain/telemetry/log-lines.js';
import { addIncrements, type QueryStatsIncrement } from '../domain/telemetry/query-stats.js';
import { reject as rejectValue, type Rejections } from '../domain/trust.js';
import type { PubSubMessage } from '../adapters/pubsub.js';
import type { Timestamp } from '@google-cloud/firestore';
import * as hosts from '../adapters/hosts.js';
import { writeQueryStats, type QueryStatsWrite } from '../adapters/telemetry.js';
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
/**
 * The buffer's bound: far above a fleet's versions x queries (a few thousand), so only a buffer that
 * cannot be written for hours reaches it. Increments for further documents are dropped and counted.
 */
export const MAX_BUFFERED_STATS_DOCUMENTS = 10_000;
/** Increments refused since the last flush because the buffer was full: logged by the next flush. */
let statsRefused = 0;

export function forgetHeartbeatCache(): void {
  memory.clear();
  statsBuffer.clear();
  statsSince = null;
  statsRefused = 0;
}

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Writes the buffered queryStats increments now (one write per query document); the number written.
 * Increments apply once: what was committed is done; what failed transiently is kept for the next flush
 * (the hosts' baselines have moved on, a redelivery would not bring them back) and the flush fails; a
 * document that failed for any other reason can never be written and is dropped with a logged reason.
 */
export async function flushQueryStats(): Promise<number> {
  if (statsFlushing) await statsFlushing.catch(() => 0);
  if (statsRefused > 0) {
    log.warn(
      { refused: statsRefused, documents: statsBuffer.size, maxDocuments: MAX_BUFFERED_STATS_DOCUMENTS },
      'logHeartbeat: queryStats buffer full, increments for further documents dropped',
    );
    statsRefused = 0;
  }
  if (statsBuffer.size === 0) return 0;
  const increments = [...statsBuffer.values()];
  statsBuffer.clear();
  statsSince = null;
  statsFlushing = writeQueryStats(increments).then(settleQueryStats);
  try {
    return await statsFlushing;
  } finally {
    statsFlushing = null;
  }
}

function settleQueryStats({ written, failed }: QueryStatsWrite): number {
  const again = failed.filter((f) => isTransient(f.error));
  const poison = failed.filter((f) => !isTransient(f.error));
  if (poison.length > 0)
    log.warn(
      {
        documents: poison.length,
        ids: poison.slice(0, 5).map((f) => f.increment.id.slice(0, 200)),
        reason: reasonOf(poison[0]!.error),
      },
      'logHeartbeat: queryStats documents that cannot be written, their increments dropped',
    );
  if (again.length === 0) return written.length;
  statsRefused += addIncrements(
    statsBuffer,
    again.map((f) => f.increment),
    MAX_BUFFERED_STATS_DOCUMENTS,
  );
  statsSince ??= Date.now();
  throw again[0]!.error;
}

/** Buffers a committed write's statistics; flushes when the buffer is older than the stats window. */
async function bufferQueryStats(increments: QueryStatsIncrement[], now: number): Promise<void> {
  if (increments.length > 0) {
    statsRefused += addIncrements(statsBuffer, increments, MAX_BUFFERED_STATS_DOCUMENTS);
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
      { lines: parsed.lines, attributes: message.attributes, messageId: message.messageId, rejected: parsed.rejected },
      'logHeartbeat: log lines without host identity attributes',
    );
    return { ...base, outcome: 'no-identity' };
  }
  const rejected: Rejections = { ...parsed.rejected };
  if (parsed.newest === null) {
    warnRejected(identity, message, parsed, rejected);
    return { ...base, outcome: 'no-lines' };
  }

  const windowMs = config().HEARTBEAT_WRITE_WINDOW_SECONDS * 1000;
  let host = memory.get(identity.instanceId);
  if (!host)
    memory.set(identity.instanceId, (host = { writtenAt: null, newest: 0, samples: [], snapshots: [], writing: null }));
  host.newest = Math.max(host.newest, parsed.newest);
  for (const t of parsed.telemetry)
    if (t.kind === 'heartbeat') host.samples.push(t.sample);
    else host.snapshots.push(t.snapshot);
  // A host cannot make this instance hold more than a day of its telemetry (a VM can send anything).
  const samples = newestOf(host.samples, MAX_PENDING_SAMPLES);
  const snapshots = newestOf(host.snapshots, MAX_PENDING_SNAPSHOTS);
  const overflow = host.samples.length - samples.length + (host.snapshots.length - snapshots.length);
  if (overflow > 0) {
    rejectValue(rejected, 'telemetry-overflow', overflow);
    host.samples = samples;
    host.snapshots = snapshots;
  }
  warnRejected(identity, message, parsed, rejected);
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

/** One line per message that carried something not trusted: the host, and how many of each reason. */
function warnRejected(
  identity: { instanceId: string; project: string | null; zone: string | null },
  message: PubSubMessage,
  parsed: { lines: number; malformed: number },
  rejected: Rejections,
): void {
  if (Object.keys(rejected).length === 0) return;
  log.warn(
    { ...identity, messageId: message.messageId, lines: parsed.lines, malformed: parsed.malformed, rejected },
    'logHeartbeat: lines or values from the VM not trusted, not recorded',
  );
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
      discard: (telemetry, reason) => {
        const gone = new Set<unknown>([...telemetry.samples, ...telemetry.snapshots]);
        if (![...host.samples, ...host.snapshots].some((x) => gone.has(x))) return;
        host.samples = host.samples.filter((x) => !gone.has(x));
        host.snapshots = host.snapshots.filter((x) => !gone.has(x));
        log.warn(
          { instanceId, samples: telemetry.samples.length, snapshots: telemetry.snapshots.length, reason },
          "logHeartbeat: the host's telemetry cannot be written, dropped; lastLogAt is written without it",
        );
      },
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
  /** Forgets telemetry that cannot be written (logged with the reason), so it does not fail every later write. */
  discard: (telemetry: PendingHeartbeat, reason: string) => void;
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
type Item = (typeof queue)[number];
/** One host's plain update in the batch: its items (the first carries the telemetry), planned on one read. */
interface HostWrite {
  instanceId: string;
  items: Item[];
  pending: PendingHeartbeat;
  planned: Planned;
  readAt: Timestamp;
}

const withoutTelemetry = (pending: PendingHeartbeat): PendingHeartbeat => ({
  newest: pending.newest,
  samples: [],
  snapshots: [],
});
const hasTelemetry = (pending: PendingHeartbeat) => pending.samples.length + pending.snapshots.length > 0;

type Plan = (write: PendingWrite, host: HeartbeatHost, pending: PendingHeartbeat) => HeartbeatWrite;
/** A write to decide again in a transaction of its own; `telemetry` false once the host's was dropped. */
type Retry = { item: Item; telemetry: boolean };

/**
 * Writes a batch of hosts' heartbeats: one read, one commit. A failure is one host's, never its neighbours'
 * (any VM can send anything): a host whose planning or write fails for a reason that is not transient has
 * its telemetry dropped (logged) and its lastLogAt written without it; what still fails is rejected alone,
 * and an error of unknown cause is rethrown, so the message is redelivered rather than acknowledged.
 */
async function writeBatch(batch: Item[]): Promise<void> {
  try {
    const thresholds = performanceThresholds();
    const silenceMs = reconcileSettings().silenceThresholdMs;
    const plan: Plan = (write, host, pending) =>
      planHeartbeatWrite(
        host,
        pending,
        write.lastWrittenAt,
        write.now,
        write.windowMs,
        write.cause,
        thresholds,
        silenceMs,
      );
    const read = await hosts.readHosts([...new Set(batch.map((b) => b.write.instanceId))]);
    const slow: Retry[] = [];
    // One write per host in a commit: a host's messages share one memory, the first planned carries it all.
    const fast = new Map<string, HostWrite>();
    for (const item of batch) {
      const { write } = item;
      const same = fast.get(write.instanceId);
      if (same) {
        same.items.push(item);
        continue;
      }
      const found = read.get(write.instanceId);
      if (!found) {
        item.resolve({ outcome: 'unknown-host', newest: write.pending().newest });
        continue;
      }
      const planned = planItem(item, found.host, plan);
      if (!planned) continue;
      const { pending, update } = planned;
      if (update.write === 'nothing') item.resolve({ outcome: 'unchanged', newest: pending.newest });
      // Ending a silent episode changes state and alerts: a transaction of its own.
      else if (update.change) slow.push({ item, telemetry: hasTelemetry(pending) });
      else
        fast.set(write.instanceId, {
          instanceId: write.instanceId,
          items: [item],
          pending,
          planned: update,
          readAt: found.updateTime,
        });
    }
    slow.push(...(await commitTogether([...fast.values()])));
    await Promise.all(slow.map(({ item, telemetry }) => recordAlone(item, telemetry, plan)));
  } catch (error) {
    // Whatever is not settled yet fails with it (settling twice changes nothing).
    for (const b of batch) b.reject(error);
  }
}

/**
 * Plans one item's write on the host as read. A plan that throws (a value no check foresaw) is made again
 * without the host's telemetry, which is dropped with the reason; null when even that throws (the item is
 * rejected with the error: its cause is unknown, the message is redelivered).
 */
function planItem(
  item: Item,
  host: HeartbeatHost,
  plan: Plan,
): { pending: PendingHeartbeat; update: HeartbeatWrite } | null {
  const all = item.write.pending();
  for (const pending of hasTelemetry(all) ? [all, withoutTelemetry(all)] : [all])
    try {
      return { pending, update: plan(item.write, host, pending) };
    } catch (error) {
      if (hasTelemetry(pending)) item.write.discard(pending, reasonOf(error));
      else item.reject(error);
    }
  return null;
}

/**
 * One commit for the plain updates, each conditioned on the document being as read; the writes to decide
 * again are returned (someone wrote in between). A commit that fails for another reason than a transient
 * one is tried again host by host, so a write Firestore refuses costs its own host alone: that host's
 * telemetry is dropped (logged) and it is decided again without it.
 */
async function commitTogether(writes: HostWrite[]): Promise<Retry[]> {
  const again: Retry[] = [];
  const update = (w: HostWrite) => ({ instanceId: w.instanceId, planned: w.planned, readAt: w.readAt });
  const recorded = (w: HostWrite) =>
    w.items.forEach((item, i) =>
      item.resolve({
        outcome: 'recorded',
        newest: w.pending.newest,
        ...(i === 0 ? { written: { ...w.pending, stats: w.planned.stats } } : {}),
      }),
    );
  const decideAgain = (w: HostWrite, telemetry: boolean) => again.push(...w.items.map((item) => ({ item, telemetry })));
  const fail = (w: HostWrite, error: unknown) => w.items.forEach((item) => item.reject(error));
  try {
    const committed = await hosts.writeHeartbeats(writes.map(update));
    if (!committed.committed) writes.forEach((w) => decideAgain(w, true));
    else {
      await deliverAlerts(committed.alertKeys);
      writes.forEach(recorded);
    }
    return again;
  } catch (error) {
    if (isTransient(error)) {
      writes.forEach((w) => fail(w, error));
      return again;
    }
  }
  await Promise.all(
    writes.map(async (w) => {
      try {
        const alone = await hosts.writeHeartbeats([update(w)]);
        if (!alone.committed) return decideAgain(w, true);
        await deliverAlerts(alone.alertKeys);
        recorded(w);
      } catch (error) {
        if (isTransient(error) || !hasTelemetry(w.pending)) return fail(w, error);
        w.items[0]!.write.discard(w.pending, reasonOf(error));
        decideAgain(w, false);
      }
    }),
  );
  return again;
}

/**
 * One host's write in a transaction of its own, planned again on a fresh read with whatever newer lines
 * arrived meanwhile. When it fails for a reason that is not transient, the telemetry is dropped (logged)
 * and lastLogAt is written without it.
 */
async function recordAlone({ write, resolve, reject }: Item, telemetry: boolean, plan: Plan): Promise<void> {
  const all = write.pending();
  const pending = telemetry ? all : withoutTelemetry(all);
  try {
    const result = await hosts.recordHeartbeat(write.instanceId, (host) => plan(write, host, pending));
    await deliverAlerts(result.alertKeys);
    resolve({
      outcome: !result.known ? 'unknown-host' : result.written ? 'recorded' : 'unchanged',
      newest: pending.newest,
      ...(result.written ? { written: { ...pending, stats: result.written.stats } } : {}),
    });
  } catch (error) {
    if (isTransient(error) || !hasTelemetry(pending)) return reject(error);
    write.discard(all, reasonOf(error));
    return recordAlone({ write, resolve, reject }, false, plan);
  }
}
