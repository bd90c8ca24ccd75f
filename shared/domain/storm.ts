// A silence storm (pure): when more than a set share of a project's in-scope hosts go silent in one audit,
// one fleet.silent alert names the share and the common cause, and the host.silent alerts are held back
// (kept on the hosts and their episode records) until the storm clears (docs/heartbeat.md: Storms).
import { episodeKey } from './alerts.js';
import type { HostPlan } from './audit.js';
import { isInScope, type Host } from './host.js';

import { CAUSES_KEPT, STORM_MIN_HOSTS, type SilenceTally } from './fleet-storm.js';

export { STORM_MIN_HOSTS } from './fleet-storm.js';
export type { SilenceTally } from './fleet-storm.js';

/** The open fleet.silent episode of a project, as its record holds it. */
export interface OpenStorm {
  dedupKey: string;
  since: Date;
}

export interface StormDecision {
  /** Opens fleet.silent: this audit's newly silent hosts are more than the share. */
  open: { dedupKey: string; since: Date; share: number; silentHosts: number; hosts: number; cause: string } | null;
  /** Closes the open storm: silent hosts are back within the share. */
  close: OpenStorm | null;
  /** The host.silent episodes this audit opens are held back (a storm is open after it). */
  hold: boolean;
}

/** Pure: the most common cause among silent hosts (`unknown` when none is recorded), ties by name. */
export function commonCause(silent: readonly Pick<Host, 'cause'>[]): string {
  const counts = new Map<string, number>();
  for (const h of silent) counts.set(h.cause ?? 'unknown', (counts.get(h.cause ?? 'unknown') ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] ?? 'unknown';
}

/**
 * Pure: a project's storm after one audit. It opens when the hosts this audit made silent are more than
 * `share` of the in-scope hosts (and at least STORM_MIN_HOSTS); it lasts while the silent hosts are, and
 * closes when they are back within the share.
 */
export function decideStorm(
  project: string,
  plans: readonly HostPlan[],
  open: OpenStorm | null,
  share: number,
  now: Date,
): StormDecision {
  const after: Host[] = plans.flatMap((p) => {
    const h = p.change?.host ?? p.host;
    return h && isInScope(h.state) ? [h] : [];
  });
  const silent = after.filter((h) => h.state === 'silent');
  const newly = plans.filter((p) => p.change?.transition?.to === 'silent').length;
  const hosts = after.length;
  const over = (n: number) => hosts > 0 && n >= STORM_MIN_HOSTS && n / hosts > share;
  if (open)
    return over(silent.length) ? { open: null, close: null, hold: true } : { open: null, close: open, hold: false };
  if (!over(newly)) return { open: null, close: null, hold: false };
  return {
    open: {
      dedupKey: episodeKey('fleet.silent', project, now),
      since: now,
      share: Math.round((newly / hosts) * 1000) / 1000,
      silentHosts: newly,
      hosts,
      cause: commonCause(silent.filter((h) => h.stateSince.getTime() === now.getTime())),
    },
    close: null,
    hold: true,
  };
}

/**
 * Pure: the plans with the host.silent episodes they open held back (recorded, not sent): by the project's
 * storm, or (`runId`) until the run's close decides whether the fleet is in a storm.
 */
export const holdSilentAlerts = (plans: HostPlan[], runId?: string): HostPlan[] =>
  plans.map((p) =>
    p.change?.episodes.open?.kind === 'host.silent'
      ? {
          ...p,
          change: {
            ...p.change,
            episodes: {
              ...p.change.episodes,
              open: { ...p.change.episodes.open, held: true, ...(runId ? { heldRun: runId } : {}) },
            },
          },
        }
      : p,
  );

/** Pure: a project's silence after one audit (the plans as decided; `projectStorm`: its own storm holds). */
export function silenceTally(plans: readonly HostPlan[], projectStorm: boolean): SilenceTally {
  const after: Host[] = plans.flatMap((p) => {
    const h = p.change?.host ?? p.host;
    return h && isInScope(h.state) ? [h] : [];
  });
  const newly = plans.flatMap((p) => (p.change?.transition?.to === 'silent' ? [p.change.host] : []));
  const counts = new Map<string, number>();
  for (const h of newly) counts.set(h.cause ?? 'unknown', (counts.get(h.cause ?? 'unknown') ?? 0) + 1);
  const causes = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, CAUSES_KEPT);
  return {
    newlySilent: newly.length,
    silent: after.filter((h) => h.state === 'silent').length,
    inScope: after.length,
    causes: Object.fromEntries(causes),
    projectStorm,
  };
}
