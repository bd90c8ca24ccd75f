// Host documents and their state changes (contracts.md: hosts/{instanceId} and its transitions).

export const HOST_STATES = ['exempt', 'pending', 'blocked', 'noncompliant', 'compliant', 'reporting', 'silent', 'stopped', 'deleted'] as const;
export type HostState = (typeof HOST_STATES)[number];

export interface HostIdentity {
  instanceId: string;
  name: string;
  project: string;
  zone: string;
}

export interface Host extends HostIdentity {
  state: HostState;
  reason: string | null;
  stateSince: Date;
  inScope: boolean;
  lastLogAt: Date | null;
  osqueryVersion: string | null;
  configVersion: string | null;
  updatedAt: Date;
}

export interface Transition {
  from: HostState | null;
  to: HostState;
  reason: string | null;
  at: Date;
  /** What caused it, e.g. `vmLifecycle v1.compute.instances.insert op-123`. */
  cause: string;
}

export interface HostChange {
  host: Host;
  transition: Transition | null;
}

export const isInScope = (state: HostState) => state !== 'exempt' && state !== 'deleted';

/** States vmLifecycle decides at enrollment. Later states belong to the audit and are never undone by a (re)delivered insert. */
const ENROLLMENT_STATES: ReadonlySet<HostState> = new Set(['exempt', 'blocked', 'pending']);

function changeTo(current: Host | null, identity: HostIdentity, state: HostState, reason: string | null, now: Date, cause: string): HostChange | null {
  if (current && current.state === state && current.reason === reason) return null;
  const host: Host = {
    ...identity,
    state,
    reason,
    stateSince: current?.state === state ? current.stateSince : now,
    inScope: isInScope(state),
    lastLogAt: current?.lastLogAt ?? null,
    osqueryVersion: current?.osqueryVersion ?? null,
    configVersion: current?.configVersion ?? null,
    updatedAt: now,
  };
  const transition = current?.state === state ? null : { from: current?.state ?? null, to: state, reason, at: now, cause };
  return { host, transition };
}

/**
 * Pure: the change an enrollment decision makes to a host, or null when there is nothing to write.
 * Instance ids are never reused, so a deleted host stays deleted and an insert seen again is a redelivery.
 */
export function planEnrollment(current: Host | null, identity: HostIdentity, decided: { state: 'exempt' | 'blocked' | 'pending'; reason: string }, now: Date, cause: string): HostChange | null {
  if (current && !ENROLLMENT_STATES.has(current.state)) return null;
  return changeTo(current, identity, decided.state, decided.reason, now, cause);
}

/** Pure: the change a deletion makes (`deleted` is kept for history). */
export function planRetirement(current: Host | null, identity: HostIdentity, now: Date, cause: string): HostChange | null {
  return changeTo(current, identity, 'deleted', 'vm-deleted', now, cause);
}
