// What the status page and /api/status show (pure): the fleet document, narrowed by the viewer's
// filters, beside the live parts (open alerts, the rollout of the current version).
import { z } from 'zod';
import { STATES_FOR_DISPLAY, type HostState } from './host.js';
import type { StagedRollout } from './rollout.js';
import { lagText, type PipelineRecord } from './pipeline.js';
import type { QuerySummary } from './telemetry/query-stats.js';
import type { LogCostStatus, OsqueryCostStatus } from './telemetry/cost-status.js';
import { auditCoverageView, type AuditCoverageInputs, type AuditCoverageView } from './status-audit.js';
import {
  NEEDS_ACTION_STATES,
  type FleetStatus,
  type HistoryPoint,
  type HostEntry,
  type ProjectStatus,
  type StateCounts,
  type SyslogSummary,
} from './status.js';

const name = z
  .string()
  .trim()
  .max(100)
  .regex(/^[a-z0-9][a-z0-9._:-]*$/, 'expected a project or zone name');

/** Query-string filters of the needing-action and exempt lists. Empty values mean "any". */
export const filtersSchema = z.object({
  state: z.enum(NEEDS_ACTION_STATES).optional(),
  project: name.optional(),
  zone: name.optional(),
  /** Part of a host's name or instance id. */
  q: z.string().trim().max(100).optional(),
});
export type StatusFilters = z.infer<typeof filtersSchema>;

/** Parses the query string; unknown parameters are ignored, bad values are an error with the reason. */
export function parseFilters(
  query: Record<string, unknown>,
): { ok: true; filters: StatusFilters } | { ok: false; reason: string } {
  const present = Object.fromEntries(
    ['state', 'project', 'zone', 'q']
      .map((k) => [k, Array.isArray(query[k]) ? query[k][0] : query[k]] as const)
      .filter(([, v]) => typeof v === 'string' && v.trim() !== ''),
  );
  const parsed = filtersSchema.safeParse(present);
  if (parsed.success) return { ok: true, filters: parsed.data };
  return { ok: false, reason: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
}

export function matches(h: HostEntry, f: StatusFilters): boolean {
  if (f.state && h.state !== f.state) return false;
  if (f.project && h.project !== f.project) return false;
  if (f.zone && h.zone !== f.zone) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    if (!h.name.toLowerCase().includes(q) && !h.instanceId.includes(q)) return false;
  }
  return true;
}

export interface AlertRow {
  dedupKey: string;
  kind: string;
  severity: string;
  host: { instanceId: string; name: string; project: string; zone: string } | null;
  /** query.* alerts: the query of a configuration version they are about. */
  query?: { configVersion: string; name: string } | null;
  reason: string | null;
  since: string;
  /** The firing message went out (false: owed, a publish failed and the next flush sends it). */
  notified: boolean;
}

export interface RolloutView {
  version: string;
  publishedAt: string | null;
  zones: Array<{ project: string; zone: string; revisionId: string; rolloutState: string }>;
  /** Hosts per state on this version, per project (the audit's count). */
  hostCounts: Record<string, StateCounts>;
}

/** A progressive rollout as the page shows it: its stages, the gates against their thresholds, what comes next. */
export interface RolloutStagesView {
  version: string;
  status: string;
  baseline: string | null;
  /** The stage reached (its name). */
  stage: string | null;
  stages: Array<{
    name: string;
    state: 'done' | 'current' | 'waiting';
    zones: string[];
    bakeMinutes: number;
    startedAt: string | null;
    /** Hosts targeted, on the target, on the baseline (the controller's latest look; null: not yet evaluated). */
    targeted: number | null;
    onTarget: number | null;
    onBaseline: number | null;
    /** Of those on the target, hosts whose own lines say osqueryd does not run it yet. */
    notRunning?: number;
  }>;
  skipped: Array<{ name: string; reason: string }>;
  gates: Array<{ gate: string; value: number; threshold: number; unit: string; passed: boolean; count: number }>;
  /** When the controller last looked, and what it does next (null: it has not looked yet). */
  evaluatedAt: string | null;
  next: { action: string; reason: string } | null;
  halt: { stage: string; gate: string; value: number; threshold: number; unit: string; at: string } | null;
}

/** Pure: the page's view of a staged rollout record (its latest evaluation, never a new one: a page view reads). */
export function rolloutStagesView(r: StagedRollout): RolloutStagesView {
  const e = r.evaluation;
  const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);
  return {
    version: r.configVersion,
    status: r.status,
    baseline: r.baseline,
    stage: r.stages[r.stage]?.name ?? null,
    stages: r.stages.map((s, i) => {
      const v = e?.stages[i];
      return {
        name: s.name,
        state: i < r.stage || r.status === 'completed' ? 'done' : i === r.stage ? 'current' : 'waiting',
        zones: s.zones,
        bakeMinutes: s.bakeMinutes,
        startedAt: iso(s.startedAt),
        targeted: v?.targeted ?? null,
        onTarget: v?.onTarget ?? null,
        onBaseline: v?.onBaseline ?? null,
        ...(v?.notRunning ? { notRunning: v.notRunning } : {}),
      };
    }),
    skipped: r.skipped,
    gates: (e?.gates ?? []).map(({ gate, value, threshold, unit, passed, count }) => ({
      gate,
      value,
      threshold,
      unit,
      passed,
      count,
    })),
    evaluatedAt: iso(e?.at),
    next: r.status === 'running' ? (e?.next ?? null) : { action: 'none', reason: `the rollout is ${r.status}` },
    halt: r.halt && {
      stage: r.halt.stage,
      gate: r.halt.gate,
      value: r.halt.value,
      threshold: r.halt.threshold,
      unit: r.halt.unit,
      at: new Date(r.halt.at).toISOString(),
    },
  };
}
/** A host where osqueryd costs most, as status/osquery lists it. */
export type OsqueryCostHost = OsqueryCostStatus['topHosts']['cpu'][number];

export interface StatusInputs {
  fleet: FleetStatus | null;
  /** The filtered project's own snapshot: its lists are longer than the fleet-wide ones. */
  project: ProjectStatus | null;
  currentVersion: string | null;
  rollout: RolloutView | null;
  /** The staged rollout under way, else the current version's (null: none staged). */
  stages?: RolloutStagesView | null;
  alerts: { open: number; shown: AlertRow[] };
  /** status/osquery; absent or null before the first audit run closes with it. */
  osqueryCost?: OsqueryCostStatus | null;
  /** The audit's cycle and the oldest audit ages (absent: the section is not shown). */
  audit?: AuditCoverageInputs | null;
  /** The log subscriptions' records (pipeline/{subscriptionId}); absent: none shown. */
  pipeline?: readonly PipelineRecord[] | null;
  filters: StatusFilters;
  now: Date;
}

/** A log subscription behind now: its open pipeline.backlog episode and the lag Cloud Monitoring measured. */
export interface BacklogView {
  subscription: string;
  role: PipelineRecord['role'];
  since: string;
  /** In words (`oldest unacked message 14 min`); null: not measured. */
  lag: string | null;
}

export interface ListView {
  /** Every host of the kind in the fleet (or the filtered project), whatever the caps. */
  total: number;
  byKey: Record<string, number>;
  /** Hosts in the snapshot's list before filtering (capped), and after. */
  listed: number;
  hosts: HostEntry[];
  /** Some hosts are not in the snapshot: the evidence CSV has them. */
  truncated: boolean;
  /** Needing action: silent hosts per cause (and hosts held by a backlog); empty when none. */
  causes: Record<string, number>;
}

export interface StatusView {
  generatedAt: string;
  filters: StatusFilters;
  run: {
    runId: string;
    startedAt: string;
    finishedAt: string | null;
    status: string;
    publishedAt: string;
    projects: Array<{ project: string; status: string; error: string | null; snapshotRunId: string | null }>;
  } | null;
  coverage: { now: number | null; reporting: number; expected: number; history: HistoryPoint[] };
  states: {
    columns: HostState[];
    rows: Array<{ project: string; zone: string; counts: StateCounts; total: number; stale: boolean }>;
    totals: StateCounts;
    /** Hosts whose VM is gone (kept for history, not in the table). */
    deleted: number;
  };
  needingAction: ListView;
  /** The log subscriptions behind now, the heartbeat's first. */
  backlogs: BacklogView[];
  exempt: ListView;
  configuration: {
    current: string | null;
    /** In-scope hosts per configuration version, most hosts first (`none`: not reported yet). */
    live: Array<{ version: string; hosts: number; current: boolean }>;
    rollout: RolloutView | null;
    /** The progressive rollout: stages, gates against thresholds, next action (null: none staged). */
    stages: RolloutStagesView | null;
  };
  osquery: {
    versions: Array<{ version: string; hosts: number }>;
    /**
     * Where osqueryd costs most, from status/osquery (written at each audit run's close); null before the
     * first: the hosts by CPU over their last heartbeat interval (measured ones) and by memory...
     */
    topHosts: { cpu: OsqueryCostHost[]; memory: OsqueryCostHost[] } | null;
    /** ...the most expensive queries (every configuration version), by cost... */
    topQueries: QuerySummary[] | null;
    /** ...and what they are: the run that wrote them, when, the hours the query figures cover, the queries measured. */
    cost: { runId: string; at: string; hours: number; queries: number } | null;
    /** What the logs cost: the queries that ship most bytes and the fleet's projected month (null: not yet). */
    logs: LogCostStatus | null;
  };
  /** Syslog ingestion on the reporting hosts at the last audit (null: its snapshot predates it). */
  syslog: { counts: SyslogSummary['counts']; missing: SyslogSummary['missing']; listed: number } | null;
  alerts: { open: number; shown: AlertRow[] };
  /** How the scheduled audit covers the fleet and each project's audit age (null: no audit yet). */
  audit: AuditCoverageView | null;
}

/** The states the per-zone table shows, healthy to troubled to out of scope (deleted is counted apart). */
export const TABLE_STATES: HostState[] = STATES_FOR_DISPLAY.filter((s) => s !== 'deleted');
const sorted = (m: Record<string, number>) =>
  Object.entries(m)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([k, n]) => ({ k, n }));

function listView(
  source:
    { total: number; byKey: Record<string, number>; hosts: HostEntry[]; causes?: Record<string, number> } | undefined,
  filters: StatusFilters,
): ListView {
  const list = source ?? { total: 0, byKey: {}, hosts: [] };
  const hosts = list.hosts.filter((h) => matches(h, filters));
  return {
    total: list.total,
    byKey: list.byKey,
    listed: list.hosts.length,
    hosts,
    truncated: list.hosts.length < list.total,
    causes: list.causes ?? {},
  };
}

/** Pure: the page's data. */
export function buildStatusView(i: StatusInputs): StatusView {
  const fleet = i.fleet;
  const rows: StatusView['states']['rows'] = [];
  const totals: Record<string, number> = {};
  let deleted = 0;
  for (const [project, p] of Object.entries(fleet?.projects ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [zone, counts] of Object.entries(p.zones).sort(([a], [b]) => a.localeCompare(b))) {
      deleted += counts.deleted ?? 0;
      const shown = Object.fromEntries(TABLE_STATES.filter((s) => counts[s]).map((s) => [s, counts[s]!]));
      const total = Object.values(shown).reduce((a, n) => a + n, 0);
      if (total === 0) continue;
      for (const [s, n] of Object.entries(shown)) totals[s] = (totals[s] ?? 0) + n;
      rows.push({ project, zone, counts: shown, total, stale: p.snapshotRunId !== fleet!.run.runId });
    }
  }
  // A project filter reads that project's own snapshot: its lists are capped per project, not fleet-wide.
  const lists = i.project && i.filters.project === i.project.project ? i.project : fleet;
  const exemptFilters = { project: i.filters.project, zone: i.filters.zone, q: i.filters.q };
  const current = i.currentVersion;
  return {
    generatedAt: i.now.toISOString(),
    filters: i.filters,
    run: fleet
      ? {
          runId: fleet.run.runId,
          startedAt: fleet.run.startedAt,
          finishedAt: fleet.run.finishedAt,
          status: fleet.run.status,
          publishedAt: fleet.publishedAt,
          projects: Object.entries(fleet.projects)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([project, p]) => ({ project, status: p.runStatus, error: p.error, snapshotRunId: p.snapshotRunId })),
        }
      : null,
    coverage: {
      now: fleet?.run.coverage ?? null,
      reporting: fleet?.run.reporting ?? 0,
      expected: fleet?.run.expected ?? 0,
      history: fleet?.history ?? [],
    },
    states: { columns: TABLE_STATES, rows, totals, deleted },
    needingAction: listView(lists?.needingAction, i.filters),
    backlogs: (i.pipeline ?? [])
      .filter((r) => r.episode !== null)
      .sort((a, b) => a.role.localeCompare(b.role) || a.subscription.localeCompare(b.subscription))
      .map((r) => ({
        subscription: r.subscription,
        role: r.role,
        since: r.episode!.since.toISOString(),
        lag: lagText(r.lag),
      })),
    exempt: listView(lists?.exempt, exemptFilters),
    configuration: {
      current,
      live: sorted(fleet?.configVersions ?? {}).map(({ k, n }) => ({ version: k, hosts: n, current: k === current })),
      rollout: i.rollout,
      stages: i.stages ?? null,
    },
    osquery: {
      versions: sorted(fleet?.osqueryVersions ?? {}).map(({ k, n }) => ({ version: k, hosts: n })),
      topHosts: i.osqueryCost
        ? {
            cpu: i.osqueryCost.topHosts.cpu.filter((h) => h.cpuPercent !== null),
            memory: i.osqueryCost.topHosts.memory,
          }
        : null,
      topQueries: i.osqueryCost?.topQueries ?? null,
      cost: i.osqueryCost
        ? {
            runId: i.osqueryCost.runId,
            at: i.osqueryCost.at,
            hours: i.osqueryCost.hours,
            queries: i.osqueryCost.queries,
          }
        : null,
      logs: i.osqueryCost?.logs ?? null,
    },
    syslog: lists?.syslog
      ? {
          counts: lists.syslog.counts,
          listed: lists.syslog.missing.length,
          missing: lists.syslog.missing.filter((h) =>
            matches({ ...h, state: 'reporting', reason: null, since: '' }, exemptFilters),
          ),
        }
      : null,
    alerts: i.alerts,
    audit: i.audit ? auditCoverageView(i.audit, i.now) : null,
  };
}
