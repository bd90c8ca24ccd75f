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

/**
 * Pure: what a zone's assignment needs to be at `policy`'s version: created, updated, or nothing. The
 * version names the content; the Cloud Storage generations its files are pinned to are compared too, so a
 * version republished after an object was deleted (new generations) reaches the zones already at it.
 */
export function assignmentStep(
  existing: Pick<OsqueryAssignment, 'osPolicies'> | null,
  policy: PolicyConfig | null,
): 'create' | 'update' | 'none' {
  if (!existing) return 'create';
  if (existing.osPolicies?.[0]?.id !== policyIdFor(policy?.configVersion)) return 'update';
  const wanted = (policy?.files ?? []).flatMap((f) => (f.gcs ? [`${f.gcs.object}#${f.gcs.generation}`] : []));
  return samePins(pinnedObjects(existing), wanted) ? 'none' : 'update';
}

/** The Cloud Storage objects an assignment's file resources are pinned to, as `object#generation`. */
export function pinnedObjects(assignment: Pick<OsqueryAssignment, 'osPolicies'>): string[] {
  const pins: string[] = [];
  for (const policy of assignment.osPolicies ?? [])
    for (const group of policy.resourceGroups ?? [])
      for (const resource of group.resources ?? []) {
        const gcs = resource.file?.file?.gcs;
        if (gcs?.object) pins.push(`${gcs.object}#${String(gcs.generation ?? '')}`);
      }
  return pins;
}

/** The same objects at the same generations (an assignment repeats them once per OS family's group). */
const samePins = (have: string[], want: string[]) => {
  const a = new Set(have);
  const b = new Set(want);
  return a.size === b.size && [...a].every((x) => b.has(x));
};

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
