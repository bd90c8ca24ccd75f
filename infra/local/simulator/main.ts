// `npm run simulator -- [--port N] [--event-sink URL] [--eventarc-project P] [--audit-log-topic T]
// [--agent-interval-ms N] [--log-topic T] [--log-interval-ms N]`: the simulator on its own.
import { parseArgs } from 'node:util';
import { startSimulator } from './server.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8090' },
    'event-sink': { type: 'string' },
    'eventarc-project': { type: 'string' },
    'audit-log-topic': { type: 'string' },
    'agent-interval-ms': { type: 'string', default: '2000' },
    'log-topic': { type: 'string' },
    'log-interval-ms': { type: 'string', default: '0' },
  },
});
// --log-topic and --audit-log-topic need PUBSUB_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT (the emulator's project).
const inEmulator = (topic: string | undefined) =>
  topic ? { projectId: process.env.GOOGLE_CLOUD_PROJECT ?? 'osquery-orchestrator-local', topic } : undefined;
const logTopic = inEmulator(values['log-topic']);
const sim = await startSimulator({
  port: Number(values.port),
  eventSinkUrl: values['event-sink'],
  eventarcProject: values['eventarc-project'],
  auditLogTopic: inEmulator(values['audit-log-topic']),
  agentIntervalMs: Number(values['agent-interval-ms']),
  logTopic,
  logIntervalMs: Number(values['log-interval-ms']),
});
console.log(`simulator listening on ${sim.url} (control API: ${sim.url}/control)`);
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
