// What osqueryd really runs, from osquery itself (pure; docs/osquery-upgrade.md): the heartbeat's
// osquery_info columns and the `config_version` decoration the bundle's load decorator stamps on every line.
// A host whose running configuration or osquery release differs from what OS Config says it applied, or
// whose configuration osquery calls invalid, for longer than the grace period is drifted: one host.drifted
// episode (not a host state: a drifted host still reports, and the audit owns the states).
import { episodeKey, type AlertHost, type EpisodeChange } from './alerts.js';

/** What one heartbeat line proves about the running osqueryd. */
export interface RunningEvidence {
  /** osquery_info.version, e.g. 5.23.1. */
  osqueryVersion: string | null;
  /** The `config_version` decoration: the configuration osqueryd loaded (null: a bundle without the decorator). */
  configVersion: string | null;
  /** osquery_info.config_valid (null: not reported). */
  configValid: boolean | null;
  /** osquery_info.start_time of the worker, seconds since the epoch. */
  startTime: number | null;
  /** osquery_info.watcher: a watchdog process watches the worker (null: not reported). */
  watcher: boolean | null;
  /** The time of the line that proved it, ms since the epoch. */
  at: number;
}

/** hosts/{id}.running: the newest evidence, and the drift decided from it. */
export interface RunningState {
  osqueryVersion: string | null;
  configVersion: string | null;
  configValid: boolean | null;
  startTime: number | null;
  watcher: boolean | null;
  /** The line that proved it. */
  at: Date;
  /** When what runs was first seen to differ from what was applied (null: it matches). */
  driftSince: Date | null;
  /** Why it differs (`config-version`, `osquery-version`, `config-invalid`), or null. */
  drift: string | null;
  /** The open host.drifted episode began then (driftSince), or null: none open. */
  driftedSince: Date | null;
}

const VERSION = /^\d+\.\d+\.\d+$/;
/** A configuration version as render makes them; anything else from a line is not trusted. */
const CONFIG_VERSION = /^v[0-9a-f]{12}$/;

const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v).trim() : null);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Pure: the evidence in a heartbeat line (its first row, its decorations) at `at`. Values that are not what
 * osquery writes (a version that is not x.y.z, a configuration version render never made) are left null.
 */
export function runningOf(line: Record<string, unknown>, row: Record<string, unknown>, at: number): RunningEvidence {
  const decorations = isObject(line.decorations) ? line.decorations : {};
  const version = text(row.osquery_version ?? row.version);
  const configVersion = text(decorations.config_version);
  const valid = text(row.config_valid);
  const start = Number(text(row.start_time));
  const watcher = Number(text(row.watcher));
  return {
    osqueryVersion: version && VERSION.test(version) ? version : null,
    configVersion: configVersion && CONFIG_VERSION.test(configVersion) ? configVersion : null,
    configValid: valid === '1' || valid === 'true' ? true : valid === '0' || valid === 'false' ? false : null,
    startTime: Number.isInteger(start) && start > 0 ? start : null,
    watcher: text(row.watcher) === null || !Number.isInteger(watcher) ? null : watcher > 0,
    at,
  };
}

/** The newest of a batch of evidence (null: none). */
export const newestRunning = (items: ReadonlyArray<RunningEvidence | undefined>): RunningEvidence | null =>
  items.reduce<RunningEvidence | null>((a, b) => (b && (!a || b.at > a.at) ? b : a), null);

/** The default grace period: three heartbeat intervals (OS Config restarts osqueryd right after placing files). */
export const DEFAULT_DRIFT_GRACE_MS = 15 * 60_000;

/** What the host is assigned, as OS Config reported applying it: the configuration and the installed release. */
export interface Applied {
  configVersion: string | null;
  /** The installed osquery package from OS Config inventory (`5.23.1-1.linux` or `5.23.1`), or null. */
  osqueryVersion: string | null;
}

/** Pure: why what runs differs from what was applied, or null (unknown values never count as a difference). */
export function driftOf(running: RunningEvidence, applied: Applied): string | null {
  if (running.configValid === false) return 'config-invalid';
  if (running.configVersion && applied.configVersion && running.configVersion !== applied.configVersion)
    return `config-version:${running.configVersion}!=${applied.configVersion}`;
  const installed = applied.osqueryVersion?.split('-')[0];
  if (running.osqueryVersion && installed && running.osqueryVersion !== installed)
    return `osquery-version:${running.osqueryVersion}!=${installed}`;
  return null;
}

/**
 * Pure: the host's running state after `evidence` (ignored unless newer than what is recorded), and the
 * host.drifted episode it opens (the difference lasted the grace period, by the lines' own times) or closes
 * (what runs matches again). One episode per drift: a longer drift opens nothing more.
 */
export function foldRunning(
  previous: RunningState | null,
  evidence: RunningEvidence | null,
  applied: Applied,
  host: AlertHost,
  graceMs: number = DEFAULT_DRIFT_GRACE_MS,
): { next: RunningState | null; episodes: EpisodeChange } {
  if (!evidence || (previous && evidence.at <= previous.at.getTime())) return { next: null, episodes: {} };
  const at = new Date(evidence.at);
  const drift = driftOf(evidence, applied);
  const driftSince = drift ? (previous?.driftSince ?? at) : null;
  const open = previous?.driftedSince ?? null;
  const episodes: EpisodeChange = {};
  let driftedSince = open;
  if (!drift && open) {
    episodes.close = { kind: 'host.drifted', instanceId: host.instanceId, previousSince: open, at };
    driftedSince = null;
  } else if (drift && !open && driftSince && evidence.at - driftSince.getTime() >= graceMs) {
    driftedSince = driftSince;
    episodes.open = {
      kind: 'host.drifted',
      severity: 'warning',
      dedupKey: episodeKey('host.drifted', host.instanceId, driftSince),
      host,
      reason: drift,
      since: driftSince,
    };
  }
  const { at: _at, ...values } = evidence;
  return { next: { ...values, at, driftSince, drift, driftedSince }, episodes };
}
