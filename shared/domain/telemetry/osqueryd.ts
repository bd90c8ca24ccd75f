// osqueryd's CPU and memory per host (pure): each heartbeat against the host's last one, and the
// host.performance (source osquery) episodes the thresholds open and close.
import { episodeKey, type AlertHost, type EpisodeChange } from '../alerts.js';
import { sameWorker, type WorkerId, type WorkerSample } from './log-lines.js';

/**
 * What a heartbeat sample does to a host's baseline (its previous sample):
 * - `interval`: same worker, newer, counters not backwards: CPU% over the interval;
 * - `first` (no baseline), `restart` (another pid or start_time), `reset` (counters went backwards):
 *   the sample becomes the baseline, no interval;
 * - `stale`: not newer than the baseline (out-of-order delivery or a redelivery): ignored.
 */
export type CpuStep =
  | { kind: 'interval'; cpuPercent: number; intervalMs: number }
  | { kind: 'first' | 'restart' | 'reset' }
  | { kind: 'stale' };

/** CPU% is of one core: (user + system CPU time) / wall time, like top and osquery's watchdog. */
export function cpuStep(
  baseline: (WorkerId & { userMs: number; systemMs: number; at: number }) | null,
  sample: WorkerSample,
): CpuStep {
  if (!baseline) return { kind: 'first' };
  if (sample.at <= baseline.at) return { kind: 'stale' };
  if (!sameWorker(baseline, sample)) return { kind: 'restart' };
  if (sample.userMs < baseline.userMs || sample.systemMs < baseline.systemMs) return { kind: 'reset' };
  const cpuMs = sample.userMs - baseline.userMs + (sample.systemMs - baseline.systemMs);
  const intervalMs = sample.at - baseline.at;
  // Rounded to a thousandth of a percent: more is noise (CPU time comes in 10 ms ticks), less is not stored.
  return { kind: 'interval', cpuPercent: Math.round((cpuMs / intervalMs) * 100_000) / 1000, intervalMs };
}

export interface PerformanceThresholds {
  /** Percent of one core. */
  cpuPercent: number;
  /** Consecutive heartbeat intervals above cpuPercent before it fires. */
  consecutive: number;
  /** Resident memory of the worker. */
  rssBytes: number;
}

const MiB = 1024 * 1024;

/**
 * The review's 10% on two consecutive heartbeats (10 minutes); memory at 300 MiB, about 85% of the
 * bundle's 350 MB watchdog limit, so the alert comes before the watchdog kills the worker.
 */
export const DEFAULT_PERFORMANCE_THRESHOLDS: PerformanceThresholds = {
  cpuPercent: 10,
  consecutive: 2,
  rssBytes: 300 * MiB,
};

export type PerformanceCause = 'cpu' | 'memory' | 'cpu+memory';

/**
 * The host document's `osqueryd` field: the contract's {cpuPercent, rssBytes, at}, the baseline the next
 * heartbeat is measured against, and the decision state carried from one heartbeat to the next.
 */
export interface OsquerydState {
  /** osqueryd worker CPU over the last interval, percent of one core; null right after a first sample or restart. */
  cpuPercent: number | null;
  rssBytes: number;
  /** The heartbeat's time. */
  at: Date;
  pid: number;
  startTime: number;
  userMs: number;
  systemMs: number;
  /** Consecutive measured intervals above the CPU threshold, up to this heartbeat. */
  cpuOver: number;
  /**
   * Consecutive heartbeats from a new worker (a restart each), 0 after a measured interval: a worker the
   * watchdog keeps killing shows here before its lines stop (absent on documents written before it).
   */
  restarts?: number;
  /** The open host.performance (source osquery) episode. */
  episode: { since: Date; cause: PerformanceCause } | null;
}

export interface OsquerydDecision {
  step: CpuStep['kind'];
  /** The field to write; null when the sample is stale (nothing is written, nothing alerts). */
  next: OsquerydState | null;
  /** Opens host.performance: the episode starts at this heartbeat. */
  fire: { since: Date; cause: PerformanceCause; reason: string } | null;
  /** Closes the open episode. */
  resolve: { since: Date; at: Date; reason: string } | null;
}

const pct = (n: number) => `${Math.round(n * 10) / 10}%`;
const mib = (n: number) => `${Math.round(n / MiB)} MiB`;

/**
 * Pure: a heartbeat sample against the host's `osqueryd` field. CPU above the threshold on
 * `consecutive` measured intervals, or memory above its threshold on any heartbeat, opens an episode;
 * a heartbeat where neither holds closes it. A heartbeat without an interval (first sample, restart)
 * neither counts as over nor as recovered for CPU. A stale sample (redelivered, out of order) changes
 * nothing, so redelivery never fires or resolves twice.
 */
export function decideOsqueryd(
  previous: OsquerydState | null,
  sample: WorkerSample,
  thresholds: PerformanceThresholds = DEFAULT_PERFORMANCE_THRESHOLDS,
): OsquerydDecision {
  const step = cpuStep(previous && { ...previous, at: previous.at.getTime() }, sample);
  if (step.kind === 'stale') return { step: step.kind, next: null, fire: null, resolve: null };
  const cpuPercent = step.kind === 'interval' ? step.cpuPercent : null;
  const cpuOver =
    cpuPercent === null
      ? (previous?.cpuOver ?? 0)
      : cpuPercent > thresholds.cpuPercent
        ? (previous?.cpuOver ?? 0) + 1
        : 0;
  const cpuHot = cpuOver >= thresholds.consecutive;
  const memoryHot = sample.rssBytes > thresholds.rssBytes;
  const cause: PerformanceCause | null =
    cpuHot && memoryHot ? 'cpu+memory' : cpuHot ? 'cpu' : memoryHot ? 'memory' : null;
  const at = new Date(sample.at);
  let episode = previous?.episode ?? null;
  let fire: OsquerydDecision['fire'] = null;
  let resolve: OsquerydDecision['resolve'] = null;
  if (!episode && cause) {
    const parts: string[] = [];
    if (cpuHot)
      parts.push(
        `osqueryd CPU ${pct(cpuPercent ?? 0)} of a core on ${cpuOver} consecutive heartbeats ` +
          `(threshold ${pct(thresholds.cpuPercent)})`,
      );
    if (memoryHot) parts.push(`osqueryd memory ${mib(sample.rssBytes)} (threshold ${mib(thresholds.rssBytes)})`);
    episode = { since: at, cause };
    fire = { since: at, cause, reason: parts.join('; ') };
  } else if (episode && !cause) {
    resolve = {
      since: episode.since,
      at,
      reason: `osqueryd back to ${cpuPercent === null ? 'n/a' : pct(cpuPercent)} CPU, ${mib(sample.rssBytes)}`,
    };
    episode = null;
  }
  const next: OsquerydState = {
    cpuPercent,
    rssBytes: sample.rssBytes,
    at,
    pid: sample.pid,
    startTime: sample.startTime,
    userMs: sample.userMs,
    systemMs: sample.systemMs,
    cpuOver,
    restarts: step.kind === 'restart' ? (previous?.restarts ?? 0) + 1 : 0,
    episode,
  };
  return { step: step.kind, next, fire, resolve };
}

/** What several heartbeats of a host, written together, do to its `osqueryd` field and its episode. */
export interface OsquerydFold {
  /** The field to write; null when every sample was stale. */
  next: OsquerydState | null;
  /** The episode open after the samples that was not open before them: it fires. */
  open: { since: Date; cause: PerformanceCause; reason: string } | null;
  /** The episode open before the samples and closed after them: it resolves. */
  close: { since: Date; at: Date; reason: string } | null;
}

/**
 * Pure: the heartbeats a host sent since its last write (a write window holds one in production, several
 * when deliveries pile up), in time order through decideOsqueryd, so consecutive heartbeats count exactly
 * however they were coalesced. The write carries the net change of the episode: one that opened and
 * closed between two writes (within one write window, only in a backlog of old heartbeats) is over by the
 * time it is seen and does not alert.
 */
export function foldOsqueryd(
  previous: OsquerydState | null,
  samples: readonly WorkerSample[],
  thresholds: PerformanceThresholds = DEFAULT_PERFORMANCE_THRESHOLDS,
): OsquerydFold {
  let state = previous;
  let changed = false;
  let fire: OsquerydDecision['fire'] = null;
  let resolve: OsquerydDecision['resolve'] = null;
  const before = previous?.episode ?? null;
  for (const sample of [...samples].sort((a, b) => a.at - b.at)) {
    const d = decideOsqueryd(state, sample, thresholds);
    if (!d.next) continue;
    state = d.next;
    changed = true;
    if (d.fire) fire = d.fire;
    if (d.resolve && before && d.resolve.since.getTime() === before.since.getTime()) resolve ??= d.resolve;
  }
  const after = state?.episode ?? null;
  const same = before !== null && after !== null && before.since.getTime() === after.since.getTime();
  return {
    next: changed ? state : null,
    open: after && !same ? fire : null,
    close: before && !same ? resolve : null,
  };
}

/** host.performance from osquery's own heartbeats: a warning, like Cloud Monitoring's. */
export const PERFORMANCE_SOURCE = 'osquery';

/** Pure: the host.performance (source osquery) episode records a fold opens or closes. */
export function performanceEpisodes(host: AlertHost, fold: OsquerydFold): EpisodeChange {
  const change: EpisodeChange = {};
  if (fold.close)
    change.close = {
      kind: 'host.performance',
      instanceId: host.instanceId,
      previousSince: fold.close.since,
      at: fold.close.at,
    };
  if (fold.open)
    change.open = {
      kind: 'host.performance',
      severity: 'warning',
      dedupKey: episodeKey('host.performance', host.instanceId, fold.open.since),
      host,
      reason: fold.open.reason,
      since: fold.open.since,
      source: PERFORMANCE_SOURCE,
    };
  return change;
}
