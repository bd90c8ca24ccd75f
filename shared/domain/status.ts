// The fleet status the status page shows, built from the hosts as an audit left them (pure).
//
// A page view must not read the hosts collection, so the audit leaves aggregates behind: one snapshot
// per project (written when the project's shard finishes) and one fleet document (written when the run
// closes) that merges them and keeps the coverage history. Lists of hosts are capped so that both stay
// far below Firestore's 1 MiB document limit at any fleet size; their totals still count every host,
// and the evidence report (osq-orch report, the page's CSV link) lists them all.
import { isInScope, type Host, type HostState } from './host.js';
import { syslogStatus, type SyslogStatus } from './syslog.js';

/**
 * Logged once per closed run with its coverage: Cloud Monitoring's log-based metric `fleet-coverage`
 * (infra/terraform/dashboard.tf) matches this message and extracts `coveragePercent`.
 */
export const RUN_CLOSED_MESSAGE = 'audit run closed';

/** The states someone must act on, most severe first (host.silent is critical, the others warnings). */
export const NEEDS_ACTION_STATES = ['silent', 'noncompliant', 'blocked'] as const;
export type NeedsActionState = (typeof NEEDS_ACTION_STATES)[number];

/** Hosts kept per needing-action state, and exempt hosts kept, in each snapshot. */
export const NEEDS_ACTION_CAP = 300;
export const EXEMPT_CAP = 500;
/** Audit runs kept for the coverage chart: a week of runs every 15 minutes. */
export const HISTORY_CAP = 700;
/** A snapshot's size budget (Firestore allows 1 MiB per document); lists are halved until it fits. */
export const SNAPSHOT_BUDGET_BYTES = 900_000;

export interface HostEntry {
  instanceId: string;
  name: string;
  project: string;
  zone: string;
  state: HostState;
  reason: string | null;
  /** When the host entered its state (ISO 8601). */
  since: string;
  /** Why it is quiet (shared/domain/silence-cause.ts); absent when it is not. */
  cause?: string;
}

/** A capped list of hosts: `total` and `byKey` count every host, `hosts` holds at most the cap. */
export interface HostList {
  total: number;
  /** Needing action: per state; exempt: per reason. */
  byKey: Record<string, number>;
  hosts: HostEntry[];
  /**
   * Needing action only: silent hosts per cause, and hosts held by a pipeline backlog (`pipeline-behind`,
   * not silent yet); absent in snapshots written before causes.
   */
  causes?: Record<string, number>;
}

export type StateCounts = Partial<Record<HostState, number>>;

/** Syslog ingestion on the hosts expected to report, as the audit's clock sees their evidence (domain/syslog.ts). */
export interface SyslogSummary {
  counts: Partial<Record<SyslogStatus, number>>;
  /** Hosts that ingest syslog and whose results are missing, longest missing first (capped). */
  missing: Array<{ instanceId: string; name: string; project: string; zone: string; seenAt: string | null }>;
}

/** Hosts kept in a snapshot's list of missing syslog. */
export const SYSLOG_MISSING_CAP = 300;

/** What one project's audit leaves behind: status/fleet/projects/{project}. */
export interface ProjectStatus {
  project: string;
  runId: string;
  /** The audit's clock (ISO 8601): a snapshot never replaces a newer one. */
  at: string;
  counts: StateCounts;
  zones: Record<string, StateCounts>;
  /**
   * In-scope hosts per zone, per configuration version (`none`: no version reported yet), per state: what a
   * progressive rollout's controller reads for its stages (hosts on the target, on the baseline, judged).
   */
  zoneVersions: Record<string, Record<string, StateCounts>>;
  /** In-scope hosts per configuration version (`none`: no version reported yet). */
  configVersions: Record<string, number>;
  /** In-scope hosts per osquery version (`none`: not installed or not inventoried). */
  osqueryVersions: Record<string, number>;
  needingAction: HostList;
  exempt: HostList;
  /** Absent in snapshots written before syslog ingestion. */
  syslog?: SyslogSummary;
}

export interface HistoryPoint {
  runId: string;
  /** When the run started (ISO 8601): the chart's x axis. */
  at: string;
  status: string;
  coverage: number | null;
  reporting: number;
  expected: number;
}

export interface RunSummary {
  runId: string;
  startedAt: string;
  finishedAt: string | null;
  status: string;
  coverage: number | null;
  counts: StateCounts;
  projects: Record<string, { status: string; error?: string | null }>;
}

/** What the page reads: status/fleet, written when an audit run closes. */
export interface FleetStatus {
  run: RunSummary & { reporting: number; expected: number };
  /** Per project of the run: its result in the run and its latest snapshot (possibly from an earlier run). */
  projects: Record<
    string,
    {
      runStatus: string;
      error: string | null;
      snapshotRunId: string | null;
      snapshotAt: string | null;
      counts: StateCounts;
      zones: Record<string, StateCounts>;
    }
  >;
  configVersions: Record<string, number>;
  osqueryVersions: Record<string, number>;
  needingAction: HostList;
  exempt: HostList;
  syslog?: SyslogSummary;
  history: HistoryPoint[];
  publishedAt: string;
}

const NONE = 'none';
const severity = (s: HostState) => {
  const i = (NEEDS_ACTION_STATES as readonly string[]).indexOf(s);
  return i < 0 ? NEEDS_ACTION_STATES.length : i;
};

/** Needing action: most severe state first, then the longest-standing problem. */
export const byUrgency = (a: HostEntry, b: HostEntry) =>
  severity(a.state) - severity(b.state) ||
  a.since.localeCompare(b.since) ||
  a.name.localeCompare(b.name) ||
  a.instanceId.localeCompare(b.instanceId);

/** Exempt: by reason, then where the host is. */
export const byReason = (a: HostEntry, b: HostEntry) =>
  (a.reason ?? '').localeCompare(b.reason ?? '') ||
  a.project.localeCompare(b.project) ||
  a.zone.localeCompare(b.zone) ||
  a.name.localeCompare(b.name) ||
  a.instanceId.localeCompare(b.instanceId);

const add = (into: Record<string, number>, key: string, n = 1) => (into[key] = (into[key] ?? 0) + n);

/** Reasons are machine-readable and short; these bounds only matter if one ever is not. */
const REASON_CHARS = 200;
const REASON_KEYS = 50;
const clip = (s: string | null) => (s && s.length > REASON_CHARS ? `${s.slice(0, REASON_CHARS - 1)}…` : s);

function entryOf(h: Host): HostEntry {
  return {
    instanceId: h.instanceId,
    name: h.name,
    project: h.project,
    zone: h.zone,
    state: h.state,
    reason: clip(h.reason),
    since: new Date(h.stateSince).toISOString(),
    ...(h.cause ? { cause: h.cause } : {}),
  };
}

/** The most frequent keys, the rest summed under `other`. */
function topKeys(counts: Record<string, number>, keep = REASON_KEYS): Record<string, number> {
  const entries = Object.entries(counts).sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  if (entries.length <= keep) return counts;
  const out = Object.fromEntries(entries.slice(0, keep - 1));
  out.other = entries.slice(keep - 1).reduce((a, [, n]) => a + n, 0);
  return out;
}

/** Keeps the first `cap` hosts of each state (needing action) or the first `cap` overall (exempt). */
function capNeedingAction(hosts: HostEntry[], cap: number): HostEntry[] {
  const kept: Record<string, number> = {};
  return [...hosts].sort(byUrgency).filter((h) => add(kept, h.state) <= cap);
}
const capExempt = (hosts: HostEntry[], cap: number) => [...hosts].sort(byReason).slice(0, cap);

/** Reporting / (in scope and not stopped), with its parts (the same rule as audits/{runId}.coverage). */
export function coverageParts(counts: StateCounts): { reporting: number; expected: number; coverage: number | null } {
  const expected = Object.entries(counts)
    .filter(([state]) => isInScope(state as HostState) && state !== 'stopped')
    .reduce((a, [, n]) => a + (n ?? 0), 0);
  const reporting = counts.reporting ?? 0;
  return {
    reporting,
    expected,
    coverage: expected === 0 ? null : Math.round((reporting / expected) * 10_000) / 10_000,
  };
}

/** Pure: coverage = reporting / (in scope and not stopped), or null when nothing is expected to report. */
export const coverageOf = (counts: StateCounts): number | null => coverageParts(counts).coverage;

/**
 * Pure: one project's snapshot from the hosts its audit left (every host document of the project,
 * deleted ones included: they are counted, never listed).
 */
export function summarizeProject(project: string, runId: string, at: Date, hosts: Iterable<Host>): ProjectStatus {
  const status: ProjectStatus = {
    project,
    runId,
    at: at.toISOString(),
    counts: {},
    zones: {},
    zoneVersions: {},
    configVersions: {},
    osqueryVersions: {},
    needingAction: { total: 0, byKey: {}, hosts: [] },
    exempt: { total: 0, byKey: {}, hosts: [] },
  };
  const needing: HostEntry[] = [];
  const exempt: HostEntry[] = [];
  const syslog: SyslogSummary = { counts: {}, missing: [] };
  for (const h of hosts) {
    // Every host expected to report (a noncompliant host's logs may still arrive).
    if (isInScope(h.state) && h.state !== 'stopped') {
      const seen = syslogStatus(h.syslog, at);
      add(syslog.counts, seen);
      if (seen === 'missing')
        syslog.missing.push({
          instanceId: h.instanceId,
          name: h.name,
          project: h.project,
          zone: h.zone,
          seenAt: h.syslog?.seenAt ? new Date(h.syslog.seenAt).toISOString() : null,
        });
    }
    add(status.counts, h.state);
    add((status.zones[h.zone] ??= {}) as Record<string, number>, h.state);
    if (h.state === 'silent' || h.cause === 'pipeline-behind')
      add((status.needingAction.causes ??= {}) as Record<string, number>, h.cause ?? 'unknown');
    if (isInScope(h.state)) {
      const versions = (status.zoneVersions[h.zone] ??= {});
      add((versions[h.configVersion ?? NONE] ??= {}) as Record<string, number>, h.state);
      add(status.configVersions, h.configVersion ?? NONE);
      add(status.osqueryVersions, h.osqueryVersion ?? NONE);
    }
    if ((NEEDS_ACTION_STATES as readonly string[]).includes(h.state)) {
      needing.push(entryOf(h));
      add(status.needingAction.byKey, h.state);
    } else if (h.state === 'exempt') {
      exempt.push(entryOf(h));
      add(status.exempt.byKey, clip(h.reason) ?? NONE);
    }
  }
  status.exempt.byKey = topKeys(status.exempt.byKey);
  status.needingAction.total = needing.length;
  status.exempt.total = exempt.length;
  status.needingAction.hosts = capNeedingAction(needing, NEEDS_ACTION_CAP);
  status.exempt.hosts = capExempt(exempt, EXEMPT_CAP);
  status.syslog = { counts: syslog.counts, missing: capSyslogMissing(syslog.missing) };
  return fitToBudget(status);
}

/**
 * Firestore's stored size of a value (cloud.google.com/firestore/docs/storage-size): strings are their
 * UTF-8 bytes + 1, numbers 8, booleans and null 1, maps the sum of their field names (+1 each) and values.
 */
export function storedSize(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'number') return 8;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8') + 1;
  if (value instanceof Date) return 8;
  if (Array.isArray(value)) return value.reduce((a: number, v) => a + storedSize(v), 0);
  return Object.entries(value as Record<string, unknown>).reduce(
    (a, [k, v]) => a + Buffer.byteLength(k, 'utf8') + 1 + storedSize(v),
    0,
  );
}

/** Halves the lists until the document fits the budget (only with extreme names; the totals stay whole). */
export function fitToBudget<T extends { needingAction: HostList; exempt: HostList }>(doc: T): T {
  let fitted = doc;
  let needCap = NEEDS_ACTION_CAP;
  let exemptCap = EXEMPT_CAP;
  while (storedSize(fitted) > SNAPSHOT_BUDGET_BYTES && (needCap > 1 || exemptCap > 1)) {
    needCap = Math.max(1, Math.floor(needCap / 2));
    exemptCap = Math.max(1, Math.floor(exemptCap / 2));
    fitted = {
      ...fitted,
      needingAction: { ...fitted.needingAction, hosts: capNeedingAction(fitted.needingAction.hosts, needCap) },
      exempt: { ...fitted.exempt, hosts: capExempt(fitted.exempt.hosts, exemptCap) },
    };
  }
  return fitted;
}

function mergeLists(lists: HostList[], cap: (hosts: HostEntry[]) => HostEntry[]): HostList {
  const merged: HostList = { total: 0, byKey: {}, hosts: [] };
  for (const l of lists) {
    merged.total += l.total;
    for (const [k, n] of Object.entries(l.byKey)) add(merged.byKey, k, n);
    for (const [k, n] of Object.entries(l.causes ?? {})) add((merged.causes ??= {}) as Record<string, number>, k, n);
    merged.hosts.push(...l.hosts);
  }
  merged.hosts = cap(merged.hosts);
  merged.byKey = topKeys(merged.byKey);
  return merged;
}

/** Longest missing first (never seen, then the oldest seen), then by name. */
function capSyslogMissing(hosts: SyslogSummary['missing']): SyslogSummary['missing'] {
  return [...hosts]
    .sort(
      (a, b) =>
        (a.seenAt ?? '').localeCompare(b.seenAt ?? '') ||
        a.name.localeCompare(b.name) ||
        a.instanceId.localeCompare(b.instanceId),
    )
    .slice(0, SYSLOG_MISSING_CAP);
}

function mergeSyslog(parts: Array<SyslogSummary | undefined>): SyslogSummary {
  const merged: SyslogSummary = { counts: {}, missing: [] };
  for (const p of parts) {
    for (const [k, n] of Object.entries(p?.counts ?? {})) add(merged.counts, k, n);
    merged.missing.push(...(p?.missing ?? []));
  }
  merged.missing = capSyslogMissing(merged.missing);
  return merged;
}

/** Adds a run to the history once (by run id), in time order, keeping the newest HISTORY_CAP runs. */
export function withHistoryPoint(history: HistoryPoint[], point: HistoryPoint): HistoryPoint[] {
  const rest = history.filter((p) => p.runId !== point.runId);
  return [...rest, point].sort((a, b) => a.at.localeCompare(b.at)).slice(-HISTORY_CAP);
}

/**
 * Pure: the fleet document for a closed run: its totals, the latest snapshot of each of its projects
 * (a project that failed in this run keeps its earlier snapshot, marked by its run id), merged lists
 * re-capped fleet-wide, and the run added to the coverage history.
 */
export function mergeFleetStatus(
  run: RunSummary,
  snapshots: ProjectStatus[],
  history: HistoryPoint[],
  publishedAt: Date,
): FleetStatus {
  const parts = coverageParts(run.counts);
  const inRun = snapshots.filter((s) => s.project in run.projects);
  const projects: FleetStatus['projects'] = {};
  for (const [project, result] of Object.entries(run.projects)) {
    const s = inRun.find((x) => x.project === project);
    projects[project] = {
      runStatus: result.status,
      error: result.error ?? null,
      snapshotRunId: s?.runId ?? null,
      snapshotAt: s?.at ?? null,
      counts: s?.counts ?? {},
      zones: s?.zones ?? {},
    };
  }
  const versions = (pick: (s: ProjectStatus) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const s of inRun) for (const [k, n] of Object.entries(pick(s))) add(out, k, n);
    return out;
  };
  return fitToBudget({
    run: { ...run, coverage: run.coverage ?? parts.coverage, reporting: parts.reporting, expected: parts.expected },
    projects,
    configVersions: versions((s) => s.configVersions),
    osqueryVersions: versions((s) => s.osqueryVersions),
    needingAction: mergeLists(
      inRun.map((s) => s.needingAction),
      (h) => capNeedingAction(h, NEEDS_ACTION_CAP),
    ),
    exempt: mergeLists(
      inRun.map((s) => s.exempt),
      (h) => capExempt(h, EXEMPT_CAP),
    ),
    syslog: mergeSyslog(inRun.map((s) => s.syslog)),
    history: withHistoryPoint(history, {
      runId: run.runId,
      at: run.startedAt,
      status: run.status,
      coverage: run.coverage ?? parts.coverage,
      reporting: parts.reporting,
      expected: parts.expected,
    }),
    publishedAt: publishedAt.toISOString(),
  });
}
