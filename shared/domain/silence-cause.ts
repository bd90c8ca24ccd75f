// Why a host went quiet (pure): the evidence the audit already holds about a host whose lines stopped
// (Compute, OS Config, osqueryd's own telemetry before the silence, the pipeline's backlog), reduced to one
// cause and the next step for whoever gets the alert (docs/heartbeat.md: Why a host went quiet).
// It imports only the heartbeat's query name: host.ts carries its causes, and the freshness of the lines is
// given (logsFresh).
import { HEARTBEAT_QUERY } from '../osquery/log-routing.js';

/** Every cause, in the order they win when several hold (the first that holds is the host's cause). */
export const SILENCE_CAUSES = [
  'vm-deleted',
  'vm-stopped',
  'agent-gone',
  'shipper-down',
  'osqueryd-crash-loop',
  'heartbeat-denylisted',
  'policy-failing',
  'osqueryd-unwatched',
  'pipeline-behind',
  'unknown',
] as const;
export type SilenceCause = (typeof SILENCE_CAUSES)[number];

/** The one-line next step each cause asks for (the alert and the status page carry it; README's runbook). */
export const NEXT_STEPS: Record<SilenceCause, string> = {
  'vm-deleted': 'Nothing to fix on the host: the VM is gone; check it was meant to be deleted.',
  'vm-stopped': 'Start the VM if it should run; a stopped or suspended VM sends nothing.',
  'agent-gone':
    'Check the OS Config agent on the VM (google-osconfig-agent running, service account, enable-osconfig).',
  'shipper-down': 'Restart the log shipper on the VM and read its log; OS Config reports shipper-running failing.',
  'osqueryd-crash-loop':
    "osqueryd's watchdog keeps killing its worker: read osqueryd's log for the query or limit, then fix the bundle.",
  'heartbeat-denylisted':
    'The watchdog denylisted the heartbeat query for 24 h: give it "denylist": false in the bundle and publish.',
  'policy-failing': "The osquery OS policy fails on the VM: read the failing resource's error in its OS Config report.",
  'osqueryd-unwatched':
    'osqueryd ran without its watchdog (watcher -1): check its process and flags (disable_watchdog), restart it.',
  'pipeline-behind':
    'The log pipeline is behind (pipeline.backlog): nothing to do on the host; watch the subscription drain.',
  unknown: 'No evidence points anywhere: check the VM reaches Pub/Sub and its shipper buffers are not full.',
};

/** Consecutive worker restarts, the last heartbeats before the silence, that mean a crash loop. */
export const CRASH_LOOP_RESTARTS = 2;
/**
 * How long a watchdog's denylisting lasts (osquery: 86,400 s): a snapshot older than this no longer says what is
 * denylisted now.
 */
export const DENYLIST_MS = 24 * 60 * 60_000;
/** An OS Config report older than this says the agent stopped reporting (it reports every ~10 minutes). */
export const REPORT_STALE_MS = 60 * 60_000;

/** What is known about a host when the audit decides it. Each input is explicit, so other rules can share it. */
export interface SilenceEvidence {
  /** The state just decided for the host (shared/domain/host.ts HostState). */
  state: string;
  /** Compute's status of the VM (RUNNING, TERMINATED, SUSPENDED...), null when the VM is gone. */
  vmStatus: string | null;
  /** The OS Config report reduced (shared/domain/reconcile.ts), null when there is none. */
  report: { complianceStateReason: string | null; failedResource: string | null; updateTime: Date | null } | null;
  /** Whether the host's newest line is fresh (shared/domain/heartbeat.ts logsFresh); null: none ever arrived. */
  linesFresh: boolean | null;
  /** osqueryd's consecutive worker restarts at its last heartbeats (hosts/{id}.osqueryd.restarts). */
  workerRestarts: number;
  /**
   * osquery_info.watcher at its last heartbeat (hosts/{id}.running.watcher): false when osqueryd ran without its
   * watchdog (watcher -1 or 0), null when not reported.
   */
  watcher?: boolean | null;
  /**
   * The queries its last osquery_schedule snapshot said the watchdog denylisted, and that snapshot's time
   * (hosts/{id}.querySchedule.denylisted and .at); null: no snapshot.
   */
  denylisted?: { at: Date; queries: readonly string[] } | null;
  /** Whether the backlog of the heartbeat subscription explains this host's missing lines (pipeline.backlog). */
  pipelineBehind: boolean;
  now: Date;
}

/** States where a host is expected to send nothing, or already judged quiet. */
const QUIET_STATES: ReadonlySet<string> = new Set(['silent', 'stopped', 'deleted']);

/** Pure: whether the host is quiet, the question a cause answers: judged so, or its lines stale. */
export function isQuiet(e: Pick<SilenceEvidence, 'state' | 'linesFresh'>): boolean {
  if (QUIET_STATES.has(e.state)) return true;
  return e.state !== 'exempt' && e.linesFresh === false;
}

/**
 * Pure: the cause of a quiet host, null when it is not quiet. Evidence about the host itself, read outside
 * the log path (Compute, OS Config) or carried by its lines before the silence, wins over the pipeline's
 * backlog, which only explains lines that have not arrived yet; `unknown` when nothing holds.
 */
export function silenceCause(e: SilenceEvidence): SilenceCause | null {
  if (!isQuiet(e)) return null;
  if (e.vmStatus === null || e.state === 'deleted') return 'vm-deleted';
  if (e.vmStatus !== 'RUNNING' || e.state === 'stopped') return 'vm-stopped';
  const report = e.report;
  const reportAge = report?.updateTime ? e.now.getTime() - report.updateTime.getTime() : null;
  if (!report || report.complianceStateReason === 'no-agent-detected' || (reportAge ?? 0) > REPORT_STALE_MS)
    return 'agent-gone';
  if (report.failedResource === 'shipper-running') return 'shipper-down';
  if (e.workerRestarts >= CRASH_LOOP_RESTARTS) return 'osqueryd-crash-loop';
  // osqueryd still runs, but its liveness line no longer does: a cause of its own, not the pipeline's.
  if (denylistedNow(e).includes(HEARTBEAT_QUERY)) return 'heartbeat-denylisted';
  if (report.failedResource) return 'policy-failing';
  // Nothing restarts a worker that hung or died without a watcher; weaker evidence than OS Config's.
  if (e.watcher === false) return 'osqueryd-unwatched';
  if (e.pipelineBehind) return 'pipeline-behind';
  return 'unknown';
}

/** Pure: the queries the watchdog denylists now, by the last snapshot (none when it is a day old or more). */
export function denylistedNow(e: Pick<SilenceEvidence, 'denylisted' | 'now'>): readonly string[] {
  const d = e.denylisted;
  return d && e.now.getTime() - d.at.getTime() < DENYLIST_MS ? d.queries : [];
}

/**
 * Pure: the cause and its next step, as the host document and the host.silent alert carry them, and the
 * other queries denylisted now where they help (a crash loop or an unexplained silence: the query the watchdog
 * killed the worker for is among them).
 */
export function diagnosis(cause: SilenceCause, denylisted: readonly string[] = []) {
  const supporting = SUPPORTED_BY_DENYLIST.has(cause) ? denylisted.filter((q) => q !== HEARTBEAT_QUERY) : [];
  return { cause, nextStep: NEXT_STEPS[cause], ...(supporting.length > 0 ? { denylisted: [...supporting] } : {}) };
}

/** The causes a denylisted query helps explain (the watchdog killed a worker for it). */
const SUPPORTED_BY_DENYLIST: ReadonlySet<SilenceCause> = new Set([
  'osqueryd-crash-loop',
  'heartbeat-denylisted',
  'unknown',
]);
