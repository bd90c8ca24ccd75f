import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AUDIT_LOG_EVENT_TYPE,
  LIFECYCLE_METHODS,
  parseAuditLogEntry,
  parseAuditLogEvent,
} from '../../shared/domain/audit-event.js';
import { PUBSUB_MESSAGE_EVENT_TYPE } from '../../shared/domain/pubsub-message.js';
import { buildAuditLogEvent, type EntrySpec } from '../../infra/local/simulator/eventarc.js';

const t = suite('parseAuditLogEvent (pure)');

const spec = (over: Partial<EntrySpec> = {}): EntrySpec => ({
  project: 'p',
  zone: 'us-central1-a',
  method: 'v1.compute.instances.insert',
  instanceId: '42',
  resourceName: 'projects/p/zones/us-central1-a/instances/web-1',
  ...over,
});
const data = (over: Partial<EntrySpec> = {}, position: 'first' | 'last' = 'last') =>
  JSON.parse(buildAuditLogEvent(spec(over), 'op-1', position).body);
const parse = (d: unknown) => parseAuditLogEvent(AUDIT_LOG_EVENT_TYPE, d);

for (const method of [
  'v1.compute.instances.insert',
  'beta.compute.instances.insert',
  'compute.instances.insert',
  'v1.compute.instances.bulkInsert',
  'beta.compute.instances.bulkInsert',
]) {
  t(`${method} naming an instance -> enroll`, () => {
    assert.equal(parse(data({ method })), {
      kind: 'enroll',
      method,
      operationId: 'op-1',
      instance: { project: 'p', zone: 'us-central1-a', name: 'web-1', instanceId: '42' },
    });
  });
}

for (const method of ['v1.compute.instances.delete', 'beta.compute.instances.delete', 'compute.instances.delete']) {
  t(`${method} -> retire`, () => {
    const action = parse(data({ method }));
    assert.is(action.kind, 'retire');
  });
}

t('bulkInsert naming a zone -> reconcile that zone', () => {
  assert.equal(
    parse(
      data({
        method: 'v1.compute.instances.bulkInsert',
        resourceName: 'projects/p/zones/us-central1-a',
        instanceId: undefined,
      }),
    ),
    {
      kind: 'reconcile-location',
      project: 'p',
      zone: 'us-central1-a',
      method: 'v1.compute.instances.bulkInsert',
      operationId: 'op-1',
    },
  );
});

t('regional bulkInsert -> reconcile the region', () => {
  const action = parse(
    data({
      method: 'compute.instances.bulkInsert',
      resourceName: 'projects/p/regions/us-central1/instances',
      instanceId: undefined,
    }),
  );
  assert.equal(action, {
    kind: 'reconcile-location',
    project: 'p',
    region: 'us-central1',
    method: 'compute.instances.bulkInsert',
    operationId: 'op-1',
  });
});

t('first entry -> ignored', () => {
  assert.is(parse(data({}, 'first')).kind, 'ignore');
});

t('failed last entry (non-zero status) -> ignored with the code', () => {
  const action = parse(data({ failed: true }));
  assert.is(action.kind, 'ignore');
  assert.match((action as { reason: string }).reason, /operation failed: code 3/);
});

t('an entry without operation (single-entry operation) is acted on', () => {
  const d = data();
  delete d.operation;
  assert.is(parse(d).kind, 'enroll');
});

t('unknown methods are ignored, named in the reason', () => {
  for (const method of ['v1.compute.instances.start', 'v1.compute.disks.insert', 'compute.instances.insertx']) {
    const action = parse(data({ method }));
    assert.is(action.kind, 'ignore', method);
    assert.match((action as { reason: string }).reason, method);
  }
});

t('another service is ignored', () => {
  const d = data();
  d.protoPayload.serviceName = 'container.googleapis.com';
  assert.is(parse(d).kind, 'ignore');
});

t('bad input -> invalid with a reason', () => {
  const noResource = data();
  delete noResource.protoPayload.resourceName;
  const cases: Array<[unknown, RegExp]> = [
    ['{"not json', /not JSON/],
    [Buffer.from('xx'), /not JSON/],
    [null, /data/],
    [{}, /protoPayload/],
    [noResource, /resourceName/],
    [data({ resourceName: 'projects/p/global/images/x' }), /does not name an instance/],
  ];
  for (const [input, reason] of cases) {
    const action = parseAuditLogEvent(AUDIT_LOG_EVENT_TYPE, input);
    assert.is(action.kind, 'invalid', JSON.stringify(input));
    assert.match((action as { reason: string }).reason, reason);
  }
});

t('an instance_id that is not an unsigned 64-bit decimal -> invalid (it would become a document path)', () => {
  for (const instanceId of [
    'not-a-number',
    '42/transitions/x',
    '18446744073709551616',
    '-1',
    '007',
    '0x1f',
    '4.2',
    ' 42',
  ]) {
    const action = parse(data({ instanceId }));
    assert.is(action.kind, 'invalid', instanceId);
    assert.match((action as { reason: string }).reason, /instance_id/);
  }
  assert.is(parse(data({ instanceId: '18446744073709551615' })).kind, 'enroll', 'the largest id');
  assert.is(parse(data({ instanceId: undefined })).kind, 'enroll', 'no id: found by name');
});

t('a resource name whose project, zone or name Compute could not have written -> invalid', () => {
  for (const resourceName of [
    'projects/../zones/us-central1-a/instances/web',
    'projects/p/zones/US-CENTRAL1/instances/web',
    'projects/p/zones/us-central1-a/instances/Web_1',
    `projects/p/zones/us-central1-a/instances/${'a'.repeat(64)}`,
  ]) {
    assert.is(parse(data({ resourceName })).kind, 'invalid', resourceName);
  }
  assert.is(
    parse(data({ resourceName: 'projects/example.com:acme/zones/us-central1-a/instances/web' })).kind,
    'enroll',
  );
});

/** A log sink's entry as the push subscription delivers it: the LogEntry JSON as a Pub/Sub message's data. */
const pushed = (entry: unknown) => ({
  message: {
    data: Buffer.from(typeof entry === 'string' ? entry : JSON.stringify(entry)).toString('base64'),
    attributes: { 'logging.googleapis.com/timestamp': '2026-11-28T00:00:00Z' },
    messageId: '1',
    publishTime: '2026-11-28T00:00:01Z',
  },
  subscription: 'projects/orch/subscriptions/osquery-compute-audit-log-push',
});

t('a log sink entry in a Pub/Sub message -> the same action as the same entry from Eventarc', () => {
  const other = data();
  other.protoPayload.serviceName = 'container.googleapis.com';
  const noResource = data();
  delete noResource.protoPayload.resourceName;
  const entries: unknown[] = [
    ...LIFECYCLE_METHODS.map((method) => data({ method })),
    data({}, 'first'),
    data({ failed: true }),
    data({
      method: 'v1.compute.instances.bulkInsert',
      resourceName: 'projects/p/zones/us-central1-a',
      instanceId: undefined,
    }),
    data({ method: 'v1.compute.instances.start' }),
    other,
    noResource,
    data({ instanceId: '42/transitions/x' }),
    {},
    null,
    [],
  ];
  for (const entry of entries) {
    const fromEventarc = parse(entry);
    assert.equal(parseAuditLogEvent(PUBSUB_MESSAGE_EVENT_TYPE, pushed(entry)), fromEventarc, JSON.stringify(entry));
    assert.equal(parseAuditLogEntry(entry), fromEventarc);
  }
  const kinds = entries.map((e) => parse(e).kind);
  for (const kind of ['enroll', 'retire', 'reconcile-location', 'ignore', 'invalid'])
    assert.ok(kinds.includes(kind as never), `the table covers ${kind}`);
});

t('a Pub/Sub message that is not a log entry -> invalid, with the reason', () => {
  const cases: Array<[unknown, RegExp]> = [
    [pushed('{"protoPayload": nope'), /^the audit log entry is not JSON$/],
    [pushed(''), /^the audit log entry is not JSON$/],
    [{ message: { data: 42 } }, /not a Pub\/Sub message/],
    ['a string', /not a Pub\/Sub message/],
  ];
  for (const [input, reason] of cases) {
    const action = parseAuditLogEvent(PUBSUB_MESSAGE_EVENT_TYPE, input);
    assert.is(action.kind, 'invalid', JSON.stringify(input));
    assert.match((action as { reason: string }).reason, reason);
  }
});

t('the methods acted on: v1., beta. and unprefixed insert, bulkInsert, delete; nothing else', () => {
  assert.is(LIFECYCLE_METHODS.length, 9);
  assert.is(new Set(LIFECYCLE_METHODS).size, 9);
  for (const method of ['alpha.compute.instances.insert', 'v1.compute.instances.insertx', 'v1.compute.instances'])
    assert.is(parse(data({ method })).kind, 'ignore', method);
});

t('wrong CloudEvent type -> invalid', () => {
  assert.is(parseAuditLogEvent('google.cloud.pubsub.topic.v1.messagePublished', data()).kind, 'invalid');
});

t.run();
