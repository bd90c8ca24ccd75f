// The top queries / top hosts tables (cli/telemetry-tables.ts), pure.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  formatBytes,
  formatHostsTable,
  formatInterval,
  formatQueriesTable,
  topHosts,
  type HostCost,
} from '../../cli/telemetry-tables.js';
import type { QuerySummary } from '../../shared/domain/telemetry/query-stats.js';

const t = suite('telemetry tables');

const summary = (query: string, cpuP50: number | null, cpuP95: number | null, extra: Partial<QuerySummary> = {}) =>
  ({
    configVersion: 'v1',
    query,
    interval: 3600,
    hours: 1,
    hosts: cpuP50 === null ? 0 : 10,
    samples: cpuP50 === null ? 0 : 10,
    executionsPerHostHour: 1,
    outputBytesPerHostHour: 204.8,
    executionsPerHour: 10,
    outputBytesPerHour: 2048,
    userP50: cpuP50,
    userP95: cpuP95,
    systemP50: cpuP50 === null ? null : 0,
    systemP95: cpuP95 === null ? null : 0,
    cpuP50,
    cpuP95,
    denylistedHosts: 0,
    class: cpuP50 === null ? 'undetermined' : cpuP50 < 2000 ? 'minimal' : cpuP50 < 4000 ? 'considerable' : 'excessive',
    ...extra,
  }) satisfies QuerySummary;

t('queries: most expensive first, never-run last, every column', () => {
  const out = formatQueriesTable([
    summary('pack_cheap', 3, 8),
    summary('pack_never', null, null, { executionsPerHour: 0, outputBytesPerHour: 0 }),
    summary('heartbeat', 4.25, 6, { interval: 300, executionsPerHour: 120, outputBytesPerHour: 300 }),
    summary('pack_heavy', 2500, 5200, { denylistedHosts: 2 }),
  ]).split('\n');
  assert.equal(
    out.map((l) => l.split(/\s+/)[0]),
    ['query', '----------', 'pack_heavy', 'pack_cheap', 'heartbeat', 'pack_never'],
  );
  assert.equal(out[0]!.split(/\s{2,}/), [
    'query',
    'every',
    'cpu p50 ms',
    'cpu p95 ms',
    'runs/h',
    'output/h',
    'hosts',
    'denylisted',
    'class',
  ]);
  assert.equal(out[2]!.split(/\s{2,}/), [
    'pack_heavy',
    '1h',
    '2500',
    '5200',
    '10',
    '2.0 KiB',
    '10',
    '2',
    'considerable',
  ]);
  assert.equal(out[4]!.split(/\s{2,}/), ['heartbeat', '5m', '4.3', '6.0', '120', '300 B', '10', '-', 'minimal']);
  assert.equal(out[5]!.split(/\s{2,}/), ['pack_never', '1h', '-', '-', '0', '0 B', '0', '-', 'undetermined']);
});

t('hosts: top n by CPU (unmeasured last) or memory', () => {
  const now = new Date('2026-11-27T12:00:00Z');
  const host = (name: string, cpuPercent: number | null, rssBytes: number, alerting = false): HostCost => ({
    instanceId: name,
    name,
    project: 'p',
    zone: 'z',
    configVersion: 'v1',
    cpuPercent,
    rssBytes,
    at: new Date(now.getTime() - 90_000),
    alerting,
  });
  const hosts = [host('a', 2, 50e6), host('b', null, 400e6), host('c', 31.25, 60e6, true), host('d', 5, 45e6)];
  assert.equal(
    topHosts(hosts, 'cpu', 3).map((h) => h.name),
    ['c', 'd', 'a'],
  );
  assert.equal(
    topHosts(hosts, 'memory', 2).map((h) => h.name),
    ['b', 'c'],
  );
  const lines = formatHostsTable(hosts, 'cpu', 20, now).split('\n');
  assert.equal(lines[2]!.split(/\s{2,}/), ['p/z/c', '31.3', '57 MiB', 'v1', '90s', 'host.performance']);
  assert.equal(lines[5]!.split(/\s{2,}/), ['p/z/b', '-', '381 MiB', 'v1', '90s']);
});

t('units', () => {
  assert.equal([0, 1023, 1024, 1536, 10 * 1024 * 1024, 5 * 1024 ** 3].map(formatBytes), [
    '0 B',
    '1023 B',
    '1.0 KiB',
    '1.5 KiB',
    '10 MiB',
    '5.0 GiB',
  ]);
  assert.equal([300, 3600, 86400, 90, 5400, null].map(formatInterval), ['5m', '1h', '1d', '90s', '90m', '-']);
});

t.run();
