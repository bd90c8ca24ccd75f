// Evidence of syslog ingestion per host (pure): whether a host's syslog results arrive, read from the
// hourly osquery_schedule snapshots logHeartbeat already receives. The syslog result lines themselves go
// to the SIEM only (one line per message: never worth a function invocation each); the snapshot's
// output_size of the syslog query grows by the bytes of every row it returned, so a snapshot whose delta
// is positive says syslog results were logged between it and the one before.
import { SYSLOG_QUERY } from '../osquery/log-routing.js';
import type { ScheduleSnapshot } from './telemetry/log-lines.js';
import { scheduleStep, type ScheduleBaseline } from './telemetry/query-cost.js';

/** hosts/{id}.syslog, written by logHeartbeat with the schedule baseline. */
export interface SyslogEvidence {
  /** The newest schedule snapshot that lists the syslog query: the host's version ingests syslog. */
  scheduledAt: Date;
  /** The newest schedule snapshot whose syslog query returned rows since the snapshot before; null: none yet. */
  seenAt: Date | null;
}

/**
 * "Within the last hour" as hourly snapshots can say it: the syslog query's results of the last hour are
 * counted by a snapshot that arrives up to an hour later (osquery_schedule runs hourly, splayed by 10%), and
 * logHeartbeat writes within its window.
 */
export const SYSLOG_SEEN_WITHIN_MS = 75 * 60_000;
/** A host whose snapshots stopped listing the syslog query this long ago no longer ingests syslog. */
export const SYSLOG_SCHEDULED_WITHIN_MS = 3 * 60 * 60_000;
/** A first snapshot counts when the worker started this recently (its counters cover that span only). */
const FIRST_SPAN_MAX_MS = 2 * 60 * 60_000;

/** arriving: results seen within the last hour; missing: ingestion is on and none were; off: not ingesting. */
export type SyslogStatus = 'arriving' | 'missing' | 'off';
export const SYSLOG_STATUSES: readonly SyslogStatus[] = ['arriving', 'missing', 'off'];

/**
 * Pure: the host's evidence after these snapshots (measured against its schedule baseline, as logHeartbeat
 * folds them), or null when they change nothing.
 */
export function foldSyslogEvidence(
  previous: SyslogEvidence | null,
  baseline: ScheduleBaseline | null,
  snapshots: readonly ScheduleSnapshot[],
): SyslogEvidence | null {
  let current = baseline;
  let scheduledAt = previous?.scheduledAt ?? null;
  let seenAt = previous?.seenAt ?? null;
  for (const snapshot of [...snapshots].sort((a, b) => a.at - b.at)) {
    const step = scheduleStep(current, snapshot);
    if (!step.next) continue;
    current = step.next;
    const delta = step.deltas.find((d) => d.query === SYSLOG_QUERY);
    if (!delta) continue;
    const at = new Date(snapshot.at);
    if (!scheduledAt || at > scheduledAt) scheduledAt = at;
    // A first snapshot of a worker that ran for weeks does not say when its rows were logged; one whose
    // worker started within the snapshot's second does (scheduleStep leaves a zero span null: no rate).
    const sinceStart = snapshot.worker ? snapshot.at - snapshot.worker.startTime * 1000 : null;
    const spanKnown =
      step.kind !== 'first' || (sinceStart !== null && sinceStart >= 0 && sinceStart <= FIRST_SPAN_MAX_MS);
    if (delta.outputBytes > 0 && spanKnown && (!seenAt || at > seenAt)) seenAt = at;
  }
  if (!scheduledAt) return null;
  const same =
    previous?.scheduledAt.getTime() === scheduledAt.getTime() &&
    (previous.seenAt?.getTime() ?? null) === (seenAt?.getTime() ?? null);
  return same ? null : { scheduledAt, seenAt };
}

/** Pure: what the evidence says at `now`. */
export function syslogStatus(evidence: SyslogEvidence | null | undefined, now: Date): SyslogStatus {
  if (!evidence || now.getTime() - new Date(evidence.scheduledAt).getTime() > SYSLOG_SCHEDULED_WITHIN_MS) return 'off';
  if (evidence.seenAt && now.getTime() - new Date(evidence.seenAt).getTime() <= SYSLOG_SEEN_WITHIN_MS)
    return 'arriving';
  return 'missing';
}
