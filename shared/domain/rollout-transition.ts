// The rollout state machine, pure. Every change to the configuration (config/current and the staged rollout
// records) is one transition computed here from what was read: the records to write, each against the
// revision it was read at, config/current after it, and the effects it owes (alert episodes opened and
// closed, zones to bring to their version). publish, the controller, the operator's commands and
// `rollback --to` compute their transition here; one applier (shared/usecases/rollout-apply.ts) commits it
// and carries the effects out. The refusal rules live here and in decide() (shared/domain/rollout.ts).
//
//              publish (staged)                 promote (gates pass, bake over)
//   (none) ──────────────────────▶ running ◀─────────────────────────┐
//      │                           │  │  │ ▲                          │
//      │ publish --all-at-once     │  │  │ └── resume ── paused ◀─ pause
//      │ (or nothing before it)    │  │  │                ▲ resume / rollback
//      ▼                           │  │  └─ halt (a gate fails) ──▶ halted ── resume ──▶ running
//   completed ◀── complete ────────┘  │                              │
//      ▲   (last stage passes)         └─ rollback ──▶ rolled-back ◀──┘ rollback
//      └──── publish --all-at-once of the version under way (running, paused, halted, rolled-back)
//   Another version published or made current (rollback --to) over a rollout not completed: superseded.
import {
  allAtOnce,
  decide,
  haltDetails,
  haltReason,
  LIVE,
  movedZones,
  newRollout,
  RolloutRefused,
  stageZones,
  type Actor,
  type Decision,
  type Evaluation,
  type HistoryEntry,
  type ObserveSettings,
  type StagedRollout,
  type ZoneState,
} from './rollout.js';
import type { ResolvedStage } from './rollout-plan.js';

/** config/current: the version zones outside a rollout get, and the staged rollout under way (null: none). */
export interface CurrentPointer {
  configVersion: string | null;
  rollout: string | null;
}

/** The configuration as read: config/current and the staged rollouts of the versions it names. */
export interface ConfigurationState {
  current: CurrentPointer;
  /** The rollout under way: config/current.rollout's staged rollout. */
  rollout: StagedRollout | null;
  /** The current version's staged rollout (absent on versions published before rollouts were staged). */
  currentRollout: StagedRollout | null;
}

/** An alert episode no host drives, opened with the transition that owes it. */
export interface RolloutEpisode {
  dedupKey: string;
  kind: 'rollout.halted' | 'rollout.stalled';
  severity: 'warning' | 'critical';
  reason: string;
  at: Date;
  details: Record<string, unknown>;
}

export interface RolloutTransition {
  /** When it happens (the decision's time). */
  at: Date;
  /** config/current as read: the transition applies only while it is still so. */
  expectedCurrent: CurrentPointer;
  /**
   * Each staged rollout written, against the revision it was read at (null: the version has no staged
   * rollout yet). `published` also (re)writes what was published with it (publish only).
   */
  writes: Array<{ rollout: StagedRollout; expectedRevision: number | null; published?: boolean }>;
  /** config/current after the transition; null when it stays as read. */
  current: CurrentPointer | null;
  /** Episodes opened (a halt), and closed by key (a halt or a stall the rollout left). */
  opens: RolloutEpisode[];
  closes: string[];
  /**
   * The zones to bring to the version the new configuration gives them: the ones the transition moves, or
   * every zone of the fleet (publish, rollback --to).
   */
  zones: { kind: 'moved'; keys: string[] } | { kind: 'fleet' };
}

/** The alert episode of a stall: one per rollout and when it began. */
export const stallKey = (version: string, since: Date) => `rollout.stalled:${version}:${since.getTime()}`;

/** A state of zones: which version each one gets (planOfZones) under a configuration. */
const zoneState = (current: string | null, rollout: StagedRollout | null): ZoneState => ({ current, rollout });

/**
 * The episodes a record's move from `before` to `after` ends: a halt it leaves, and a stall (any decision
 * ends one: the controller decides only on fresh evidence, and an operator's decision supersedes the wait).
 */
function episodesLeft(before: StagedRollout, after: StagedRollout): string[] {
  const keys: string[] = [];
  if (before.status === 'halted' && after.status !== 'halted' && before.halt) keys.push(before.halt.dedupKey);
  if (before.stall) keys.push(before.stall.dedupKey);
  return keys;
}

/** A record after a move, with the stall it ended cleared. */
const settled = (before: StagedRollout, after: StagedRollout): StagedRollout =>
  before.stall ? { ...after, stall: null } : after;

/**
 * Pure: a decision on the rollout under way (the controller's, or an operator's command), with the
 * controller's evaluation when it made it. RolloutRefused when there is none, or it does not apply.
 */
export function decisionTransition(
  state: ConfigurationState,
  decision: Decision,
  actor: Actor,
  now: Date,
  evaluation?: Evaluation,
): RolloutTransition {
  const r = state.rollout;
  if (!r)
    throw new RolloutRefused(
      `no rollout under way (current version ${state.current.configVersion ?? 'none'})` +
        (decision.kind === 'rollback' ? ': rollback --to VERSION makes another published version current' : ''),
    );
  const decided = decide(r, decision, actor, now);
  const next = settled(r, evaluation ? { ...decided, evaluation } : decided);
  const current = next.status === 'completed' ? { configVersion: next.configVersion, rollout: null } : null;
  const opens: RolloutEpisode[] = [];
  if (next.status === 'halted' && r.status !== 'halted' && next.halt)
    opens.push({
      dedupKey: next.halt.dedupKey,
      kind: 'rollout.halted',
      severity: 'critical',
      reason: `rollout of ${next.configVersion} ${haltReason(next.halt)}`,
      at: next.halt.at,
      details: haltDetails(next, next.halt),
    });
  const before = zoneState(state.current.configVersion, r);
  const after = zoneState(current?.configVersion ?? state.current.configVersion, next);
  return {
    at: now,
    expectedCurrent: state.current,
    writes: [{ rollout: next, expectedRevision: r.revision }],
    current,
    opens,
    closes: episodesLeft(r, next),
    zones: { kind: 'moved', keys: movedZones(before, after, stageZones(r)).map((m) => m.key) },
  };
}

/**
 * Pure: `rollback --to V`: V (a published version, `target` its staged rollout if it has one) becomes
 * current, the rollout under way (or the current version left behind) records who rolled it back and why,
 * and every zone of the fleet goes to V.
 */
export function rollbackToTransition(
  state: ConfigurationState,
  to: string,
  target: StagedRollout | null,
  actor: Actor,
  now: Date,
): RolloutTransition {
  const left = state.rollout ?? (state.current.configVersion !== to ? state.currentRollout : null);
  const writes: RolloutTransition['writes'] = [];
  const closes: string[] = [];
  if (left && left.configVersion !== to) {
    const next =
      left.status === 'rolled-back' || left.status === 'superseded'
        ? decide(left, { kind: 'supersede', by: `rollback --to ${to}` }, actor, now)
        : decide(left, { kind: 'rollback' }, { ...actor, reason: `${actor.reason} (to ${to})` }, now);
    writes.push({ rollout: settled(left, next), expectedRevision: left.revision });
    closes.push(...episodesLeft(left, next));
  }
  // The version rolled back to, when it is the rollout under way itself: it becomes current, done.
  if (target && state.rollout?.configVersion === to && target.status !== 'completed') {
    const next = completedAllAtOnce(target, actor, now, `rollback --to ${to}`);
    writes.push({ rollout: next, expectedRevision: target.revision });
    closes.push(...episodesLeft(target, next));
  }
  return {
    at: now,
    expectedCurrent: state.current,
    writes,
    current: { configVersion: to, rollout: null },
    opens: [],
    closes,
    zones: { kind: 'fleet' },
  };
}

/** A rollout under way completed at once: every zone gets it now (publish --all-at-once, rollback --to it). */
function completedAllAtOnce(r: StagedRollout, actor: Actor, now: Date, why: string): StagedRollout {
  const entry: HistoryEntry = {
    at: now,
    action: 'published-all-at-once',
    stage: r.stages[r.stage]?.name ?? null,
    by: actor.by,
    reason: actor.reason || `${why}: no canary, no gates, no automatic rollback`,
  };
  return { ...r, status: 'completed', revision: r.revision + 1, stall: null, history: [...r.history, entry] };
}

export interface PublishInput {
  version: string;
  /** The version's own staged rollout when it was published before (its record read), else null. */
  previous: StagedRollout | null;
  /** The files were uploaded again (an object deleted since): the record's published fields are rewritten. */
  republished: boolean;
  allAtOnce: boolean;
  /** The plan's stages over the fleet (a staged publish), computed by the caller. */
  stages: () => { stages: ResolvedStage[]; skipped: Array<{ name: string; reason: string }>; observe: ObserveSettings };
  actor: Actor;
  now: Date;
}

/** What a publish does: its transition, the version's rollout after it, and a note for the operator. */
export interface PublishPlan {
  transition: RolloutTransition;
  rollout: StagedRollout;
  /** A new rollout (or record) is written; false: the version was already there and nothing changed. */
  recorded: boolean;
  note: string | null;
}

/**
 * Pure: RolloutRefused when publishing `version` (all at once or not) is not allowed now; checked before any upload.
 */
export function checkPublish(state: ConfigurationState, version: string, allAtOnce: boolean): void {
  const under = state.rollout;
  if (allAtOnce || !under) return;
  const stage = under.stages[under.stage]?.name;
  if (under.configVersion === version && (under.status === 'halted' || under.status === 'rolled-back'))
    throw new RolloutRefused(
      `${version} was ${under.status} at stage ${stage}: only an operator resumes it ` +
        '(osq-orch rollout resume --reason ...), or publish it --all-at-once',
    );
  if (LIVE.has(under.status) && under.configVersion !== version)
    throw new RolloutRefused(
      `the rollout of ${under.configVersion} is ${under.status} at stage ${stage}: ` +
        'let it complete, or roll it back (osq-orch rollout rollback), before publishing another version ' +
        '(publish --all-at-once replaces it, for emergencies)',
    );
}

/**
 * Pure: what publishing `version` does to the configuration. The refusals: a halted or rolled-back version
 * is resumed only by an operator (or published all at once); another version's live rollout must complete
 * or be rolled back first (or be replaced all at once). A version already current or under way records
 * nothing new, unless it is published all at once (it completes now) or its files were uploaded again.
 */
export function publishTransition(state: ConfigurationState, input: PublishInput): PublishPlan {
  const { version, actor, now } = input;
  const under = state.rollout;
  const { current } = state;
  checkPublish(state, version, input.allAtOnce);
  const base = { at: now, expectedCurrent: current, opens: [], zones: { kind: 'fleet' as const } };

  // The version under way, published again.
  if (under && under.configVersion === version) {
    if (input.allAtOnce) {
      const next = completedAllAtOnce(under, actor, now, 'publish --all-at-once');
      return {
        transition: {
          ...base,
          writes: [{ rollout: next, expectedRevision: under.revision, published: input.republished }],
          current: { configVersion: version, rollout: null },
          closes: episodesLeft(under, next),
        },
        rollout: next,
        recorded: true,
        note: 'published all at once (--all-at-once): the rollout under way completes now; every zone gets it',
      };
    }
    return unchanged(state, under, input);
  }
  // The current version, published again (nothing under way of it). All at once, it also ends another
  // version's rollout under way: every zone gets the current version now.
  if (version === current.configVersion && state.currentRollout) {
    const plan = unchanged(state, state.currentRollout, input);
    if (!input.allAtOnce || !under || under.status === 'superseded' || under.status === 'completed') return plan;
    const superseded = settled(under, decide(under, { kind: 'supersede', by: version }, actor, now));
    plan.transition.writes.push({ rollout: superseded, expectedRevision: under.revision });
    plan.transition.closes.push(...episodesLeft(under, superseded));
    plan.transition.current = { configVersion: version, rollout: null };
    return {
      ...plan,
      recorded: true,
      note: `published all at once (--all-at-once): the rollout of ${under.configVersion} ends`,
    };
  }

  // A new rollout of the version: staged, or all at once (by choice, or with nothing before it to roll back to).
  const previous = input.previous;
  const revision = previous?.revision ?? 0;
  const baseline = current.configVersion === version ? (previous?.baseline ?? null) : current.configVersion;
  let rollout: StagedRollout;
  let note: string | null = null;
  if (input.allAtOnce || !baseline) {
    note = input.allAtOnce
      ? 'published all at once (--all-at-once): every zone gets it now; no canary, no gates, no automatic rollback'
      : 'nothing was published before: no baseline to roll back to, so every zone gets it now';
    rollout = allAtOnce({
      version,
      baseline,
      actor: { ...actor, reason: actor.reason || note },
      now,
      revision,
      history: previous?.history,
    });
  } else {
    const { stages, skipped, observe } = input.stages();
    rollout = newRollout({ version, baseline, stages, skipped, observe, actor, now, revision });
  }
  const writes: RolloutTransition['writes'] = [
    { rollout, expectedRevision: previous ? previous.revision : null, published: true },
  ];
  const closes: string[] = [];
  // A rollout under way of another version (halted, rolled back, or replaced all at once) ends here.
  if (under && under.status !== 'superseded' && under.status !== 'completed') {
    const superseded = settled(under, decide(under, { kind: 'supersede', by: version }, actor, now));
    writes.push({ rollout: superseded, expectedRevision: under.revision });
    closes.push(...episodesLeft(under, superseded));
  }
  const madeCurrent = rollout.status === 'completed';
  return {
    transition: {
      ...base,
      writes,
      current: madeCurrent
        ? { configVersion: version, rollout: null }
        : { configVersion: current.configVersion, rollout: version },
      closes,
    },
    rollout,
    recorded: true,
    note,
  };
}

/** The version is already current or under way: nothing to record, unless its files were uploaded again. */
function unchanged(state: ConfigurationState, r: StagedRollout, input: PublishInput): PublishPlan {
  const writes: RolloutTransition['writes'] = [];
  if (input.republished) {
    const entry: HistoryEntry = {
      at: input.now,
      action: 'republished',
      stage: r.stages[r.stage]?.name ?? null,
      by: input.actor.by,
      reason: input.actor.reason || 'files uploaded again (an object was missing): the zones get the new generations',
    };
    writes.push({
      rollout: { ...r, revision: r.revision + 1, history: [...r.history, entry] },
      expectedRevision: r.revision,
      published: true,
    });
  }
  return {
    transition: {
      at: input.now,
      expectedCurrent: state.current,
      writes,
      current: null,
      opens: [],
      closes: [],
      zones: { kind: 'fleet' },
    },
    rollout: writes[0]?.rollout ?? r,
    recorded: writes.length > 0,
    note: null,
  };
}

/**
 * Pure: the controller's look at a rollout that holds: the evaluation to keep, and the rollout.stalled
 * episode it opens (some project has gone without a successful audit longer than the bound) or closes
 * (fresh evidence again). Written against the revision read, without a new one: it is no decision.
 */
export function holdTransition(
  state: ConfigurationState,
  evaluation: Evaluation,
  now: Date,
): { rollout: StagedRollout; opens: RolloutEpisode[]; closes: string[] } {
  const r = state.rollout!;
  const stalled = evaluation.stalled ?? [];
  if (stalled.length > 0 && !r.stall) {
    const dedupKey = stallKey(r.configVersion, now);
    const reason =
      `rollout of ${r.configVersion} holds at stage ${evaluation.stage}: ` + stalled.map((s) => s.reason).join('; ');
    return {
      rollout: { ...r, evaluation, stall: { since: now, dedupKey, projects: stalled.map((s) => s.project) } },
      opens: [
        {
          dedupKey,
          kind: 'rollout.stalled',
          severity: 'warning',
          reason,
          at: now,
          details: { version: r.configVersion, stage: evaluation.stage, projects: stalled.map((s) => s.project) },
        },
      ],
      closes: [],
    };
  }
  if (stalled.length === 0 && r.stall)
    return { rollout: { ...r, evaluation, stall: null }, opens: [], closes: [r.stall.dedupKey] };
  return { rollout: { ...r, evaluation }, opens: [], closes: [] };
}
