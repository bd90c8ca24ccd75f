// The adapters' seam: each takes the client it uses, by default the shared lazy one (shared/clients.ts).
// Two simulators: the shared clients point at one, the clients passed in at the other, wrapped to count
// what the adapter calls on them. What the adapters find, and which simulator was asked, shows which
// client each used.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InstancesClient, ZoneOperationsClient } from '@google-cloud/compute';
import { OsConfigZonalServiceClient } from '@google-cloud/os-config';
import { Storage } from '@google-cloud/storage';
import { PassThroughClient } from 'google-auth-library';
import { startSimulator, type Simulator } from '../infra/local/simulator/server.js';
import { resetConfig } from '../shared/config.js';
import { closeClients, resetClients } from '../shared/clients.js';
import { getVm, listZoneVms, setInstanceLabel } from '../shared/adapters/compute.js';
import { ensureAssignment, listZoneInventories } from '../shared/adapters/osconfig.js';
import { patchOsConfigDescriptors } from '../shared/osconfig-client-fix.js';
import { ensureObject } from '../shared/adapters/storage.js';
import { buildOsqueryAssignment } from '../shared/domain/policy.js';

interface Ctx {
  shared: Simulator;
  other: Simulator;
  calls: Map<string, number>;
}
const t = suite<Ctx>('adapters use the client they are given');
t.before(async (ctx) => {
  ctx.shared = await startSimulator();
  ctx.other = await startSimulator();
  ctx.calls = new Map();
  process.env.GOOGLE_API_ENDPOINT = ctx.shared.url;
  resetConfig();
  resetClients();
});
t.after(async (ctx) => {
  await closeClients();
  await ctx.shared.close();
  await ctx.other.close();
});
t.before.each(({ shared, other, calls }) => {
  for (const sim of [shared, other]) {
    sim.world.reset();
    sim.world.requests.clear();
  }
  calls.clear();
});

/** The client, with every method the adapter calls on it counted under `${label}.${method}`. */
function counting<T extends object>(client: T, label: string, calls: Map<string, number>): T {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        calls.set(`${label}.${property}`, (calls.get(`${label}.${property}`) ?? 0) + 1);
        return value.apply(target, args); // the library's own calls inside are not counted
      };
    },
  });
}

/** REST options aiming a Google client at a simulator, as shared/clients.ts builds them. */
const at = (sim: Simulator) => ({
  apiEndpoint: '127.0.0.1',
  port: sim.port,
  protocol: 'http',
  authClient: new PassThroughClient(),
});

const total = (sim: Simulator) => [...sim.world.requests.values()].reduce((a, b) => a + b, 0);

t('Compute: reads, listings and a fingerprinted write go to the client passed in', async ({ shared, other, calls }) => {
  const vm = other.world.addVm({ project: 'p', zone: 'z-1', name: 'web-1', os: 'debian-12' });
  const instances = counting(new InstancesClient(at(other)), 'instances', calls);
  const zoneOperations = counting(new ZoneOperationsClient(at(other)), 'zoneOperations', calls);
  try {
    assert.is((await getVm({ project: 'p', zone: 'z-1', name: 'web-1' }, instances))?.instanceId, vm.id);
    assert.equal(
      (await listZoneVms('p', 'z-1', instances)).map((v) => v.name),
      ['web-1'],
    );
    await setInstanceLabel({ project: 'p', zone: 'z-1', name: 'web-1' }, 'team', 'sec', instances, zoneOperations);
    assert.equal(other.world.findVm('p', 'z-1', 'web-1')?.labels, { team: 'sec' });
    // The simulator's zone operations are done at once: no wait, so no zoneOperations call.
    assert.equal(Object.fromEntries(calls), { 'instances.get': 2, 'instances.listAsync': 1, 'instances.setLabels': 1 });
    assert.is(total(shared), 0, 'the shared client was never asked');
    // Without a client, the same call uses the shared one, which knows no such VM.
    assert.is(await getVm({ project: 'p', zone: 'z-1', name: 'web-1' }), null);
    assert.equal(Object.fromEntries(shared.world.requests), { 'compute.instances.get': 1 });
  } finally {
    await instances.close();
    await zoneOperations.close();
  }
});

t('OS Config and Storage: the client passed in, never the shared one', async ({ shared, other, calls }) => {
  other.world.addVm({ project: 'p', zone: 'z-1', name: 'web-1', os: 'debian-12' });
  const osConfig = counting(
    patchOsConfigDescriptors(
      new OsConfigZonalServiceClient({ ...at(other), fallback: true } as unknown as ConstructorParameters<
        typeof OsConfigZonalServiceClient
      >[0]),
    ),
    'osConfig',
    calls,
  );
  const storage = counting(
    new Storage({ apiEndpoint: other.url, projectId: 'p', retryOptions: { autoRetry: false } }),
    'storage',
    calls,
  );
  try {
    const body = buildOsqueryAssignment({
      optOutLabel: { key: 'osquery-exempt', value: 'true' },
      disruptionPercent: 10,
      minWaitSeconds: 60,
    });
    const { created } = await ensureAssignment('p', 'z-1', 'osquery', async () => body, osConfig);
    assert.ok(created);
    assert.is(other.world.requests.get('osconfig.osPolicyAssignments.create'), 1);
    assert.ok(Array.isArray(await listZoneInventories('p', 'z-1', osConfig)));
    assert.is((await ensureObject('cfg', 'v1/osquery.conf', '{}', storage)).uploaded, true);
    assert.equal(Object.fromEntries(calls), {
      'osConfig.getOSPolicyAssignment': 1,
      'osConfig.createOSPolicyAssignment': 1,
      'osConfig.listInventoriesAsync': 1,
      'storage.bucket': 1,
    });
    assert.is(other.world.requests.get('storage.objects.insert'), 1);
    assert.is(total(shared), 0, 'the shared clients were never asked');
  } finally {
    await osConfig.close();
  }
});

t.run();
