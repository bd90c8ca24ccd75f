// `npm start`: the whole orchestrator on this machine. Firestore and Pub/Sub emulators, the simulator
// of Compute Engine / OS Config (with its Eventarc stand-in and agents), every function served by the
// Functions Framework, then a demo fleet; every host's state is printed as it changes. Ctrl-C stops it.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEmulators, MissingPrerequisiteError, type Emulators } from './emulators.js';
import { startSimulator, type Simulator } from './simulator/server.js';
import { quietKnownWarnings } from '../../shared/warnings.js';

quietKnownWarnings();

const { values } = parseArgs({
  options: {
    'no-demo': { type: 'boolean', default: false },
    'simulator-port': { type: 'string', default: process.env.SIMULATOR_PORT ?? '8090' },
    'functions-port': { type: 'string', default: process.env.FUNCTIONS_PORT ?? '8081' },
    'agent-interval-ms': { type: 'string', default: '3000' },
  },
});

const stamp = () => new Date().toISOString().slice(11, 19);
const say = (line: string) => process.stdout.write(`${stamp()}  ${line}\n`);

let emulators: Emulators | undefined;
let sim: Simulator | undefined; // eslint-disable-line prefer-const -- shutdown() may run before it is set
async function shutdown(code = 0): Promise<never> {
  say('stopping');
  await sim?.close().catch(() => undefined);
  await emulators?.stop().catch(() => undefined);
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  emulators = await startEmulators();
} catch (error) {
  console.error(error instanceof MissingPrerequisiteError ? `npm start cannot start: ${error.message}` : error);
  process.exit(2);
}
sim = await startSimulator({ port: Number(values['simulator-port']), agentIntervalMs: Number(values['agent-interval-ms']) });
Object.assign(process.env, {
  FIRESTORE_EMULATOR_HOST: emulators.firestoreHost,
  PUBSUB_EMULATOR_HOST: emulators.pubsubHost,
  GOOGLE_CLOUD_PROJECT: emulators.projectId,
  GOOGLE_API_ENDPOINT: sim.url,
  METADATA_SERVER_DETECTION: 'none',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  TARGET_PROJECTS: process.env.TARGET_PROJECTS ?? 'acme-prod,acme-data',
  CONFIG_BUCKET: process.env.CONFIG_BUCKET ?? 'osquery-config-local',
  OSCONFIG_WRITES_PER_MINUTE: process.env.OSCONFIG_WRITES_PER_MINUTE ?? '600',
});

// Imported only now: configuration is read on first use, after the environment above is set.
const { getTestServer } = await import('@google-cloud/functions-framework/testing');
await import('../../functions/index.js');
const { clients } = await import('../../shared/clients.js');

const functionsPort = Number(values['functions-port']);
const server = getTestServer('vmLifecycle');
await new Promise<void>((resolve) => server.listen(functionsPort, '127.0.0.1', () => resolve()));
const vmLifecycleUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
sim.eventarc.sinkUrl = vmLifecycleUrl;

say(`Firestore emulator  ${emulators.firestoreHost}`);
say(`Pub/Sub emulator    ${emulators.pubsubHost}`);
say(`simulator           ${sim.url}   (control API: ${sim.url}/control)`);
say(`vmLifecycle         ${vmLifecycleUrl}   (receives the simulator's audit-log events)`);

// Every host change, as it lands in Firestore.
const seen = new Map<string, string>();
clients.firestore().collection('hosts').onSnapshot((snapshot) => {
  for (const change of snapshot.docChanges()) {
    const h = change.doc.data();
    const line = `${h.state}${h.reason ? ` (${h.reason})` : ''}`;
    if (seen.get(change.doc.id) === line) continue;
    seen.set(change.doc.id, line);
    say(`host ${String(h.name).padEnd(28)} ${`${h.project}/${h.zone}`.padEnd(30)} -> ${line}`);
  }
}, (error) => say(`hosts listener failed: ${error.message}`));

// OS policy assignments and their rollouts, from the simulator's side.
const rollouts = new Map<string, string>();
setInterval(() => {
  for (const a of sim!.world.assignments.values()) {
    const line = `${a.rolloutState} revision ${a.revisionId}`;
    if (rollouts.get(a.name) === line) continue;
    rollouts.set(a.name, line);
    say(`policy ${a.name}: rollout ${line}`);
  }
}, 1000).unref();

// The configuration bundle in shared/osquery/bundle, published as `osq-orch publish` would (linted
// too when OSQUERY_SCHEMA names a schema file: there is no network for the default URL here).
{
  const { publish } = await import('../../shared/usecases/publish.js');
  const { loadSchema } = await import('../../shared/osquery/schema.js');
  const report = await publish({ schema: process.env.OSQUERY_SCHEMA ? await loadSchema(process.env.OSQUERY_SCHEMA) : undefined });
  say(`configuration ${report.configVersion} published: ${report.uploaded} file(s) to gs://${process.env.CONFIG_BUCKET}, now current`);
}

if (!values['no-demo']) {
  const fleet = JSON.parse(readFileSync(path.join(import.meta.dirname, 'demo-fleet.json'), 'utf8')) as { projects: unknown[]; vms: Array<{ name: string }> };
  const control = async (method: string, p: string, body: unknown) => {
    const res = await fetch(`${sim!.url}/control${p}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
  };
  for (const project of fleet.projects) await control('POST', '/projects', project);
  say(`creating the demo fleet: ${fleet.vms.length} VMs in 3 zones`);
  for (const vm of fleet.vms) {
    await control('POST', '/vms', vm);
    await new Promise((r) => setTimeout(r, 300));
  }
}

say('running. Add a VM:');
say(`  curl -s -XPOST ${sim.url}/control/vms -H 'content-type: application/json' -d '{"project":"acme-prod","zone":"us-central1-a","name":"web-3","os":"debian-12"}'`);
say('Delete it:');
say(`  curl -s -XDELETE ${sim.url}/control/vms/acme-prod/us-central1-a/web-3`);
say('Ctrl-C stops everything.');
