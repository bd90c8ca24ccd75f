// The fleet's silence storm (pure), decided at an audit run's close: when more than the share of the run's
// in-scope hosts go silent in it, one fleet-wide fleet.silent names the share and the common cause, and the
// host.silent alerts the run's shards held stay held until it clears (docs/heartbeat.md: Storms). Apart from
// storm.ts so that runTotals (audit.ts) can sum the projects' silence without an import loop.
import { episodeKey } from './alerts.js';

/** The fewest silent hosts that make a storm: two hosts of three going quiet are two alerts, not a storm. */
export const STORM_MIN_HOSTS = 5;

/** A storm's own episode, as its record holds it. */
interface OpenEpisode {
  dedupKey: string;
  since: Date;
}

/** Causes kept per project result: the most common few (a result stays small whatever the causes). */
export const CAUSES_KEPT = 5;

/** One project's silence in one audit, as its run result keeps it for the fleet's storm at the run's close. */
export interface SilenceTally {
  /** Hosts this audit made silent. */
  newlySilent: number;
  /** In-scope hosts silent after the audit. */
  silent: number;
  /** In-scope hosts after the audit. */
  inScope: number;
  /** Causes of the newly silent hosts, the most common CAUSES_KEPT. */
  causes: Record<string, number>;
  /** The project's own storm holds its host alerts (its fleet.silent names them already). */
  projectStorm: boolean;
}

/** A run's silence across its projects (runTotals sums the results' SilenceTally). */
export interface RunSilence {
  /** Hosts the run made silent outside a project's own storm. */
  newlySilent: number;
  /** Hosts silent after the run outside a project's own storm. */
  silent: number;
  /** In-scope hosts of the run's projects (all of them: the share is of the run's fleet). */
  inScope: number;
  causes: Record<string, number>;
  projects: number;
}

/**
 * Pure: the run's silence from its projects' tallies. Hosts a project's own storm holds are left out of the
 * silent counts: their project's fleet.silent names them already, and one outage is one alert.
 */
export function runSilence(tallies: readonly SilenceTally[]): RunSilence {
  const out: RunSilence = { newlySilent: 0, silent: 0, inScope: 0, causes: {}, projects: tallies.length };
  for (const t of tallies) {
    out.inScope += t.inScope;
    if (t.projectStorm) continue;
    out.newlySilent += t.newlySilent;
    out.silent += t.silent;
    for (const [cause, n] of Object.entries(t.causes)) out.causes[cause] = (out.causes[cause] ?? 0) + n;
  }
  return out;
}

/** The key of the fleet's storm: `fleet.silent:fleet:{since ms}`. */
export const FLEET = 'fleet';

export interface FleetStormDecision {
  /** Opens the fleet-wide fleet.silent: the run's newly silent hosts are more than the share. */
  open: {
    dedupKey: string;
    since: Date;
    share: number;
    silentHosts: number;
    hosts: number;
    projects: number;
    cause: string;
  } | null;
  /** Closes the open fleet storm: the run's silent hosts are back within the share. */
  close: OpenEpisode | null;
  /**
   * The held host.silent episodes to deliver now: none (`none`: the fleet's storm holds them), the run's
   * (`run`: no storm), or every episode held for a run (`all`: the storm cleared).
   */
  release: 'none' | 'run' | 'all';
}

/**
 * Pure: the fleet's storm at a run's close, the same rule as a project's (decideStorm) over the run's
 * projects. `since` is the run's start, so every closer of the run names the same episode.
 */
export function decideFleetStorm(
  silence: RunSilence,
  open: OpenEpisode | null,
  share: number,
  since: Date,
): FleetStormDecision {
  const hosts = silence.inScope;
  const over = (n: number) => hosts > 0 && n >= STORM_MIN_HOSTS && n / hosts > share;
  if (open)
    return over(silence.silent)
      ? { open: null, close: null, release: 'none' }
      : { open: null, close: open, release: 'all' };
  if (!over(silence.newlySilent)) return { open: null, close: null, release: 'run' };
  const counts = Object.entries(silence.causes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return {
    open: {
      dedupKey: episodeKey('fleet.silent', FLEET, since),
      since,
      share: Math.round((silence.newlySilent / hosts) * 1000) / 1000,
      silentHosts: silence.newlySilent,
      hosts,
      projects: silence.projects,
      cause: counts[0]?.[0] ?? 'unknown',
    },
    close: null,
    release: 'none',
  };
}
