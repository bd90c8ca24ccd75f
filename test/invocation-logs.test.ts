// Logs you can follow: every line of one invocation (the handler's, and the use case's and adapters'
// below it) carries the function, the event id, Cloud Logging's trace fields from the delivery's trace
// header and, where the handler knows it, the VM's instance id. Through the Functions Framework, as
// Eventarc and Pub/Sub deliver.
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import {
  type LogLine,
  type Stack,
  captureLogs,
  enableOsConfig,
  newHeartbeatInstances,
  stackSuite,
} from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { buildAuditLogEvent } from '../infra/local/simulator/eventarc.js';
import { ConfigError, config } from '../shared/config.js';
import { PermanentError, TransientError } from '../shared/errors.js';
import { httpStatusOf, runUseCase } from '../functions/invocation.js';
import { traceFields } from '../shared/log.js';

const P = 'traced';
const Z = 'us-east1-b';
const TRACE = 'logging.googleapis.com/trace';
const SPAN = 'logging.googleapis.com/spanId';
const t = stackSuite('logs you can follow', {}, async (stack) => {
  await enableOsConfig(stack, P);
  await newHeartbeatInstances();
});

const newTrace = () => ({ traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') });
const traceparent = (trace: { traceId: string; spanId: string }) => `00-${trace.traceId}-${trace.spanId}-01`;
const traceName = (traceId: string) => `projects/${process.env.GOOGLE_CLOUD_PROJECT}/traces/${traceId}`;

/** A Pub/Sub push to logHeartbeat with a trace header, as Pub/Sub delivers it through Cloud Run. */
async function pushLog(stack: Stack, messageId: string, attributes: Record<string, string>, header: string) {
  const line = JSON.stringify({ name: 'heartbeat', unixTime: Math.floor(Date.now() / 1000), action: 'snapshot' });
  const topic = `projects/${process.env.GOOGLE_CLOUD_PROJECT}/topics/${config().LOG_TOPIC}`;
  const res = await fetch(`${stack.functions.urls.logHeartbeat}${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: header },
    body: JSON.stringify({
      message: {
        data: Buffer.from(line).toString('base64'),
        attributes,
        messageId,
        publishTime: new Date().toISOString(),
      },
      subscription: `projects/${process.env.GOOGLE_CLOUD_PROJECT}/subscriptions/test`,
    }),
  });
  await res.arrayBuffer();
  return res.status;
}

function assertEveryLine(logs: LogLine[], expected: Record<string, unknown>) {
  assert.ok(logs.length > 0, 'lines were logged');
  for (const line of logs)
    for (const [key, value] of Object.entries(expected))
      assert.is(line[key], value, `${key} on "${line.message}": ${JSON.stringify(line)}`);
}

t('one vmLifecycle event: every line carries its event id, function, trace and VM', async ({ stack }) => {
  await stack.control('POST', '/faults', { eventSinkUp: false });
  const vm = await stack.control<{ id: string }>('POST', '/vms', {
    project: P,
    zone: Z,
    name: 'web-1',
    os: 'debian-12',
  });
  const trace = newTrace();
  const event = buildAuditLogEvent(
    {
      project: P,
      zone: Z,
      method: 'v1.compute.instances.insert',
      resourceName: `projects/${P}/zones/${Z}/instances/web-1`,
      instanceId: vm.id,
    },
    'op-traced-1',
    'last',
  );
  const { result, logs } = await captureLogs(async () => {
    const res = await fetch(stack.vmLifecycleUrl, {
      method: 'POST',
      headers: { ...event.headers, traceparent: traceparent(trace) },
      body: event.body,
    });
    await res.arrayBuffer();
    return res.status;
  });
  assert.is(result, 204);
  assertEveryLine(logs, {
    function: 'vmLifecycle',
    eventId: event.headers['ce-id'],
    [TRACE]: traceName(trace.traceId),
    [SPAN]: trace.spanId,
    instanceId: vm.id,
  });
  // A line the use case logged (first VM of the zone), not only the handler's own.
  assert.ok(
    logs.some((l) => l.message === 'created osquery OS policy assignment'),
    JSON.stringify(logs),
  );
  const done = logs.find((l) => l.message === 'vmLifecycle: done');
  assert.is(done?.severity, 'INFO');
  assert.is(done?.action, 'enroll');
  assert.is(done?.zone, undefined, "an earlier line's own fields do not stick to the invocation");
});

t('one logHeartbeat message: every line carries its context; the per-message done line is debug', async ({ stack }) => {
  const vm = await createVm(stack, { project: P, zone: Z, name: 'web-2', os: 'debian-12' });
  const trace = newTrace();
  const attributes = { gce_instance_id: vm.id, gce_project_id: P, gce_zone: Z };
  const { result, logs } = await captureLogs(() => pushLog(stack, 'traced-message-1', attributes, traceparent(trace)));
  assert.is(result, 204);
  assertEveryLine(logs, {
    function: 'logHeartbeat',
    eventId: 'traced-message-1',
    [TRACE]: traceName(trace.traceId),
    instanceId: vm.id,
  });
  const done = logs.find((l) => l.message === 'logHeartbeat: done');
  assert.is(done?.severity, 'DEBUG');
  assert.equal(
    logs.filter((l) => l.severity === 'INFO'),
    [],
    'no INFO line per message',
  );
});

t('concurrent invocations keep their own context, down to the use case', async ({ stack }) => {
  // Unknown hosts: the use case itself logs a warning, inside each invocation.
  const deliveries = Array.from({ length: 6 }, (_, i) => ({
    messageId: `concurrent-${i}`,
    instanceId: String(9_000_000_000 + i),
    trace: newTrace(),
  }));
  const { result, logs } = await captureLogs(() =>
    Promise.all(
      deliveries.map((d) =>
        pushLog(
          stack,
          d.messageId,
          { gce_instance_id: d.instanceId, gce_project_id: P, gce_zone: Z },
          traceparent(d.trace),
        ),
      ),
    ),
  );
  assert.equal(result, [204, 204, 204, 204, 204, 204]);
  for (const d of deliveries) {
    const own = logs.filter((l) => l.eventId === d.messageId);
    assert.ok(
      own.some((l) => /unknown host/.test(l.message)),
      `the use case's line for ${d.messageId}`,
    );
    assertEveryLine(own, { function: 'logHeartbeat', [TRACE]: traceName(d.trace.traceId), instanceId: d.instanceId });
  }
});

t('fleetStatus (HTTP): its lines carry the trace, here from X-Cloud-Trace-Context', async ({ stack }) => {
  const traceId = randomBytes(16).toString('hex');
  const { result, logs } = await captureLogs(async () => {
    const res = await fetch(new URL('api/status', stack.functions.urls.fleetStatus), {
      headers: { 'X-Cloud-Trace-Context': `${traceId}/255;o=1` },
    });
    await res.arrayBuffer();
    return res.status;
  });
  assert.is(result, 200);
  assertEveryLine(logs, {
    function: 'fleetStatus',
    [TRACE]: traceName(traceId),
    [SPAN]: '00000000000000ff',
    'logging.googleapis.com/trace_sampled': true,
  });
});

t('trace headers: W3C first, Cloud Trace second, nothing without a project or a valid id', () => {
  const id = '4bf92f3577b34da6a3ce929d0e0e4736';
  assert.equal(
    traceFields('p', { traceparent: `00-${id}-00f067aa0ba902b7-00`, cloudTraceContext: `${'1'.repeat(32)}/1` }),
    {
      [TRACE]: `projects/p/traces/${id}`,
      [SPAN]: '00f067aa0ba902b7',
      'logging.googleapis.com/trace_sampled': false,
    },
  );
  assert.equal(traceFields('p', { cloudTraceContext: id.toUpperCase() }), { [TRACE]: `projects/p/traces/${id}` });
  for (const traceparent of [
    `ff-${id}-00f067aa0ba902b7-01`,
    `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
    `00-${id}-${'0'.repeat(16)}-01`,
    `00-${id.slice(1)}-00f067aa0ba902b7-01`,
    'garbage',
  ])
    assert.equal(traceFields('p', { traceparent }), {}, traceparent);
  assert.equal(traceFields(undefined, { traceparent: `00-${id}-00f067aa0ba902b7-01` }), {});
});

t('one error mapping: done, permanent (acknowledged), configuration and transient (rethrown), one shape', async () => {
  const unavailable = Object.assign(new Error('backend unavailable'), { code: 14 });
  const ends: Array<[string, () => Promise<unknown>]> = [
    ['done', async () => 'recorded'],
    ['permanent', async () => Promise.reject(new PermanentError('no such project'))],
    ['configuration', async () => Promise.reject(new ConfigError('invalid configuration: X: bad'))],
    ['transient', async () => Promise.reject(unavailable)],
  ];
  const { result, logs } = await captureLogs(async () => {
    const thrown: unknown[] = [];
    for (const [, run] of ends) thrown.push(await runUseCase('f', run, { fields: { action: 'a' } }).catch((e) => e));
    return thrown;
  });
  assert.equal(
    result.map((e) => (e === undefined ? 'acknowledged' : (e as Error).name)),
    ['acknowledged', 'acknowledged', 'ConfigError', 'TransientError'],
  );
  assert.equal(
    logs.map((l) => [l.severity, l.message, l.action, l.outcome ?? l.reason]),
    [
      ['INFO', 'f: done', 'a', 'recorded'],
      ['ERROR', 'f: permanent failure, acknowledged', 'a', 'no such project'],
      ['ERROR', 'f: bad configuration, will be redelivered', 'a', 'invalid configuration: X: bad'],
      ['WARNING', 'f: transient failure, will be redelivered', 'a', 'backend unavailable'],
    ],
  );
  // HTTP, in the same spirit: transient -> 503, the rest -> 500. An error of unknown cause (a plain Error) is
  // not known to be permanent: retried like a transient one (issue 20; it was 500).
  assert.equal(
    [unavailable, new TransientError('x'), new ConfigError('x'), new PermanentError('x'), new Error('x')].map(
      (e) => httpStatusOf(e).status,
    ),
    [503, 503, 500, 500, 503],
  );
});

t.run();
