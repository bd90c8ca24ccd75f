// The event functions read their CloudEvent from the request themselves (functions/invocation.ts
// eventFunction). For every shape Google delivers, the event they hand a handler is the one the Functions
// Framework's own cloudEvent path would have handed it.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { buildAuditLogEvent } from '../infra/local/simulator/eventarc.js';
import { eventFunction } from '../functions/invocation.js';
import { AUDIT_LOG_EVENT_TYPE } from '../shared/domain/audit-event.js';
import { PUBSUB_MESSAGE_EVENT_TYPE } from '../shared/domain/pubsub-message.js';

let frameworks: unknown;
let ours: unknown;
functions.cloudEvent('frameworkProbe', (event: unknown) => {
  frameworks = event;
});
eventFunction('ourProbe', [AUDIT_LOG_EVENT_TYPE, PUBSUB_MESSAGE_EVENT_TYPE], async (event) => {
  ours = event;
});

const t = suite<{ framework: string; reader: string; servers: Server[] }>('one CloudEvent, whoever reads it');
t.before(async (ctx) => {
  const listen = async (name: string) => {
    const server = getTestServer(name);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return server;
  };
  ctx.servers = [await listen('frameworkProbe'), await listen('ourProbe')];
  const [framework, reader] = ctx.servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  Object.assign(ctx, { framework, reader });
});
t.after(({ servers }) => {
  for (const s of servers) s.close();
});

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const PATH = '/projects/p/topics/osquery-logs';
const push = (message: Record<string, unknown>) =>
  JSON.stringify({ message, subscription: 'projects/p/subscriptions/osquery-logs-push' });
const data = Buffer.from('{"name":"heartbeat"}').toString('base64');
const eventarc = buildAuditLogEvent(
  {
    project: 'p',
    zone: 'z-1',
    method: 'v1.compute.instances.delete',
    resourceName: 'projects/p/zones/z-1/instances/web-1',
    instanceId: '4242',
  },
  'op-1',
  'last',
);

const shapes: Array<{ label: string; headers: Record<string, string>; body: string }> = [
  { label: 'Eventarc audit-log event (binary mode)', headers: eventarc.headers, body: eventarc.body },
  {
    label: 'binary mode with a trace header and bytes',
    headers: { ...eventarc.headers, 'content-type': 'application/octet-stream', traceparent: TRACEPARENT },
    body: '{"protoPayload": nope',
  },
  {
    label: 'Pub/Sub through Eventarc (binary mode)',
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-type': PUBSUB_MESSAGE_EVENT_TYPE,
      'ce-source': '//pubsub.googleapis.com/projects/p/topics/osquery-logs',
      'ce-id': '17',
      'ce-time': '2026-11-01T00:00:00Z',
      traceparent: TRACEPARENT,
    },
    body: push({ data, messageId: '17', publishTime: '2026-11-01T00:00:00Z', attributes: { a: 'b' } }),
  },
  {
    label: 'structured mode',
    headers: { 'content-type': 'application/cloudevents+json', traceparent: TRACEPARENT },
    body: JSON.stringify({
      specversion: '1.0',
      id: 's-1',
      type: AUDIT_LOG_EVENT_TYPE,
      source: '//cloudaudit.googleapis.com/projects/p/logs/activity',
      time: '2026-11-01T00:00:00Z',
      data: JSON.parse(eventarc.body),
    }),
  },
  {
    label: 'Pub/Sub push (the emulator, a push subscription)',
    headers: { 'content-type': 'application/json', traceparent: TRACEPARENT },
    body: push({
      data,
      attributes: { gce_instance_id: '4242' },
      messageId: '18',
      message_id: '18',
      publishTime: '2026-11-01T00:00:01Z',
      orderingKey: '',
    }),
  },
  {
    label: 'Pub/Sub push without attributes',
    headers: { 'content-type': 'application/json' },
    body: push({ data, messageId: '19', publishTime: '2026-11-01T00:00:02Z' }),
  },
];

for (const shape of shapes)
  t(shape.label, async ({ framework, reader }) => {
    frameworks = undefined;
    ours = undefined;
    for (const base of [framework, reader]) {
      const res = await fetch(`${base}${PATH}`, { method: 'POST', headers: shape.headers, body: shape.body });
      assert.is(res.status, 204, await res.text());
    }
    assert.ok(frameworks, 'the framework handed an event');
    // Bytes compare as bytes; everything else as the JSON a handler reads.
    const plain = (e: unknown) => JSON.parse(JSON.stringify(e)) as unknown;
    assert.equal(plain(ours), plain(frameworks));
  });

t.run();
