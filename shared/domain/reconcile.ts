// The audit's pure decision: what state a host is in, from what Compute, OS Config and Firestore say.
import { logsFresh } from './heartbeat.js';
import type { Host, HostState } from './host.js';
import { backlogExcuses, type BacklogHold } from './pipeline.js';
import { configVersionOfPolicy, assignmentSelects } from './policy.js';
import { checkPrerequisites, decideScope, type ScopeSettings } from './scope.js';
import type { Vm } from './vm.js';

/** One VM's OS policy assignment report, reduced to what the decision needs. */
export interface PolicyReport {
  osPolicyId: string;
  /** COMPLIANT | NON_COMPLIANT | UNKNOWN */
  complianceState: string;
  complianceStateReason: string | null;
  /** First resource that failed, for the reason (e.g. install-osquery). */
  failedResource: string | null;
  updateTime: Date | null;
}

export interface ReconcileSettings extends ScopeSettings {
  /** How long a host may stay pending (policy applying, no report yet, agent not seen) before it is judged. */
  gracePeriodMs: number;
  /** How old the newest log line may be before a compliant host is silent. */
  silenceThresholdMs: number;
  remediateOsConfig: boolean;
}

export interface ReconcileInput {
  vm: Vm | null;
  report: PolicyReport | null;
  osqueryVersion: string | null;
  host: Host | null;
  projectMetadata: Record<string, string>;
  now: Date;
  /**
   * The heartbeat path is behind (an open pipeline.backlog episode): missing lines prove nothing, so no
   * reporting or compliant host is judged silent for them until it catches up.
   */
  pipelineBehind?: boolean;
  /**
   * How far the backlog reaches, when Cloud Monitoring measured its age: a host whose lines stopped a silence
   * threshold before every line was delivered is judged silent all the same (absent or null: all are held).
   */
  backlog?: BacklogHold | null;
}

export type Action = 'remediate-osconfig' | 'label-exempt';

export interface Decision {
  state: HostState;
  reason: string | null;
  osqueryVersion?: string | null;
  configVersion?: string | null;
  actions: Action[];
}

const decision = (state: HostState, reason: string | null, extra: Partial<Decision> = {}): Decision => ({
  state,
  reason,
  actions: [],
  ...extra,
});

/** When the host's current wait began: its pending episode, or for a VM never recorded, its creation. */
function pendingSince(input: ReconcileInput): number {
  const { host, vm, now } = input;
  if (host?.state === 'pending') return host.stateSince.getTime();
  if (!host && vm?.createdAt) return vm.createdAt.getTime();
  return now.getTime();
}

/** Within the grace period -> pending (with why); past it -> the failing state. */
function judged(
  input: ReconcileInput,
  settings: ReconcileSettings,
  failing: HostState,
  reason: string,
  waiting: string,
): Decision {
  const waited = input.now.getTime() - pendingSince(input);
  if (input.host?.state === failing && input.host.reason === reason) return decision(failing, reason);
  return waited >= settings.gracePeriodMs ? decision(failing, reason) : decision('pending', waiting);
}

/**
 * Pure: the next state and reason of one host, or null when there is nothing to record (a VM that
 * vanished before it was ever seen). Every state of docs/contracts.md comes from here.
 */
export function reconcileHost(input: ReconcileInput, settings: ReconcileSettings): Decision | null {
  const { vm, host, report, now } = input;
  // Instance ids are never reused: a deleted host stays deleted, even if a listing read before the
  // delete still shows its VM.
  if (host?.state === 'deleted') return null;
  if (!vm) return host ? decision('deleted', 'vm-not-found') : null;

  const scope = decideScope(vm, settings);
  if (!scope.inScope)
    return decision('exempt', scope.reason, { actions: assignmentSelects(vm, settings) ? ['label-exempt'] : [] });
  if (vm.status !== 'RUNNING') return decision('stopped', `vm-${vm.status.toLowerCase()}`);

  const prerequisites = checkPrerequisites(vm, input.projectMetadata);
  if (!prerequisites.ok) {
    const remediate = prerequisites.remediable && settings.remediateOsConfig;
    return remediate
      ? decision('pending', 'osconfig-remediated', { actions: ['remediate-osconfig'] })
      : decision('blocked', prerequisites.reason);
  }

  const versions = {
    osqueryVersion: input.osqueryVersion,
    configVersion: report ? configVersionOfPolicy(report.osPolicyId) : (host?.configVersion ?? null),
  };
  if (!report) return { ...judged(input, settings, 'noncompliant', 'no-report', 'awaiting-report'), ...versions };

  if (report.complianceState === 'COMPLIANT') {
    const judged = logState(host, now, settings);
    const held =
      judged.state === 'silent' &&
      input.pipelineBehind &&
      host &&
      host.state !== 'silent' &&
      backlogExcuses(host.lastLogAt, input.backlog ?? null, settings.silenceThresholdMs);
    return held ? { ...decision(host.state, host.reason), ...versions } : { ...judged, ...versions };
  }

  const why = report.complianceStateReason ?? 'unknown';
  if (why === 'no-agent-detected')
    return { ...judged(input, settings, 'blocked', 'no-agent-detected', 'awaiting-agent'), ...versions };
  if (why === 'vm-not-running') return decision('stopped', 'vm-not-running');
  const reason =
    why === 'resource-execution-errors' && report.failedResource
      ? `resource-execution-errors:${report.failedResource}`
      : why;
  return { ...judged(input, settings, 'noncompliant', reason, 'policy-applying'), ...versions };
}

/** A compliant host is reporting while its logs are fresh, silent when they stopped or never started. */
function logState(host: Host | null, now: Date, settings: ReconcileSettings): Decision {
  const t = now.getTime();
  if (host?.lastLogAt) {
    return logsFresh(host.lastLogAt.getTime(), t, settings.silenceThresholdMs)
      ? decision('reporting', null)
      : decision('silent', 'logs-stopped');
  }
  // Never sent a line: compliant for one threshold, then silent until the first line arrives.
  if (host?.state === 'silent') return decision('silent', 'never-reported');
  const compliantSince = host?.state === 'compliant' ? host.stateSince.getTime() : t;
  return t - compliantSince >= settings.silenceThresholdMs
    ? decision('silent', 'never-reported')
    : decision('compliant', null);
}

/** OS Config names an instance by id or by name, and names repeat across zones: observations are kept per zone. */
export const observedKey = (zone: string, instance: string) => `${zone}/${instance}`;

/** Pure: what was observed for a VM, by its id, else by its name within its own zone (never another zone's). */
export function observedFor<T>(vm: Pick<Vm, 'instanceId' | 'name' | 'zone'>, observed: Map<string, T>): T | undefined {
  return observed.get(observedKey(vm.zone, vm.instanceId)) ?? observed.get(observedKey(vm.zone, vm.name));
}

/** Reduces an OS Config report to a PolicyReport (first osquery policy in it). */
export function reduceReport(report: {
  osPolicyCompliances?: Array<{
    osPolicyId?: string | null;
    complianceState?: string | number | null;
    complianceStateReason?: string | null;
    osPolicyResourceCompliances?: Array<{
      osPolicyResourceId?: string | null;
      complianceState?: string | number | null;
    }> | null;
  }> | null;
  updateTime?: { seconds?: number | string | null } | string | null;
}): PolicyReport | null {
  const policy = report.osPolicyCompliances?.find((p) => p.osPolicyId?.startsWith('osquery'));
  if (!policy) return null;
  const failed = policy.osPolicyResourceCompliances?.find((r) => String(r.complianceState) === 'NON_COMPLIANT');
  const t = report.updateTime;
  const updateTime =
    typeof t === 'string' ? new Date(t) : t?.seconds != null ? new Date(Number(t.seconds) * 1000) : null;
  return {
    osPolicyId: policy.osPolicyId!,
    complianceState: String(policy.complianceState ?? 'UNKNOWN'),
    complianceStateReason: policy.complianceStateReason || null,
    failedResource: failed?.osPolicyResourceId ?? null,
    updateTime,
  };
}
