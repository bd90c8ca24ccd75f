// osquery's own telemetry through logHeartbeat and the audit run's close, against the emulators and the
// simulator: hosts/{id}.osqueryd and host.performance (source osquery) from consecutive heartbeats,
// queryStats from osquery_schedule snapshots (buffered, one write per query), the query alerts and the
// status page's snapshot.
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { enableOsConfig, stackSuite } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { auditProject } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { HeartbeatEngine, recordLogMessage } from '../shared/usecases/heartbeat.js';
import { evaluateQueryCosts, queryCosts, topHosts } from '../shared/usecases/telemetry.js';
import { getHost } from '../shared/adapters/hosts.js';
import { getOsqueryStatus, listQueryStats } from '../shared/adapters/telemetry.js';
import { clients } from '../shared/clients.js';
import { config } from '../shared/config.js';
import { usageSince, usageSnapshot } from '../shared/metrics.js';
import { HEARTBEAT_QUERY, SCHEDULE_QUERY } from '../shared/osquery/log-routing.js';
import type { AlertMessage } from '../shared/domain/alerts.js';
import { windowOf } from '../shared/domain/telemetry/query-stats.js';

const P = 'costs';
const Z = 'us-central1-f';
const MIN = 60_000;
const MiB = 1024 * 1024;
let alerts: Subscription;
/** The logHeartbeat instance the tests call the use case with: a new one for each test. */
let engine: HeartbeatEngine;

const t = stackSuite(
  'osquery telemetry on the stack',
  { TARGET_PROJECTS: P, CONFIG_BUCKET: 'cfg-costs', OSCONFIG_WRITES_PER_MINUTE: '6000' },
  async (stack) => {
    await enableOsConfig(stack, P);
    engine = new HeartbeatEngine();
    alerts = await subscribe(config().ALERT_TOPIC, 'test-telemetry-alerts');
    await drain(alerts);
  },
);

/** A VM the audit has recorded as a host (the simulator runs its agent once). */
async function recordedHost(stack: Parameters<Parameters<typeof t>[1]>[0]['stack'], name: string) {
  const vm = await createVm(stack, { project: P, zone: Z, name, os: 'debian-12' });
  await stack.control('POST', '/agents/run');
  await auditProject(P);
  const host = await getHost(vm.id);
  assert.ok(host, `${name} recorded`);
  return host!;
}

const envelope = (name: string, at: number) => ({
  name,
  hostIdentifier: 'h',
  calendarTime: new Date(at).toUTCString(),
  unixTime: Math.floor(at / 1000),
  epoch: 0,
  counter: 0,
  numerics: false,
  action: 'snapshot',
});

/** The heartbeat as the bundle's query writes it: the worker's processes row (cumulative CPU ms, RSS bytes). */
const heartbeat = (at: number, w: { pid: number; start: number; cpuMs: number; rss?: number }) =>
  JSON.stringify({
    ...envelope(HEARTBEAT_QUERY, at),
    snapshot: [
      {
        heartbeat_at: String(Math.floor(at / 1000)),
        pid: String(w.pid),
        start_time: String(w.start),
        user_time: String(Math.round(w.cpuMs * 0.75)),
        system_time: String(w.cpuMs - Math.round(w.cpuMs * 0.75)),
        resident_size: String(w.rss ?? 50 * MiB),
      },
    ],
  });

type Row = { name: string; executions: number; userMs: number; systemMs?: number; output?: number; denylisted?: 1 };
const schedule = (at: number, w: { pid: number; start: number }, rows: Row[]) =>
  JSON.stringify({
    ...envelope(SCHEDULE_QUERY, at),
    snapshot: rows.map((r) => ({
      name: r.name,
      interval: '3600',
      executions: String(r.executions),
      denylisted: String(r.denylisted ?? 0),
      output_size: String(r.output ?? r.executions * 1000),
      wall_time_ms: String(r.userMs + (r.systemMs ?? 0)),
      user_time: String(r.userMs),
      system_time: String(r.systemMs ?? 0),
      worker_pid: String(w.pid),
      worker_start_time: String(w.start),
    })),
  });

const ids = (instanceId: string) => ({ gce_instance_id: instanceId, gce_project_id: P, gce_zone: Z });
const message = (instanceId: string, lines: string[], messageId: string) => ({
  data: Buffer.from(lines.join('\n')),
  attributes: ids(instanceId),
  messageId,
  publishTime: new Date(),
});

const performanceAlerts = async () =>
  (await drain(alerts)).map((m) => m.data as AlertMessage).filter((m) => m.kind === 'host.performance');

t(
  'CPU% from consecutive heartbeats across out-of-order delivery and a restart; ' +
    'one host.performance firing and one resolved under redelivery',
  async ({ stack }) => {
    const host = await recordedHost(stack, 'busy');
    const tb = Date.now() - 60 * MIN;
    const beat = (k: number) => tb + k * 5 * MIN;
    const w1 = { pid: 4100, start: Math.floor(tb / 1000) - 600 };
    const w2 = { pid: 4377, start: Math.floor(beat(5) / 1000) - 60 };
    // Cumulative CPU of the first worker: 3% over the first interval, then 20% of a core.
    const cpu = [0, 9_000, 69_000, 129_000, 189_000];
    const lines = new Map<number, string>([
      ...cpu.map((cpuMs, k) => [k, heartbeat(beat(k), { ...w1, cpuMs })] as const),
      [5, heartbeat(beat(5), { ...w2, cpuMs: 12_000 })],
      [6, heartbeat(beat(6), { ...w2, cpuMs: 15_000 })],
    ]);
    let delivery = 0;
    /** Delivers heartbeat k as a new invocation 5 minutes after the previous one; another instance when `fresh`. */
    const deliver = async (k: number, fresh = false) => {
      if (fresh) engine = new HeartbeatEngine();
      delivery += 1;
      return recordLogMessage(
        engine,
        message(host.instanceId, [lines.get(k)!], `hb-${k}`),
        new Date(tb + delivery * 5 * MIN),
      );
    };
    const osqueryd = async () => (await getHost(host.instanceId))!;
    const field = async () => (await clients.firestore()).collection('hosts').doc(host.instanceId).get();

    assert.is((await deliver(0)).outcome, 'recorded');
    let doc = await field();
    assert.is(doc.get('osqueryd.cpuPercent'), null, 'a first sample: no interval yet');
    assert.is(doc.get('osqueryd.rssBytes'), 50 * MiB);
    assert.ok(await osqueryd());

    const before = usageSnapshot();
    await deliver(1);
    assert.is(usageSince(before).firestoreWrites, 1, 'one host write for the heartbeat');
    assert.is((await field()).get('osqueryd.cpuPercent'), 3);

    // Out of order: heartbeat 3 arrives before heartbeat 2; 2 is then stale and changes nothing.
    await deliver(3);
    doc = await field();
    assert.is(doc.get('osqueryd.cpuPercent'), 20, '120 s of CPU over the 10 minutes since heartbeat 1');
    assert.is(doc.get('osqueryd.at').toMillis(), Math.floor(beat(3) / 1000) * 1000);
    await deliver(2, true);
    assert.is((await field()).get('osqueryd.at').toMillis(), Math.floor(beat(3) / 1000) * 1000, 'never backwards');
    assert.equal(await performanceAlerts(), [], 'one interval over 10%: not yet');

    // The second consecutive interval over 10% fires, once, however often it is delivered.
    await deliver(4);
    for (let i = 0; i < 3; i++) await deliver(4, true);
    const fired = await performanceAlerts();
    assert.equal(
      fired.map((m) => [m.status, m.source, m.host?.instanceId]),
      [['firing', 'osquery', host.instanceId]],
    );
    assert.match(fired[0]!.reason!, /osqueryd CPU 20% of a core on 2 consecutive heartbeats \(threshold 10%\)/);
    assert.ok((await field()).get('osqueryd.episode'), 'the open episode is kept on the host');

    // A restart: no interval, the baseline resets; it neither counts as over nor as recovered.
    await deliver(5);
    doc = await field();
    assert.equal([doc.get('osqueryd.cpuPercent'), doc.get('osqueryd.pid')], [null, w2.pid]);
    assert.equal(await performanceAlerts(), [], 'a restart does not resolve');

    // Recovered: 1% over the interval since the restart's heartbeat.
    // Redeliveries of it and of older ones change nothing.
    await deliver(6);
    for (const k of [6, 5, 4]) await deliver(k, true);
    assert.is((await field()).get('osqueryd.cpuPercent'), 1);
    const resolved = await performanceAlerts();
    assert.equal(
      resolved.map((m) => [m.status, m.source, m.dedupKey]),
      [['resolved', 'osquery', fired[0]!.dedupKey]],
    );
    assert.is((await field()).get('osqueryd.episode'), null);

    const [top] = await topHosts('cpu', 5);
    assert.equal([top?.instanceId, top?.cpuPercent, top?.alerting], [host.instanceId, 1, false]);
  },
);

t('memory above the threshold fires on one heartbeat and resolves when it drops', async ({ stack }) => {
  const host = await recordedHost(stack, 'fat');
  const tb = Date.now() - 30 * MIN;
  const w = { pid: 77, start: Math.floor(tb / 1000) - 60 };
  const send = (k: number, rss: number) =>
    recordLogMessage(
      engine,
      message(host.instanceId, [heartbeat(tb + k * 5 * MIN, { ...w, cpuMs: k * 100, rss })], `m-${k}`),
      new Date(tb + k * 5 * MIN + 1000),
    );
  await send(0, 400 * MiB);
  await send(1, 60 * MiB);
  const messages = await performanceAlerts();
  assert.equal(
    messages.map((m) => m.status),
    ['firing', 'resolved'],
  );
  assert.match(messages[0]!.reason!, /osqueryd memory 400 MiB \(threshold 300 MiB\)/);
});

t(
  'query statistics: deltas across a restart, one write per query for every snapshot; ' +
    'p50/p95, denylisted hosts, classes, query alerts',
  async ({ stack }) => {
    await publish({ projects: [P] });
    const a = await recordedHost(stack, 'stats-a');
    const b = await recordedHost(stack, 'stats-b');
    const version = a.configVersion!;
    assert.ok(version, 'the host runs a configuration version');
    const t1 = Date.now() - 70 * MIN;
    const t2 = t1 + 60 * MIN;
    const wa = { pid: 500, start: Math.floor(t1 / 1000) - 3600 };
    const wb = { pid: 600, start: Math.floor(t1 / 1000) - 3600 };
    const wb2 = { pid: 955, start: Math.floor(t2 / 1000) - 1800 }; // restarted half an hour before t2
    // pack_heavy costs 3 s of CPU per run, pack_light 20 ms; host b restarted before t2: since then
    // pack_heavy ran once, for 5 s (4 s user, 1 s system), and the watchdog denylisted pack_light.
    const linesA = [
      schedule(t1, wa, [
        { name: 'pack_heavy', executions: 4, userMs: 12_000 },
        { name: 'pack_light', executions: 10, userMs: 200 },
      ]),
      schedule(t2, wa, [
        { name: 'pack_heavy', executions: 5, userMs: 15_000 },
        { name: 'pack_light', executions: 12, userMs: 240 },
      ]),
    ];
    const linesB = [
      schedule(t1, wb, [
        { name: 'pack_heavy', executions: 4, userMs: 12_000 },
        { name: 'pack_light', executions: 10, userMs: 200 },
      ]),
      schedule(t2, wb2, [
        { name: 'pack_heavy', executions: 1, userMs: 4_000, systemMs: 1_000 },
        { name: 'pack_light', executions: 0, userMs: 0, denylisted: 1 },
      ]),
    ];
    const now = new Date(t2 + 10_000);
    const before = usageSnapshot();
    await recordLogMessage(engine, message(a.instanceId, linesA, 'sa'), now);
    await recordLogMessage(engine, message(b.instanceId, linesB, 'sb'), now);
    assert.is(usageSince(before).firestoreWrites, 2, 'one write per host; the statistics wait in the buffer');
    assert.equal(await listQueryStats(), []);
    const flushed = usageSnapshot();
    assert.is(await engine.stats.flush(), 2, 'one write per query document for four snapshots of two hosts');
    assert.is(usageSince(flushed).firestoreWrites, 2);
    // Redelivered snapshots are stale against the hosts' baselines: nothing more to write.
    engine = new HeartbeatEngine();
    await recordLogMessage(engine, message(a.instanceId, linesA, 'sa'), new Date(now.getTime() + 2 * MIN));
    assert.is(await engine.stats.flush(), 0);

    const stored = await listQueryStats(version);
    const heavyDoc = stored.find((s) => s.doc.query === 'pack_heavy')!.doc;
    const w2 = heavyDoc.windows[windowOf(t2)]!;
    assert.equal(
      [w2.snapshots, w2.measured, w2.executions, w2.userMs, w2.systemMs],
      [2, 2, 2, 3_000 + 4_000, 1_000],
      'a: one run since its last snapshot; b: one since its restart',
    );
    const summaries = await queryCosts(version, now);
    const by = Object.fromEntries(summaries.map((s) => [s.query, s]));
    assert.equal(
      summaries.map((s) => s.query),
      ['pack_heavy', 'pack_light'],
      'by cost',
    );
    const heavy = by.pack_heavy!;
    // Four host snapshots: user 3000, 3000, 3000, 4000 ms per run; system 0, 0, 0, 1000. p50 is the 3rd
    // value, p95 the 4th (Fleet's rank floor(n p) + 1), within the histogram's precision.
    const near = (got: number | null, want: number) => got !== null && Math.abs(got - want) / want < 0.05;
    assert.ok(near(heavy.userP50, 3000) && near(heavy.userP95, 4000), `user ${heavy.userP50} ${heavy.userP95}`);
    assert.ok(heavy.systemP50! < 1 && near(heavy.systemP95, 1000), `system ${heavy.systemP50} ${heavy.systemP95}`);
    assert.ok(near(heavy.cpuP95, 5000), `p95 ${heavy.cpuP95}`);
    assert.equal([heavy.hosts, heavy.samples], [2, 4]);
    assert.is(heavy.class, 'considerable');
    assert.equal([by.pack_light!.denylistedHosts, by.pack_light!.class], [1, 'minimal']);

    // The run's close: query.expensive (p95 above 2000 ms) and
    // query.denylisted fire once; a second evaluation sends nothing.
    const status = await evaluateQueryCosts('run-1', now);
    await evaluateQueryCosts('run-1b', new Date(now.getTime() + MIN));
    const fired = (await drain(alerts)).map((m) => m.data as AlertMessage).filter((m) => m.kind.startsWith('query.'));
    assert.equal(fired.map((m) => [m.kind, m.status, m.query?.name, m.query?.configVersion, m.host]).sort(), [
      ['query.denylisted', 'firing', 'pack_light', version, null],
      ['query.expensive', 'firing', 'pack_heavy', version, null],
    ]);
    assert.equal(
      status.topQueries.map((q) => q.query),
      ['pack_heavy', 'pack_light'],
    );
    assert.is((await getOsqueryStatus())?.runId, 'run-1b');

    // Hours later the windows have aged out of the summary: both episodes resolve, once.
    const later = new Date(now.getTime() + 3 * 3_600_000);
    await evaluateQueryCosts('run-2', later);
    await evaluateQueryCosts('run-3', new Date(later.getTime() + MIN));
    const resolved = (await drain(alerts))
      .map((m) => m.data as AlertMessage)
      .filter((m) => m.kind.startsWith('query.'));
    assert.equal(resolved.map((m) => [m.kind, m.status]).sort(), [
      ['query.denylisted', 'resolved'],
      ['query.expensive', 'resolved'],
    ]);
  },
);

t.run();
