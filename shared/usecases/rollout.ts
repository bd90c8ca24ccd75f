// The progressive rollout's controller and an operator's commands (`osq-orch rollout ...`). The
// controller runs when an audit run closes (shared/usecases/run-close.ts): every project's hosts were just
// audited, so the gates read fresh states. Its evaluation is pure (shared/domain/rollout.ts), each decision
// a transition of the rollout state machine (shared/domain/rollout-transition.ts) that one applier commits
// against the record's revision (one controller wins) and carries out (shared/usecases/rollout-apply.ts).
import { listPipeline } from '../adapters/pipeline.js';
import { heartbeatBehind } from '../domain/pipeline.js';
import { config, evidenceSettings } from '../config.js';
import { log } from '../log.js';
import {
  CONTROLLER,
  currentGates,
  denylistWindows,
  evaluateRollout,
  haltKey,
  haltReason,
  zoneSince,
  RolloutRefused,
  type Actor,
  type Decision,
  type Evaluation,
  type RolloutEvidence,
  type StagedRollout,
} from '../domain/rollout.js';
import { decisionTransition, holdTransition, rollbackToTransition } from '../domain/rollout-transition.js';
import type { GateName } from '../domain/rollout-plan.js';
import * as rollouts from '../adapters/rollouts.js';
import * as evidence from '../adapters/rollout-evidence.js';
import { runResults } from '../adapters/audits.js';
import { getProjectStatuses, latestClosedRun } from '../adapters/status.js';
import { reportInvalid, type DocumentInvalid } from '../documents/document.js';
import { fleetZones, type ZonesBrought } from './assignments.js';
import { stageZones } from '../domain/rollout.js';
import { deliverAlerts } from './alerts.js';
import { applyTransition, readConfigurationState } from './rollout-apply.js';
import { resolveTargets } from './targets.js';

/**
 * The gates' evidence: the projects' audit snapshots, a bounded query per gate, and why a project's audit
 * failed in the run that decides (or the latest closed run, for `rollout status`).
 */
export async function gatherEvidence(
  r: StagedRollout,
  now: Date,
  runId: string | null = null,
): Promise<RolloutEvidence> {
  const version = r.configVersion;
  const gates = currentGates(r);
  const since = zoneSince(r);
  const earliest = new Date(Math.min(...[...since.values()].map((d) => d.getTime()), now.getTime()));
  // Every stage's projects (one read each): the stages not reached yet show their hosts on the baseline too.
  const projects = [...new Set(stageZones(r).map((k) => k.slice(0, k.lastIndexOf('/'))))];
  // The logVolume gate compares the target's hosts with the baseline's over the same windows.
  const volumeWindows = gates.logVolume ? denylistWindows(r, now) : [];
  const [
    projectStatuses,
    noncompliant,
    silent,
    cpu,
    memory,
    incidents,
    denylisted,
    run,
    shipped,
    shippedBefore,
    pipeline,
    notRunning,
  ] = await Promise.all([
    getProjectStatuses(projects),
    evidence.hostsInState(version, 'noncompliant'),
    evidence.hostsInState(version, 'silent'),
    evidence.osquerydAbove(version, 'cpuPercent', gates.osquerydCpu.cpuPercent),
    evidence.osquerydAbove(version, 'rssBytes', gates.osquerydMemory.rssMiB * 1024 * 1024),
    evidence.incidentsInZones(version, [...since.keys()], earliest),
    evidence.denylistedByWindow(version, denylistWindows(r, now)),
    runId
      ? runResults(runId, 'failed').then((d): RunProjects => d)
      : latestClosedRun().then((x): RunProjects => x?.projects ?? {}),
    evidence.shippedOverWindows(version, volumeWindows),
    evidence.shippedOverWindows(r.baseline ?? 'none', r.baseline ? volumeWindows : []),
    listPipeline(),
    evidence.notRunning(version),
  ]);
  unreadNotRunning(notRunning);
  const snapshots = projectStatuses.statuses;
  const lists: Array<[GateName, evidence.Listed]> = [
    ['noncompliant', noncompliant],
    ['silent', silent],
    ['osquerydCpu', cpu],
    ['osquerydMemory', memory],
    ['incidents', incidents],
  ];
  // Evidence that could not be read never lets a rollout on: a project snapshot that does not match its
  // definition counts as none yet (the stage waits for an audit), and a gate whose listing held such a
  // document counts as not fully counted (the rollout holds), each reported with its path.
  const unread = (invalid: DocumentInvalid[], outcome: string) => invalid.forEach((i) => reportInvalid(i, outcome));
  unread(projectStatuses.invalid, 'the rollout controller reads it as no snapshot yet');
  for (const [gate, l] of lists) unread(l.invalid, `the rollout's ${gate} gate holds: not every host was counted`);
  unread(denylisted.invalid, "the rollout's denylistedQueries gate holds: not every query was counted");
  const volumeInvalid = [...shipped.invalid, ...shippedBefore.invalid];
  unread(volumeInvalid, "the rollout's logVolume gate holds: not every query was counted");
  const failures = Object.fromEntries(
    Object.entries(run)
      .filter(([, p]) => p.status === 'failed')
      .map(([p, result]) => [p, String(result.error ?? 'failed')]),
  );
  return {
    snapshots: Object.fromEntries(
      projects.map((p) => {
        const s = snapshots.get(p);
        return [p, s ? { at: s.at, zones: s.zones, zoneVersions: s.zoneVersions ?? {} } : null];
      }),
    ),
    noncompliant: noncompliant.sightings,
    silent: silent.sightings,
    cpu: cpu.sightings,
    memory: memory.sightings,
    incidents: incidents.sightings,
    denylisted: denylisted.queries,
    logVolume: { target: shipped.queries, baseline: shippedBefore.queries },
    capped: [
      ...(volumeInvalid.length > 0 ? ['logVolume' as const] : []),
      ...lists.filter(([, l]) => l.capped || l.invalid.length > 0).map(([g]) => g),
      ...(denylisted.invalid.length > 0 ? ['denylistedQueries' as const] : []),
    ],
    failures,
    pipelineBehind: heartbeatBehind(pipeline),
    notRunning: notRunning.sightings,
  };
}

/** A host document the not-running listing could not read: reported; the hosts it names still count as observed. */
function unreadNotRunning(l: evidence.Listed): void {
  l.invalid.forEach((i) => reportInvalid(i, 'the rollout counts it by OS Config alone (not-running listing)'));
}

type RunProjects = Record<string, { status: string; error?: string | null }>;

export interface Controlled {
  action: Evaluation['next']['action'] | 'duplicate' | 'raced';
  version: string | null;
  reason: string;
  /** Zones the decision moved, and those that failed (the next audit's heal stage moves them). */
  zones?: ZonesBrought;
}

/**
 * The controller, at the close of audit run `runId` (once per run: a second call for the same run, a
 * redelivered shard, changes nothing). Evaluates the running rollout's gates and promotes, completes,
 * holds or halts it; a hold keeps the evaluation, and opens or ends rollout.stalled when some project has
 * gone without a successful audit longer than the evidence bound.
 */
export async function controlRollout(runId: string | null, now = new Date()): Promise<Controlled> {
  const { state } = await readConfigurationState();
  const r = state.rollout;
  if (!r || r.status !== 'running')
    return {
      action: 'none',
      version: r?.configVersion ?? null,
      reason: r ? `the rollout is ${r.status}` : 'no rollout',
    };
  if (runId !== null && r.evaluation?.runId === runId)
    return { action: 'duplicate', version: r.configVersion, reason: `run ${runId} was already evaluated` };
  const evaluation = evaluateRollout(r, await gatherEvidence(r, now, runId), now, runId, evidenceSettings());
  const { action, reason } = evaluation.next;
  const context = { version: r.configVersion, stage: evaluation.stage, runId, reason };
  if (action === 'hold' || action === 'none') {
    const hold = holdTransition(state, evaluation, now);
    if (await rollouts.recordHold(hold, now))
      await deliverAlerts([...hold.opens.map((o) => o.dedupKey), ...hold.closes]);
    if (hold.opens.length)
      log.error({ ...context, stall: hold.rollout.stall }, `rollout of ${r.configVersion} stalled`);
    else log.info(context, 'rollout: holding');
    return { action, version: r.configVersion, reason };
  }
  const decision: Decision =
    action === 'halt'
      ? {
          kind: 'halt',
          gate: evaluation.gates.find((g) => !g.passed)!,
          dedupKey: haltKey(r.configVersion, r.revision + 1),
        }
      : { kind: action };
  const transition = decisionTransition(state, decision, CONTROLLER, now, evaluation);
  const applied = await applyTransition(transition);
  if (!applied.committed) {
    log.info(context, 'rollout: another controller decided first; nothing written');
    return { action: 'raced', version: r.configVersion, reason };
  }
  const next = transition.writes[0]!.rollout;
  if (action === 'halt')
    log.error({ ...context, halt: next.halt }, `rollout of ${r.configVersion} ${haltReason(next.halt!)}`);
  else
    log.info(
      { ...context, stage: next.stages[next.stage]?.name },
      `rollout: ${action === 'promote' ? 'promoted' : 'completed'}`,
    );
  return { action, version: r.configVersion, reason, zones: applied.zones };
}

// --- What an operator does by hand ----------------------------------------------------------------------

export interface RolloutView {
  current: rollouts.CurrentConfig;
  /** The rollout under way, or else the current version's record. */
  record: rollouts.RolloutRecord | null;
  /** The gates now and what the controller would do (computed, not written). */
  evaluation: Evaluation | null;
}

/** `osq-orch rollout status`: the rollout under way (else the current version's), its gates evaluated now. */
export async function rolloutStatus(now = new Date()): Promise<RolloutView> {
  const { current, currentRecord, rolloutRecord } = await rollouts.readConfiguration();
  const record = rolloutRecord ?? currentRecord;
  const r = record?.staged;
  const evaluation =
    r && r.mode === 'staged' && r.stages.length
      ? evaluateRollout(r, await gatherEvidence(r, now), now, null, evidenceSettings())
      : null;
  return { current, record, evaluation };
}

export type Command = 'promote' | 'pause' | 'resume' | 'rollback';

export interface CommandResult {
  version: string;
  status: StagedRollout['status'];
  stage: string | null;
  current: string | null;
  zones: ZonesBrought;
}

/**
 * `osq-orch rollout promote | pause | resume | rollback [--to V]`, recorded with who and why. Applies
 * to the rollout under way (config/current.rollout). rollback --to V makes a published version V
 * current (the rollout under way, if any, rolled back) and brings every zone of the target projects to it.
 */
export async function runCommand(
  command: Command,
  actor: Actor,
  options: { to?: string; projects?: string[]; now?: Date } = {},
): Promise<CommandResult> {
  const now = options.now ?? new Date();
  if (!actor.reason.trim()) throw new RolloutRefused('say why (--reason): it is recorded with who did it');
  if (command === 'rollback' && options.to) return rollbackTo(options.to, actor, now, options.projects);
  const { state } = await readConfigurationState();
  const transition = decisionTransition(state, { kind: command }, actor, now);
  const applied = await applyTransition(transition);
  if (!applied.committed)
    throw new rollouts.RolloutConflict('the rollout changed meanwhile (the controller decided): look again');
  const next = transition.writes[0]!.rollout;
  log.info({ version: next.configVersion, command, by: actor.by, reason: actor.reason }, `rollout: ${command} by hand`);
  return {
    version: next.configVersion,
    status: next.status,
    stage: next.stages[next.stage]?.name ?? null,
    current: transition.current?.configVersion ?? state.current.configVersion,
    zones: applied.zones,
  };
}

/** rollback --to V: V becomes current, the rollout under way (if any) is rolled back, every zone goes to V. */
async function rollbackTo(to: string, actor: Actor, now: Date, projects?: string[]): Promise<CommandResult> {
  const { state, current, currentRecord } = await readConfigurationState();
  const target = to === current.configVersion ? currentRecord : await rollouts.getRollout(to);
  if (!target) throw new RolloutRefused(`version ${to} was never published (no rollouts/${to})`);
  const failedProjects: Record<string, string> = {};
  const applied = await applyTransition(rollbackToTransition(state, to, target.staged ?? null, actor, now), {
    fleet: async () => {
      const fleet = await fleetZones(projects ?? (await resolveTargets(config().TARGET_PROJECTS)).projects);
      Object.assign(failedProjects, fleet.failed);
      return fleet.zones.map((z) => `${z.project}/${z.zone}`);
    },
  });
  if (!applied.committed)
    throw new rollouts.RolloutConflict('the rollout changed meanwhile (the controller decided): look again');
  log.warn({ to, by: actor.by, reason: actor.reason }, `rollout: rolled back to ${to} by hand`);
  const zones = applied.zones;
  for (const [project, reason] of Object.entries(failedProjects)) zones.failed[project] = reason;
  return { version: to, status: 'completed', stage: null, current: to, zones };
}
