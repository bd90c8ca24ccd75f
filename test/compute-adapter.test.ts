// The Compute adapter through @google-cloud/compute against the simulator: paging and shapes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startSimulator, type Simulator } from '../infra/local/simulator/server.js';
import { resetConfig } from '../shared/config.js';
import { clients, resetClients } from '../shared/clients.js';
import { getProjectMetadata, getVm, listProjectVms, listZoneVms } from '../shared/adapters/compute.js';
import { clientRetryOff, isPermissionDenied, isTransient } from '../shared/errors.js';

const t = suite<{ sim: Simulator }>('compute adapter');
t.before(async (ctx) => {
  ctx.sim = await startSimulator();
  process.env.GOOGLE_API_ENDPOINT = ctx.sim.url;
  resetConfig();
  resetClients();
});
t.after(async (ctx) => ctx.sim.close());

t('aggregated list pages through 1,200 VMs in 3 zones at 500 per page', async ({ sim }) => {
  for (const zone of ['us-central1-a', 'us-central1-b', 'europe-west1-c']) {
    for (let i = 0; i < 400; i++)
      sim.world.addVm({ project: 'big', zone, name: `vm-${i}`, os: i % 2 ? 'debian-12' : 'rhel-9' });
  }
  const vms = await listProjectVms('big');
  assert.is(vms.length, 1200);
  assert.is(new Set(vms.map((v) => v.instanceId)).size, 1200);
  assert.is(sim.world.requests.get('compute.instances.aggregatedList'), 3);
  assert.is((await listProjectVms('big', { zonePrefix: 'us-central1-' })).length, 800);
  assert.is((await listZoneVms('big', 'europe-west1-c')).length, 400);
});

t('a VM comes back in domain shape; a missing one is null', async ({ sim }) => {
  const created = sim.world.addVm({
    project: 'shape',
    zone: 'z-1',
    name: 'one',
    os: 'ubuntu-2204',
    labels: { team: 'sec' },
    metadata: { 'enable-osconfig': 'TRUE' },
  });
  const vm = await getVm({ project: 'shape', zone: 'z-1', name: 'one' });
  assert.ok(vm?.createdAt instanceof Date && !Number.isNaN(vm.createdAt.getTime()), 'creation time parsed');
  assert.equal(vm && { ...vm, labelFingerprint: '', metadataFingerprint: '', createdAt: undefined }, {
    createdAt: undefined,
    instanceId: created.id,
    name: 'one',
    project: 'shape',
    zone: 'z-1',
    status: 'RUNNING',
    labels: { team: 'sec' },
    labelFingerprint: '',
    metadata: { 'enable-osconfig': 'TRUE' },
    metadataFingerprint: '',
    serviceAccounts: [created.serviceAccount!],
    os: 'ubuntu',
  });
  assert.is(await getVm({ project: 'shape', zone: 'z-1', name: 'nope' }), null);
  sim.world.setProjectMetadata('shape', { 'enable-osconfig': 'TRUE', other: 'x' });
  assert.equal(await getProjectMetadata('shape'), { 'enable-osconfig': 'TRUE', other: 'x' });
});

t('a denied project fails permanently (403), not retried', async ({ sim }) => {
  sim.world.faults.deniedProjects = ['secret'];
  sim.world.requests.clear();
  try {
    await getVm({ project: 'secret', zone: 'z', name: 'x' });
    assert.unreachable();
  } catch (error) {
    assert.ok(isPermissionDenied(error), String(error));
    assert.not.ok(isTransient(error));
  }
  assert.is(sim.world.requests.get('compute.instances.get'), 1);
});

// A full collection on demand, as --expose-gc gives (the test runner starts no flags).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

t('a finished Compute call leaves nothing of its response behind', async ({ sim }) => {
  for (let i = 0; i < 3; i++) sim.world.addVm({ project: 'gone', zone: 'z-1', name: `vm-${i}`, os: 'debian-12' });
  // A response, a page of a listing and a zone's part of an aggregated listing, watched through weak references only.
  const watch = async () => {
    const instances = await clients.instances();
    const [instance] = await instances.get({ project: 'gone', zone: 'z-1', instance: 'vm-0' }, clientRetryOff());
    const [page] = await instances.list({ project: 'gone', zone: 'z-1', maxResults: 2 }, clientRetryOff());
    const scopes: object[] = [];
    for await (const [, list] of instances.aggregatedListAsync({ project: 'gone' }, clientRetryOff()))
      scopes.push(list);
    return [new WeakRef(instance), new WeakRef(page), new WeakRef(scopes[0]!)];
  };
  const refs = await watch();
  assert.ok(refs.every((r) => r.deref() !== undefined));
  // Long before the calls' deadlines (600 s by default): nothing may hold on to their responses till then.
  await new Promise((r) => setImmediate(r));
  collectGarbage();
  assert.equal(
    refs.map((r) => r.deref() === undefined),
    [true, true, true],
    'responses released',
  );
});

t.run();
