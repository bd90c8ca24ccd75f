// The log pipeline watching itself (pure): Cloud Monitoring incidents on a log subscription's backlog
// (oldest_unacked_message_age, num_undelivered_messages) kept per subscription, one pipeline.backlog
// episode per subscription while any of its incidents is open (docs/heartbeat.md: The pipeline's backlog).

/** Which path a subscription serves: the heartbeat's (logHeartbeat, logHeartbeatDrain) or the SIEM's. */
export type PipelineRole = 'heartbeat' | 'siem';

/** pipeline/{subscriptionId}: the subscription's open backlog incidents and its open episode. */
export interface PipelineRecord {
  subscription: string;
  role: PipelineRole;
  openIncidents: string[];
  /** The open pipeline.backlog episode's key and start (null: none open). */
  episode: { dedupKey: string; since: Date } | null;
  /** The backlog as Cloud Monitoring measured it while the episode is open (null or absent: not measured). */
  lag?: BacklogLag | null;
}

/**
 * The incidents' observed values, each with its time (the incident's start): what Cloud Monitoring saw when
 * the condition fired. The newest of each metric is kept until the episode closes.
 */
export interface BacklogLag {
  /** subscription/oldest_unacked_message_age, seconds. */
  oldestUnackedSeconds: number | null;
  oldestUnackedAt: Date | null;
  /** subscription/num_undelivered_messages. */
  undeliveredMessages: number | null;
  undeliveredAt: Date | null;
}

/** One incident's measurement of a backlog. */
export interface BacklogMeasure {
  metric: 'oldest-unacked-age' | 'undelivered-messages';
  value: number;
}

/** Bounds of what Cloud Monitoring can observe: Pub/Sub keeps a message at most 31 days. */
const MAX_AGE_SECONDS = 31 * 86_400;
const MAX_MESSAGES = 1e15;

/**
 * Pure: an incident's observed value (a string, or a number) as a backlog measurement, by its metric type; null
 * for another metric or a value that is not a finite, non-negative number within what Pub/Sub can hold. An
 * incident's values are data from a notification, validated like any input.
 */
export function backlogMeasure(metricType: string | null | undefined, observed: unknown): BacklogMeasure | null {
  const metric = metricType?.endsWith('/oldest_unacked_message_age')
    ? 'oldest-unacked-age'
    : metricType?.endsWith('/num_undelivered_messages')
      ? 'undelivered-messages'
      : null;
  const text = typeof observed === 'number' ? String(observed) : typeof observed === 'string' ? observed.trim() : '';
  if (!metric || !/^\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text)) return null;
  const value = Number(text);
  const max = metric === 'oldest-unacked-age' ? MAX_AGE_SECONDS : MAX_MESSAGES;
  return Number.isFinite(value) && value <= max ? { metric, value } : null;
}

/** Pure: the lag with a measurement taken at `at` (an older one of the same metric changes nothing). */
export function withMeasure(lag: BacklogLag | null, measure: BacklogMeasure, at: Date): BacklogLag {
  const base: BacklogLag = lag ?? {
    oldestUnackedSeconds: null,
    oldestUnackedAt: null,
    undeliveredMessages: null,
    undeliveredAt: null,
  };
  if (measure.metric === 'oldest-unacked-age')
    return base.oldestUnackedAt && base.oldestUnackedAt > at
      ? base
      : { ...base, oldestUnackedSeconds: measure.value, oldestUnackedAt: at };
  return base.undeliveredAt && base.undeliveredAt > at
    ? base
    : { ...base, undeliveredMessages: measure.value, undeliveredAt: at };
}

/** Pure: the lag in words, as the alert and the status page say it (`oldest unacked message 14 min`). */
export function lagText(lag: BacklogLag | null | undefined): string | null {
  if (!lag) return null;
  const parts: string[] = [];
  if (lag.oldestUnackedSeconds !== null) parts.push(`oldest unacked message ${durationText(lag.oldestUnackedSeconds)}`);
  if (lag.undeliveredMessages !== null)
    parts.push(`${Math.round(lag.undeliveredMessages).toLocaleString('en-US')} undelivered messages`);
  return parts.length > 0 ? parts.join(', ') : null;
}

const durationText = (seconds: number) =>
  seconds < 120
    ? `${Math.round(seconds)} s`
    : seconds < 7_200
      ? `${Math.round(seconds / 60)} min`
      : `${(seconds / 3600).toFixed(1)} h`;

/** The pipeline.backlog episode of a subscription from `since`. */
export const backlogKey = (subscription: string, since: Date) => `pipeline.backlog:${subscription}:${since.getTime()}`;

export interface BacklogChange {
  next: PipelineRecord;
  /** The episode this incident opens (the subscription's first open incident). */
  open: { dedupKey: string; since: Date } | null;
  /** The episode this incident closes (the subscription's last open incident). */
  close: { dedupKey: string; at: Date } | null;
}

/** A backlog incident on a log subscription, as monitoringAlert reads it. */
export interface BacklogIncident {
  subscription: string;
  role: PipelineRole;
  incidentId: string;
  state: 'open' | 'closed';
  at: Date;
  /** What the incident observed (null: a value that is not a backlog's). */
  measure?: BacklogMeasure | null;
}

/**
 * Pure: an incident opening or closing on a subscription. The first open incident opens the episode, the
 * last closing one closes it; a redelivered notification changes nothing (null).
 */
export function planBacklogIncident(current: PipelineRecord | null, incident: BacklogIncident): BacklogChange | null {
  const open = current?.openIncidents ?? [];
  const record: PipelineRecord = current ?? {
    subscription: incident.subscription,
    role: incident.role,
    openIncidents: [],
    episode: null,
  };
  if (incident.state === 'open') {
    if (open.includes(incident.incidentId)) return null;
    const episode = record.episode ?? { dedupKey: backlogKey(incident.subscription, incident.at), since: incident.at };
    const kept = record.episode ? (record.lag ?? null) : null;
    const lag = incident.measure ? withMeasure(kept, incident.measure, incident.at) : kept;
    return {
      next: { ...record, openIncidents: [...open, incident.incidentId], episode, lag },
      open: record.episode ? null : episode,
      close: null,
    };
  }
  if (!open.includes(incident.incidentId)) return null;
  const rest = open.filter((id) => id !== incident.incidentId);
  const closes = rest.length === 0 && record.episode;
  return {
    next: {
      ...record,
      openIncidents: rest,
      episode: closes ? null : record.episode,
      lag: closes ? null : (record.lag ?? null),
    },
    open: null,
    close: closes ? { dedupKey: record.episode!.dedupKey, at: incident.at } : null,
  };
}

/** Pure: whether the heartbeat path is behind now: a heartbeat subscription with an open backlog episode. */
export const heartbeatBehind = (records: readonly PipelineRecord[]) =>
  records.some((r) => r.role === 'heartbeat' && r.episode !== null);

/**
 * What a backlog excuses. `deliveredBefore`: every line published before it had been delivered (when the
 * oldest unacked message was A seconds old at T, everything published before T - A was acknowledged by T);
 * null: no age measured, so every missing line is excused (the episode alone says nothing about how far).
 */
export interface BacklogHold {
  deliveredBefore: Date | null;
}

/**
 * Pure: what the heartbeat path's backlogs excuse, null when it keeps up. With several subscriptions behind,
 * the least that is known: one without a measured age excuses everything.
 */
export function heartbeatBacklog(records: readonly PipelineRecord[]): BacklogHold | null {
  const behind = records.filter((r) => r.role === 'heartbeat' && r.episode !== null);
  if (behind.length === 0) return null;
  let deliveredBefore: number | null = Infinity;
  for (const r of behind) {
    const lag = r.lag;
    const bound =
      lag?.oldestUnackedSeconds != null && lag.oldestUnackedAt
        ? lag.oldestUnackedAt.getTime() - lag.oldestUnackedSeconds * 1000
        : null;
    deliveredBefore = bound === null || deliveredBefore === null ? null : Math.min(deliveredBefore, bound);
  }
  return { deliveredBefore: deliveredBefore === null ? null : new Date(deliveredBefore) };
}

/**
 * Pure: whether a backlog explains a host's missing lines, judged as of the moment before which every line was
 * delivered: a host whose newest line was already a silence threshold old then stopped before the backlog and
 * is silent whatever it holds. Without a measured age (or a host that never sent a line), the backlog excuses
 * it: wrongly holding one host's silence for the episode is cheaper than wrongly alerting on the whole fleet.
 */
export function backlogExcuses(lastLogAt: Date | null, hold: BacklogHold | null, silenceThresholdMs: number): boolean {
  if (!hold?.deliveredBefore || !lastLogAt) return true;
  return hold.deliveredBefore.getTime() - lastLogAt.getTime() <= silenceThresholdMs;
}
