// A bad setting never loses events: the functions refuse to start with it (one error naming every bad
// variable), Pub/Sub keeps redelivering meanwhile, and the events are handled once it is fixed. A
// configuration error met while handling an event answers 5xx, never an acknowledgement.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../infra/local/emulators.js';
import { clearFirestore, newHeartbeatInstances, startStack, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { getHost } from '../shared/adapters/hosts.js';
import { clients } from '../shared/clients.js';
import { ConfigError, config, resetConfig } from '../shared/config.js';
import { asHandlerError, PermanentError } from '../shared/errors.js';
import { pubsubHandler } from '../functions/pubsub-handler.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BAD = { HEARTBEAT_WRITE_WINDOW_SECONDS: 'soon', OSCONFIG_READS_PER_MINUTE: '0' };
const t = suite<{ stack: Stack }>('a bad setting loses no event');
t.before(async (ctx) => {
  await clearFirestore();
  ctx.stack = await startStack({ TARGET_PROJECTS: 'cfg', OSCONFIG_WRITES_PER_MINUTE: '6000' });
});
t.after(async (ctx) => ctx.stack.close());

/** logHeartbeat served by the Functions Framework's own CLI from functions/index.ts, as Cloud Functions runs it. */
function serveLogHeartbeat(port: number, env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'node_modules/@google-cloud/functions-framework/build/src/main.js'),
      '--target=logHeartbeat',
      '--signature-type=cloudevent',
      `--source=${path.join(ROOT, 'functions/index.ts')}`,
      `--port=${port}`,
    ],
    { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c));
  child.stderr!.on('data', (c: Buffer) => (output += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

/** Resolves with the exit code, or null if the process is still running after `ms`. */
const exitWithin = (served: { exited: Promise<number | null> }, ms: number) =>
  Promise.race([served.exited, new Promise<null>((r) => setTimeout(() => r(null), ms))]);

async function stop(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

async function waitFor<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!ok(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    value = await read();
  }
  return value;
}

t(
  'logHeartbeat with two bad settings does not start; the event waits and is handled once they are fixed',
  async ({ stack }) => {
    const vm = await createVm(stack, { project: 'cfg', zone: 'cfg-a', name: 'web-1', os: 'debian-12' });
    assert.ok(await getHost(vm.id), 'the host is enrolled');
    const port = await freePort();
    const project = process.env.GOOGLE_CLOUD_PROJECT!;
    const pubsub = await clients.pubsub();
    const [topic] = await pubsub.createTopic('bad-setting-logs');
    await topic.createSubscription('bad-setting-logs-push', {
      pushConfig: { pushEndpoint: `http://127.0.0.1:${port}/projects/${project}/topics/bad-setting-logs` },
      ackDeadlineSeconds: 10,
    });

    const bad = serveLogHeartbeat(port, BAD);
    const code = await exitWithin(bad, 30_000);
    await stop(bad.child);
    assert.ok(code !== null && code !== 0, `the function must refuse to start (exit ${code}):\n${bad.output()}`);
    for (const name of Object.keys(BAD)) assert.match(bad.output(), name, `the error names ${name}`);

    // Published while the function cannot start: Pub/Sub keeps it and retries the push.
    const unixTime = Math.floor(Date.now() / 1000) - 30;
    await topic.publishMessage({
      json: { name: 'heartbeat', unixTime, action: 'snapshot', snapshot: [] },
      attributes: { gce_instance_id: vm.id, gce_project_id: 'cfg', gce_zone: 'cfg-a', log_type: 'snapshot' },
    });
    await new Promise((r) => setTimeout(r, 3_000));
    assert.is((await getHost(vm.id))?.lastLogAt ?? null, null, 'nothing handled it yet');

    const fixed = serveLogHeartbeat(port, {});
    try {
      const host = await waitFor(
        () => getHost(vm.id),
        (h) => h?.lastLogAt?.getTime() === unixTime * 1000,
        60_000,
      );
      assert.is(
        host?.lastLogAt?.getTime(),
        unixTime * 1000,
        `the event was delivered after the fix:\n${fixed.output()}`,
      );
    } finally {
      await stop(fixed.child);
    }
  },
);

t(
  'a setting that turns bad while running: every event answers 500 (redelivered), none is acknowledged',
  async ({ stack }) => {
    const vm = await createVm(stack, { project: 'cfg', zone: 'cfg-a', name: 'web-2', os: 'debian-12' });
    const url =
      `${stack.functions.urls.logHeartbeat}projects/${process.env.GOOGLE_CLOUD_PROJECT}` +
      `/topics/${config().LOG_TOPIC}`;
    const push = async () => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          message: {
            data: Buffer.from(JSON.stringify({ name: 'heartbeat', unixTime: Math.floor(Date.now() / 1000) })).toString(
              'base64',
            ),
            attributes: { gce_instance_id: vm.id, gce_project_id: 'cfg', gce_zone: 'cfg-a' },
            messageId: `m${Math.random()}`,
          },
          subscription: 'projects/p/subscriptions/s',
        }),
      });
      await res.arrayBuffer();
      return res.status;
    };
    const saved = { ...process.env };
    Object.assign(process.env, BAD);
    resetConfig();
    await newHeartbeatInstances();
    try {
      assert.is(await push(), 500);
      assert.is((await getHost(vm.id))?.lastLogAt ?? null, null);
    } finally {
      for (const key of Object.keys(BAD))
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      resetConfig();
    }
    assert.is(await push(), 204, 'handled once the setting is fixed');
    assert.ok((await getHost(vm.id))?.lastLogAt);
  },
);

t('a ConfigError is never classified permanent (the trigger redelivers)', async () => {
  const error = new ConfigError('invalid configuration: X: bad');
  assert.not.instance(asHandlerError(error), PermanentError);
  const handler = pubsubHandler('test', null, async () => {
    throw error;
  });
  const event = { id: 'e1', data: { message: { data: '' } } } as Parameters<typeof handler>[0];
  try {
    await handler(event);
    assert.unreachable('the handler acknowledged a configuration error');
  } catch (thrown) {
    assert.is(thrown, error);
  }
});

t.run();
