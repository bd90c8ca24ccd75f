// REMEDIATE_OSCONFIG_METADATA=true: enable-osconfig is set on the instance when it is absent everywhere.
import * as assert from 'uvu/assert';
import { type Stack, stackSuite } from './helpers/stack.js';
import { createVm, simVm } from './helpers/fleet.js';
import { getHost } from '../shared/adapters/hosts.js';

const P = 'p3';
const Z = 'asia-east1-a';
const t = stackSuite('osconfig metadata remediation', { REMEDIATE_OSCONFIG_METADATA: 'true' }, async (stack) => {
  await stack.control('POST', '/projects', { id: P, metadata: {} });
});

const osconfigValue = async (stack: Stack, id: string) =>
  (await simVm(stack, id))?.metadata.items.find((i) => i.key === 'enable-osconfig')?.value;

t('absent everywhere: set on the instance, other metadata kept, host pending', async ({ stack }) => {
  const { id } = await createVm(stack, {
    project: P,
    zone: Z,
    name: 'fixme',
    os: 'debian-12',
    metadata: { 'startup-script': 'echo hi' },
  });
  assert.is((await getHost(id))?.state, 'pending');
  assert.is(await osconfigValue(stack, id), 'TRUE');
  assert.is((await simVm(stack, id))?.metadata.items.find((i) => i.key === 'startup-script')?.value, 'echo hi');
});

t('a stale metadata fingerprint (412) is re-read and the write still lands', async ({ stack }) => {
  await stack.control('POST', '/faults', { concurrentWrites: 2 });
  const { id } = await createVm(stack, { project: P, zone: Z, name: 'racy', os: 'ubuntu-2204' });
  assert.is((await getHost(id))?.state, 'pending');
  assert.is(await osconfigValue(stack, id), 'TRUE');
  assert.is((await stack.apiCalls())['compute.instances.setMetadata'], 3, 'two 412s, then success');
});

t('deliberately disabled on the instance: left alone, blocked', async ({ stack }) => {
  const { id } = await createVm(stack, {
    project: P,
    zone: Z,
    name: 'keep-off',
    os: 'debian-12',
    metadata: { 'enable-osconfig': 'FALSE' },
  });
  assert.equal([(await getHost(id))?.state, await osconfigValue(stack, id)], ['blocked', 'FALSE']);
  assert.is((await stack.apiCalls())['compute.instances.setMetadata'], undefined);
});

t.run();
