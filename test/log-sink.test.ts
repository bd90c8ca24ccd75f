// Enrollment through the organisation log sink: Compute audit entries of every project published as
// LogEntry messages to the Pub/Sub emulator, pushed to vmLifecycle, beside Eventarc for the orchestrator's
// own project. The same entry by either path has the same outcome; by both, it counts once.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { captureLogs, clearFirestore, startStack, type Stack } from './helpers/stack.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { buildAuditLogEvent, type EntrySpec } from '../infra/local/simulator/eventarc.js';
import { COMPUTE_AUDIT_LOG_TOPIC } from '../infra/local/functions.js';
import { getHost, listTransitions } from '../shared/adapters/hosts.js';
import { clients } from '../shared/clients.js';
import { config } from '../shared/config.js';
import type { AlertMessage } from '../shared/domain/alerts.js';

/** The project Eventarc's trigger sees (the orchestrator's own); DATA is reached by the sink alone. */
const ORCH = 'orch';
const DATA = 'data';
const Z = 'europe-west1-b';
const t = suite<{ stack: Stack; alerts: Subscription }>('vmLifecycle through the log sink');

t.before(async (ctx) => {
  ctx.stack = await startStack({ TARGET_PROJECTS: `${ORCH},${DATA}` }, { auditLogSink: true, eventarcProject: ORCH });
  ctx.alerts = await subscribe(config().ALERT_TOPIC, 'test-sink-alerts');
});
t.after(async (ctx) => ctx.stack.close());
t.before.each(async ({ stack, alerts }) => {
  await stack.flushEvents();
  await clearFirestore();
  await stack.control('POST', '/reset');
  for (const id of [ORCH, DATA])
    await stack.control('POST', '/projects', { id, metadata: { 'enable-osconfig': 'TRUE' } });
  await drain(alerts);
});

const vm = (stack: Stack, project: string, name: string, extra: Record<string, unknown> = {}) =>
  stack.control<{ id: string; name: string }>('POST', '/vms', { project, zone: Z, name, os: 'debian-12', ...extra });

async function hostsByName(): Promise<Array<[string, string, string | null, number]>> {
  const docs = (await clients.firestore().collection('hosts').get()).docs;
  const out = await Promise.all(
    docs.map(async (d) => {
      const h = d.data();
      return [h.name, h.state, h.reason, (await listTransitions(d.id)).length] as [
        string,
        string,
        string | null,
        number,
      ];
    }),
  );
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

// --- Both paths, entry by entry --------------------------------------------------------------------

type Path = 'eventarc' | 'sink';
/** One step of a case: an entry (LogEntry JSON text) delivered by the path under test, or an action. */
type Step = string | (() => Promise<void>);

/** Delivers one LogEntry by a path, exactly as it arrives on Google Cloud. */
async function deliver(stack: Stack, path: Path, entry: string): Promise<number> {
  let res: Response;
  if (path === 'eventarc') {
    // Eventarc's binary-mode CloudEvent; a body that is not JSON would reach it only as bytes.
    const { headers } = buildAuditLogEvent(
      { project: DATA, zone: Z, method: 'v1.compute.instances.insert', resourceName: 'x' },
      'op',
      'last',
    );
    const json = (() => {
      try {
        JSON.parse(entry);
        return true;
      } catch {
        return false;
      }
    })();
    res = await fetch(stack.vmLifecycleUrl, {
      method: 'POST',
      headers: { ...headers, 'content-type': json ? 'application/json' : 'application/octet-stream' },
      body: entry,
    });
  } else {
    // The sink's message, pushed by the subscription to <function URL>/projects/P/topics/T.
    const project = process.env.GOOGLE_CLOUD_PROJECT;
    res = await fetch(`${stack.vmLifecycleUrl}projects/${project}/topics/${COMPUTE_AUDIT_LOG_TOPIC}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: {
          data: Buffer.from(entry).toString('base64'),
          attributes: { 'logging.googleapis.com/timestamp': new Date().toISOString() },
          messageId: String(Math.random()).slice(2),
          publishTime: new Date().toISOString(),
        },
        subscription: `projects/${project}/subscriptions/${COMPUTE_AUDIT_LOG_TOPIC}-push`,
      }),
    });
  }
  await res.arrayBuffer();
  return res.status;
}

const spec = (over: Partial<EntrySpec> & { name: string }): EntrySpec => ({
  project: DATA,
  zone: Z,
  method: 'v1.compute.instances.insert',
  resourceName: `projects/${DATA}/zones/${Z}/instances/${over.name}`,
  ...over,
});
const entry = (s: EntrySpec, position: 'first' | 'last' = 'last', op = `op-${s.resourceName}-${s.method}`) =>
  buildAuditLogEvent(s, op, position).body;
/** The entry with a change made to it, as JSON text. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const edit = (body: string, change: (e: Record<string, any>) => void) => {
  const e = JSON.parse(body);
  change(e);
  return JSON.stringify(e);
};

interface Case {
  name: string;
  /** Creates what the entries talk about (no audit events are sent meanwhile) and returns the steps. */
  setup(stack: Stack): Promise<Step[]>;
  hosts: Array<[string, string, string | null, number]>;
  /** What vmLifecycle logged about each entry: `ignore: reason`, `invalid: reason`, or the action done. */
  logged: RegExp[];
}

const CASES: Case[] = [
  {
    name: 'an insert, first entry: ignored (the VM may not exist yet)',
    setup: async (stack) => {
      const v = await vm(stack, DATA, 'web-1');
      return [entry(spec({ name: 'web-1', instanceId: v.id }), 'first')];
    },
    hosts: [],
    logged: [/^ignore: not the last entry of the operation$/],
  },
  ...(['v1.', 'beta.', ''] as const).map((prefix): Case => ({
    name: `an insert (${prefix || 'unprefixed'}), last entry: pending`,
    setup: async (stack) => {
      const v = await vm(stack, DATA, 'web-1');
      const s = spec({ name: 'web-1', instanceId: v.id, method: `${prefix}compute.instances.insert` });
      return [entry(s, 'first'), entry(s, 'last')];
    },
    hosts: [['web-1', 'pending', 'policy-targeted', 1]],
    logged: [/^ignore: not the last entry/, /^enroll$/],
  })),
  {
    name: 'a failed insert (last entry with a status): nothing',
    setup: async (stack) => {
      const v = await vm(stack, DATA, 'broken');
      return [entry(spec({ name: 'broken', instanceId: v.id, failed: true }))];
    },
    hosts: [],
    logged: [/^ignore: operation failed: code 3 INVALID_ARGUMENT$/],
  },
  {
    name: 'a bulkInsert naming each instance: each pending',
    setup: async (stack) => {
      const { created } = await stack.control('POST', '/vms:bulk', {
        project: DATA,
        zone: Z,
        namePrefix: 'named',
        count: 2,
        as: 'none',
      });
      return created.map((v: { id: string; name: string }) =>
        entry(spec({ name: v.name, instanceId: v.id, method: 'v1.compute.instances.bulkInsert' })),
      );
    },
    hosts: [
      ['named-1', 'pending', 'policy-targeted', 1],
      ['named-2', 'pending', 'policy-targeted', 1],
    ],
    logged: [/^enroll$/, /^enroll$/],
  },
  {
    name: 'a bulkInsert naming only the zone: every VM of the zone pending',
    setup: async (stack) => {
      await stack.control('POST', '/vms:bulk', { project: DATA, zone: Z, namePrefix: 'anon', count: 3, as: 'none' });
      return [
        entry(
          spec({ name: 'x', method: 'beta.compute.instances.bulkInsert', resourceName: `projects/${DATA}/zones/${Z}` }),
        ),
      ];
    },
    hosts: [
      ['anon-1', 'pending', 'policy-targeted', 1],
      ['anon-2', 'pending', 'policy-targeted', 1],
      ['anon-3', 'pending', 'policy-targeted', 1],
    ],
    logged: [/^reconcile-location$/],
  },
  {
    name: 'a delete of an enrolled VM: deleted',
    setup: async (stack) => {
      const v = await vm(stack, DATA, 'doomed');
      return [
        entry(spec({ name: 'doomed', instanceId: v.id })),
        () => stack.control('DELETE', `/vms/${DATA}/${Z}/doomed?silent=true`),
        entry(spec({ name: 'doomed', instanceId: v.id, method: 'compute.instances.delete' })),
      ];
    },
    hosts: [['doomed', 'deleted', 'vm-deleted', 2]],
    logged: [/^enroll$/, /^retire$/],
  },
  {
    name: "another service's entry: ignored",
    setup: async () => [
      edit(entry(spec({ name: 'c', method: 'google.container.v1.ClusterManager.CreateCluster' })), (e) => {
        e.protoPayload.serviceName = 'container.googleapis.com';
        e.protoPayload.resourceName = `projects/${DATA}/locations/${Z}/clusters/c`;
      }),
      edit(entry(spec({ name: 'web-1' })), (e) => (e.protoPayload.serviceName = 'container.googleapis.com')),
      entry(spec({ name: 'web-1', method: 'v1.compute.instances.start' })),
    ],
    hosts: [],
    logged: [
      /^ignore: method google\.container\.v1\.ClusterManager\.CreateCluster is not an instance insert/,
      /^ignore: service container\.googleapis\.com is not compute\.googleapis\.com$/,
      /^ignore: method v1\.compute\.instances\.start is not/,
    ],
  },
  {
    name: 'malformed entries: logged with the reason, nothing written',
    setup: async (stack) => {
      const v = await vm(stack, DATA, 'victim');
      return [
        '{"protoPayload": nope',
        '{}',
        edit(entry(spec({ name: 'victim', instanceId: v.id })), (e) => delete e.protoPayload.resourceName),
        entry(spec({ name: 'victim', instanceId: '42/transitions/x' })), // it would become a document path
        entry(spec({ name: 'victim', resourceName: `projects/../zones/${Z}/instances/victim` })),
        entry(spec({ name: 'victim', resourceName: `projects/${DATA}/global/images/x` })),
      ];
    },
    hosts: [],
    logged: [
      /^invalid: the audit log entry is not JSON$/,
      /^invalid: protoPayload: protoPayload is missing$/,
      /^invalid: protoPayload\.resourceName: protoPayload\.resourceName is missing$/,
      /^invalid: resource\.labels\.instance_id ".*" is not an unsigned 64-bit decimal$/,
      /^invalid: project "\.\." is not a project id$/,
      /^invalid: resourceName ".*" does not name an instance$/,
    ],
  },
];

/** Runs a case by one path on a fresh world and Firestore; what came of it. */
async function outcome(stack: Stack, c: Case, path: Path) {
  await clearFirestore();
  await stack.control('POST', '/reset');
  await stack.control('POST', '/projects', { id: DATA, metadata: { 'enable-osconfig': 'TRUE' } });
  await stack.control('POST', '/faults', { eventSinkUp: false }); // only the entries under test arrive
  const steps = await c.setup(stack);
  const { result: statuses, logs } = await captureLogs(async () => {
    const out: number[] = [];
    for (const step of steps)
      if (typeof step === 'string') out.push(await deliver(stack, path, step));
      else await step();
    return out;
  });
  const logged = logs
    .filter((l) => /^vmLifecycle: /.test(l.message))
    .map((l) =>
      /rejected malformed/.test(l.message)
        ? `invalid: ${l.reason}`
        : /ignored entry/.test(l.message)
          ? `ignore: ${l.reason}`
          : String(l.action),
    );
  return { statuses, logged, hosts: await hostsByName() };
}

for (const c of CASES)
  t(`both paths, ${c.name}`, async ({ stack }) => {
    const byEventarc = await outcome(stack, c, 'eventarc');
    const bySink = await outcome(stack, c, 'sink');
    assert.equal(bySink, byEventarc, 'the sink path and the Eventarc path end the same');
    // And that end is the expected one (equal outcomes alone could both be wrong).
    assert.ok(
      bySink.statuses.every((s) => s === 204),
      `every entry acknowledged: ${bySink.statuses}`,
    );
    assert.equal(bySink.hosts, c.hosts);
    assert.is(bySink.logged.length, c.logged.length, bySink.logged.join(' | '));
    c.logged.forEach((re, i) => assert.match(bySink.logged[i]!, re));
  });

// --- End to end: the simulator's sink, the Pub/Sub emulator, the push subscription ----------------

t('a VM created in another project is enrolled through the sink; Eventarc never sees it', async ({ stack }) => {
  const v = await vm(stack, DATA, 'etl-1');
  await stack.flushEvents();
  const host = await getHost(v.id);
  assert.equal([host?.state, host?.reason, host?.project], ['pending', 'policy-targeted', DATA]);
  assert.is((await listTransitions(v.id)).length, 1);
  const { published } = await stack.control('GET', '/sink');
  assert.equal(
    published.map((p: { position: string; resourceName: string }) => [p.position, p.resourceName]),
    [
      ['first', `projects/${DATA}/zones/${Z}/instances/etl-1`],
      ['last', `projects/${DATA}/zones/${Z}/instances/etl-1`],
    ],
  );
  assert.equal(await stack.control('GET', '/deliveries'), [], 'the orchestrator project trigger saw nothing');
});

for (const duplicated of [false, true])
  t(
    `the same VM creation by the sink and by Eventarc${duplicated ? ', each delivering every entry twice' : ''}: ` +
      'one host, one transition, one alert',
    async ({ stack, alerts }) => {
      if (duplicated) await stack.control('POST', '/faults', { duplicateEvents: true });
      // No service account: blocked at enrollment, which alerts at once.
      const v = await vm(stack, ORCH, 'no-sa', { serviceAccount: null });
      await stack.flushEvents();
      const copies = duplicated ? 2 : 1;
      const deliveries = await stack.control<Array<{ status: number }>>('GET', '/deliveries');
      assert.equal(
        deliveries.map((d) => d.status),
        Array(2 * copies).fill(204),
        'Eventarc delivered first and last',
      );
      assert.is((await stack.control('GET', '/sink')).published.length, 2 * copies, 'the sink published both too');
      const host = await getHost(v.id);
      assert.equal([host?.state, host?.reason], ['blocked', 'no-service-account']);
      assert.equal(
        (await listTransitions(v.id)).map((tr) => [tr.from, tr.to]),
        [[null, 'blocked']],
      );
      const sent = (await drain(alerts)).map((m) => m.data as AlertMessage);
      assert.equal(
        sent.map((a) => [a.kind, a.status, a.host?.instanceId]),
        [['host.blocked', 'firing', v.id]],
      );
    },
  );

t('out of order: entries held, then delivered newest first, by the sink alone', async ({ stack }) => {
  await stack.control('POST', '/faults', { reorderEvents: true });
  const kept = await vm(stack, DATA, 'kept');
  const brief = await vm(stack, DATA, 'brief');
  await stack.control('DELETE', `/vms/${DATA}/${Z}/brief`);
  assert.is((await stack.control('GET', '/sink')).published.length, 0, 'nothing delivered while held');
  await stack.control('POST', '/faults', { reorderEvents: false });
  await stack.flushEvents();
  const order = (await stack.control('GET', '/sink')).published.map(
    (p: { position: string; method: string; resourceName: string }) =>
      `${p.method.split('.').pop()} ${p.resourceName.split('/').pop()} ${p.position}`,
  );
  assert.equal(order, [
    'delete brief last',
    'delete brief first',
    'insert brief last',
    'insert brief first',
    'insert kept last',
    'insert kept first',
  ]);
  assert.is((await getHost(kept.id))?.state, 'pending');
  assert.is((await listTransitions(kept.id)).length, 1);
  // Deleted before its insert was seen: no tombstone of a VM never recorded.
  assert.is(await getHost(brief.id), null);
});

t('lost entries and failed operations: nothing enrolled, nothing written', async ({ stack }) => {
  await stack.control('POST', '/faults', { eventSinkUp: false });
  const lost = await vm(stack, DATA, 'lost');
  await stack.control('POST', '/faults', { eventSinkUp: true });
  const failed = await vm(stack, DATA, 'failed', { failed: true });
  await stack.flushEvents();
  assert.is((await stack.control('GET', '/sink')).published.length, 2, 'only the failed insert was logged');
  assert.is(await getHost(lost.id), null);
  assert.is(await getHost(failed.id), null);
  assert.equal(await hostsByName(), []);
});

t('a burst of 30 VMs in another project: every one pending once', async ({ stack }) => {
  const { created } = await stack.control('POST', '/vms:bulk', {
    project: DATA,
    zone: 'us-east1-b',
    namePrefix: 'burst',
    count: 30,
    as: 'inserts',
  });
  await stack.flushEvents();
  for (const v of created as Array<{ id: string }>) {
    assert.is((await getHost(v.id))?.state, 'pending', v.id);
    assert.is((await listTransitions(v.id)).length, 1, v.id);
  }
  const assignments = await stack.control<Array<{ project: string; zone: string }>>('GET', '/assignments');
  assert.is(assignments.filter((a) => a.project === DATA && a.zone === 'us-east1-b').length, 1);
});

t.run();
