// The function manifest (functions/manifest.ts) against the code it describes, and the file Terraform
// reads from it (infra/terraform/functions.json). How Terraform deploys what the file says:
// test/unit/terraform.test.ts; that the moved blocks keep every earlier deployment's resources:
// test/unit/terraform-moves.test.ts.
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  FUNCTION_NAMES,
  deployedWith,
  eventTypesOf,
  functionList,
  isHttp,
  memorySize,
  PUBLISHER_PERMISSIONS,
} from '../../functions/manifest.js';
import {
  FUNCTIONS_JSON,
  GRAFANA_DASHBOARD,
  functionsJson,
  grafanaDashboard,
  resourceName,
} from '../../infra/terraform/manifest.js';
import { AUDIT_LOG_EVENT_TYPE } from '../../shared/domain/audit-event.js';
import { PUBSUB_MESSAGE_EVENT_TYPE } from '../../shared/domain/pubsub-message.js';
import { parseConfig } from '../../shared/config.js';

const t = suite('function manifest');

t('infra/terraform/functions.json is what `npm run manifest` writes from the manifest (run it after an edit)', () => {
  assert.fixture(readFileSync(FUNCTIONS_JSON, 'utf8'), functionsJson());
});

t("the Grafana dashboard's queries select every function of the manifest (`npm run manifest` writes them)", () => {
  const text = readFileSync(GRAFANA_DASHBOARD, 'utf8');
  assert.ok(grafanaDashboard(text).includes(`\${prefix}-(${FUNCTION_NAMES.map(resourceName).join('|')})`));
  assert.fixture(text, grafanaDashboard(text));
});

t("the contract's entry points are there, in the order the local stack gives them ports (new ones last)", () => {
  // docs/contracts.md names these five; the status page and the pull delivery's drain came later, in this order.
  const contract = ['vmLifecycle', 'fleetAudit', 'fleetAuditShard', 'logHeartbeat', 'monitoringAlert'];
  assert.equal(FUNCTION_NAMES.slice(0, 7), [...contract, 'fleetStatus', 'logHeartbeatDrain']);
});

t('functions/index.ts registers every function, each taking the event types its trigger brings', async () => {
  const { getFunction, getTestServer } = await import('@google-cloud/functions-framework/testing');
  await import('../../functions/index.js');
  for (const fn of functionList()) {
    assert.ok(getFunction(fn.name), `${fn.name} is registered`);
    if (isHttp(fn)) continue;
    // A CloudEvent of a type it does not take is refused (400) with the types it does take, before any
    // handler loads: the accepted types are the ones the manifest gives it.
    const server = getTestServer(fn.name);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify({ specversion: '1.0', id: '1', source: '//test', type: 'example.other', data: {} }),
      });
      assert.is(res.status, 400, `${fn.name} refuses another event type`);
      assert.match(await res.text(), `this function takes ${eventTypesOf(fn.trigger).join(' or ')}`);
    } finally {
      server.close();
    }
  }
  assert.equal(eventTypesOf({ kind: 'auditLog', service: 's', methods: [] }), [
    AUDIT_LOG_EVENT_TYPE,
    PUBSUB_MESSAGE_EVENT_TYPE,
  ]);
  assert.equal(eventTypesOf({ kind: 'pubsub', topic: 'ALERT_TOPIC' }), [PUBSUB_MESSAGE_EVENT_TYPE]);
});

t('each entry loads its handler: the export named after the function, of the kind its trigger needs', async () => {
  for (const fn of functionList()) {
    const handler = await fn.load();
    assert.type(handler, 'function', fn.name);
    // Event handlers take (event), HTTP handlers (req, res).
    assert.is(handler.length, isHttp(fn) ? 2 : 1, `${fn.name}'s handler arity`);
    const source = fn.load.toString();
    assert.match(source, `.${fn.name}`, `${fn.name} loads the export of its own name`);
  }
});

t('names fit Google Cloud: <name_prefix>-<name> within the 30 characters of a service account id', () => {
  const longestPrefix = 8; // variables.tf: name_prefix is 2 to 8 characters
  for (const fn of functionList()) {
    const name = resourceName(fn.name);
    assert.match(name, /^[a-z][a-z0-9-]*[a-z0-9]$/, `${fn.name}: ${name}`);
    assert.ok(longestPrefix + 1 + name.length <= 30, `${fn.name}: ${name} leaves room for the prefix`);
  }
  assert.is(resourceName('fleetAuditShard'), 'fleet-audit-shard');
});

t('memory: the smallest Cloud Functions size of at least twice the measured peak', () => {
  assert.is(memorySize(123), '256Mi');
  assert.is(memorySize(128), '256Mi');
  assert.is(memorySize(129), '512Mi');
  assert.is(memorySize(489), '1024Mi');
  assert.throws(() => memorySize(20_000), /fits no Cloud Functions memory size/);
  for (const fn of functionList()) assert.ok(fn.peakMb > 0 && fn.peakMb < 16_384, `${fn.name}: a measured peak`);
});

t('every trigger topic has a default, and each delivery deploys one way in for the heartbeat lines', () => {
  // Topics and subscriptions are named by setting (the types say which); a trigger's must always be set.
  const defaults = parseConfig({}) as Record<string, unknown>;
  for (const fn of functionList())
    if ('topic' in fn.trigger)
      assert.type(defaults[fn.trigger.topic], 'string', `${fn.name}: ${fn.trigger.topic} has a default`);
  for (const delivery of ['push', 'pull'] as const) {
    const heartbeat = functionList().filter(
      (f) => deployedWith(f, delivery) && (f.name === 'logHeartbeat' || f.name === 'logHeartbeatDrain'),
    );
    assert.equal(
      heartbeat.map((f) => f.name),
      [delivery === 'push' ? 'logHeartbeat' : 'logHeartbeatDrain'],
      `${delivery} delivery: one way in for the heartbeat lines`,
    );
  }
});

t('permissions: each listed once, well formed; Pub/Sub entry points may dead-letter malformed messages', () => {
  for (const fn of functionList()) {
    const p = fn.permissions;
    for (const [what, list] of Object.entries({
      target: p.target,
      parent: p.parent,
      publishes: p.publishes,
      subscribes: p.subscribes,
    }))
      assert.is(new Set(list).size, list.length, `${fn.name}: no ${what} permission twice`);
    for (const perm of [...p.target, ...p.parent]) assert.match(perm, /^[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+$/, perm);
    // Resolving folders and organisations is the audit's start (fleetAudit), and the publisher's.
    assert.ok(
      p.parent.every((perm) => perm.startsWith('resourcemanager.')),
      `${fn.name}: parent permissions`,
    );
    // pubsubHandler republishes a malformed message to DEAD_LETTER_TOPIC (shared/usecases/poison.ts).
    const handlerFile = /import\(["']\.\/([a-z-]+)\.js["']\)/.exec(fn.load.toString())?.[1];
    const source = readFileSync(new URL(`../../functions/${handlerFile}.ts`, import.meta.url), 'utf8');
    assert.is(
      p.publishes.includes('DEAD_LETTER_TOPIC'),
      source.includes('pubsubHandler('),
      `${fn.name}: may publish dead letters iff it is a Pub/Sub entry point`,
    );
  }
  assert.ok(PUBLISHER_PERMISSIONS.bucket.every((perm) => perm.startsWith('storage.objects.')));
});

t.run();
