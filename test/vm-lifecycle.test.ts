import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clearFirestore, startStack, type Stack } from './helpers/stack.js';
import { getHost, listTransitions } from '../shared/adapters/hosts.js';

const t = suite<{ stack: Stack }>('vmLifecycle end to end');

t.before(async (ctx) => {
  ctx.stack = await startStack();
});
t.after(async (ctx) => ctx.stack.close());
t.before.each(async (ctx) => {
  await clearFirestore();
  await ctx.stack.control('POST', '/reset');
  await ctx.stack.control('POST', '/projects', { id: 'p1', metadata: { 'enable-osconfig': 'TRUE' } });
});

t('a Debian VM is enrolled: zone assignment created, host pending', async ({ stack }) => {
  const vm = await stack.control('POST', '/vms', { project: 'p1', zone: 'us-central1-a', name: 'web-1', os: 'debian-12' });
  await stack.flushEvents();
  const host = await getHost(vm.id);
  assert.ok(host, 'host document written');
  assert.is(host!.state, 'pending');
  assert.is(host!.reason, 'policy-targeted');
  const assignments = await stack.control('GET', '/assignments');
  assert.is(assignments.length, 1);
  const transitions = await listTransitions(vm.id);
  assert.is(transitions.length, 1);
  console.log(await stack.apiCalls(), stack.sim.eventarc.deliveries);
});

t.run();
