// logHeartbeat, silence, alerts and monitoringAlert against
// the emulators, through the functions as Pub/Sub pushes them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { captureLogs, clearFirestore, newHeartbeatInstances, startStack, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain } from './helpers/pubsub.js';
import { auditProject } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { getHost, listTransitions } from '../shared/adapters/hosts.js';
import { HeartbeatEngine, recordLogMessage } from '../shared/usecases/heartbeat.js';
import { clients } from '../shared/clients.js';
import { config, resetConfig } from '../shared/config.js';
import type { AlertMessage } from '../shared/domain/alerts.js';

const P = 'logs';
const Z = 'us-west1-a';
const MIN = 60_000;
const t = suite<{ stack: Stack; alerts: Subscription; dead: Subscription }>('heartbeats and alerts');
/** The logHeartbeat instance the tests call the use case with; the served function has its own. */
let engine: HeartbeatEngine;

t.before(async (ctx) => {
  ctx.stack = await startStack({
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-logs',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
    GRACE_PERIOD_MINUTES: '30',
    SILENCE_THRESHOLD_MINUTES: '15',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '60',
    DEAD_LETTER_TOPIC: 'osquery-dead-letter',
  });
  const pubsub = await clients.pubsub();
  for (const name of ['osquery-dead-letter'])
    if (!(await pubsub.topic(name).exists())[0]) await pubsub.topic(name).create();
  [ctx.alerts] = await pubsub.topic(config().ALERT_TOPIC).createSubscription('test-alerts');
  [ctx.dead] = await pubsub.topic('osquery-dead-letter').createSubscription('test-dead');
});
t.after(async (ctx) => ctx.stack.close());
t.before.each(async ({ stack, alerts }) => {
  await clearFirestore();
  await stack.control('POST', '/reset');
  await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
  engine = new HeartbeatEngine();
  await newHeartbeatInstances();
  await drain(alerts);
});

/** A Pub/Sub push to a function, exactly as the emulator delivers it. */
async function push(
  stack: Stack,
  fn: 'logHeartbeat' | 'monitoringAlert',
  data: string | Buffer,
  attributes: Record<string, string> = {},
  messageId = String(Math.random()).slice(2),
) {
  const topic = fn === 'logHeartbeat' ? config().LOG_TOPIC : config().INCIDENT_TOPIC;
  const body = {
    message: {
      data: Buffer.from(data).toString('base64'),
      attributes,
      messageId,
      publishTime: new Date().toISOString(),
    },
    subscription: `projects/${process.env.GOOGLE_CLOUD_PROJECT}/subscriptions/test`,
  };
  const res = await fetch(`${stack.functions.urls[fn]}projects/${process.env.GOOGLE_CLOUD_PROJECT}/topics/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

const ids = (vm: { id: string; zone?: string }, zone = Z) => ({
  gce_instance_id: vm.id,
  gce_project_id: P,
  gce_zone: zone,
});
const line = (at: number, name = 'heartbeat') =>
  JSON.stringify({ name, unixTime: Math.floor(at / 1000), action: 'snapshot', snapshot: [] });
const later = (minutes: number) => new Date(Date.now() + minutes * MIN);

async function healthyVm(stack: Stack, name: string, zone = Z) {
  const vm = await createVm(stack, { project: P, zone, name, os: 'debian-12' });
  return { ...vm, zone };
}

t(
  'multi-line messages, out of order and duplicated, malformed lines beside good ones: lastLogAt is the newest',
  async ({ stack }) => {
    const vm = await healthyVm(stack, 'web');
    const t0 = Date.now() - 10 * 60_000;
    assert.is(
      await push(
        stack,
        'logHeartbeat',
        [line(t0 + 3000), '{nope', line(t0 + 9000), line(t0 + 1000)].join('\n'),
        ids(vm),
      ),
      204,
    );
    assert.is((await getHost(vm.id))?.lastLogAt?.getTime(), Math.floor((t0 + 9000) / 1000) * 1000);
    await newHeartbeatInstances();
    assert.is(await push(stack, 'logHeartbeat', line(t0 + 5000), ids(vm)), 204, 'an older line');
    assert.is(await push(stack, 'logHeartbeat', line(t0 + 9000), ids(vm)), 204, 'a duplicate');
    assert.is((await getHost(vm.id))?.lastLogAt?.getTime(), Math.floor((t0 + 9000) / 1000) * 1000, 'never backwards');
  },
);

t('writes are coalesced per host per window', async ({ stack }) => {
  const vm = await healthyVm(stack, 'chatty');
  const { usageSince, usageSnapshot } = await import('../shared/metrics.js');
  const before = usageSnapshot();
  for (let i = 0; i < 20; i++) await push(stack, 'logHeartbeat', line(Date.now() - (20 - i) * 1000), ids(vm));
  const spent = usageSince(before);
  assert.equal([spent.firestoreReads, spent.firestoreWrites], [1, 1], 'one read and one write for twenty messages');
});

t(
  'two VMs with the same name in different zones are told apart; unknown hosts are counted and reported',
  async ({ stack }) => {
    const a = await healthyVm(stack, 'twin', Z);
    const b = await healthyVm(stack, 'twin', 'us-west1-b');
    await push(stack, 'logHeartbeat', line(Date.now() - 1000), ids(a, Z));
    assert.ok((await getHost(a.id))?.lastLogAt);
    assert.is((await getHost(b.id))?.lastLogAt, null);
    const { result, logs } = await captureLogs(async () => [
      await push(stack, 'logHeartbeat', line(Date.now()), {
        gce_instance_id: '999999999',
        gce_project_id: P,
        gce_zone: Z,
      }),
      await push(stack, 'logHeartbeat', line(Date.now()), { hostname: 'twin' }),
    ]);
    assert.equal(result, [204, 204]);
    assert.ok(
      logs.some((l) => /unknown host/.test(l.message) && l.instanceId === '999999999'),
      'unknown instance reported',
    );
    assert.ok(
      logs.some((l) => /without host identity/.test(l.message) && l.lines === 1),
      'missing identity reported with its line count',
    );
  },
);

t(
  'silent after the threshold; one firing and one resolved message per episode, whatever the redeliveries and reruns',
  async ({ stack, alerts }) => {
    await publish({ projects: [P] });
    const vm = await healthyVm(stack, 'quiet');
    await stack.control('POST', '/agents/run');
    // Simulated time for both the heartbeats and the audits, so the threshold passes without waiting.
    const at = (minutes: number) => new Date(Date.now() + minutes * MIN);
    const message = (lineAt: Date, messageId: string) => ({
      data: Buffer.from(line(lineAt.getTime())),
      attributes: ids(vm),
      messageId,
      publishTime: lineAt,
    });
    const first = message(at(1), 'first-line');
    assert.is((await recordLogMessage(engine, first, at(1))).outcome, 'recorded');
    await auditProject(P, { now: at(2) });
    assert.is((await getHost(vm.id))?.state, 'reporting');
    // Logs stop: three audits past the threshold while the old message is redelivered.
    for (let i = 0; i < 3; i++) {
      await auditProject(P, { now: at(20 + i) });
      engine = new HeartbeatEngine();
      await recordLogMessage(engine, first, at(20 + i));
    }
    assert.equal([(await getHost(vm.id))?.state, (await getHost(vm.id))?.reason], ['silent', 'logs-stopped']);
    // Logs resume: reporting at once, then the same message redelivered and the audit rerun three times.
    const resumed = message(at(30), 'resumed');
    assert.is((await recordLogMessage(engine, resumed, at(30))).outcome, 'recorded');
    assert.is((await getHost(vm.id))?.state, 'reporting');
    for (let i = 0; i < 3; i++) {
      engine = new HeartbeatEngine();
      await recordLogMessage(engine, resumed, at(31 + i));
      await auditProject(P, { now: at(31 + i) });
    }
    const messages = (await drain(alerts)).filter((m) => (m.data as AlertMessage).kind === 'host.silent');
    assert.equal(
      messages.map((m) => (m.data as AlertMessage).status),
      ['firing', 'resolved'],
    );
    const firing = messages[0]!.data as AlertMessage;
    assert.equal(firing.host, { instanceId: vm.id, name: 'quiet', project: P, zone: Z });
    assert.equal([firing.severity, firing.reason], ['critical', 'logs-stopped']);
    assert.equal(messages[0]!.attributes, { kind: 'host.silent', status: 'firing', severity: 'critical' });
    assert.is((messages[1]!.data as AlertMessage).dedupKey, firing.dedupKey);
    assert.equal(
      (await listTransitions(vm.id)).map((tr) => tr.to),
      ['pending', 'reporting', 'silent', 'reporting'],
    );
  },
);

t('never reported: silent after the threshold; stopped VMs never alert', async ({ stack, alerts }) => {
  await publish({ projects: [P] });
  const mute = await healthyVm(stack, 'mute');
  const off = await healthyVm(stack, 'off');
  await stack.control('POST', '/agents/run');
  await auditProject(P, { now: later(1) });
  assert.is((await getHost(mute.id))?.state, 'compliant');
  await stack.control('PATCH', `/vms/${off.id}`, { status: 'TERMINATED' });
  await auditProject(P, { now: later(20) });
  assert.equal([(await getHost(mute.id))?.state, (await getHost(mute.id))?.reason], ['silent', 'never-reported']);
  assert.is((await getHost(off.id))?.state, 'stopped');
  const messages = await drain(alerts);
  assert.equal(
    messages.map((m) => [
      (m.data as AlertMessage).kind,
      (m.data as AlertMessage).host?.name,
      (m.data as AlertMessage).status,
    ]),
    [['host.silent', 'mute', 'firing']],
  );
});

t('blocked and noncompliant alert on entry and resolve on exit', async ({ stack, alerts }) => {
  await publish({ projects: [P] });
  const failing = await createVm(stack, {
    project: P,
    zone: Z,
    name: 'failing',
    os: 'rhel-9',
    policyFailure: 'install-osquery',
  });
  const nosa = await createVm(stack, { project: P, zone: Z, name: 'nosa', os: 'debian-12', serviceAccount: null });
  await stack.control('POST', '/agents/run');
  await auditProject(P, { now: later(1) });
  await auditProject(P, { now: later(40) });
  assert.is((await getHost(failing.id))?.state, 'noncompliant');
  await stack.control('PATCH', `/vms/${failing.id}`, { policyFailure: null });
  await stack.control('POST', '/agents/run');
  await auditProject(P, { now: later(41) });
  assert.is((await getHost(failing.id))?.state, 'compliant');
  const messages = (await drain(alerts))
    .map((m) => m.data as AlertMessage)
    .map((m) => [m.kind, m.host?.name, m.status]);
  assert.equal(
    messages.filter((m) => m[1] === 'failing'),
    [
      ['host.noncompliant', 'failing', 'firing'],
      ['host.noncompliant', 'failing', 'resolved'],
    ],
  );
  assert.equal(
    messages.filter((m) => m[1] === 'nosa'),
    [['host.blocked', 'nosa', 'firing']],
    'blocked at enrollment: one firing',
  );
  assert.is((await getHost(nosa.id))?.state, 'blocked');
});

t('an alert that could not be published is sent by a later audit', async ({ stack, alerts }) => {
  await publish({ projects: [P] });
  await healthyVm(stack, 'later');
  await stack.control('POST', '/agents/run');
  await auditProject(P, { now: later(1) });
  process.env.ALERT_TOPIC = 'no-such-topic';
  resetConfig();
  try {
    await auditProject(P, { now: later(20) });
  } finally {
    delete process.env.ALERT_TOPIC;
    resetConfig();
  }
  assert.equal(await drain(alerts), [], 'publishing failed');
  const owed = await clients.firestore().collection('alerts').where('owed', '==', true).get();
  assert.is(owed.size, 1);
  await auditProject(P, { now: later(21) });
  const messages = await drain(alerts);
  assert.equal(
    messages.map((m) => [(m.data as AlertMessage).kind, (m.data as AlertMessage).status]),
    [['host.silent', 'firing']],
  );
  await auditProject(P, { now: later(22) });
  assert.equal(await drain(alerts), [], 'sent once');
});

const incident = (state: 'open' | 'closed', instanceId: string | null, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    version: '1.2',
    incident: {
      incident_id: 'inc-1',
      scoping_project_id: P,
      url: 'https://console.cloud.google.com/monitoring/alerting/incidents/inc-1',
      state,
      started_at: Math.floor(Date.now() / 1000) - 60,
      ended_at: state === 'closed' ? Math.floor(Date.now() / 1000) : null,
      resource: {
        type: 'gce_instance',
        labels: instanceId ? { instance_id: instanceId, project_id: P, zone: Z } : { project_id: P },
      },
      resource_name: 'web',
      metric: { type: 'agent.googleapis.com/processes/cpu_time', displayName: 'Process CPU' },
      policy_name: 'osqueryd CPU above 10%',
      condition_name: 'osqueryd CPU',
      threshold_value: '0.1',
      observed_value: '0.23',
      summary: 'osqueryd CPU above 10%',
      ...extra,
    },
  });

t(
  'a Cloud Monitoring incident for a VM: on the host while open, host.performance firing then resolved',
  async ({ stack, alerts }) => {
    const vm = await healthyVm(stack, 'hot');
    assert.is(await push(stack, 'monitoringAlert', incident('open', vm.id)), 204);
    assert.is(await push(stack, 'monitoringAlert', incident('open', vm.id)), 204, 'redelivered');
    const open = (await clients.firestore().collection('hosts').doc(vm.id).get()).get('openIncidents');
    assert.equal(
      open.map((i: { incidentId: string; observed: string }) => [i.incidentId, i.observed]),
      [['inc-1', '0.23']],
    );
    assert.is(await push(stack, 'monitoringAlert', incident('closed', vm.id)), 204);
    assert.is(await push(stack, 'monitoringAlert', incident('closed', vm.id)), 204, 'redelivered');
    assert.is((await clients.firestore().collection('hosts').doc(vm.id).get()).get('openIncidents'), undefined);
    const messages = (await drain(alerts)).map((m) => m.data as AlertMessage);
    assert.equal(
      messages.map((m) => [m.kind, m.status, m.host?.name, m.reason]),
      [
        ['host.performance', 'firing', 'hot', 'osqueryd CPU above 10%: osqueryd CPU'],
        ['host.performance', 'resolved', 'hot', 'osqueryd CPU above 10%: osqueryd CPU'],
      ],
    );
  },
);

t(
  "the console's test notification, an incident without instance_id, and a malformed body are handled",
  async ({ stack, alerts, dead }) => {
    await drain(dead);
    const { result, logs } = await captureLogs(async () => [
      await push(
        stack,
        'monitoringAlert',
        JSON.stringify({ version: 'test', incident: { incident_id: '12345', summary: 'This is a test' } }),
      ),
      await push(stack, 'monitoringAlert', incident('open', null)),
      await push(stack, 'monitoringAlert', 'not json at all'),
    ]);
    assert.equal(result, [204, 204, 204]);
    assert.ok(logs.some((l) => /test notification/.test(l.message)));
    assert.ok(logs.some((l) => /rejected malformed message/.test(l.message) && /not JSON/.test(String(l.reason))));
    const messages = (await drain(alerts)).map((m) => m.data as AlertMessage);
    assert.equal(
      messages.map((m) => [m.kind, m.status, m.host]),
      [['host.performance', 'firing', null]],
    );
    const deadLettered = await drain(dead);
    assert.equal(
      deadLettered.map((m) => [(m.data as { function: string }).function, (m.data as { reason: string }).reason]),
      [['monitoringAlert', 'message data is not JSON']],
    );
  },
);

t('logs shipped by the simulated VMs through the Pub/Sub emulator reach logHeartbeat', async ({ stack }) => {
  if (!stack.sim.shipper) throw new Error('the test stack ships logs');
  await publish({ projects: [P] });
  const vm = await healthyVm(stack, 'shipper');
  await stack.control('POST', '/agents/run');
  await stack.control('POST', '/logs/ship');
  let host = await getHost(vm.id);
  for (let i = 0; i < 50 && !host?.lastLogAt; i++) {
    await new Promise((r) => setTimeout(r, 200));
    host = await getHost(vm.id);
  }
  assert.ok(host?.lastLogAt, 'the heartbeat arrived through the emulator');
});

/** One line at `lineAt` from `vm` through logHeartbeat's use case. */
const lineMessage = (vm: { id: string }, lineAt: number, messageId: string) => ({
  data: Buffer.from(line(lineAt)),
  attributes: ids(vm),
  messageId,
  publishTime: new Date(lineAt),
});

t(
  'a write that records nothing (another instance wrote newer): lines coalesced meanwhile still reach lastLogAt',
  async ({ stack }) => {
    const vm = await healthyVm(stack, 'twice');
    const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    assert.is((await recordLogMessage(engine, lineMessage(vm, base + 2000, 'other-instance'))).outcome, 'recorded');
    engine = new HeartbeatEngine(); // that was another function instance
    // Two messages at once: the first claims the write (its line is older than what is recorded), the
    // second, newer, is coalesced onto it.
    const [older, newer] = await Promise.all([
      recordLogMessage(engine, lineMessage(vm, base + 1000, 'older')),
      recordLogMessage(engine, lineMessage(vm, base + 5000, 'newer')),
    ]);
    assert.equal([older.outcome, newer.outcome], ['recorded', 'coalesced'], 'both acknowledged');
    assert.is((await getHost(vm.id))?.lastLogAt?.getTime(), base + 5000, 'the newest acknowledged line');
  },
);

t(
  'a conditional write that loses to a concurrent writer: lines coalesced meanwhile still reach lastLogAt',
  async ({ stack }) => {
    const vm = await healthyVm(stack, 'contended');
    const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const db = clients.firestore();
    const ref = db.collection('hosts').doc(vm.id);
    const { usageSnapshot } = await import('../shared/metrics.js');
    // A concurrent writer holds the host document: it has read it (the emulator locks it against other
    // writes until this transaction ends) and writes once logHeartbeat has read it too.
    let heartbeatRead!: () => void;
    const readDone = new Promise<void>((resolve) => (heartbeatRead = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const writer = db.runTransaction(
      async (tx) => {
        await tx.get(ref);
        locked();
        await readDone;
        tx.update(ref, { updatedAt: new Date() });
      },
      { maxAttempts: 1 },
    );
    await isLocked;
    const before = usageSnapshot();
    const reads = before.firestoreReads;
    const messages = Promise.all([
      recordLogMessage(engine, lineMessage(vm, base + 1000, 'first')),
      recordLogMessage(engine, lineMessage(vm, base + 5000, 'second')),
    ]);
    while (usageSnapshot().firestoreReads === reads) await new Promise((r) => setImmediate(r));
    heartbeatRead(); // logHeartbeat has read the host; its conditional write now waits for the lock, then loses
    await writer;
    assert.equal(
      (await messages).map((r) => r.outcome),
      ['recorded', 'coalesced'],
    );
    assert.is(usageSnapshot().transactions - before.transactions, 1, 'the conditional write lost: decided again');
    assert.is((await getHost(vm.id))?.lastLogAt?.getTime(), base + 5000, 'the newest acknowledged line');
  },
);

t(
  'an episode closed for a host that had no firing record owes nothing and is not rewritten',
  async ({ stack, alerts }) => {
    await publish({ projects: [P] });
    const vm = await healthyVm(stack, 'legacy');
    await stack.control('POST', '/agents/run');
    // Recorded blocked before alert episodes existed: no alerts/ record for this episode.
    const since = new Date(Date.now() - 3_600_000);
    await clients
      .firestore()
      .collection('hosts')
      .doc(vm.id)
      .update({ state: 'blocked', reason: 'no-agent-detected', stateSince: since });
    await auditProject(P, { now: later(1) });
    assert.is((await getHost(vm.id))?.state, 'compliant');
    const episodes = () => clients.firestore().collection('alerts').get();
    const first = await episodes();
    assert.ok(
      first.docs.every((d) => d.get('owed') === false),
      JSON.stringify(first.docs.map((d) => d.data())),
    );
    await auditProject(P, { now: later(2) });
    const second = await episodes();
    assert.equal(
      second.docs.map((d) => d.updateTime.toMillis()),
      first.docs.map((d) => d.updateTime.toMillis()),
      'not leased and rewritten by the next audit',
    );
    assert.equal(await drain(alerts), [], 'a resolved message for an episode that never fired is not sent');
  },
);

t('a malformed incident for a known host writes nothing', async ({ stack, alerts }) => {
  const vm = await healthyVm(stack, 'target');
  const malformed = [
    incident('open', vm.id, { incident_id: 'a/b/c' }),
    incident('open', vm.id, { incident_id: 'x'.repeat(2000) }),
    incident('open', vm.id, { policy_name: 'p'.repeat(20_000) }),
    incident('open', vm.id, { started_at: 99_999_999_999_999 }),
    incident('open', vm.id, { url: 'javascript:alert(1)' }),
    incident('open', `${vm.id}/transitions/x`),
    incident('closed', vm.id, { incident_id: 'a/b/c' }),
  ];
  const { result, logs } = await captureLogs(async () => {
    const statuses: number[] = [];
    for (const body of malformed) statuses.push(await push(stack, 'monitoringAlert', body));
    return statuses;
  });
  assert.ok(
    result.every((s) => s === 204),
    String(result),
  );
  const host = await clients.firestore().collection('hosts').doc(vm.id).get();
  assert.is(host.get('openIncidents'), undefined);
  assert.equal((await clients.firestore().collection('alerts').get()).size, 0);
  assert.equal(await drain(alerts), []);
  assert.is(
    logs.filter((l) => /rejected malformed message/.test(l.message)).length,
    malformed.length,
    JSON.stringify(logs),
  );
});

t.run();
