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
import { reconcileHost, reduceReport, type PolicyReport, type ReconcileSettings } from '../domain/reconcile.js';
import { decideScope, instanceDecidesOsConfig } from '../domain/scope.js';
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
        into.reports.set(instance, reduced);
        into.zonesWithReports.add(zone);
      }
    }
    for (const inv of inventories) {
      const instance = osconfig.instanceOfReport(`${inv.name}/`);
      if (instance) into.osqueryVersions.set(instance, osconfig.osqueryVersionOf(inv));
    }
    onZone();
  });
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
  const [vms, known] = await Promise.all([vmsListed, hostsRead]);
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
  const changes: HostChange[] = [];
  const remaining = new Map(known);
  const finalStates = new Map<string, Host>();
  const act = async (vm: Vm, action: string) => {
    if (options.dryRun) return;
    if (action === 'label-exempt')
      await compute.setInstanceLabel(vm, settings.optOutLabel.key, settings.optOutLabel.value);
    if (action === 'remediate-osconfig') await compute.setInstanceMetadata(vm, 'enable-osconfig', 'TRUE');
  };
  for (const vm of vms) {
    const host = known.get(vm.instanceId) ?? null;
    remaining.delete(vm.instanceId);
    const decision = reconcileHost(
      {
        vm,
        host,
        report: observed.reports.get(vm.instanceId) ?? observed.reports.get(vm.name) ?? null,
        osqueryVersion: observed.osqueryVersions.get(vm.instanceId) ?? null,
        projectMetadata,
        now,
      },
      settings,
    );
    if (!decision) continue;
    for (const action of decision.actions) await act(vm, action);
    const change = planObservation(
      host,
      { instanceId: vm.instanceId, name: vm.name, project, zone: vm.zone },
      decision,
      now,
      host ? cause : `${cause} (discovered)`,
    );
    if (change) changes.push(change);
    finalStates.set(vm.instanceId, change?.host ?? host!);
  }
  // Hosts whose VM is gone.
  for (const [id, host] of remaining) {
    const decision = reconcileHost(
      { vm: null, host, report: null, osqueryVersion: null, projectMetadata, now },
      settings,
    );
    const change = decision ? planObservation(host, host, decision, now, cause) : null;
    if (change) changes.push(change);
    finalStates.set(id, change?.host ?? host);
  }
  progress({ phase: 'reconcile', done: vms.length, total: vms.length });

  timings.reconciledAt = Math.round(performance.now() - t0);
  progress({ phase: 'write', done: 0, total: changes.length });
  let hostWrites = 0;
  if (!options.dryRun) {
    const written = await hosts.writeHostChanges(changes, known);
    hostWrites = written.written;
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
    timings,
    hosts: [...finalStates.values()],
  };
  progress({ phase: 'done', done: 1, total: 1 });
  log.info(
    { project, instances: audit.instances, counts, hostWrites, apiCalls: audit.apiCalls, zonesHealed, timings },
    'audit: project reconciled',
  );
  return audit;
}

export const auditShardSchema = z.object({
  runId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/),
  project: z.string().min(1),
});
export type AuditShard = z.infer<typeof auditShardSchema>;

/** A run id that sorts by time and is the same for every delivery of the same tick. */
export function runIdFor(eventId: string, time: Date): string {
  const stamp = time
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${createHash('sha256').update(eventId).digest('hex').slice(0, 8)}`;
}

/** fleetAudit: create the run and fan out one shard per target project (once per tick, however often delivered). */
export async function startAuditRun(
  eventId: string,
  time: Date,
  projects: string[] = config().TARGET_PROJECTS,
): Promise<{ runId: string; fannedOut: boolean }> {
  const runId = runIdFor(eventId, time);
  const created = await audits.createRun(runId, projects, time);
  if (!created && (await audits.getRun(runId))?.shardsPublished) return { runId, fannedOut: false };
  await Promise.all(
    projects.map((project) =>
      publishJson(config().AUDIT_SHARD_TOPIC, { runId, project } satisfies AuditShard, { runId, project }),
    ),
  );
  await audits.markShardsPublished(runId);
  return { runId, fannedOut: true };
}

/**
 * fleetAuditShard: reconcile one project and record it on the run. A project whose APIs refuse it
 * (permission denied, API disabled, unknown project) is recorded as failed; transient faults rethrow.
 */
export async function runAuditShard(shard: AuditShard, now = new Date()): Promise<'done' | 'failed' | 'duplicate'> {
  const run = await audits.getRun(shard.runId);
  if (!run) throw new PermanentError(`audit run ${shard.runId} does not exist`);
  const status = (run.projects as Record<string, { status: string }> | undefined)?.[shard.project]?.status;
  if (status && status !== 'running') return 'duplicate';
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
