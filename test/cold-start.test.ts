// Cold start: Cloud Functions loads functions/index.ts whole for every function, so it loads no client
// library; each function loads what it uses on its first event, and Compute and OS Config one client
// module at a time, never their packages' indexes. Checked by the files a fresh process resolves; the
// time and memory figures come from `npm run bench -- --only coldstart`, never from a test.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startSimulator, type Simulator } from '../infra/local/simulator/server.js';
import { buildAuditLogEvent } from '../infra/local/simulator/eventarc.js';
import { requireEmulators } from './helpers/stack.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const t = suite<{ sim: Simulator }>('cold start: what each function loads');
t.before(async (ctx) => {
  requireEmulators();
  ctx.sim = await startSimulator();
});
t.after(async (ctx) => ctx.sim.close());

/** Files under node_modules a fresh process resolved, importing functions/index.ts and delivering `event`. */
function loadedBy(sim: Simulator, target?: string, event?: unknown): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', path.join(ROOT, 'test/helpers/loaded-modules.ts')];
    if (target) args.push(target, JSON.stringify(event));
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, GOOGLE_API_ENDPOINT: sim.url, LOG_LEVEL: 'silent' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{"resolved"'));
      if (code !== 0 || !line) reject(new Error(`exit ${code}: ${stdout}${stderr}`));
      else resolve((JSON.parse(line) as { resolved: string[] }).resolved);
    });
  });
}

const packagesOf = (files: string[]) =>
  new Set(files.map((f) => f.split('/').slice(0, 2).join('/')).filter((p) => p.startsWith('@google-cloud/')));
const CLIENT_LIBRARIES = [
  '@google-cloud/compute',
  '@google-cloud/os-config',
  '@google-cloud/storage',
  '@google-cloud/pubsub',
  '@google-cloud/firestore',
];

t('importing functions/index.ts loads no client library, only the Functions Framework', async ({ sim }) => {
  const packages = packagesOf(await loadedBy(sim));
  assert.ok(packages.has('@google-cloud/functions-framework'), [...packages].join(' '));
  for (const library of CLIENT_LIBRARIES) assert.not.ok(packages.has(library), `${library} loaded at import`);
});

t("logHeartbeat's first event loads Firestore, and neither Compute, OS Config nor Storage", async ({ sim }) => {
  const event = {
    specversion: '1.0',
    id: 'cold-start-1',
    type: 'google.cloud.pubsub.topic.v1.messagePublished',
    source: '//pubsub.googleapis.com/projects/p/topics/osquery-logs',
    data: {
      message: {
        data: Buffer.from(JSON.stringify({ name: 'heartbeat', unixTime: Math.floor(Date.now() / 1000) })).toString(
          'base64',
        ),
        attributes: { gce_instance_id: '4242424242', gce_project_id: 'p', gce_zone: 'z', log_type: 'snapshot' },
        messageId: 'cold-start-1',
      },
    },
  };
  const packages = packagesOf(await loadedBy(sim, 'logHeartbeat', event));
  assert.ok(packages.has('@google-cloud/firestore'), 'the event was handled (it reads the host)');
  for (const library of ['@google-cloud/compute', '@google-cloud/os-config', '@google-cloud/storage'])
    assert.not.ok(packages.has(library), `${library} loaded by logHeartbeat`);
});

t(
  "logHeartbeatDrain's first tick loads Pub/Sub and Firestore, and neither Compute, OS Config nor Storage",
  async ({ sim }) => {
    const { PubSub } = await import('@google-cloud/pubsub');
    const pubsub = new PubSub({ projectId: process.env.GOOGLE_CLOUD_PROJECT });
    const [topic] = await pubsub.createTopic('cold-drain-logs');
    await topic.createSubscription('cold-drain');
    await topic.publishMessage({
      json: { name: 'heartbeat', unixTime: Math.floor(Date.now() / 1000) },
      attributes: { gce_instance_id: '4242424242', gce_project_id: 'p', gce_zone: 'z', log_type: 'snapshot' },
    });
    await pubsub.close();
    const tick = {
      specversion: '1.0',
      id: 'cold-start-drain-1',
      type: 'google.cloud.pubsub.topic.v1.messagePublished',
      source: '//pubsub.googleapis.com/projects/p/topics/osquery-log-drain-tick',
      data: { message: { data: Buffer.from('{}').toString('base64'), messageId: 'cold-start-drain-1' } },
    };
    process.env.LOG_HEARTBEAT_SUBSCRIPTION = 'cold-drain';
    try {
      const packages = packagesOf(await loadedBy(sim, 'logHeartbeatDrain', tick));
      assert.ok(packages.has('@google-cloud/pubsub'), 'it pulled');
      assert.ok(packages.has('@google-cloud/firestore'), 'Firestore (the pulled line is recorded)');
      for (const library of ['@google-cloud/compute', '@google-cloud/os-config', '@google-cloud/storage'])
        assert.not.ok(packages.has(library), `${library} loaded by logHeartbeatDrain`);
    } finally {
      delete process.env.LOG_HEARTBEAT_SUBSCRIPTION;
    }
  },
);

t(
  "vmLifecycle loads Compute's and OS Config's clients one module each, never the packages' indexes",
  async ({ sim }) => {
    sim.world.setProjectMetadata('cold', { 'enable-osconfig': 'TRUE' });
    const vm = sim.world.addVm({ project: 'cold', zone: 'cold-a', name: 'web-1', os: 'debian-12' });
    const resourceName = `projects/cold/zones/cold-a/instances/web-1`;
    const { headers, body } = buildAuditLogEvent(
      {
        project: 'cold',
        zone: 'cold-a',
        resourceName,
        method: 'v1.compute.instances.insert',
        instanceId: vm.id,
        targetId: vm.id,
      },
      'operation-cold-1',
      'last',
    );
    const event = {
      specversion: '1.0',
      id: headers['ce-id'],
      type: headers['ce-type'],
      source: headers['ce-source'],
      data: JSON.parse(body),
    };
    const files = await loadedBy(sim, 'vmLifecycle', event);
    assert.ok(sim.world.requests.get('compute.instances.get'), 'vmLifecycle read the VM from Compute');
    assert.ok(
      files.includes('@google-cloud/compute/build/src/v1/instances_client.js'),
      'the instances client was loaded',
    );
    assert.ok(files.some((f) => f.startsWith('@google-cloud/os-config/build/src/v1/os_config_zonal_service_client')));
    for (const index of [
      '@google-cloud/compute/build/src/index.js',
      '@google-cloud/compute/build/protos/protos.js',
      '@google-cloud/os-config/build/src/index.js',
    ])
      assert.not.ok(files.includes(index), `${index} was loaded`);
  },
);

t.run();
