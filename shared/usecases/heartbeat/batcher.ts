// The heartbeat batcher: the host writes an instance has to make at about the same time share one read
// and one commit. Messages handled concurrently have their hosts fetched together (getAll), then each
// lastLogAt is advanced with a write conditioned on what was read. A message is acknowledged only after
// its write.
import type { Timestamp } from '@google-cloud/firestore';
import { driftGraceMs, performanceThresholds, reconcileSettings } from '../../config.js';
import { isTransient } from '../../errors.js';
import {
  planHeartbeatWrite,
  type HeartbeatHost,
  type HeartbeatWrite,
  type PendingHeartbeat,
} from '../../domain/heartbeat.js';
import type { QueryStatsIncrement } from '../../domain/telemetry/query-stats.js';
import type { readHosts, recordHeartbeat, writeHeartbeats } from '../../adapters/hosts.js';

/** Where the batcher reads and writes hosts, and sends the alerts its writes owe: Firestore in production. */
export interface HeartbeatStore {
  readHosts: (instanceIds: string[]) => ReturnType<typeof readHosts>;
  writeHeartbeats: (writes: Parameters<typeof writeHeartbeats>[0]) => ReturnType<typeof writeHeartbeats>;
  recordHeartbeat: (
    instanceId: string,
    plan: Parameters<typeof recordHeartbeat>[1],
  ) => ReturnType<typeof recordHeartbeat>;
  deliverAlerts: (keys: Iterable<string>) => Promise<number>;
}

/** One host's write, as the coalescer asks for it. */
export interface PendingWrite {
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

/** What one host's write came to: its lines recorded, nothing to record, or no such host. */
export type WriteOutcome = 'recorded' | 'unchanged' | 'unknown-host';

export interface WriteResult {
  outcome: WriteOutcome;
  /** The line time the write planned with. */
  newest: number;
  /** The telemetry the committed write (or a decision to write nothing) disposed of, and the statistics it owes. */
  written?: PendingHeartbeat & { stats: QueryStatsIncrement[] };
}

// At most 500 operations a commit: a host update and up to two host.performance and two host.drifted
// episode records each.
const MAX_BATCH = 100;
const BATCH_DELAY_MS = 5;

type Item = { write: PendingWrite; resolve: (r: WriteResult) => void; reject: (e: unknown) => void };
type Planned = Extract<HeartbeatWrite, { write: 'update' }>;
/** One host's plain update in the batch: its items (the first carries the telemetry), planned on one read. */
interface HostWrite {
  instanceId: string;
  items: Item[];
  pending: PendingHeartbeat;
  planned: Planned;
  readAt: Timestamp;
}
type Plan = (write: PendingWrite, host: HeartbeatHost, pending: PendingHeartbeat) => HeartbeatWrite;
/** A write to decide again in a transaction of its own; `telemetry` false once the host's was dropped. */
type Retry = { item: Item; telemetry: boolean };

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
const withoutTelemetry = (pending: PendingHeartbeat): PendingHeartbeat => ({
  ...pending,
  samples: [],
  snapshots: [],
});
const hasTelemetry = (pending: PendingHeartbeat) => pending.samples.length + pending.snapshots.length > 0;

export class HeartbeatBatcher {
  private queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly store: HeartbeatStore) {}

  /** Queues one host's write: it goes with the batch, sent when full or after a few milliseconds. */
  write(write: PendingWrite): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (this.queue.length >= MAX_BATCH) this.send();
      else this.timer ??= setTimeout(() => this.send(), BATCH_DELAY_MS);
    });
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    void this.writeBatch(batch);
  }

  /**
   * Writes a batch of hosts' heartbeats: one read, one commit. A failure is one host's, never its neighbours'
   * (any VM can send anything): a host whose planning or write fails for a reason that is not transient has
   * its telemetry dropped (logged) and its lastLogAt written without it; what still fails is rejected alone,
   * and an error of unknown cause is rethrown, so the message is redelivered rather than acknowledged.
   */
  private async writeBatch(batch: Item[]): Promise<void> {
    try {
      const thresholds = performanceThresholds();
      const silenceMs = reconcileSettings().silenceThresholdMs;
      const graceMs = driftGraceMs();
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
          graceMs,
        );
      const read = await this.store.readHosts([...new Set(batch.map((b) => b.write.instanceId))]);
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
        // A host document that does not match its definition: this host's lines are released for redelivery
        // (an error of unknown cause, never acknowledged), its neighbours in the batch go on.
        const invalid = read.invalid.get(write.instanceId);
        if (invalid) {
          item.reject(invalid);
          continue;
        }
        const found = read.hosts.get(write.instanceId);
        if (!found) {
          item.resolve({ outcome: 'unknown-host', newest: write.pending().newest });
          continue;
        }
        const planned = planItem(item, found.host, plan);
        if (!planned) continue;
        const { pending, update } = planned;
        if (update.write === 'nothing') item.resolve({ outcome: 'unchanged', newest: pending.newest });
        // Ending a silent (or spoofed) episode changes state and alerts: a transaction of its own.
        else if (update.change || update.spoof) slow.push({ item, telemetry: hasTelemetry(pending) });
        else
          fast.set(write.instanceId, {
            instanceId: write.instanceId,
            items: [item],
            pending,
            planned: update,
            readAt: found.updateTime,
          });
      }
      slow.push(...(await this.commitTogether([...fast.values()])));
      await Promise.all(slow.map(({ item, telemetry }) => this.recordAlone(item, telemetry, plan)));
    } catch (error) {
      // Whatever is not settled yet fails with it (settling twice changes nothing).
      for (const b of batch) b.reject(error);
    }
  }

  /**
   * One commit for the plain updates, each conditioned on the document being as read; the writes to decide
   * again are returned (someone wrote in between). A commit that fails for another reason than a transient
   * one is tried again host by host, so a write Firestore refuses costs its own host alone: that host's
   * telemetry is dropped (logged) and it is decided again without it.
   */
  private async commitTogether(writes: HostWrite[]): Promise<Retry[]> {
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
    const decideAgain = (w: HostWrite, telemetry: boolean) =>
      again.push(...w.items.map((item) => ({ item, telemetry })));
    const fail = (w: HostWrite, error: unknown) => w.items.forEach((item) => item.reject(error));
    try {
      const committed = await this.store.writeHeartbeats(writes.map(update));
      if (!committed.committed) writes.forEach((w) => decideAgain(w, true));
      else {
        await this.store.deliverAlerts(committed.alertKeys);
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
          const alone = await this.store.writeHeartbeats([update(w)]);
          if (!alone.committed) return decideAgain(w, true);
          await this.store.deliverAlerts(alone.alertKeys);
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
  private async recordAlone({ write, resolve, reject }: Item, telemetry: boolean, plan: Plan): Promise<void> {
    const all = write.pending();
    const pending = telemetry ? all : withoutTelemetry(all);
    try {
      const result = await this.store.recordHeartbeat(write.instanceId, (host) => plan(write, host, pending));
      await this.store.deliverAlerts(result.alertKeys);
      resolve({
        outcome: !result.known ? 'unknown-host' : result.written ? 'recorded' : 'unchanged',
        newest: pending.newest,
        ...(result.written ? { written: { ...pending, stats: result.written.stats } } : {}),
      });
    } catch (error) {
      if (isTransient(error) || !hasTelemetry(pending)) return reject(error);
      write.discard(all, reasonOf(error));
      return this.recordAlone({ write, resolve, reject }, false, plan);
    }
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
