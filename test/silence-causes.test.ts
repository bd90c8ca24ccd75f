// Why a host went quiet, on the local stack: the simulated VMs ship their osquery lines through the Pub/Sub
// emulator to logHeartbeat, faults stop them for one cause each, and the audit names the cause; a backlog on
// the heartbeat subscription (Cloud Monitoring's incidents through monitoringAlert) holds silence instead.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { clearFirestore, newHeartbeatInstances, startStack, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain } from './helpers/pubsub.js';
import { auditProject } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { DEFAULT_BUNDLE_DIR } from '../shared/osquery/bundle.js';
import { getHost } from '../shared/adapters/hosts.js';
import { listPipeline } from '../shared/adapters/pipeline.js';
import { clients } from '../shared/clients.js';
import { config } from '../shared/config.js';
import type { AlertMessage } from '../shared/domain/alerts.js';

const P = 'quiet';
const Z = 'us-east1-b';
const MIN = 60_000;
const t = suite<{ stack: Stack; alerts: Subscription }>('why a host went quiet');

t.before(async (ctx) => {
  ctx.stack = await startStack({
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-quiet',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
    GRACE_PERIOD_MINUTES: '30',
    SILENCE_THRESHOLD_MINUTES: '15',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '0',
    // Every cause is its own host here: no storm (shared/domain/storm.ts has its own tests).
    SILENT_STORM_SHARE: '1',
  });
  [ctx.alerts] = await (await clients.pubsub()).topic(config().ALERT_TOPIC).createSubscription('quiet-alerts');
});
t.after(async (ctx) => ctx.stack.close());
t.before.each(async ({ stack, alerts }) => {
  await clearFirestore();
  await stack.control('POST', '/reset');
  await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
  await newHeartbeatInstances();
  await drain(alerts);
});

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One log round of every VM at `at`, through the emulator and logHeartbeat, awaited on `witness`'s host. */
async function ship(stack: Stack, at: Date, witness: string) {
  await stack.control('POST', '/logs/ship', { at: at.toISOString() });
  await until(
    `the round at ${at.toISOString()}`,
    async () => ((await getHost(witness))?.lastLogAt?.getTime() ?? 0) >= at.getTime() - 1000,
  );
}

const vmFault = (stack: Stack, id: string, fault: Record<string, unknown>) =>
  stack.control('PATCH', `/vms/${id}`, fault);

async function fleet(stack: Stack, names: string[], bundleDir?: string) {
  await publish({ projects: [P], ...(bundleDir ? { bundleDir } : {}) });
  const vms = [];
  for (const name of names) vms.push(await createVm(stack, { project: P, zone: Z, name, os: 'debian-12' }));
  await stack.control('POST', '/agents/run');
  return vms;
}

/** The bundle with a heartbeat the watchdog may denylist: no `denylist: false` (an older or hand-edited bundle). */
function denylistableHeartbeat(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  const file = path.join(dir, 'osquery.conf');
  const conf = JSON.parse(readFileSync(file, 'utf8'));
  delete conf.schedule.heartbeat.denylist;
  writeFileSync(file, JSON.stringify(conf, null, 2));
  return dir;
}

const stored = async (id: string, field: string) =>
  (await (await clients.firestore()).doc(`hosts/${id}`).get()).get(field);

/** A Cloud Monitoring notification (version 1.2) about the heartbeat subscription, pushed to monitoringAlert. */
async function pushIncident(stack: Stack, incidentId: string, state: 'open' | 'closed', at: Date, metric: string) {
  const incident = {
    incident_id: incidentId,
    state,
    started_at: Math.floor(at.getTime() / 1000),
    ended_at: state === 'closed' ? Math.floor(at.getTime() / 1000) : null,
    resource: {
      type: 'pubsub_subscription',
      labels: { subscription_id: 'osquery-log-heartbeat-push', project_id: 'p' },
    },
    metric: { type: `pubsub.googleapis.com/subscription/${metric}` },
    policy_name: 'log subscription backlog',
    condition_name: metric,
    observed_value: '1200',
    threshold_value: '600',
  };
  const body = {
    message: {
      data: Buffer.from(JSON.stringify({ version: '1.2', incident })).toString('base64'),
      attributes: {},
      messageId: `${incidentId}-${state}-${Math.random()}`,
      publishTime: new Date().toISOString(),
    },
    subscription: `projects/${process.env.GOOGLE_CLOUD_PROJECT}/subscriptions/test`,
  };
  const url = `${stack.functions.urls.monitoringAlert}projects/${process.env.GOOGLE_CLOUD_PROJECT}/topics/x`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

t(
  'each cause: stopped VM, agent gone, osqueryd crash-looping, shipper down; a healthy host has none',
  async ({ stack, alerts }) => {
    const [stopped, agent, crash, shipper, healthy] = await fleet(stack, [
      'stopped',
      'agent',
      'crash',
      'shipper',
      'ok',
    ]);
    const base = Math.floor(Date.now() / 1000) * 1000 - 60 * MIN;
    const at = (minutes: number) => new Date(base + minutes * MIN);
    for (let k = 0; k < 3; k++) await ship(stack, at(5 * k), healthy!.id);
    await auditProject(P, { now: at(12) });
    for (const vm of [stopped, agent, crash, shipper, healthy])
      assert.equal([(await getHost(vm!.id))?.state, (await getHost(vm!.id))?.cause ?? null], ['reporting', null]);

    await vmFault(stack, stopped!.id, { status: 'TERMINATED' });
    await vmFault(stack, agent!.id, { agentMissing: true });
    await vmFault(stack, crash!.id, { osquerydCrashLoop: true });
    await vmFault(stack, shipper!.id, { shipperDown: true });
    await stack.control('POST', '/agents/run');
    // The crash-looping worker restarts each round (a new pid each heartbeat), then its watcher gives up.
    for (let k = 3; k < 10; k++) await ship(stack, at(5 * k), healthy!.id);
    const restarts = (await (await clients.firestore()).doc(`hosts/${crash!.id}`).get()).get('osqueryd.restarts');
    assert.is(restarts, 4, 'four quick respawns seen before the silence');

    await auditProject(P, { now: at(50) });
    const seen = async (vm: { id: string }) => {
      const h = await getHost(vm.id);
      return [h?.state, h?.cause ?? null];
    };
    assert.equal(await seen(stopped!), ['stopped', 'vm-stopped']);
    assert.equal(await seen(agent!), ['pending', 'agent-gone']);
    assert.equal(await seen(crash!), ['silent', 'osqueryd-crash-loop']);
    assert.equal(await seen(shipper!), ['pending', 'shipper-down']);
    assert.equal(await seen(healthy!), ['reporting', null]);
    const silent = (await drain(alerts)).map((m) => m.data as AlertMessage).filter((m) => m.kind === 'host.silent');
    assert.equal(
      silent.map((m) => [m.host?.name, m.status, m.cause, typeof m.nextStep]),
      [['crash', 'firing', 'osqueryd-crash-loop', 'string']],
    );
  },
);

t('the heartbeat denylisted by the watchdog: osqueryd runs on, its heartbeat stops', async ({ stack, alerts }) => {
  const [hb, healthy] = await fleet(stack, ['hb', 'ok'], denylistableHeartbeat());
  const base = Math.floor(Date.now() / 1000) * 1000 - 150 * MIN;
  const at = (minutes: number) => new Date(base + minutes * MIN);
  for (let k = 0; k < 3; k++) await ship(stack, at(5 * k), healthy!.id);
  await auditProject(P, { now: at(12) });
  assert.is((await getHost(hb!.id))?.state, 'reporting');
  // The watchdog killed the worker while the heartbeat ran: the next worker denylists it for a day.
  await stack.control('POST', `/vms/${hb!.id}/osqueryd/denylist`, { query: 'heartbeat' });
  // Its hourly osquery_schedule snapshot (never denylisted) still arrives and says so.
  let k = 3;
  for (; k < 18 && !((await stored(hb!.id, 'querySchedule.denylisted')) ?? []).includes('heartbeat'); k++)
    await ship(stack, at(5 * k), healthy!.id);
  assert.equal(await stored(hb!.id, 'querySchedule.denylisted'), ['heartbeat']);
  const snapshotAt = (await getHost(hb!.id))!.lastLogAt!.getTime();
  for (const j of [k, k + 1, k + 2]) await ship(stack, at(5 * j), healthy!.id);

  await auditProject(P, { now: new Date(snapshotAt + 20 * MIN) });
  const h = await getHost(hb!.id);
  assert.equal([h?.state, h?.cause], ['silent', 'heartbeat-denylisted']);
  assert.equal([(await getHost(healthy!.id))?.state, (await getHost(healthy!.id))?.cause ?? null], ['reporting', null]);
  const silent = (await drain(alerts)).map((m) => m.data as AlertMessage).filter((m) => m.kind === 'host.silent');
  assert.equal(
    silent.map((m) => [m.host?.name, m.status, m.cause]),
    [['hb', 'firing', 'heartbeat-denylisted']],
  );
});

t('osqueryd without its watchdog, then quiet: the watcher missing before the silence', async ({ stack, alerts }) => {
  const [unwatched, healthy] = await fleet(stack, ['unwatched', 'ok']);
  const base = Math.floor(Date.now() / 1000) * 1000 - 60 * MIN;
  const at = (minutes: number) => new Date(base + minutes * MIN);
  await vmFault(stack, unwatched!.id, { osquerydUnwatched: true });
  for (let k = 0; k < 3; k++) await ship(stack, at(5 * k), healthy!.id);
  await auditProject(P, { now: at(12) });
  assert.is((await getHost(unwatched!.id))?.state, 'reporting');
  assert.is(await stored(unwatched!.id, 'running.watcher'), false, 'its heartbeat said watcher -1');
  assert.is(await stored(healthy!.id, 'running.watcher'), true);
  // osqueryd hangs; with no watcher nothing restarts it, and OS Config still calls the VM compliant.
  await vmFault(stack, unwatched!.id, { logsStopped: true });
  for (let k = 3; k < 10; k++) await ship(stack, at(5 * k), healthy!.id);

  await auditProject(P, { now: at(50) });
  const h = await getHost(unwatched!.id);
  assert.equal([h?.state, h?.cause], ['silent', 'osqueryd-unwatched']);
  assert.equal([(await getHost(healthy!.id))?.state, (await getHost(healthy!.id))?.cause ?? null], ['reporting', null]);
  const silent = (await drain(alerts)).map((m) => m.data as AlertMessage).filter((m) => m.kind === 'host.silent');
  assert.equal(
    silent.map((m) => [m.host?.name, m.cause]),
    [['unwatched', 'osqueryd-unwatched']],
  );
});

t(
  'a backlog on the heartbeat subscription: one pipeline.backlog, no host alert, hosts held',
  async ({ stack, alerts }) => {
    const vms = await fleet(stack, ['a', 'b', 'c']);
    const base = Math.floor(Date.now() / 1000) * 1000 - 60 * MIN;
    const at = (minutes: number) => new Date(base + minutes * MIN);
    for (let k = 0; k < 3; k++) await ship(stack, at(5 * k), vms[0]!.id);
    await auditProject(P, { now: at(12) });
    // The subscription falls behind: both of its conditions fire, each notification delivered twice.
    for (let i = 0; i < 2; i++) {
      assert.is(await pushIncident(stack, 'age.1', 'open', at(14), 'oldest_unacked_message_age'), 204);
      assert.is(await pushIncident(stack, 'count.1', 'open', at(15), 'num_undelivered_messages'), 204);
    }
    // No line arrives for 35 minutes: missing lines prove nothing while the path is behind.
    await auditProject(P, { now: at(50) });
    for (const vm of vms)
      assert.equal([(await getHost(vm.id))?.state, (await getHost(vm.id))?.cause], ['reporting', 'pipeline-behind']);
    let messages = (await drain(alerts)).map((m) => m.data as AlertMessage);
    assert.equal(
      messages.map((m) => [m.kind, m.status, m.subscription, m.role]),
      [['pipeline.backlog', 'firing', 'osquery-log-heartbeat-push', 'heartbeat']],
    );
    // The lag measured, not only the episode: the incidents' observed values, said in the alert and kept.
    assert.match(messages[0]!.reason ?? '', /: oldest unacked message 20 min$/);
    assert.is(messages[0]!.lag, 'oldest unacked message 20 min');
    assert.equal(
      (await listPipeline()).map((r) => r.lag),
      [
        {
          oldestUnackedSeconds: 1200,
          oldestUnackedAt: at(14),
          undeliveredMessages: 1200,
          undeliveredAt: at(15),
        },
      ],
    );
    // Both incidents close: one resolved message; the path keeps up again.
    for (const id of ['age.1', 'count.1'])
      assert.is(await pushIncident(stack, id, 'closed', at(55), 'oldest_unacked_message_age'), 204);
    messages = (await drain(alerts)).map((m) => m.data as AlertMessage);
    assert.equal(
      messages.map((m) => [m.kind, m.status]),
      [['pipeline.backlog', 'resolved']],
    );
    assert.equal(
      (await listPipeline()).map((r) => [r.subscription, r.openIncidents, r.episode, r.lag]),
      [['osquery-log-heartbeat-push', [], null, null]],
    );
  },
);

t.run();
