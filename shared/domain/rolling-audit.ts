// The rolling audit: when a full pass over the target projects needs more OS Config reads than one tick's
// budget holds, each tick audits the projects that matter first and every project within a bounded cycle.
// Pure. docs/quotas.md says why this order and this bound.

/** A project's audit age: milliseconds since its last successful audit (null: never audited). One notion,
 * used by the rolling audit's order, the rollout controller's freshness rule and the status page. */
export function auditAgeMs(lastAuditAt: Date | string | null | undefined, now: Date): number | null {
  if (lastAuditAt === null || lastAuditAt === undefined) return null;
  const t = typeof lastAuditAt === 'string' ? Date.parse(lastAuditAt) : lastAuditAt.getTime();
  return Number.isNaN(t) ? null : Math.max(0, now.getTime() - t);
}

/** Whether an audit of that age is fresh within `maxAgeMs` (never audited: not fresh). */
export const auditFresh = (ageMs: number | null, maxAgeMs: number): boolean => ageMs !== null && ageMs <= maxAgeMs;

export interface RollingCandidate {
  project: string;
  /** Its last successful audit (status/fleet/projects/{p}.at); null: never audited. */
  lastAuditAt: Date | null;
  /** Zones with in-scope VMs at its last audit (its cost: reports and inventories per zone); 0 if unknown. */
  zones: number;
  /** In the stages the rollout under way has reached: its evidence gates a promotion. */
  inRolloutStage: boolean;
  /** Hosts pending, silent, noncompliant or drifted (blocked) at its last audit. */
  needsAction: boolean;
}

export interface RollingPlan {
  /** The projects this tick audits, in the order they were chosen. */
  selected: string[];
  /** OS Config reads the selected projects are expected to take. */
  reads: number;
  /** Whether every project fits one tick (no rolling needed). */
  fullPass: boolean;
  /** Ticks a whole cycle takes at most: the bound on every project's audit age, in ticks. */
  cycleTicks: number;
}

/** OS Config reads one project's audit takes: reports and inventories per zone, and the assignment's read. */
export const readsPerProject = (zones: number) => 3 * Math.max(1, zones);

/**
 * Pure: which projects a tick audits within `readsPerTick`. Half the tick (at least one project) goes to the
 * longest unaudited (never audited first): that half alone visits every project within `cycleTicks`, whatever
 * else asks for attention. The other half goes by priority: projects in the rollout's reached stages, then
 * those with hosts needing action, then again the longest unaudited. When everything fits, everything goes.
 */
export function planRollingTick(candidates: readonly RollingCandidate[], readsPerTick: number): RollingPlan {
  const cost = (c: RollingCandidate) => readsPerProject(c.zones);
  const total = candidates.reduce((s, c) => s + cost(c), 0);
  const byAge = [...candidates].sort(
    (a, b) =>
      (a.lastAuditAt?.getTime() ?? -Infinity) - (b.lastAuditAt?.getTime() ?? -Infinity) ||
      a.project.localeCompare(b.project),
  );
  if (total <= readsPerTick)
    return { selected: byAge.map((c) => c.project), reads: total, fullPass: true, cycleTicks: 1 };

  const chosen = new Set<string>();
  let reads = 0;
  const take = (list: readonly RollingCandidate[], budget: number) => {
    let spent = 0;
    for (const c of list) {
      if (chosen.has(c.project)) continue;
      if (spent + cost(c) > budget && spent > 0) break; // in order: a large project is never skipped over
      if (reads + cost(c) > readsPerTick && chosen.size > 0) break;
      chosen.add(c.project);
      spent += cost(c);
      reads += cost(c);
    }
  };
  const half = Math.floor(readsPerTick / 2);
  take(byAge, half);
  const rank = (c: RollingCandidate) => (c.inRolloutStage ? 0 : c.needsAction ? 1 : 2);
  const byPriority = [...byAge].sort((a, b) => rank(a) - rank(b)); // stable: oldest first within a rank
  take(byPriority, readsPerTick - reads);
  const maxCost = Math.max(...candidates.map(cost));
  // The age half moves through the projects oldest first, at least `half - maxCost + 1` reads a tick.
  const perTick = Math.max(1, half - maxCost + 1);
  return {
    selected: [...chosen],
    reads,
    fullPass: false,
    cycleTicks: Math.max(1, Math.ceil(total / perTick)),
  };
}
