// What each query costs in logs (pure): the shipper's counts on the schedule snapshot, their deltas into
// queryStats windows, checked against what the simulator really shipped; a chatty profile; the logVolume
// gate; the cost model.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  resolveCosts,
  newOsqueryd,
  runRound,
  ROUND_SECONDS,
  startWorker,
  type CostProfile,
  type SimQuery,
} from '../../infra/local/simulator/osqueryd.js';
import { newShipperCount, shipLines } from '../../infra/local/simulator/shipper.js';
import { DEFAULT_PRICES, monthlyLogCost, monthlyOrchestratorCost, overBudget } from '../../shared/domain/cost-model.js';
import {
  messageBytes,
  queryVolume,
  shippedCountsOf,
  shippedStep,
  versionVolumes,
  type ShippedCounts,
} from '../../shared/domain/log-volume.js';
import { logVolumeGate } from '../../shared/domain/rollout.js';
import { parsePlan } from '../../shared/domain/rollout-plan.js';
import { scheduleSnapshotOf } from '../../shared/domain/telemetry/log-lines.js';
import type { ScheduleBaseline } from '../../shared/domain/telemetry/query-cost.js';
import { foldSchedule, type QueryStatsIncrement } from '../../shared/domain/telemetry/query-stats.js';
import { HEARTBEAT_QUERY, SCHEDULE_QUERY } from '../../shared/osquery/log-routing.js';
import type { Rejections } from '../../shared/domain/trust.js';

const t = suite('log volume (pure)');

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SCHEDULE: SimQuery[] = [
  { name: HEARTBEAT_QUERY, interval: 300, snapshot: true, removed: true, readsSyslog: false },
  { name: SCHEDULE_QUERY, interval: 3600, snapshot: true, removed: true, readsSyslog: false },
  { name: 'pack_net_outbound_connections', interval: 300, snapshot: false, removed: true, readsSyslog: false },
  { name: 'pack_users_last', interval: 600, snapshot: false, removed: true, readsSyslog: false },
  { name: 'pack_inventory_deb_packages', interval: 3600, snapshot: false, removed: true, readsSyslog: false },
];

/**
 * `hosts` simulated hosts for `hours` hours (the simulator's osqueryd and shipper), every schedule snapshot
 * folded as logHeartbeat folds it. Returns the increments and, per host, the bytes truly shipped between its
 * first and last snapshot (what the increments must add up to).
 */
function simulate(hosts: number, hours: number, profile?: CostProfile) {
  const random = seeded(7);
  const t0 = Date.parse('2026-12-07T00:00:00Z');
  const profiles = new Map<string, CostProfile>(profile ? [['v2', profile]] : []);
  const increments: QueryStatsIncrement[] = [];
  const truth = new Map<string, number>();
  for (let h = 0; h < hosts; h++) {
    const host = { id: `${1000 + h}`, name: `vm-${h}` };
    const worker = startWorker(SCHEDULE, 'v2', new Date(t0 - 3600_000), { storedResults: 'all' });
    const costs = resolveCosts(profiles, 'v2', newOsqueryd());
    const count = newShipperCount(new Date(t0 - 3600_000));
    let baseline: ScheduleBaseline | null = null;
    let sinceFirst: Map<string, number> | null = null;
    for (let r = 0; r < (hours * 3600) / ROUND_SECONDS; r++) {
      const now = new Date(t0 + (r + 1) * ROUND_SECONDS * 1000);
      const lines = runRound(host, worker, costs, now, random);
      for (const m of shipLines(count, lines, { gce_instance_id: host.id })) {
        const name = m.attributes.osquery_name!;
        if (name === SCHEDULE_QUERY) {
          const snapshot = scheduleSnapshotOf(JSON.parse(m.data.toString('utf8')));
          const fold = foldSchedule(baseline, [snapshot!], 'v2');
          if (baseline) increments.push(...fold.increments);
          baseline = fold.next ?? baseline;
          // Ground truth: what shipped from the first snapshot to the last, by query.
          if (sinceFirst) for (const [q, n] of sinceFirst) truth.set(q, (truth.get(q) ?? 0) + n);
          sinceFirst = new Map();
        }
        if (sinceFirst) sinceFirst.set(name, (sinceFirst.get(name) ?? 0) + messageBytes(m.data, m.attributes));
      }
    }
  }
  const measured = new Map<string, number>();
  for (const inc of increments)
    for (const [path, n] of Object.entries(inc.increments))
      if (path.endsWith('.shippedBytes')) measured.set(inc.query, (measured.get(inc.query) ?? 0) + n);
  return { increments, truth, measured };
}

t('the shipped figures add up to what the simulator shipped, per query (within 5%)', () => {
  const { truth, measured } = simulate(20, 4);
  assert.ok(truth.size >= 4, 'every query shipped something');
  for (const [query, bytes] of truth) {
    const got = measured.get(query) ?? 0;
    assert.ok(Math.abs(got - bytes) <= 0.05 * bytes, `${query}: measured ${got}, shipped ${bytes}`);
  }
});

t(
  "a host whose shipper does not count (no plugin): osquery's figures only; one that starts to counts from its start",
  () => {
    const random = seeded(11);
    const t0 = Date.parse('2026-12-07T00:00:00Z');
    const host = { id: '2000', name: 'vm-old' };
    const worker = startWorker(SCHEDULE, 'v2', new Date(t0 - 3600_000), { storedResults: 'all' });
    const costs = resolveCosts(new Map(), 'v2', newOsqueryd());
    // A fluentd without the plugin (a version before it) for 3 hours, then restarted with it (a new version).
    const switchAt = t0 + 3 * 3600_000;
    let count: ShippedCounts | null = null;
    let baseline: ScheduleBaseline | null = null;
    const folds: Array<{ counted: boolean; increments: QueryStatsIncrement[] }> = [];
    for (let r = 0; r < (6 * 3600) / ROUND_SECONDS; r++) {
      const now = new Date(t0 + (r + 1) * ROUND_SECONDS * 1000);
      if (!count && now.getTime() >= switchAt) count = newShipperCount(now);
      const lines = runRound(host, worker, costs, now, random);
      const messages = count
        ? shipLines(count, lines, { gce_instance_id: host.id })
        : lines.map((l) => ({ data: Buffer.from(`${JSON.stringify(l.line)}\n`), attributes: l.attributes }));
      for (const m of messages) {
        if (m.attributes.osquery_name !== SCHEDULE_QUERY) continue;
        const snapshot = scheduleSnapshotOf(JSON.parse(m.data.toString('utf8')))!;
        assert.ok(snapshot, 'the snapshot is read with or without the count');
        const fold = foldSchedule(baseline, [snapshot], 'v2');
        if (baseline) folds.push({ counted: snapshot.shipped !== undefined, increments: fold.increments });
        baseline = fold.next ?? baseline;
      }
    }
    const fields = (incs: QueryStatsIncrement[]) => new Set(incs.flatMap((i) => Object.keys(i.increments)));
    const shippedField = (f: string) => /\.shipped(Lines|Bytes|SpanMs)$/.test(f);
    const uncounted = folds.filter((f) => !f.counted);
    const counted = folds.filter((f) => f.counted);
    assert.ok(uncounted.length >= 2 && counted.length >= 2, `${uncounted.length} and ${counted.length} snapshots`);
    for (const f of uncounted) {
      const got = [...fields(f.increments)];
      assert.ok(
        got.some((k) => k.endsWith('.outputBytes')),
        "osquery's side is still measured",
      );
      assert.not.ok(got.some(shippedField), 'nothing shipped is made up');
    }
    // The first count after a snapshot without one: the shipper started after it, so it spans since its start.
    const first = counted[0]!.increments;
    const spans = first.map((i) => Object.entries(i.increments).find(([k]) => k.endsWith('.shippedSpanMs'))?.[1]);
    assert.ok(
      spans.every((s) => s !== undefined && s > 0 && s <= 3600_000),
      `spans ${spans.join(',')}`,
    );
    assert.ok(counted.every((f) => [...fields(f.increments)].some((k) => k.endsWith('.shippedBytes'))));
  },
);

t("output_size is osquery's rows before the differential, not the bytes shipped", () => {
  const { increments } = simulate(5, 3);
  const sum = (query: string, field: string) =>
    increments
      .filter((i) => i.query === query)
      .reduce(
        (n, i) => n + Object.entries(i.increments).reduce((m, [p, v]) => m + (p.endsWith(`.${field}`) ? v : 0), 0),
        0,
      );
  // deb_packages returns 520 rows an hour and ships almost none of them (no package changed).
  const packages = 'pack_inventory_deb_packages';
  assert.ok(sum(packages, 'outputBytes') > 10 * sum(packages, 'shippedBytes'), 'differential: few lines ship');
});

t('a cost profile makes a query chatty: its lines and bytes grow', () => {
  const quiet = simulate(5, 3).measured.get('pack_users_last') ?? 0;
  const chatty = simulate(5, 3, { queries: { pack_users_last: { churnPerHour: 120, rowBytes: 400 } } }).measured.get(
    'pack_users_last',
  )!;
  assert.ok(chatty > 20 * quiet, `chatty ${chatty} vs quiet ${quiet}`);
});

t('shipped counts: read with range checks; a bad one is refused with its reason, the snapshot kept', () => {
  const rejected: Rejections = {};
  assert.equal(shippedCountsOf({ shipped: { since: 100, queries: { q: { lines: '3', bytes: 900 } } } }), {
    since: 100,
    queries: { q: { lines: 3, bytes: 900 } },
  });
  assert.is(shippedCountsOf({ shipped: { since: -1, queries: {} } }, rejected), null);
  assert.equal(shippedCountsOf({ shipped: { since: 5, queries: { q: { lines: -1, bytes: 1 } } } }, rejected), {
    since: 5,
    queries: {},
  });
  assert.is(rejected['shipped-value'], 2);
  assert.is(shippedCountsOf({}), null);
});

t('shipped step: the same shipper is a difference; a restarted one counts from its start; else unknown', () => {
  const c = (since: number, lines: number, bytes: number): ShippedCounts => ({
    since,
    queries: { q: { lines, bytes } },
  });
  const T = 1_000_000;
  assert.equal(shippedStep(c(900, 10, 1000), T * 1000, c(900, 15, 1600), T * 1000 + 3600_000), {
    spanMs: 3600_000,
    deltas: { q: { lines: 5, bytes: 600 } },
  });
  // Restarted after the previous snapshot: everything since its start.
  assert.equal(shippedStep(c(900, 10, 1000), T * 1000, c(T + 600, 2, 300), T * 1000 + 3600_000), {
    spanMs: 3000_000,
    deltas: { q: { lines: 2, bytes: 300 } },
  });
  // First count of a shipper older than anything known: its totals span an unknown time.
  assert.equal(shippedStep(null, null, c(900, 10, 1000), T * 1000).spanMs, null);
  // A redelivered (older) snapshot counts nothing.
  assert.equal(shippedStep(c(900, 10, 1000), T * 1000, c(900, 10, 1000), T * 1000).spanMs, null);
});

t('volumes: per host and day from the windows; per version summed and sorted', () => {
  const day = 86_400_000;
  const a = queryVolume({ configVersion: 'v1', query: 'a' }, [
    { snapshots: 10, shippedBytes: 5000, shippedSpanMs: day / 2, outputBytes: 100, spanMs: day },
  ]);
  assert.is(a.shippedBytesPerHostDay, 10_000);
  assert.is(a.shippedBytesPerDay, 100_000);
  assert.is(a.outputBytesPerHostDay, 100);
  const b = queryVolume({ configVersion: 'v1', query: 'b' }, [{ snapshots: 10 }]);
  assert.is(b.shippedBytesPerHostDay, null);
  const [v1] = versionVolumes([b, a]);
  assert.is(v1!.shippedBytesPerHostDay, 10_000);
  assert.equal(
    v1!.queries.map((q) => q.query),
    ['a', 'b'],
  );
});

t('logVolume gate: a chatty target halts with the query that grew named; no baseline passes', () => {
  const hour = 3600_000;
  const base = [
    { query: 'a', shippedBytes: 1000, shippedSpanMs: hour },
    { query: 'b', shippedBytes: 1000, shippedSpanMs: hour },
  ];
  const chatty = [
    { query: 'a', shippedBytes: 1000, shippedSpanMs: hour },
    { query: 'b', shippedBytes: 9000, shippedSpanMs: hour },
  ];
  const halted = logVolumeGate({ target: chatty, baseline: base }, 50);
  assert.is(halted.passed, false);
  assert.is(halted.value, 400);
  assert.equal(halted.queries, ['b']);
  assert.is(halted.unit, '% over baseline');
  assert.is(logVolumeGate({ target: base, baseline: base }, 50).passed, true);
  assert.is(logVolumeGate({ target: chatty, baseline: [] }, 50).passed, true);
  assert.is(logVolumeGate(undefined, 50).passed, true);
});

t('plan: the default plans carry the logVolume gate, and a bad threshold is refused', () => {
  for (const file of ['shared/osquery/rollout.json', 'infra/local/rollout.json'])
    assert.equal(parsePlan(readFileSync(file, 'utf8'), file).gates.logVolume, { maxIncreasePercent: 50 });
  const text = readFileSync('shared/osquery/rollout.json', 'utf8').replace(
    '"maxIncreasePercent": 50',
    '"maxIncreasePercent": -1',
  );
  assert.throws(() => parsePlan(text, 'rollout.json'), /maxIncreasePercent: 0 or more/);
});

t('cost model: a month of log bytes at the list prices; the free tier only when asked', () => {
  const GiB = 2 ** 30;
  const oneGiBaDay = monthlyLogCost(GiB, DEFAULT_PRICES);
  // 30.42 GiB a month: published once and delivered to the SIEM (2x) at $40/TiB, ingested at $0.50/GiB.
  assert.ok(Math.abs(oneGiBaDay.pubsubUsd - (30.4167 * 2 * 40) / 1024) < 0.01);
  assert.ok(Math.abs(oneGiBaDay.siemUsd - 30.4167 * 0.5) < 0.01);
  assert.ok(monthlyLogCost(GiB, DEFAULT_PRICES, true).pubsubUsd < oneGiBaDay.pubsubUsd);
  const own = monthlyOrchestratorCost(
    {
      invocations: 1e6,
      gibSeconds: 0,
      vcpuSeconds: 0,
      firestoreReads: 0,
      firestoreWrites: 1e5,
      pubsubBytes: 0,
      hours: 730,
    },
    DEFAULT_PRICES,
  );
  assert.ok(Math.abs(own.usdPerMonth - 0.58) < 1e-9);
  assert.is(overBudget(2000, 1000), true);
  assert.is(overBudget(2000, null), false);
});

t.run();
