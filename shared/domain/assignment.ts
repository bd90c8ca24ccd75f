// A zone's OS policy assignment against a configuration version, and its rollout as recorded (pure).
import { policyIdFor, type OsqueryAssignment, type PolicyConfig } from './policy.js';

/** A zone's assignment at a version, as rollouts/{configVersion}.zones records it. */
export interface ZoneRollout {
  project: string;
  zone: string;
  assignment: string;
  revisionId: string;
  rolloutState: string;
}

/** Pure: what a zone's assignment needs to be at `policy`'s version: created, updated, or nothing. */
export function assignmentStep(
  existing: Pick<OsqueryAssignment, 'osPolicies'> | null,
  policy: PolicyConfig | null,
): 'create' | 'update' | 'none' {
  if (!existing) return 'create';
  return existing.osPolicies?.[0]?.id === policyIdFor(policy?.configVersion) ? 'none' : 'update';
}

// LRO results arrive protobuf-decoded (enums as numbers); plain reads as names.
const ROLLOUT_STATES = ['ROLLOUT_STATE_UNSPECIFIED', 'IN_PROGRESS', 'CANCELLING', 'CANCELLED', 'SUCCEEDED'];
export const rolloutStateName = (state: unknown) =>
  typeof state === 'number' ? (ROLLOUT_STATES[state] ?? String(state)) : String(state ?? 'ROLLOUT_STATE_UNSPECIFIED');

/** Pure: the rollout record of an assignment as OS Config returned it. */
export function zoneRolloutOf(
  project: string,
  zone: string,
  name: string,
  assignment: Pick<OsqueryAssignment, 'revisionId' | 'rolloutState'>,
): ZoneRollout {
  return {
    project,
    zone,
    assignment: name,
    revisionId: String(assignment.revisionId ?? ''),
    rolloutState: rolloutStateName(assignment.rolloutState),
  };
}

/** Pure: whether the recorded rollout differs from the assignment's (then it is written again). */
export const rolloutChanged = (recorded: ZoneRollout | undefined, now: ZoneRollout) =>
  !recorded || recorded.revisionId !== now.revisionId || recorded.rolloutState !== now.rolloutState;
