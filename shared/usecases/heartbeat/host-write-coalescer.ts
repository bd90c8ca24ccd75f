// The host write coalescer: this instance's memory of each host it heard from. A Cloud Functions instance
// serves many messages: inside the window after a write, a host's further lines cost no Firestore read or
// write. A host written within the window cannot be silent (the threshold is many windows), so the write
// that ends a silent episode is never held back by it.
import { log } from '../../log.js';
import { MAX_PENDING_SAMPLES, MAX_PENDING_SNAPSHOTS, newestOf } from '../../domain/heartbeat.js';
import type { ScheduleSnapshot, Telemetry, WorkerSample } from '../../domain/telemetry/log-lines.js';
import type { HeartbeatBatcher, WriteOutcome } from './batcher.js';
import type { QueryStatsBuffer } from './query-stats-buffer.js';

/** What a message's lines came to for their host: written by it, or covered by a write in flight or in the window. */
export type HostWriteOutcome = WriteOutcome | 'coalesced';

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
  /** The newest verified heartbeat not yet written (ms), and the unsigned heartbeats not yet counted. */
  verifiedAt: number | null;
  unsigned: { count: number; lastAt: number } | null;
  /** The write in flight for this host: messages arriving meanwhile are acknowledged with it. */
  writing: Promise<WriteOutcome> | null;
}

export class HostWriteCoalescer {
  private readonly memory = new Map<string, HostMemory>();

  constructor(
    private readonly batcher: HeartbeatBatcher,
    private readonly stats: QueryStatsBuffer,
  ) {}

  /**
   * Takes a message's lines for the host: its newest line time and its telemetry. A host cannot make this
   * instance hold more than a day of its telemetry (a VM can send anything): what is over is dropped, the
   * oldest first, and counted in the number returned.
   */
  take(
    instanceId: string,
    newest: number,
    telemetry: readonly Telemetry[],
    proof: { verifiedAt?: number; unsigned?: { count: number; lastAt: number } } = {},
  ): number {
    let host = this.memory.get(instanceId);
    if (!host)
      this.memory.set(
        instanceId,
        (host = {
          writtenAt: null,
          newest: 0,
          samples: [],
          snapshots: [],
          verifiedAt: null,
          unsigned: null,
          writing: null,
        }),
      );
    host.newest = Math.max(host.newest, newest);
    if (proof.verifiedAt) host.verifiedAt = Math.max(host.verifiedAt ?? 0, proof.verifiedAt);
    if (proof.unsigned)
      host.unsigned = {
        count: (host.unsigned?.count ?? 0) + proof.unsigned.count,
        lastAt: Math.max(host.unsigned?.lastAt ?? 0, proof.unsigned.lastAt),
      };
    for (const t of telemetry)
      if (t.kind === 'heartbeat') host.samples.push(t.sample);
      else host.snapshots.push(t.snapshot);
    const samples = newestOf(host.samples, MAX_PENDING_SAMPLES);
    const snapshots = newestOf(host.snapshots, MAX_PENDING_SNAPSHOTS);
    const overflow = host.samples.length - samples.length + (host.snapshots.length - snapshots.length);
    if (overflow > 0) {
      host.samples = samples;
      host.snapshots = snapshots;
    }
    return overflow;
  }

  /**
   * Sees the lines taken for the host into Firestore: `own` when this call made the write, or learnt that
   * the host is unknown (then forgotten); `coalesced` when a write in flight or one within the window
   * covers them. A write in flight fails for every message it covers (rethrown, so Pub/Sub redelivers them).
   */
  async write(
    instanceId: string,
    windowMs: number,
    now: Date,
    cause: string,
  ): Promise<{ outcome: HostWriteOutcome; own: boolean }> {
    const host = this.memory.get(instanceId);
    if (!host) throw new Error(`logHeartbeat: no lines taken for host ${instanceId}`);
    if (host.writing) {
      // The write in flight reads `newest` when it plans, and writes again if it recorded nothing while
      // newer lines came in: these lines reach lastLogAt with it.
      const outcome = await host.writing;
      return { outcome: outcome === 'unknown-host' ? outcome : 'coalesced', own: false };
    }
    if (host.writtenAt !== null && now.getTime() - host.writtenAt < windowMs) {
      await this.stats.add([], now.getTime());
      return { outcome: 'coalesced', own: false };
    }
    const writing = this.writeNewest(instanceId, host, windowMs, now, cause);
    host.writing = writing;
    try {
      const outcome = await writing;
      if (outcome === 'unknown-host') this.memory.delete(instanceId);
      return { outcome, own: true };
    } finally {
      host.writing = null;
    }
  }

  /**
   * Writes the host's newest acknowledged line time. When that records nothing (another writer got
   * there first with an older line, or a precondition was lost) while newer lines arrived, it writes
   * again, so no acknowledged line waits for a message that may never come.
   */
  private async writeNewest(
    instanceId: string,
    host: HostMemory,
    windowMs: number,
    now: Date,
    cause: string,
  ): Promise<WriteOutcome> {
    for (let attempt = 0; ; attempt++) {
      const { outcome, newest, written } = await this.batcher.write({
        instanceId,
        pending: () => ({
          newest: host.newest,
          samples: [...host.samples],
          snapshots: [...host.snapshots],
          verifiedAt: host.verifiedAt,
          unsigned: host.unsigned,
        }),
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
        // Counted once: what arrived while the write was in flight goes with the next one.
        if (written.unsigned && host.unsigned) {
          const count = host.unsigned.count - written.unsigned.count;
          host.unsigned = count > 0 ? { count, lastAt: host.unsigned.lastAt } : null;
        }
        if (written.verifiedAt && host.verifiedAt !== null && host.verifiedAt <= written.verifiedAt)
          host.verifiedAt = null;
        await this.stats.add(written.stats, now.getTime());
      }
      if (outcome !== 'unchanged' || host.newest <= newest || attempt >= 3) return outcome;
    }
  }
}
