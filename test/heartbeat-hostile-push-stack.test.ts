// Issue 20 on the local stack, push delivery (logHeartbeat behind the filtered push subscription): a VM
// that sends malformed heartbeats every round affects no other host and moves no rollout gate.
import * as assert from 'uvu/assert';
import { hostileSuite, runHostileScenario } from './helpers/hostile-vm.js';
import { getHost } from '../shared/adapters/hosts.js';

const t = hostileSuite('a hostile VM on the local stack (push delivery)', 'push');

t(
  'every other host keeps reporting and no rollout gate moves while one VM sends malformed heartbeats',
  async ({ stack }) => {
    assert.is(stack.functions.logDelivery, 'push');
    const { others, hostile } = await runHostileScenario(stack, 'push', 4);
    for (const vm of others) assert.is((await getHost(vm.id))?.state, 'reporting', vm.name);
    const bad = await getHost(hostile.id);
    assert.is(bad?.state, 'reporting', 'its own good lines still count');
  },
);

t.run();
