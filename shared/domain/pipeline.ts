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
}

/** The pipeline.backlog episode of a subscription from `since`. */
export const backlogKey = (subscription: string, since: Date) => `pipeline.backlog:${subscription}:${since.getTime()}`;

export interface BacklogChange {
  next: PipelineRecord;
  /** The episode this incident opens (the subscription's first open incident). */
  open: { dedupKey: string; since: Date } | null;
  /** The episode this incident closes (the subscription's last open incident). */
  close: { dedupKey: string; at: Date } | null;
}

/**
 * Pure: an incident opening or closing on a subscription. The first open incident opens the episode, the
 * last closing one closes it; a redelivered notification changes nothing (null).
 */
export function planBacklogIncident(
  current: PipelineRecord | null,
  incident: { subscription: string; role: PipelineRole; incidentId: string; state: 'open' | 'closed'; at: Date },
): BacklogChange | null {
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
    return {
      next: { ...record, openIncidents: [...open, incident.incidentId], episode },
      open: record.episode ? null : episode,
      close: null,
    };
  }
  if (!open.includes(incident.incidentId)) return null;
  const rest = open.filter((id) => id !== incident.incidentId);
  const closes = rest.length === 0 && record.episode;
  return {
    next: { ...record, openIncidents: rest, episode: closes ? null : record.episode },
    open: null,
    close: closes ? { dedupKey: record.episode!.dedupKey, at: incident.at } : null,
  };
}

/** Pure: whether the heartbeat path is behind now: a heartbeat subscription with an open backlog episode. */
export const heartbeatBehind = (records: readonly PipelineRecord[]) =>
  records.some((r) => r.role === 'heartbeat' && r.episode !== null);
