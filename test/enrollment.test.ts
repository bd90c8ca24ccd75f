// Scope and prerequisites decided for real VMs, transient API faults, and the cost of one event.
import * as assert from 'uvu/assert';
import { type Stack, enableOsConfig, stackSuite } from './helpers/stack.js';
import { createVm, simVm } from './helpers/fleet.js';
import { getHost } from '../shared/adapters/hosts.js';
import { totalApiCalls, usageSince, usageSnapshot } from '../shared/metrics.js';

const P = 'p2';
const Z = 'us-east1-b';
const t = stackSuite('enrollment decisions', {}, async (stack) => {
  await enableOsConfig(stack, P);
});

const vm = (stack: Stack, spec: Record<string, unknown>) => createVm(stack, { project: P, zone: Z, ...spec });
const assignmentCount = async (stack: Stack) => (await stack.control<unknown[]>('GET', '/assignments')).length;

t('project metadata enables osconfig: pending', async ({ stack }) => {
  const { id } = await vm(stack, { name: 'proj-enabled', os: 'rhel-9' });
  assert.equal([(await getHost(id))?.state, (await getHost(id))?.reason], ['pending', 'policy-targeted']);
});

t('instance metadata disables osconfig over the project: blocked, no assignment', async ({ stack }) => {
  const { id } = await vm(stack, { name: 'inst-disabled', os: 'debian-12', metadata: { 'enable-osconfig': 'FALSE' } });
  const host = await getHost(id);
  assert.equal([host?.state, host?.reason, host?.inScope], ['blocked', 'osconfig-disabled', true]);
  assert.is(await assignmentCount(stack), 0);
});

t('osconfig enabled nowhere: blocked (remediation is off by default)', async ({ stack }) => {
  await stack.control('POST', '/projects', { id: P, metadata: {} });
  const { id } = await vm(stack, { name: 'nowhere', os: 'debian-12' });
  assert.equal([(await getHost(id))?.state, (await getHost(id))?.reason], ['blocked', 'osconfig-disabled']);
});

t('instance metadata enables osconfig when the project does not: pending', async ({ stack }) => {
  await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'FALSE' } });
  const { id } = await vm(stack, { name: 'inst-enabled', os: 'ubuntu-2204', metadata: { 'enable-osconfig': 'true' } });
  assert.is((await getHost(id))?.state, 'pending');
});

t('no service account attached: blocked', async ({ stack }) => {
  const { id } = await vm(stack, { name: 'no-sa', os: 'rocky-9', serviceAccount: null });
  assert.equal([(await getHost(id))?.state, (await getHost(id))?.reason], ['blocked', 'no-service-account']);
});

t('labelled GKE node: exempt, not labelled again, no assignment', async ({ stack }) => {
  const { id } = await vm(stack, { name: 'gke-pool-1', gke: { cluster: 'c1' } });
  const host = await getHost(id);
  assert.equal([host?.state, host?.reason, host?.inScope], ['exempt', 'gke-node', false]);
  assert.is((await stack.apiCalls())['compute.instances.setLabels'], undefined);
  assert.is(await assignmentCount(stack), 0);
});

t('opt-out label: exempt', async ({ stack }) => {
  const { id } = await vm(stack, { name: 'opted-out', os: 'debian-12', labels: { 'osquery-exempt': 'true' } });
  assert.equal([(await getHost(id))?.state, (await getHost(id))?.reason], ['exempt', 'opt-out-label']);
});

t('Windows and Container-Optimized OS: exempt as unsupported, left to the OS filter', async ({ stack }) => {
  const win = await vm(stack, { name: 'win-1', os: 'windows-2022' });
  const cos = await vm(stack, { name: 'cos-1', os: 'cos' });
  assert.is((await getHost(win.id))?.reason, 'unsupported-os:windows');
  assert.is((await getHost(cos.id))?.reason, 'unsupported-os:cos');
  assert.equal((await simVm(stack, win.id))?.labels, {});
});

t('429 and 503 from every API on the way: the enrollment still completes', async ({ stack }) => {
  await stack.control('POST', '/faults', {
    failNext: [
      { status: 429, count: 2, match: 'compute.instances.get' },
      { status: 503, count: 1, match: 'compute.projects.get' },
      { status: 503, count: 2, match: 'osPolicyAssignments.get' },
      { status: 429, count: 1, match: 'osPolicyAssignments.create' },
    ],
  });
  const { id } = await vm(stack, { name: 'flaky', os: 'debian-12' });
  assert.is((await getHost(id))?.state, 'pending');
  const calls = await stack.apiCalls();
  assert.is(calls['compute.instances.get'], 3);
  assert.is(calls['osconfig.osPolicyAssignments.create'], 2);
  assert.is(await assignmentCount(stack), 1);
});

t('random 429/503 on a quarter of all calls: ten VMs all enrolled', async ({ stack }) => {
  await stack.control('POST', '/faults', { rate429: 0.15, rate503: 0.1 });
  const { created } = await stack.control('POST', '/vms:bulk', {
    project: P,
    zone: Z,
    namePrefix: 'noisy',
    count: 10,
    os: 'ubuntu-2204',
    as: 'inserts',
  });
  await stack.flushEvents();
  for (const v of created) assert.is((await getHost(v.id))?.state, 'pending', v.name);
});

t('cost of one insert event once the zone has its assignment', async ({ stack }) => {
  await vm(stack, { name: 'first-in-zone', os: 'debian-12' });
  for (const [name, metadata, expectedCalls] of [
    ['project-level', {}, 3],
    ['instance-level', { 'enable-osconfig': 'TRUE' }, 2],
  ] as const) {
    await stack.control('POST', '/stats/reset');
    const before = usageSnapshot();
    await vm(stack, { name, os: 'debian-12', metadata });
    const spent = usageSince(before);
    const seen = await stack.apiCalls();
    assert.is(totalApiCalls(spent), expectedCalls, `${name}: ${JSON.stringify(spent.apiCalls)}`);
    assert.is(
      Object.values(seen).reduce((a, b) => a + b, 0),
      expectedCalls,
      'the simulator saw the same calls',
    );
    assert.is(spent.transactions, 1);
    assert.is(spent.firestoreWrites, 2, 'host + transition');
  }
});

t.run();
