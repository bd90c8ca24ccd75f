// The global API budget: every instance of every function (and `osq-orch`) spends one shared per-minute
// budget per quota family, so their sum stays inside Google's quota. Pure: the sliding-window scheduler the
// Firestore adapter (shared/adapters/api-budget.ts) runs in a transaction. docs/quotas.md says why.

/** The quota families the orchestrator spends (Google's quota each one counts against). */
export const API_FAMILIES = ['osconfigReads', 'osconfigWrites', 'serviceUsage', 'resourceManager'] as const;
export type ApiFamily = (typeof API_FAMILIES)[number];

/** Which family a counted API method (shared/metrics.ts names) spends; null: no global budget applies. */
export function familyOfMethod(method: string): ApiFamily | null {
  if (method.startsWith('serviceusage.')) return 'serviceUsage';
  if (method.startsWith('resourcemanager.')) return 'resourceManager';
  if (!method.startsWith('osconfig.')) return null; // Compute charges the VMs' own project: per project
  return /\.(create|update|delete|patch)[A-Za-z]*$/i.test(method) ? 'osconfigWrites' : 'osconfigReads';
}

/** A grant: `n` calls allowed from time `at` (ms since the epoch). */
export type Grant = readonly [at: number, n: number];

export interface Scheduled {
  /** When the calls may be made (>= now). */
  at: number;
  /** The grants still inside a window of `at`, the new one last (what the budget document keeps). */
  grants: Grant[];
}

/**
 * Pure: when `n` more calls fit a budget of `perWindow` calls in any window of `windowMs` (Google counts
 * per minute; a sliding window is the strictest reading), given the grants made so far (in time order).
 * Grants are never reordered: a new one is scheduled no earlier than the last, so callers are served in
 * the order they asked. A request larger than the whole budget is granted alone in an empty window (it
 * cannot be split here; the adapter splits it).
 */
export function scheduleGrant(
  grants: readonly Grant[],
  now: number,
  n: number,
  perWindow: number,
  windowMs: number,
): Scheduled {
  const live = grants.filter(([at]) => at > now - windowMs);
  let at = Math.max(now, live.length ? live[live.length - 1]![0] : now);
  // Walk the oldest grants out of the window until the new one fits beside the rest.
  const fits = (t: number) => live.filter(([g]) => g > t - windowMs).reduce((s, [, k]) => s + k, 0) + n <= perWindow;
  for (const [g] of live) {
    if (fits(at)) break;
    at = Math.max(at, g + windowMs);
  }
  const kept = live.filter(([g]) => g > at - windowMs);
  return { at, grants: [...kept, [at, n]] };
}

/** Pure: the most calls granted in any window (the peak the simulator would count), for tests and benches. */
export function peakPerWindow(grants: readonly Grant[], windowMs: number): number {
  let peak = 0;
  for (const [start] of grants) {
    const inWindow = grants.filter(([g]) => g >= start && g < start + windowMs).reduce((s, [, k]) => s + k, 0);
    peak = Math.max(peak, inWindow);
  }
  return peak;
}
