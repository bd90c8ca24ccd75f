// The fleet audit: for one project, compare what exists (Compute), what OS Config reports, and what
// Firestore believes; fix what can be fixed; record the truth. One stage per module in ./audit/.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { config } from '../config.js';
import { isPermissionDenied, isTransient, PermanentError } from '../errors.js';
import { log } from '../log.js';
import { decideHosts, runTotals } from '../domain/audit.js';
import { decideStorm, holdSilentAlerts, silenceTally } from '../domain/storm.js';
import { openStorm } from '../adapters/storms.js';
import { settleStorm } from './storm.js';
import { isProjectId } from '../domain/ids.js';
import * as audits from '../adapters/audits.js';
import { publishJson } from '../adapters/pubsub.js';
import { beginAudit, type AuditOptions } from './audit/context.js';
import { readWorld } from './audit/read.js';
import { heal } from './audit/heal.js';
import { writeHosts } from './audit/write.js';
import { recordAudit, type ProjectAudit } from './audit/record.js';
import { closeAuditRun } from './run-close.js';
import { resolveTargets } from './targets.js';
import { planAuditTick } from './rolling-audit.js';

export type { AuditOptions, AuditProgress } from './audit/context.js';
export type { ProjectAudit } from './audit/record.js';

/** Logged once per run, by whoever wrote its totals. */
export const RUN_TOTALS_MESSAGE = 'audit: run totals written';
/** Open runs each tick looks at (closing those whose results are all in). */
const OPEN_RUNS_CHECKED = 10;

/**
 * One project's audit: read -> decide (pure) -> heal -> write -> record. Each stage takes what the
 * earlier ones produced and the audit's context. A dry run goes through the same stages: heal and write
 * then change nothing and say what they would do (`applied: false`), and record only summarises.
 */
export async function auditProject(project: string, options: AuditOptions = {}): Promise<ProjectAudit> {
  const audit = beginAudit(project, options);
  const world = await readWorld(audit); // VMs, host documents, rollout record, OS Config reports
  const decided = decideHosts(world, audit); // every host's next state and the fixes it asks for
  // Many hosts silent at once: one fleet.silent alert, the host alerts held back (shared/domain/storm.ts).
  const storm = decideStorm(project, decided, await openStorm(project), config().SILENT_STORM_SHARE, audit.now);
  // A shard of a run holds the rest too, until the run's close decides the fleet's storm (run-close.ts).
  const heldRun = storm.hold || !audit.runId || audit.dryRun ? null : audit.runId;
  const plans = storm.hold ? holdSilentAlerts(decided) : heldRun ? holdSilentAlerts(decided, heldRun) : decided;
  const healing = await heal(world, plans, audit); // zones' assignments, label and metadata fixes
  const writing = await writeHosts(world, healing.plans, audit); // conditional writes, races decided again
  const result = await recordAudit(world, healing, writing, audit); // alerts, rollout counts, status snapshot
  if (!audit.dryRun) await settleStorm(project, storm, audit.now);
  return { ...result, silence: silenceTally(decided, storm.hold) };
}

export const auditShardSchema = z.object({
  runId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/),
  // Used in API paths and Firestore field paths: only what Compute accepts as a project id.
  project: z.string().refine(isProjectId, 'expected a project id'),
});
export type AuditShard = z.infer<typeof auditShardSchema>;

/**
 * The run id of a tick: the same for every delivery of the same tick, and only from its event id.
 * (A time is not stable: a push without publishTime is stamped with each delivery's own time.)
 */
export function runIdFor(tickId: string): string {
  return `run-${createHash('sha256').update(tickId).digest('hex').slice(0, 20)}`;
}

/**
 * fleetAudit: create the run and fan out one shard per target project (once per tick, however often
 * delivered). With no target projects there is nothing to audit: no run is created, and the log says so.
 */
export async function startAuditRun(
  tickId: string,
  time: Date,
  projects: string[] = config().TARGET_PROJECTS,
): Promise<{ runId: string | null; fannedOut: boolean; projects: number }> {
  if (projects.length === 0) {
    log.warn({ tickId }, 'fleetAudit: no target projects (TARGET_PROJECTS is empty); no audit run started');
    return { runId: null, fannedOut: false, projects: 0 };
  }
  const runId = runIdFor(tickId);
  await closeOpenRuns(); // a run whose closer crashed after every result was in closes here, at the latest
  const { projects: targets, skipped } = await resolveTargets(projects); // folders and organisations: their projects
  // All of them, or (beyond one tick's budget) the rolling audit's choice: shared/usecases/rolling-audit.ts.
  const plan = await planAuditTick(targets, time);
  let audited = plan.selected;
  if (plan.rolling) log.info({ runId, ...plan.rolling }, 'fleetAudit: rolling audit, part of the targets this tick');
  if (!(await audits.createRun(runId, audited, time, skipped, plan.rolling))) {
    // A redelivered tick: the run's own projects (a plan made now may differ), unless already fanned out.
    const run = await audits.getRun(runId);
    if (!run || run.shardsPublished) return { runId, fannedOut: false, projects: audited.length };
    audited = await audits.runPlanProjects(runId);
  }
  await Promise.all(
    audited.map((project) =>
      publishJson(config().AUDIT_SHARD_TOPIC, { runId, project } satisfies AuditShard, { runId, project }),
    ),
  );
  await audits.markShardsPublished(runId);
  return { runId, fannedOut: true, projects: audited.length };
}

/**
 * fleetAuditShard: reconcile one project and record it on the run; when that closes the run, do what a
 * run's close does (shared/usecases/run-close.ts), once per run however often delivered. A project whose
 * APIs refuse it (permission denied, API disabled, unknown project) is recorded as failed; transient
 * faults rethrow.
 */
export async function runAuditShard(shard: AuditShard, now?: Date): Promise<'done' | 'failed' | 'duplicate'> {
  const outcome = await auditShardProject(shard, now ?? new Date());
  // Also after a duplicate: a delivery that recorded its result and failed before closing is redelivered.
  if ((await audits.closeRunIfComplete(shard.runId, runTotals)) === 'closed')
    log.info({ runId: shard.runId, project: shard.project }, RUN_TOTALS_MESSAGE);
  // Once the run is closed: its status, osquery's cost, the rollout controller (each once per run).
  await closeAuditRun(shard.runId, now);
  return outcome;
}

/**
 * Closes the runs left open with every result in (a closer that failed between its result and the close,
 * and was not redelivered) and does what their close does: each tick, before its own run. Bounded: a few
 * runs a tick, each one count when it is still waiting for shards.
 */
export async function closeOpenRuns(now = new Date()): Promise<string[]> {
  const closed: string[] = [];
  for (const runId of await audits.openRuns(OPEN_RUNS_CHECKED)) {
    if ((await audits.closeRunIfComplete(runId, runTotals)) !== 'closed') continue;
    log.warn({ runId }, `${RUN_TOTALS_MESSAGE}: by the next tick, its shards left it open`);
    await closeAuditRun(runId, now);
    closed.push(runId);
  }
  return closed;
}

async function auditShardProject(shard: AuditShard, now: Date): Promise<'done' | 'failed' | 'duplicate'> {
  const run = await audits.getRun(shard.runId);
  if (!run) throw new PermanentError(`audit run ${shard.runId} does not exist`);
  const { member, result: earlier } = await audits.projectInRun({ ...run, runId: shard.runId }, shard.project);
  // A shard names a project its run fanned out to; any other would add to (or close early) its run.
  if (!member) throw new PermanentError(`project ${shard.project} is not a project of the run ${shard.runId}`);
  if (earlier) return 'duplicate';
  try {
    const result = await auditProject(shard.project, { now, cause: `fleetAudit ${shard.runId}`, runId: shard.runId });
    const recorded = await audits.recordProjectResult(shard.runId, shard.project, {
      status: 'succeeded',
      instances: result.instances,
      counts: result.counts,
      apiCalls: result.apiCalls,
      hostWrites: result.hostWrites,
      fixFailures: result.fixFailures.length,
      ...(result.invalidHosts ? { invalidHosts: result.invalidHosts } : {}),
      ...(result.silence ? { silence: result.silence } : {}),
    });
    return recorded ? 'done' : 'duplicate';
  } catch (error) {
    if (isTransient(error)) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    log.error(
      { runId: shard.runId, project: shard.project, reason, permissionDenied: isPermissionDenied(error) },
      'audit: project failed',
    );
    await audits.recordProjectResult(shard.runId, shard.project, {
      status: 'failed',
      instances: 0,
      error: reason,
      counts: {},
      apiCalls: 0,
      hostWrites: 0,
    });
    return 'failed';
  }
}
