// A request that carries no event of a function's kind is answered 4xx with the reason, logged with the
// function's name, and reaches no use case; the events Google delivers still answer 2xx, a transient
// failure 5xx. Every event entry point, through the Functions Framework, as Eventarc and Pub/Sub deliver.
import * as assert from 'uvu/assert';
import { type LogLine, type Stack, captureLogs, enableOsConfig, stackSuite } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { buildAuditLogEvent } from '../infra/local/simulator/eventarc.js';

const P = 'p1';
const Z = 'us-central1-a';
const t = stackSuite('requests that carry no event', {}, (stack) => enableOsConfig(stack, P));

const EVENT_FUNCTIONS = [
  'vmLifecycle',
  'fleetAudit',
  'fleetAuditShard',
  'logHeartbeat',
  'logHeartbeatDrain',
  'monitoringAlert',
] as const;
type EventFunction = (typeof EVENT_FUNCTIONS)[number];
const MESSAGE_PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';
const JSON_TYPE = { 'content-type': 'application/json' };

interface Shape {
  label: string;
  method?: string;
  headers: Record<string, string>;
  body?: string;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
const message = () => ({
  data: b64({ source: 'test' }),
  messageId: `m-${Math.random()}`,
  publishTime: new Date().toISOString(),
});
const ceHeaders = (type: string, without?: string) => {
  const headers: Record<string, string> = {
    'ce-specversion': '1.0',
    'ce-type': type,
    'ce-source': `//pubsub.googleapis.com/projects/${P}/topics/t`,
    'ce-id': `ce-${Math.random()}`,
  };
  if (without) delete headers[without];
  return headers;
};
const json = (label: string, body: unknown, headers: Record<string, string> = JSON_TYPE): Shape => ({
  label,
  headers,
  body: JSON.stringify(body),
});
const lastInsert = () =>
  buildAuditLogEvent(
    {
      project: P,
      zone: Z,
      method: 'v1.compute.instances.insert',
      resourceName: `projects/${P}/zones/${Z}/instances/web-1`,
    },
    `op-${Math.random()}`,
    'last',
  );

/** Bodies that are no event of any entry point's kind. */
function badShapes(): Shape[] {
  const audit = lastInsert();
  const push = { message: message(), subscription: `projects/${P}/subscriptions/s` };
  const legacyContext = {
    eventId: 'e-1',
    timestamp: new Date().toISOString(),
    eventType: 'google.pubsub.topic.publish',
    resource: { service: 'pubsub.googleapis.com', name: `projects/${P}/topics/t` },
  };
  return [
    json('legacy event {context, data}', { context: legacyContext, data: { data: b64({}) } }),
    json('legacy event {context, data: null}', { context: legacyContext, data: null }),
    json('legacy event {context, data: "text"}', { context: legacyContext, data: 'text' }),
    json('legacy event {eventId, timestamp, eventType, resource, data}', { ...legacyContext, data: { data: b64({}) } }),
    json('legacy Firestore event with a resource it cannot split', {
      eventId: 'e-2',
      timestamp: new Date().toISOString(),
      eventType: 'providers/cloud.firestore/eventTypes/document.write',
      resource: 'nowhere',
      data: {},
    }),
    json(
      'structured mode without id',
      { specversion: '1.0', type: MESSAGE_PUBLISHED, source: '//s', data: push },
      { 'content-type': 'application/cloudevents+json' },
    ),
    json(
      'structured mode without type',
      { specversion: '1.0', id: 'x', source: '//s', data: push },
      { 'content-type': 'application/cloudevents+json' },
    ),
    json('structured mode of a type no entry point takes', {
      specversion: '1.0',
      id: 'x',
      type: 'google.cloud.storage.object.v1.finalized',
      source: '//s',
      data: push,
    }),
    json('structured mode with specversion 0.3', {
      specversion: '0.3',
      id: 'x',
      type: MESSAGE_PUBLISHED,
      source: '//s',
    }),
    json('binary mode without ce-id', push, { ...JSON_TYPE, ...ceHeaders(MESSAGE_PUBLISHED, 'ce-id') }),
    json('binary mode without ce-type', push, { ...JSON_TYPE, ...ceHeaders(MESSAGE_PUBLISHED, 'ce-type') }),
    { label: 'binary mode, text/plain', headers: { ...audit.headers, 'content-type': 'text/plain' }, body: audit.body },
    {
      label: 'binary mode, form-encoded',
      headers: { ...audit.headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: `protoPayload[methodName]=v1.compute.instances.insert&operation[last]=true`,
    },
    { label: 'text/plain', headers: { 'content-type': 'text/plain' }, body: 'hello' },
    {
      label: 'form-encoded push',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `message[data]=${encodeURIComponent(b64({}))}&message[messageId]=m1&subscription=s`,
    },
    { label: 'empty body, no content type', headers: {} },
    { label: 'empty body, application/json', headers: JSON_TYPE, body: '' },
    { label: 'invalid JSON', headers: JSON_TYPE, body: '{"message": nope' },
    { label: 'a JSON array', headers: JSON_TYPE, body: '[{"message": {}}]' },
    { label: 'bytes without CloudEvent headers', headers: { 'content-type': 'application/octet-stream' }, body: '{}' },
    json('an audit-log entry without CloudEvent headers', JSON.parse(audit.body)),
    json('Pub/Sub push without message', { subscription: `projects/${P}/subscriptions/s` }),
    json('Pub/Sub push whose message is a string', { message: 'hello', subscription: 's' }),
    json('Pub/Sub push without messageId', { message: { data: b64({}) }, subscription: 's' }),
    json('Pub/Sub push with data that is not base64', { message: { ...message(), data: '%% not base64 %%' } }),
    json('Pub/Sub push with attributes that are not a map', { message: { ...message(), attributes: [1, 2] } }),
    json(
      'binary-mode messagePublished without message',
      { subscription: 's' },
      { ...JSON_TYPE, ...ceHeaders(MESSAGE_PUBLISHED) },
    ),
    { label: 'GET', method: 'GET', headers: {} },
  ];
}

const urlOf = (stack: Stack, fn: EventFunction) => `${stack.functions.urls[fn]}projects/${P}/topics/t`;

async function send(stack: Stack, fn: EventFunction, shape: Shape) {
  const res = await fetch(urlOf(stack, fn), {
    method: shape.method ?? 'POST',
    headers: shape.headers,
    body: shape.body,
  });
  return { status: res.status, text: await res.text() };
}

/** Lines that only a handler or a use case writes: anything but the wrapper's refusal. */
const reachedFunction = (logs: LogLine[]) =>
  logs.filter((l) => !/refused a request that carries no event/.test(l.message));

t('every entry point answers 4xx to every request that is no event of its kind; nothing runs', async ({ stack }) => {
  const wrong: string[] = [];
  for (const fn of EVENT_FUNCTIONS) {
    // An audit-log event is an event, but not one a Pub/Sub function takes.
    const shapes = fn === 'vmLifecycle' ? badShapes() : [...badShapes(), { label: 'audit-log event', ...lastInsert() }];
    for (const shape of shapes) {
      const { result, logs } = await captureLogs(() => send(stack, fn, shape));
      const refusals = logs.filter((l) => /refused a request that carries no event/.test(l.message));
      const expected = shape.method === 'GET' ? 405 : 400;
      if (result.status !== expected)
        wrong.push(`${fn} / ${shape.label}: ${result.status} ${result.text.slice(0, 120)}`);
      else if (reachedFunction(logs).length > 0)
        wrong.push(`${fn} / ${shape.label}: reached the function: ${JSON.stringify(reachedFunction(logs))}`);
      else if (shape.label !== 'invalid JSON') {
        // The body parser answers invalid JSON before any code of
        // ours runs (see docs/architecture.md); the rest is ours.
        const line = refusals[0];
        if (
          refusals.length !== 1 ||
          line?.function !== fn ||
          line.severity !== 'WARNING' ||
          line.reason !== result.text
        )
          wrong.push(`${fn} / ${shape.label}: refusal not logged once with the reason: ${JSON.stringify(logs)}`);
        if (!result.text || result.text.includes('\n')) wrong.push(`${fn} / ${shape.label}: no one-line reason`);
      }
    }
  }
  assert.equal(wrong, []);
});

/** The shapes Google delivers, for each function, with a message or entry that function handles. */
function validShapes(fn: EventFunction): Shape[] {
  if (fn === 'vmLifecycle') {
    const audit = lastInsert();
    const entry = JSON.parse(audit.body);
    const sinkPush = { message: { ...message(), data: b64(entry) }, subscription: `projects/${P}/subscriptions/s` };
    return [
      { label: 'Eventarc binary mode', ...audit },
      json(
        'structured mode',
        { specversion: '1.0', id: 'a-1', type: audit.headers['ce-type'], source: '//s', data: entry },
        { 'content-type': 'application/cloudevents+json' },
      ),
      json('log sink push', sinkPush),
      json('log sink push, binary mode', sinkPush, { ...JSON_TYPE, ...ceHeaders(MESSAGE_PUBLISHED) }),
    ];
  }
  const push = { message: message(), subscription: `projects/${P}/subscriptions/s` };
  return [
    json('Pub/Sub push', push),
    json('Pub/Sub push without subscription or publishTime', { message: { data: b64({}), messageId: 'm-bare' } }),
    json('Eventarc binary mode', push, { ...JSON_TYPE, ...ceHeaders(MESSAGE_PUBLISHED) }),
    json(
      'structured mode',
      { specversion: '1.0', id: 's-1', type: MESSAGE_PUBLISHED, source: '//s', data: push },
      { 'content-type': 'application/cloudevents+json' },
    ),
  ];
}

t('the events Google delivers still reach each function and answer as before', async ({ stack }) => {
  const seen: string[] = [];
  for (const fn of EVENT_FUNCTIONS)
    for (const shape of validShapes(fn)) {
      const { result, logs } = await captureLogs(() => send(stack, fn, shape));
      const ran = logs.some((l) => l.function === fn && l.message.startsWith(`${fn}:`) && !/refused/.test(l.message));
      seen.push(`${fn} / ${shape.label}: ${result.status}${ran ? '' : ' (never ran)'}`);
    }
  // logHeartbeatDrain has no subscription set on this stack: a bad setting still fails loudly (500, redelivered).
  assert.equal(
    seen,
    EVENT_FUNCTIONS.flatMap((fn) =>
      validShapes(fn).map((s) => `${fn} / ${s.label}: ${fn === 'logHeartbeatDrain' ? 500 : 204}`),
    ),
  );
});

t('a transient failure behind a valid event still answers 5xx, so the trigger redelivers', async ({ stack }) => {
  await createVm(stack, { project: P, zone: Z, name: 'web-1', os: 'debian-12' });
  await stack.control('POST', '/faults', { failNext: [{ status: 503, count: 6, match: 'compute.instances.get' }] });
  const audit = lastInsert();
  const { result, logs } = await captureLogs(() => send(stack, 'vmLifecycle', { label: 'insert', ...audit }));
  assert.is(result.status, 500);
  assert.ok(
    logs.some((l) => /transient failure, will be redelivered/.test(l.message)),
    JSON.stringify(logs),
  );
});

t.run();
