// Host documents, their state changes and the alert episodes those open or close (docs/contracts.md:
// hosts/{instanceId} and its transitions).
import { episodeKey, type AlertKind, type EpisodeChange, type Severity } from './alerts.js';
import { diagnosis, type SilenceCause } from './silence-cause.js';
import type { SyslogEvidence } from './syslog.js';

export const HOST_STATES = [
  'exempt',
  'pending',
  'blocked',
  'noncompliant',
  'compliant',
  'reporting',
  'silent',
  'stopped',
  'deleted',
] as const;
export type HostState = (typeof HOST_STATES)[number];

/** The order people read states in: healthy, then troubled, then out of scope. */
export const STATES_FOR_DISPLAY: readonly HostState[] = [
  'reporting',
  'compliant',
  'pending',
  'silent',
  'noncompliant',
  'blocked',
  'stopped',
  'exempt',
  'deleted',
];

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
  /** Syslog ingestion's evidence, logHeartbeat's to write (like lastLogAt); absent until a snapshot says. */
  syslog?: SyslogEvidence | null;
  /** Why the host is quiet (shared/domain/silence-cause.ts), the audit's to write; null or absent: not quiet. */
  cause?: SilenceCause | null;
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
  /** The alert episodes the change opens or closes (written with it). */
  episodes: EpisodeChange;
}

export const isInScope = (state: HostState) => state !== 'exempt' && state !== 'deleted';

/** The states that alert while a host is in them, and how. */
export const STATE_ALERTS: Partial<Record<HostState, { kind: AlertKind; severity: Severity }>> = {
  silent: { kind: 'host.silent', severity: 'critical' },
  noncompliant: { kind: 'host.noncompliant', severity: 'warning' },
  blocked: { kind: 'host.blocked', severity: 'warning' },
};

/**
 * Pure: entering an alerting state opens an episode; leaving it closes the open one. `previous` is the
 * host before the change (its stateSince dates the episode being left).
 */
export function episodesFor(
  previous: Host | null,
  next: Host,
  transition: Transition | null,
  denylisted: readonly string[] = [],
): EpisodeChange {
  if (!transition) return {};
  const change: EpisodeChange = {};
  const left = transition.from ? STATE_ALERTS[transition.from] : undefined;
  if (left && previous)
    change.close = {
      kind: left.kind,
      instanceId: next.instanceId,
      previousSince: previous.stateSince,
      at: transition.at,
    };
  const entered = STATE_ALERTS[transition.to];
  if (entered) {
    const host = { instanceId: next.instanceId, name: next.name, project: next.project, zone: next.zone };
    change.open = {
      kind: entered.kind,
      severity: entered.severity,
      dedupKey: episodeKey(entered.kind, next.instanceId, next.stateSince),
      host,
      reason: next.reason,
      since: next.stateSince,
      // Why it went quiet and what to do, on both of the episode's messages.
      // (and the queries the watchdog denylisted, where they help explain it).
      ...(next.cause ? { details: diagnosis(next.cause, denylisted) } : {}),
    };
  }
  return change;
}

/**
 * States vmLifecycle decides at enrollment. Later states belong
 * to the audit and are never undone by a (re)delivered insert.
 */
const ENROLLMENT_STATES: ReadonlySet<HostState> = new Set(['exempt', 'blocked', 'pending']);

/** What an observer (vmLifecycle, the audit) concluded about a host. Versions left out are kept. */
export interface Observation {
  state: HostState;
  reason: string | null;
  osqueryVersion?: string | null;
  configVersion?: string | null;
  /** Left out: kept, except that a reporting host is not quiet. */
  cause?: SilenceCause | null;
  /** The queries the watchdog denylists now: the host.silent alert's supporting evidence (not stored). */
  denylisted?: readonly string[];
}

function changeTo(
  current: Host | null,
  identity: HostIdentity,
  observed: Observation,
  now: Date,
  cause: string,
): HostChange | null {
  const { state, reason } = observed;
  const osqueryVersion =
    observed.osqueryVersion === undefined ? (current?.osqueryVersion ?? null) : observed.osqueryVersion;
  const configVersion =
    observed.configVersion === undefined ? (current?.configVersion ?? null) : observed.configVersion;
  const quiet = observed.cause !== undefined ? observed.cause : state === 'reporting' ? null : (current?.cause ?? null);
  const same =
    current &&
    current.state === state &&
    (current.cause ?? null) === quiet &&
    current.reason === reason &&
    current.osqueryVersion === osqueryVersion &&
    current.configVersion === configVersion &&
    current.name === identity.name &&
    current.zone === identity.zone &&
    current.project === identity.project;
  if (same) return null;
  const host: Host = {
    ...identity,
    state,
    reason,
    stateSince: current?.state === state ? current.stateSince : now,
    inScope: isInScope(state),
    lastLogAt: current?.lastLogAt ?? null,
    osqueryVersion,
    configVersion,
    // Written only when there is or was a cause, so hosts never quiet keep the shape they had.
    ...(quiet !== null || current?.cause != null ? { cause: quiet } : {}),
    updatedAt: now,
    // Carried for what the audit summarises; never written back (the writers leave it to logHeartbeat).
    ...(current?.syslog ? { syslog: current.syslog } : {}),
  };
  const transition =
    current?.state === state ? null : { from: current?.state ?? null, to: state, reason, at: now, cause };
  return { host, transition, episodes: episodesFor(current, host, transition, observed.denylisted) };
}

/**
 * Pure: the change an enrollment decision makes to a host, or null when there is nothing to write.
 * Instance ids are never reused, so a deleted host stays deleted and an insert seen again is a redelivery.
 */
export function planEnrollment(
  current: Host | null,
  identity: HostIdentity,
  decided: { state: 'exempt' | 'blocked' | 'pending'; reason: string },
  now: Date,
  cause: string,
): HostChange | null {
  if (current && !ENROLLMENT_STATES.has(current.state)) return null;
  return changeTo(current, identity, decided, now, cause);
}

/** Pure: the change an audit observation makes (the audit owns every state), or null when nothing changed. */
export function planObservation(
  current: Host | null,
  identity: HostIdentity,
  observed: Observation,
  now: Date,
  cause: string,
): HostChange | null {
  return changeTo(current, identity, observed, now, cause);
}

/** The project, zone and name an event or a listing gives for an instance id match what is recorded. */
export const sameIdentity = (host: HostIdentity, ref: Omit<HostIdentity, 'instanceId'>) =>
  host.project === ref.project && host.zone === ref.zone && host.name === ref.name;

/** What Compute says now about a delete entry that names no instance id. */
export interface NameEvidence {
  /** The id of the VM that has the entry's name in its zone now, or null when there is none. */
  vmNamed: string | null;
  /** Whether the VM of the one live host recorded under that name still exists (under any name). */
  hostVmExists: boolean;
}

/**
 * Pure: the host a delete entry without an instance id retires, or why none. Names are reused once a VM
 * is gone, so a name identifies a host only where nothing else can match: exactly one live host has it,
 * no VM has it in that zone now, and that host's VM is gone by id (not merely renamed). `evidence` is
 * read only for exactly one live host.
 */
export function hostRetiredByName(
  liveIds: readonly string[],
  evidence?: NameEvidence,
): { instanceId: string } | { instanceId: null; reason: string } {
  if (liveIds.length === 0) return { instanceId: null, reason: 'no live host has that name' };
  if (liveIds.length > 1) return { instanceId: null, reason: `${liveIds.length} live hosts have that name` };
  const [only] = liveIds as [string];
  if (!evidence) return { instanceId: null, reason: 'Compute was not asked' };
  if (evidence.vmNamed === only) return { instanceId: null, reason: "the host's VM still exists under that name" };
  if (evidence.vmNamed)
    return { instanceId: null, reason: `the name is in use by another VM now (instance ${evidence.vmNamed})` };
  if (evidence.hostVmExists) return { instanceId: null, reason: "the host's VM still exists under another name" };
  return { instanceId: only };
}

/**
 * Pure: the change a deletion makes (`deleted` is kept for history, under the identity recorded). A VM
 * never recorded leaves no tombstone: there is no history to keep, and nothing to stop alerting about.
 */
export function planRetirement(current: Host | null, now: Date, cause: string): HostChange | null {
  if (!current) return null;
  return changeTo(current, current, { state: 'deleted', reason: 'vm-deleted' }, now, cause);
}
