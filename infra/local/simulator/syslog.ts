// Syslog on a simulated VM: rsyslog (started at boot where the image ships it, or when the OS policy
// installs it), the pipe osqueryd creates when it starts with syslog ingestion on, the messages the VM's
// programs log, and osqueryd's syslog_events buffer that the scheduled query drains.
//
// What the model keeps from the real thing: rsyslog opens its ompipe target only when it starts, and only
// if the pipe exists then (a VM whose rsyslog started before osqueryd created the pipe ingests nothing until
// rsyslog restarts); osqueryd reads at most --syslog_rate_limit lines per run of its publisher, a run every
// 200 ms at best (osquery/events/eventfactory.cpp:405), the rest is dropped at the pipe; the buffer keeps
// rows --syslog_events_expiry seconds and --syslog_events_max seconds with events (osquery.flags explains
// both); a query reads what arrived since its last run. Costs (CPU per line, memory per row a run holds)
// are estimates, not measurements: SYSLOG_COSTS.
import { rsyslogPipesOf, syslogPipeOf } from '../../../shared/osquery/events.js';
import { effectiveFlags } from '../../../shared/osquery/flags.js';
import { parseOsqueryJson } from '../../../shared/osquery/lint.js';
import type { SimOs } from './world.js';

/** Images that ship rsyslog and start it at boot (Debian 12's do not: the OS policy installs it). */
export const RSYSLOG_AT_BOOT: ReadonlySet<SimOs> = new Set(['ubuntu-2204', 'rhel-9', 'rocky-9']);

/**
 * What ingesting syslog costs osqueryd, per line: parsing the CSV line and writing the row to osquery's
 * database when it arrives, reading it back and writing its result line when the query runs; and the
 * memory a query run holds per row (its results before they are logged). Estimates for a typical
 * Compute Engine vCPU, not measurements.
 */
export const SYSLOG_COSTS = { ingestMsPerLine: 0.04, readMsPerLine: 0.06, rssBytesPerRow: 1024 };

/** osquery's defaults (syslog.cpp:45-48, syslog_events.cpp:21-29). */
const DEFAULT_RATE_LIMIT = 100;
const DEFAULT_EXPIRY = 30 * 86_400;
const DEFAULT_MAX = 100_000;
/** The publisher runs at most every 200 ms (eventfactory.cpp:405). */
const RUNS_PER_SECOND = 5;

export interface SyslogRow {
  time: string;
  datetime: string;
  host: string;
  severity: string;
  facility: string;
  tag: string;
  message: string;
}

/** Rows osqueryd buffered: logged messages (rows), or a steady load's lines (counted, made when read). */
interface Bucket {
  /** Seconds since the epoch the bucket covers, [from, to]. */
  from: number;
  to: number;
  count: number;
  rows?: SyslogRow[];
}

export interface SimSyslog {
  rsyslog: {
    running: boolean;
    /** The pipe rsyslog opened when it last started; null: none (no rule, or no pipe then). */
    pipe: string | null;
    /** Restarts by the OS policy's rsyslog-reads-pipe resource. */
    restarts: number;
    /** The configuration version it was restarted for (the policy's marker file). */
    marker: string | null;
  };
  /** rsyslog rules placed under /etc/rsyslog.d/, path -> text. */
  rules: Record<string, string>;
  /** Pipes osqueryd created on this VM (a FIFO stays on disk). */
  pipes: string[];
  /** A steady load: lines a second the VM's programs log (0: only what is written through the control API). */
  linesPerSecond: number;
  /** Second up to which the steady load has been offered. */
  loadTo: number | null;
  buffer: Bucket[];
  /** Lines per second of the current second, for the rate limit: [second, count]. */
  second: [number, number];
  /** Lines ingested whose CPU no worker has counted yet (the next round of osqueryd counts them). */
  unbilled: number;
  /** Totals: lines osqueryd ingested, lines that reached no reader or exceeded the rate limit, rows read. */
  ingested: number;
  dropped: number;
  read: number;
}

export function newSyslog(os: SimOs): SimSyslog {
  return {
    rsyslog: { running: RSYSLOG_AT_BOOT.has(os), pipe: null, restarts: 0, marker: null },
    rules: {},
    pipes: [],
    linesPerSecond: 0,
    loadTo: null,
    buffer: [],
    second: [0, 0],
    unbilled: 0,
    ingested: 0,
    dropped: 0,
    read: 0,
  };
}

/** osqueryd's syslog settings from the files the policy placed; null when it ingests no syslog. */
export interface SyslogSettings {
  pipe: string;
  /** Lines a second the publisher reads at most. */
  perSecond: number;
  expirySeconds: number;
  maxSeconds: number;
}

export function syslogSettingsOf(files: Record<string, string>): SyslogSettings | null {
  let options: Record<string, unknown> = {};
  try {
    const conf = parseOsqueryJson(files['/etc/osquery/osquery.conf'] ?? '{}') as { options?: unknown };
    if (typeof conf.options === 'object' && conf.options !== null) options = conf.options as Record<string, unknown>;
  } catch {
    // osqueryd keeps its flagfile's values
  }
  const flags = effectiveFlags(files['/etc/osquery/osquery.flags'] ?? '', options);
  const pipe = syslogPipeOf(flags);
  if (!pipe) return null;
  const num = (name: string, fallback: number) => {
    const text = flags.text(name)?.trim();
    return text && /^\d+$/.test(text) ? Number(text) : fallback;
  };
  return {
    pipe,
    perSecond: num('syslog_rate_limit', DEFAULT_RATE_LIMIT) * RUNS_PER_SECOND,
    expirySeconds: num('syslog_events_expiry', DEFAULT_EXPIRY),
    maxSeconds: num('syslog_events_max', DEFAULT_MAX),
  };
}

/** (Re)starts rsyslog: it reads its rules and opens each rule's pipe that exists now. */
export function startRsyslog(syslog: SimSyslog): void {
  syslog.rsyslog.running = true;
  const targets = Object.values(syslog.rules).flatMap(rsyslogPipesOf);
  syslog.rsyslog.pipe = targets.find((p) => syslog.pipes.includes(p)) ?? null;
}

/** osqueryd started with these settings: it creates its pipe if there is none (syslog.cpp:147-153). */
export function osquerydStarted(syslog: SimSyslog, settings: SyslogSettings | null): void {
  if (settings && !syslog.pipes.includes(settings.pipe)) syslog.pipes.push(settings.pipe);
}

/** Whether a line logged now reaches osqueryd: rsyslog runs with the pipe open, and osqueryd reads that pipe. */
export const connected = (syslog: SimSyslog, reader: SyslogSettings | null) =>
  syslog.rsyslog.running && syslog.rsyslog.pipe !== null && reader?.pipe === syslog.rsyslog.pipe;

/** Drops what the buffer no longer keeps at `second`: older than the expiry, or beyond the newest max seconds. */
function trim(syslog: SimSyslog, settings: SyslogSettings, second: number): void {
  const newest = syslog.buffer.at(-1)?.to ?? second;
  const cutoff = Math.max(second - settings.expirySeconds, newest - settings.maxSeconds + 1);
  const kept: Bucket[] = [];
  for (const b of syslog.buffer) {
    if (b.to < cutoff) continue;
    if (b.from < cutoff && !b.rows) {
      // A steady load's bucket spans its seconds evenly.
      b.count = Math.round((b.count * (b.to - cutoff + 1)) / (b.to - b.from + 1));
      b.from = cutoff;
    }
    kept.push(b);
  }
  syslog.buffer = kept;
}

/**
 * Messages logged on the VM at `at`: through rsyslog into osqueryd's buffer when connected, within the rate
 * limit of their second; the rest dropped. Returns how many osqueryd ingested.
 */
export function logMessages(
  syslog: SimSyslog,
  reader: SyslogSettings | null,
  host: string,
  messages: Array<Partial<Omit<SyslogRow, 'time' | 'datetime' | 'host'>> & { message: string }>,
  at: Date,
): number {
  const second = Math.floor(at.getTime() / 1000);
  if (!connected(syslog, reader)) {
    syslog.dropped += messages.length;
    return 0;
  }
  if (syslog.second[0] !== second) syslog.second = [second, 0];
  const room = Math.max(0, reader!.perSecond - syslog.second[1]);
  const taken = messages.slice(0, room);
  syslog.dropped += messages.length - taken.length;
  syslog.second[1] += taken.length;
  if (taken.length === 0) return 0;
  const datetime = new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const rows = taken.map((m) => ({
    time: String(second),
    datetime,
    host,
    severity: m.severity ?? '6',
    facility: m.facility ?? 'user',
    tag: m.tag ?? 'logger',
    message: m.message,
  }));
  syslog.buffer.push({ from: second, to: second, count: rows.length, rows });
  syslog.ingested += rows.length;
  syslog.unbilled += rows.length;
  trim(syslog, reader!, second);
  return rows.length;
}

/** The steady load up to `at`: lines offered since the last call, ingested up to the rate limit when connected. */
export function offerLoad(syslog: SimSyslog, reader: SyslogSettings | null, at: Date): number {
  const second = Math.floor(at.getTime() / 1000);
  const from = syslog.loadTo ?? second;
  syslog.loadTo = second;
  const seconds = second - from;
  if (seconds <= 0 || syslog.linesPerSecond <= 0) return 0;
  const offered = Math.round(syslog.linesPerSecond * seconds);
  if (!connected(syslog, reader)) {
    syslog.dropped += offered;
    return 0;
  }
  const ingested = Math.min(offered, reader!.perSecond * seconds);
  syslog.dropped += offered - ingested;
  syslog.ingested += ingested;
  syslog.unbilled += ingested;
  if (ingested > 0) syslog.buffer.push({ from: from + 1, to: second, count: ingested });
  trim(syslog, reader!, second);
  return ingested;
}

/** osqueryd's syslog settings on the VM while it runs (its OS policy started it), else null. */
export const readerOf = (vm: {
  status: string;
  applied: Record<string, string>;
  osqueryFiles: Record<string, string>;
}) => (vm.status === 'RUNNING' && vm.applied['osqueryd-running'] ? syslogSettingsOf(vm.osqueryFiles) : null);

/** A query reading syslog_events: every buffered row since its last run (osquery's event optimisation). */
export function readRows(syslog: SimSyslog, host: string): SyslogRow[] {
  const rows: SyslogRow[] = [];
  for (const b of syslog.buffer) {
    if (b.rows) rows.push(...b.rows);
    else
      for (let i = 0; i < b.count; i++) {
        const second = b.from + Math.floor((i * (b.to - b.from + 1)) / b.count);
        rows.push({
          time: String(second),
          datetime: new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          host,
          severity: '6',
          facility: 'daemon',
          tag: 'busy-app',
          message: `steady load line ${syslog.read + rows.length + 1}`,
        });
      }
  }
  syslog.buffer = [];
  syslog.read += rows.length;
  return rows;
}
