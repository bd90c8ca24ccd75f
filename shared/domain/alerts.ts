// Alerts, pure: their kinds, their episodes (one problem, opened and closed once) and the messages those
// owe (docs/contracts.md: alert messages). Which host states alert: shared/domain/host.ts (STATE_ALERTS).

export type AlertKind =
  | 'host.silent'
  | 'host.noncompliant'
  | 'host.blocked'
  | 'host.performance'
  | 'host.drifted'
  | 'host.spoofed'
  | 'query.denylisted'
  | 'query.expensive'
  | 'logs.overBudget'
  | 'rollout.halted'
  | 'rollout.stalled'
  | 'pipeline.backlog'
  | 'fleet.silent';
export type Severity = 'info' | 'warning' | 'critical';
/** The alerts about a scheduled query of a configuration version (shared/domain/telemetry/query-alerts.ts). */
export type QueryAlertKind = Extract<AlertKind, 'query.denylisted' | 'query.expensive'>;

export interface AlertHost {
  instanceId: string;
  name: string;
  project: string;
  zone: string;
}

/** The query a query.* alert is about: a scheduled query of one configuration version. */
export interface AlertQuery {
  configVersion: string;
  name: string;
}

export interface AlertMessage {
  kind: AlertKind | string;
  status: 'firing' | 'resolved';
  severity: Severity;
  host: AlertHost | null;
  reason: string | null;
  since: string;
  at: string;
  dedupKey: string;
  /** Kind-specific fields (rollout.halted: version, baseline, stage, gate, value, threshold, unit). */
  [detail: string]: unknown;
  /** host.performance only: who measured it, `osquery` (its own heartbeat) or `monitoring` (Cloud Monitoring). */
  source?: string;
  /** query.* alerts only. */
  query?: AlertQuery;
}

/** One problem episode of a host: kind + host + when it began. Firestore-safe as a document id. */
export const episodeKey = (kind: string, instanceId: string, since: Date | string) =>
  `${kind}:${instanceId}:${new Date(since).getTime()}`;

export interface EpisodeChange {
  open?: {
    kind: AlertKind;
    severity: Severity;
    dedupKey: string;
    host: AlertHost | null;
    reason: string | null;
    since: Date;
    source?: string;
    query?: AlertQuery;
    /** Kind-specific fields both messages carry (host.silent: cause, nextStep). */
    details?: Record<string, unknown>;
    /** Held back by a storm (shared/domain/storm.ts): recorded, sent only once released. */
    held?: boolean;
    /** Held until this audit run's close decides the fleet's storm (absent: a project's storm holds it). */
    heldRun?: string;
  };
  /**
   * The episode this change ends: found by the state it leaves (kind, host, when that state began), or
   * named by its key when it is not a host's (query alerts).
   */
  close?: { kind: AlertKind; instanceId: string; previousSince: Date; at: Date; dedupKey?: string };
}

/** What an episode record (alerts/{dedupKey}) holds about its two messages. */
export interface EpisodeMessages {
  kind?: string | null;
  /** Held back by a storm: owes nothing until released (a resolution while held owes nothing either). */
  held?: boolean | null;
  firing?: { sentAt?: unknown } | null;
  resolved?: { sentAt?: unknown } | null;
}

/**
 * Pure: which messages an episode still owes. An episode with no firing record never fired (its host
 * was recorded in an alerting state before episodes were kept): it owes nothing, not even a `resolved`.
 * A firing recorded but not yet sent is sent before its resolution, so the pair stays whole.
 */
export function owedMessages(episode: EpisodeMessages): { firing: boolean; resolved: boolean } {
  if (!episode.kind || !episode.firing || episode.held) return { firing: false, resolved: false };
  return { firing: !episode.firing.sentAt, resolved: Boolean(episode.resolved) && !episode.resolved?.sentAt };
}

/** An episode as its record (alerts/{dedupKey}) holds it, times as dates. */
export interface Episode {
  dedupKey: string;
  kind: string;
  severity: Severity;
  host: AlertHost | null;
  reason: string | null;
  since: Date;
  firing: { at: Date; sentAt: Date | null };
  resolved: { at: Date; sentAt: Date | null } | null;
  /** Kind-specific fields carried by both messages (never overriding the contract's own). */
  details?: Record<string, unknown> | null;
  source?: string | null;
  query?: AlertQuery | null;
}

/** Pure: the message on the alert topic for one of an episode's two messages (docs/contracts.md). */
export function alertMessage(episode: Episode, status: 'firing' | 'resolved'): AlertMessage {
  const at = status === 'firing' ? episode.firing.at : episode.resolved!.at;
  return {
    ...episode.details,
    kind: episode.kind,
    status,
    severity: episode.severity,
    host: episode.host,
    reason: episode.reason,
    since: episode.since.toISOString(),
    at: at.toISOString(),
    dedupKey: episode.dedupKey,
    ...(episode.source ? { source: episode.source } : {}),
    ...(episode.query ? { query: episode.query } : {}),
  };
}
