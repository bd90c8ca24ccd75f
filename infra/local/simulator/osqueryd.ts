// The simulated osqueryd on a VM: the schedule it reads from the configuration files OS Config placed,
// a worker process whose CPU time and memory grow with a configurable cost, per-query counters as
// osquery_schedule reports them, watchdog restarts and denylisted queries, and the log lines it writes
// (heartbeat, osquery_schedule snapshot, other queries' results).
//
// Two clocks: the worker's CPU counters follow real time (the heartbeat reports second-resolution times
// and counters grown by cpuPercent over exactly those seconds, so the CPU% logHeartbeat computes is the
// configured one), while the schedule runs on osquery time, one heartbeat interval (300 s) per round,
// so an hourly query runs every 12th round whatever the local stack's accelerated round length.
import { createHash } from 'node:crypto';
import { parseInterval, parseOsqueryJson } from '../../../shared/osquery/lint.js';
import { HEARTBEAT_QUERY, type QUERY_NAME_ATTRIBUTE, SCHEDULE_QUERY } from '../../../shared/osquery/log-routing.js';
import { PINNED_OSQUERY_VERSION } from '../../../shared/osquery/version.js';

/** Osquery time per round: the bundle's heartbeat interval. */
export const ROUND_SECONDS = 300;
/** How long the watchdog denylists a query that was running when it killed the worker. */
export const DENYLIST_SECONDS = 86_400;
const MiB = 1024 * 1024;

export interface SimQuery {
  name: string;
  interval: number;
  snapshot: boolean;
}

/** A worker whose configuration could not be read still runs a heartbeat (osquery's monitoring would). */
export const FALLBACK_SCHEDULE: SimQuery[] = [{ name: HEARTBEAT_QUERY, interval: ROUND_SECONDS, snapshot: true }];

type Json = Record<string, unknown>;

/**
 * The schedule osqueryd builds from its files: osquery.conf's `schedule` and its packs (inline, or a
 * path to a placed file), pack queries named `pack_{pack}_{query}` as osquery names them.
 */
export function scheduleFromFiles(files: Record<string, string>): SimQuery[] {
  const confText = files['/etc/osquery/osquery.conf'];
  if (!confText) return FALLBACK_SCHEDULE;
  let conf: Json;
  try {
    conf = parseOsqueryJson(confText) as Json;
  } catch {
    return FALLBACK_SCHEDULE;
  }
  const out: SimQuery[] = [];
  const add = (name: string, q: unknown) => {
    if (typeof q !== 'object' || q === null) return;
    const body = q as Json;
    out.push({ name, interval: parseInterval(body.interval ?? 3600) ?? 3600, snapshot: body.snapshot === true });
  };
  for (const [name, q] of Object.entries((conf.schedule ?? {}) as Json)) add(name, q);
  for (const [pack, ref] of Object.entries((conf.packs ?? {}) as Json)) {
    let body: unknown = ref;
    if (typeof ref === 'string') {
      try {
        body = files[ref] ? parseOsqueryJson(files[ref]) : null;
      } catch {
        body = null;
      }
    }
    const queries = ((body as Json | null)?.queries ?? {}) as Json;
    for (const [name, q] of Object.entries(queries)) add(`pack_${pack}_${name}`, q);
  }
  return out.length > 0 ? out : FALLBACK_SCHEDULE;
}

/** One execution of a query. */
export interface QueryCost {
  userMs: number;
  systemMs: number;
  outputBytes: number;
}

/** What a configuration version (or, as `default`, every version) costs on the VMs running it. */
export interface CostProfile {
  /** osqueryd worker CPU, percent of one core. */
  cpuPercent?: number;
  /** Worker resident memory. */
  rssBytes?: number;
  /** Per query: cost per execution, and `denylisted` (the watchdog denylisted it on every VM of the version). */
  queries?: Record<string, Partial<QueryCost> & { denylisted?: boolean }>;
}

const hash = (text: string) => createHash('sha256').update(text).digest().readUInt32BE(0);

/** Built-in cost of a query when no profile names it: small, stable per name (queries differ, runs do not). */
export function defaultQueryCost(name: string): QueryCost {
  if (name === HEARTBEAT_QUERY) return { userMs: 4, systemMs: 2, outputBytes: 420 };
  if (name === SCHEDULE_QUERY) return { userMs: 9, systemMs: 4, outputBytes: 7_500 };
  const h = hash(name);
  return { userMs: 3 + (h % 60), systemMs: 1 + ((h >>> 8) % 20), outputBytes: 150 + ((h >>> 16) % 4_000) };
}

export const DEFAULT_CPU_PERCENT = 0.8;
export const DEFAULT_RSS_BYTES = 48 * MiB;

interface QueryState {
  executions: number;
  outputBytes: number;
  userMs: number;
  systemMs: number;
  wallMs: number;
  lastExecuted: number;
  /** Osquery time of the next run. */
  nextRun: number;
  /** Osquery time until which the watchdog denylists it (0: not denylisted). */
  denylistedUntil: number;
}

/** The osquery worker process: what processes and osquery_schedule report about it. */
export interface SimWorker {
  pid: number;
  /** Seconds since the epoch (real time). */
  startTime: number;
  /** Cumulative CPU in ms, exactly; reported in 10 ms clock ticks. */
  cpuMs: number;
  /** Real second its counters last advanced to. */
  advancedTo: number;
  /** Osquery time since the worker started (seconds). */
  clock: number;
  /** The configuration version it was started for (from the OS policy id). */
  configVersion: string | null;
  schedule: SimQuery[];
  queries: Record<string, QueryState>;
}

/** The per-VM osqueryd: its worker and the faults set on this host. */
export interface SimOsqueryd {
  worker: SimWorker | null;
  /** Host override of the worker's CPU (percent of one core): an expensive osqueryd. */
  cpuPercent: number | null;
  /** Host override of the worker's resident memory. */
  rssBytes: number | null;
}

export const newOsqueryd = (): SimOsqueryd => ({ worker: null, cpuPercent: null, rssBytes: null });

/** Starts a worker (first start, OS Config's restart for a new version, or the watchdog's). */
export function startWorker(
  schedule: SimQuery[],
  configVersion: string | null,
  now: Date,
  carryDenylist: Record<string, number> = {},
  previousPid?: number,
): SimWorker {
  const startTime = Math.floor(now.getTime() / 1000);
  const queries: Record<string, QueryState> = {};
  for (const q of schedule)
    queries[q.name] = {
      executions: 0,
      outputBytes: 0,
      userMs: 0,
      systemMs: 0,
      wallMs: 0,
      lastExecuted: 0,
      // osquery runs every query soon after start, then every interval; spread the first runs as splay does.
      nextRun: q.interval <= ROUND_SECONDS ? 0 : hash(q.name) % q.interval,
      denylistedUntil: carryDenylist[q.name] ?? 0,
    };
  return {
    // Linux hands out increasing pids: a restarted worker gets a later one.
    pid: previousPid ? previousPid + 1 + Math.floor(Math.random() * 500) : 1_000 + Math.floor(Math.random() * 60_000),
    startTime,
    cpuMs: 0,
    advancedTo: startTime,
    clock: 0,
    configVersion,
    schedule,
    queries,
  };
}

/**
 * The watchdog kills the worker while it runs `query`: the next worker starts with counters at zero and
 * that query denylisted for 24 h of osquery time (osquery: the executing query is recorded before each
 * run and denylisted on the next start). Without a query, a plain restart.
 */
export function restartWorker(osqueryd: SimOsqueryd, now: Date, query?: string): SimWorker | null {
  const old = osqueryd.worker;
  if (!old) return null;
  const carry: Record<string, number> = {};
  for (const [name, q] of Object.entries(old.queries))
    if (q.denylistedUntil > old.clock) carry[name] = q.denylistedUntil - old.clock;
  if (query) carry[query] = DENYLIST_SECONDS;
  osqueryd.worker = startWorker(old.schedule, old.configVersion, now, carry, old.pid);
  return osqueryd.worker;
}

/** Clears a denylisting (it expired, or osquery was told to forget it). */
export function allowQuery(osqueryd: SimOsqueryd, query: string): void {
  const q = osqueryd.worker?.queries[query];
  if (q) q.denylistedUntil = 0;
}

/** What this VM's worker costs: host overrides, then the version's profile, then `default`, then built-ins. */
export interface ResolvedCosts {
  cpuPercent: number;
  rssBytes: number;
  query(name: string): QueryCost & { denylisted: boolean };
}

export function resolveCosts(
  profiles: ReadonlyMap<string, CostProfile>,
  configVersion: string | null,
  osqueryd: SimOsqueryd,
): ResolvedCosts {
  const layers = [configVersion ? profiles.get(configVersion) : undefined, profiles.get('default')].filter(
    (p): p is CostProfile => p !== undefined,
  );
  const pick = <K extends 'cpuPercent' | 'rssBytes'>(k: K) => layers.find((p) => p[k] !== undefined)?.[k];
  return {
    cpuPercent: osqueryd.cpuPercent ?? pick('cpuPercent') ?? DEFAULT_CPU_PERCENT,
    rssBytes: osqueryd.rssBytes ?? pick('rssBytes') ?? DEFAULT_RSS_BYTES,
    query: (name) => {
      const base = defaultQueryCost(name);
      const layer = (k: keyof QueryCost) =>
        layers.find((p) => p.queries?.[name]?.[k] !== undefined)?.queries?.[name]?.[k];
      return {
        userMs: layer('userMs') ?? base.userMs,
        systemMs: layer('systemMs') ?? base.systemMs,
        outputBytes: layer('outputBytes') ?? base.outputBytes,
        denylisted: layers.some((p) => p.queries?.[name]?.denylisted === true),
      };
    },
  };
}

/** The host a line comes from, as osquery and its decorators describe it. */
export interface LineHost {
  id: string;
  name: string;
}

/** One log line as the shipper publishes it: the line, and its routing attributes (README: Host identity). */
export interface ShippedLine {
  line: Json;
  attributes: { log_type: 'result' | 'snapshot'; [QUERY_NAME_ATTRIBUTE]: string };
}

const jitter = (random: () => number, spread = 0.2) => 1 - spread + 2 * spread * random();
const ticks = (ms: number) => Math.floor(ms / 10) * 10;
const mb = (n: number) => Math.round(n / 4096) * 4096;

function envelope(host: LineHost, name: string, now: Date, action: string) {
  return {
    name,
    hostIdentifier: host.name,
    calendarTime: now.toUTCString(),
    unixTime: Math.floor(now.getTime() / 1000),
    epoch: 0,
    counter: 0,
    numerics: false,
    decorations: { host_uuid: `uuid-${host.id}`, hostname: host.name },
    action,
  };
}

/** The heartbeat's snapshot line: the worker's own row of processes joined to osquery_info. */
export function heartbeatLine(host: LineHost, worker: SimWorker, rssBytes: number, now: Date): Json {
  const userMs = ticks(worker.cpuMs * 0.7);
  return {
    ...envelope(host, HEARTBEAT_QUERY, now, 'snapshot'),
    snapshot: [
      {
        heartbeat_at: String(Math.floor(now.getTime() / 1000)),
        osquery_version: PINNED_OSQUERY_VERSION,
        config_hash: worker.configVersion ?? 'unknown',
        pid: String(worker.pid),
        uuid: `uuid-${host.id}`,
        start_time: String(worker.startTime),
        user_time: String(userMs),
        system_time: String(ticks(worker.cpuMs) - userMs),
        resident_size: String(rssBytes),
      },
    ],
  };
}

/** The osquery_schedule snapshot: every scheduled query's cumulative counters, with the worker they belong to. */
export function scheduleLine(host: LineHost, worker: SimWorker, costs: ResolvedCosts, now: Date): Json {
  return {
    ...envelope(host, SCHEDULE_QUERY, now, 'snapshot'),
    snapshot: worker.schedule.map((q) => {
      const s = worker.queries[q.name]!;
      return {
        name: q.name,
        interval: String(q.interval),
        executions: String(s.executions),
        last_executed: String(s.lastExecuted),
        denylisted: isDenylisted(worker, q.name, costs) ? '1' : '0',
        output_size: String(s.outputBytes),
        wall_time: String(Math.floor(s.wallMs / 1000)),
        wall_time_ms: String(s.wallMs),
        user_time: String(s.userMs),
        system_time: String(s.systemMs),
        average_memory: String(s.executions > 0 ? 2 * MiB : 0),
        worker_pid: String(worker.pid),
        worker_start_time: String(worker.startTime),
      };
    }),
  };
}

function isDenylisted(worker: SimWorker, name: string, costs: ResolvedCosts): boolean {
  return (worker.queries[name]?.denylistedUntil ?? 0) > worker.clock || costs.query(name).denylisted;
}

function resultLine(host: LineHost, q: SimQuery, now: Date): Json {
  const row = { value: `${q.name}-row`, host: host.name };
  return q.snapshot
    ? { ...envelope(host, q.name, now, 'snapshot'), snapshot: [row] }
    : { ...envelope(host, q.name, now, 'added'), columns: row };
}

/**
 * One round of a VM's osqueryd: the worker's CPU counters advance over the real seconds since the last
 * round, osquery time advances one heartbeat interval, every due query that is not denylisted runs, and
 * the lines it writes are returned (the heartbeat, the schedule snapshot when it runs, other queries'
 * results: all rows on a first run, then changes now and then).
 */
export function runRound(
  host: LineHost,
  worker: SimWorker,
  costs: ResolvedCosts,
  now: Date,
  random: () => number = Math.random,
): ShippedLine[] {
  const second = Math.floor(now.getTime() / 1000);
  if (second > worker.advancedTo) {
    worker.cpuMs += (costs.cpuPercent / 100) * (second - worker.advancedTo) * 1000;
    worker.advancedTo = second;
  }
  worker.clock += ROUND_SECONDS;
  const rss = mb(costs.rssBytes * jitter(random, 0.02));
  const lines: ShippedLine[] = [];
  for (const q of worker.schedule) {
    const s = worker.queries[q.name]!;
    if (s.nextRun > worker.clock) continue;
    while (s.nextRun <= worker.clock) s.nextRun += q.interval;
    if (isDenylisted(worker, q.name, costs)) continue;
    const cost = costs.query(q.name);
    const first = s.executions === 0;
    s.executions += 1;
    s.lastExecuted = second;
    const user = ticks(cost.userMs * jitter(random));
    const system = ticks(cost.systemMs * jitter(random));
    s.userMs += user;
    s.systemMs += system;
    s.wallMs += Math.round((user + system) * 1.3) + 1;
    s.outputBytes += Math.round(cost.outputBytes * jitter(random));
    const log_type = q.snapshot ? 'snapshot' : 'result';
    if (q.name === HEARTBEAT_QUERY)
      lines.push({ line: heartbeatLine(host, worker, rss, now), attributes: { log_type, osquery_name: q.name } });
    else if (q.name === SCHEDULE_QUERY)
      lines.push({ line: scheduleLine(host, worker, costs, now), attributes: { log_type, osquery_name: q.name } });
    else if (first || q.snapshot || random() < 0.3)
      lines.push({ line: resultLine(host, q, now), attributes: { log_type, osquery_name: q.name } });
  }
  return lines;
}
