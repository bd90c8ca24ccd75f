// `npm run simulator -- [--port N] [--event-sink URL] [--agent-interval-ms N]`: the simulator on its own.
import { parseArgs } from 'node:util';
import { startSimulator } from './server.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8090' }, 'event-sink': { type: 'string' }, 'agent-interval-ms': { type: 'string', default: '2000' } } });
const sim = await startSimulator({ port: Number(values.port), eventSinkUrl: values['event-sink'], agentIntervalMs: Number(values['agent-interval-ms']) });
console.log(`simulator listening on ${sim.url} (control API: ${sim.url}/control)`);
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
