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
import { SYSLOG_COSTS, type SyslogRow } from './syslog.js';

/** Osquery time per round: the bundle's heartbeat interval. */
export const ROUND_SECONDS = 300;
/** How long the watchdog denylists a query that was running when it killed the worker. */
export const DENYLIST_SECONDS = 86_400;
const MiB = 1024 * 1024;

export interface SimQuery {
  name: string;
  interval: number;
  snapshot: boolean;
  /** Differential queries log removed rows too unless `removed: false` (osquery's default: true). */
  removed: boolean;
  /** It reads syslog_events: each run returns the syslog rows osqueryd buffered since the last (syslog.ts). */
  readsSyslog?: boolean;
  /** `denylist: false`: the watchdog never denylists it (osquery's default: true). Absent: true. */
  denylist?: boolean;
}

/** A worker whose configuration could not be read still runs a heartbeat (osquery's monitoring would). */
export const FALLBACK_SCHEDULE: SimQuery[] = [
  { name: HEARTBEAT_QUERY, interval: ROUND_SECONDS, snapshot: true, removed: false },
];

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
    out.push({
      name,
      interval: parseInterval(body.interval ?? 3600) ?? 3600,
      snapshot: body.snapshot === true,
      removed: body.removed !== false,
      ...(body.denylist === false ? { denylist: false } : {}),
      ...(/\bsyslog_events\b/i.test(String(body.query ?? '')) ? { readsSyslog: true } : {}),
    });
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
  /**
   * Per query: cost per execution, `denylisted` (the watchdog denylisted it on every VM of the version), and
   * its result volume: `churnPerHour` (changed rows an hour, each a logged line) and `rowBytes` (the size of
   * a row's value): a chatty query is one with more of either.
   */
  queries?: Record<string, Partial<QueryCost> & { denylisted?: boolean } & Partial<QueryVolume>>;
}

/** What a query's results weigh: rows changed per hour, and the bytes of each row's value (null: built-in). */
export interface QueryVolume {
  churnPerHour: number | null;
  rowBytes: number | null;
}

const hash = (text: string) => createHash('sha256').update(text).digest().readUInt32BE(0);

/** Built-in cost of a query when no profile names it: small, stable per name (queries differ, runs do not). */
export function defaultQueryCost(name: string): QueryCost {
  if (name === HEARTBEAT_QUERY) return { userMs: 4, systemMs: 2, outputBytes: 420 };
  if (name === SCHEDULE_QUERY) return { userMs: 9, systemMs: 4, outputBytes: 7_500 };
  const h = hash(name);
  return { userMs: 3 + (h % 60), systemMs: 1 + ((h >>> 8) % 20), outputBytes: 150 + ((h >>> 16) % 4_000) };
}

/**
 * What a query returns on a typical Debian/Ubuntu server on Compute Engine: its row count, and how many
 * rows change per hour (added plus removed). A differential query logs one line per changed row (osquery's
 * event format), all its rows as `added` on its first run on a host (no stored results yet), then only
 * the changes; a snapshot query logs one line per run whatever its rows. Estimates, not measurements: the
 * churn is dominated by outbound connections (rotating API endpoints) and logins.
 */
const TYPICAL_ROWS: Record<string, { rows: number; churnPerHour: number }> = {
  listening_ports: { rows: 8, churnPerHour: 0.1 },
  outbound_connections: { rows: 24, churnPerHour: 16 },
  arp_cache: { rows: 3, churnPerHour: 0.02 },
  routes: { rows: 12, churnPerHour: 0 },
  interface_addresses: { rows: 6, churnPerHour: 0 },
  users: { rows: 32, churnPerHour: 0.01 },
  groups: { rows: 58, churnPerHour: 0.01 },
  privileged_group_members: { rows: 6, churnPerHour: 0.01 },
  sudoers: { rows: 12, churnPerHour: 0 },
  authorized_keys: { rows: 4, churnPerHour: 0.2 },
  logged_in_users: { rows: 1, churnPerHour: 1.5 },
  last: { rows: 40, churnPerHour: 3 },
  shadow_status: { rows: 32, churnPerHour: 0.01 },
  crontab: { rows: 8, churnPerHour: 0.01 },
  kernel_modules: { rows: 70, churnPerHour: 0.05 },
  running_services: { rows: 38, churnPerHour: 0.3 },
  mounts: { rows: 6, churnPerHour: 0.05 },
  suid_binaries: { rows: 22, churnPerHour: 0 },
  os_version: { rows: 1, churnPerHour: 0 },
  kernel_info: { rows: 1, churnPerHour: 0 },
  osquery_info: { rows: 1, churnPerHour: 0 },
  watchdog_flags: { rows: 4, churnPerHour: 0 },
  osquery_events: { rows: 12, churnPerHour: 0 },
  deb_packages: { rows: 520, churnPerHour: 0.05 },
  rpm_packages: { rows: 0, churnPerHour: 0 },
};

/** Rows and hourly churn of a query (by its name in the pack, `pack_{pack}_{query}` or a schedule name). */
export function typicalRows(name: string): { rows: number; churnPerHour: number } {
  // The longest known name the pack query ends with (`pack_users_logged_in_users` is logged_in_users, not users).
  const known =
    TYPICAL_ROWS[name] ??
    Object.entries(TYPICAL_ROWS)
      .filter(([q]) => name.endsWith(`_${q}`))
      .sort(([a], [b]) => b.length - a.length)[0]?.[1];
  if (known) return known;
  const h = hash(`rows:${name}`);
  return { rows: 1 + (h % 20), churnPerHour: ((h >>> 8) % 5) / 10 };
}

/** Draws how many rows changed, Poisson with mean `mean` (normal above 30, where Knuth's method underflows). */
function changedRows(mean: number, random: () => number): number {
  if (mean <= 0) return 0;
  if (mean > 30) {
    const gauss = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * gauss));
  }
  const limit = Math.exp(-mean);
  let n = 0;
  for (let p = random(); p > limit; p *= random()) n += 1;
  return n;
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
  /** A differential query has stored results on this host (osquery's database, kept across restarts). */
  hasResults: boolean;
  /** Rows it returns on this host; the next row id its changes use; changed rows per hour (typicalRows). */
  rows: number;
  nextRow: number;
  churnPerHour: number;
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
  /** The osquery release running (the package installed when it started). */
  osqueryVersion: string;
  /** What its `load` decorators returned when it read its configuration: stamped on every line it writes. */
  decorations: Record<string, string>;
  schedule: SimQuery[];
  queries: Record<string, QueryState>;
  /** The most syslog rows one query run held (its memory stays with the process: SYSLOG_COSTS). */
  syslogPeakRows: number;
  /** osqueryd runs without its watchdog (--disable_watchdog): osquery_info.watcher is -1. */
  unwatched?: boolean;
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

/** What a (re)started worker inherits from the host. */
export interface WorkerStart {
  /** Queries the watchdog still denylists, with the osquery seconds left. */
  carryDenylist?: Record<string, number>;
  /** The previous worker's pid: Linux hands out increasing pids, a restarted worker gets a later one. */
  previousPid?: number;
  /**
   * Queries with stored results on the host (osquery's database outlives the worker): their next run logs
   * only changes. `all`: a host that has run this schedule for a while (the steady state of a fleet).
   */
  storedResults?: ReadonlySet<string> | 'all';
  /** The release the worker runs (default: the pinned one). */
  osqueryVersion?: string;
  /** Its `load` decorators' columns (decorationsFromFiles). */
  decorations?: Record<string, string>;
}

/**
 * The constant columns of osquery.conf's `load` decorators (`SELECT 'v1234' AS config_version`), as osquery
 * would return them when it loads the file: the configuration version the bundle stamps on every line.
 */
export function decorationsFromFiles(files: Record<string, string>): Record<string, string> {
  try {
    const conf = parseOsqueryJson(files['/etc/osquery/osquery.conf'] ?? '{}') as { decorators?: { load?: unknown } };
    const load = Array.isArray(conf.decorators?.load) ? (conf.decorators.load as unknown[]) : [];
    const out: Record<string, string> = {};
    for (const sql of load) {
      const m = /^\s*SELECT\s+'([^']*)'\s+AS\s+(\w+)\s*;?\s*$/i.exec(String(sql));
      if (m) out[m[2]!] = m[1]!;
    }
    return out;
  } catch {
    return {};
  }
}

/** Starts a worker (first start, OS Config's restart for a new version, or the watchdog's). */
export function startWorker(
  schedule: SimQuery[],
  configVersion: string | null,
  now: Date,
  {
    carryDenylist = {},
    previousPid,
    storedResults = new Set<string>(),
    osqueryVersion = PINNED_OSQUERY_VERSION,
    decorations = {},
  }: WorkerStart = {},
): SimWorker {
  const startTime = Math.floor(now.getTime() / 1000);
  const pid = previousPid
    ? previousPid + 1 + Math.floor(Math.random() * 500)
    : 1_000 + Math.floor(Math.random() * 60_000);
  const queries: Record<string, QueryState> = {};
  for (const q of schedule) {
    const { rows, churnPerHour } = typicalRows(q.name);
    queries[q.name] = {
      executions: 0,
      outputBytes: 0,
      userMs: 0,
      systemMs: 0,
      wallMs: 0,
      lastExecuted: 0,
      // osquery runs every query soon after start, then every interval; splay spreads the first runs, so
      // across a fleet a daily query runs on about 1/24 of the hosts in any hour.
      nextRun: q.interval <= ROUND_SECONDS ? 0 : hash(`${q.name}:${pid}`) % q.interval,
      denylistedUntil: carryDenylist[q.name] ?? 0,
      hasResults: storedResults === 'all' || storedResults.has(q.name),
      rows,
      nextRow: rows,
      churnPerHour,
    };
  }
  return {
    pid,
    startTime,
    cpuMs: 0,
    advancedTo: startTime,
    clock: 0,
    configVersion,
    osqueryVersion,
    decorations,
    schedule,
    queries,
    syslogPeakRows: 0,
  };
}

/**
 * The queries with stored results on the worker's host: what
 * the next worker inherits (osquery's database outlives it).
 */
export function storedResultsOf(worker: SimWorker | null): Set<string> {
  return new Set(Object.entries(worker?.queries ?? {}).flatMap(([name, q]) => (q.hasResults ? [name] : [])));
}

/**
 * The watchdog kills the worker while it runs `query`: the next worker starts with counters at zero and
 * that query denylisted for 24 h of osquery time (osquery: the executing query is recorded before each
 * run and denylisted on the next start), unless the query says `denylist: false`. Without a query, a plain
 * restart.
 */
export function restartWorker(osqueryd: SimOsqueryd, now: Date, query?: string): SimWorker | null {
  const old = osqueryd.worker;
  if (!old) return null;
  const carry: Record<string, number> = {};
  for (const [name, q] of Object.entries(old.queries))
    if (q.denylistedUntil > old.clock) carry[name] = q.denylistedUntil - old.clock;
  if (query && old.schedule.find((q) => q.name === query)?.denylist !== false) carry[query] = DENYLIST_SECONDS;
  osqueryd.worker = startWorker(old.schedule, old.configVersion, now, {
    carryDenylist: carry,
    previousPid: old.pid,
    storedResults: storedResultsOf(old),
    osqueryVersion: old.osqueryVersion,
    decorations: old.decorations,
  });
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
  query(name: string): QueryCost & { denylisted: boolean; outputSet: boolean } & QueryVolume;
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
      const layer = (k: keyof QueryCost | keyof QueryVolume) =>
        layers.find((p) => p.queries?.[name]?.[k] != null)?.queries?.[name]?.[k] ?? undefined;
      return {
        userMs: layer('userMs') ?? base.userMs,
        systemMs: layer('systemMs') ?? base.systemMs,
        outputBytes: layer('outputBytes') ?? base.outputBytes,
        // Set by a profile: osquery_schedule reports it as given; otherwise it is the rows' own bytes.
        outputSet: layer('outputBytes') !== undefined,
        churnPerHour: layer('churnPerHour') ?? null,
        rowBytes: layer('rowBytes') ?? null,
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

/** The VM's syslog as this round's osqueryd sees it (syslog.ts). */
export interface SyslogFeed {
  /** Lines osqueryd ingested since the last round: their CPU is the worker's. */
  ingested: number;
  /** What a syslog_events query reads now (the buffer since its last run). */
  read(): SyslogRow[];
}

/** One log line as the shipper publishes it: the line, and its routing attributes (docs/heartbeat.md). */
export interface ShippedLine {
  line: Json;
  attributes: { log_type: 'result' | 'snapshot'; [QUERY_NAME_ATTRIBUTE]: string };
}

const jitter = (random: () => number, spread = 0.2) => 1 - spread + 2 * spread * random();
const ticks = (ms: number) => Math.floor(ms / 10) * 10;
const mb = (n: number) => Math.round(n / 4096) * 4096;

function envelope(host: LineHost, name: string, now: Date, action: string, decorations: Record<string, string> = {}) {
  return {
    name,
    hostIdentifier: host.name,
    calendarTime: now.toUTCString(),
    unixTime: Math.floor(now.getTime() / 1000),
    epoch: 0,
    counter: 0,
    numerics: false,
    decorations: { host_uuid: `uuid-${host.id}`, hostname: host.name, ...decorations },
    action,
  };
}

/** The heartbeat's snapshot line: the worker's own row of processes joined to osquery_info. */
export function heartbeatLine(host: LineHost, worker: SimWorker, rssBytes: number, now: Date): Json {
  const userMs = ticks(worker.cpuMs * 0.7);
  return {
    ...envelope(host, HEARTBEAT_QUERY, now, 'snapshot', worker.decorations),
    snapshot: [
      {
        heartbeat_at: String(Math.floor(now.getTime() / 1000)),
        osquery_version: worker.osqueryVersion,
        config_hash: worker.configVersion ?? 'unknown',
        // A worker that could not read its configuration runs the fallback schedule: osquery says invalid.
        config_valid: worker.schedule === FALLBACK_SCHEDULE ? '0' : '1',
        watcher: worker.unwatched ? '-1' : String(worker.pid - 1),
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
    ...envelope(host, SCHEDULE_QUERY, now, 'snapshot', worker.decorations),
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

/** A row as the query returns it: its value (padded to `rowBytes` when a profile makes rows larger) and host. */
const rowOf = (host: LineHost, q: SimQuery, id: number, rowBytes: number | null = null) => {
  const value = `${q.name}-row-${id}`;
  return { value: rowBytes && rowBytes > value.length ? value.padEnd(rowBytes, '.') : value, host: host.name };
};

/** osquery_schedule's output_size of one run: column names plus values of every row it returned. */
const returnedBytes = (host: LineHost, q: SimQuery, s: QueryState, rowBytes: number | null) =>
  rowIds(s.nextRow - s.rows, s.rows).reduce((n, i) => n + rowSize(rowOf(host, q, i, rowBytes)), 0);

/**
 * The lines one run of a query logs (osquery's event format): a snapshot query one line with every row;
 * a differential query every row as `added` on its first run on the host, then one line per changed row
 * (about `churnPerHour` per hour of its interval; `removed` lines only if the query logs removals).
 */
function resultLines(
  host: LineHost,
  q: SimQuery,
  s: QueryState,
  now: Date,
  random: () => number,
  decorations: Record<string, string>,
  volume: QueryVolume = { churnPerHour: null, rowBytes: null },
): Json[] {
  const row = (id: number) => rowOf(host, q, id, volume.rowBytes);
  const envelopeOf = (action: string) => envelope(host, q.name, now, action, decorations);
  if (q.snapshot) return [{ ...envelopeOf('snapshot'), snapshot: rowIds(0, s.rows).map(row) }];
  if (!s.hasResults) {
    s.hasResults = true;
    return rowIds(s.nextRow - s.rows, s.rows).map((i) => ({
      ...envelopeOf('added'),
      columns: row(i),
    }));
  }
  const changes = changedRows(((volume.churnPerHour ?? s.churnPerHour) * q.interval) / 3600, random);
  const lines: Json[] = [];
  for (let c = 0; c < changes; c++) {
    // A removal retires the oldest row; an addition (or any change of a query that does not log removals) is a new row.
    const removal = q.removed && s.rows > 0 && random() < 0.5;
    const id = removal ? s.nextRow - s.rows : s.nextRow++;
    if (removal) s.rows -= 1;
    else if (q.removed) s.rows += 1;
    lines.push({ ...envelopeOf(removal ? 'removed' : 'added'), columns: row(id) });
  }
  return lines;
}

const rowSize = (row: object) =>
  Object.entries(row as Record<string, string>).reduce((n, [k, v]) => n + k.length + v.length, 0);

const rowIds = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/**
 * One round of a VM's osqueryd: the worker's CPU counters advance over the real seconds since the last
 * round, osquery time advances one heartbeat interval, every due query that is not denylisted runs, and
 * the lines it writes are returned (the heartbeat, the schedule snapshot when it runs, other queries'
 * results: see resultLines).
 */
export function runRound(
  host: LineHost,
  worker: SimWorker,
  costs: ResolvedCosts,
  now: Date,
  random: () => number = Math.random,
  syslog?: SyslogFeed,
): ShippedLine[] {
  const second = Math.floor(now.getTime() / 1000);
  if (second > worker.advancedTo) {
    worker.cpuMs += (costs.cpuPercent / 100) * (second - worker.advancedTo) * 1000;
    worker.advancedTo = second;
  }
  worker.cpuMs += (syslog?.ingested ?? 0) * SYSLOG_COSTS.ingestMsPerLine;
  worker.clock += ROUND_SECONDS;
  const rss = mb(costs.rssBytes * jitter(random, 0.02)) + worker.syslogPeakRows * SYSLOG_COSTS.rssBytesPerRow;
  const lines: ShippedLine[] = [];
  for (const q of worker.schedule) {
    const s = worker.queries[q.name]!;
    if (s.nextRun > worker.clock) continue;
    while (s.nextRun <= worker.clock) s.nextRun += q.interval;
    if (isDenylisted(worker, q.name, costs)) continue;
    const cost = costs.query(q.name);
    s.executions += 1;
    s.lastExecuted = second;
    const rows = q.readsSyslog ? (syslog?.read() ?? []) : null;
    // A syslog query costs its rows: reading each back and writing its result line.
    const readMs = (rows?.length ?? 0) * SYSLOG_COSTS.readMsPerLine;
    const user = ticks(cost.userMs * jitter(random) + readMs * 0.7);
    const system = ticks(cost.systemMs * jitter(random) + readMs * 0.3);
    worker.cpuMs += readMs;
    s.userMs += user;
    s.systemMs += system;
    s.wallMs += Math.round((user + system) * 1.3) + 1;
    // osquery_schedule's output_size: column names and values of every row returned (none: nothing),
    // before the differential; a profile's outputBytes, or the built-in size of osquery's own tables, as given.
    const ordinary = !rows && q.name !== HEARTBEAT_QUERY && q.name !== SCHEDULE_QUERY && !cost.outputSet;
    if (!ordinary)
      s.outputBytes += rows ? rows.reduce((n, r) => n + rowSize(r), 0) : Math.round(cost.outputBytes * jitter(random));
    const log_type = q.snapshot ? 'snapshot' : 'result';
    if (rows) {
      worker.syslogPeakRows = Math.max(worker.syslogPeakRows, rows.length);
      for (const row of rows)
        lines.push({
          line: { ...envelope(host, q.name, now, 'added', worker.decorations), columns: row },
          attributes: { log_type, osquery_name: q.name },
        });
    } else if (q.name === HEARTBEAT_QUERY)
      lines.push({ line: heartbeatLine(host, worker, rss, now), attributes: { log_type, osquery_name: q.name } });
    else if (q.name === SCHEDULE_QUERY)
      lines.push({ line: scheduleLine(host, worker, costs, now), attributes: { log_type, osquery_name: q.name } });
    else {
      for (const line of resultLines(host, q, s, now, random, worker.decorations, cost))
        lines.push({ line, attributes: { log_type, osquery_name: q.name } });
      // After the run: the rows it returned are the ones it holds now.
      if (ordinary) s.outputBytes += returnedBytes(host, q, s, cost.rowBytes);
    }
  }
  return lines;
}
