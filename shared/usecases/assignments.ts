// The one OS policy assignment per zone (id ASSIGNMENT_ID), as publish, the audit and vmLifecycle keep it.
import { config, policySettings } from '../config.js';
import { assignmentStep, rolloutChanged, zoneRolloutOf, type ZoneRollout } from '../domain/assignment.js';
import { buildOsqueryAssignment, configVersionOfPolicy, type PolicyConfig } from '../domain/policy.js';
import { planOfZones } from '../domain/rollout.js';
import { fleetZonesOf, zoneKey, type FleetZone } from '../domain/rollout-plan.js';
import { decideScope } from '../domain/scope.js';
import type { Vm } from '../domain/vm.js';
import { isPermissionDenied } from '../errors.js';
import { log } from '../log.js';
import * as compute from '../adapters/compute.js';
import { mapLimit } from '../rate.js';
import * as osconfig from '../adapters/osconfig.js';
import * as rollouts from '../adapters/rollouts.js';

export type ZoneOutcome = 'created' | 'updated' | 'unchanged';

/**
 * Brings one zone's assignment to `policy`'s version: create when missing, update when at another
 * version, nothing when already there. The zone's revision and rollout state are recorded on the
 * version's rollout document whenever they differ from `recorded`, what it holds.
 */
export async function reconcileZoneAssignment(
  project: string,
  zone: string,
  policy: PolicyConfig | null,
  takeWrite: () => Promise<void>,
  recorded?: ZoneRollout,
): Promise<ZoneOutcome> {
  const id = config().ASSIGNMENT_ID;
  const name = osconfig.assignmentName(project, zone, id);
  const body = () => buildOsqueryAssignment(policySettings(), policy ?? undefined);
  const existing = await osconfig.getAssignment(project, zone, id);
  let outcome: ZoneOutcome = 'unchanged';
  let assignment = existing;
  const step = assignmentStep(existing, policy);
  if (step === 'create') {
    await takeWrite();
    const created = await osconfig.createAssignment(project, zone, id, body());
    assignment = created.assignment;
    outcome = created.created ? 'created' : 'unchanged';
  } else if (step === 'update') {
    await takeWrite();
    // The version it leaves no longer lists the zone (see forgetZoneRollout), before the zone moves.
    const leaving = configVersionOfPolicy(existing?.osPolicies?.[0]?.id ?? '');
    if (leaving && leaving !== policy?.configVersion) await rollouts.forgetZoneRollout(leaving, project, zone);
    assignment = await osconfig.updateAssignment(name, body());
    outcome = 'updated';
  }
  if (policy && assignment) {
    const rollout = zoneRolloutOf(project, zone, name, assignment);
    if (rolloutChanged(recorded, rollout)) await rollouts.recordZoneRollout(policy.configVersion, rollout);
  }
  return outcome;
}

/**
 * The policy configuration a zone gets now: config/current's, or the target's for a zone of a stage a
 * running or paused rollout reached (planOfZones). Null: nothing published (the unconfigured base policy).
 */
export async function policyForZone(project: string, zone: string): Promise<PolicyConfig | null> {
  const { current, currentRecord, rolloutRecord } = await rollouts.readConfiguration();
  const version = planOfZones(current.configVersion, rolloutRecord?.staged ?? null)(zoneKey(project, zone));
  const record = version === rolloutRecord?.configVersion ? rolloutRecord : currentRecord;
  return version && record?.configVersion === version ? record.policyConfig : null;
}

/**
 * vmLifecycle: the zone has an assignment (one read when it does). A create takes the version the zone
 * gets (policyForZone: a zone new during a rollout gets the baseline); the configuration is read only then.
 */
export async function ensureZoneAssignment(project: string, zone: string): Promise<{ created: boolean }> {
  const { created } = await osconfig.ensureAssignment(project, zone, config().ASSIGNMENT_ID, async () =>
    buildOsqueryAssignment(policySettings(), (await policyForZone(project, zone)) ?? undefined),
  );
  return { created };
}

export interface ZonesBrought {
  created: string[];
  updated: string[];
  unchanged: string[];
  /** `project/zone` -> why it failed; the audit's heal stage brings it later. */
  failed: Record<string, string>;
}

/**
 * Brings each zone (`project/zone`) to the version `versionOf` says, with that version's policy and
 * recorded rollout from `records` (null: the unconfigured base policy). Reads in parallel (bounded),
 * writes paced by `takeWrite`. A zone that fails costs that zone only: it is reported, and the next
 * audit's heal stage brings it to the same version.
 */
export async function bringZones(
  keys: readonly string[],
  versionOf: (key: string) => string | null,
  records: ReadonlyMap<string, rollouts.RolloutRecord>,
  takeWrite: () => Promise<void>,
): Promise<ZonesBrought> {
  const out: ZonesBrought = { created: [], updated: [], unchanged: [], failed: {} };
  await mapLimit([...keys], 4, async (key) => {
    const i = key.lastIndexOf('/');
    const [project, zone] = [key.slice(0, i), key.slice(i + 1)];
    const version = versionOf(key);
    try {
      const record = version ? records.get(version) : null;
      if (version && !record) throw new Error(`version ${version} has no rollout record`);
      const outcome = await reconcileZoneAssignment(
        project,
        zone,
        record?.policyConfig ?? null,
        takeWrite,
        record?.zones?.[key],
      );
      out[outcome].push(key);
    } catch (error) {
      // Transient faults too (withRetry already retried them): the zone is re-driven by the next audit.
      out.failed[key] = error instanceof Error ? error.message : String(error);
    }
  });
  for (const list of [out.created, out.updated, out.unchanged]) list.sort();
  return out;
}

/**
 * The zones of `projects` that hold in-scope VMs (they need the assignment), with their hosts and
 * labels for a rollout's stages. A project that cannot be listed (403, API off) is reported, not fatal.
 */
export async function fleetZones(projects: string[]): Promise<{ zones: FleetZone[]; failed: Record<string, string> }> {
  const settings = policySettings();
  const failed: Record<string, string> = {};
  const vms: Vm[] = [];
  for (const project of projects) {
    try {
      vms.push(...(await compute.listProjectVms(project)).filter((vm) => decideScope(vm, settings).inScope));
    } catch (error) {
      failed[project] = error instanceof Error ? error.message : String(error);
      log.error(
        { project, reason: failed[project], permissionDenied: isPermissionDenied(error) },
        'zones of a project could not be listed',
      );
    }
  }
  return { zones: fleetZonesOf(vms), failed };
}
