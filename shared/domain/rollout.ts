// A progressive rollout of a configuration version, pure: which version each zone gets, the health
// gates measured on the hosts that run the target version, and what the controller does next
// (promote, hold, halt, complete), besides what an operator may do by hand.
//
// What config/current means while a rollout runs (docs/rollout.md): `configVersion` is the
// version every zone outside the stages reached gets (the baseline until the rollout completes, then
// the target), `rollout` names the target of the staged rollout that has not completed (running,
// paused, halted or rolled back), null otherwise.
import { type Gates, type GateName, type ResolvedStage, GATE_NAMES } from './rollout-plan.js';
import { windowOf, windowStart } from './telemetry/query-stats.js';
import type { HostState } from './host.js';
import type { StateCounts } from './status.js';
import { auditAgeMs, auditFresh } from './rolling-audit.js';

export type RolloutStatus = 'running' | 'paused' | 'halted' | 'rolled-back' | 'completed' | 'superseded';
export type RolloutMode = 'staged' | 'all-at-once';

/** Who did something by hand, and why (`--by`, `--reason`); the controller acts as `controller`. */
export interface Actor {
  by: string;
  reason: string;
}

export type HistoryAction =
  | 'started'
  | 'promoted'
  | 'completed'
  | 'halted'
  | 'paused'
  | 'resumed'
  | 'rolled-back'
  | 'superseded'
  | 'published-all-at-once'
  /** The version's files were uploaded again (an object was missing); the zones got the new generations. */
  | 'republished';

export interface HistoryEntry {
  at: Date;
  action: HistoryAction;
  /** The stage the rollout is at after the action (null: none). */
  stage: string | null;
  by: string;
  reason: string;
}

export interface StageRecord extends ResolvedStage {
  /** When its zones got the target version (null: not reached yet). */
  startedAt: Date | null;
}

export interface HostRef {
  instanceId: string;
  name: string;
  project: string;
  zone: string;
}

export interface HaltRecord {
  at: Date;
  stage: string;
  gate: GateName;
  value: number;
  threshold: number;
  unit: GateUnit;
  /** How many hosts (or queries) tripped it. */
  count: number;
  /** The hosts that tripped it (at most HOSTS_KEPT). */
  hosts: HostRef[];
  /** Denylisted queries (the denylistedQueries gate). */
  queries: string[];
  /** The rollout.halted alert episode (alerts/{dedupKey}). */
  dedupKey: string;
}

/** What an observation's minimums are: a stage is promoted only once enough of its hosts reported on the target. */
export interface ObserveSettings {
  minPercent: number;
  minHosts: number;
}

/** The staged rollout of a version: the fields rollouts/{version} carries besides what was published. */
export interface StagedRollout {
  /** The target version (the document's id). */
  configVersion: string;
  mode: RolloutMode;
  status: RolloutStatus;
  /** What config/current was when the rollout started (null: nothing was; the unconfigured base policy). */
  baseline: string | null;
  startedAt: Date;
  /** The stage reached: its zones and those of every earlier stage run the target. */
  stage: number;
  stages: StageRecord[];
  /** Stages of the plan that selected no zone. */
  skipped: Array<{ name: string; reason: string }>;
  observe: ObserveSettings;
  /** Incremented by every decision: a decision is written only against the revision it was made on. */
  revision: number;
  /** When a halted or rolled-back rollout was resumed: hosts are judged from then on. */
  resumedAt: Date | null;
  halt: HaltRecord | null;
  /** The controller's latest look (what `rollout status` and the status page show). */
  evaluation: Evaluation | null;
  /**
   * The open rollout.stalled episode: the rollout has waited longer than the evidence bound for a fresh
   * audit of some project of the stages reached (their audits keep failing). Null: none open.
   */
  stall: StallRecord | null;
  history: HistoryEntry[];
}

export interface StallRecord {
  since: Date;
  /** The rollout.stalled alert episode (alerts/{dedupKey}). */
  dedupKey: string;
  projects: string[];
}

/** The statuses in which the rollout's reached stages run the target. */
export const LIVE: ReadonlySet<RolloutStatus> = new Set(['running', 'paused']);
/** The statuses from which `rollout resume` starts it again. */
export const RESUMABLE: ReadonlySet<RolloutStatus> = new Set(['paused', 'halted', 'rolled-back']);

// --- Which version a zone gets -----------------------------------------------------------------------

/** The zones of the stages reached. */
export function reachedZones(r: Pick<StagedRollout, 'stage' | 'stages'>): Set<string> {
  return new Set(r.stages.slice(0, r.stage + 1).flatMap((s) => s.zones));
}

/**
 * Pure: the one rule publish, the audit's heal stage and vmLifecycle share. A zone of a stage reached
 * by a running or paused rollout gets the target; every other zone (outside the stages reached, new
 * since the rollout started, or any zone once a rollout halted or was rolled back) gets config/current.
 */
export function planOfZones(
  current: string | null,
  rollout: Pick<StagedRollout, 'configVersion' | 'status' | 'stage' | 'stages'> | null,
): (zoneKey: string) => string | null {
  if (!rollout || !LIVE.has(rollout.status)) return () => current;
  const reached = reachedZones(rollout);
  return (key) => (reached.has(key) ? rollout.configVersion : current);
}

/** A state of the configuration: config/current's version and the staged rollout (null: none under way). */
export interface ZoneState {
  current: string | null;
  rollout: Parameters<typeof planOfZones>[1];
}

/** Pure: the zones whose version differs between two states (what a decision moves), with their new version. */
export function movedZones(
  before: ZoneState,
  after: ZoneState,
  zones: Iterable<string>,
): Array<{ key: string; version: string | null }> {
  const from = planOfZones(before.current, before.rollout);
  const to = planOfZones(after.current, after.rollout);
  return [...new Set(zones)].filter((k) => from(k) !== to(k)).map((key) => ({ key, version: to(key) }));
}

/** Every zone a rollout's stages name. */
export const stageZones = (r: Pick<StagedRollout, 'stages'>) => r.stages.flatMap((s) => s.zones);

// --- The gates -----------------------------------------------------------------------------------------

/** One project's audit snapshot (status/fleet/projects/{project}), as far as the gates need it. */
export interface ProjectSnapshot {
  /** The audit's clock (ISO 8601). */
  at: string;
  /** Hosts per state per zone. */
  zones: Record<string, StateCounts>;
  /** In-scope hosts per zone, per configuration version (`none`: no version), per state. */
  zoneVersions: Record<string, Record<string, StateCounts>>;
}

/** A host in trouble on the target version: when it got there (state since, incident opened, sample taken). */
export interface Sighting extends HostRef {
  at: Date;
  /** CPU percent or resident bytes for the osqueryd gates. */
  value?: number;
  /** An incident still open (the incidents gate counts it whenever it began on the target). */
  open?: boolean;
}

/** What the controller reads: aggregates for the denominators, bounded lists for the hosts in trouble. */
export interface RolloutEvidence {
  /** Per project holding a zone of the stages reached: its latest audit snapshot (null: none yet). */
  snapshots: Record<string, ProjectSnapshot | null>;
  /** Hosts on the target version, noncompliant / silent, with their stateSince. */
  noncompliant: Sighting[];
  silent: Sighting[];
  /** Hosts on the target version with a Cloud Monitoring incident, dated by its start. */
  incidents: Sighting[];
  /** Hosts on the target version whose latest osqueryd sample is above the gate's CPU / memory threshold. */
  cpu: Sighting[];
  memory: Sighting[];
  /** Per query of the target version: host snapshots that had it denylisted, per hour window (`h2026112712`). */
  denylisted: Array<{ query: string; windows: Record<string, number> }>;
  /**
   * The log shipper's counts per query over the gate's windows (denylistWindows), on the target and on the
   * baseline version (the logVolume gate); absent: not read.
   */
  logVolume?: { target: ShippedTotals[]; baseline: ShippedTotals[] };
  /** Lists that hit their read limit or held a document that does not match: their gate's value is a lower bound. */
  capped: GateName[];
  /** Why a project's audit failed in the latest run (projects that failed only), for the hold's reason. */
  failures?: Record<string, string>;
  /**
   * The heartbeat subscription is behind (a pipeline.backlog episode open): silence proves nothing, so the
   * silent gate holds the rollout instead of halting it (docs/heartbeat.md: The pipeline's backlog).
   */
  pipelineBehind?: boolean;
  /**
   * Hosts OS Config calls on the target whose own lines say osqueryd still runs another configuration
   * (docs/osquery-upgrade.md): not counted as observed on the target. Absent: none known.
   */
  notRunning?: Sighting[];
}

/** How the controller judges evidence: how old a project's last successful audit may be for a decision. */
export interface EvidenceSettings {
  maxAgeMs: number;
}

/** Two missed 15-minute audit runs: one failure is tolerated, a project failing longer holds the rollout. */
export const DEFAULT_EVIDENCE_SETTINGS: EvidenceSettings = { maxAgeMs: 30 * 60_000 };

/** One query's shipped bytes over some windows and the host time they cover (queryStats, log-volume.ts). */
export interface ShippedTotals {
  query: string;
  shippedBytes: number;
  shippedSpanMs: number;
}

/** How many grown queries a logVolume halt names. */
export const GROWN_QUERIES_KEPT = 5;

/**
 * Pure: the logVolume gate: the target's shipped bytes per host and day (summed over its queries) against
 * the baseline's, as a percent increase; the queries named are those that grew most per host. Without a
 * measured baseline or target there is nothing to compare: it passes (promotion still waits for hosts).
 */
export function logVolumeGate(e: RolloutEvidence['logVolume'], maxIncreasePercent: number): GateResult {
  const perHostDay = (rows: ShippedTotals[]) =>
    new Map(
      rows
        .filter((r) => r.shippedSpanMs > 0)
        .map((r) => [r.query, (r.shippedBytes * 86_400_000) / r.shippedSpanMs] as const),
    );
  const target = perHostDay(e?.target ?? []);
  const baseline = perHostDay(e?.baseline ?? []);
  const total = (m: Map<string, number>) => [...m.values()].reduce((n, v) => n + v, 0);
  const before = total(baseline);
  const after = total(target);
  const value = before > 0 && target.size > 0 ? round1((100 * (after - before)) / before) : 0;
  const grown = [...target.entries()]
    .map(([query, v]) => ({ query, growth: v - (baseline.get(query) ?? 0) }))
    .filter((g) => g.growth > 0)
    .sort((a, b) => b.growth - a.growth || a.query.localeCompare(b.query))
    .slice(0, GROWN_QUERIES_KEPT)
    .map((g) => g.query);
  const passed = value <= maxIncreasePercent;
  return {
    gate: 'logVolume',
    value,
    threshold: maxIncreasePercent,
    unit: '% over baseline',
    passed,
    hosts: [],
    count: passed ? 0 : grown.length,
    queries: passed ? [] : grown,
    capped: false,
  };
}

export type GateUnit = '%' | 'queries' | '% over baseline';

export interface GateResult {
  gate: GateName;
  /** Percent of the targeted hosts, or a number of queries. */
  value: number;
  threshold: number;
  unit: GateUnit;
  passed: boolean;
  /** Hosts that count against it (at most HOSTS_KEPT). */
  hosts: HostRef[];
  /** How many count against it (hosts or queries). */
  count: number;
  queries: string[];
  /** The count is a lower bound (the listing hit its limit). */
  capped: boolean;
}

export interface StageView {
  name: string;
  zones: string[];
  bakeMinutes: number;
  startedAt: Date | null;
  state: 'done' | 'current' | 'waiting';
  /** Hosts that can run a version (in scope, not stopped, not blocked), by the latest snapshots. */
  targeted: number;
  /** In-scope hosts that reported the target / the baseline. */
  onTarget: number;
  onBaseline: number;
  /** Of those on the target, hosts whose own lines say osqueryd does not run it yet. */
  notRunning?: number;
}

export type NextAction = 'promote' | 'complete' | 'hold' | 'halt' | 'none';

export interface Evaluation {
  at: Date;
  /** The audit run whose close it was made at (null: by hand, `rollout status`). */
  runId: string | null;
  revision: number;
  stage: string;
  gates: GateResult[];
  stages: StageView[];
  observed: { stage: number; needed: number; total: number; minHosts: number };
  /** Projects of the stages reached without a successful audit since the stage started, within the bound. */
  stale: string[];
  /** Of those, the ones the rollout has waited on longer than the bound (rollout.stalled), with why. */
  stalled?: Array<{ project: string; lastAuditAt: string | null; reason: string }>;
  bakeLeftMinutes: number;
  next: { action: NextAction; reason: string };
}

/** Hosts kept per gate in an evaluation and a halt record. */
export const HOSTS_KEPT = 20;

/** Hosts that could run a version: in scope, running, with an agent (blocked ones run nothing). */
const ELIGIBLE: ReadonlySet<HostState> = new Set(['pending', 'noncompliant', 'compliant', 'reporting', 'silent']);

const sum = (counts: StateCounts | undefined, states: ReadonlySet<HostState>) =>
  Object.entries(counts ?? {}).reduce((n, [s, c]) => n + (states.has(s as HostState) ? (c ?? 0) : 0), 0);
const splitKey = (key: string) => {
  const i = key.lastIndexOf('/');
  return { project: key.slice(0, i), zone: key.slice(i + 1) };
};
const round1 = (n: number) => Math.round(n * 10) / 10;
const later = (a: Date | null, b: Date | null) => (a && b ? (a > b ? a : b) : (a ?? b));
const minutes = (ms: number) => Math.ceil(ms / 60_000);

/**
 * When each zone of the stages reached first got the target in this rollout: its stage's start. Trouble
 * from before it is not the target's doing; trouble since is, and a resume does not make it older (a host
 * still failing after a resume is still failing on the target).
 */
export function zoneSince(r: Pick<StagedRollout, 'stage' | 'stages'>): Map<string, Date> {
  const out = new Map<string, Date>();
  for (const s of r.stages.slice(0, r.stage + 1)) for (const k of s.zones) out.set(k, s.startedAt ?? new Date(0));
  return out;
}

/**
 * The hour windows of query statistics that say what is denylisted now: the current one and the one before
 * (each host snapshots osquery_schedule once an hour, and the watchdog's denylist lasts a day, so a query
 * still denylisted shows in them), never a window from before the rollout's first stage.
 */
export function denylistWindows(r: Pick<StagedRollout, 'stages' | 'startedAt'>, now: Date): string[] {
  const first = windowStart(windowOf(r.stages[0]?.startedAt ?? r.startedAt));
  const current = windowStart(windowOf(now));
  return [current - 3_600_000, current].filter((t) => t >= first).map((t) => windowOf(t));
}

/** The current stage's start, for the bake and for fresh evidence. */
export const stageStart = (r: Pick<StagedRollout, 'stage' | 'stages' | 'resumedAt'>) =>
  later(r.stages[r.stage]?.startedAt ?? null, r.resumedAt) ?? new Date(0);

/** The effective gates of the current stage. */
export const currentGates = (r: Pick<StagedRollout, 'stage' | 'stages'>): Gates => r.stages[r.stage]!.gates;

const ref = ({ instanceId, name, project, zone }: HostRef): HostRef => ({ instanceId, name, project, zone });

/**
 * Pure: the gates over the hosts on the target version in the stages reached, and what comes next.
 * Host gates judge what is true now: hosts in trouble now that got into it after their zone first got
 * the target (a host noncompliant since before, for another reason, is not the target's doing), incidents
 * still open or begun since the latest resume, queries denylisted in the latest snapshots; each a share of
 * the hosts those stages target. A failed gate halts at once; promotion also needs a successful audit of
 * every project since the stage started and within the evidence bound, enough of the stage's hosts
 * reporting on the target, and the bake over.
 */
export function evaluateRollout(
  r: StagedRollout,
  e: RolloutEvidence,
  now: Date,
  runId: string | null = null,
  settings: EvidenceSettings = DEFAULT_EVIDENCE_SETTINGS,
): Evaluation {
  const gates = currentGates(r);
  const since = zoneSince(r);
  const target = r.configVersion;
  const baseline = r.baseline ?? 'none';
  const snapshotOf = (key: string) => {
    const { project, zone } = splitKey(key);
    const s = e.snapshots[project];
    return s ? { zones: s.zones[zone], versions: s.zoneVersions[zone] ?? {} } : null;
  };

  // A host counts on the target only when its own lines say so (hosts OS Config calls compliant that still run
  // the baseline hold the stage).
  const notRunningIn = (zones: string[]) => {
    const keys = new Set(zones);
    return new Set((e.notRunning ?? []).filter((h) => keys.has(`${h.project}/${h.zone}`)).map((h) => h.instanceId))
      .size;
  };
  const stages: StageView[] = r.stages.map((s, i) => {
    let targeted = 0;
    let onTarget = 0;
    let onBaseline = 0;
    let known = true;
    for (const k of s.zones) {
      const snap = snapshotOf(k);
      if (!snap) known = false;
      targeted += sum(snap?.zones, ELIGIBLE);
      onTarget += sum(snap?.versions[target], ELIGIBLE);
      onBaseline += baseline === target ? 0 : sum(snap?.versions[baseline], ELIGIBLE);
    }
    return {
      name: s.name,
      zones: s.zones,
      bakeMinutes: s.bakeMinutes,
      startedAt: s.startedAt,
      state: i < r.stage ? 'done' : i === r.stage ? 'current' : 'waiting',
      // A stage none of whose projects was audited yet counts the hosts it had when the rollout started.
      targeted: known ? targeted : Math.max(targeted, s.hosts),
      onTarget,
      onBaseline,
      notRunning: notRunningIn(s.zones),
    };
  });
  const reached = stages.slice(0, r.stage + 1);
  const targeted = reached.reduce((n, s) => n + s.targeted, 0);

  const inTrouble = (list: Sighting[], keep: (s: Sighting) => boolean = () => true) =>
    list.filter((s) => {
      const from = since.get(`${s.project}/${s.zone}`);
      return from !== undefined && s.at >= from && keep(s);
    });
  const share = (gate: GateName, list: Sighting[], maxPercent: number): GateResult => {
    const count = new Set(list.map((s) => s.instanceId)).size;
    const value = count === 0 ? 0 : round1((100 * count) / Math.max(targeted, count));
    return {
      gate,
      value,
      threshold: maxPercent,
      unit: '%',
      passed: value <= maxPercent,
      hosts: list.slice(0, HOSTS_KEPT).map(ref),
      count,
      queries: [],
      capped: e.capped.includes(gate),
    };
  };
  const windows = new Set(denylistWindows(r, now));
  const denylisted = e.denylisted
    .filter((q) => Object.entries(q.windows).some(([w, n]) => windows.has(w) && n > 0))
    .map((q) => q.query)
    .sort();
  // An incident over before the latest resume was seen by whoever resumed; one still open counts.
  const resumed = r.resumedAt?.getTime() ?? 0;
  const results: GateResult[] = [
    share('noncompliant', inTrouble(e.noncompliant), gates.noncompliant.maxPercent),
    share('silent', inTrouble(e.silent), gates.silent.maxPercent),
    share(
      'incidents',
      inTrouble(e.incidents, (s) => s.open === true || s.at.getTime() >= resumed),
      gates.incidents.maxPercent,
    ),
    share(
      'osquerydCpu',
      inTrouble(e.cpu, (s) => (s.value ?? 0) > gates.osquerydCpu.cpuPercent),
      gates.osquerydCpu.maxPercent,
    ),
    share(
      'osquerydMemory',
      inTrouble(e.memory, (s) => (s.value ?? 0) > gates.osquerydMemory.rssMiB * 1024 * 1024),
      gates.osquerydMemory.maxPercent,
    ),
    {
      gate: 'denylistedQueries',
      value: denylisted.length,
      threshold: gates.denylistedQueries.max,
      unit: 'queries',
      passed: denylisted.length <= gates.denylistedQueries.max,
      hosts: [],
      count: denylisted.length,
      queries: denylisted,
      capped: e.capped.includes('denylistedQueries'),
    },
    ...(gates.logVolume ? [logVolumeGate(e.logVolume, gates.logVolume.maxIncreasePercent)] : []),
  ];
  results.sort((a, b) => GATE_NAMES.indexOf(a.gate) - GATE_NAMES.indexOf(b.gate));

  const current = stages[r.stage]!;
  const start = stageStart(r);
  // Evidence for promotion comes from successful audits of every project the stages span, after the stage
  // started and within the bound: a project whose audits keep failing holds the rollout (and past the
  // bound, stalls it: rollout.stalled), however fresh its last snapshot once was.
  const projects = [...new Set(reached.flatMap((s) => s.zones.map((k) => splitKey(k).project)))].sort();
  const auditedAt = (p: string) => {
    const s = e.snapshots[p];
    return s ? Date.parse(s.at) : null;
  };
  const stale = projects.filter((p) => {
    const t = auditedAt(p);
    // Audit age: the one notion the rolling audit and the status page use too (shared/domain/rolling-audit.ts).
    return t === null || t <= start.getTime() || !auditFresh(auditAgeMs(new Date(t), now), settings.maxAgeMs);
  });
  const stalled = stale
    .filter((p) => now.getTime() - Math.max(auditedAt(p) ?? 0, start.getTime()) > settings.maxAgeMs)
    .map((p) => {
      const t = auditedAt(p);
      const last = t === null ? 'never audited' : `last audited ${minutes(now.getTime() - t)} min ago`;
      const failure = e.failures?.[p];
      return {
        project: p,
        lastAuditAt: t === null ? null : new Date(t).toISOString(),
        reason: `${p}: ${last}${failure ? `; its audit fails: ${failure}` : ''}`,
      };
    });
  const observedStage =
    current.onTarget - sumOver(r.stages[r.stage]!.zones, snapshotOf, target, 'pending') - (current.notRunning ?? 0);
  const observedTotal = reached.reduce(
    (n, s, i) => n + s.onTarget - sumOver(r.stages[i]!.zones, snapshotOf, target, 'pending') - (s.notRunning ?? 0),
    0,
  );
  const needed = Math.ceil((r.observe.minPercent / 100) * current.targeted - 1e-9);
  const bakeLeftMinutes = Math.max(0, minutes(start.getTime() + current.bakeMinutes * 60_000 - now.getTime()));

  const failed = results.find((g) => !g.passed && !(e.pipelineBehind && g.gate === 'silent'));
  const next = ((): Evaluation['next'] => {
    if (r.status !== 'running') return { action: 'none', reason: `the rollout is ${r.status}` };
    if (failed) return { action: 'halt', reason: `gate ${failed.gate} ${describe(failed)}` };
    if (e.pipelineBehind)
      return { action: 'hold', reason: 'the heartbeat pipeline is behind (pipeline.backlog): the silent gate waits' };
    if (stalled.length)
      return {
        action: 'hold',
        reason:
          `no successful audit within ${minutes(settings.maxAgeMs)} min of ` + stalled.map((s) => s.reason).join('; '),
      };
    if (stale.length)
      return { action: 'hold', reason: `waiting for an audit of ${stale.join(', ')} after the stage started` };
    const capped = results.filter((g) => g.capped).map((g) => g.gate);
    if (capped.length)
      return {
        action: 'hold',
        reason: `could not count everything for ${capped.join(', ')} (too many, or a document that does not match)`,
      };
    if (observedStage < needed || observedTotal < r.observe.minHosts)
      return {
        action: 'hold',
        reason:
          `${observedStage} of ${current.targeted} hosts of stage ${current.name} reported on ${target} ` +
          `(need ${needed}${r.observe.minHosts ? `, and ${r.observe.minHosts} in all` : ''})` +
          (current.notRunning ? `; ${current.notRunning} not yet running the target by their own lines` : ''),
      };
    if (bakeLeftMinutes > 0)
      return { action: 'hold', reason: `stage ${current.name} bakes ${bakeLeftMinutes} min more` };
    if (r.stage === r.stages.length - 1)
      return { action: 'complete', reason: `every gate passed in the last stage ${current.name}` };
    return { action: 'promote', reason: `every gate passed; stage ${current.name} baked ${current.bakeMinutes} min` };
  })();
  return {
    at: now,
    runId,
    revision: r.revision,
    stage: current.name,
    gates: results,
    stages,
    observed: { stage: observedStage, needed, total: observedTotal, minHosts: r.observe.minHosts },
    stale,
    stalled,
    bakeLeftMinutes,
    next,
  };
}

function sumOver(
  zones: string[],
  snapshotOf: (k: string) => { versions: Record<string, StateCounts> } | null,
  version: string,
  state: HostState,
): number {
  return zones.reduce((n, k) => n + (snapshotOf(k)?.versions[version]?.[state] ?? 0), 0);
}

/** `12.5% (threshold 5%)`, `2 queries (threshold 0)`. */
export function describe(g: Pick<GateResult, 'value' | 'threshold' | 'unit' | 'count'>): string {
  if (g.unit === '% over baseline')
    return `log bytes per host ${g.value}% above the baseline's (threshold ${g.threshold}%)`;
  return g.unit === '%'
    ? `${g.value}% of the targeted hosts (${g.count} ${g.count === 1 ? 'host' : 'hosts'}; threshold ${g.threshold}%)`
    : `${g.value} ${g.value === 1 ? 'query' : 'queries'} (threshold ${g.threshold})`;
}

// --- Decisions ---------------------------------------------------------------------------------------------

export class RolloutRefused extends Error {
  override name = 'RolloutRefused';
}

export type Decision =
  | { kind: 'promote' }
  | { kind: 'complete' }
  | { kind: 'halt'; gate: GateResult; dedupKey: string }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'rollback' }
  /** Another version was published all at once over it, or made current by `rollback --to`. */
  | { kind: 'supersede'; by: string };

/** The alert episode of a halt: one per rollout revision it halted at. */
export const haltKey = (version: string, revision: number) => `rollout.halted:${version}:r${revision}`;

export const CONTROLLER: Actor = { by: 'controller', reason: '' };

/**
 * Pure: the rollout after a decision (the controller's or an operator's), with its history entry and
 * the next revision; RolloutRefused when the decision does not apply to its status.
 */
export function decide(r: StagedRollout, d: Decision, actor: Actor, now: Date): StagedRollout {
  const refuse = (why: string) => {
    throw new RolloutRefused(
      `rollout of ${r.configVersion} is ${r.status}` +
        `${r.mode === 'staged' ? ` at stage ${r.stages[r.stage]?.name}` : ''}: ${why}`,
    );
  };
  if (r.mode !== 'staged' && d.kind !== 'supersede' && d.kind !== 'rollback')
    refuse('it was published all at once; there is nothing to stage');
  const next: StagedRollout = { ...r, stages: r.stages.map((s) => ({ ...s })), revision: r.revision + 1 };
  let action: HistoryAction;
  let reason = actor.reason;
  switch (d.kind) {
    case 'promote':
      if (!LIVE.has(r.status)) refuse('only a running or paused rollout is promoted (resume it first)');
      if (r.stage === r.stages.length - 1) return decide(r, { kind: 'complete' }, actor, now);
      next.stage = r.stage + 1;
      next.stages[next.stage]!.startedAt = now;
      action = 'promoted';
      break;
    case 'complete':
      if (!LIVE.has(r.status)) refuse('only a running or paused rollout completes');
      next.status = 'completed';
      action = 'completed';
      break;
    case 'halt':
      if (r.status !== 'running') refuse('only a running rollout halts');
      next.status = 'halted';
      next.halt = {
        at: now,
        stage: r.stages[r.stage]!.name,
        gate: d.gate.gate,
        value: d.gate.value,
        threshold: d.gate.threshold,
        unit: d.gate.unit,
        count: d.gate.count,
        hosts: d.gate.hosts,
        queries: d.gate.queries,
        dedupKey: d.dedupKey,
      };
      action = 'halted';
      reason = `gate ${d.gate.gate}: ${describe(d.gate)}`;
      break;
    case 'pause':
      if (r.status !== 'running') refuse('only a running rollout is paused');
      next.status = 'paused';
      action = 'paused';
      break;
    case 'resume':
      if (!RESUMABLE.has(r.status)) refuse('only a paused, halted or rolled-back rollout is resumed');
      next.status = 'running';
      if (r.status !== 'paused') {
        // The target goes back to the stages reached: they are judged, and bake, from now on.
        next.resumedAt = now;
      }
      action = 'resumed';
      break;
    case 'rollback':
      if (!LIVE.has(r.status) && r.status !== 'halted' && r.status !== 'completed')
        refuse('only a running, paused, halted or completed rollout is rolled back');
      next.status = 'rolled-back';
      action = 'rolled-back';
      break;
    case 'supersede':
      next.status = 'superseded';
      action = 'superseded';
      reason = [actor.reason, `superseded by ${d.by}`].filter(Boolean).join('; ');
      break;
  }
  next.history = [
    ...r.history,
    { at: now, action, stage: next.stages[next.stage]?.name ?? null, by: actor.by, reason },
  ];
  return next;
}

/** Pure: a staged rollout's start, from its resolved stages (the first one starts now). */
export function newRollout(input: {
  version: string;
  baseline: string | null;
  stages: ResolvedStage[];
  skipped: Array<{ name: string; reason: string }>;
  observe: ObserveSettings;
  actor: Actor;
  now: Date;
  revision?: number;
}): StagedRollout {
  const { now } = input;
  const stages = input.stages.map((s, i) => ({ ...s, startedAt: i === 0 ? now : null }));
  const started: HistoryEntry = {
    at: now,
    action: 'started',
    stage: stages[0]?.name ?? null,
    by: input.actor.by,
    reason: input.actor.reason,
  };
  return {
    configVersion: input.version,
    mode: 'staged',
    // No zone to stage (an empty fleet): nothing to wait for.
    status: stages.length === 0 ? 'completed' : 'running',
    baseline: input.baseline,
    startedAt: now,
    stage: 0,
    stages,
    skipped: input.skipped,
    observe: input.observe,
    revision: (input.revision ?? 0) + 1,
    resumedAt: null,
    halt: null,
    evaluation: null,
    stall: null,
    history:
      stages.length === 0 ? [started, { ...started, action: 'completed', reason: 'no zone to stage' }] : [started],
  };
}

/** Pure: the record of a version published all at once (today's behaviour, for emergencies). */
export function allAtOnce(input: {
  version: string;
  baseline: string | null;
  actor: Actor;
  now: Date;
  revision?: number;
  history?: HistoryEntry[];
}): StagedRollout {
  return {
    configVersion: input.version,
    mode: 'all-at-once',
    status: 'completed',
    baseline: input.baseline,
    startedAt: input.now,
    stage: 0,
    stages: [],
    skipped: [],
    observe: { minPercent: 0, minHosts: 0 },
    revision: (input.revision ?? 0) + 1,
    resumedAt: null,
    halt: null,
    evaluation: null,
    stall: null,
    history: [
      ...(input.history ?? []),
      {
        at: input.now,
        action: 'published-all-at-once',
        stage: null,
        by: input.actor.by,
        reason: input.actor.reason || 'publish --all-at-once: no canary, no gates, no automatic rollback',
      },
    ],
  };
}

/**
 * Every field of a rollout the `alerts` contract's rollout.halted message carries (docs/contracts.md: kind,
 * version, stage, gate, value, threshold).
 */
export function haltDetails(r: StagedRollout, halt: HaltRecord) {
  return {
    version: r.configVersion,
    baseline: r.baseline,
    stage: halt.stage,
    gate: halt.gate,
    value: halt.value,
    threshold: halt.threshold,
    unit: halt.unit,
  };
}

/** One line for a halt: the gate, its value against its threshold, the first hosts or queries. */
export function haltReason(halt: HaltRecord): string {
  const what = halt.queries.length
    ? `queries ${halt.queries.join(', ')}`
    : halt.hosts.length
      ? `hosts ${halt.hosts.map((h) => `${h.project}/${h.zone}/${h.name}`).join(', ')}`
      : '';
  return `halted in stage ${halt.stage}: gate ${halt.gate} ${describe(halt)}${what ? `; ${what}` : ''}`;
}
