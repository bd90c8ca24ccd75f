// The audit under races, on the local stack (simulator, Functions Framework, Firestore and Pub/Sub
// emulators). The simulator holds an audit's Compute project read, which the audit makes after it has
// read the VMs and the host documents, while heartbeats, vmLifecycle events, deletions and a second
// delivery of the same shard land; then lets it go on. The interleaving is fixed, the outcomes exact.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { clearFirestore, startStack, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { buildAuditLogEvent } from '../infra/local/simulator/eventarc.js';
import { auditProject, runAuditShard } from '../shared/usecases/audit.js';
import { HeartbeatEngine, recordLogMessage } from '../shared/usecases/heartbeat.js';
import { getHost, listTransitions } from '../shared/adapters/hosts.js';
import { createRun, getRun, runResults } from '../shared/adapters/audits.js';
import { config } from '../shared/config.js';
import type { AlertMessage } from '../shared/domain/alerts.js';
import type { Transition } from '../shared/domain/host.js';

const P = 'race';
const Z = 'us-east1-b';
const MIN = 60_000;
const t = suite<{ stack: Stack; alerts: Subscription; t0: number }>('the audit under races');

t.before(async (ctx) => {
  ctx.stack = await startStack({
    TARGET_PROJECTS: P,
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
    GRACE_PERIOD_MINUTES: '30',
    SILENCE_THRESHOLD_MINUTES: '15',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '60',
  });
  ctx.alerts = await subscribe(config().ALERT_TOPIC, 'race-alerts');
});
t.after(async (ctx) => ctx.stack.close());
t.before.each(async (ctx) => {
  await clearFirestore();
  await ctx.stack.control('POST', '/reset');
  await ctx.stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
  engine = new HeartbeatEngine();
  await drain(ctx.alerts);
  ctx.t0 = Math.floor(Date.now() / 1000) * 1000; // log lines carry whole seconds
});

type Vm = { id: string; name: string };
const at = (t0: number, minutes: number) => new Date(t0 + minutes * MIN);

/**
 * Starts `run` (audits) with the simulator holding the first `count` Compute project reads, and
 * resolves once all of them are held: each audit has read its VMs and host documents by then.
 */
async function heldAfterReads<T>(stack: Stack, count: number, run: () => Promise<T>): Promise<{ done: Promise<T> }> {
  await stack.control('POST', '/faults', { hold: [{ match: 'compute.projects.get', count }] });
  const running = run();
  running.catch(() => undefined); // awaited by the test
  await stack.control('POST', '/held/wait', { count });
  return { done: running }; // wrapped: an async function returning a promise would wait for it
}
const release = (stack: Stack, count?: number) => stack.control('POST', '/held/release', count ? { count } : {});

/** logHeartbeat's instance: each test starts with a new one. */
let engine: HeartbeatEngine;
/** One osquery line from `vm`, handled by logHeartbeat's use case at `now` (simulated time). */
const heartbeat = (vm: Vm, lineAt: Date, now = lineAt) =>
  recordLogMessage(
    engine,
    {
      data: Buffer.from(JSON.stringify({ name: 'heartbeat', unixTime: lineAt.getTime() / 1000, snapshot: [] })),
      attributes: { gce_instance_id: vm.id, gce_project_id: P, gce_zone: Z },
      messageId: `line-${vm.id}-${lineAt.getTime()}`,
      publishTime: lineAt,
    },
    now,
  );

/** The last audit entry of `vm`'s insert, delivered to vmLifecycle as Eventarc would (late). */
async function deliverInsert(stack: Stack, vm: Vm): Promise<void> {
  const event = buildAuditLogEvent(
    {
      project: P,
      zone: Z,
      method: 'v1.compute.instances.insert',
      instanceId: vm.id,
      resourceName: `projects/${P}/zones/${Z}/instances/${vm.name}`,
    },
    `op-${vm.name}`,
    'last',
  );
  const res = await fetch(stack.vmLifecycleUrl, { method: 'POST', headers: event.headers, body: event.body });
  await res.arrayBuffer();
  assert.is(res.status, 204);
}

const steps = (transitions: Transition[]) => transitions.map((tr) => [tr.from, tr.to]);
/** Each transition starts where the previous one ended, and only the first starts from nothing. */
function assertChained(transitions: Transition[], what: string) {
  transitions.forEach((tr, i) =>
    assert.is(tr.from, i === 0 ? null : transitions[i - 1]!.to, `${what}: ${JSON.stringify(steps(transitions))}`),
  );
}
async function alertsOf(sub: Subscription, kind: string) {
  return (await drain(sub)).map((m) => m.data as AlertMessage).filter((m) => m.kind === kind);
}

t('a silent host that recovers while an audit holds its read: the right `from`, one resolved', async (ctx) => {
  const { stack, alerts, t0 } = ctx;
  const vm = await createVm(stack, { project: P, zone: Z, name: 'quiet', os: 'debian-12' });
  await stack.control('POST', '/agents/run');
  await heartbeat(vm, at(t0, 1));
  await auditProject(P, { now: at(t0, 2) });
  await auditProject(P, { now: at(t0, 20) });
  assert.is((await getHost(vm.id))?.state, 'silent');

  const stale = await heldAfterReads(stack, 1, () => auditProject(P, { now: at(t0, 30) }));
  // While it waits: the logs resume (reporting again, the episode resolves) and the policy starts failing.
  engine = new HeartbeatEngine();
  assert.is((await heartbeat(vm, at(t0, 29))).outcome, 'recorded');
  assert.is((await getHost(vm.id))?.state, 'reporting');
  await stack.control('PATCH', `/vms/${vm.id}`, { policyFailure: 'install-osquery' });
  await stack.control('POST', '/agents/run');
  await release(stack);
  await stale.done;

  const transitions = await listTransitions(vm.id);
  assertChained(transitions, 'quiet');
  assert.equal(steps(transitions), [
    [null, 'pending'],
    ['pending', 'reporting'],
    ['reporting', 'silent'],
    ['silent', 'reporting'],
    ['reporting', 'pending'],
  ]);
  const host = await getHost(vm.id);
  assert.equal([host?.state, host?.reason, host?.lastLogAt], ['pending', 'policy-applying', at(t0, 29)]);
  assert.equal(
    (await alertsOf(alerts, 'host.silent')).map((m) => m.status),
    ['firing', 'resolved'],
  );
});

t('two audits at once decide the same silence: one transition, one firing', async (ctx) => {
  const { stack, alerts, t0 } = ctx;
  const vm = await createVm(stack, { project: P, zone: Z, name: 'hush', os: 'debian-12' });
  await stack.control('POST', '/agents/run');
  await heartbeat(vm, at(t0, 1));
  await auditProject(P, { now: at(t0, 2) });
  const both = await heldAfterReads(stack, 2, () =>
    Promise.all([auditProject(P, { now: at(t0, 20) }), auditProject(P, { now: at(t0, 21) })]),
  );
  await release(stack);
  await both.done;
  assert.equal(steps(await listTransitions(vm.id)), [
    [null, 'pending'],
    ['pending', 'reporting'],
    ['reporting', 'silent'],
  ]);
  assert.equal(
    (await alertsOf(alerts, 'host.silent')).map((m) => m.status),
    ['firing'],
  );
});

t('VMs the audit discovers while vmLifecycle enrolls them: one transition from null, lastLogAt kept', async (ctx) => {
  const { stack, t0 } = ctx;
  await stack.control('POST', '/faults', { eventSinkUp: false });
  const { created } = await stack.control<{ created: Vm[] }>('POST', '/vms:bulk', {
    project: P,
    zone: Z,
    namePrefix: 'wave',
    count: 10,
    os: 'debian-12',
    as: 'none',
  });
  await stack.control('POST', '/faults', { eventSinkUp: true });

  const stale = await heldAfterReads(stack, 1, () => auditProject(P, { now: at(t0, 1) }));
  // Their insert entries arrive now, then their first log lines.
  await Promise.all(created.map((vm) => deliverInsert(stack, vm)));
  for (const vm of created) assert.is((await heartbeat(vm, at(t0, 0.5))).outcome, 'recorded');
  await release(stack);
  await stale.done;

  for (const vm of created) {
    const transitions = await listTransitions(vm.id);
    assertChained(transitions, vm.name);
    assert.is(transitions.length, 1, vm.name);
    const host = await getHost(vm.id);
    assert.equal([host?.state, host?.lastLogAt], ['pending', at(t0, 0.5)], vm.name);
  }
});

t('VMs deleted while an audit holds its read stay deleted', async (ctx) => {
  const { stack, t0 } = ctx;
  const vms: Vm[] = [];
  for (let i = 0; i < 5; i++) vms.push(await createVm(stack, { project: P, zone: Z, name: `gone-${i}` }));
  const kept = await createVm(stack, { project: P, zone: Z, name: 'kept' });
  await stack.control('POST', '/agents/run');

  const stale = await heldAfterReads(stack, 1, () => auditProject(P, { now: at(t0, 1) }));
  for (const vm of vms) await stack.control('DELETE', `/vms/${P}/${Z}/${vm.name}`);
  await stack.flushEvents();
  for (const vm of vms) assert.is((await getHost(vm.id))?.state, 'deleted', 'vmLifecycle retired it');
  await release(stack);
  await stale.done;

  for (const vm of vms) {
    assert.equal([(await getHost(vm.id))?.state, (await getHost(vm.id))?.inScope], ['deleted', false], vm.name);
    assert.equal(steps(await listTransitions(vm.id)), [
      [null, 'pending'],
      ['pending', 'deleted'],
    ]);
  }
  assert.is((await getHost(kept.id))?.state, 'compliant', 'the audit still recorded the others');
  // A later audit, which sees them gone, leaves them as they are.
  await auditProject(P, { now: at(t0, 2) });
  for (const vm of vms) assert.is((await listTransitions(vm.id)).length, 2);
});

t('a shard delivered twice at once, first logs landing between the two: lastLogAt kept, counted once', async (ctx) => {
  const { stack, t0 } = ctx;
  await stack.control('POST', '/faults', { eventSinkUp: false });
  const { created } = await stack.control<{ created: Vm[] }>('POST', '/vms:bulk', {
    project: P,
    zone: Z,
    namePrefix: 'found',
    count: 8,
    os: 'debian-12',
    as: 'none',
  });
  await stack.control('POST', '/faults', { eventSinkUp: true });
  const runId = 'race-run';
  await createRun(runId, [P], at(t0, 0));

  const deliveries = await heldAfterReads(stack, 2, async () => [
    runAuditShard({ runId, project: P }, at(t0, 1)),
    runAuditShard({ runId, project: P }, at(t0, 1.5)),
  ]);
  const [first, second] = await deliveries.done;
  first!.catch(() => undefined);
  second!.catch(() => undefined);
  await release(stack, 1);
  await Promise.race([first, second]);
  // The hosts the first delivery recorded send their first lines before the second one writes.
  for (const vm of created) assert.is((await heartbeat(vm, at(t0, 1.2))).outcome, 'recorded');
  await release(stack);
  assert.equal((await Promise.all([first, second])).sort(), ['done', 'duplicate']);

  for (const vm of created) {
    const transitions = await listTransitions(vm.id);
    assert.equal(steps(transitions), [[null, 'pending']], vm.name);
    assert.equal((await getHost(vm.id))?.lastLogAt, at(t0, 1.2), vm.name);
  }
  const run = await getRun(runId);
  assert.equal([run?.status, (await runResults(runId))[P]?.instances], ['succeeded', 8]);
});

t.run();
