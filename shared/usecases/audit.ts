// The fleet audit: for one project, compare what exists (Compute), what OS Config reports, and what
// Firestore believes; fix what can be fixed; record the truth.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { config, policySettings, silenceThresholdMs } from '../config.js';
import { isPermissionDenied, isTransient, PermanentError } from '../errors.js';
import { log } from '../log.js';
import { mapLimit, perMinuteLimiter } from '../rate.js';
import { totalApiCalls, usageSince, usageSnapshot } from '../metrics.js';
import { planObservation, type Host, type HostChange, type HostState } from '../domain/host.js';
import {
  observedFor,
  observedKey,
  reconcileHost,
  reduceReport,
  type Action,
  type PolicyReport,
  type ReconcileSettings,
} from '../domain/reconcile.js';
import { decideScope, instanceDecidesOsConfig } from '../domain/scope.js';
import { isProjectId } from '../domain/ids.js';
import type { Vm } from '../domain/vm.js';
import * as compute from '../adapters/compute.js';
import * as osconfig from '../adapters/osconfig.js';
import * as hosts from '../adapters/hosts.js';
import * as rollouts from '../adapters/rollouts.js';
import * as audits from '../adapters/audits.js';
import { publishJson } from '../adapters/pubsub.js';
import { flushAlerts, owedAlertKeys } from '../adapters/alerts.js';
import { reconcileZoneAssignment } from './publish.js';
import { recordProjectStatus } from './status.js';
import { resolveTargets } from './targets.js';

export interface AuditProgress {
  phase: 'inventory' | 'reports' | 'reconcile' | 'write' | 'done';
  done: number;
  total: number;
}

export interface ProjectAudit {
  project: string;
  instances: number;
  counts: Partial<Record<HostState, number>>;
  changes: HostChange[];
  hostWrites: number;
  apiCalls: number;
  zonesHealed: string[];
  /** Milliseconds from the start at which each phase finished. */
  timings: Record<string, number>;
  /** VMs whose label or metadata fix failed; their hosts are left for the next audit. */
  fixFailures: Array<{ instanceId: string; name: string; zone: string; action: Action; reason: string }>;
  /** Hosts written by someone else between this audit's read and its write, decided again. */
  raced: number;
  /** Hosts someone should look at: blocked, noncompliant, silent. */
  needingAction: Array<{ instanceId: string; name: string; zone: string; state: HostState; reason: string | null }>;
  /** Every host of the project as this audit left it (the status page's snapshot is built from them). */
  hosts: Host[];
}

export interface AuditOptions {
  now?: Date;
  dryRun?: boolean;
  cause?: string;
  onProgress?: (p: AuditProgress) => void;
}

export function reconcileSettings(): ReconcileSettings {
  const c = config();
  return {
    ...policySettings(),
    gracePeriodMs: c.GRACE_PERIOD_MINUTES * 60_000,
    silenceThresholdMs: silenceThresholdMs(),
    remediateOsConfig: c.REMEDIATE_OSCONFIG_METADATA,
  };
}

const NEEDS_ACTION: ReadonlySet<HostState> = new Set(['blocked', 'noncompliant', 'silent']);

interface ZoneObservations {
  reports: Map<string, PolicyReport>;
  osqueryVersions: Map<string, string | null>;
  zonesWithReports: Set<string>;
}

/** Reports and inventories of zones: two wildcard listings per zone, paced to the OS Config read quota. */
async function observeZones(
  project: string,
  zones: string[],
  into: ZoneObservations,
  reads: ReturnType<typeof perMinuteLimiter>,
  onZone: () => void,
): Promise<void> {
  const assignmentId = config().ASSIGNMENT_ID;
  await mapLimit(zones, 5, async (zone) => {
    await reads.take();
    const zoneReports = await osconfig.listZoneReports(project, zone);
    await reads.take();
    const inventories = await osconfig.listZoneInventories(project, zone);
    for (const r of zoneReports) {
      if (!String(r.name).includes(`/osPolicyAssignments/${assignmentId}/`)) continue;
      const instance = osconfig.instanceOfReport(r.name);
      const reduced = reduceReport(r as Parameters<typeof reduceReport>[0]);
      if (instance && reduced) {
        into.reports.set(observedKey(zone, instance), reduced);
        into.zonesWithReports.add(zone);
      }
    }
    for (const inv of inventories) {
      const instance = osconfig.instanceOfReport(`${inv.name}/`);
      if (instance) into.osqueryVersions.set(observedKey(zone, instance), osconfig.osqueryVersionOf(inv));
    }
    onZone();
  });
}

/** Carries out a fix a decision asks for, on the VM itself. */
async function act(vm: Vm, action: Action, settings: ReconcileSettings): Promise<void> {
  if (action === 'label-exempt')
    await compute.setInstanceLabel(vm, settings.optOutLabel.key, settings.optOutLabel.value);
  if (action === 'remediate-osconfig') await compute.setInstanceMetadata(vm, 'enable-osconfig', 'TRUE');
}

export async function auditProject(project: string, options: AuditOptions = {}): Promise<ProjectAudit> {
  const now = options.now ?? new Date();
  const cause = options.cause ?? `fleetAudit ${now.toISOString()}`;
  const progress = options.onProgress ?? (() => undefined);
  const settings = reconcileSettings();
  const before = usageSnapshot();

  progress({ phase: 'inventory', done: 0, total: 1 });
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const timed = <T>(name: string, p: Promise<T>) =>
    p.then((v) => ((timings[name] = Math.round(performance.now() - t0)), v));
  const vmsListed = timed('vmsListedAt', compute.listProjectVms(project));
  const hostsRead = timed('hostsReadAt', hosts.listProjectHosts(project));
  // Joined now, so a refusal (403) while the rollout record is read is handled, never left unhandled.
  const inventory = Promise.all([vmsListed, hostsRead]);
  inventory.catch(() => undefined); // awaited below
  const currentVersion = await rollouts.currentVersion();
  const current = currentVersion ? await rollouts.getRollout(currentVersion) : null;
  // Zones the current version was rolled out to are known before Compute answers: their reports are
  // listed while the VMs and host documents are still being read.
  const observed: ZoneObservations = { reports: new Map(), osqueryVersions: new Map(), zonesWithReports: new Set() };
  const reads = perMinuteLimiter(config().OSCONFIG_READS_PER_MINUTE);
  let zonesDone = 0;
  const knownZones = Object.values(current?.zones ?? {})
    .filter((z) => z.project === project)
    .map((z) => z.zone)
    .sort();
  const early = timed(
    'knownZonesObservedAt',
    observeZones(project, knownZones, observed, reads, () =>
      progress({ phase: 'reports', done: ++zonesDone, total: knownZones.length }),
    ),
  );
  early.catch(() => undefined); // awaited below; avoid an unhandled rejection while Compute is read
  const [vms, known] = await inventory;
  // Project metadata is read only when some in-scope VM leaves enable-osconfig to it.
  const inScope = vms.filter((vm) => decideScope(vm, settings).inScope);
  const projectMetadata = inScope.some((vm) => !instanceDecidesOsConfig(vm))
    ? await compute.getProjectMetadata(project)
    : {};
  progress({ phase: 'inventory', done: 1, total: 1 });

  const zones = [...new Set(inScope.filter((vm) => vm.status === 'RUNNING').map((vm) => vm.zone))].sort();
  const extraZones = zones.filter((z) => !knownZones.includes(z));
  await Promise.all([
    early,
    observeZones(project, extraZones, observed, reads, () =>
      progress({ phase: 'reports', done: ++zonesDone, total: knownZones.length + extraZones.length }),
    ),
  ]);

  timings.observedAt = Math.round(performance.now() - t0);
  // Self-healing: every zone with in-scope VMs has the assignment at the current version. Zones the
  // current version's record shows rolled out (SUCCEEDED) cost nothing; the others are checked.
  const zonesHealed: string[] = [];
  if (!options.dryRun) {
    const policy = current?.policyConfig ?? null;
    const needing = [...new Set(inScope.map((vm) => vm.zone))].filter((zone) => {
      const recorded = current?.zones?.[`${project}/${zone}`];
      return policy ? recorded?.rolloutState !== 'SUCCEEDED' : !observed.zonesWithReports.has(zone);
    });
    const writes = perMinuteLimiter(config().OSCONFIG_WRITES_PER_MINUTE);
    await mapLimit(needing, 4, async (zone) => {
      const outcome = await reconcileZoneAssignment(
        project,
        zone,
        policy,
        () => writes.take(),
        current?.zones?.[`${project}/${zone}`],
      );
      if (outcome !== 'unchanged') zonesHealed.push(`${zone}:${outcome}`);
    });
  }

  progress({ phase: 'reconcile', done: 0, total: vms.length });
  // What each host's decision rests on besides its document: its VM (null: gone) and what OS Config says.
  const seen = new Map<string, { vm: Vm | null; report: PolicyReport | null; osqueryVersion: string | null }>();
  for (const vm of vms)
    seen.set(vm.instanceId, {
      vm,
      report: observedFor(vm, observed.reports) ?? null,
      osqueryVersion: observedFor(vm, observed.osqueryVersions) ?? null,
    });
  for (const id of known.keys()) if (!seen.has(id)) seen.set(id, { vm: null, report: null, osqueryVersion: null });
  /** The same pure decision for a host as read at the start, or as read again after a race. */
  const decide = (id: string, host: Host | null) => {
    const { vm, report, osqueryVersion } = seen.get(id)!;
    const decision = reconcileHost({ vm, host, report, osqueryVersion, projectMetadata, now }, settings);
    if (!decision) return null;
    const identity = vm ? { instanceId: vm.instanceId, name: vm.name, project, zone: vm.zone } : host!;
    const change = planObservation(host, identity, decision, now, host ? cause : `${cause} (discovered)`);
    return { decision, change };
  };

  const decided = [...seen.keys()].map((id) => {
    const host = known.get(id)?.host ?? null;
    const planned = decide(id, host);
    return { id, host, actions: planned?.decision.actions ?? [], change: planned?.change ?? null };
  });
  // Label and metadata fixes: one VM's fault (deleted since the listing, 412, 403) costs that VM only;
  // its host is left as it was for the next audit to decide again.
  const fixFailures: ProjectAudit['fixFailures'] = [];
  if (!options.dryRun)
    await mapLimit(
      decided.filter((d) => d.actions.length > 0),
      4,
      async (d) => {
        const vm = seen.get(d.id)!.vm!;
        for (const action of d.actions) {
          try {
            await act(vm, action, settings);
          } catch (error) {
            const reason = error instanceof Error ? error.message : String(error);
            fixFailures.push({ instanceId: vm.instanceId, name: vm.name, zone: vm.zone, action, reason });
            log.warn(
              { project, instanceId: vm.instanceId, name: vm.name, zone: vm.zone, action, reason },
              'audit: fix failed; the VM is left for the next audit',
            );
            d.change = null;
            return;
          }
        }
      },
    );
  const changes = decided.flatMap((d) => (d.change ? [d.change] : []));
  const finalStates = new Map<string, Host>();
  for (const d of decided) {
    const host = d.change?.host ?? d.host;
    if (host) finalStates.set(d.id, host);
  }
  progress({ phase: 'reconcile', done: vms.length, total: vms.length });

  timings.reconciledAt = Math.round(performance.now() - t0);
  progress({ phase: 'write', done: 0, total: changes.length });
  let hostWrites = 0;
  let raced = 0;
  if (!options.dryRun) {
    const written = await hosts.writeHostChanges(changes, known);
    hostWrites = written.written;
    // Hosts someone else wrote since they were read: decided again on what is there now, in a
    // transaction each, so no newer fact (a heartbeat, an enrollment, a deletion) is overwritten.
    await mapLimit(written.lost, 8, async (id) => {
      const result = await hosts.applyHostChange(id, (current) => decide(id, current)?.change ?? null);
      raced += 1;
      if (result.changed) hostWrites += 1;
      if (result.host) finalStates.set(id, result.host);
    });
    if (raced > 0) log.info({ project, raced }, 'audit: hosts written by others meanwhile were decided again');
    // What this run owes, and whatever earlier runs or heartbeats failed to send.
    await flushAlerts([...written.alertKeys, ...(await owedAlertKeys())]);
  }
  progress({ phase: 'write', done: changes.length, total: changes.length });

  const counts: Partial<Record<HostState, number>> = {};
  const onVersion: Partial<Record<HostState, number>> = {};
  const needingAction: ProjectAudit['needingAction'] = [];
  for (const h of finalStates.values()) {
    counts[h.state] = (counts[h.state] ?? 0) + 1;
    if (currentVersion && h.configVersion === currentVersion) onVersion[h.state] = (onVersion[h.state] ?? 0) + 1;
    if (NEEDS_ACTION.has(h.state))
      needingAction.push({ instanceId: h.instanceId, name: h.name, zone: h.zone, state: h.state, reason: h.reason });
  }
  if (currentVersion && !options.dryRun)
    await rollouts.recordHostCounts(currentVersion, project, onVersion, current?.hostCounts?.[project]);

  timings.doneAt = Math.round(performance.now() - t0);
  const audit: ProjectAudit = {
    project,
    instances: vms.length,
    counts,
    changes,
    hostWrites,
    apiCalls: totalApiCalls(usageSince(before)),
    zonesHealed,
    needingAction,
    fixFailures,
    raced,
    timings,
    hosts: [...finalStates.values()],
  };
  progress({ phase: 'done', done: 1, total: 1 });
  log.info(
    {
      project,
      instances: audit.instances,
      counts,
      hostWrites,
      raced,
      fixFailures: fixFailures.length,
      apiCalls: audit.apiCalls,
      zonesHealed,
      timings,
    },
    'audit: project reconciled',
  );
  return audit;
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
  const { projects: audited, skipped } = await resolveTargets(projects); // folders and organisations: their projects
  const created = await audits.createRun(runId, audited, time, undefined, skipped);
  if (!created && (await audits.getRun(runId))?.shardsPublished)
    return { runId, fannedOut: false, projects: audited.length };
  await Promise.all(
    audited.map((project) =>
      publishJson(config().AUDIT_SHARD_TOPIC, { runId, project } satisfies AuditShard, { runId, project }),
    ),
  );
  await audits.markShardsPublished(runId);
  return { runId, fannedOut: true, projects: audited.length };
}

/**
 * fleetAuditShard: reconcile one project and record it on the run. A project whose APIs refuse it
 * (permission denied, API disabled, unknown project) is recorded as failed; transient faults rethrow.
 */
export async function runAuditShard(shard: AuditShard, now = new Date()): Promise<'done' | 'failed' | 'duplicate'> {
  const run = await audits.getRun(shard.runId);
  if (!run) throw new PermanentError(`audit run ${shard.runId} does not exist`);
  const projects = (run.projects ?? {}) as Record<string, { status: string }>;
  // A shard names a project its run fanned out to; any other would add to (or reopen) a closed run.
  if (!Object.hasOwn(projects, shard.project))
    throw new PermanentError(`project ${shard.project} is not a project of the run ${shard.runId}`);
  if (projects[shard.project]!.status !== 'running') return 'duplicate';
  try {
    const result = await auditProject(shard.project, { now, cause: `fleetAudit ${shard.runId}` });
    // The status page's snapshot of the project, before the result can close the run.
    await recordProjectStatus(shard.runId, shard.project, result.hosts, now);
    const recorded = await audits.recordProjectResult(shard.runId, shard.project, {
      status: 'succeeded',
      instances: result.instances,
      counts: result.counts,
      apiCalls: result.apiCalls,
      hostWrites: result.hostWrites,
      fixFailures: result.fixFailures.length,
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
