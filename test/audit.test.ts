// The fleet audit against the simulator and the Firestore and
// Pub/Sub emulators: scenario fleets with known ground truth.
import * as assert from 'uvu/assert';
import { type Stack, captureLogs, stackSuite } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { auditProject, runAuditShard, startAuditRun } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { getHost, listTransitions } from '../shared/adapters/hosts.js';
import { createRun, getRun, runResults } from '../shared/adapters/audits.js';
import { getFleetStatus } from '../shared/adapters/status.js';
import { getOsqueryStatus } from '../shared/adapters/telemetry.js';
import { commitTransition, currentVersion, getRollout } from '../shared/adapters/rollouts.js';
import { publishTransition } from '../shared/domain/rollout-transition.js';
import { readConfigurationState } from '../shared/usecases/rollout-apply.js';
import { clients } from '../shared/clients.js';
import { config } from '../shared/config.js';
import { usageSince, usageSnapshot } from '../shared/metrics.js';
import { configVersionOfPolicy } from '../shared/domain/policy.js';
import type { SimAssignment } from '../infra/local/simulator/world.js';

const P = 'fleet';
const Z1 = 'us-central1-a';
const Z2 = 'us-central1-b';
const MIN = 60_000;
const t = stackSuite(
  'fleet audit',
  {
    TARGET_PROJECTS: `${P},other`,
    CONFIG_BUCKET: 'cfg',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
    GRACE_PERIOD_MINUTES: '30',
  },
  async (stack) => {
    for (const id of [P, 'other'])
      await stack.control('POST', '/projects', { id, metadata: { 'enable-osconfig': 'TRUE' } });
  },
);

const later = (minutes: number) => new Date(Date.now() + minutes * MIN);
const vm = (stack: Stack, spec: Record<string, unknown>) => createVm(stack, { project: P, zone: Z1, ...spec });
const state = async (id: string) => {
  const h = await getHost(id);
  return h && [h.state, h.reason];
};
/** Polls until the run (or the only run) is no longer running. */
async function waitForRun(runId?: string | null) {
  for (let i = 0; i < 150; i++) {
    const docs = runId
      ? [await getRun(runId)]
      : (await clients.firestore().collection('audits').get()).docs.map((d) => d.data());
    const run = docs[0];
    if (run && run.status !== 'running') return run;
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}
const assignments = (stack: Stack) => [...stack.sim.world.assignments.values()] as SimAssignment[];

t('scenario fleet: every VM ends in the expected state with the expected reason', async ({ stack }) => {
  const { configVersion } = await publish({ projects: [P] });
  const web = await vm(stack, { name: 'web', os: 'debian-12' });
  const gke = await vm(stack, { name: 'gke-node', gke: { cluster: 'c' } });
  const win = await vm(stack, { name: 'win', os: 'windows-2022' });
  const agentless = await vm(stack, { name: 'agentless', os: 'ubuntu-2204', agent: false });
  const failing = await vm(stack, { name: 'failing', os: 'rhel-9', policyFailure: 'install-osquery', zone: Z2 });
  const stopped = await vm(stack, { name: 'stopped', os: 'rocky-9', zone: Z2 });
  const doomed = await vm(stack, { name: 'doomed', os: 'debian-12' });
  await stack.control('POST', '/faults', { eventSinkUp: false });
  const unseen = await vm(stack, { name: 'unseen', os: 'debian-12', zone: Z2 });
  await stack.control('POST', '/faults', { eventSinkUp: true });
  await stack.control('PATCH', `/vms/${stopped.id}`, { status: 'TERMINATED' });
  stack.sim.world.removeVm(stack.sim.world.vms.get(doomed.id)!); // deleted behind the orchestrator's back
  assert.is(await getHost(unseen.id), null, 'the event was lost');
  await stack.control('POST', '/agents/run');

  await auditProject(P, { now: later(1) });
  assert.equal(await state(web.id), ['compliant', null]);
  assert.equal(await state(gke.id), ['exempt', 'gke-node']);
  assert.equal(await state(win.id), ['exempt', 'unsupported-os:windows']);
  assert.equal(await state(agentless.id), ['pending', 'awaiting-agent']);
  assert.equal(await state(failing.id), ['pending', 'policy-applying']);
  assert.equal(await state(stopped.id), ['stopped', 'vm-terminated']);
  assert.equal(await state(doomed.id), ['deleted', 'vm-not-found']);
  assert.equal(await state(unseen.id), ['compliant', null], 'discovered');
  assert.match((await listTransitions(unseen.id))[0]!.cause, /discovered/);
  const webHost = await getHost(web.id);
  assert.equal([webHost?.configVersion, webHost?.osqueryVersion], [configVersion, '5.23.1']);

  // Past the grace period the waiting ones are judged.
  await auditProject(P, { now: later(45) });
  assert.equal(await state(agentless.id), ['blocked', 'no-agent-detected']);
  assert.equal(await state(failing.id), ['noncompliant', 'resource-execution-errors:install-osquery']);
  assert.equal(
    await state(web.id),
    ['silent', 'never-reported'],
    'compliant and never a log line past the silence threshold',
  );
  assert.equal(
    (await listTransitions(failing.id)).map((tr) => tr.to),
    ['pending', 'noncompliant'],
  );
});

t('a second audit with nothing changed writes no host document', async ({ stack }) => {
  await publish({ projects: [P] });
  for (let i = 0; i < 5; i++) await vm(stack, { name: `n${i}`, os: 'debian-12', zone: i % 2 ? Z1 : Z2 });
  await stack.control('POST', '/agents/run');
  const first = await auditProject(P, { now: later(1) });
  assert.ok(first.hostWrites > 0);
  const before = usageSnapshot();
  const second = await auditProject(P, { now: later(2) });
  const spent = usageSince(before);
  assert.is(second.hostWrites, 0);
  assert.is(second.changes.length, 0);
  assert.is(spent.firestoreWrites, 0);
  assert.equal(second.counts, first.counts);
});

t('API calls: one Compute page per 500 VMs plus two OS Config listings per zone', async ({ stack }) => {
  await publish({ projects: [P] });
  for (const [i, zone] of [Z1, Z2, 'us-central1-c'].entries()) {
    await stack.control('POST', '/vms:bulk', {
      project: P,
      zone,
      namePrefix: `bulk${i}`,
      count: 400,
      os: 'debian-12',
      as: 'bulkInsert',
      named: true,
      metadata: { 'enable-osconfig': 'TRUE' },
    });
  }
  await stack.control('POST', '/faults', { eventSinkUp: false });
  await stack.flushEvents();
  await stack.control('POST', '/agents/run');
  await auditProject(P, { now: later(1) }); // first audit also checks the zones' rollouts
  await stack.control('POST', '/stats/reset');
  const audit = await auditProject(P, { now: later(2) });
  const calls = await stack.apiCalls();
  assert.equal(calls, {
    'compute.instances.aggregatedList': 3,
    'osconfig.inventories.list': 3,
    'osconfig.reports.list': 3,
  });
  assert.is(audit.apiCalls, 9);
});

t('a zone missing its assignment gets one; an outdated one is updated once', async ({ stack }) => {
  const first = await publish({ projects: [P] });
  const a = await vm(stack, { name: 'a', os: 'debian-12' });
  // The assignment disappears behind the orchestrator's back.
  stack.sim.world.assignments.clear();
  stack.sim.world.reports.clear();
  await clients.firestore().collection('rollouts').doc(first.configVersion).update({ zones: {} });
  const healed = await auditProject(P, { now: later(1) });
  assert.equal(healed.zonesHealed, [`${Z1}:created`]);
  assert.is(
    configVersionOfPolicy((assignments(stack)[0]!.body.osPolicies as Array<{ id: string }>)[0]!.id),
    first.configVersion,
  );
  assert.is((await getHost(a.id))?.state, 'pending');

  // A newer version becomes current without the zone being updated (publish interrupted).
  const rollout = (await getRollout(first.configVersion))!;
  const newer = { ...rollout.policyConfig, configVersion: 'vnewer000001' };
  const { state } = await readConfigurationState();
  const { transition } = publishTransition(state, {
    version: 'vnewer000001',
    previous: null,
    republished: false,
    allAtOnce: true,
    stages: () => ({ stages: [], skipped: [], observe: { minPercent: 0, minHosts: 0 } }),
    actor: { by: 'test', reason: '' },
    now: new Date(),
  });
  await commitTransition(transition, {
    configVersion: 'vnewer000001',
    bucket: rollout.bucket,
    files: rollout.files,
    policyConfig: newer,
  });
  assert.is(await currentVersion(), 'vnewer000001');
  await stack.control('POST', '/stats/reset');
  const updated = await auditProject(P, { now: later(2) });
  assert.equal(updated.zonesHealed, [`${Z1}:updated`]);
  await stack.control('POST', '/agents/run');
  await auditProject(P, { now: later(3) });
  await auditProject(P, { now: later(4) });
  assert.is((await stack.apiCalls())['osconfig.osPolicyAssignments.patch'], 1, 'updated exactly once');
  assert.equal([(await getHost(a.id))?.state, (await getHost(a.id))?.configVersion], ['compliant', 'vnewer000001']);
  const record = await getRollout('vnewer000001');
  assert.is(record?.zones[`${P}/${Z1}`]?.rolloutState, 'SUCCEEDED');
  assert.equal(record?.hostCounts?.[P], { compliant: 1 });
});

t('missing enable-osconfig is remediated when the setting is on', async ({ stack }) => {
  await stack.control('POST', '/projects', { id: P, metadata: {} });
  const b = await vm(stack, { name: 'bare', os: 'debian-12' });
  assert.equal(await state(b.id), ['blocked', 'osconfig-disabled']);
  process.env.REMEDIATE_OSCONFIG_METADATA = 'true';
  const { resetConfig } = await import('../shared/config.js');
  resetConfig();
  try {
    await auditProject(P, { now: later(1) });
    assert.equal(await state(b.id), ['pending', 'osconfig-remediated']);
    const simVm = stack.sim.world.vms.get(b.id)!;
    assert.equal(simVm.metadata.find((i) => i.key === 'enable-osconfig')?.value, 'TRUE');
  } finally {
    delete process.env.REMEDIATE_OSCONFIG_METADATA;
    resetConfig();
  }
});

t("a project whose API answers 403: run partial, the other project's hosts correct", async ({ stack }) => {
  const ok = await vm(stack, { project: 'other', name: 'fine', os: 'debian-12' });
  assert.equal(await state(ok.id), ['pending', 'policy-targeted'], 'as vmLifecycle enrolled it');
  await stack.control('POST', '/faults', { deniedProjects: [P] });
  const { runId } = await startAuditRun('tick-403', new Date());
  const run = await waitForRun(runId);
  assert.is(run?.status, 'partial');
  const results = await runResults(runId!);
  assert.is(results[P]?.status, 'failed');
  assert.match(results[P]?.error ?? '', /ermission/);
  assert.is(results.other?.status, 'succeeded');
  // The other project was reconciled: its VM has no report yet, so the audit left it awaiting one.
  assert.equal(await state(ok.id), ['pending', 'awaiting-report'], 'the other project was reconciled');
  assert.equal([results.other?.instances, results.other?.counts], [1, { pending: 1 }]);
  assert.ok(run?.finishedAt);
});

t(
  'the tick over Pub/Sub: fleetAudit fans out, fleetAuditShard reconciles each project, the run closes',
  async ({ stack }) => {
    await vm(stack, { name: 'one', os: 'debian-12' });
    await vm(stack, { project: 'other', name: 'two', os: 'ubuntu-2204' });
    await stack.control('POST', '/agents/run');
    await (
      await clients.pubsub()
    )
      .topic(config().AUDIT_TICK_TOPIC)
      .publishMessage({ json: { source: 'cloud-scheduler' } });
    const run = await waitForRun();
    assert.is(run?.status, 'succeeded', JSON.stringify(run));
    const runId = (await clients.firestore().collection('audits').get()).docs[0]!.id;
    assert.equal(Object.keys(await runResults(runId)).sort(), ['fleet', 'other']);
    assert.is(
      run!.counts.compliant,
      2,
      'no configuration published: the base policy installs osquery and reports compliant',
    );
    assert.ok(run!.apiCalls > 0);
  },
);

t('a tick delivered twice starts one run; a shard delivered twice counts once', async ({ stack }) => {
  await vm(stack, { name: 'solo', os: 'debian-12' });
  const first = await startAuditRun('same-tick', new Date('2026-11-27T10:00:00Z'), [P]);
  const again = await startAuditRun('same-tick', new Date('2026-11-27T10:00:00Z'), [P]);
  assert.equal([first.fannedOut, again.fannedOut, again.runId], [true, false, first.runId]);
  // The one shard message reaches fleetAuditShard through the push subscription.
  const run = await waitForRun(first.runId);
  assert.is(run?.status, 'succeeded');
  assert.is(
    await runAuditShard({ runId: first.runId!, project: P }),
    'duplicate',
    'delivered again: nothing counted twice',
  );
  assert.is((await runResults(first.runId!))[P]?.instances, 1);
});

t(
  'a project id with a dot and a colon (example.com:acme): its result is its own document, the run closes',
  async ({ stack }) => {
    const D = 'example.com:acme';
    await stack.control('POST', '/projects', { id: D, metadata: { 'enable-osconfig': 'TRUE' } });
    const one = await createVm(stack, { project: D, zone: Z1, name: 'scoped', os: 'debian-12' });
    await stack.control('POST', '/agents/run');
    const { runId } = await startAuditRun('dotted-tick', new Date(), [D, P]);
    const run = await waitForRun(runId);
    assert.is(run?.status, 'succeeded', JSON.stringify(run));
    const results = await runResults(runId!);
    assert.equal(Object.keys(results).sort(), [D, P].sort());
    assert.equal([results[D]?.status, results[D]?.instances], ['succeeded', 1]);
    assert.is((await getHost(one.id))?.project, D);
  },
);

t('no target projects: no run is left running, and the log says why', async () => {
  const { result, logs } = await captureLogs(() => startAuditRun('empty-tick', new Date(), []));
  assert.is(result.fannedOut, false);
  const runs = (await clients.firestore().collection('audits').get()).docs.map((d) => d.data());
  assert.equal(
    runs.filter((r) => r.status === 'running'),
    [],
  );
  assert.ok(
    logs.some((l) => /no target projects/i.test(l.message)),
    JSON.stringify(logs),
  );
});

/** A Pub/Sub push to a function, as the emulator delivers it, with the message fields given. */
async function push(stack: Stack, fn: 'fleetAudit' | 'fleetAuditShard', message: Record<string, unknown>) {
  const topic = fn === 'fleetAudit' ? config().AUDIT_TICK_TOPIC : config().AUDIT_SHARD_TOPIC;
  const res = await fetch(`${stack.functions.urls[fn]}projects/${process.env.GOOGLE_CLOUD_PROJECT}/topics/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message, subscription: `projects/${process.env.GOOGLE_CLOUD_PROJECT}/subscriptions/test` }),
  });
  await res.arrayBuffer();
  return res.status;
}
const json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

t('a tick without publishTime, delivered twice a second apart: one run', async ({ stack }) => {
  await stack.control('POST', '/faults', { deniedProjects: [P, 'other'] }); // the run itself is what counts here
  const tick = { data: json({ source: 'cloud-scheduler' }), messageId: 'tick-without-time' };
  assert.is(await push(stack, 'fleetAudit', tick), 204);
  // A redelivery comes later; the Functions Framework stamps each delivery with its own time.
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
  assert.is(await push(stack, 'fleetAudit', tick), 204);
  const runs = await clients.firestore().collection('audits').get();
  assert.is(runs.size, 1, runs.docs.map((d) => d.id).join(', '));
});

t(
  'shards for a project outside their run, or with an invalid project id, are acknowledged and change nothing',
  async ({ stack }) => {
    await vm(stack, { name: 'solo', os: 'debian-12' });
    const { runId } = await startAuditRun('closed-tick', new Date(), [P]);
    const closed = await waitForRun(runId);
    assert.is(closed?.status, 'succeeded');
    await stack.control('POST', '/projects', { id: 'stranger', metadata: { 'enable-osconfig': 'TRUE' } });
    const stranger = await createVm(stack, { project: 'stranger', zone: Z1, name: 'x', os: 'debian-12' });
    const hostsBefore = (await clients.firestore().collection('hosts').get()).size;
    const { result, logs } = await captureLogs(async () => {
      const statuses: number[] = [];
      for (const project of ['stranger', '..', '', 'a'.repeat(10_000), 'projects/fleet'])
        statuses.push(
          await push(stack, 'fleetAuditShard', { data: json({ runId, project }), messageId: `s-${project.length}` }),
        );
      return statuses;
    });
    assert.equal(result, [204, 204, 204, 204, 204]);
    const after = await getRun(runId!);
    assert.equal(Object.keys(await runResults(runId!)), [P]);
    assert.equal(after!.finishedAt?.getTime(), closed!.finishedAt?.getTime());
    assert.is((await clients.firestore().collection('hosts').get()).size, hostsBefore);
    assert.is((await getHost(stranger.id))?.state, 'pending', 'enrolled by vmLifecycle, never audited');
    assert.ok(
      logs.some((l) => /not a project of (its|the) run/.test(String(l.reason ?? l.message))),
      JSON.stringify(logs),
    );
    assert.is(logs.filter((l) => /rejected malformed message/.test(l.message)).length, 4, JSON.stringify(logs));
  },
);

t(
  'a shard whose project answers 403 over Pub/Sub: recorded failed, acknowledged, no unhandled rejection',
  async ({ stack }) => {
    await publish({ projects: [P] });
    await stack.control('POST', '/faults', { deniedProjects: [P] });
    await createRun('denied-run', [P], new Date());
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      assert.is(
        await push(stack, 'fleetAuditShard', { data: json({ runId: 'denied-run', project: P }), messageId: 'd1' }),
        204,
      );
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('unhandledRejection', listener);
    }
    assert.equal(unhandled.map(String), []);
    const run = await getRun('denied-run');
    assert.equal([run?.status, (await runResults('denied-run'))[P]?.status], ['failed', 'failed']);
  },
);

t(
  'label fixes that fail on one VM (deleted since the listing: 404; 403; 412 on every try) cost that VM only',
  async ({ stack }) => {
    await stack.control('POST', '/faults', { eventSinkUp: false }); // the audit finds them
    const gke = (name: string, zone = Z1) =>
      vm(stack, { name, zone, os: 'ubuntu-2204', gke: { labelled: false }, method: 'mig' });
    const doomed = await gke('gke-doomed');
    const refusing = await gke('gke-refusing');
    const contended = await gke('gke-contended');
    const fine = await gke('gke-fine', Z2);
    const web = await vm(stack, { name: 'web', os: 'debian-12' });
    await stack.control('POST', '/faults', {
      eventSinkUp: true,
      hold: [{ match: 'compute.projects.get', count: 1 }],
      failNext: [
        { status: 403, count: 1, match: 'instances/gke-refusing/setLabels' },
        { status: 412, count: 6, match: 'instances/gke-contended/setLabels' }, // a try and five retries
      ],
    });
    const audit = auditProject(P, { now: later(1) });
    audit.catch(() => undefined);
    await stack.control('POST', '/held/wait', { count: 1 }); // the audit has listed the VMs
    await stack.control('DELETE', `/vms/${P}/${Z1}/gke-doomed?silent=true`);
    await stack.control('POST', '/held/release');
    const result = await audit;
    assert.equal(
      result.fixFailures.map((f) => f.instanceId).sort(),
      [doomed.id, refusing.id, contended.id].sort(),
      JSON.stringify(result.fixFailures),
    );
    assert.is((await getHost(fine.id))?.state, 'exempt');
    assert.is(stack.sim.world.vms.get(fine.id)?.labels['osquery-exempt'], 'true');
    assert.is((await getHost(web.id))?.state, 'pending');
    for (const left of [doomed, refusing, contended])
      assert.is(await getHost(left.id), null, 'left for the next audit');
    // The next audit fixes what can be fixed now.
    await auditProject(P, { now: later(2) });
    for (const fixed of [refusing, contended]) assert.is((await getHost(fixed.id))?.state, 'exempt');
    assert.is(await getHost(doomed.id), null, 'gone before it was ever recorded');
  },
);

t(
  'reports named by VM name are matched within the zone: two VMs named alike in two zones stay apart',
  async ({ stack }) => {
    await stack.control('POST', '/faults', { reportsByName: true });
    const a = await vm(stack, { name: 'twin', os: 'debian-12', zone: Z1 });
    const b = await vm(stack, { name: 'twin', os: 'debian-12', zone: Z2, policyFailure: 'install-osquery' });
    await stack.control('POST', '/agents/run');
    await auditProject(P, { now: later(1) });
    assert.equal(await state(a.id), ['compliant', null]);
    assert.equal(await state(b.id), ['pending', 'policy-applying']);
  },
);

/** Polls until the fleet status is the run's (published after the run closed, by the shard that closed it). */
async function waitForFleetStatus(runId: string) {
  for (let i = 0; i < 150; i++) {
    const fleet = await getFleetStatus();
    if (fleet?.run.runId === runId) return fleet;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the fleet status of ${runId} was never published`);
}

/** osquery's cost status is written after the fleet status, as the run's last step. */
async function waitForOsqueryStatus(runId: string) {
  for (let i = 0; i < 150; i++) {
    if ((await getOsqueryStatus())?.runId === runId) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`status/osquery of ${runId} was never written`);
}

t(
  'shards run twice at once and delivered again: each host written once, ' +
    'the run closes once with each project counted once',
  async ({ stack }) => {
    const fleetVms = [];
    for (let i = 0; i < 3; i++) fleetVms.push(await vm(stack, { name: `twice-${i}`, os: 'debian-12' }));
    const otherVms = [await vm(stack, { project: 'other', name: 'twice-x', os: 'ubuntu-2204' })];
    await stack.control('POST', '/faults', { eventSinkUp: false }); // this one only the audit finds
    otherVms.push(await vm(stack, { project: 'other', name: 'twice-y', os: 'rhel-9' }));
    await stack.control('POST', '/faults', { eventSinkUp: true });
    await stack.control('POST', '/agents/run');
    await createRun('twice-run', [P, 'other'], new Date());
    const { result: outcomes, logs } = await captureLogs(() =>
      Promise.all([P, P, 'other', 'other'].map((project) => runAuditShard({ runId: 'twice-run', project }, later(1)))),
    );
    assert.equal(outcomes.slice(0, 2).sort(), ['done', 'duplicate'], 'one of the two runs of a shard counts');
    assert.equal(outcomes.slice(2).sort(), ['done', 'duplicate']);
    const run = await getRun('twice-run');
    assert.is(run?.status, 'succeeded');
    const results = await runResults('twice-run');
    assert.equal([results[P]?.instances, results.other?.instances], [3, 2]);
    assert.equal(run?.counts, { compliant: 5 }, 'every host counted once');
    // Each VM's host went pending (vmLifecycle) or was created, then compliant: once, whoever ran it.
    for (const one of [...fleetVms, ...otherVms]) {
      const transitions = await listTransitions(one.id);
      assert.is(transitions.filter((tr) => tr.to === 'compliant').length, 1, JSON.stringify(transitions));
      assert.is((await getHost(one.id))?.state, 'compliant');
    }
    const fleet = await waitForFleetStatus('twice-run');
    assert.is(fleet.history.filter((h) => h.runId === 'twice-run').length, 1);
    assert.is(logs.filter((l) => l.message === 'audit run closed').length, 1, 'closed (and logged) once');

    // Delivered again over Pub/Sub and run again directly, after the close: nothing is written.
    const finishedAt = run!.finishedAt?.getTime();
    const before = usageSnapshot();
    for (const project of [P, 'other'])
      assert.is(
        await push(stack, 'fleetAuditShard', {
          data: json({ runId: 'twice-run', project }),
          messageId: `again-${project}`,
        }),
        204,
      );
    assert.is(await runAuditShard({ runId: 'twice-run', project: P }, later(2)), 'duplicate');
    assert.is(usageSince(before).firestoreWrites, 0);
    const after = await getRun('twice-run');
    assert.equal(
      [after?.finishedAt?.getTime(), after?.counts, after?.hostWrites],
      [finishedAt, { compliant: 5 }, run!.hostWrites],
    );
  },
);

t(
  'an unchanged run through the fan-out writes nothing but its summary: ' +
    'run, per project snapshot and result, fleet and osquery status',
  async ({ stack }) => {
    await publish({ projects: [P, 'other'] });
    for (let i = 0; i < 4; i++) await vm(stack, { name: `same-${i}`, os: 'debian-12', zone: i % 2 ? Z1 : Z2 });
    await vm(stack, { project: 'other', name: 'same-x', os: 'ubuntu-2204', agent: false });
    await stack.control('POST', '/agents/run');
    const first = await startAuditRun('unchanged-tick-1', new Date());
    assert.ok((await waitForRun(first.runId))?.hostWrites > 0);
    await waitForFleetStatus(first.runId!);
    await waitForOsqueryStatus(first.runId!);

    const before = usageSnapshot();
    const second = await startAuditRun('unchanged-tick-2', new Date());
    const run = await waitForRun(second.runId);
    await waitForFleetStatus(second.runId!);
    await waitForOsqueryStatus(second.runId!);
    const spent = usageSince(before);
    assert.is(run?.status, 'succeeded');
    assert.is(run?.hostWrites, 0);
    assert.equal(run?.counts, (await getRun(first.runId!))?.counts);
    // The run document (created with its plan's one bucket, shards published, closed), per project its snapshot
    // and its result, the fleet status and osquery's cost status (status/osquery, stamped with the run).
    assert.is(spent.firestoreWrites, 2 + 1 + 1 + 2 * 2 + 2);
  },
);

t.run();
