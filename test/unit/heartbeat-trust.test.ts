// The trust boundary of the log topic (pure): what a VM can send and what is checked before it reaches a
// host record, queryStats or an alert (shared/domain/trust.ts, issue 20).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { newestOf, parseLogLines } from '../../shared/domain/heartbeat.js';
import { scheduleSnapshotOf, workerSampleOf } from '../../shared/domain/telemetry/log-lines.js';
import { scheduleStep } from '../../shared/domain/telemetry/query-cost.js';
import { addIncrements, type QueryStatsIncrement } from '../../shared/domain/telemetry/query-stats.js';
import {
  inWindow,
  MAX_AGE_MS,
  MAX_FUTURE_MS,
  MAX_QUERIES_PER_SNAPSHOT,
  MAX_QUERY_NAME_BYTES,
  queryNameProblem,
  timeWindow,
  type Rejections,
} from '../../shared/domain/trust.js';
import { HEARTBEAT_QUERY, SCHEDULE_QUERY } from '../../shared/osquery/log-routing.js';

const t = suite('the trust boundary: values from VMs (pure)');
const now = Date.parse('2026-11-27T12:00:00Z');
const s = (ms: number) => Math.floor(ms / 1000);
const window = timeWindow(now);

const heartbeat = (row: Record<string, string>, at = now) => ({
  name: HEARTBEAT_QUERY,
  unixTime: s(at),
  action: 'snapshot',
  snapshot: [
    {
      heartbeat_at: String(s(at)),
      pid: '4242',
      start_time: String(s(at) - 3600),
      user_time: '1500',
      system_time: '700',
      resident_size: '52428800',
      ...row,
    },
  ],
});

const schedule = (rows: Array<Record<string, string>>, at = now) => ({
  name: SCHEDULE_QUERY,
  unixTime: s(at),
  action: 'snapshot',
  snapshot: rows.map((r) => ({
    interval: '3600',
    executions: '4',
    output_size: '100',
    wall_time_ms: '10',
    user_time: '8',
    system_time: '2',
    denylisted: '0',
    worker_pid: '4242',
    worker_start_time: String(s(at) - 3600),
    ...r,
  })),
});

t('times: within five minutes ahead of now and 35 days behind it, and storable', () => {
  assert.ok(inWindow(now + MAX_FUTURE_MS, window) && inWindow(now - MAX_AGE_MS, window));
  assert.not.ok(inWindow(now + MAX_FUTURE_MS + 1, window));
  assert.not.ok(inWindow(now - MAX_AGE_MS - 1, window));
  for (const bad of [NaN, Infinity, -1, 0, 1e23]) assert.not.ok(inWindow(bad, window), String(bad));
});

t('query names: at most 256 UTF-8 bytes, well-formed, not reserved by Firestore', () => {
  assert.is(queryNameProblem('pack_network_listening_ports'), null);
  assert.is(queryNameProblem('pack_x.y/z%'), null, 'dots and slashes are fine (escaped in ids, quoted in paths)');
  assert.is(queryNameProblem('q'.repeat(MAX_QUERY_NAME_BYTES)), null);
  assert.is(queryNameProblem('q'.repeat(MAX_QUERY_NAME_BYTES + 1)), 'too-long');
  assert.is(queryNameProblem('é'.repeat(MAX_QUERY_NAME_BYTES / 2 + 1)), 'too-long', 'bytes, not characters');
  assert.is(queryNameProblem('x'.repeat(2000)), 'too-long');
  for (const name of ['__x__', '____', '__proto__', '__name__']) assert.is(queryNameProblem(name), 'reserved', name);
  assert.is(queryNameProblem('__x'), null);
  assert.is(queryNameProblem(JSON.parse('"a\\ud800b"') as string), 'not-unicode');
  assert.is(queryNameProblem(''), 'empty');
});

t('a heartbeat whose heartbeat_at is huge, negative or old: the line counts, its sample does not', () => {
  // What osqueryd runs rides along (test/unit/drift.test.ts checks it).
  const { running: _running, ...good } = workerSampleOf(heartbeat({}), window)!;
  assert.equal(good, { pid: 4242, startTime: s(now) - 3600, userMs: 1500, systemMs: 700, rssBytes: 52428800, at: now });
  for (const at of ['99999999999999999999', '-5', '0', String(s(now - MAX_AGE_MS) - 1), String(s(now) + 3600)]) {
    const rejected: Rejections = {};
    assert.is(workerSampleOf(heartbeat({ heartbeat_at: at }), window, rejected), null, at);
    assert.equal(rejected, { 'telemetry-time': 1 }, at);
  }
  const parsed = parseLogLines(JSON.stringify(heartbeat({ heartbeat_at: '99999999999999999999' })), now);
  assert.equal(
    { newest: parsed.newest, lines: parsed.lines, telemetry: parsed.telemetry, rejected: parsed.rejected },
    { newest: now, lines: 1, telemetry: [], rejected: { 'telemetry-time': 1 } },
  );
});

t('a heartbeat with a pid, start time or counter osquery cannot report gives no sample', () => {
  for (const row of <Array<Record<string, string>>>[
    { pid: '0' },
    { pid: '1.5' },
    { pid: String(2 ** 32) },
    { start_time: String(s(now) + 3600) },
    { start_time: '-1' },
    { user_time: '1'.padEnd(400, '0') },
    { system_time: '-3' },
    { resident_size: String(2 ** 60) },
  ]) {
    const rejected: Rejections = {};
    assert.is(workerSampleOf(heartbeat(row), window, rejected), null, JSON.stringify(row));
    assert.equal(rejected, { 'heartbeat-value': 1 }, JSON.stringify(row));
  }
  const older = heartbeat({});
  delete (older.snapshot[0] as Record<string, string>).start_time;
  const rejected: Rejections = {};
  assert.is(workerSampleOf(older, window, rejected), null, 'an older bundle: no worker columns');
  assert.equal(rejected, {}, 'nothing wrong with it');
});

t('a schedule snapshot: bad rows are left out with their reason; a huge time or too many rows drop it all', () => {
  const rejected: Rejections = {};
  const snap = scheduleSnapshotOf(
    schedule([
      { name: 'pack_good' },
      { name: 'x'.repeat(2000) },
      { name: '__x__' },
      { name: 'pack_infinite', user_time: '9'.repeat(400) },
      { name: 'pack_huge', executions: String(2 ** 60) },
      { name: 'pack_interval', interval: '99999999' },
    ]),
    window,
    rejected,
  );
  assert.equal(Object.keys(snap!.queries), ['pack_good']);
  assert.equal(snap!.worker, { pid: 4242, startTime: s(now) - 3600 });
  assert.equal(rejected, { 'query-name': 2, 'query-value': 3 });

  const late: Rejections = {};
  const line = { ...schedule([{ name: 'pack_good' }]), unixTime: '99999999999999999999' };
  assert.is(scheduleSnapshotOf(line, window, late), null);
  assert.equal(late, { 'telemetry-time': 1 });

  const many: Rejections = {};
  const rows = Array.from({ length: MAX_QUERIES_PER_SNAPSHOT + 1 }, (_, i) => ({ name: `pack_q${i}` }));
  assert.is(scheduleSnapshotOf(schedule(rows), window, many), null);
  assert.equal(many, { 'schedule-too-many-queries': 1 });
  assert.ok(scheduleSnapshotOf(schedule(rows.slice(1)), window), 'the maximum itself is fine');

  const noWorker = scheduleSnapshotOf(schedule([{ name: 'pack_good', worker_start_time: '99999999999999999999' }]));
  assert.is(noWorker!.worker, null, 'a worker that starts in the future is not one');
});

t('a query named like an Object.prototype member is measured against its own baseline only', () => {
  const at = new Date(now - 3_600_000);
  const baseline = { at, worker: { pid: 4242, startTime: s(now) - 7200 }, queries: {} };
  const snap = scheduleSnapshotOf(
    schedule([
      { name: 'constructor', worker_start_time: String(s(now) - 7200) },
      { name: 'toString', worker_start_time: String(s(now) - 7200) },
    ]),
  )!;
  const step = scheduleStep(baseline, snap);
  assert.is(step.kind, 'interval');
  assert.equal(
    step.deltas.map((d) => [d.query, d.executions, d.userMs]),
    [
      ['constructor', 4, 8],
      ['toString', 4, 8],
    ],
  );
});

t('an instance keeps at most the newest telemetry of a host', () => {
  const items = [5, 1, 4, 2, 3].map((at) => ({ at }));
  assert.equal(
    newestOf(items, 3).map((x) => x.at),
    [5, 4, 3],
  );
  assert.equal(newestOf(items, 9), items);
});

t('the queryStats buffer is bounded: increments for documents beyond it are refused and counted', () => {
  const inc = (id: string): QueryStatsIncrement => ({
    id,
    configVersion: 'v1',
    query: id,
    interval: 3600,
    increments: { 'windows.h2026112712.snapshots': 1 },
  });
  const buffer = new Map<string, QueryStatsIncrement>();
  assert.is(addIncrements(buffer, [inc('a'), inc('b')], 2), 0);
  assert.is(addIncrements(buffer, [inc('a'), inc('c'), inc('d')], 2), 2, 'c and d refused');
  assert.equal([...buffer.keys()], ['a', 'b']);
  assert.is(buffer.get('a')!.increments['windows.h2026112712.snapshots'], 2, 'a document already held still adds up');
});

t.run();
