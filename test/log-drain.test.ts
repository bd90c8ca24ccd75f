// logHeartbeat's pull delivery against the emulators: lines published to a topic with a pull subscription,
// drained by logHeartbeatDrain's use case (and its handler) into the same host writes as the push path.
// The emulator stores subscription filters without applying them (infra/local/filter-relay.ts): only
// lines that pass LOG_HEARTBEAT_FILTER are published here; the filter itself is tested in log-routing.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Subscription, Topic } from '@google-cloud/pubsub';
import type { DocumentData, DocumentSnapshot } from '@google-cloud/firestore';
import { captureLogs, clearFirestore, newHeartbeatInstances, startStack, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain as drainAlerts } from './helpers/pubsub.js';
import { acknowledge, pullMessages } from '../shared/adapters/pubsub.js';
import { clients } from '../shared/clients.js';
import { config, resetConfig } from '../shared/config.js';
import { usageSnapshot } from '../shared/metrics.js';
import { HeartbeatEngine } from '../shared/usecases/heartbeat.js';
import { drainLogSubscription, type DrainOptions } from '../shared/usecases/log-drain.js';
import { HEARTBEAT_QUERY, LOG_HEARTBEAT_FILTER, QUERY_NAME_ATTRIBUTE } from '../shared/osquery/log-routing.js';

const P = 'drain';
const Z = 'europe-west4-a';
const MIN = 60_000;
const MiB = 1024 * 1024;
const TOPIC = 'drain-logs';
const SUB = 'drain-logs-heartbeat';

interface Ctx {
  stack: Stack;
  topic: Topic;
  subscription: string;
  alerts: Subscription;
  /** The logHeartbeatDrain instance the tests drain with; the served function has its own. */
  engine: HeartbeatEngine;
}
const t = suite<Ctx>('logHeartbeat pull delivery (logHeartbeatDrain)');

t.before(async (ctx) => {
  ctx.stack = await startStack({
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-drain',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '60',
  });
  const pubsub = await clients.pubsub();
  [ctx.topic] = await pubsub.createTopic(TOPIC);
  // As Terraform makes it in pull mode: the code's filter, an ack deadline above the drain's budget.
  const [sub] = await ctx.topic.createSubscription(SUB, { filter: LOG_HEARTBEAT_FILTER, ackDeadlineSeconds: 120 });
  ctx.subscription = sub.name;
  [ctx.alerts] = await pubsub.topic(config().ALERT_TOPIC).createSubscription('test-drain-alerts');
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

const ids = (vm: { id: string }) => ({ gce_instance_id: vm.id, gce_project_id: P, gce_zone: Z });
/** A heartbeat line as the bundle's query writes it: the worker's processes row. */
const heartbeat = (at: number, cpuMs: number, rss = 40 * MiB) =>
  JSON.stringify({
    name: HEARTBEAT_QUERY,
    unixTime: Math.floor(at / 1000),
    action: 'snapshot',
    snapshot: [
      {
        heartbeat_at: String(Math.floor(at / 1000)),
        pid: '4242',
        start_time: '1700000000',
        user_time: String(cpuMs),
        system_time: '0',
        resident_size: String(rss),
      },
    ],
  });

async function send(topic: Topic, vm: { id: string }, data: string, attributes: Record<string, string> = {}) {
  await topic.publishMessage({
    data: Buffer.from(data),
    attributes: { ...ids(vm), log_type: 'snapshot', [QUERY_NAME_ATTRIBUTE]: HEARTBEAT_QUERY, ...attributes },
  });
}

const drainNow = (ctx: Ctx, options: Partial<DrainOptions> = {}) =>
  drainLogSubscription(ctx.engine, { subscription: ctx.subscription, budgetMs: 30_000, pullWaitMs: 500, ...options });

async function hostDoc(id: string): Promise<DocumentSnapshot<DocumentData>> {
  return clients.firestore().collection('hosts').doc(id).get();
}

async function vms(stack: Stack, n: number, prefix: string) {
  const out: Array<{ id: string; name: string }> = [];
  for (let i = 0; i < n; i++)
    out.push(await createVm(stack, { project: P, zone: Z, name: `${prefix}-${i}`, os: 'debian-12' }));
  return out;
}

t(
  'one drain writes each of several hosts once; the subscription is then empty and a second drain does nothing',
  async (ctx) => {
    const hosts = await vms(ctx.stack, 4, 'fleet');
    const t0 = Date.now() - 10 * MIN;
    for (const [i, vm] of hosts.entries()) {
      await send(ctx.topic, vm, heartbeat(t0, 0, (40 + i) * MiB));
      await send(ctx.topic, vm, heartbeat(t0 + 5 * MIN, 3000, (40 + i) * MiB)); // 3 s of CPU in 300 s: 1%
    }
    const before = usageSnapshot().firestoreWrites;
    const first = await drainNow(ctx);
    assert.equal(
      { pulled: first.pulled, acked: first.acked, nacked: first.nacked, leftover: first.leftover },
      { pulled: 8, acked: 8, nacked: 0, leftover: 0 },
    );
    assert.ok(first.batches >= 1);
    assert.is(usageSnapshot().firestoreWrites - before, 4, 'one host write per host');
    const written = new Map<string, number>();
    for (const [i, vm] of hosts.entries()) {
      const doc = await hostDoc(vm.id);
      assert.is(
        doc.get('lastLogAt')?.toMillis(),
        Math.floor((t0 + 5 * MIN) / 1000) * 1000,
        `${vm.name}: the newest line`,
      );
      assert.is(doc.get('osqueryd.cpuPercent'), 1, `${vm.name}: CPU% from its two heartbeats`);
      assert.is(doc.get('osqueryd.rssBytes'), (40 + i) * MiB, `${vm.name}: its own memory`);
      written.set(vm.id, doc.updateTime!.toMillis());
    }

    ctx.engine = new HeartbeatEngine(); // another instance: nothing remembered, everything would be read again
    const second = await drainNow(ctx);
    assert.equal(
      { pulled: second.pulled, acked: second.acked, batches: second.batches },
      { pulled: 0, acked: 0, batches: 0 },
    );
    assert.is(usageSnapshot().firestoreWrites - before, 4, 'the second drain wrote nothing');
    for (const vm of hosts) assert.is((await hostDoc(vm.id)).updateTime!.toMillis(), written.get(vm.id), vm.name);
    assert.equal(
      (await drainAlerts(ctx.alerts)).map((a) => a.data),
      [],
      'no alert from either drain',
    );
  },
);

t(
  'the same line delivered twice (published twice) changes nothing the second time, in one drain or the next',
  async (ctx) => {
    const [vm] = await vms(ctx.stack, 1, 'dup');
    const at = Date.now() - 2 * MIN;
    await send(ctx.topic, vm!, heartbeat(at, 1000));
    await send(ctx.topic, vm!, heartbeat(at, 1000));
    const before = usageSnapshot().firestoreWrites;
    const first = await drainNow(ctx);
    assert.equal({ pulled: first.pulled, acked: first.acked }, { pulled: 2, acked: 2 });
    assert.is(usageSnapshot().firestoreWrites - before, 1, 'one write for both copies');
    const doc = await hostDoc(vm!.id);
    assert.is(doc.get('lastLogAt')?.toMillis(), Math.floor(at / 1000) * 1000);

    ctx.engine = new HeartbeatEngine(); // the third copy reaches an instance that never saw the line
    await send(ctx.topic, vm!, heartbeat(at, 1000));
    const again = await drainNow(ctx);
    assert.equal(
      { pulled: again.pulled, acked: again.acked, outcomes: again.outcomes },
      {
        pulled: 1,
        acked: 1,
        outcomes: { unchanged: 1 },
      },
    );
    assert.is(usageSnapshot().firestoreWrites - before, 1, 'the redelivery wrote nothing');
    assert.is((await hostDoc(vm!.id)).updateTime!.toMillis(), doc.updateTime!.toMillis());
    assert.equal(
      (await drainAlerts(ctx.alerts)).map((a) => a.data),
      [],
    );
  },
);

t('malformed and unattributed messages are acknowledged and logged with a reason, never redelivered', async (ctx) => {
  const [vm] = await vms(ctx.stack, 1, 'bad');
  await send(ctx.topic, vm!, 'this is not JSON');
  await ctx.topic.publishMessage({ data: Buffer.from(heartbeat(Date.now(), 0)), attributes: { log_type: 'snapshot' } });
  await ctx.topic.publishMessage({
    data: Buffer.from(heartbeat(Date.now(), 0)),
    attributes: { gce_instance_id: '999999', gce_project_id: P, gce_zone: Z },
  });
  const { result, logs } = await captureLogs(() => drainNow(ctx));
  assert.equal(
    { pulled: result.pulled, acked: result.acked, nacked: result.nacked, outcomes: result.outcomes },
    { pulled: 3, acked: 3, nacked: 0, outcomes: { 'no-lines': 1, 'no-identity': 1, 'unknown-host': 1 } },
  );
  const warned = logs.filter((l) => l.severity === 'WARNING').map((l) => l.message);
  for (const reason of [
    'logHeartbeatDrain: message without a readable log line, acknowledged',
    'logHeartbeat: log lines without host identity attributes',
    'logHeartbeat: log lines from an unknown host',
  ])
    assert.ok(warned.includes(reason), `logged: ${reason} (${JSON.stringify(warned)})`);
  assert.is(logs.find((l) => l.message.startsWith('logHeartbeatDrain: message without'))?.malformed, 1);
  assert.is((await hostDoc(vm!.id)).get('lastLogAt') ?? null, null);
  assert.is((await drainNow(ctx)).pulled, 0, 'acknowledged: not delivered again');
});

t(
  'a budget that ends mid-way releases what it did not process; the next drain gets it, nothing is lost',
  async (ctx) => {
    const hosts = await vms(ctx.stack, 6, 'budget');
    const at = Date.now() - MIN;
    for (const vm of hosts) await send(ctx.topic, vm, heartbeat(at, 0));
    // A clock that moves a second each time it is read: the 6-second budget runs out part-way through.
    let now = 0;
    const first = await drainNow(ctx, { budgetMs: 6_000, concurrency: 1, clock: () => (now += 1000) });
    assert.is(first.pulled, 6, `one pull got them all: ${JSON.stringify(first)}`);
    assert.ok(first.acked > 0 && first.leftover > 0, `processed some, left some: ${JSON.stringify(first)}`);
    assert.is(first.acked + first.nacked, 6, 'every pulled message acknowledged or released');
    assert.is(first.nacked, first.leftover, 'nothing failed');
    const recorded = [];
    for (const vm of hosts) if ((await hostDoc(vm.id)).get('lastLogAt')) recorded.push(vm.id);
    assert.is(recorded.length, first.acked, 'exactly the acknowledged messages were recorded');

    const second = await drainNow(ctx);
    assert.equal(
      { pulled: second.pulled, acked: second.acked, nacked: second.nacked },
      {
        pulled: first.leftover,
        acked: first.leftover,
        nacked: 0,
      },
    );
    for (const vm of hosts)
      assert.is(
        (await hostDoc(vm.id)).get('lastLogAt')?.toMillis(),
        Math.floor(at / 1000) * 1000,
        `${vm.name} recorded`,
      );
    assert.is((await drainNow(ctx)).pulled, 0);
  },
);

/** logHeartbeatDrain served by the Functions Framework, as Cloud Functions runs it; one tick posted to it. */
async function tick(): Promise<number> {
  const { getTestServer } = await import('@google-cloud/functions-framework/testing');
  const server: Server = getTestServer('logHeartbeatDrain');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  try {
    const project = process.env.GOOGLE_CLOUD_PROJECT;
    const url =
      `http://127.0.0.1:${(server.address() as AddressInfo).port}` +
      `/projects/${project}/topics/${config().LOG_DRAIN_TICK_TOPIC}`;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: {
          data: Buffer.from(JSON.stringify({ source: 'cloud-scheduler' })).toString('base64'),
          messageId: String(Math.random()).slice(2),
        },
        subscription: `projects/${project}/subscriptions/tick`,
      }),
    });
    await res.arrayBuffer();
    return res.status;
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

t(
  'the handler: a missing or wrong subscription setting answers 500 and acknowledges no line; fixed, it drains',
  async (ctx) => {
    const [vm] = await vms(ctx.stack, 1, 'tick');
    const at = Date.now() - MIN;
    await send(ctx.topic, vm!, heartbeat(at, 0));
    const saved = process.env.LOG_HEARTBEAT_SUBSCRIPTION;
    try {
      for (const [setting, why] of [
        [undefined, 'unset'],
        ['no-such-subscription', 'not found'],
      ] as const) {
        if (setting === undefined) delete process.env.LOG_HEARTBEAT_SUBSCRIPTION;
        else process.env.LOG_HEARTBEAT_SUBSCRIPTION = setting;
        resetConfig();
        const { result: status, logs } = await captureLogs(tick);
        assert.is(status, 500, `${why}: the tick is not acknowledged`);
        const failure = logs.find((l) => l.message === 'logHeartbeatDrain: bad configuration, will be redelivered');
        assert.match(String(failure?.reason), /LOG_HEARTBEAT_SUBSCRIPTION/, `${why}: the error names the setting`);
        assert.is((await hostDoc(vm!.id)).get('lastLogAt') ?? null, null, `${why}: nothing recorded`);
      }
      process.env.LOG_HEARTBEAT_SUBSCRIPTION = SUB; // an id in GOOGLE_CLOUD_PROJECT
      process.env.LOG_DRAIN_BUDGET_SECONDS = '10';
      resetConfig();
      assert.is(await tick(), 204, 'a good setting: the tick is acknowledged');
      assert.is(
        (await hostDoc(vm!.id)).get('lastLogAt')?.toMillis(),
        Math.floor(at / 1000) * 1000,
        'the line waited on the subscription and is recorded',
      );
    } finally {
      if (saved === undefined) delete process.env.LOG_HEARTBEAT_SUBSCRIPTION;
      else process.env.LOG_HEARTBEAT_SUBSCRIPTION = saved;
      delete process.env.LOG_DRAIN_BUDGET_SECONDS;
      resetConfig();
    }
  },
);

t.run();
