// The one OS policy assignment per zone (id ASSIGNMENT_ID), as publish, the audit and vmLifecycle keep it.
import { config, policySettings } from '../config.js';
import { assignmentStep, rolloutChanged, zoneRolloutOf, type ZoneRollout } from '../domain/assignment.js';
import { buildOsqueryAssignment, type PolicyConfig } from '../domain/policy.js';
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
 * vmLifecycle: the zone has an assignment (one read when it does). A create takes the current version;
 * the current configuration is read only then.
 */
export async function ensureZoneAssignment(project: string, zone: string): Promise<{ created: boolean }> {
  const { created } = await osconfig.ensureAssignment(project, zone, config().ASSIGNMENT_ID, async () =>
    buildOsqueryAssignment(policySettings(), (await rollouts.currentPolicyConfig()) ?? undefined),
  );
  return { created };
}
