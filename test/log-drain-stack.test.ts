// Pull delivery on the local stack (npm start -- --log-delivery pull): simulated VMs ship an hour of
// osqueryd lines to the log topic; the filter relay passes the heartbeats and the schedule snapshot on
// to the pull subscription, and one drain tick (Pub/Sub push to logHeartbeatDrain) records them all.
import * as assert from 'uvu/assert';
import { createVm } from './helpers/fleet.js';
import { newHeartbeatInstances, stackSuite, waitFor, type Stack } from './helpers/stack.js';
import { getHost } from '../shared/adapters/hosts.js';
import { pullMessages } from '../shared/adapters/pubsub.js';
import { clients } from '../shared/clients.js';
import { config, logHeartbeatSubscription } from '../shared/config.js';
import { publish } from '../shared/usecases/publish.js';
import { LOG_HEARTBEAT_FILTER } from '../shared/osquery/log-routing.js';

const P = 'pulled';
const Z = 'asia-east1-b';

const t = stackSuite(
  'logHeartbeat pull delivery on the local stack',
  {
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-pulled',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    LOG_HEARTBEAT_SUBSCRIPTION: 'osquery-logs-heartbeat-pull',
  },
  async (stack) => {
    await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
    await newHeartbeatInstances();
  },
);

async function tick(): Promise<void> {
  await (await clients.pubsub()).topic(config().LOG_DRAIN_TICK_TOPIC).publishMessage({ json: { source: 'test' } });
}

t(
  'the stack wires pull delivery: the filtered pull subscription, and the drain tick pushed to logHeartbeatDrain',
  async ({ stack }) => {
    assert.is(stack.functions.logDelivery, 'pull');
    const pubsub = await clients.pubsub();
    const [sub] = await pubsub.subscription(logHeartbeatSubscription()).getMetadata();
    assert.is(sub.filter, LOG_HEARTBEAT_FILTER, 'the pull subscription carries the code filter, as in Terraform');
    const [tick] = await pubsub.subscription(`${config().LOG_DRAIN_TICK_TOPIC}-push`).getMetadata();
    assert.match(tick.pushConfig!.pushEndpoint!, new RegExp(`^${stack.functions.urls.logHeartbeatDrain}projects/`));
  },
);

t(
  'an hour of a VM: 13 lines reach the subscription, one drain records them and leaves it empty',
  async ({ stack }: { stack: Stack }) => {
    await publish({ projects: [P] });
    const vm = await createVm(stack, { project: P, zone: Z, name: 'pull-1', os: 'debian-12' });
    await stack.control('POST', '/agents/run');
    const before = { ...stack.functions.logRelay.counts };
    let lines = 0;
    for (let i = 0; i < 12; i++) lines += (await stack.control<{ messages: number }>('POST', '/logs/ship')).messages;
    const counts = await waitFor(
      `the relay to handle ${lines} lines`,
      () => ({ ...stack.functions.logRelay.counts }),
      (c) => c.forwarded - before.forwarded + (c.filtered - before.filtered) >= lines,
      20_000,
    );
    assert.is(counts.forwarded - before.forwarded, 13, 'twelve heartbeats and one osquery_schedule snapshot');
    assert.is(counts.failed - before.failed, 0);
    assert.is((await getHost(vm.id))?.lastLogAt ?? null, null, 'nothing is recorded before a drain');

    await tick();
    const host = await waitFor(
      'the drain to record the host',
      () => getHost(vm.id),
      (h) => Boolean(h?.lastLogAt),
      20_000,
    );
    assert.ok(host?.lastLogAt, 'logHeartbeatDrain recorded the heartbeats');
    assert.is((await pullMessages(logHeartbeatSubscription(), 100, 500)).length, 0, 'the subscription is empty');
  },
);

t.run();
