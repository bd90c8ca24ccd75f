// The terminal tables of osquery's cost (pure): the queries of a configuration version by cost, and the
// hosts where osqueryd costs most. `osq-orch queries` and `osq-orch hosts --top` print them.
import type { QuerySummary } from '../shared/domain/telemetry/query-stats.js';
import { byCost, type HostCost } from '../shared/domain/telemetry/cost-status.js';

export { byCost, type HostCost };

interface Column<T> {
  title: string;
  value: (row: T) => string;
  align?: 'left' | 'right';
}

/** Plain text table: a header, a rule, one line per row; columns as wide as their widest cell. */
export function formatTable<T>(rows: T[], columns: Array<Column<T>>): string {
  const cells = rows.map((r) => columns.map((c) => c.value(r)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i]!.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u += 1;
  }
  return u === 0 ? `${Math.round(n)} B` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[u]}`;
}

/** 300 -> 5m, 3600 -> 1h, 86400 -> 1d, 90 -> 90s. */
export function formatInterval(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3_600 === 0) return `${seconds / 3_600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

const ms = (v: number | null) => (v === null ? '-' : v < 10 ? v.toFixed(1) : String(Math.round(v)));
const rate = (v: number) => (v === 0 ? '0' : v < 10 ? v.toFixed(1) : String(Math.round(v)));

/** A query's log volume and its projected monthly cost, for the queries table (by `{configVersion}~{query}`). */
export interface VolumeColumns {
  shippedBytesPerHostDay: number | null;
  usdPerMonth: number | null;
}

const usd = (v: number | null) => (v === null ? '-' : v < 10 ? `$${v.toFixed(2)}` : `$${Math.round(v)}`);

/**
 * Every query of a version: schedule, CPU ms per execution at p50/p95 across hosts, executions and output per
 * hour, denylisted hosts, class; with `volumes`, the bytes shipped per host and day and the fleet's monthly cost.
 */
export function formatQueriesTable(rows: QuerySummary[], volumes?: ReadonlyMap<string, VolumeColumns>): string {
  const volume = (r: QuerySummary) => volumes?.get(`${r.configVersion}~${r.query}`);
  // Rows of several configuration versions (osq-orch queries --version all, the status snapshot) name theirs.
  const versions = new Set(rows.map((r) => r.configVersion)).size > 1;
  return formatTable([...rows].sort(byCost), [
    { title: 'query', value: (r) => r.query },
    ...(versions ? [{ title: 'version', value: (r: QuerySummary) => r.configVersion }] : []),
    { title: 'every', value: (r) => formatInterval(r.interval), align: 'right' },
    { title: 'cpu p50 ms', value: (r) => ms(r.cpuP50), align: 'right' },
    { title: 'cpu p95 ms', value: (r) => ms(r.cpuP95), align: 'right' },
    { title: 'runs/h', value: (r) => rate(r.executionsPerHour), align: 'right' },
    { title: 'output/h', value: (r) => formatBytes(r.outputBytesPerHour), align: 'right' },
    { title: 'hosts', value: (r) => String(r.hosts), align: 'right' },
    {
      title: 'denylisted',
      value: (r) => (r.denylistedHosts > 0 ? String(Math.ceil(r.denylistedHosts)) : '-'),
      align: 'right',
    },
    ...(volumes
      ? [
          {
            title: 'shipped/host/day',
            value: (r: QuerySummary) => {
              const b = volume(r)?.shippedBytesPerHostDay ?? null;
              return b === null ? '-' : formatBytes(b);
            },
            align: 'right' as const,
          },
          {
            title: 'logs $/month',
            value: (r: QuerySummary) => usd(volume(r)?.usdPerMonth ?? null),
            align: 'right' as const,
          },
        ]
      : []),
    // The class last: the column a reader scans for.
    { title: 'class', value: (r) => r.class },
  ]);
}

/** The n hosts where osqueryd costs most by CPU (unmeasured last) or by memory. */
export function topHosts(hosts: HostCost[], by: 'cpu' | 'memory', n = 20): HostCost[] {
  const key = (h: HostCost) => (by === 'cpu' ? (h.cpuPercent ?? -1) : h.rssBytes);
  return [...hosts].sort((a, b) => key(b) - key(a) || a.name.localeCompare(b.name)).slice(0, n);
}

export function formatHostsTable(hosts: HostCost[], by: 'cpu' | 'memory', n = 20, now = new Date()): string {
  const age = (at: Date) => {
    const s = Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));
    return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
  };
  return formatTable(topHosts(hosts, by, n), [
    { title: 'host', value: (h) => `${h.project}/${h.zone}/${h.name}` },
    { title: 'cpu %', value: (h) => (h.cpuPercent === null ? '-' : h.cpuPercent.toFixed(1)), align: 'right' },
    { title: 'memory', value: (h) => formatBytes(h.rssBytes), align: 'right' },
    { title: 'version', value: (h) => h.configVersion ?? '-' },
    { title: 'seen', value: (h) => age(h.at), align: 'right' },
    { title: 'alert', value: (h) => (h.alerting ? 'host.performance' : '') },
  ]);
}
