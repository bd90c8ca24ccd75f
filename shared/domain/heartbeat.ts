// osquery log lines -> which host they came from and how recent its newest line is (pure).
import { planObservation, type Host, type HostChange } from './host.js';
import { isInstanceId } from './ids.js';

export interface HostIdentityAttributes {
  instanceId: string;
  project: string | null;
  zone: string | null;
}

/** The identity contract (README: Host identity): message attributes stamped by the shipper. */
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
 * lines are counted and skipped; the good ones next to them still count.
 */
export function parseLogLines(data: string, now: number, maxFutureMs = 5 * 60_000): ParsedLines {
  let newest: number | null = null;
  let lines = 0;
  let malformed = 0;
  const consider = (value: unknown) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      malformed += 1;
      return;
    }
    const t = lineTime(value as Record<string, unknown>);
    // A clock far in the future would pin lastLogAt ahead of every real line: not trusted.
    if (t === null || t > now + maxFutureMs) {
      malformed += 1;
      return;
    }
    lines += 1;
    newest = newest === null ? t : Math.max(newest, t);
  };
  const text = data.trim();
  if (text.startsWith('[')) {
    try {
      const array = JSON.parse(text) as unknown;
      if (Array.isArray(array)) {
        array.forEach(consider);
        return { newest, lines, malformed };
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
    }
  }
  return { newest, lines, malformed };
}

export interface HeartbeatPlan {
  /** Write lastLogAt = newest now. */
  write: boolean;
  /** The host was silent: this write ends the episode (state -> reporting). */
  endsSilence: boolean;
}

/**
 * Pure: whether a host's newest line must be written now. lastLogAt never moves backwards; writes are
 * coalesced to one per window; the write that ends a silent episode is never delayed.
 */
export function planHeartbeat(
  host: { lastLogAt: Date | null; state: string } | null,
  newest: number,
  lastWrittenAt: number | null,
  now: number,
  windowMs: number,
): HeartbeatPlan {
  if (!host) return { write: false, endsSilence: false };
  if (host.lastLogAt && newest <= host.lastLogAt.getTime()) return { write: false, endsSilence: false };
  if (host.state === 'silent') return { write: true, endsSilence: true };
  const due = lastWrittenAt === null || now - lastWrittenAt >= windowMs;
  return { write: due, endsSilence: false };
}

/** What recording a heartbeat writes to a host read in a transaction. */
export type HeartbeatWrite =
  | { write: 'nothing' }
  /** lastLogAt moves forward; nothing else changes. */
  | { write: 'lastLogAt'; lastLogAt: Date; updatedAt: Date }
  /** A silent host reports again: its state change (and the alert episode it closes), lastLogAt with it. */
  | { write: 'change'; change: HostChange };

/** Pure: what a heartbeat writes to the host as read: planHeartbeat's answer, as a write. */
export function planHeartbeatWrite(
  host: Host,
  newest: number,
  lastWrittenAt: number | null,
  now: Date,
  windowMs: number,
  cause: string,
): HeartbeatWrite {
  const plan = planHeartbeat(host, newest, lastWrittenAt, now.getTime(), windowMs);
  if (!plan.write) return { write: 'nothing' };
  const lastLogAt = new Date(newest);
  if (!plan.endsSilence) return { write: 'lastLogAt', lastLogAt, updatedAt: now };
  // silent -> reporting is always a change.
  const change = planObservation(host, host, { state: 'reporting', reason: null }, now, cause)!;
  return { write: 'change', change: { ...change, host: { ...change.host, lastLogAt } } };
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
