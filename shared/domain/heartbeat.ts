// osquery log lines -> which host they came from and how recent its newest line is (pure).
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
