// vmLifecycle's use cases: enroll a created VM, retire a deleted one, enroll what a bulk insert made.
import { config, policySettings } from '../config.js';
import { log } from '../log.js';
import type { InstanceRef, LifecycleAction } from '../domain/audit-event.js';
import {
  hostRetiredByName,
  planEnrollment,
  planRetirement,
  sameIdentity,
  type HostIdentity,
  type HostState,
  type NameEvidence,
} from '../domain/host.js';
import { assignmentSelects } from '../domain/policy.js';
import { checkPrerequisites, decideScope, instanceDecidesOsConfig } from '../domain/scope.js';
import type { Vm } from '../domain/vm.js';
import * as compute from '../adapters/compute.js';
import * as hosts from '../adapters/hosts.js';
import { deliverAlerts } from './alerts.js';
import { ensureZoneAssignment } from './assignments.js';

export interface EnrollmentOutcome {
  instanceId: string;
  name: string;
  state: HostState;
  reason: string | null;
  written: boolean;
}

const identityOf = (vm: Vm): HostIdentity => ({
  instanceId: vm.instanceId,
  name: vm.name,
  project: vm.project,
  zone: vm.zone,
});

/** Decides and records one VM: exempt, blocked, or pending once its zone's assignment exists. */
export async function enrollVm(
  vm: Vm,
  cause: string,
  projectMetadata?: Record<string, string>,
): Promise<EnrollmentOutcome> {
  const settings = policySettings();
  let decided: { state: 'exempt' | 'blocked' | 'pending'; reason: string };
  const scope = decideScope(vm, settings);
  if (!scope.inScope) {
    decided = { state: 'exempt', reason: scope.reason };
    // The assignment excludes by label and OS; a VM exempt for another reason must carry the opt-out label.
    if (assignmentSelects(vm, settings)) {
      await compute.setInstanceLabel(vm, settings.optOutLabel.key, settings.optOutLabel.value);
      log.info({ instanceId: vm.instanceId, reason: scope.reason }, 'labelled exempt VM out of the OS policy');
    }
  } else {
    const metadata = instanceDecidesOsConfig(vm)
      ? {}
      : (projectMetadata ?? (await compute.getProjectMetadata(vm.project)));
    let check = checkPrerequisites(vm, metadata);
    if (!check.ok && check.reason === 'osconfig-disabled' && check.remediable && config().REMEDIATE_OSCONFIG_METADATA) {
      await compute.setInstanceMetadata(vm, 'enable-osconfig', 'TRUE');
      log.info({ instanceId: vm.instanceId }, 'set enable-osconfig=TRUE on instance');
      check = { ok: true };
    }
    if (check.ok) {
      const { created } = await ensureZoneAssignment(vm.project, vm.zone);
      if (created) log.info({ project: vm.project, zone: vm.zone }, 'created osquery OS policy assignment');
      decided = { state: 'pending', reason: 'policy-targeted' };
    } else {
      decided = { state: 'blocked', reason: check.reason };
    }
  }
  const now = new Date();
  const result = await hosts.applyHostChange(vm.instanceId, (current) =>
    planEnrollment(current, identityOf(vm), decided, now, cause),
  );
  await deliverAlerts(result.alertKeys);
  const host = result.host;
  return {
    instanceId: vm.instanceId,
    name: vm.name,
    state: host?.state ?? decided.state,
    reason: host?.reason ?? decided.reason,
    written: result.changed,
  };
}

/**
 * The host an entry without an instance id names, or null (logged). A name outlives its VM: another VM
 * may carry it now, so it counts only where nothing else can match (hostRetiredByName), which Compute
 * confirms.
 */
async function hostIdByName(ref: InstanceRef): Promise<string | null> {
  const live = await hosts.findLiveHostIds(ref.project, ref.zone, ref.name);
  let evidence: NameEvidence | undefined;
  if (live.length === 1) {
    const vmNamed = (await compute.getVm(ref))?.instanceId ?? null;
    const hostVmExists = vmNamed === null && (await compute.instanceExists(ref.project, ref.zone, live[0]!));
    evidence = { vmNamed, hostVmExists };
  }
  const verdict = hostRetiredByName(live, evidence);
  if (verdict.instanceId === null) {
    if (live.length === 0) log.info({ ...ref }, 'deleted VM was never recorded; nothing to retire');
    else
      log.warn(
        { entry: ref, matched: live, ...evidence, reason: verdict.reason },
        'vmLifecycle: a delete entry without instance_id does not identify a host for certain; nothing changed',
      );
  }
  return verdict.instanceId;
}

/**
 * Retires the host of a deleted VM. An entry changes a host only when its project, zone and name are the
 * ones recorded for its instance id, or when Compute confirms that the VM with that id is gone from where
 * it was recorded (a rename, or an entry that disagrees with itself). An entry without an id goes by name
 * only where nothing else can match. A VM never recorded leaves nothing.
 */
async function retire(ref: InstanceRef, cause: string): Promise<EnrollmentOutcome | null> {
  const instanceId = ref.instanceId ?? (await hostIdByName(ref));
  if (!instanceId) return null;
  const recorded = await hosts.getHost(instanceId);
  if (!recorded) {
    log.info({ ...ref }, 'deleted VM was never recorded; nothing to retire');
    return null;
  }
  if (recorded.state === 'deleted') return null;
  if (!sameIdentity(recorded, ref)) {
    const recordedAt = { project: recorded.project, zone: recorded.zone, name: recorded.name };
    if (await compute.instanceExists(recorded.project, recorded.zone, instanceId)) {
      log.warn(
        { entry: ref, recorded: recordedAt, instanceId },
        'vmLifecycle: entry disagrees with the recorded host, whose VM still exists; nothing changed',
      );
      return null;
    }
    log.info({ entry: ref, recorded: recordedAt, instanceId }, 'vmLifecycle: Compute confirms the recorded VM is gone');
  }
  const now = new Date();
  const result = await hosts.applyHostChange(instanceId, (current) =>
    // The host read again in the transaction must still be the one that was checked.
    current && sameIdentity(current, recorded) ? planRetirement(current, now, cause) : null,
  );
  await deliverAlerts(result.alertKeys);
  return { instanceId, name: recorded.name, state: 'deleted', reason: 'vm-deleted', written: result.changed };
}

/** Carries out what an audit-log entry asks for. Returns one outcome per VM touched. */
export async function runLifecycleAction(action: LifecycleAction, cause: string): Promise<EnrollmentOutcome[]> {
  switch (action.kind) {
    case 'enroll': {
      const vm = await compute.getVm(action.instance);
      // Gone before we looked (created and deleted quickly, or a late redelivery): it is deleted.
      if (!vm) return [await retire(action.instance, cause)].filter((o) => o !== null);
      return [await enrollVm(vm, cause)];
    }
    case 'retire': {
      const outcome = await retire(action.instance, cause);
      return outcome ? [outcome] : [];
    }
    case 'reconcile-location': {
      const vms = action.zone
        ? await compute.listZoneVms(action.project, action.zone)
        : await compute.listProjectVms(action.project, { zonePrefix: `${action.region}-` });
      const settings = policySettings();
      const inScope = vms.filter((vm) => decideScope(vm, settings).inScope && !instanceDecidesOsConfig(vm));
      // One project metadata read serves the whole location.
      const metadata = inScope.length > 0 ? await compute.getProjectMetadata(action.project) : {};
      const outcomes: EnrollmentOutcome[] = [];
      for (const vm of vms) outcomes.push(await enrollVm(vm, cause, metadata));
      return outcomes;
    }
    case 'ignore':
    case 'invalid':
      return [];
  }
}
