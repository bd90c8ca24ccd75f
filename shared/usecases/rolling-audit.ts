// Which projects an audit tick covers. A full pass while it fits the tick's share of the OS Config read
// budget and AUDIT_MAX_PROJECTS_PER_RUN; beyond, the rolling audit (shared/domain/rolling-audit.ts): the
// projects that matter first, every project within a bounded cycle. docs/quotas.md.
import { config } from '../config.js';
import { reachedZones, LIVE } from '../domain/rollout.js';
import { auditAgeMs, planRollingTick, readsPerProject, type RollingCandidate } from '../domain/rolling-audit.js';
import * as status from '../adapters/status.js';
import * as rollouts from '../adapters/rollouts.js';
import type { RollingRecord } from '../documents/audits.js';

/** The share of a tick's OS Config reads the audit plans to spend: the rest is for publish, vmLifecycle, heals. */
export const AUDIT_SHARE = 0.8;
const SNAPSHOT_CHUNK = 500;

export interface TickPlan {
  /** The projects this tick's run audits. */
  selected: string[];
  /** What the run records of the rolling audit; null when the tick is a full pass. */
  rolling: RollingRecord | null;
}

/** OS Config reads one tick may plan (Infinity: no budget). */
export function readsPerTick(): number {
  const c = config();
  return c.API_BUDGET_OSCONFIG_READS === 0
    ? Infinity
    : Math.floor(c.API_BUDGET_OSCONFIG_READS * c.AUDIT_TICK_MINUTES * AUDIT_SHARE);
}

export async function planAuditTick(projects: string[], now: Date): Promise<TickPlan> {
  const c = config();
  const perTick = readsPerTick();
  // The cheap case first: every project fits even at the least a project costs, and no snapshot is read.
  if (projects.length <= c.AUDIT_MAX_PROJECTS_PER_RUN && projects.length * readsPerProject(1) * 4 <= perTick)
    return { selected: projects, rolling: null };
  const candidates = await candidatesOf(projects);
  // The fleet status (status/fleet) the run's close writes holds one entry per project it audits: never more
  // than the cap. (The run's own documents no longer grow with it: docs/quotas.md.)
  const capped = Math.min(perTick, c.AUDIT_MAX_PROJECTS_PER_RUN * readsPerProject(1));
  const plan = planRollingTick(candidates, capped);
  const selected = plan.selected.slice(0, c.AUDIT_MAX_PROJECTS_PER_RUN);
  if (plan.fullPass && selected.length === projects.length) return { selected, rolling: null };
  const ages = candidates.map((x) => auditAgeMs(x.lastAuditAt, now));
  const known = ages.filter((a): a is number => a !== null);
  return {
    selected,
    rolling: {
      targets: projects.length,
      selected: selected.length,
      readsPerTick: Number.isFinite(perTick) ? perTick : null,
      cycleTicks: plan.cycleTicks,
      cycleMinutes: plan.cycleTicks * c.AUDIT_TICK_MINUTES,
      neverAudited: ages.length - known.length,
      oldestAuditAgeMinutes: known.length ? Math.round(Math.max(...known) / 60_000) : null,
    },
  };
}

/** Each project as its last snapshot and the rollout under way describe it. */
async function candidatesOf(projects: string[]): Promise<RollingCandidate[]> {
  const configuration = await rollouts.readConfiguration();
  const staged = configuration.rolloutRecord?.staged;
  const inStage = new Set(
    staged && LIVE.has(staged.status) ? [...reachedZones(staged)].map((k) => k.slice(0, k.indexOf('/'))) : [],
  );
  const out: RollingCandidate[] = [];
  for (let i = 0; i < projects.length; i += SNAPSHOT_CHUNK) {
    const chunk = projects.slice(i, i + SNAPSHOT_CHUNK);
    const { statuses } = await status.getProjectStatuses(chunk); // one that does not match: never audited
    for (const project of chunk) {
      const s = statuses.get(project);
      out.push({
        project,
        lastAuditAt: s ? new Date(s.at) : null,
        zones: s ? Object.keys(s.zones).length : 0,
        inRolloutStage: inStage.has(project),
        needsAction: s ? s.needingAction.total > 0 || (s.counts.pending ?? 0) > 0 : false,
      });
    }
  }
  return out;
}

/** What `osq-orch audit` shows: how the scheduled ticks cover these projects, and each one's audit age (minutes). */
export async function auditCoverage(
  projects: string[],
  now: Date,
): Promise<{ plan: TickPlan; ageMinutes: Map<string, number | null> }> {
  const plan = await planAuditTick(projects, now);
  const { statuses } = await status.getProjectStatuses(projects.slice(0, 10 * SNAPSHOT_CHUNK));
  const ageMinutes = new Map(
    projects.map((p) => {
      const age = auditAgeMs(statuses.get(p)?.at ?? null, now);
      return [p, age === null ? null : Math.round(age / 60_000)] as const;
    }),
  );
  return { plan, ageMinutes };
}
