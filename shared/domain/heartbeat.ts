// osquery log lines -> which host they came from, how recent its newest line is, and what osquery says
// about its own cost (pure).
import type { EpisodeChange } from './alerts.js';
import { planObservation, type Host, type HostChange } from './host.js';
import { DEFAULT_DRIFT_GRACE_MS, foldRunning, newestRunning, type RunningState } from './drift.js';
import { isInstanceId } from './ids.js';
import { foldSyslogEvidence, type SyslogEvidence } from './syslog.js';
import { telemetryOf, type ScheduleSnapshot, type Telemetry, type WorkerSample } from './telemetry/log-lines.js';
import {
  DEFAULT_PERFORMANCE_THRESHOLDS,
  foldOsqueryd,
  performanceEpisodes,
  type OsquerydState,
  type PerformanceThresholds,
} from './telemetry/osqueryd.js';
import type { ScheduleBaseline } from './telemetry/query-cost.js';
import { foldSchedule, type QueryStatsIncrement } from './telemetry/query-stats.js';
import { reject, timeWindow, type Rejections } from './trust.js';
import { IDENTITY_TOKEN_FIELD, planSpoofResolution, type SpoofedState } from './heartbeat-identity.js';
import { HEARTBEAT_QUERY } from '../osquery/log-routing.js';

export interface HostIdentityAttributes {
  instanceId: string;
  project: string | null;
  zone: string | null;
}

/** The identity contract (docs/heartbeat.md: Host identity): message attributes stamped by the shipper. */
export function identityOf(attributes: Record<string, string>): HostIdentityAttributes | null {
  const instanceId = attributes.gce_instance_id?.trim();
  if (!instanceId || !isInstanceId(instanceId)) return null;
  return { instanceId, project: attributes.gce_project_id || null, zone: attributes.gce_zone || null };
}

export interface ParsedLines {
  /** Newest line time (ms since epoch), or null when no line carried a usable time. */
  newest: number | null;
  lines: number;
  malformed: number;
  /** The heartbeats' worker samples and the osquery_schedule snapshots among the good lines. */
  telemetry: Telemetry[];
  /** What was not trusted, by reason (shared/domain/trust.ts): malformed lines and out-of-range values. */
  rejected: Rejections;
  /** The heartbeat lines among the good ones: each line's time and its identity token (null: unsigned). */
  heartbeats: HeartbeatLine[];
}

/** A heartbeat line's time and the identity token it carries (`identity_token`), unchecked. */
export interface HeartbeatLine {
  at: number;
  token: unknown;
}

/** unixTime as a number or numeric string (seconds); calendarTime as a fallback. */
function lineTime(line: Record<string, unknown>): number | null {
  const unix = line.unixTime;
  const seconds =
    typeof unix === 'number'
      ? unix
      : typeof unix === 'string' && /^\d+(\.\d+)?$/.test(unix.trim())
        ? Number(unix)
        : NaN;
  if (Number.isFinite(seconds) && seconds > 0) return Math.round(seconds * 1000);
  if (typeof line.calendarTime === 'string') {
    const t = Date.parse(line.calendarTime);
    if (Number.isFinite(t)) return t;
  }
  return null;
}

/**
 * Pure: a message's data is one or many osquery result lines (JSON lines, or a JSON array). Malformed
 * lines and lines whose time is outside the trusted window of `now` (shared/domain/trust.ts) are counted
 * and skipped; the good ones next to them still count. Telemetry with values out of range is left out of
 * a good line. Every reason is counted in `rejected`.
 */
export function parseLogLines(data: string, now: number): ParsedLines {
  const window = timeWindow(now);
  let newest: number | null = null;
  let lines = 0;
  let malformed = 0;
  const telemetry: Telemetry[] = [];
  const rejected: Rejections = {};
  const heartbeats: HeartbeatLine[] = [];
  const consider = (value: unknown) => {
    const t =
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? lineTime(value as Record<string, unknown>)
        : null;
    // A clock far in the future would pin lastLogAt ahead of every real line: not trusted.
    const problem =
      t === null
        ? 'line-malformed'
        : t > window.latest
          ? 'line-time-in-future'
          : t < window.earliest
            ? 'line-time-too-old'
            : null;
    if (problem) {
      malformed += 1;
      reject(rejected, problem);
      return;
    }
    lines += 1;
    newest = newest === null ? t : Math.max(newest, t!);
    const line = value as Record<string, unknown>;
    if (line.name === HEARTBEAT_QUERY) heartbeats.push({ at: t!, token: line[IDENTITY_TOKEN_FIELD] ?? null });
    const found = telemetryOf(value, window, rejected);
    if (found) telemetry.push(found);
  };
  const done = () => ({ newest, lines, malformed, telemetry, rejected, heartbeats });
  const text = data.trim();
  if (text.startsWith('[')) {
    try {
      const array = JSON.parse(text) as unknown;
      if (Array.isArray(array)) {
        array.forEach(consider);
        return done();
      }
    } catch {
      // fall through to line-by-line
    }
  }
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      consider(JSON.parse(raw));
    } catch {
      malformed += 1;
      reject(rejected, 'line-malformed');
    }
  }
  return done();
}

export interface HeartbeatPlan {
  /** Write lastLogAt = newest now. */
  write: boolean;
  /** The host was silent: this write ends the episode (state -> reporting). */
  endsSilence: boolean;
}

/**
 * Pure: whether logs whose newest line is `lastLogAt` show a host reporting at `now`. The audit's rule for
 * silence (shared/domain/reconcile.ts) and logHeartbeat's for ending it are this one, so they agree.
 */
export const logsFresh = (lastLogAt: number, now: number, silenceThresholdMs: number): boolean =>
  now - lastLogAt <= silenceThresholdMs;

/**
 * Pure: whether a host's newest line must be written now. lastLogAt never moves backwards; writes are
 * coalesced to one per window; the write that ends a silent episode is never delayed. Only a line fresh
 * enough for the audit to call the host reporting ends silence: an old line (a backlog delivered after an
 * outage) moves lastLogAt forward and leaves the host silent, or the next audit would open the episode again.
 */
export function planHeartbeat(
  host: { lastLogAt: Date | null; state: string } | null,
  newest: number,
  lastWrittenAt: number | null,
  now: number,
  windowMs: number,
  silenceThresholdMs: number,
): HeartbeatPlan {
  // newest 0: lines that are no sign of life (shared/domain/heartbeat-identity.ts), only telemetry.
  if (!host || newest <= 0) return { write: false, endsSilence: false };
  if (host.lastLogAt && newest <= host.lastLogAt.getTime()) return { write: false, endsSilence: false };
  if (host.state === 'silent' && logsFresh(newest, now, silenceThresholdMs)) return { write: true, endsSilence: true };
  const due = lastWrittenAt === null || now - lastWrittenAt >= windowMs;
  return { write: due, endsSilence: false };
}

/** A host document as logHeartbeat reads it: the host and osquery's telemetry fields (docs/contracts.md). */
export interface HeartbeatHost extends Host {
  osqueryd: OsquerydState | null;
  querySchedule: ScheduleBaseline | null;
  /** What osqueryd really runs (shared/domain/drift.ts); null until a heartbeat says. */
  running?: RunningState | null;
  /** The host.spoofed episode (shared/domain/heartbeat-identity.ts); null or absent: never spoofed. */
  spoofed?: SpoofedState | null;
  unsignedHeartbeats?: { count: number; lastAt: Date } | null;
}

/** What an instance holds for a host between its writes: the newest line time and the telemetry not yet written. */
export interface PendingHeartbeat {
  newest: number;
  samples: readonly WorkerSample[];
  snapshots: readonly ScheduleSnapshot[];
  /** The newest heartbeat whose identity token proved the host (ms), if any since the last write. */
  verifiedAt?: number | null;
  /** Heartbeats without an identity token since the last write, and the newest of them (ms). */
  unsigned?: { count: number; lastAt: number } | null;
}

/** The host fields a heartbeat write sets (lastLogAt only forward). */
export interface HeartbeatFields {
  lastLogAt?: Date;
  osqueryd?: OsquerydState;
  querySchedule?: ScheduleBaseline;
  /** Syslog ingestion's evidence, from the same snapshots (shared/domain/syslog.ts). */
  syslog?: SyslogEvidence;
  /** What osqueryd runs and the drift decided from it (shared/domain/drift.ts). */
  running?: RunningState;
  /** The host.spoofed episode resolved by a verified heartbeat (shared/domain/heartbeat-identity.ts). */
  spoofed?: SpoofedState;
  unsignedHeartbeats?: { count: number; lastAt: Date };
  updatedAt: Date;
}

/** What recording a heartbeat writes to a host as read (in a transaction, or conditioned on its update time). */
export type HeartbeatWrite =
  | { write: 'nothing' }
  | {
      write: 'update';
      fields: HeartbeatFields;
      /**
       * A silent host reports again: its state change (and the
       * host.silent episode it closes), written with the fields.
       */
      change: HostChange | null;
      /** host.performance (source osquery) episodes the telemetry opens or closes, written with the fields. */
      episodes: EpisodeChange;
      /** What the schedule snapshots add to queryStats once the write is committed (buffered, written per window). */
      stats: QueryStatsIncrement[];
      /** The host.drifted episode the running evidence opens or closes, written with the fields. */
      drift?: EpisodeChange;
      /** The host.spoofed episode a verified heartbeat resolves (a transaction of its own, like a state change). */
      spoof?: EpisodeChange;
    };

/** The configuration version statistics are kept under for a host whose version is not known yet. */
export const UNKNOWN_VERSION = 'none';

/**
 * Pure: what a heartbeat writes to the host as read: lastLogAt forward (planHeartbeat), the osqueryd field
 * and its host.performance episode from the heartbeats' worker samples, the schedule baseline and the
 * statistics from the osquery_schedule snapshots: one write, coalesced to one per window like lastLogAt
 * (only the write that ends a silent episode is never held back).
 */
export function planHeartbeatWrite(
  host: HeartbeatHost,
  pending: PendingHeartbeat,
  lastWrittenAt: number | null,
  now: Date,
  windowMs: number,
  cause: string,
  thresholds: PerformanceThresholds = DEFAULT_PERFORMANCE_THRESHOLDS,
  silenceMs = DEFAULT_SILENCE_THRESHOLD_MS,
  driftGraceMs = DEFAULT_DRIFT_GRACE_MS,
): HeartbeatWrite {
  const plan = planHeartbeat(host, pending.newest, lastWrittenAt, now.getTime(), windowMs, silenceMs);
  const due = lastWrittenAt === null || now.getTime() - lastWrittenAt >= windowMs;
  if (!due && !plan.endsSilence) return { write: 'nothing' };
  const osqueryd = foldOsqueryd(host.osqueryd, pending.samples, thresholds);
  const schedule = foldSchedule(host.querySchedule, pending.snapshots, host.configVersion ?? UNKNOWN_VERSION);
  const identity = { instanceId: host.instanceId, name: host.name, project: host.project, zone: host.zone };
  const running = foldRunning(
    host.running ?? null,
    newestRunning(pending.samples.map((s) => s.running)),
    { configVersion: host.configVersion, osqueryVersion: host.osqueryVersion },
    identity,
    driftGraceMs,
  );
  const spoof = planSpoofResolution(host.spoofed ?? null, host.instanceId, pending.verifiedAt, now);
  // Written only for an unsigned heartbeat newer than the last counted: a redelivered line writes nothing.
  const unsigned =
    pending.unsigned &&
    pending.unsigned.count > 0 &&
    pending.unsigned.lastAt > (host.unsignedHeartbeats?.lastAt.getTime() ?? 0)
      ? pending.unsigned
      : null;
  if (!plan.write && !osqueryd.next && !schedule.next && !running.next && !spoof && !unsigned)
    return { write: 'nothing' };
  const fields: HeartbeatFields = { updatedAt: now };
  if (spoof) fields.spoofed = spoof.spoofed;
  if (unsigned) {
    const before = host.unsignedHeartbeats;
    const lastAt = Math.max(before?.lastAt.getTime() ?? 0, unsigned.lastAt);
    fields.unsignedHeartbeats = { count: (before?.count ?? 0) + unsigned.count, lastAt: new Date(lastAt) };
  }
  if (plan.write) fields.lastLogAt = new Date(pending.newest);
  if (osqueryd.next) fields.osqueryd = osqueryd.next;
  if (schedule.next) fields.querySchedule = schedule.next;
  if (running.next) fields.running = running.next;
  const syslog = foldSyslogEvidence(host.syslog ?? null, host.querySchedule, pending.snapshots);
  if (syslog) fields.syslog = syslog;
  // silent -> reporting is always a change.
  const change = plan.endsSilence
    ? planObservation(host, host, { state: 'reporting', reason: null }, now, cause)
    : null;
  return {
    write: 'update',
    fields,
    change: change && { ...change, host: { ...change.host, lastLogAt: fields.lastLogAt ?? host.lastLogAt } },
    episodes: performanceEpisodes(identity, osqueryd),
    stats: schedule.increments,
    ...(running.episodes.open || running.episodes.close ? { drift: running.episodes } : {}),
    ...(spoof ? { spoof: spoof.episodes } : {}),
  };
}

/**
 * Pure: how long a compliant host may go without a log line before it is silent: the set minutes, or
 * three heartbeat intervals plus the splay osquery may add to each.
 */
export function silenceThresholdMs(setting: {
  minutes?: number;
  heartbeatIntervalSeconds: number;
  splayPercent: number;
}): number {
  if (setting.minutes !== undefined) return setting.minutes * 60_000;
  return Math.round(3 * setting.heartbeatIntervalSeconds * (1 + setting.splayPercent / 100) * 1000);
}

/** The default (docs/heartbeat.md): three 5-minute heartbeat intervals plus 10% splay (16.5 minutes). */
export const DEFAULT_SILENCE_THRESHOLD_MS = silenceThresholdMs({ heartbeatIntervalSeconds: 300, splayPercent: 10 });

/**
 * How much telemetry an instance keeps for one host between two of its writes: a day of 5-minute
 * heartbeats and of hourly snapshots, more than any backlog delivered within one write window. A host
 * that sends more loses its oldest (their counters are cumulative: the newest still measure the span).
 */
export const MAX_PENDING_SAMPLES = 288;
export const MAX_PENDING_SNAPSHOTS = 24;

/** Pure: the newest `max` items by time, in their order; the rest are dropped. */
export function newestOf<T extends { at: number }>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  const keep = new Set([...items].sort((a, b) => b.at - a.at).slice(0, max));
  return items.filter((x) => keep.has(x));
}
