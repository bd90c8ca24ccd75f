// Compliance evidence: every in-scope VM and every exempt VM with what an auditor asks about, stamped
// with the audit run it comes from (pure). The formats it is written in are views (shared/views/evidence.ts).
import type { Host } from './host.js';
import type { RunningState } from './drift.js';
import type { RunSummary } from './status.js';
import { syslogStatus } from './syslog.js';

export interface EvidenceMeta {
  run: RunSummary | null;
  generatedAt: Date;
  project: string | null;
}

export interface EvidenceRow {
  auditRunId: string;
  auditRunFinishedAt: string;
  instanceId: string;
  project: string;
  zone: string;
  name: string;
  inScope: boolean;
  state: string;
  /** Why the host is in its state; for an exempt host, the exemption. */
  reason: string;
  stateSince: string;
  configVersion: string;
  osqueryVersion: string;
  lastLogAt: string;
  /** Syslog results seen within the last hour (arriving), not (missing), or no ingestion (off); at generation. */
  syslog: string;
  /** When the host's osquery_schedule snapshot last showed syslog results logged. */
  syslogSeenAt: string;
  /**
   * What osqueryd itself says it runs (docs/osquery-upgrade.md): the configuration version from its lines'
   * decoration, its osquery version, whether osquery calls the configuration valid, the time of the line
   * that proved it, and the drift (if any) from what OS Config applied (configVersion).
   */
  runningConfigVersion: string;
  runningOsqueryVersion: string;
  configValid: string;
  runningProvedAt: string;
  drift: string;
}

const isoOf = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : '');

/** One host's row, stamped with the run; its syslog status as at `now`. */
export function evidenceRow(
  host: Host & { running?: RunningState | null },
  run: RunSummary | null,
  now: Date = new Date(),
): EvidenceRow {
  const running = host.running ?? null;
  return {
    auditRunId: run?.runId ?? '',
    auditRunFinishedAt: run?.finishedAt ?? '',
    instanceId: host.instanceId,
    project: host.project,
    zone: host.zone,
    name: host.name,
    inScope: host.state !== 'exempt' && host.state !== 'deleted',
    state: host.state,
    reason: host.reason ?? '',
    stateSince: isoOf(host.stateSince),
    configVersion: host.configVersion ?? '',
    osqueryVersion: host.osqueryVersion ?? '',
    lastLogAt: isoOf(host.lastLogAt),
    syslog: host.state === 'exempt' || host.state === 'deleted' ? '' : syslogStatus(host.syslog, now),
    syslogSeenAt: isoOf(host.syslog?.seenAt),
    runningConfigVersion: running?.configVersion ?? '',
    runningOsqueryVersion: running?.osqueryVersion ?? '',
    configValid: running?.configValid === null || !running ? '' : String(running.configValid),
    runningProvedAt: isoOf(running?.at),
    drift: running?.drift ?? '',
  };
}

/** Writes the report in one format, a piece at a time: the use case streams rows through it. */
export interface EvidenceWriter {
  begin(meta: EvidenceMeta): string;
  row(row: EvidenceRow, first: boolean): string;
  end(counts: { inScope: number; exempt: number }): string;
}
