// One VM must never affect another host's record (issue 20), against the emulators: hostile values in a
// batch of hosts, a write Firestore refuses, a failure of unknown cause, queryStats that cannot be written,
// and an old backlog line that must not end a silent episode. Push (recordLogMessage, the function) and
// pull (the drain) alike.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Subscription, Topic } from '@google-cloud/pubsub';
import type { DocumentData, DocumentSnapshot } from '@google-cloud/firestore';
import { captureLogs, clearFirestore, newHeartbeatInstances, startStack, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain as drainAlerts, subscribe } from './helpers/pubsub.js';
import { acknowledge, pullMessages } from '../shared/adapters/pubsub.js';
import { getHost, listTransitions } from '../shared/adapters/hosts.js';
import { clients } from '../shared/clients.js';
import { config } from '../shared/config.js';
import { auditProject } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { HeartbeatEngine, recordLogMessage } from '../shared/usecases/heartbeat.js';
import { drainLogSubscription } from '../shared/usecases/log-drain.js';
import { HEARTBEAT_QUERY, LOG_HEARTBEAT_FILTER, SCHEDULE_QUERY } from '../shared/osquery/log-routing.js';
import type { AlertMessage } from '../shared/domain/alerts.js';

const P = 'isolated';
const Z = 'europe-west1-b';
const MIN = 60_000;
const TOPIC = 'isolation-logs';
const SUB = 'isolation-logs-heartbeat';

interface Ctx {
  stack: Stack;
  topic: Topic;
  subscription: string;
  alerts: Subscription;
  /** The logHeartbeat instance the tests call the use cases with; the served function has its own. */
  engine: HeartbeatEngine;
}
const t = suite<Ctx>('logHeartbeat: one VM never affects another host, a backlog never ends silence');

t.before(async (ctx) => {
  ctx.stack = await startStack({
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-isolated',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '0',
    SILENCE_THRESHOLD_MINUTES: '15',
  });
  const pubsub = await clients.pubsub();
  [ctx.topic] = await pubsub.createTopic(TOPIC);
  const [sub] = await ctx.topic.createSubscription(SUB, { filter: LOG_HEARTBEAT_FILTER, ackDeadlineSeconds: 120 });
  ctx.subscription = sub.name;
  ctx.alerts = await subscribe(config().ALERT_TOPIC, 'test-isolation-alerts');
});
t.after(async (ctx) => ctx.stack.close());
t.before.each(async (ctx) => {
  await clearFirestore();
  await ctx.stack.control('POST', '/reset');
  await ctx.stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
  ctx.engine = new HeartbeatEngine();
  await newHeartbeatInstances();
  for (let batch; (batch = await pullMessages(ctx.subscription, 1000, 200)).length > 0;)
    await acknowledge(
      ctx.subscription,
      batch.map((m) => m.ackId),
    );
  await drainAlerts(ctx.alerts);
});

type Vm = { id: string; name: string };
const ids = (vm: Vm) => ({ gce_instance_id: vm.id, gce_project_id: P, gce_zone: Z });
const s = (ms: number) => Math.floor(ms / 1000);
const second = (ms: number) => s(ms) * 1000;

/** A heartbeat as the bundle writes it; `row` overrides its columns (what a hostile VM sends). */
const heartbeat = (at: number, row: Record<string, string> = {}) =>
  JSON.stringify({
    name: HEARTBEAT_QUERY,
    unixTime: s(at),
    action: 'snapshot',
    snapshot: [
      {
        heartbeat_at: String(s(at)),
        pid: '4242',
        start_time: String(s(at) - 3600),
        user_time: '1000',
        system_time: '0',
        resident_size: String(40 * 1024 * 1024),
        ...row,
      },
    ],
  });

const schedule = (at: number, names: string[]) =>
  JSON.stringify({
    name: SCHEDULE_QUERY,
    unixTime: s(at),
    action: 'snapshot',
    snapshot: names.map((name) => ({
      name,
      interval: '3600',
      executions: '2',
      output_size: '100',
      wall_time_ms: '10',
      user_time: '8',
      system_time: '2',
      denylisted: '0',
      worker_pid: '4242',
      worker_start_time: String(s(at) - 3600),
    })),
  });

const message = (vm: Vm, lines: string[], messageId: string) => ({
  data: Buffer.from(lines.join('\n')),
  attributes: ids(vm),
  messageId,
  publishTime: new Date(),
});

async function vms(stack: Stack, n: number, prefix: string): Promise<Vm[]> {
  const out: Vm[] = [];
  for (let i = 0; i < n; i++)
    out.push(await createVm(stack, { project: P, zone: Z, name: `${prefix}-${i}`, os: 'debian-12' }));
  return out;
}

const hostDoc = (id: string): Promise<DocumentSnapshot<DocumentData>> =>
  clients.firestore().collection('hosts').doc(id).get();

/** What every hostile heartbeat below carries: times, pids and counters no osqueryd reports. */
const HOSTILE_ROWS: Array<Record<string, string>> = [
  { heartbeat_at: '99999999999999999999' },
  { heartbeat_at: '-99999999999' },
  { start_time: '99999999999999999999' },
  { user_time: '9'.repeat(400) },
];

t(
  'hostile heartbeats in one batch with other hosts: every host is recorded, and no later batch is poisoned',
  async (ctx) => {
    const good = await vms(ctx.stack, 4, 'good');
    const [hostile] = await vms(ctx.stack, 1, 'hostile');
    for (const [round, row] of HOSTILE_ROWS.entries()) {
      const at = Date.now() - (10 - round) * MIN;
      // One tick: every message is queued before the batch is written (one read, one commit).
      const { result, logs } = await captureLogs(() =>
        Promise.allSettled([
          ...good.map((vm) => recordLogMessage(ctx.engine, message(vm, [heartbeat(at)], `g-${vm.id}-${round}`))),
          recordLogMessage(ctx.engine, message(hostile!, [heartbeat(at, row)], `h-${round}`)),
        ]),
      );
      assert.equal(
        result.map((r) => (r.status === 'fulfilled' ? r.value.outcome : String(r.reason))),
        ['recorded', 'recorded', 'recorded', 'recorded', 'recorded'],
        `round ${round}: ${JSON.stringify(row)}`,
      );
      for (const vm of [...good, hostile!])
        assert.is((await getHost(vm.id))?.lastLogAt?.getTime(), second(at), `${vm.name}: lastLogAt, round ${round}`);
      const warned = logs.find(
        (l) => l.message === 'logHeartbeat: lines or values from the VM not trusted, not recorded',
      );
      assert.is(warned?.instanceId, hostile!.id, 'one line naming the host');
      assert.ok(warned?.rejected, JSON.stringify(warned));
    }
    assert.is((await hostDoc(hostile!.id)).get('osqueryd'), undefined, 'no sample of the hostile VM was written');
    assert.is((await hostDoc(good[0]!.id)).get('osqueryd.rssBytes'), 40 * 1024 * 1024);
  },
);

t('schedule names that are too long or reserved never reach a host document or queryStats', async (ctx) => {
  const good = await vms(ctx.stack, 3, 'names');
  const [hostile] = await vms(ctx.stack, 1, 'names-hostile');
  const at = Date.now() - 5 * MIN;
  const results = await Promise.allSettled([
    ...good.map((vm) => recordLogMessage(ctx.engine, message(vm, [schedule(at, ['pack_a'])], `g-${vm.id}`))),
    recordLogMessage(ctx.engine, message(hostile!, [schedule(at, ['pack_a', 'x'.repeat(2000), '__x__'])], 'h')),
  ]);
  assert.equal(
    results.map((r) => (r.status === 'fulfilled' ? r.value.outcome : String(r.reason))),
    ['recorded', 'recorded', 'recorded', 'recorded'],
  );
  for (const vm of [...good, hostile!]) {
    const doc = await hostDoc(vm.id);
    assert.is(doc.get('lastLogAt')?.toMillis(), second(at), vm.name);
    assert.equal(Object.keys(doc.get('querySchedule.queries') ?? {}), ['pack_a'], vm.name);
  }
  assert.is(await ctx.engine.stats.flush(), 1, 'one document: none/pack_a');
  const stats = await clients.firestore().collection('queryStats').get();
  assert.equal(
    stats.docs.map((d) => d.id),
    ['none~pack_a'],
  );
});

t('a write Firestore refuses costs its host the telemetry and nothing else: lastLogAt of all', async (ctx) => {
  const good = await vms(ctx.stack, 3, 'full');
  const [full] = await vms(ctx.stack, 1, 'full-host');
  // A host document a few KB short of Firestore's 1 MiB: a snapshot of 200 queries does not fit in it.
  await clients
    .firestore()
    .collection('hosts')
    .doc(full!.id)
    .update({ padding: 'p'.repeat(1_040_000) });
  const names = Array.from({ length: 200 }, (_, i) => `pack_query_${i}`.padEnd(100, '_'));
  const at = Date.now() - 5 * MIN;
  const { result, logs } = await captureLogs(() =>
    Promise.allSettled(
      [...good, full!].map((vm) =>
        recordLogMessage(ctx.engine, message(vm, [heartbeat(at), schedule(at, names)], `m-${vm.id}`)),
      ),
    ),
  );
  assert.equal(
    result.map((r) => (r.status === 'fulfilled' ? r.value.outcome : String(r.reason))),
    ['recorded', 'recorded', 'recorded', 'recorded'],
  );
  for (const vm of good) {
    const doc = await hostDoc(vm.id);
    assert.is(doc.get('lastLogAt')?.toMillis(), second(at), vm.name);
    assert.is(Object.keys(doc.get('querySchedule.queries')).length, 200, `${vm.name}: its telemetry`);
  }
  const doc = await hostDoc(full!.id);
  assert.is(doc.get('lastLogAt')?.toMillis(), second(at), 'the refused host: lastLogAt written without the telemetry');
  assert.is(doc.get('querySchedule'), undefined);
  const dropped = logs.find((l) => /telemetry cannot be written, dropped/.test(l.message));
  assert.is(dropped?.instanceId, full!.id);
  assert.match(String(dropped?.reason), /INVALID_ARGUMENT|maximum entity size/);

  // Not poisoned: the next heartbeat of that host is written as usual, without the dropped snapshot.
  const next = await recordLogMessage(ctx.engine, message(full!, [heartbeat(at + MIN)], 'next'));
  assert.is(next.outcome, 'recorded');
  assert.is((await hostDoc(full!.id)).get('lastLogAt')?.toMillis(), second(at + MIN));
});

t(
  'pull: hostile lines among the fleet are acknowledged, every host recorded; nothing acknowledged unrecorded',
  async (ctx) => {
    const good = await vms(ctx.stack, 5, 'pulled');
    const [hostile] = await vms(ctx.stack, 1, 'pulled-hostile');
    const at = Date.now() - 5 * MIN;
    const send = (vm: Vm, data: string) => ctx.topic.publishMessage({ data: Buffer.from(data), attributes: ids(vm) });
    for (const vm of good) await send(vm, heartbeat(at));
    for (const row of HOSTILE_ROWS) await send(hostile!, heartbeat(at, row));
    await send(hostile!, schedule(at, ['x'.repeat(2000), '__x__']));
    const drained = await drainLogSubscription(ctx.engine, {
      subscription: ctx.subscription,
      budgetMs: 30_000,
      pullWaitMs: 500,
    });
    assert.equal(
      { pulled: drained.pulled, acked: drained.acked, nacked: drained.nacked, failed: drained.outcomes.failed },
      { pulled: 10, acked: 10, nacked: 0, failed: undefined },
      JSON.stringify(drained.outcomes),
    );
    assert.is(drained.outcomes['permanent-failure'], undefined);
    for (const vm of [...good, hostile!])
      assert.is((await getHost(vm.id))?.lastLogAt?.getTime(), second(at), `${vm.name} recorded`);
  },
);

t('an error of unknown cause is never a reason to acknowledge: pull releases it, push answers 500', async (ctx) => {
  const good = await vms(ctx.stack, 3, 'unknown');
  const [broken] = await vms(ctx.stack, 1, 'unknown-broken');
  // A host document no code path can plan against (lastLogAt is not a time): every write of it throws a
  // TypeError, which says nothing about the message.
  await clients.firestore().collection('hosts').doc(broken!.id).update({ lastLogAt: 'not a time' });
  const at = Date.now() - 5 * MIN;
  for (const vm of [...good, broken!])
    await ctx.topic.publishMessage({ data: Buffer.from(heartbeat(at)), attributes: ids(vm) });
  const drained = await drainLogSubscription(ctx.engine, {
    subscription: ctx.subscription,
    budgetMs: 30_000,
    pullWaitMs: 500,
  });
  // Released at once, so the same drain may pull it again before it stops on a batch with nothing done.
  assert.is(drained.acked, 3, JSON.stringify(drained));
  assert.ok(drained.outcomes.failed! >= 1 && drained.nacked === drained.outcomes.failed, JSON.stringify(drained));
  assert.is(drained.outcomes['permanent-failure'], undefined);
  for (const vm of good) assert.is((await getHost(vm.id))?.lastLogAt?.getTime(), second(at), `${vm.name} recorded`);
  const again = await pullMessages(ctx.subscription, 10, 2000);
  assert.equal(
    again.map((m) => m.message.attributes.gce_instance_id),
    [broken!.id],
    'released: delivered again',
  );
  await acknowledge(
    ctx.subscription,
    again.map((m) => m.ackId),
  );

  // Push: the function rethrows (500), so Pub/Sub redelivers.
  const project = process.env.GOOGLE_CLOUD_PROJECT;
  const res = await fetch(`${ctx.stack.functions.urls.logHeartbeat}projects/${project}/topics/${config().LOG_TOPIC}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: {
        data: Buffer.from(heartbeat(at + MIN)).toString('base64'),
        attributes: ids(broken!),
        messageId: 'push-unknown',
        publishTime: new Date().toISOString(),
      },
      subscription: `projects/${project}/subscriptions/test`,
    }),
  });
  await res.arrayBuffer();
  assert.is(res.status, 500, 'not acknowledged');
});

t(
  'queryStats: a flush whose second chunk holds a document that can never be written applies every increment once',
  async (ctx) => {
    const [a] = await vms(ctx.stack, 1, 'stats-a');
    const [b] = await vms(ctx.stack, 1, 'stats-b');
    // b runs a configuration version whose queryStats ids Firestore reserves (`__x~pack__`).
    await clients.firestore().collection('hosts').doc(b!.id).update({ configVersion: '__x' });
    const at = Date.now() - 5 * MIN;
    const names = Array.from({ length: 600 }, (_, i) => `pack_q${i}`);
    assert.is((await recordLogMessage(ctx.engine, message(a!, [schedule(at, names)], 'a'))).outcome, 'recorded');
    assert.is((await recordLogMessage(ctx.engine, message(b!, [schedule(at, ['pack__'])], 'b'))).outcome, 'recorded');
    const { result: first, logs } = await captureLogs(() => ctx.engine.stats.flush().catch((e: Error) => e.message));
    assert.is(first, 600, 'every document but the one that cannot be written');
    const dropped = logs.find((l) => /queryStats documents that cannot be written/.test(l.message));
    assert.equal([dropped?.documents, dropped?.ids], [1, ['__x~pack__']]);
    assert.is(await ctx.engine.stats.flush(), 0, 'nothing kept: the poison document was dropped, the rest applied');
    const stats = await clients.firestore().collection('queryStats').get();
    assert.is(stats.size, 600);
    const counts = new Set(stats.docs.map((d) => JSON.stringify(d.get('windows'))));
    assert.is(counts.size, 1, 'every document has the same windows: no increment applied twice');
    assert.ok([...counts][0]!.includes('"snapshots":1'), [...counts][0]);
  },
);

t('an old backlog line does not end a silent episode; the next audit opens nothing again', async (ctx) => {
  const alerts = ctx.alerts;
  await publish({ projects: [P] });
  const [vm] = await vms(ctx.stack, 1, 'backlog');
  await ctx.stack.control('POST', '/agents/run');
  const base = Date.now();
  const at = (minutes: number) => new Date(base + minutes * MIN);
  const line = (lineAt: Date, id: string) => message(vm!, [heartbeat(lineAt.getTime())], id);
  assert.is((await recordLogMessage(ctx.engine, line(at(1), 'first'), at(1))).outcome, 'recorded');
  await auditProject(P, { now: at(2) });
  assert.is((await getHost(vm!.id))?.state, 'reporting');
  await auditProject(P, { now: at(20) });
  assert.is((await getHost(vm!.id))?.state, 'silent');

  // A delivery outage ends at minute 60: the lines of minutes 5 to 30 arrive now, all older than the threshold.
  for (const minute of [5, 15, 30]) {
    ctx.engine = new HeartbeatEngine();
    await recordLogMessage(ctx.engine, line(at(minute), `backlog-${minute}`), at(60));
  }
  const host = await getHost(vm!.id);
  assert.equal(
    [host?.state, host?.lastLogAt?.getTime()],
    ['silent', second(at(30).getTime())],
    'lastLogAt moves forward; the host stays silent',
  );
  await auditProject(P, { now: at(61) });
  assert.is((await getHost(vm!.id))?.state, 'silent');
  // The host reports now: that ends the episode.
  assert.is((await recordLogMessage(ctx.engine, line(at(62), 'now'), at(62))).outcome, 'recorded');
  assert.is((await getHost(vm!.id))?.state, 'reporting');
  const messages = (await drainAlerts(alerts))
    .map((m) => m.data as AlertMessage)
    .filter((m) => m.kind === 'host.silent');
  assert.equal(
    messages.map((m) => m.status),
    ['firing', 'resolved'],
    'one episode: no resolved and firing again for the backlog',
  );
  assert.equal(
    (await listTransitions(vm!.id)).map((tr) => tr.to),
    ['pending', 'reporting', 'silent', 'reporting'],
  );
});

t.run();
