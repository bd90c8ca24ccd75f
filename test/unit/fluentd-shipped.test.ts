// The production shipper's count: the bundle's fluentd filter plugin (fluentd/plugin/filter_osquery_shipped.rb),
// run by `ruby` itself through a small driver (test/fixtures/fluentd-shipped-driver.rb), against the
// simulator's shipper (shipLines, messageBytes) for the same lines. Without ruby this test fails and says
// which package to install.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { newShipperCount, shipLines, type OutgoingMessage } from '../../infra/local/simulator/shipper.js';
import type { ShippedLine } from '../../infra/local/simulator/osqueryd.js';
import { messageBytes, shippedCountsOf, SHIPPED_FIELD } from '../../shared/domain/log-volume.js';
import { MAX_QUERIES_PER_SNAPSHOT, type Rejections } from '../../shared/domain/trust.js';
import { loadBundle } from '../../shared/osquery/bundle.js';
import { HEARTBEAT_QUERY, QUERY_NAME_ATTRIBUTE, SCHEDULE_QUERY } from '../../shared/osquery/log-routing.js';
import { renderBundle, type RenderedFile } from '../../shared/osquery/render.js';

const RUBY = process.env.RUBY_PATH ?? 'ruby';
const DRIVER = path.resolve(import.meta.dirname, '../fixtures/fluentd-shipped-driver.rb');
const PLUGIN_VM_PATH = '/etc/fluent/plugin/filter_osquery_shipped.rb';

interface Ctx {
  dir: string;
  plugin: string;
  conf: string;
  files: RenderedFile[];
}
const t = suite<Ctx>('fluentd filter plugin: the shipper count (ruby)');

t.before(async (ctx) => {
  if (spawnSync(RUBY, ['--version'], { encoding: 'utf8' }).status !== 0) {
    const message =
      `${RUBY} not found: the fluentd plugin test needs Debian's ruby package ` +
      '(`apt-get install -y ruby` as root, or with sudo; `./dev test` and .ci/run install it when they can)';
    // uvu does not print a hook's error itself.
    console.error(`\n  ${message}\n`);
    throw new Error(message);
  }
  const rendered = renderBundle(await loadBundle(), { logTopic: 'l', logTopicProject: 'p' });
  ctx.files = rendered.files;
  const plugin = rendered.files.find((f) => f.vmPath === PLUGIN_VM_PATH);
  assert.ok(plugin, `the bundle places the plugin at ${PLUGIN_VM_PATH}`);
  ctx.dir = mkdtempSync(path.join(tmpdir(), 'fluentd-shipped-'));
  ctx.plugin = path.join(ctx.dir, 'filter_osquery_shipped.rb');
  // What the VM gets: the rendered content.
  writeFileSync(ctx.plugin, plugin!.content);
  ctx.conf = rendered.files.find((f) => f.source === 'fluentd/osquery.conf')!.content;
});
t.after((ctx) => {
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

/** A directive's parameters (`key value` lines), its opening line matched by `open`, from the conf's text. */
function directive(conf: string, open: RegExp): { at: number; params: Map<string, string> } {
  const lines = conf.split('\n');
  const at = lines.findIndex((l) => open.test(l));
  assert.ok(at >= 0, `osquery.conf has ${open}`);
  const params = new Map<string, string>();
  for (const l of lines.slice(at + 1)) {
    if (/^\s*<\/(filter|match)>/.test(l)) break;
    const m = /^\s*(@?[a-z_]+)\s+(.*)$/.exec(l);
    if (m && !l.trim().startsWith('#')) params.set(m[1]!, m[2]!.trim());
  }
  return { at, params };
}

/** The filter's settings as osquery.conf sets them. */
function filterOf(conf: string) {
  const lines = conf.split('\n');
  const at = lines.findIndex((l, i) => /^<filter /.test(l) && /@type osquery_shipped/.test(lines[i + 1] ?? ''));
  assert.ok(at >= 0, 'osquery.conf uses the osquery_shipped filter');
  return { at, params: directive(lines.slice(at).join('\n'), /^<filter /).params };
}

const IDENTITY = { gce_instance_id: '4417000000000001', gce_project_id: 'shop-prod', gce_zone: 'europe-west1-b' };
const T0 = Date.parse('2026-12-07T10:00:00Z');
const SINCE = T0 / 1000 - 600;

/** An osquery log line as osqueryd writes it (the envelope of osqueryd.ts's lines), and its attributes. */
function line(name: string, at: number, body: Record<string, unknown>, logType: 'result' | 'snapshot'): ShippedLine {
  const now = new Date(T0 + at * 1000);
  return {
    line: {
      name,
      hostIdentifier: 'web-1',
      calendarTime: now.toUTCString(),
      unixTime: Math.floor(now.getTime() / 1000),
      epoch: 0,
      counter: at,
      numerics: false,
      decorations: { config_version: 'v0123456789ab' },
      ...body,
    },
    attributes: { log_type: logType, [QUERY_NAME_ATTRIBUTE]: name },
  };
}
const result = (name: string, at: number, columns: Record<string, string>) =>
  line(name, at, { columns, action: 'added' }, 'result');
const schedule = (at: number, outputSize: number) =>
  line(
    SCHEDULE_QUERY,
    at,
    {
      snapshot: [
        { name: 'pack_users_last', executions: '12', output_size: String(outputSize), worker_pid: '812' },
        { name: HEARTBEAT_QUERY, executions: '12', output_size: '4400', worker_pid: '812' },
      ],
      action: 'snapshot',
    },
    'snapshot',
  );

/** Heartbeat, results of two queries, a snapshot, more results (a third query among them), a second snapshot. */
const SEQUENCE: ShippedLine[] = [
  line(HEARTBEAT_QUERY, 0, { snapshot: [{ pid: '812', user_time: '1200', resident_size: '41000000' }] }, 'snapshot'),
  result('pack_users_last', 5, { username: 'alice', tty: 'pts/0', host: '10.0.0.7', time: '1796637605' }),
  result('pack_net_outbound_connections', 6, {
    remote_address: '203.0.113.9',
    remote_port: '443',
    path: '/usr/bin/curl',
  }),
  result('pack_users_last', 7, { username: 'zoë', tty: 'pts/1', host: 'bastion "eu"\\west', time: '1796637607' }),
  schedule(60, 2048),
  result('pack_net_outbound_connections', 65, {
    remote_address: '198.51.100.2',
    remote_port: '22',
    path: '/usr/bin/ssh',
  }),
  result('pack_system_crontab', 70, { command: 'echo 日本 > /tmp/x\n', minute: '*/5' }),
  line(HEARTBEAT_QUERY, 300, { snapshot: [{ pid: '812', user_time: '1900', resident_size: '41200000' }] }, 'snapshot'),
  result('pack_users_last', 301, { username: 'bob', tty: 'pts/2', host: '10.0.0.8', time: '1796637901' }),
  schedule(3660, 4096),
  result('pack_users_last', 3661, { username: 'carol', tty: 'pts/3', host: '10.0.0.9', time: '1796641261' }),
];

/** The record fluentd's filters hand on: the line, log_type (first filter), identity and name (second). */
const recordOf = ({ line: l, attributes }: ShippedLine) => ({
  ...(l as Record<string, unknown>),
  log_type: attributes.log_type,
  ...IDENTITY,
  [QUERY_NAME_ATTRIBUTE]: attributes[QUERY_NAME_ATTRIBUTE],
});

/** The records through the plugin's counting, as ruby runs it. */
function throughRuby(plugin: string, settings: Record<string, unknown>, records: unknown[]) {
  const run = spawnSync(RUBY, [DRIVER, plugin, JSON.stringify(settings)], {
    input: records.map((r) => JSON.stringify(r)).join('\n'),
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(run.status, 0, run.stderr);
  return run.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The message the output makes of a record leaving the filter (fluent-plugin-gcloud-pubsub-custom's format). */
function messageOf(record: Record<string, unknown>, attributeKeys: string[]): OutgoingMessage {
  const body = Object.fromEntries(Object.entries(record).filter(([k]) => !attributeKeys.includes(k)));
  const attributes = Object.fromEntries(attributeKeys.map((k) => [k, String(record[k] ?? '')]));
  return { data: Buffer.from(`${JSON.stringify(body)}\n`), attributes };
}

const settingsOf = (conf: string) => {
  const { params } = filterOf(conf);
  return {
    attribute_keys: JSON.parse(params.get('attribute_keys')!) as string[],
    schedule_query: params.get('schedule_query')!,
  };
};

t('osquery.conf: the filter after the identity filters, before the output, with the output attribute_keys', (c) => {
  const filter = filterOf(c.conf);
  const identity = directive(c.conf, /^\s*osquery_name \$\{record\["name"\]\}$/);
  const output = directive(c.conf, /^<match osquery\.\*\*>/);
  assert.ok(identity.at < filter.at, 'after the filter that sets the identity and osquery_name');
  assert.ok(filter.at < output.at, 'before the output');
  const settings = settingsOf(c.conf);
  assert.equal(settings.attribute_keys, JSON.parse(output.params.get('attribute_keys')!), 'the output attribute_keys');
  assert.is(settings.schedule_query, SCHEDULE_QUERY);
  // The plugin adds the newline fluentd's json formatter writes unless told otherwise: the two must agree.
  assert.not.ok(/add_newline/.test(c.conf), 'neither the output format nor the filter changes the newline');
});

t('the plugin file: placed read-only in the plugin directory; ruby parses it, fluentd wrapper included', (c) => {
  const plugin = c.files.find((f) => f.vmPath === PLUGIN_VM_PATH)!;
  assert.is(plugin.source, 'fluentd/plugin/filter_osquery_shipped.rb');
  assert.is(plugin.permissions, '0644');
  const check = spawnSync(RUBY, ['-wc', c.plugin], { encoding: 'utf8', timeout: 60_000 });
  assert.is(check.status, 0, check.stderr);
  assert.match(check.stdout, /Syntax OK/);
  assert.is(check.stderr, '', 'no warnings');
});

t('the stamped counts equal the simulator shipper for the same lines; the messages are the same bytes', (c) => {
  const settings = settingsOf(c.conf);
  const out = throughRuby(c.plugin, { ...settings, since: SINCE }, SEQUENCE.map(recordOf));
  assert.is(out.length, SEQUENCE.length, 'every record passes');

  const count = newShipperCount(new Date(SINCE * 1000));
  const reference = shipLines(count, SEQUENCE, IDENTITY);
  const stamps: unknown[] = [];
  out.forEach((record, i) => {
    const message = messageOf(record, settings.attribute_keys);
    const want = reference[i]!;
    assert.is(message.data.toString('utf8'), want.data.toString('utf8'), `message ${i}: the same data`);
    assert.equal(message.attributes, want.attributes, `message ${i}: the same attributes`);
    assert.is(messageBytes(message.data, message.attributes), messageBytes(want.data, want.attributes));
    if (record[QUERY_NAME_ATTRIBUTE] === SCHEDULE_QUERY) stamps.push(record[SHIPPED_FIELD]);
    else assert.not.ok(SHIPPED_FIELD in record, `message ${i}: only the snapshot is stamped`);
  });
  assert.is(stamps.length, 2);

  // logHeartbeat reads them, nothing refused; the second covers everything before it, the first snapshot too.
  const rejected: Rejections = {};
  const [first, second] = stamps.map((s) => shippedCountsOf({ [SHIPPED_FIELD]: s }, rejected)!);
  assert.equal(rejected, {});
  assert.is(first!.since, SINCE);
  const before = (n: number, name: string) =>
    reference.slice(0, n).filter((m) => m.attributes[QUERY_NAME_ATTRIBUTE] === name);
  const sum = (ms: OutgoingMessage[]) => ms.reduce((b, m) => b + messageBytes(m.data, m.attributes), 0);
  const snapshotAt = SEQUENCE.findIndex((l) => l.attributes[QUERY_NAME_ATTRIBUTE] === SCHEDULE_QUERY);
  assert.equal(Object.keys(first!.queries), [HEARTBEAT_QUERY, 'pack_users_last', 'pack_net_outbound_connections']);
  for (const [name, c0] of Object.entries(first!.queries))
    assert.equal(c0, { lines: before(snapshotAt, name).length, bytes: sum(before(snapshotAt, name)) }, name);
  assert.equal(second!.queries[SCHEDULE_QUERY], {
    lines: 1,
    bytes: messageBytes(reference[snapshotAt]!.data, reference[snapshotAt]!.attributes),
  });
  assert.equal(second!.queries['pack_system_crontab']!.lines, 1);
  assert.equal(second!.queries[HEARTBEAT_QUERY]!.lines, 2);
  assert.equal(second!.queries['pack_users_last']!.lines, 3);
});

t('the count depends on what ships: other attribute keys or no newline give other bytes (the test can fail)', (c) => {
  const settings = settingsOf(c.conf);
  const bytesOf = (s: Record<string, unknown>) => {
    const out = throughRuby(c.plugin, { ...settings, since: SINCE, ...s }, SEQUENCE.map(recordOf));
    return (out.at(-2)![SHIPPED_FIELD] as { queries: Record<string, { bytes: number }> }).queries;
  };
  const real = bytesOf({});
  const lines = SEQUENCE.slice(0, -2).filter((l) => l.attributes[QUERY_NAME_ATTRIBUTE] === 'pack_users_last').length;
  assert.is(bytesOf({ newline: false })['pack_users_last']!.bytes, real['pack_users_last']!.bytes - lines);
  const fewer = bytesOf({ attribute_keys: settings.attribute_keys.filter((k) => k !== 'log_type') });
  assert.is.not(fewer['pack_users_last']!.bytes, real['pack_users_last']!.bytes);
});

t('a restart counts from its start; names beyond the limit logHeartbeat reads are not counted', (c) => {
  const settings = settingsOf(c.conf);
  const records = [
    ...Array.from({ length: 3 }, (_, i) => recordOf(result(`q${i}`, i, { n: String(i) }))),
    recordOf(schedule(60, 10)),
  ];
  const run = (since: number, max?: number) => {
    const out = throughRuby(c.plugin, { ...settings, since, ...(max ? { max_queries: max } : {}) }, records);
    return out.at(-1)![SHIPPED_FIELD] as { since: number; queries: Record<string, unknown> };
  };
  assert.is(run(SINCE + 3600).since, SINCE + 3600);
  assert.equal(Object.keys(run(SINCE).queries), ['q0', 'q1', 'q2']);
  assert.equal(Object.keys(run(SINCE, 2).queries), ['q0', 'q1'], 'the first names keep counting, no new one');
  // The plugin's default limit is logHeartbeat's.
  const plugin = c.files.find((f) => f.vmPath === PLUGIN_VM_PATH)!.content;
  const limit = /max_queries: (\d+)\)/.exec(plugin)?.[1];
  assert.is(Number(limit), MAX_QUERIES_PER_SNAPSHOT);
});

t.run();
