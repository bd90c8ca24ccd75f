// The status page's audit coverage (pure): how the scheduled audit covers the fleet (every tick, or the
// rolling audit's cycle, from the latest run's `rolling`) and each project's audit age, oldest first.
// Audit age is the one notion the rolling audit and the rollout controller use (shared/domain/rolling-audit.ts).
import { auditAgeMs } from './rolling-audit.js';

/** What the page needs of a run's `rolling` (shared/documents/audits.ts rollingRecord; domain does not import it). */
interface RunRolling {
  targets: number;
  selected: number;
  cycleTicks: number;
  cycleMinutes: number;
  neverAudited: number;
}

/** Projects listed by audit age on the page (the rest are counted). */
export const AUDIT_AGES_SHOWN = 10;

export interface AuditCoverageInputs {
  /** The latest audit run's id and its `rolling` (null: a full pass); null: no run yet. */
  latestRun: { runId: string; rolling: RunRolling | null } | null;
  tickMinutes: number;
  /** The oldest project snapshots (status/fleet/projects/{p}.at), oldest first, at most AUDIT_AGES_SHOWN. */
  oldest: Array<{ project: string; at: string }>;
  /** Every project snapshot there is. */
  snapshots: number;
}

export interface AuditCoverageView {
  runId: string | null;
  cycle:
    | { mode: 'every-tick'; tickMinutes: number }
    | {
        mode: 'rolling';
        tickMinutes: number;
        cycleTicks: number;
        cycleMinutes: number;
        selected: number;
        targets: number;
        neverAudited: number;
      };
  /** Oldest first; ageMinutes null: the snapshot's time does not parse. */
  projects: Array<{ project: string; lastAuditAt: string; ageMinutes: number | null }>;
  /** Projects with a snapshot beyond those listed. */
  more: number;
}

/** Pure: the page's audit coverage section, null before any audit run and snapshot. */
export function auditCoverageView(i: AuditCoverageInputs, now: Date): AuditCoverageView | null {
  if (!i.latestRun && i.snapshots === 0) return null;
  const r = i.latestRun?.rolling ?? null;
  const projects = i.oldest
    .map(({ project, at }) => {
      const age = auditAgeMs(at, now);
      return { project, lastAuditAt: at, ageMinutes: age === null ? null : Math.round(age / 60_000) };
    })
    .sort((a, b) => (b.ageMinutes ?? Infinity) - (a.ageMinutes ?? Infinity) || a.project.localeCompare(b.project))
    .slice(0, AUDIT_AGES_SHOWN);
  return {
    runId: i.latestRun?.runId ?? null,
    cycle: r
      ? {
          mode: 'rolling',
          tickMinutes: i.tickMinutes,
          cycleTicks: r.cycleTicks,
          cycleMinutes: r.cycleMinutes,
          selected: r.selected,
          targets: r.targets,
          neverAudited: r.neverAudited,
        }
      : { mode: 'every-tick', tickMinutes: i.tickMinutes },
    projects,
    more: Math.max(0, i.snapshots - projects.length),
  };
}
