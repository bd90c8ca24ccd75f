// The one OS policy assignment per zone (id ASSIGNMENT_ID), as publish, the audit and vmLifecycle keep it.
import { config, policySettings } from '../config.js';
import { assignmentStep, rolloutChanged, zoneRolloutOf, type ZoneRollout } from '../domain/assignment.js';
import {
  buildOsqueryAssignment,
  configVersionOfPolicy,
  type OsqueryAssignment,
  type PolicyConfig,
} from '../domain/policy.js';
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

/** The assignment's body at `policy`'s version; null: the base policy (osquery installed, no configuration). */
const assignmentAt = (policy: PolicyConfig | null) => buildOsqueryAssignment(policySettings(), policy ?? undefined);

/** A zone's assignment as OS Config keeps it at `policy`'s version: its full name and its body. */
export function zoneAssignment(project: string, zone: string, policy: PolicyConfig | null): OsqueryAssignment {
  return { name: osconfig.assignmentName(project, zone, config().ASSIGNMENT_ID), ...assignmentAt(policy) };
}

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
  const body = () => assignmentAt(policy);
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
  const versions = zoneVersionsOf(await rollouts.readConfiguration());
  const version = versions.versionOf(zoneKey(project, zone));
  if (!version) return null;
  const record = versions.records.get(version);
  // Never the base policy in place of a version whose record is gone: that would strip the configuration.
  if (!record) throw new rollouts.MissingRolloutRecord(version);
  return record.policyConfig;
}

/**
 * vmLifecycle: the zone has an assignment (one read when it does). A create takes the version the zone
 * gets (policyForZone: a zone new during a rollout gets the baseline); the configuration is read only then.
 */
export async function ensureZoneAssignment(project: string, zone: string): Promise<{ created: boolean }> {
  const { created } = await osconfig.ensureAssignment(project, zone, config().ASSIGNMENT_ID, async () =>
    assignmentAt(await policyForZone(project, zone)),
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

/** What each zone gets under a configuration as read: its version, and the records of the versions zones get. */
export interface ZoneVersions {
  versionOf: (key: string) => string | null;
  records: ReadonlyMap<string, rollouts.RolloutRecord>;
  /** Changes whenever config/current or a staged rollout's revision does: a publish or a decision came. */
  fingerprint: string;
}

/** Pure: the zone versions of a configuration read (config/current and the records it names). */
export function zoneVersionsOf(read: {
  current: rollouts.CurrentConfig;
  currentRecord: rollouts.RolloutRecord | null;
  rolloutRecord: rollouts.RolloutRecord | null;
}): ZoneVersions {
  const { current, currentRecord, rolloutRecord } = read;
  const records = new Map(
    [currentRecord, rolloutRecord]
      .filter((r): r is rollouts.RolloutRecord => r !== null)
      .map((r) => [r.configVersion, r]),
  );
  const fingerprint = [
    current.configVersion,
    current.rollout,
    currentRecord?.staged?.revision,
    rolloutRecord?.staged?.revision,
  ].join('|');
  return { versionOf: planOfZones(current.configVersion, rolloutRecord?.staged ?? null), records, fingerprint };
}

/** What a zone is brought to under a configuration: its version and that version's revision. */
const zoneTarget = (v: ZoneVersions, key: string) => {
  const version = v.versionOf(key);
  return `${version}@${version ? v.records.get(version)?.staged?.revision : ''}`;
};

/**
 * Brings zones under the latest configuration, whoever decided it: `bring` runs for each zone under the
 * configuration read (`known`, else read now), then the configuration is read again, and the zones a newer
 * one (a publish or a decision committed meanwhile) gives another version are brought again, until the
 * configuration read after the writes is the one they were made under. A writer that read the world before
 * a decision (the audit's heal, a slow applier) can so never leave a zone at what the decision replaced:
 * the decision's own applier writes after its commit, and whoever wrote last sees the commit when it checks.
 * Returns the zones that could not be settled (the configuration kept changing): the next audit brings them.
 */
export async function underLatestConfiguration(
  keys: readonly string[],
  bring: (key: string, versions: ZoneVersions) => Promise<void>,
  known?: ZoneVersions,
): Promise<string[]> {
  let versions = known ?? zoneVersionsOf(await rollouts.readConfiguration());
  let pending = [...keys];
  for (let round = 0; pending.length > 0; round++) {
    const under = versions;
    await mapLimit(pending, 4, (key) => bring(key, under));
    const fresh = zoneVersionsOf(await rollouts.readConfiguration());
    if (fresh.fingerprint === versions.fingerprint) return [];
    pending = keys.filter((key) => zoneTarget(fresh, key) !== zoneTarget(versions, key));
    versions = fresh;
    if (round >= 3) return pending;
  }
  return [];
}

/**
 * Brings each zone (`project/zone`) to the version the configuration gives it, with that version's policy
 * and recorded rollout (null version: the unconfigured base policy; a version without a record is refused,
 * never replaced by the base policy). Reads in parallel (bounded), writes paced by `takeWrite`. A zone that
 * fails costs that zone only: it is reported, and the next audit's heal stage brings it to the same version.
 */
export async function bringZones(
  keys: readonly string[],
  takeWrite: () => Promise<void>,
  known?: ZoneVersions,
): Promise<ZonesBrought> {
  const outcome = new Map<string, ZoneOutcome | string>();
  const unsettled = await underLatestConfiguration(
    keys,
    async (key, versions) => {
      const i = key.lastIndexOf('/');
      const [project, zone] = [key.slice(0, i), key.slice(i + 1)];
      const version = versions.versionOf(key);
      try {
        const record = version ? versions.records.get(version) : null;
        if (version && !record) throw new rollouts.MissingRolloutRecord(version);
        outcome.set(
          key,
          await reconcileZoneAssignment(project, zone, record?.policyConfig ?? null, takeWrite, record?.zones?.[key]),
        );
      } catch (error) {
        // Transient faults too (withRetry already retried them): the zone is re-driven by the next audit.
        outcome.set(key, `failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
    known,
  );
  for (const key of unsettled)
    outcome.set(key, 'failed: the configuration kept changing while the zone was brought; the next audit brings it');
  const out: ZonesBrought = { created: [], updated: [], unchanged: [], failed: {} };
  for (const [key, o] of outcome)
    if (o === 'created' || o === 'updated' || o === 'unchanged') out[o].push(key);
    else out.failed[key] = o.slice('failed: '.length);
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
