// vmLifecycle end to end: simulator -> audit-log CloudEvent -> Functions Framework -> Firestore emulator.
import * as assert from 'uvu/assert';
import { type Stack, captureLogs, enableOsConfig, stackSuite, clearFirestore } from './helpers/stack.js';
import { createVm as createFleetVm } from './helpers/fleet.js';
import { buildAuditLogEvent, type EntrySpec } from '../infra/local/simulator/eventarc.js';
import { getHost, listTransitions } from '../shared/adapters/hosts.js';
import { auditProject } from '../shared/usecases/audit.js';
import { clients } from '../shared/clients.js';

const P = 'p1';
const Z = 'us-central1-a';
const t = stackSuite('vmLifecycle end to end', {}, async (stack) => {
  await enableOsConfig(stack, P);
});

const createVm = (stack: Stack, spec: Record<string, unknown>) =>
  createFleetVm(stack, { project: P, zone: Z, ...spec });

async function post(stack: Stack, event: { headers: Record<string, string>; body: string }) {
  const res = await fetch(stack.vmLifecycleUrl, { method: 'POST', headers: event.headers, body: event.body });
  await res.arrayBuffer();
  return res.status;
}

const entry = (
  spec: Partial<EntrySpec> & { name: string },
  position: 'first' | 'last',
  operationId = `op-${spec.name}`,
) =>
  buildAuditLogEvent(
    {
      project: P,
      zone: Z,
      method: 'v1.compute.instances.insert',
      resourceName: `projects/${P}/zones/${Z}/instances/${spec.name}`,
      ...spec,
    },
    operationId,
    position,
  );

const assignments = (stack: Stack) => stack.control<unknown[]>('GET', '/assignments');

for (const [label, method] of [
  ['v1.', 'v1'],
  ['beta.', 'beta'],
  ['unprefixed (managed instance group)', 'mig'],
] as const) {
  t(`insert ${label}: enrolled as pending, zone assignment created`, async ({ stack }) => {
    const vm = await createVm(stack, { name: `vm-${method}`, os: 'ubuntu-2204', method });
    const host = await getHost(vm.id);
    assert.is(host?.state, 'pending');
    assert.is(host?.reason, 'policy-targeted');
    assert.equal(
      { name: host?.name, project: host?.project, zone: host?.zone, inScope: host?.inScope },
      { name: `vm-${method}`, project: P, zone: Z, inScope: true },
    );
    assert.is((await assignments(stack)).length, 1);
  });
}

t('bulkInsert naming each instance enrolls each', async ({ stack }) => {
  const { created } = await stack.control('POST', '/vms:bulk', {
    project: P,
    zone: Z,
    namePrefix: 'batch',
    count: 3,
    os: 'rhel-9',
    named: true,
  });
  await stack.flushEvents();
  for (const vm of created) assert.is((await getHost(vm.id))?.state, 'pending', vm.name);
});

t('bulkInsert naming only the zone reconciles the zone', async ({ stack }) => {
  const before = await createVm(stack, { name: 'already-there', os: 'debian-12' });
  const { created } = await stack.control('POST', '/vms:bulk', {
    project: P,
    zone: Z,
    namePrefix: 'anon',
    count: 4,
    os: 'rocky-9',
    named: false,
  });
  await stack.flushEvents();
  for (const vm of created) assert.is((await getHost(vm.id))?.state, 'pending', vm.name);
  assert.is((await listTransitions(before.id)).length, 1, 'an enrolled VM is not enrolled twice');
  assert.is((await assignments(stack)).length, 1);
});

t('delete marks the host deleted and out of scope, with a transition', async ({ stack }) => {
  const vm = await createVm(stack, { name: 'doomed', os: 'debian-12' });
  await stack.control('DELETE', `/vms/${P}/${Z}/doomed`);
  await stack.flushEvents();
  const host = await getHost(vm.id);
  assert.is(host?.state, 'deleted');
  assert.is(host?.inScope, false);
  assert.equal(
    (await listTransitions(vm.id)).map((tr) => [tr.from, tr.to]),
    [
      [null, 'pending'],
      ['pending', 'deleted'],
    ],
  );
});

t('a first entry alone does nothing (the VM may not exist yet)', async ({ stack }) => {
  await stack.control('POST', '/faults', { eventSinkUp: false });
  const vm = await createVm(stack, { name: 'quiet', os: 'debian-12' });
  assert.is(await post(stack, entry({ name: 'quiet', instanceId: vm.id }, 'first')), 204);
  assert.is(await getHost(vm.id), null);
  assert.is((await assignments(stack)).length, 0);
});

t('a failed insert (last entry with non-zero status) does nothing', async ({ stack }) => {
  const vm = await createVm(stack, { name: 'broken', os: 'debian-12', failed: true });
  const deliveries = await stack.control<Array<{ status: number; position: string }>>('GET', '/deliveries');
  assert.equal(
    deliveries.map((d) => [d.position, d.status]),
    [
      ['first', 204],
      ['last', 204],
    ],
  );
  assert.is(await getHost(vm.id), null);
  assert.is((await assignments(stack)).length, 0);
});

t('an unknown method is acknowledged and logged', async ({ stack }) => {
  const { result, logs } = await captureLogs(() =>
    post(stack, entry({ name: 'x', method: 'v1.compute.instances.start' }, 'last')),
  );
  assert.is(result, 204);
  assert.ok(
    logs.some((l) => String(l.reason).includes('v1.compute.instances.start')),
    JSON.stringify(logs),
  );
});

t('a body that is not JSON, sent as bytes, is acknowledged with a logged reason', async ({ stack }) => {
  const event = entry({ name: 'x' }, 'last');
  const headers = { ...event.headers, 'content-type': 'application/octet-stream' };
  const { result, logs } = await captureLogs(() => post(stack, { headers, body: '{"protoPayload": nope' }));
  assert.is(result, 204);
  const line = logs.find((l) => l.severity === 'WARNING');
  assert.ok(line, 'a warning was logged');
  assert.match(String(line!.reason), /not JSON/);
});

t('a non-JSON body never reaches the function: 400', async ({ stack }) => {
  // Malformed JSON labelled application/json -> 400 from the Functions Framework's body parser, before any
  // code of ours; a text/plain body (500 from the framework's background-event middleware on 4797a44) ->
  // 400 from eventFunction, with the reason logged. vmLifecycle runs for neither.
  const event = entry({ name: 'x' }, 'last');
  for (const [contentType, status, lines] of [
    ['application/json', 400, 0],
    ['text/plain', 400, 1],
  ] as const) {
    const { result, logs } = await captureLogs(() =>
      post(stack, { headers: { ...event.headers, 'content-type': contentType }, body: '{"protoPayload": nope' }),
    );
    assert.is(result, status, contentType);
    assert.is(logs.length, lines, JSON.stringify(logs));
    assert.ok(
      logs.every((l) => /vmLifecycle: refused a request that carries no event/.test(l.message)),
      'vmLifecycle never ran',
    );
  }
});

t('a body missing resourceName is acknowledged with a logged reason', async ({ stack }) => {
  const event = entry({ name: 'x' }, 'last');
  const data = JSON.parse(event.body);
  delete data.protoPayload.resourceName;
  const { result, logs } = await captureLogs(() => post(stack, { headers: event.headers, body: JSON.stringify(data) }));
  assert.is(result, 204);
  assert.ok(
    logs.some((l) => l.severity === 'WARNING' && /resourceName/.test(String(l.reason))),
    JSON.stringify(logs),
  );
});

t('the same event delivered three times: one host document, one transition', async ({ stack }) => {
  await stack.control('POST', '/faults', { eventSinkUp: false });
  const vm = await createVm(stack, { name: 'echo', os: 'debian-12' });
  const last = entry({ name: 'echo', instanceId: vm.id }, 'last');
  for (let i = 0; i < 3; i++) assert.is(await post(stack, last), 204);
  const host = await getHost(vm.id);
  assert.is(host?.state, 'pending');
  assert.is((await listTransitions(vm.id)).length, 1);
  assert.is((await assignments(stack)).length, 1);
});

t('twenty VMs created at once in a zone without an assignment: exactly one assignment', async ({ stack }) => {
  const { created } = await stack.control('POST', '/vms:bulk', {
    project: P,
    zone: 'europe-west1-b',
    namePrefix: 'wave',
    count: 20,
    os: 'debian-12',
    as: 'inserts',
  });
  // Deliver all twenty last entries concurrently, as twenty function instances would receive them.
  await stack.control('POST', '/events/flush');
  const lasts = created.map((vm: { id: string; name: string }) =>
    buildAuditLogEvent(
      {
        project: P,
        zone: 'europe-west1-b',
        method: 'v1.compute.instances.insert',
        instanceId: vm.id,
        resourceName: `projects/${P}/zones/europe-west1-b/instances/${vm.name}`,
      },
      `op-${vm.name}-concurrent`,
      'last',
    ),
  );
  await clearFirestore();
  const statuses = await Promise.all(
    lasts.map((e: { headers: Record<string, string>; body: string }) => post(stack, e)),
  );
  assert.ok(
    statuses.every((s) => s === 204),
    String(statuses),
  );
  const zoneAssignments = (await assignments(stack)) as Array<{ zone: string }>;
  assert.is(zoneAssignments.filter((a) => a.zone === 'europe-west1-b').length, 1);
  for (const vm of created) assert.is((await getHost(vm.id))?.state, 'pending');
});

t('a stale label fingerprint (412) is re-read and the label still lands', async ({ stack }) => {
  // A GKE node known only by metadata, on Ubuntu: the OS policy would select it, so it is labelled out.
  await stack.control('POST', '/faults', { concurrentWrites: 2 });
  const vm = await createVm(stack, { name: 'gke-node-x', os: 'ubuntu-2204', gke: { labelled: false }, method: 'mig' });
  const host = await getHost(vm.id);
  assert.is(host?.state, 'exempt');
  assert.is(host?.reason, 'gke-node');
  const [simVm] = (await stack.control<Array<{ id: string; labels: Record<string, string> }>>('GET', '/vms')).filter(
    (v) => v.id === vm.id,
  );
  assert.is(simVm?.labels['osquery-exempt'], 'true');
  const calls = await stack.apiCalls();
  assert.is(calls['compute.instances.setLabels'], 3, 'two 412s, then success');
});

const allHostPaths = async () => {
  const hosts = await clients.firestore().collection('hosts').get();
  const nested = await Promise.all(hosts.docs.map((d) => d.ref.listCollections()));
  const collections = await clients.firestore().listCollections();
  return {
    hosts: hosts.docs.map((d) => d.id),
    nested: nested.flat().map((c) => c.path),
    collections: collections.map((c) => c.id),
  };
};

t(
  'an instance_id that is not an unsigned 64-bit decimal is malformed: logged, acknowledged, nothing written',
  async ({ stack }) => {
    const victim = await createVm(stack, { name: 'victim', os: 'debian-12' });
    const before = await allHostPaths();
    const bad = ['not-a-number', `${victim.id}/transitions/x`, '18446744073709551616', '-1', '0x1f', '١٢٣', ' 42'];
    const { result, logs } = await captureLogs(async () => {
      const statuses: number[] = [];
      for (const [i, instanceId] of bad.entries())
        for (const method of ['v1.compute.instances.insert', 'v1.compute.instances.delete'])
          statuses.push(
            await post(stack, entry({ name: `ghost-${i}`, instanceId, method }, 'last', `op-bad-${i}-${method}`)),
          );
      return statuses;
    });
    assert.ok(
      result.every((s) => s === 204),
      String(result),
    );
    assert.equal(await allHostPaths(), before);
    assert.equal((await listTransitions(victim.id)).length, 1);
    const rejected = logs.filter((l) => /rejected malformed event/.test(l.message));
    assert.is(rejected.length, bad.length * 2, JSON.stringify(logs));
    assert.ok(rejected.every((l) => /instance_id/.test(String(l.reason))));
  },
);

t('a delete or insert of a VM never recorded leaves no tombstone', async ({ stack }) => {
  await stack.control('POST', '/faults', { eventSinkUp: false });
  const brief = await createVm(stack, { name: 'brief', os: 'debian-12' });
  await stack.control('DELETE', `/vms/${P}/${Z}/brief`);
  const statuses = [
    await post(stack, entry({ name: 'brief', instanceId: brief.id }, 'last')), // created and deleted before it was seen
    await post(
      stack,
      entry({ name: 'brief', instanceId: brief.id, method: 'v1.compute.instances.delete' }, 'last', 'op-del'),
    ),
    await post(
      stack,
      entry(
        { name: 'never', instanceId: '4242424242424242', method: 'v1.compute.instances.delete' },
        'last',
        'op-never',
      ),
    ),
  ];
  assert.equal(statuses, [204, 204, 204]);
  assert.equal((await allHostPaths()).hosts, []);
});

t(
  'an entry whose resource name disagrees with the recorded host of its instance_id changes nothing',
  async ({ stack }) => {
    const live = await createVm(stack, { name: 'live', os: 'debian-12' });
    await stack.control('POST', '/agents/run');
    await auditProject(P, { now: new Date(Date.now() + 60_000) });
    const recorded = await getHost(live.id);
    assert.is(recorded?.state, 'compliant');
    const mutated = [
      ['v1.compute.instances.delete', `projects/other/zones/${Z}/instances/live`],
      ['v1.compute.instances.delete', `projects/${P}/zones/europe-west1-b/instances/live`],
      ['v1.compute.instances.delete', `projects/${P}/zones/${Z}/instances/impostor`],
      ['v1.compute.instances.insert', `projects/other/zones/${Z}/instances/impostor`],
      ['v1.compute.instances.insert', `projects/${P}/zones/${Z}/instances/nowhere`],
    ];
    for (const [i, [method, resourceName]] of mutated.entries())
      assert.is(
        await post(stack, entry({ name: 'x', instanceId: live.id, method, resourceName }, 'last', `op-mut-${i}`)),
        204,
      );
    const after = await getHost(live.id);
    assert.equal(after, recorded, 'the live host is untouched');
    assert.is((await listTransitions(live.id)).length, 2);

    // The VM goes away behind the orchestrator's back: a disagreeing entry is believed once Compute confirms it.
    await stack.control('DELETE', `/vms/${P}/${Z}/live?silent=true`);
    assert.is(
      await post(
        stack,
        entry(
          {
            name: 'x',
            instanceId: live.id,
            method: 'v1.compute.instances.delete',
            resourceName: `projects/${P}/zones/${Z}/instances/impostor`,
          },
          'last',
          'op-gone',
        ),
      ),
      204,
    );
    const gone = await getHost(live.id);
    assert.equal(
      [gone?.state, gone?.project, gone?.zone, gone?.name],
      ['deleted', P, Z, 'live'],
      'retired under its recorded identity',
    );
  },
);

/** The last delete entry of `name` as a route that drops resource.labels.instance_id delivers it. */
const deleteWithoutId = (name: string, operationId: string) =>
  entry({ name, method: 'v1.compute.instances.delete' }, 'last', operationId);

const hostView = async (id: string) => {
  const host = await getHost(id);
  return { state: host?.state, updatedAt: host?.updatedAt.getTime(), transitions: (await listTransitions(id)).length };
};

t('a late delete entry without instance_id never retires the live VM that reuses the name', async ({ stack }) => {
  const first = await createVm(stack, { name: 'web-1', os: 'debian-12' });
  await stack.control('DELETE', `/vms/${P}/${Z}/web-1`);
  await stack.flushEvents();
  assert.is((await getHost(first.id))?.state, 'deleted', "the first VM's own entry retired it");
  const second = await createVm(stack, { name: 'web-1', os: 'debian-12' });
  assert.is.not(second.id, first.id);
  const before = await hostView(second.id);
  assert.is(before.state, 'pending');

  // The first VM's delete entry again, late, through a route that lost its instance_id; then redelivered.
  const late = deleteWithoutId('web-1', 'op-late-delete');
  const { result, logs } = await captureLogs(async () => [await post(stack, late), await post(stack, late)]);
  assert.equal(result, [204, 204]);
  assert.equal(await hostView(second.id), before, 'the live VM that reuses the name keeps its host');
  const refused = logs.filter((l) => /does not identify a host/.test(l.message));
  assert.is(refused.length, 2, JSON.stringify(logs));
  assert.ok(
    refused.every(
      (l) => l.severity === 'WARNING' && /in use by another VM|still exists under that name/.test(String(l.reason)),
    ),
    JSON.stringify(refused),
  );
  assert.equal((refused[0]!.entry as { name: string }).name, 'web-1');
  assert.equal(refused[0]!.matched, [second.id]);
});

t('a delete entry without instance_id that two live hosts could mean changes neither', async ({ stack }) => {
  // The first VM goes away unseen (its host stays live until an audit), then its name is reused.
  const first = await createVm(stack, { name: 'web-2', os: 'debian-12' });
  await stack.control('DELETE', `/vms/${P}/${Z}/web-2?silent=true`);
  const second = await createVm(stack, { name: 'web-2', os: 'debian-12' });
  const before = [await hostView(first.id), await hostView(second.id)];
  const { result, logs } = await captureLogs(() => post(stack, deleteWithoutId('web-2', 'op-two')));
  assert.is(result, 204);
  assert.equal([await hostView(first.id), await hostView(second.id)], before);
  assert.ok(
    logs.some((l) => l.severity === 'WARNING' && String(l.reason) === '2 live hosts have that name'),
    JSON.stringify(logs),
  );
});

t(
  'a delete entry without instance_id retires the only live host of that name once Compute has no such VM',
  async ({ stack }) => {
    const vm = await createVm(stack, { name: 'solo', os: 'debian-12' });
    await stack.control('DELETE', `/vms/${P}/${Z}/solo?silent=true`);
    const gone = deleteWithoutId('solo', 'op-solo');
    assert.is(await post(stack, gone), 204);
    const retired = await hostView(vm.id);
    assert.is(retired.state, 'deleted');
    assert.equal(
      (await listTransitions(vm.id)).map((tr) => [tr.from, tr.to]),
      [
        [null, 'pending'],
        ['pending', 'deleted'],
      ],
    );
    assert.is(await post(stack, gone), 204);
    assert.equal(await hostView(vm.id), retired, 'a redelivery changes nothing');
  },
);

t.run();
