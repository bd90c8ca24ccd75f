// Stage 3, heal: every zone with in-scope VMs gets the assignment at the version it gets (current, or a
// rollout's target in the stages it reached), and the label and metadata fixes the decisions ask for are
// made on the VMs. One VM's fault costs that VM only.
import { config } from '../../config.js';
import { log } from '../../log.js';
import { mapLimit, perMinuteLimiter } from '../../rate.js';
import { fixesOf, withoutFailedFixes, zonesToCheck, type HostPlan, type VmFix } from '../../domain/audit.js';
import type { Action, ReconcileSettings } from '../../domain/reconcile.js';
import type { Vm } from '../../domain/vm.js';
import * as compute from '../../adapters/compute.js';
import { reconcileZoneAssignment, underLatestConfiguration, type ZoneOutcome } from '../assignments.js';
import { MissingRolloutRecord } from '../../adapters/rollouts.js';
import type { Audit } from './context.js';
import type { World } from './read.js';

export interface FixFailure extends VmFix {
  reason: string;
}

export type Healing =
  | {
      applied: true;
      /** `zone:created` or `zone:updated` for each zone whose assignment changed. */
      zonesHealed: string[];
      /** VMs whose fix failed: their hosts are left for the next audit. */
      fixFailures: FixFailure[];
      /** The plans to write: those whose fix failed no longer change their host. */
      plans: HostPlan[];
    }
  | {
      /** A dry run: nothing was checked or fixed. */
      applied: false;
      /** The zones whose assignment would be checked (created or updated where needed). */
      zonesToCheck: string[];
      /** The fixes that would be made. */
      fixes: VmFix[];
      plans: HostPlan[];
    };

export async function heal(world: World, plans: HostPlan[], audit: Audit): Promise<Healing> {
  const published = world.rollout ?? world.records.values().next().value ?? null;
  const zones = zonesToCheck(
    audit.project,
    world.inScope,
    published && { policyConfig: published.policyConfig, zones: world.zoneRollouts },
    world.observations.zonesWithReports,
  );
  const fixes = fixesOf(plans);
  if (audit.dryRun) return { applied: false, zonesToCheck: zones, fixes, plans };

  audit.progress({ phase: 'reconcile', done: 0, total: world.vms.length });
  const zonesHealed = await healZones(world, zones, audit);
  const fixFailures = await fixVms(world, fixes, audit);
  audit.progress({ phase: 'reconcile', done: world.vms.length, total: world.vms.length });
  const failed = new Set(fixFailures.map((f) => f.instanceId));
  return { applied: true, zonesHealed, fixFailures, plans: withoutFailedFixes(plans, failed) };
}

/**
 * Brings each zone to the version the configuration gives it: the target in a stage a rollout reached, else
 * current (the baseline). Under the configuration the world was read with, then again under any newer one
 * (underLatestConfiguration): a halt, rollback or promotion decided after this audit read the world wins.
 * A version whose record is missing is refused, loudly: the zone keeps what it has (never the base policy,
 * which would strip the configuration).
 */
async function healZones(world: World, zones: string[], audit: Audit): Promise<string[]> {
  const healed = new Map<string, ZoneOutcome>();
  const refused = new Set<string>();
  const writes = perMinuteLimiter(config().OSCONFIG_WRITES_PER_MINUTE);
  const keys = zones.map((zone) => `${audit.project}/${zone}`);
  const unsettled = await underLatestConfiguration(
    keys,
    async (key, versions) => {
      const zone = key.slice(key.lastIndexOf('/') + 1);
      const version = versions.versionOf(key);
      const record = version ? versions.records.get(version) : null;
      if (version && !record) {
        refused.add(version);
        return;
      }
      // What the world read recorded for the zone, while the zone still gets the version it was read under.
      const recorded = versions === world.zoneVersions ? world.zoneRollouts[key] : record?.zones?.[key];
      const outcome = await reconcileZoneAssignment(
        audit.project,
        zone,
        record?.policyConfig ?? null,
        () => writes.take(),
        recorded,
      );
      if (outcome !== 'unchanged') healed.set(zone, outcome);
    },
    world.zoneVersions,
  );
  for (const version of refused)
    log.error(
      { project: audit.project, configVersion: version, zones: zones.length },
      new MissingRolloutRecord(version).message,
    );
  if (unsettled.length)
    log.warn(
      { project: audit.project, zones: unsettled },
      'audit: the configuration kept changing; zones left for the next audit',
    );
  return [...healed].map(([zone, outcome]) => `${zone}:${outcome}`).sort();
}

/**
 * Carries out each VM's fixes in order. A VM deleted since the listing, a 412 or a 403 stops that VM's
 * fixes and is returned; the other VMs go on.
 */
async function fixVms(world: World, fixes: VmFix[], audit: Audit): Promise<FixFailure[]> {
  const failures: FixFailure[] = [];
  const vms = new Map(world.vms.map((vm) => [vm.instanceId, vm]));
  const byVm = new Map<string, VmFix[]>();
  for (const fix of fixes) byVm.set(fix.instanceId, [...(byVm.get(fix.instanceId) ?? []), fix]);
  await mapLimit([...byVm.values()], 4, async (vmFixes) => {
    for (const fix of vmFixes) {
      try {
        await act(vms.get(fix.instanceId)!, fix.action, audit.settings);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        failures.push({ ...fix, reason });
        log.warn({ project: audit.project, ...fix, reason }, 'audit: fix failed; the VM is left for the next audit');
        return;
      }
    }
  });
  return failures;
}

/** Carries out a fix a decision asks for, on the VM itself. */
async function act(vm: Vm, action: Action, settings: ReconcileSettings): Promise<void> {
  if (action === 'label-exempt')
    await compute.setInstanceLabel(vm, settings.optOutLabel.key, settings.optOutLabel.value);
  if (action === 'remediate-osconfig') await compute.setInstanceMetadata(vm, 'enable-osconfig', 'TRUE');
}
