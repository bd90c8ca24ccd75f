// osquery's own telemetry, pure: worker samples, CPU%, host.performance decisions, schedule deltas,
// fleet statistics per (configVersion, query), classes and query alerts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  parseTelemetry,
  scheduleSnapshotOf,
  telemetryOf,
  workerSampleOf,
  type ScheduleSnapshot,
  type WorkerSample,
} from '../../shared/domain/telemetry/log-lines.js';
import {
  cpuStep,
  decideOsqueryd,
  DEFAULT_PERFORMANCE_THRESHOLDS,
  type OsquerydState,
} from '../../shared/domain/telemetry/osqueryd.js';
import { scheduleStep, type ScheduleBaseline } from '../../shared/domain/telemetry/query-cost.js';
import {
  addIncrements,
  bucketValue,
  classify,
  costBucket,
  expiredWindows,
  incrementTree,
  mergeWindows,
  percentile,
  PERCENTILE_PRECISION,
  queryStatsId,
  recentWindows,
  statsIncrements,
  summarizeQuery,
  windowOf,
  type QueryStatsDoc,
  type QueryStatsIncrement,
  type QueryWindow,
} from '../../shared/domain/telemetry/query-stats.js';
import { queryAlertChanges } from '../../shared/domain/telemetry/query-alerts.js';
import { HEARTBEAT_QUERY, SCHEDULE_QUERY } from '../../shared/osquery/log-routing.js';

const t = suite('osquery telemetry (pure)');
const T0 = Date.parse('2026-11-27T12:00:00Z');
const MIN = 60_000;
const MiB = 1024 * 1024;

/** A heartbeat line as osqueryd writes it (numerics false: every column a string). */
function heartbeat(at: number, w: { pid: number; start: number; user: number; system: number; rss: number }) {
  return {
    name: HEARTBEAT_QUERY,
    hostIdentifier: 'web-1',
    calendarTime: new Date(at).toUTCString(),
    unixTime: Math.floor(at / 1000),
    epoch: 0,
    counter: 0,
    numerics: false,
    decorations: { host_uuid: 'u', hostname: 'web-1' },
    action: 'snapshot',
    snapshot: [
      {
        heartbeat_at: String(Math.floor(at / 1000)),
        osquery_version: '5.23.1',
        config_hash: 'abc',
        pid: String(w.pid),
        uuid: 'u',
        start_time: String(w.start),
        user_time: String(w.user),
        system_time: String(w.system),
        resident_size: String(w.rss),
      },
    ],
  };
}

const sample = (at: number, pid: number, user: number, system: number, rss = 40 * MiB, start = 1_700_000_000) =>
  workerSampleOf(heartbeat(at, { pid, start, user, system, rss }))!;

t('a heartbeat line gives the worker sample; other lines and older heartbeats give none', () => {
  // What osqueryd runs (osquery_info, decorations) rides along: test/unit/drift.test.ts checks it.
  const { running, ...worker } = sample(T0, 4242, 1500, 700, 52_428_800)!;
  assert.equal(worker, {
    pid: 4242,
    startTime: 1_700_000_000,
    userMs: 1500,
    systemMs: 700,
    rssBytes: 52_428_800,
    at: T0,
  });
  assert.is(running?.osqueryVersion, '5.23.1');
  const older = heartbeat(T0, { pid: 1, start: 1, user: 1, system: 1, rss: 1 });
  const row = older.snapshot[0] as Record<string, string>;
  for (const k of ['start_time', 'user_time', 'system_time', 'resident_size']) delete row[k];
  assert.is(workerSampleOf(older), null, 'a heartbeat of the previous bundle carries no worker columns');
  assert.is(workerSampleOf({ name: 'pack_network_listening_ports', columns: { pid: '1' } }), null);
  assert.is(workerSampleOf('heartbeat'), null);
  assert.is(workerSampleOf({ ...older, snapshot: [] }), null, 'no processes row (osquery still writes the line)');
  const columns = {
    name: HEARTBEAT_QUERY,
    unixTime: String(T0 / 1000),
    action: 'added',
    columns: { pid: '9', start_time: '5', user_time: '10', system_time: '20', resident_size: '30' },
  };
  const { running: _running, ...fromColumns } = workerSampleOf(columns)!;
  assert.equal(
    fromColumns,
    { pid: 9, startTime: 5, userMs: 10, systemMs: 20, rssBytes: 30, at: T0 },
    'a differential line (columns) and the line time when heartbeat_at is missing',
  );
});

function scheduleLine(at: number, worker: { pid: number; start: number } | null, rows: Array<Record<string, unknown>>) {
  return {
    name: SCHEDULE_QUERY,
    unixTime: Math.floor(at / 1000),
    action: 'snapshot',
    snapshot: rows.map((r) => ({
      interval: '3600',
      denylisted: '0',
      wall_time: '0',
      average_memory: '0',
      last_executed: '0',
      ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])),
      ...(worker ? { worker_pid: String(worker.pid), worker_start_time: String(worker.start) } : {}),
    })),
  };
}

const row = (name: string, executions: number, user: number, system: number, output = 0, denylisted = 0) => ({
  name,
  executions,
  user_time: user,
  system_time: system,
  output_size: output,
  wall_time_ms: user + system,
  denylisted,
});

t('an osquery_schedule line gives every query counters and the worker; parseTelemetry reads both kinds', () => {
  const line = scheduleLine(T0, { pid: 77, start: 1_700_000_100 }, [
    row('heartbeat', 12, 120, 60),
    row('pack_users_logged_in', 1, 30, 10, 512, 0),
    row('pack_system_crontab', 0, 0, 0, 0, 1),
  ]);
  const snap = scheduleSnapshotOf(line)!;
  assert.equal(snap.worker, { pid: 77, startTime: 1_700_000_100 });
  assert.is(snap.at, T0);
  assert.equal(snap.queries.pack_users_logged_in, {
    executions: 1,
    outputBytes: 512,
    userMs: 30,
    systemMs: 10,
    wallMs: 40,
    denylisted: false,
    interval: 3600,
  });
  assert.is(snap.queries.pack_system_crontab!.denylisted, true);
  assert.is(scheduleSnapshotOf(scheduleLine(T0, null, [row('heartbeat', 1, 1, 1)]))!.worker, null);
  const data = [
    JSON.stringify(heartbeat(T0, { pid: 1, start: 2, user: 3, system: 4, rss: 5 })),
    '{broken',
    JSON.stringify({ name: 'pack_network_listening_ports', unixTime: T0 / 1000, columns: {} }),
    JSON.stringify(line),
  ].join('\n');
  assert.equal(
    parseTelemetry(data).map((x) => x.kind),
    ['heartbeat', 'schedule'],
  );
  assert.equal(
    parseTelemetry(JSON.stringify([line])).map((x) => x.kind),
    ['schedule'],
    'a JSON array',
  );
  assert.is(telemetryOf({ name: SCHEDULE_QUERY }), null, 'no time, no snapshot');
});

t('CPU% from two consecutive heartbeats: percent of one core over the interval', () => {
  const a = sample(T0, 100, 10_000, 5_000);
  // 5 minutes, 18 s user + 12 s system = 30 s of CPU: 10% of a core.
  const b = sample(T0 + 5 * MIN, 100, 28_000, 17_000);
  assert.equal(cpuStep(a, b), { kind: 'interval', cpuPercent: 10, intervalMs: 5 * MIN });
  assert.equal(cpuStep(null, a), { kind: 'first' });
});

t('CPU% across a worker restart, out-of-order delivery and counters going backwards', () => {
  const a = sample(T0, 100, 10_000, 5_000);
  const restarted = sample(T0 + 5 * MIN, 200, 300, 100, 40 * MiB, 1_700_000_999);
  assert.equal(cpuStep(a, restarted), { kind: 'restart' }, 'another pid');
  const reusedPid = sample(T0 + 5 * MIN, 100, 300, 100, 40 * MiB, 1_700_000_999);
  assert.equal(cpuStep(a, reusedPid), { kind: 'restart' }, 'the same pid, another start_time');
  const after = sample(T0 + 10 * MIN, 200, 300 + 3_000, 100 + 3_000);
  assert.equal(
    cpuStep({ ...restarted, startTime: 1_700_000_000 }, after).kind,
    'interval',
    'measured from the new worker',
  );
  assert.equal(cpuStep(restarted, after), { kind: 'restart' }, 'start_time is part of the worker identity');
  const r2 = sample(T0 + 5 * MIN, 200, 300, 100);
  const s2 = sample(T0 + 10 * MIN, 200, 3_300, 3_100);
  assert.equal(cpuStep(r2, s2), { kind: 'interval', cpuPercent: 2, intervalMs: 5 * MIN });
  assert.equal(cpuStep(s2, r2), { kind: 'stale' }, 'an older sample than the baseline is ignored');
  assert.equal(cpuStep(s2, s2), { kind: 'stale' }, 'a redelivered sample is ignored');
  assert.equal(cpuStep(a, sample(T0 + 5 * MIN, 100, 9_000, 5_000)), { kind: 'reset' }, 'counters backwards');
});

const hot = DEFAULT_PERFORMANCE_THRESHOLDS;

/** Feeds samples through decideOsqueryd as logHeartbeat would (writing `next` when there is one). */
function run(samples: WorkerSample[], start: OsquerydState | null = null) {
  let state = start;
  const events: string[] = [];
  for (const s of samples) {
    const d = decideOsqueryd(state, s, hot);
    if (d.fire) events.push(`fire@${(d.fire.since.getTime() - T0) / MIN}:${d.fire.cause}`);
    if (d.resolve) events.push(`resolve@${(d.resolve.at.getTime() - T0) / MIN}`);
    if (d.next) state = d.next;
  }
  return { state, events };
}

/** A worker at `percent` % of a core every 5 minutes from T0 (pid 100), as samples. */
function steady(percents: number[], pid = 100, rss = 40 * MiB) {
  let cpu = 0;
  return percents.map((p, i) => {
    if (i > 0) cpu += (p / 100) * 5 * MIN;
    return sample(T0 + i * 5 * MIN, pid, Math.round(cpu * 0.7), Math.round(cpu * 0.3), rss);
  });
}

t('host.performance fires on the 2nd consecutive heartbeat above 10%, resolves when it recovers', () => {
  const s = steady([0, 3, 25, 30, 28, 4, 3]);
  const { state, events } = run(s);
  assert.equal(events, ['fire@15:cpu', 'resolve@25']);
  assert.is(state!.episode, null);
  assert.is(Math.round(state!.cpuPercent! * 10) / 10, 3);
  assert.equal(run(steady([0, 25, 3, 25, 3, 25])).events, [], 'one hot interval at a time never fires');
  const first = decideOsqueryd(null, s[0]!, hot);
  assert.equal(
    { cpuPercent: first.next!.cpuPercent, cpuOver: first.next!.cpuOver, episode: first.next!.episode },
    { cpuPercent: null, cpuOver: 0, episode: null },
  );
  const fired = run(s.slice(0, 4)).state!;
  assert.equal(fired.episode, { since: new Date(T0 + 15 * MIN), cause: 'cpu' });
  assert.match(decideOsqueryd(run(s.slice(0, 3)).state, s[3]!, hot).fire!.reason, /osqueryd CPU 30% of a core on 2/);
});

t('exactly one firing and one resolved per episode under redelivery and out-of-order delivery', () => {
  const s = steady([0, 3, 25, 30, 28, 4, 3]);
  // Every heartbeat delivered twice, some late (after a newer one): stale ones change nothing.
  const deliveries = [s[0]!, s[0]!, s[1]!, s[2]!, s[1]!, s[3]!, s[3]!, s[2]!, s[4]!, s[5]!, s[4]!, s[5]!, s[6]!, s[6]!];
  const { events } = run(deliveries);
  assert.equal(events, ['fire@15:cpu', 'resolve@25']);
  // A redelivery of the firing heartbeat whose write was lost decides the same episode again (same since).
  const before = run(s.slice(0, 3)).state;
  const once = decideOsqueryd(before, s[3]!, hot);
  const again = decideOsqueryd(before, s[3]!, hot);
  assert.equal(again.fire, once.fire, 'same since, same dedup key');
  assert.is(decideOsqueryd(once.next, s[3]!, hot).next, null, 'once written, the redelivery is stale');
});

t('memory above the threshold fires on one heartbeat; a restart neither counts nor resolves CPU', () => {
  const big = steady([0, 2, 2], 100, 400 * MiB);
  assert.equal(run(big).events, ['fire@0:memory']);
  assert.match(decideOsqueryd(null, big[0]!, hot).fire!.reason, /osqueryd memory 400 MiB \(threshold 300 MiB\)/);
  const shrinks = steady([0, 2, 2, 2]).map((x, i) => ({ ...x, rssBytes: i < 3 ? 400 * MiB : 40 * MiB }));
  assert.equal(run(shrinks).events, ['fire@0:memory', 'resolve@15'], 'memory back under the threshold resolves');
  // Hot twice, then the watchdog restarts the worker: no interval, the episode stays open until a measured recovery.
  const s = steady([0, 30, 30]);
  const restarted = sample(T0 + 15 * MIN, 555, 10, 10, 40 * MiB, 1_700_009_999);
  const recovered = sample(T0 + 20 * MIN, 555, 3_010, 1_010, 40 * MiB, 1_700_009_999);
  const { state, events } = run([...s, restarted]);
  assert.equal(events, ['fire@10:cpu']);
  assert.is(state!.cpuPercent, null);
  assert.is(state!.cpuOver, 2, 'the count is carried across the restart');
  const d = decideOsqueryd(state, recovered, hot);
  assert.ok(d.resolve, `resolved at ${d.next!.cpuPercent}%`);
  // Hot once, restart, hot once: two consecutive measured intervals over, with the restart in between.
  const streak = run([
    ...steady([0, 30]),
    restarted,
    sample(T0 + 20 * MIN, 555, 60_010, 30_010, 40 * MiB, 1_700_009_999),
  ]);
  assert.equal(streak.events, ['fire@20:cpu']);
  const both = run(steady([0, 30, 30], 100, 400 * MiB));
  assert.equal(both.events, ['fire@0:memory'], 'one episode whatever else gets hot while it is open');
});

// --- Schedule deltas ---------------------------------------------------------------------------

const snap = (at: number, worker: { pid: number; start: number } | null, rows: Array<Record<string, unknown>>) =>
  scheduleSnapshotOf(scheduleLine(at, worker, rows))!;
const W1 = { pid: 10, start: 1_700_000_000 };
const W2 = { pid: 11, start: 1_700_005_000 };
const H = 3_600_000;

function apply(baseline: ScheduleBaseline | null, s: ScheduleSnapshot) {
  const step = scheduleStep(baseline, s);
  return { step, by: Object.fromEntries(step.deltas.map((d) => [d.query, d])) };
}

t('schedule deltas: per-execution costs between snapshots, a restart counts from zero, stale ones are ignored', () => {
  const s1 = snap(T0, W1, [row('heartbeat', 100, 1_000, 500), row('pack_users_logged_in', 8, 800, 160, 4_000)]);
  const first = apply(null, s1);
  assert.is(first.step.kind, 'first');
  assert.is(first.by.pack_users_logged_in!.userMsPerExecution, 100);
  const s2 = snap(T0 + H, W1, [
    row('heartbeat', 112, 1_120, 560),
    row('pack_users_logged_in', 9, 1_050, 200, 4_600),
    row('pack_new_query', 1, 40, 10, 50),
  ]);
  const second = apply(first.step.next, s2);
  assert.is(second.step.kind, 'interval');
  assert.equal(
    {
      executions: second.by.pack_users_logged_in!.executions,
      outputBytes: second.by.pack_users_logged_in!.outputBytes,
      user: second.by.pack_users_logged_in!.userMsPerExecution,
      system: second.by.pack_users_logged_in!.systemMsPerExecution,
    },
    { executions: 1, outputBytes: 600, user: 250, system: 40 },
  );
  assert.is(second.by.heartbeat!.userMsPerExecution, 10);
  assert.is(second.by.pack_new_query!.executions, 1, 'a query new to the schedule counts from zero');
  // The worker restarted (watchdog): counters are since the new worker started.
  const s3 = snap(T0 + 2 * H, W2, [row('heartbeat', 5, 60, 25), row('pack_users_logged_in', 0, 0, 0, 0, 1)]);
  const third = apply(second.step.next, s3);
  assert.is(third.step.kind, 'restart');
  assert.equal(
    [third.by.heartbeat!.executions, third.by.heartbeat!.userMsPerExecution, third.by.heartbeat!.systemMsPerExecution],
    [5, 12, 5],
  );
  assert.equal(
    [
      third.by.pack_users_logged_in!.executions,
      third.by.pack_users_logged_in!.userMsPerExecution,
      third.by.pack_users_logged_in!.denylisted,
    ],
    [0, null, true],
  );
  assert.equal(
    Object.keys(third.step.next!.queries).sort(),
    ['heartbeat', 'pack_users_logged_in'],
    'dropped queries leave the baseline',
  );
  assert.is(apply(third.step.next, s2).step.kind, 'stale', 'an older snapshot (out of order)');
  assert.is(apply(third.step.next, s3).step.next, null, 'a redelivered snapshot writes nothing');
  // Without worker columns (an older bundle), a restart shows as counters going backwards.
  const old1 = snap(T0, null, [row('heartbeat', 100, 1_000, 500)]);
  const old2 = snap(T0 + H, null, [row('heartbeat', 4, 40, 20)]);
  const back = apply(apply(null, old1).step.next, old2);
  assert.is(back.step.kind, 'restart');
  assert.is(back.by.heartbeat!.executions, 4);
});

// --- Histograms and percentiles ------------------------------------------------------------------

/** Fleet's percentile of exact values: rank floor(n p) + 1 of the sorted values. */
function exactPercentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.floor(sorted.length * p) + 1) - 1]!;
}

function histogramOf(values: number[]) {
  const h: Record<string, number> = {};
  for (const v of values) h[`b${costBucket(v)}`] = (h[`b${costBucket(v)}`] ?? 0) + 1;
  return h;
}

t('buckets: 8 per octave from 1 ms, 0 below, one for 17.5 minutes and more', () => {
  assert.equal(
    [costBucket(0), costBucket(0.99), costBucket(1), costBucket(2), costBucket(2 ** 20), costBucket(1e12)],
    [0, 0, 1, 9, 161, 161],
  );
  for (let k = 1; k < 161; k++) {
    const lo = 2 ** ((k - 1) / 8);
    const hi = 2 ** (k / 8);
    assert.is(costBucket(lo), k, `lower bound of ${k}`);
    assert.is(costBucket(hi * 0.999999), k, `upper end of ${k}`);
    assert.ok(bucketValue(k) > lo && bucketValue(k) < hi);
  }
  assert.ok(PERCENTILE_PRECISION > 0.044 && PERCENTILE_PRECISION < 0.0444, `${PERCENTILE_PRECISION}`);
});

t('p50 and p95 from the histogram are the exact percentiles within the stated precision', () => {
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const sets: number[][] = [
    [5],
    [1, 2, 3, 4],
    [0, 0, 0.4, 900, 1_500],
    Array.from({ length: 20 }, (_, i) => (i + 1) * 100),
    Array.from({ length: 1_000 }, () => Math.exp(random() * 12)), // 1 ms .. 160 s, log-uniform
    Array.from({ length: 333 }, () => random() * 50),
    Array.from({ length: 5_000 }, () => 2_000 * (1 + random())),
  ];
  for (const values of sets) {
    const h = histogramOf(values);
    for (const p of [0.5, 0.95]) {
      const exact = exactPercentile(values, p);
      const got = percentile(h, p)!;
      const ok =
        exact < 1 ? Math.abs(got - exact) <= 0.5 : Math.abs(got - exact) / exact <= PERCENTILE_PRECISION + 1e-12;
      assert.ok(ok, `p${p * 100} of ${values.length} values: exact ${exact}, read ${got}`);
    }
  }
  assert.is(percentile({}, 0.5), null);
  assert.is(percentile({ b10: 0, b3: -1 }, 0.5), null, 'counts at or below zero are empty');
  assert.is(percentile({ b10: 3, b20: -1 }, 0.95), bucketValue(10));
});

// --- Fleet statistics ----------------------------------------------------------------------------

/** What Firestore does with an update of increments (dotted paths) on a document. */
function applyTo(doc: QueryStatsDoc | undefined, inc: QueryStatsIncrement): QueryStatsDoc {
  const out: QueryStatsDoc = doc ?? {
    configVersion: inc.configVersion,
    query: inc.query,
    interval: inc.interval,
    windows: {},
  };
  for (const [path, n] of Object.entries(inc.increments)) {
    const parts = path.split('.');
    let node = out as unknown as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    const last = parts[parts.length - 1]!;
    node[last] = ((node[last] as number | undefined) ?? 0) + n;
  }
  return out;
}

/** A fleet: each host a baseline snapshot and one an hour later; hosts 0..n-1 cost `cost(i)` ms per execution. */
function fleetHour(n: number, cost: (i: number) => number, opts: { denylisted?: number[]; restarted?: number[] } = {}) {
  const increments: QueryStatsIncrement[][] = [];
  for (let i = 0; i < n; i++) {
    const w = { pid: 1000 + i, start: 1_700_000_000 };
    const base = snap(T0 - 30 * MIN, w, [row('heartbeat', 50, 500, 250), row('pack_q', 10, 10 * cost(i), 0, 1_000)]);
    const b = scheduleStep(null, base).next;
    const denied = opts.denylisted?.includes(i) ? 1 : 0;
    const restarted = opts.restarted?.includes(i);
    const now = restarted
      ? snap(T0 + 30 * MIN, { pid: 9000 + i, start: T0 / 1000 }, [
          row('heartbeat', 6, 60, 30),
          row('pack_q', 1, cost(i), 0, 100, denied),
        ])
      : snap(T0 + 30 * MIN, w, [
          row('heartbeat', 62, 620, 310),
          row('pack_q', 10 + (denied ? 0 : 1), 10 * cost(i) + (denied ? 0 : cost(i)), 0, 1_100, denied),
        ]);
    increments.push(statsIncrements(scheduleStep(b, now), 'v123'));
  }
  return increments;
}

t('fleet statistics: per-window counters from every host, one document per query, in any order', () => {
  const costs = (i: number) => (i + 1) * 150; // 150 .. 3000 ms
  const perHost = fleetHour(20, costs, { denylisted: [3, 7], restarted: [5] });
  // Two logHeartbeat instances buffer half the hosts each, then each writes once per document.
  const a = new Map<string, QueryStatsIncrement>();
  const b = new Map<string, QueryStatsIncrement>();
  perHost.forEach((incs, i) => addIncrements(i % 2 ? a : b, incs));
  assert.equal([...a.keys()].sort(), ['v123~heartbeat', 'v123~pack_q'], 'one update per (version, query)');
  const docs = new Map<string, QueryStatsDoc>();
  for (const inc of [...b.values(), ...a.values()]) docs.set(inc.id, applyTo(docs.get(inc.id), inc));
  const reversed = new Map<string, QueryStatsDoc>();
  for (const incs of [...perHost].reverse())
    for (const inc of incs) reversed.set(inc.id, applyTo(reversed.get(inc.id), inc));
  assert.equal(reversed.get('v123~pack_q'), docs.get('v123~pack_q'), 'increments commute: buffered or not, any order');

  const now = T0 + 90 * MIN; // the window of T0+30min (12:00-13:00) is complete
  const q = summarizeQuery(docs.get('v123~pack_q')!, now);
  const window = docs.get('v123~pack_q')!.windows[windowOf(T0 + 30 * MIN)] as QueryWindow;
  assert.is(window.snapshots, 20);
  assert.is(window.measured, 18, 'denylisted hosts did not run it');
  assert.is(window.spanMs, 19 * H + 30 * MIN, 'an hour since the last snapshot, half an hour since the restart');
  assert.is(q.hosts, 20);
  assert.is(q.samples, 18);
  assert.is(q.denylistedHosts, 2);
  // 17 ran once in the hour since their last snapshot, the restarted one once in the half hour since it started.
  assert.is(q.executionsPerHostHour, 18 / 19.5);
  assert.is(q.executionsPerHour, (18 / 19.5) * 20, 'per host and hour, times the hosts');
  assert.is(q.outputBytesPerHostHour, (19 * 100 + 100) / 19.5, 'every host wrote 100 bytes');
  const ran = Array.from({ length: 20 }, (_, i) => i)
    .filter((i) => ![3, 7].includes(i))
    .map(costs);
  for (const [p, got] of [
    [0.5, q.userP50],
    [0.95, q.userP95],
  ] as const) {
    const exact = exactPercentile(ran, p);
    assert.ok(Math.abs(got! - exact) / exact <= PERCENTILE_PRECISION, `p${p * 100}: ${got} vs ${exact}`);
  }
  assert.is(q.systemP50, 0.5, 'no system time: the [0, 1) ms bucket');
  assert.is(q.class, 'minimal', `${q.cpuP50} ms at p50`);
  const hb = summarizeQuery(docs.get('v123~heartbeat')!, now);
  assert.is(hb.executionsPerHostHour, 12, 'every 5 minutes, restarted or not');
  assert.is(hb.executionsPerHour, 240);
  assert.is(hb.class, 'minimal');
  assert.is(summarizeQuery(docs.get('v123~pack_q')!, T0 + 30 * MIN).hosts, 20, 'the current hour counts');
  assert.is(summarizeQuery(docs.get('v123~pack_q')!, T0 + 3 * H).hosts, 0, 'two hours later it has aged out');
  assert.is(summarizeQuery(docs.get('v123~pack_q')!, now).configVersion, 'v123');
});

t('increments as one nested merge', () => {
  assert.equal(incrementTree({ 'windows.h1.user.b3': 1, 'windows.h1.executions': 4, 'windows.h1.user.b4': 2 }), {
    windows: { h1: { user: { b3: 1, b4: 2 }, executions: 4 } },
  });
});

t('a first snapshot samples cost per execution and its totals over the time since the worker started', () => {
  const step = scheduleStep(null, snap(T0, W1, [row('pack_q', 1000, 50_000, 10_000, 1e6)]));
  const [inc] = statsIncrements(step, 'v1');
  const w = `windows.${windowOf(T0)}`;
  assert.equal(inc!.increments, {
    [`${w}.snapshots`]: 1,
    [`${w}.measured`]: 1,
    [`${w}.user.b${costBucket(50)}`]: 1,
    [`${w}.system.b${costBucket(10)}`]: 1,
    [`${w}.spanMs`]: T0 - W1.start * 1000,
    [`${w}.executions`]: 1000,
    [`${w}.outputBytes`]: 1e6,
    [`${w}.userMs`]: 50_000,
    [`${w}.systemMs`]: 10_000,
    [`${w}.wallMs`]: 60_000,
  });
  const older = scheduleStep(null, { ...snap(T0, W1, [row('pack_q', 1000, 50_000, 10_000, 1e6)]), worker: null });
  assert.equal(
    Object.keys(statsIncrements(older, 'v1')[0]!.increments).filter((k) => /spanMs|executions/.test(k)),
    [],
    'an older bundle without worker columns: no span known, no totals',
  );
  assert.equal(statsIncrements(scheduleStep(step.next, snap(T0, W1, [row('pack_q', 1, 1, 1)])), 'v1'), [], 'stale');
  assert.is(queryStatsId('v1', 'pack/odd'), 'v1~pack%2Fodd');
});

t('classes: Fleet thresholds on user p50 + system p50', () => {
  assert.equal([null, 0, 1999.9, 2000, 3999, 4000, 1e6].map(classify), [
    'undetermined',
    'minimal',
    'minimal',
    'considerable',
    'considerable',
    'excessive',
    'excessive',
  ]);
  const doc = (user: number, system: number): QueryStatsDoc => ({
    configVersion: 'v',
    query: 'q',
    interval: 3600,
    windows: {
      [windowOf(T0)]: { measured: 1, user: { [`b${costBucket(user)}`]: 1 }, system: { [`b${costBucket(system)}`]: 1 } },
    },
  });
  assert.is(summarizeQuery(doc(1500, 1000), T0 + H).class, 'considerable', '1500 + 1000');
  assert.is(summarizeQuery(doc(3000, 1500), T0 + H).class, 'excessive');
  assert.is(summarizeQuery(doc(100, 50), T0 + H).class, 'minimal');
});

t('query alerts: denylisted on any host, expensive at p95; one firing and one resolved per episode', () => {
  const perHost = fleetHour(10, (i) => (i === 9 ? 20_000 : 100), { denylisted: [2] });
  let doc: QueryStatsDoc | undefined;
  for (const incs of perHost) for (const inc of incs) if (inc.query === 'pack_q') doc = applyTo(doc, inc);
  const s = summarizeQuery(doc!, T0 + 90 * MIN);
  const at = new Date(T0 + 90 * MIN);
  const changes = queryAlertChanges({}, s, at);
  assert.equal(
    changes.map((c) => [c.kind, c.status]),
    [
      ['query.denylisted', 'firing'],
      ['query.expensive', 'firing'],
    ],
  );
  assert.match(changes[0]!.reason, /denylisted by the watchdog on 1 host/);
  assert.match(changes[1]!.reason, /p95/);
  const open = { 'query.denylisted': at, 'query.expensive': at };
  assert.equal(queryAlertChanges(open, s, new Date(at.getTime() + H)), [], 'still true: nothing new');
  const calm = summarizeQuery(doc!, T0 + 5 * H); // those windows are empty now
  assert.equal(
    queryAlertChanges(open, calm, new Date(T0 + 5 * H)).map((c) => [c.kind, c.status, c.since]),
    [
      ['query.denylisted', 'resolved', at],
      ['query.expensive', 'resolved', at],
    ],
  );
});

t('windows: UTC hours, the current one and those before it, and the expired ones', () => {
  assert.is(windowOf(Date.parse('2026-11-27T12:59:59Z')), 'h2026112712');
  assert.equal(recentWindows(Date.parse('2026-11-27T12:10:00Z'), 2), ['h2026112712', 'h2026112711', 'h2026112710']);
  assert.equal(expiredWindows({ windows: { h2026112712: {}, h2026112610: {}, h2026112612: {} } }, T0, 24), [
    'h2026112610',
  ]);
  assert.equal(
    mergeWindows([
      { executions: 2, user: { b1: 1 } },
      { executions: 3, user: { b1: 2, b4: 1 } },
    ]).user,
    { b1: 3, b4: 1 },
  );
});

t.run();
