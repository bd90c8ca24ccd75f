// One retry layer: withRetry (shared/errors.ts), with the client libraries' own retries off. Against the
// simulator's injected faults, through the real client libraries: a call that meets N transient failures
// is sent N + 1 times and every attempt is counted; past withRetry's budget it fails after exactly its six
// attempts (a client retrying underneath would absorb the failures, unseen); a permanent error is sent once.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startSimulator, type Simulator } from '../infra/local/simulator/server.js';
import { resetConfig } from '../shared/config.js';
import { closeClients, resetClients } from '../shared/clients.js';
import { getProjectMetadata, getVm, listProjectVms, setInstanceLabel } from '../shared/adapters/compute.js';
import { getAssignment, listZoneInventories, listZoneReports } from '../shared/adapters/osconfig.js';
import { ensureObject } from '../shared/adapters/storage.js';
import { isPermissionDenied, isTransient } from '../shared/errors.js';
import { usageSince, usageSnapshot } from '../shared/metrics.js';

const t = suite<{ sim: Simulator }>('one retry layer');
t.before(async (ctx) => {
  ctx.sim = await startSimulator();
  process.env.GOOGLE_API_ENDPOINT = ctx.sim.url;
  resetConfig();
  resetClients();
});
t.after(async (ctx) => {
  await closeClients();
  await ctx.sim.close();
});
t.before.each(({ sim }) => {
  sim.world.reset();
  sim.world.requests.clear();
});

/** Requests the simulator answered, and the API calls the process counted, while `fn` ran. */
async function measured<T>(sim: Simulator, fn: () => Promise<T>) {
  const before = usageSnapshot();
  sim.world.requests.clear();
  let result: T | undefined;
  let error: unknown;
  try {
    result = await fn();
  } catch (e) {
    error = e;
  }
  return { result, error, requests: Object.fromEntries(sim.world.requests), counted: usageSince(before).apiCalls };
}

const failNext = (sim: Simulator, status: number, count: number, match: string) =>
  (sim.world.faults.failNext = [{ status, count, match }]);

t('Compute reads: N transient failures, N + 1 requests, each one counted', async ({ sim }) => {
  const vm = sim.world.addVm({ project: 'p', zone: 'z-1', name: 'web-1', os: 'debian-12' });
  // 503 is UNAVAILABLE, which Compute's client would retry on its own for these idempotent reads.
  failNext(sim, 503, 2, 'compute.instances.get');
  const read = await measured(sim, () => getVm({ project: 'p', zone: 'z-1', name: 'web-1' }));
  assert.is(read.result?.instanceId, vm.id);
  assert.equal(read.requests, { 'compute.instances.get': 3 });
  assert.equal(read.counted, { 'compute.instances.get': 3 }, 'every attempt went through withRetry and was counted');

  failNext(sim, 503, 2, 'compute.instances.aggregatedList');
  const listed = await measured(sim, () => listProjectVms('p'));
  assert.is(listed.result?.length, 1);
  assert.equal(listed.requests, { 'compute.instances.aggregatedList': 3 });
  assert.equal(listed.counted, { 'compute.instances.aggregatedList': 3 });

  failNext(sim, 429, 1, 'compute.projects.get');
  const metadata = await measured(sim, () => getProjectMetadata('p'));
  assert.equal(metadata.requests, { 'compute.projects.get': 2 });
  assert.equal(metadata.counted, { 'compute.projects.get': 2 });
});

t("past withRetry's budget: exactly six requests, then the transient error surfaces", async ({ sim }) => {
  sim.world.addVm({ project: 'p', zone: 'z-1', name: 'web-1', os: 'debian-12' });
  // Seven failures: with the client's own retry underneath, they would be absorbed and the read succeed.
  failNext(sim, 503, 7, 'compute.instances.get');
  const read = await measured(sim, () => getVm({ project: 'p', zone: 'z-1', name: 'web-1' }));
  assert.ok(read.error && isTransient(read.error), String(read.error));
  assert.equal(read.requests, { 'compute.instances.get': 6 });
  assert.equal(read.counted, { 'compute.instances.get': 6 });
});

t('permanent errors are sent once: 404 and 403 from Compute and OS Config', async ({ sim }) => {
  const missing = await measured(sim, () => getVm({ project: 'p', zone: 'z-1', name: 'nope' }));
  assert.is(missing.result, null);
  assert.equal(missing.requests, { 'compute.instances.get': 1 });

  const noAssignment = await measured(sim, () => getAssignment('p', 'z-1', 'osquery'));
  assert.is(noAssignment.result, null);
  assert.equal(noAssignment.requests, { 'osconfig.osPolicyAssignments.get': 1 });

  sim.world.faults.deniedProjects = ['secret'];
  const calls: Array<() => Promise<unknown>> = [() => listProjectVms('secret'), () => listZoneReports('secret', 'z-1')];
  for (const call of calls) {
    const denied = await measured(sim, call);
    assert.ok(isPermissionDenied(denied.error), String(denied.error));
    assert.is(
      Object.values(denied.requests).reduce((a, b) => a + b, 0),
      1,
      JSON.stringify(denied.requests),
    );
  }
});

t('OS Config reads: N transient failures, N + 1 requests', async ({ sim }) => {
  sim.world.addVm({ project: 'p', zone: 'z-1', name: 'web-1', os: 'debian-12' });
  failNext(sim, 503, 2, 'osconfig.inventories.list');
  const inventories = await measured(sim, () => listZoneInventories('p', 'z-1'));
  assert.is(inventories.error, undefined, String(inventories.error));
  assert.equal(inventories.requests, { 'osconfig.inventories.list': 3 });
  assert.equal(inventories.counted, { 'osconfig.listInventories': 3 });

  failNext(sim, 500, 1, 'osconfig.osPolicyAssignments.get');
  const assignment = await measured(sim, () => getAssignment('p', 'z-1', 'osquery'));
  assert.is(assignment.result, null);
  assert.equal(assignment.requests, { 'osconfig.osPolicyAssignments.get': 2 });
});

t('Cloud Storage: its own retries are off, withRetry retries; a 403 is sent once', async ({ sim }) => {
  // Storage's library retries a conditional upload (ifGenerationMatch) three times on 503 by itself.
  failNext(sim, 503, 2, 'storage.objects.insert');
  const stored = await measured(sim, () => ensureObject('cfg', 'v1/osquery.conf', '{}'));
  assert.is(stored.result?.uploaded, true, String(stored.error));
  assert.equal(stored.requests, { 'storage.objects.insert': 3 });
  assert.equal(stored.counted, { 'storage.objects.insert': 3 });

  failNext(sim, 403, 1, 'storage.objects.insert');
  const denied = await measured(sim, () => ensureObject('cfg', 'v2/osquery.conf', '{}'));
  assert.ok(isPermissionDenied(denied.error), String(denied.error));
  assert.equal(denied.requests, { 'storage.objects.insert': 1 });
});

t(
  'a fingerprinted write: a 503 is retried in place, each 412 re-reads once, no loop multiplies another',
  async ({ sim }) => {
    sim.world.addVm({ project: 'p', zone: 'z-1', name: 'web-1', os: 'debian-12', labels: { team: 'sec' } });
    // The first write meets a 503; the next two lose a race to another writer (412); the fourth lands.
    failNext(sim, 503, 1, 'compute.instances.setLabels');
    sim.world.faults.concurrentWrites = 2;
    const write = await measured(sim, () =>
      setInstanceLabel({ project: 'p', zone: 'z-1', name: 'web-1' }, 'osquery-exempt', 'true'),
    );
    assert.is(write.error, undefined, String(write.error));
    assert.is(write.requests['compute.instances.get'], 3, 'one read, and one more per 412');
    assert.is(write.requests['compute.instances.setLabels'], 4, '503, 412, 412, done');
    assert.equal(sim.world.findVm('p', 'z-1', 'web-1')?.labels, { team: 'sec', 'osquery-exempt': 'true' });
  },
);

t.run();
