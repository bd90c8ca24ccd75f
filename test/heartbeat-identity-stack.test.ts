// Whose line is it, on the local stack: each simulated VM's heartbeats carry the instance identity token the
// simulated metadata server signs, logHeartbeat checks it against the simulator's certificates (only
// HEARTBEAT_TOKEN_CERTS_URL differs from production). A VM that publishes heartbeats naming another VM (its
// own token, the other's attributes) cannot keep that host from going silent, and host.spoofed fires once.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { clearFirestore, newHeartbeatInstances, startStack, waitFor, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain } from './helpers/pubsub.js';
import { auditProject } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { HeartbeatEngine, recordLogMessage } from '../shared/usecases/heartbeat.js';
import { getHost } from '../shared/adapters/hosts.js';
import { clients } from '../shared/clients.js';
import { config, heartbeatTokenAudience, resetConfig } from '../shared/config.js';
import type { AlertMessage } from '../shared/domain/alerts.js';

const P = 'whose';
const Z = 'us-east1-b';
const MIN = 60_000;
const t = suite<{ stack: Stack; alerts: Subscription }>('whose line is it: identity tokens on heartbeats');

t.before(async (ctx) => {
  ctx.stack = await startStack({
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-whose',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
    GRACE_PERIOD_MINUTES: '30',
    SILENCE_THRESHOLD_MINUTES: '15',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '0',
    HEARTBEAT_UNSIGNED: 'accept',
    SILENT_STORM_SHARE: '1',
  });
  [ctx.alerts] = await (await clients.pubsub()).topic(config().ALERT_TOPIC).createSubscription('whose-alerts');
});
t.after(async (ctx) => ctx.stack.close());
t.before.each(async ({ stack, alerts }) => {
  process.env.HEARTBEAT_UNSIGNED = 'accept';
  resetConfig();
  await clearFirestore();
  await stack.control('POST', '/reset');
  await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
  await newHeartbeatInstances();
  await drain(alerts);
});

const lastLog = async (id: string) => (await getHost(id))?.lastLogAt?.getTime() ?? 0;

/** One log round of every VM at `at`, awaited on `witness`'s host (a VM whose own lines count). */
async function ship(stack: Stack, at: Date, witness: string) {
  await stack.control('POST', '/logs/ship', { at: at.toISOString() });
  await waitFor(
    `the round at ${at.toISOString()}`,
    () => lastLog(witness),
    (t) => t >= at.getTime() - 1000,
  );
}

async function fleet(stack: Stack, names: string[]) {
  await publish({ projects: [P] });
  const vms = [];
  for (const name of names) vms.push(await createVm(stack, { project: P, zone: Z, name, os: 'debian-12' }));
  await stack.control('POST', '/agents/run');
  return vms;
}

const fault = (stack: Stack, id: string, spec: Record<string, unknown>) => stack.control('PATCH', `/vms/${id}`, spec);

t(
  'a VM forging heartbeats for a host whose osqueryd stopped: the host goes silent, host.spoofed fires once',
  async ({ stack, alerts }) => {
    const [victim, attacker] = await fleet(stack, ['victim', 'attacker']);
    const base = Math.floor(Date.now() / 1000) * 1000 - 60 * MIN;
    const at = (minutes: number) => new Date(base + minutes * MIN);
    await ship(stack, at(0), victim!.id);
    await waitFor(
      'the attacker at round 0',
      () => lastLog(attacker!.id),
      (t) => t >= base,
    );
    assert.is(await lastLog(victim!.id), base, "the victim's own signed heartbeat counts");

    // Its osqueryd stops; the attacker publishes each of its heartbeats again, naming the victim.
    await fault(stack, victim!.id, { logsStopped: true });
    await fault(stack, attacker!.id, { spoofAs: victim!.id });
    for (const m of [5, 10, 15, 20]) await ship(stack, at(m), attacker!.id);
    await waitFor(
      "the victim's spoofed record",
      async () => (await (await clients.firestore()).doc(`hosts/${victim!.id}`).get()).get('spoofed.lastAt'),
      (lastAt) => (lastAt?.toMillis?.() ?? 0) >= at(20).getTime(),
    );
    const doc = (await (await clients.firestore()).doc(`hosts/${victim!.id}`).get()).data()!;
    assert.equal(
      [doc.spoofed.reason, doc.spoofed.sender.instanceId, doc.spoofed.sender.name, doc.spoofed.resolvedAt],
      ['instance-mismatch', attacker!.id, 'attacker', null],
    );
    assert.is(await lastLog(victim!.id), base, 'no forged line moved lastLogAt');

    // The same forged line delivered again, to a new instance (it remembers nothing): no second alert.
    const token = stack.sim.identityTokens.tokenFor(
      stack.sim.world.vms.get(attacker!.id)!,
      heartbeatTokenAudience(),
      at(5),
    );
    const again = await recordLogMessage(new HeartbeatEngine(), {
      data: Buffer.from(
        JSON.stringify({ name: 'heartbeat', unixTime: Math.floor(at(5).getTime() / 1000), identity_token: token }),
      ),
      attributes: { gce_instance_id: victim!.id, gce_project_id: P, gce_zone: Z, osquery_name: 'heartbeat' },
      messageId: 'redelivered',
      publishTime: new Date(),
    });
    assert.is(again.outcome, 'spoofed');

    await auditProject(P, { now: at(20) });
    assert.is((await getHost(victim!.id))?.state, 'silent', 'forged heartbeats did not keep it reporting');
    assert.is((await getHost(attacker!.id))?.state, 'reporting');
    const messages = (await drain(alerts)).map((m) => m.data as AlertMessage);
    const spoofAlerts = messages.filter((m) => m.kind === 'host.spoofed');
    assert.equal(
      spoofAlerts.map((m) => [m.host?.name, m.status, m.severity, m.reason, (m.sender as { name: string }).name]),
      [['victim', 'firing', 'critical', 'instance-mismatch', 'attacker']],
    );
    assert.equal(
      messages.filter((m) => m.kind === 'host.silent').map((m) => [m.host?.name, m.status]),
      [['victim', 'firing']],
    );
  },
);

t('a genuine signed heartbeat counts and is not counted as unsigned', async ({ stack }) => {
  const [vm] = await fleet(stack, ['genuine']);
  const base = Math.floor(Date.now() / 1000) * 1000 - 10 * MIN;
  await ship(stack, new Date(base), vm!.id);
  await ship(stack, new Date(base + 5 * MIN), vm!.id);
  const doc = (await (await clients.firestore()).doc(`hosts/${vm!.id}`).get()).data()!;
  assert.is(doc.lastLogAt.toMillis(), base + 5 * MIN);
  assert.is(doc.unsignedHeartbeats, undefined);
  assert.is(doc.spoofed, undefined);
});

t(
  'unsigned heartbeats: accepted and counted with accept; counted, not a sign of life, with reject',
  async ({ stack }) => {
    const [vm] = await fleet(stack, ['unsigned']);
    await fault(stack, vm!.id, { unsignedHeartbeats: true });
    const base = Math.floor(Date.now() / 1000) * 1000 - 10 * MIN;
    await ship(stack, new Date(base), vm!.id);
    const counted = await waitFor(
      'the unsigned count',
      async () => (await (await clients.firestore()).doc(`hosts/${vm!.id}`).get()).get('unsignedHeartbeats.count'),
      (n) => typeof n === 'number' && n >= 1,
    );
    assert.ok(counted >= 1);
    assert.is(await lastLog(vm!.id), base, 'accepted: a sign of life');

    process.env.HEARTBEAT_UNSIGNED = 'reject';
    resetConfig();
    await stack.control('POST', '/logs/ship', { at: new Date(base + 5 * MIN).toISOString() });
    await waitFor(
      'the next unsigned heartbeat counted',
      async () => (await (await clients.firestore()).doc(`hosts/${vm!.id}`).get()).get('unsignedHeartbeats.lastAt'),
      (t) => (t?.toMillis?.() ?? 0) >= base + 5 * MIN,
    );
    assert.is(await lastLog(vm!.id), base, 'rejected: lastLogAt stays');
  },
);

t.run();
