// The log path on the local stack: lines published to the log topic as the shipper publishes them (one
// message per line, identity and query name as attributes) reach logHeartbeat through the filtered
// subscription only when logHeartbeat reads them; the SIEM's unfiltered subscription gets every line.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { clearFirestore, newHeartbeatInstances, startStack, waitFor, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { getHost } from '../shared/adapters/hosts.js';
import { publish } from '../shared/usecases/publish.js';
import { clients } from '../shared/clients.js';
import { config } from '../shared/config.js';
import {
  HEARTBEAT_QUERY,
  LOG_HEARTBEAT_FILTER,
  QUERY_NAME_ATTRIBUTE,
  SCHEDULE_QUERY,
} from '../shared/osquery/log-routing.js';

const P = 'routing';
const Z = 'europe-west1-b';
const t = suite<{ stack: Stack; siem: Subscription }>('log routing');

t.before(async (ctx) => {
  ctx.stack = await startStack({
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-routing',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '60',
  });
  // The SIEM's own subscription on the same topic: no filter.
  [ctx.siem] = await (await clients.pubsub()).topic(config().LOG_TOPIC).createSubscription('test-siem');
});
t.after(async (ctx) => ctx.stack.close());
t.before.each(async ({ stack }) => {
  await clearFirestore();
  await stack.control('POST', '/reset');
  await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
  await newHeartbeatInstances();
});

/** Everything on a pull subscription now. */
async function drain(sub: Subscription, expect: number): Promise<Array<Record<string, string>>> {
  const seen: Array<Record<string, string>> = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the SIEM got ${seen.length} of ${expect} lines`)), 15_000);
    sub.on('message', (m) => {
      seen.push(m.attributes);
      m.ack();
      if (seen.length >= expect) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await sub.close();
  return seen;
}

const line = (name: string, at = Date.now()) =>
  JSON.stringify({ name, unixTime: Math.floor(at / 1000), action: 'snapshot', snapshot: [{ x: '1' }] });

t(
  'the emulator keeps the filter from code on the log subscription; the relay applies what it reads back',
  async ({ stack }) => {
    const [metadata] = await (await clients.pubsub()).subscription(`${config().LOG_TOPIC}-push`).getMetadata();
    assert.is(metadata.filter, LOG_HEARTBEAT_FILTER);
    assert.is(stack.functions.logRelay.filter, LOG_HEARTBEAT_FILTER);
    assert.match(metadata.pushConfig!.pushEndpoint!, new RegExp(`^${stack.functions.logRelay.url}projects/`));
  },
);

t(
  'result lines of other queries never reach logHeartbeat; heartbeats, schedule snapshots and attribute-less lines do',
  async ({ stack, siem }) => {
    const [onlyResults, heartbeat, schedule, oldShipper] = await Promise.all(
      ['results', 'beats', 'costs', 'legacy'].map((name) =>
        createVm(stack, { project: P, zone: Z, name, os: 'debian-12' }),
      ),
    );
    for (const vm of [onlyResults, heartbeat, schedule, oldShipper])
      assert.is((await getHost(vm!.id))?.lastLogAt ?? null, null, `${vm!.name} starts without logs`);
    const ids = (vm: { id: string }) => ({ gce_instance_id: vm.id, gce_project_id: P, gce_zone: Z });
    const sends: Array<[{ id: string }, string, Record<string, string>]> = [
      [
        onlyResults!,
        line('pack_network_listening_ports'),
        { log_type: 'result', [QUERY_NAME_ATTRIBUTE]: 'pack_network_listening_ports' },
      ],
      [
        onlyResults!,
        line('pack_users_authorized_keys'),
        { log_type: 'result', [QUERY_NAME_ATTRIBUTE]: 'pack_users_authorized_keys' },
      ],
      [
        onlyResults!,
        line('pack_osquery-health_osquery_info'),
        { log_type: 'result', [QUERY_NAME_ATTRIBUTE]: 'pack_osquery-health_osquery_info' },
      ],
      [heartbeat!, line(HEARTBEAT_QUERY), { log_type: 'snapshot', [QUERY_NAME_ATTRIBUTE]: HEARTBEAT_QUERY }],
      [schedule!, line(SCHEDULE_QUERY), { log_type: 'snapshot', [QUERY_NAME_ATTRIBUTE]: SCHEDULE_QUERY }],
      [oldShipper!, line(HEARTBEAT_QUERY), { log_type: 'snapshot' }],
    ];
    const before = { ...stack.functions.logRelay.counts };
    const topic = (await clients.pubsub()).topic(config().LOG_TOPIC);
    for (const [vm, data, attributes] of sends)
      await topic.publishMessage({ data: Buffer.from(data), attributes: { ...ids(vm), ...attributes } });

    // Every message handled: three acknowledged by the filter, three answered by logHeartbeat.
    const counts = await waitFor(
      'the relay to handle six messages',
      () => ({ ...stack.functions.logRelay.counts }),
      (c) => c.forwarded - before.forwarded + (c.filtered - before.filtered) >= 6,
    );
    // What logHeartbeat actually received: it wrote the hosts whose lines passed, and only those.
    for (const vm of [heartbeat!, schedule!, oldShipper!])
      assert.ok((await getHost(vm.id))?.lastLogAt, `${vm.id}: logHeartbeat recorded its line`);
    assert.is((await getHost(onlyResults!.id))?.lastLogAt ?? null, null, 'no result line reached logHeartbeat');

    assert.equal(
      {
        forwarded: counts.forwarded - before.forwarded,
        filtered: counts.filtered - before.filtered,
        failed: counts.failed - before.failed,
      },
      { forwarded: 3, filtered: 3, failed: 0 },
    );
    // The SIEM still receives every line from the same topic.
    const siemLines = await drain(siem, 6);
    assert.equal(
      siemLines.map((a) => a[QUERY_NAME_ATTRIBUTE] ?? '(none)').sort(),
      [
        '(none)',
        HEARTBEAT_QUERY,
        'pack_network_listening_ports',
        'pack_osquery-health_osquery_info',
        SCHEDULE_QUERY,
        'pack_users_authorized_keys',
      ].sort(),
    );
  },
);

t(
  'simulated VMs: an hour of osqueryd lines, the heartbeats and the schedule snapshot ' +
    'reach logHeartbeat, results do not',
  async ({ stack }) => {
    await publish({ projects: [P] });
    const vm = await createVm(stack, { project: P, zone: Z, name: 'sim-1', os: 'debian-12' });
    await stack.control('POST', '/agents/run');
    const before = { ...stack.functions.logRelay.counts };
    let lines = 0;
    for (let i = 0; i < 12; i++) lines += (await stack.control<{ messages: number }>('POST', '/logs/ship')).messages;
    const counts = await waitFor(
      `the relay to handle ${lines} lines`,
      () => ({ ...stack.functions.logRelay.counts }),
      (c) => c.forwarded - before.forwarded + (c.filtered - before.filtered) >= lines,
    );
    const forwarded = counts.forwarded - before.forwarded;
    assert.is(forwarded, 13, 'twelve heartbeats and one osquery_schedule snapshot');
    assert.is(counts.filtered - before.filtered, lines - 13, 'every other line was acknowledged by the filter');
    assert.ok(lines - 13 >= 14, `the VM's other queries produced results (${lines - 13})`);
    assert.is(counts.failed - before.failed, 0);
    assert.ok((await getHost(vm.id))?.lastLogAt, 'logHeartbeat recorded the heartbeats');
  },
);

t.run();
