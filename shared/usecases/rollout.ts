// The progressive rollout's controller and an operator's commands (`osq-orch rollout ...`). The
// controller runs when an audit run closes (runAuditShard): every project's hosts were just audited,
// so the gates read fresh states. Its decision is pure (shared/domain/rollout.ts); here it reads the
// evidence, writes the decision against the record's revision (one controller wins), moves the zones
// the decision moves, and sends the rollout.halted alert a halt owes.
import { config } from '../config.js';
import { log } from '../log.js';
import { perMinuteLimiter } from '../rate.js';
import { windowOf, windowStart } from '../domain/telemetry.js';
import {
  CONTROLLER,
  currentGates,
  decide,
  evaluateRollout,
  haltDetails,
  haltKey,
  haltReason,
  movedZones,
  stageZones,
  zoneSince,
  RolloutRefused,
  type Actor,
  type Decision,
  type Evaluation,
  type RolloutEvidence,
  type StagedRollout,
  type ZoneState,
} from '../domain/rollout.js';
import type { GateName } from '../domain/rollout-plan.js';
import * as rollouts from '../adapters/rollouts.js';
import * as evidence from '../adapters/rollout-evidence.js';
import { getProjectStatuses } from '../adapters/status.js';
import { closeEpisode } from '../adapters/alerts.js';
import { bringZones, fleetZones, type ZonesBrought } from './assignments.js';
import { deliverAlerts } from './alerts.js';
import { resolveTargets } from './targets.js';

/** Hour windows of query statistics read for the denylist gate: at most a week back. */
const MAX_WINDOWS = 168;

/** The hour windows from `from` to `now`, oldest first. */
function windowsBetween(from: Date, now: Date): string[] {
  const out: string[] = [];
  const last = windowStart(windowOf(now));
  for (let t = Math.max(windowStart(windowOf(from)), last - (MAX_WINDOWS - 1) * 3_600_000); t <= last; t += 3_600_000)
    out.push(windowOf(t));
  return out;
}

/** The gates' evidence: the projects' audit snapshots and a bounded query per gate. */
export async function gatherEvidence(r: StagedRollout, now: Date): Promise<RolloutEvidence> {
  const version = r.configVersion;
  const gates = currentGates(r);
  const since = zoneSince(r);
  const earliest = new Date(Math.min(...[...since.values()].map((d) => d.getTime()), now.getTime()));
  // Every stage's projects (one read each): the stages not reached yet show their hosts on the baseline too.
  const projects = [...new Set(stageZones(r).map((k) => k.slice(0, k.lastIndexOf('/'))))];
  const [snapshots, noncompliant, silent, cpu, memory, incidents, denylisted] = await Promise.all([
    getProjectStatuses(projects),
    evidence.hostsInState(version, 'noncompliant'),
    evidence.hostsInState(version, 'silent'),
    evidence.osquerydAbove(version, 'cpuPercent', gates.osquerydCpu.cpuPercent),
    evidence.osquerydAbove(version, 'rssBytes', gates.osquerydMemory.rssMiB * 1024 * 1024),
    evidence.incidentsSince(version, earliest),
    evidence.denylistedByWindow(version, windowsBetween(r.resumedAt ?? r.stages[0]?.startedAt ?? r.startedAt, now)),
  ]);
  const lists: Array<[GateName, evidence.Listed]> = [
    ['noncompliant', noncompliant],
    ['silent', silent],
    ['osquerydCpu', cpu],
    ['osquerydMemory', memory],
    ['incidents', incidents],
  ];
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
    denylisted,
    capped: lists.filter(([, l]) => l.capped).map(([g]) => g),
  };
}

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
 * holds or halts it.
 */
export async function controlRollout(runId: string | null, now = new Date()): Promise<Controlled> {
  const { current, currentRecord, rolloutRecord } = await rollouts.readConfiguration();
  const r = rolloutRecord?.staged;
  if (!rolloutRecord || !r || r.status !== 'running')
    return {
      action: 'none',
      version: r?.configVersion ?? null,
      reason: r ? `the rollout is ${r.status}` : 'no rollout',
    };
  if (runId !== null && r.evaluation?.runId === runId)
    return { action: 'duplicate', version: r.configVersion, reason: `run ${runId} was already evaluated` };
  const evaluation = evaluateRollout(r, await gatherEvidence(r, now), now, runId);
  const { action, reason } = evaluation.next;
  const context = { version: r.configVersion, stage: evaluation.stage, runId, reason };
  if (action === 'hold' || action === 'none') {
    await rollouts.recordEvaluation(r.configVersion, r.revision, evaluation);
    log.info(context, 'rollout: holding');
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
  const next = { ...decide(r, decision, CONTROLLER, now), evaluation };
  const outcome = await commit(r, next, current, { currentRecord, rolloutRecord });
  if (!outcome) {
    log.info(context, 'rollout: another controller decided first; nothing written');
    return { action: 'raced', version: r.configVersion, reason };
  }
  if (action === 'halt')
    log.error({ ...context, halt: next.halt }, `rollout of ${r.configVersion} ${haltReason(next.halt!)}`);
  else
    log.info(
      { ...context, stage: next.stages[next.stage]?.name },
      `rollout: ${action === 'promote' ? 'promoted' : 'completed'}`,
    );
  return { action, version: r.configVersion, reason, zones: outcome.zones };
}

/**
 * Writes a decision (against the revision it was made on) and carries it out: the zones it moves, the
 * halt alert it owes. False when another controller or an operator decided first.
 */
async function commit(
  before: StagedRollout,
  after: StagedRollout,
  current: rollouts.CurrentConfig,
  records: { currentRecord: rollouts.RolloutRecord | null; rolloutRecord: rollouts.RolloutRecord },
  nextCurrent?: { configVersion: string | null; rollout: string | null },
): Promise<{ zones: ZonesBrought } | false> {
  const completes = after.status === 'completed';
  const becomes = nextCurrent ?? (completes ? { configVersion: after.configVersion, rollout: null } : undefined);
  const halt = after.status === 'halted' && before.status !== 'halted' ? after.halt : null;
  const written = await rollouts.applyDecision(after, {
    current: becomes ? { expected: current, next: becomes } : undefined,
    episode: halt
      ? {
          dedupKey: halt.dedupKey,
          kind: 'rollout.halted',
          severity: 'critical',
          reason: `rollout of ${after.configVersion} ${haltReason(halt)}`,
          at: halt.at,
          details: haltDetails(after, halt),
        }
      : undefined,
  });
  if (!written) return false;
  if (halt) await deliverAlerts([halt.dedupKey]);
  // Leaving a halt by hand (resume, rollback, another version made current) ends its alert episode.
  if (before.halt && before.status !== 'running' && after.status !== before.status && !halt)
    await endHaltEpisode(before, after.history.at(-1)?.at ?? new Date());
  const beforeState: ZoneState = { current: current.configVersion, rollout: before };
  const afterState: ZoneState = { current: becomes?.configVersion ?? current.configVersion, rollout: after };
  const moves = movedZones(beforeState, afterState, stageZones(before));
  const version = new Map(moves.map((m) => [m.key, m.version]));
  const recordsByVersion = new Map(
    [records.currentRecord, records.rolloutRecord].filter((x) => x !== null).map((x) => [x.configVersion, x]),
  );
  const writes = perMinuteLimiter(config().OSCONFIG_WRITES_PER_MINUTE);
  const zones = await bringZones(
    moves.map((m) => m.key),
    (key) => version.get(key) ?? null,
    recordsByVersion,
    () => writes.take(),
  );
  for (const [zone, reason] of Object.entries(zones.failed))
    log.warn({ version: after.configVersion, zone, reason }, 'rollout: zone not moved; the next audit moves it');
  return { zones };
}

/** Resolves a halted rollout's alert episode (and sends the `resolved`) once it is left by hand. */
export async function endHaltEpisode(r: StagedRollout, at: Date): Promise<void> {
  if (!r.halt) return;
  if (await closeEpisode(r.halt.dedupKey, at)) await deliverAlerts([r.halt.dedupKey]);
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
    r && r.mode === 'staged' && r.stages.length ? evaluateRollout(r, await gatherEvidence(r, now), now) : null;
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
  const { current, currentRecord, rolloutRecord } = await rollouts.readConfiguration();
  if (command === 'rollback' && options.to) return rollbackTo(options.to, actor, now, options.projects);
  const r = rolloutRecord?.staged;
  if (!rolloutRecord || !r)
    throw new RolloutRefused(
      `no rollout under way (current version ${current.configVersion ?? 'none'})` +
        (command === 'rollback' ? ': rollback --to VERSION makes another published version current' : ''),
    );
  const decision: Decision = { kind: command };
  const next = decide(r, decision, actor, now);
  const outcome = await commit(r, next, current, { currentRecord, rolloutRecord });
  if (!outcome)
    throw new rollouts.RolloutConflict('the rollout changed meanwhile (the controller decided): look again');
  log.info({ version: r.configVersion, command, by: actor.by, reason: actor.reason }, `rollout: ${command} by hand`);
  return {
    version: r.configVersion,
    status: next.status,
    stage: next.stages[next.stage]?.name ?? null,
    current: next.status === 'completed' ? r.configVersion : current.configVersion,
    zones: outcome.zones,
  };
}

/** rollback --to V: V becomes current, the rollout under way (if any) is rolled back, every zone goes to V. */
async function rollbackTo(to: string, actor: Actor, now: Date, projects?: string[]): Promise<CommandResult> {
  const { current, currentRecord, rolloutRecord } = await rollouts.readConfiguration();
  const target = to === current.configVersion ? currentRecord : await rollouts.getRollout(to);
  if (!target) throw new RolloutRefused(`version ${to} was never published (no rollouts/${to})`);
  const r = rolloutRecord?.staged;
  const becomes = { configVersion: to, rollout: null };
  // The version left behind records who rolled it back and why.
  const left = r ?? (current.configVersion !== to ? currentRecord?.staged : undefined);
  if (left) {
    const next =
      left.status === 'rolled-back' || left.status === 'superseded'
        ? decide(left, { kind: 'supersede', by: `rollback --to ${to}` }, actor, now)
        : decide(left, { kind: 'rollback' }, { ...actor, reason: `${actor.reason} (to ${to})` }, now);
    const written = await rollouts.applyDecision(next, { current: { expected: current, next: becomes } });
    if (!written)
      throw new rollouts.RolloutConflict('the rollout changed meanwhile (the controller decided): look again');
    if (left.halt && left.status === 'halted') await endHaltEpisode(left, now);
  } else await rollouts.setCurrent(current, becomes, now);
  log.warn({ to, by: actor.by, reason: actor.reason }, `rollout: rolled back to ${to} by hand`);
  const fleet = await fleetZones(projects ?? (await resolveTargets(config().TARGET_PROJECTS)).projects);
  const writes = perMinuteLimiter(config().OSCONFIG_WRITES_PER_MINUTE);
  const zones = await bringZones(
    fleet.zones.map((z) => `${z.project}/${z.zone}`),
    () => to,
    new Map([[to, target]]),
    () => writes.take(),
  );
  for (const [project, reason] of Object.entries(fleet.failed)) zones.failed[project] = reason;
  return { version: to, status: 'completed', stage: null, current: to, zones };
}
