// Fleet status: what the audit leaves for the status page, what a page view reads, and the compliance
// evidence report.
import { log } from '../log.js';
import { usageSince, usageSnapshot } from '../metrics.js';
import { evidenceRow, type EvidenceWriter } from '../domain/evidence.js';
import type { Host } from '../domain/host.js';
import { mergeFleetStatus, RUN_CLOSED_MESSAGE, summarizeProject, type RunSummary } from '../domain/status.js';
import { buildStatusView, rolloutStagesView, type StatusFilters, type StatusView } from '../domain/status-view.js';
import * as status from '../adapters/status.js';
import * as hosts from '../adapters/hosts.js';
import * as rollouts from '../adapters/rollouts.js';
import { getOsqueryStatus } from '../adapters/telemetry.js';

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

/**
 * One page view: status/fleet, the filtered project's snapshot (only with a project filter), the current
 * version's record and the staged rollout under way (its stages, gates and next action as the controller
 * last saw them), the open alerts (a count and at most ALERTS_SHOWN episodes), and status/osquery (where
 * osqueryd costs most).
 */
export async function loadStatusView(
  filters: StatusFilters,
  now = new Date(),
): Promise<{ view: StatusView; firestoreReads: number }> {
  const before = usageSnapshot();
  const [fleet, project, configuration, alerts, osqueryCost] = await Promise.all([
    status.getFleetStatus(),
    filters.project ? status.getProjectStatus(filters.project) : Promise.resolve(null),
    rollouts.readConfiguration(),
    status.openAlerts(ALERTS_SHOWN),
    getOsqueryStatus(),
  ]);
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
    filters,
    now,
  });
  return { view, firestoreReads: usageSince(before).firestoreReads };
}

/** Where evidence goes: a function that takes the next chunk and resolves when it may take another. */
export type EvidenceSink = (chunk: string) => Promise<void>;

/**
 * The evidence report, in the format `writer` writes (shared/views/evidence.ts): every in-scope host, then
 * every exempt host (optionally of one project), stamped with the latest closed audit run, page by page
 * (one page of hosts in memory at a time).
 */
export async function writeEvidence(
  writer: EvidenceWriter,
  sink: EvidenceSink,
  options: { project?: string; now?: Date; pageSize?: number; onRun?: (run: RunSummary | null) => void } = {},
): Promise<{ run: RunSummary | null; inScope: number; exempt: number }> {
  const run = await status.latestClosedRun();
  options.onRun?.(run);
  const now = options.now ?? new Date();
  await sink(writer.begin({ run, generatedAt: now, project: options.project ?? null }));
  const counts = { inScope: 0, exempt: 0 };
  let first = true;
  for (const which of ['inScope', 'exempt'] as const) {
    for await (const page of hosts.streamHosts(which, options.project, options.pageSize)) {
      let chunk = '';
      for (const host of page) {
        chunk += writer.row(evidenceRow(host, run, now), first);
        first = false;
      }
      counts[which] += page.length;
      await sink(chunk);
    }
  }
  await sink(writer.end(counts));
  return { run, ...counts };
}
