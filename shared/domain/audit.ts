// The audit's pure stages: every host decided from what was read, the zones whose assignment is
// checked, the fixes asked for, and the hosts as the audit left them, counted.
import { planObservation, type Host, type HostChange, type HostState } from './host.js';
import { logsFresh } from './heartbeat.js';
import { denylistedNow, silenceCause, type SilenceEvidence } from './silence-cause.js';
import { backlogExcuses, type BacklogHold } from './pipeline.js';
import { observedFor, reconcileHost, type Action, type PolicyReport, type ReconcileSettings } from './reconcile.js';
import { coverageOf, NEEDS_ACTION_STATES } from './status.js';
import type { Vm } from './vm.js';
import { runSilence, type RunSilence, type SilenceTally } from './fleet-storm.js';

/** What every decision of one project's audit shares. */
export interface AuditBasis {
  project: string;
  now: Date;
  /** The transitions' cause; a host never recorded gets ` (discovered)` after it. */
  cause: string;
  settings: ReconcileSettings;
}

/** What OS Config said about a project's zones, by observedKey (zone and instance id or name). */
export interface Observations {
  reports: Map<string, PolicyReport>;
  osqueryVersions: Map<string, string | null>;
  /** Zones where some VM reported on the assignment. */
  zonesWithReports: Set<string>;
}

/** osquery's own telemetry before a silence, as the host document keeps it (a silence's evidence). */
export interface HostEvidence {
  /** osqueryd's consecutive worker restarts at its last heartbeats (0: none or unknown). */
  workerRestarts?: number;
  /** osquery_info.watcher at the last heartbeat: false without a watchdog, null when not reported. */
  watcher?: boolean | null;
  /** The queries the last osquery_schedule snapshot said were denylisted, and its time (null: none kept). */
  denylisted?: SilenceEvidence['denylisted'];
}

/** What the read stage gathered, as far as the decisions need it. */
export interface Sight {
  vms: Vm[];
  /** Host documents as read, by instance id, with osquery's own evidence from before any silence. */
  hosts: ReadonlyMap<string, { host: Host } & HostEvidence>;
  /** The heartbeat subscription is behind (its pipeline.backlog episode is open): silence is not decided. */
  pipelineBehind?: boolean;
  /** What the backlog excuses (shared/domain/pipeline.ts): absent or null, every missing line while behind. */
  backlog?: BacklogHold | null;
  /**
   * Hosts whose document could not be read (it does not match its definition): neither decided nor
   * counted, so the audit never writes over what it could not read.
   */
  invalidHosts?: ReadonlyMap<string, unknown>;
  observations: Observations;
  /** The project's metadata (empty when no in-scope VM leaves enable-osconfig to it). */
  projectMetadata: Record<string, string>;
}

/** What a host's decision rests on besides its document: its VM (null: gone) and what OS Config says. */
export interface Sighting extends HostEvidence {
  vm: Vm | null;
  report: PolicyReport | null;
  osqueryVersion: string | null;
  projectMetadata: Record<string, string>;
  /** The heartbeat path is behind now. */
  pipelineBehind?: boolean;
  /** What the backlog excuses (null or absent: every missing line while behind). */
  backlog?: BacklogHold | null;
}

/** One host's decision: the fixes on its VM it asks for, and the change to its document. */
export interface HostPlan {
  instanceId: string;
  sighting: Sighting;
  /** The document as read (null: never recorded). */
  host: Host | null;
  fixes: Action[];
  /** Null when nothing changes (or the decision is left for the next audit). */
  change: HostChange | null;
}

/**
 * Pure: the decision for one host on its document as read, or as read again after another writer
 * changed it (the same decision either way). Null when there is nothing to record.
 */
export function decideHost(
  sighting: Sighting,
  host: Host | null,
  audit: AuditBasis,
): { fixes: Action[]; change: HostChange | null } | null {
  const { now, cause, project, settings } = audit;
  const decision = reconcileHost({ ...sighting, host, now }, settings);
  if (!decision) return null;
  const vm = sighting.vm;
  const identity = vm ? { instanceId: vm.instanceId, name: vm.name, project, zone: vm.zone } : host!;
  const evidence: SilenceEvidence = {
    state: decision.state,
    vmStatus: vm?.status ?? null,
    report: sighting.report,
    linesFresh: host?.lastLogAt
      ? logsFresh(host.lastLogAt.getTime(), now.getTime(), settings.silenceThresholdMs)
      : null,
    workerRestarts: sighting.workerRestarts ?? 0,
    watcher: sighting.watcher ?? null,
    denylisted: sighting.denylisted ?? null,
    // Behind, and its backlog explains this host's missing lines (a measured backlog may not).
    pipelineBehind:
      (sighting.pipelineBehind ?? false) &&
      backlogExcuses(host?.lastLogAt ?? null, sighting.backlog ?? null, settings.silenceThresholdMs),
    now,
  };
  const quiet = silenceCause(evidence);
  const observed = { ...decision, cause: quiet, denylisted: quiet ? denylistedNow(evidence) : [] };
  const change = planObservation(host, identity, observed, now, host ? cause : `${cause} (discovered)`);
  return { fixes: decision.actions, change };
}

/**
 * Pure: every VM listed and every host recorded, decided; VMs first, in the listing's order. A VM whose host
 * document could not be read is left out (sight.invalidHosts).
 */
export function decideHosts(sight: Sight, audit: AuditBasis): HostPlan[] {
  const { observations, projectMetadata } = sight;
  const pipelineBehind = sight.pipelineBehind ?? false;
  const backlog = sight.backlog ?? null;
  const evidenceOf = (id: string): HostEvidence => {
    const read = sight.hosts.get(id);
    return {
      workerRestarts: read?.workerRestarts ?? 0,
      watcher: read?.watcher ?? null,
      denylisted: read?.denylisted ?? null,
    };
  };
  const sightings = new Map<string, Sighting>();
  for (const vm of sight.vms)
    if (!sight.invalidHosts?.has(vm.instanceId))
      sightings.set(vm.instanceId, {
        vm,
        report: observedFor(vm, observations.reports) ?? null,
        osqueryVersion: observedFor(vm, observations.osqueryVersions) ?? null,
        projectMetadata,
        ...evidenceOf(vm.instanceId),
        pipelineBehind,
        backlog,
      });
  for (const id of sight.hosts.keys())
    if (!sightings.has(id))
      sightings.set(id, { vm: null, report: null, osqueryVersion: null, projectMetadata, pipelineBehind, backlog });
  return [...sightings].map(([instanceId, sighting]) => {
    const host = sight.hosts.get(instanceId)?.host ?? null;
    const decided = decideHost(sighting, host, audit);
    return { instanceId, sighting, host, fixes: decided?.fixes ?? [], change: decided?.change ?? null };
  });
}

/**
 * Pure: the zones whose assignment the audit checks. Every zone with in-scope VMs needs the assignment
 * at the current version; a zone the current version's record shows rolled out (SUCCEEDED) costs
 * nothing. With nothing published, a zone where VMs report on the assignment has it.
 */
export function zonesToCheck(
  project: string,
  inScope: Array<Pick<Vm, 'zone'>>,
  current: { policyConfig?: unknown; zones?: Record<string, { rolloutState: string }> } | null,
  zonesWithReports: ReadonlySet<string>,
): string[] {
  const published = Boolean(current?.policyConfig);
  return [...new Set(inScope.map((vm) => vm.zone))].filter((zone) =>
    published ? current?.zones?.[`${project}/${zone}`]?.rolloutState !== 'SUCCEEDED' : !zonesWithReports.has(zone),
  );
}

/** A fix a decision asks for on a VM. */
export interface VmFix {
  instanceId: string;
  name: string;
  zone: string;
  action: Action;
}

/** Pure: the fixes the plans ask for, one per VM and action. */
export const fixesOf = (plans: HostPlan[]): VmFix[] =>
  plans.flatMap(({ sighting: { vm }, fixes }) =>
    vm ? fixes.map((action) => ({ instanceId: vm.instanceId, name: vm.name, zone: vm.zone, action })) : [],
  );

/** Pure: the plans with no change for the VMs whose fix failed: their hosts are left for the next audit. */
export const withoutFailedFixes = (plans: HostPlan[], failed: ReadonlySet<string>): HostPlan[] =>
  plans.map((p) => (failed.has(p.instanceId) ? { ...p, change: null } : p));

/** Pure: every host as the plans leave it (its change, else its document as read), by instance id. */
export function hostsAfter(plans: HostPlan[]): Map<string, Host> {
  const hosts = new Map<string, Host>();
  for (const p of plans) {
    const host = p.change?.host ?? p.host;
    if (host) hosts.set(p.instanceId, host);
  }
  return hosts;
}

export interface HostNeedingAction {
  instanceId: string;
  name: string;
  zone: string;
  state: HostState;
  reason: string | null;
}

export interface HostTally {
  counts: Partial<Record<HostState, number>>;
  /** Hosts per state that run `configVersion` (the rollout record's count). */
  onVersion: Partial<Record<HostState, number>>;
  /** Hosts someone should look at: silent, noncompliant, blocked. */
  needingAction: HostNeedingAction[];
}

const NEEDS_ACTION: ReadonlySet<HostState> = new Set(NEEDS_ACTION_STATES);

/** Pure: hosts per state, per state on `configVersion`, and those needing action. */
export function tallyHosts(hosts: Iterable<Host>, configVersion: string | null): HostTally {
  const tally: HostTally = { counts: {}, onVersion: {}, needingAction: [] };
  for (const h of hosts) {
    tally.counts[h.state] = (tally.counts[h.state] ?? 0) + 1;
    if (configVersion && h.configVersion === configVersion)
      tally.onVersion[h.state] = (tally.onVersion[h.state] ?? 0) + 1;
    if (NEEDS_ACTION.has(h.state))
      tally.needingAction.push({
        instanceId: h.instanceId,
        name: h.name,
        zone: h.zone,
        state: h.state,
        reason: h.reason,
      });
  }
  return tally;
}

/** One project's result in an audit run (audits/{runId}.projects). */
export interface ProjectResult {
  status: 'succeeded' | 'failed';
  instances: number;
  error?: string;
  counts: Partial<Record<HostState, number>>;
  apiCalls: number;
  hostWrites: number;
  /** VMs whose label or metadata fix failed (each left for the next audit). */
  fixFailures?: number;
  /** Host documents that do not match their definition, left as they are (written only when some were). */
  invalidHosts?: number;
  /** The project's silence in this audit, for the fleet's storm at the run's close (absent: failed, or older). */
  silence?: SilenceTally;
}

/** What a run records when its last project finishes. */
export interface RunTotals {
  status: 'succeeded' | 'partial' | 'failed';
  counts: Partial<Record<HostState, number>>;
  coverage: number | null;
  apiCalls: number;
  hostWrites: number;
  /** The run's silence, for the fleet's storm (absent: no project recorded one). */
  silence?: RunSilence;
}

/** Pure: a run's totals once none of its projects is running any more; null while one still is. */
export function runTotals(
  projects: Array<{ status: string } & Partial<Omit<ProjectResult, 'status'>>>,
): RunTotals | null {
  if (projects.some((p) => p.status === 'running')) return null;
  const counts: Partial<Record<HostState, number>> = {};
  for (const p of projects)
    for (const [state, n] of Object.entries(p.counts ?? {}))
      counts[state as HostState] = (counts[state as HostState] ?? 0) + (n ?? 0);
  const failed = projects.filter((p) => p.status === 'failed').length;
  const tallies = projects.flatMap((p) => (p.silence ? [p.silence] : []));
  // A skipped project (its Compute or OS Config API off) was never audited: it makes no run partial.
  const audited = projects.filter((p) => p.status !== 'skipped').length;
  return {
    status: failed === 0 ? 'succeeded' : failed === audited ? 'failed' : 'partial',
    counts,
    coverage: coverageOf(counts),
    apiCalls: projects.reduce((a, p) => a + (p.apiCalls ?? 0), 0),
    hostWrites: projects.reduce((a, p) => a + (p.hostWrites ?? 0), 0),
    ...(tallies.length > 0 ? { silence: runSilence(tallies) } : {}),
  };
}
