// Fleet status: what the audit leaves for the status page, what a page view reads, and the compliance
// evidence report.
import { log } from '../log.js';
import { usageSince, usageSnapshot } from '../metrics.js';
import { evidenceRow, type EvidenceWriter } from '../domain/evidence.js';
import type { Host } from '../domain/host.js';
import { mergeFleetStatus, RUN_CLOSED_MESSAGE, summarizeProject, type RunSummary } from '../domain/status.js';
import { buildStatusView, rolloutStagesView, type StatusFilters, type StatusView } from '../domain/status-view.js';
import { AUDIT_AGES_SHOWN, type AuditCoverageInputs } from '../domain/status-audit.js';
import { config } from '../config.js';
import * as status from '../adapters/status.js';
import * as hosts from '../adapters/hosts.js';
import * as rollouts from '../adapters/rollouts.js';
import { getOsqueryStatus } from '../adapters/telemetry.js';
import { listPipeline } from '../adapters/pipeline.js';
import { DocumentInvalid, reportInvalid } from '../documents/document.js';

/** Open alerts listed on the page (the count covers them all). */
export const ALERTS_SHOWN = 50;

/** The audit of one project in a run: its snapshot for the page, written before the result is recorded. */
export async function recordProjectStatus(runId: string, project: string, hosts: Iterable<Host>, at: Date) {
  return status.writeProjectStatus(summarizeProject(project, runId, at, hosts));
}

/**
 * After any shard of a run: when the run is closed, publish the fleet status (once per run, whoever
 * calls, however often) and log the run's coverage. The rest of a run's close: shared/usecases/run-close.ts.
 */
export async function publishRunStatus(runId: string, now = new Date()): Promise<status.PublishOutcome> {
  const outcome = await status.publishRunStatus(runId, now, mergeFleetStatus);
  if (outcome.published) {
    const r = outcome.run;
    log.info(
      {
        runId,
        runStatus: r.status,
        counts: r.counts,
        reporting: r.reporting,
        expected: r.expected,
        coverage: r.coverage,
        ...(r.coverage === null ? {} : { coveragePercent: Math.round(r.coverage * 10_000) / 100 }),
        latest: outcome.latest,
      },
      RUN_CLOSED_MESSAGE,
    );
  }
  return outcome;
}

/** The page shows what it can: a document that does not match its definition is shown as absent (reported). */
const orAbsent = <T>(read: Promise<T>, absent: T): Promise<T> =>
  read.catch((error: unknown) => {
    if (!(error instanceof DocumentInvalid)) throw error;
    reportInvalid(error, 'the status page shows it as absent');
    return absent;
  });

/**
 * One page view: status/fleet, the filtered project's snapshot (only with a project filter), the current
 * version's record and the staged rollout under way (its stages, gates and next action as the controller
 * last saw them), the open alerts (a count and at most ALERTS_SHOWN episodes), status/osquery (where
 * osqueryd costs most), and the audit's cycle with the oldest audit ages. Each document that does not match
 * its definition is shown as absent.
 */
export async function loadStatusView(
  filters: StatusFilters,
  now = new Date(),
): Promise<{ view: StatusView; firestoreReads: number }> {
  const before = usageSnapshot();
  const [fleet, project, configuration, { invalid: invalidAlerts, ...alerts }, osqueryCost, audit, pipeline] =
    await Promise.all([
      orAbsent(status.getFleetStatus(), null),
      filters.project ? orAbsent(status.getProjectStatus(filters.project), null) : Promise.resolve(null),
      orAbsent(rollouts.readConfiguration(), rollouts.NO_CONFIGURATION),
      status.openAlerts(ALERTS_SHOWN),
      orAbsent(getOsqueryStatus(), null),
      auditCoverageInputs(),
      orAbsent(listPipeline(), null),
    ]);
  for (const i of invalidAlerts) reportInvalid(i, "the status page counts it, and leaves it out of the page's list");
  const record = configuration.currentRecord;
  const staged = (configuration.rolloutRecord ?? configuration.currentRecord)?.staged;
  const view = buildStatusView({
    fleet,
    project,
    currentVersion: configuration.current.configVersion,
    rollout: record
      ? {
          version: record.configVersion,
          publishedAt: record.publishedAt ? new Date(record.publishedAt).toISOString() : null,
          zones: Object.values(record.zones ?? {})
            .map((z) => ({ project: z.project, zone: z.zone, revisionId: z.revisionId, rolloutState: z.rolloutState }))
            .sort((a, b) => a.project.localeCompare(b.project) || a.zone.localeCompare(b.zone)),
          hostCounts: record.hostCounts ?? {},
        }
      : null,
    stages: staged?.mode === 'staged' ? rolloutStagesView(staged) : null,
    alerts,
    osqueryCost,
    audit,
    pipeline,
    filters,
    now,
  });
  return { view, firestoreReads: usageSince(before).firestoreReads };
}

/** The audit's cycle (the latest run's `rolling`) and the oldest audit ages: the page's audit coverage. */
async function auditCoverageInputs(): Promise<AuditCoverageInputs> {
  const [latestRun, { oldest, snapshots }] = await Promise.all([
    orAbsent(status.latestRunRolling(), null),
    status.oldestProjectSnapshots(AUDIT_AGES_SHOWN),
  ]);
  return { latestRun, tickMinutes: config().AUDIT_TICK_MINUTES, oldest, snapshots };
}

/** Where evidence goes: a function that takes the next chunk and resolves when it may take another. */
export type EvidenceSink = (chunk: string) => Promise<void>;

/**
 * The evidence report, in the format `writer` writes (shared/views/evidence.ts): every in-scope host, then
 * every exempt host (optionally of one project), stamped with the latest closed audit run, page by page
 * (one page of hosts in memory at a time). A host document that does not match its definition is left out
 * of the rows, reported with its path and counted (`invalid`): the report goes on with the others.
 */
export async function writeEvidence(
  writer: EvidenceWriter,
  sink: EvidenceSink,
  options: { project?: string; now?: Date; pageSize?: number; onRun?: (run: RunSummary | null) => void } = {},
): Promise<{ run: RunSummary | null; inScope: number; exempt: number; invalid: number }> {
  const run = await status.latestClosedRun();
  options.onRun?.(run);
  const now = options.now ?? new Date();
  await sink(writer.begin({ run, generatedAt: now, project: options.project ?? null }));
  const counts = { inScope: 0, exempt: 0 };
  let invalid = 0;
  let first = true;
  for (const which of ['inScope', 'exempt'] as const) {
    for await (const page of hosts.streamHosts(which, options.project, options.pageSize)) {
      let chunk = '';
      for (const host of page.hosts) {
        chunk += writer.row(evidenceRow(host, run, now), first);
        first = false;
      }
      counts[which] += page.hosts.length;
      for (const i of page.invalid) reportInvalid(i, 'left out of the evidence report');
      invalid += page.invalid.length;
      await sink(chunk);
    }
  }
  await sink(writer.end(counts));
  return { run, ...counts, invalid };
}
