// `npm start`: the whole orchestrator on this machine. Firestore and Pub/Sub emulators, the simulator
// of Compute Engine / OS Config (with its Eventarc stand-in and agents), every function served by the
// Functions Framework, then a demo fleet; every host's state is printed as it changes. Ctrl-C stops it.
import { readFileSync } from 'node:fs';
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
    'audit-every': { type: 'string', default: process.env.AUDIT_EVERY_SECONDS ?? '20' },
  },
});

const stamp = () => new Date().toISOString().slice(11, 19);
const say = (line: string) => process.stdout.write(`${stamp()}  ${line}\n`);

let emulators: Emulators | undefined;
let sim: Simulator | undefined; // eslint-disable-line prefer-const -- shutdown() may run before it is set
async function shutdown(code = 0): Promise<never> {
  say('stopping');
  setTimeout(() => process.exit(code), 10_000).unref();
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
  // Short local clocks, so a person sees grace periods end within a minute or two.
  GRACE_PERIOD_MINUTES: process.env.GRACE_PERIOD_MINUTES ?? '1',
  SILENCE_THRESHOLD_MINUTES: process.env.SILENCE_THRESHOLD_MINUTES ?? '2',
});

// Imported only now: configuration is read on first use, after the environment above is set.
const { serveFunctions, wirePushSubscriptions } = await import('./functions.js');
const { clients } = await import('../../shared/clients.js');
const { config } = await import('../../shared/config.js');

const functions = await serveFunctions(Number(values['functions-port']));
sim.eventarc.sinkUrl = functions.urls.vmLifecycle;
await wirePushSubscriptions([
  { topic: config().AUDIT_TICK_TOPIC, functionUrl: functions.urls.fleetAudit },
  { topic: config().AUDIT_SHARD_TOPIC, functionUrl: functions.urls.fleetAuditShard },
]);

say(`Firestore emulator  ${emulators.firestoreHost}`);
say(`Pub/Sub emulator    ${emulators.pubsubHost}`);
say(`simulator           ${sim.url}   (control API: ${sim.url}/control)`);
for (const [name, url] of Object.entries(functions.urls)) say(`${name.padEnd(19)} ${url}`);
say(`Cloud Scheduler     every ${values['audit-every']} s a tick on ${config().AUDIT_TICK_TOPIC} -> fleetAudit -> fleetAuditShard per project`);

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

// Audit runs, as they close.
const reported = new Set<string>();
clients.firestore().collection('audits').onSnapshot((snapshot) => {
  for (const change of snapshot.docChanges()) {
    const run = change.doc.data();
    if (run.status === 'running' || reported.has(change.doc.id)) continue;
    reported.add(change.doc.id);
    const counts = Object.entries(run.counts ?? {}).map(([state, n]) => `${state} ${n}`).join(', ');
    const coverage = run.coverage === null ? 'n/a' : `${(run.coverage * 100).toFixed(0)}%`;
    say(`audit ${change.doc.id} ${run.status}: ${counts}; coverage ${coverage}; ${run.apiCalls} API calls, ${run.hostWrites} host writes`);
  }
}, (error) => say(`audits listener failed: ${error.message}`));

// Cloud Scheduler stand-in: the audit tick.
setInterval(() => {
  void clients.pubsub().topic(config().AUDIT_TICK_TOPIC).publishMessage({ json: { source: 'local-scheduler' } }).catch((error: Error) => say(`tick failed: ${error.message}`));
}, Number(values['audit-every']) * 1000).unref();

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
say('Make a host fail its policy, lose its agent, or stop (then watch the next audits):');
say(`  curl -s -XPATCH ${sim.url}/control/vms/INSTANCE_ID -H 'content-type: application/json' -d '{"policyFailure":"install-osquery"}'`);
say('Ctrl-C stops everything.');
