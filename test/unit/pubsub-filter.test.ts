// Pub/Sub's filter language as the local stack evaluates it (infra/local/pubsub-filter.ts), and the log
// subscription's filter (shared/osquery/log-routing.ts) against the bundle it routes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compileFilter, FilterSyntaxError, matches, parseFilter } from '../../infra/local/pubsub-filter.js';
import {
  HEARTBEAT_QUERY,
  LOG_HEARTBEAT_FILTER,
  QUERY_NAME_ATTRIBUTE,
  SCHEDULE_QUERY,
} from '../../shared/osquery/log-routing.js';
import { loadBundle } from '../../shared/osquery/bundle.js';
import { parseOsqueryJson } from '../../shared/osquery/lint.js';

const t = suite('Pub/Sub filters');

t('comparisons: has, =, !=, hasPrefix; keys and values are exact', () => {
  const a = { domain: 'com', 'ce-type': 'x.y', region: 'us-east1' };
  const yes = (f: string, attrs: Record<string, string> = a) => assert.ok(compileFilter(f)(attrs), f);
  const no = (f: string, attrs: Record<string, string> = a) => assert.not.ok(compileFilter(f)(attrs), f);
  yes('attributes:domain');
  no('attributes:Domain');
  yes('attributes.domain = "com"');
  no('attributes.domain = "COM"');
  no('attributes.other = "com"');
  yes('attributes.domain != "org"');
  no('attributes.domain != "com"');
  yes('attributes.other != "com"', a);
  yes('attributes.ce-type = "x.y"');
  yes('attributes."ce-type" = "x.y"');
  yes('hasPrefix(attributes.region, "us-")');
  no('hasPrefix(attributes.region, "eu-")');
  no('hasPrefix(attributes.missing, "")');
  yes('hasPrefix(attributes.missing, "") OR attributes:domain');
  yes('attributes.domain = "c\\x6fm"', a);
  yes('attributes.domain = "\\u0063om"');
  yes('attributes.domain="com"', a);
  yes('', {});
  yes('   ', {});
});

t('AND, OR, NOT (and -), parentheses; AND with OR needs parentheses', () => {
  const a = { domain: 'com', region: 'us' };
  const f = (text: string) => compileFilter(text)(a);
  assert.ok(f('attributes:domain AND attributes.region = "us"'));
  assert.not.ok(f('attributes:domain AND attributes.region = "eu"'));
  assert.ok(f('attributes.region = "eu" OR attributes.region = "us" OR attributes:nope'));
  assert.not.ok(f('NOT attributes:domain'));
  assert.ok(f('NOT attributes:nope'));
  assert.ok(f('-attributes:nope'));
  assert.not.ok(f('NOT (attributes:domain AND attributes:region)'));
  assert.ok(f('(attributes:nope OR attributes:domain) AND (attributes.region = "us")'));
  assert.ok(f('NOT NOT attributes:domain'));
  assert.equal(parseFilter('NOT attributes:a OR attributes:b'), {
    op: 'or',
    terms: [
      { op: 'not', term: { op: 'has', key: 'a' } },
      { op: 'has', key: 'b' },
    ],
  });
  for (const bad of [
    'attributes:a AND attributes:b OR attributes:c',
    'attributes:a and attributes:b',
    'attributes.a = com',
    'attributes.a == "x"',
    'attribute:a',
    '(attributes:a',
    'attributes:a)',
    'hasPrefix(attributes.a "x")',
    'attributes.a = "unterminated',
    'attributes.a = "\\q"',
    `attributes.a = "${'x'.repeat(256)}"`,
  ])
    assert.throws(
      () => parseFilter(bad),
      (e: unknown) => e instanceof FilterSyntaxError,
      bad,
    );
  assert.ok(matches({ op: 'all' }, {}));
});

t(
  'the log subscription filter: heartbeats, schedule snapshots and attribute-less lines pass, other results do not',
  () => {
    const passes = compileFilter(LOG_HEARTBEAT_FILTER);
    const identity = { gce_instance_id: '1', gce_project_id: 'p', gce_zone: 'z', log_type: 'snapshot' };
    assert.ok(passes({ ...identity, [QUERY_NAME_ATTRIBUTE]: HEARTBEAT_QUERY }));
    assert.ok(passes({ ...identity, [QUERY_NAME_ATTRIBUTE]: SCHEDULE_QUERY }));
    assert.ok(passes(identity), 'a shipper of an older configuration (no osquery_name) is never cut off');
    assert.not.ok(passes({ ...identity, log_type: 'result', [QUERY_NAME_ATTRIBUTE]: 'pack_network_listening_ports' }));
    assert.not.ok(passes({ ...identity, [QUERY_NAME_ATTRIBUTE]: 'pack_osquery-health_osquery_info' }));
    assert.not.ok(passes({ ...identity, [QUERY_NAME_ATTRIBUTE]: 'heartbeat2' }));
    assert.ok(Buffer.byteLength(LOG_HEARTBEAT_FILTER) <= 256, 'Pub/Sub takes at most 256 bytes');
  },
);

t('the filter names queries the bundle schedules, and the shipper sets the attribute it reads', async () => {
  const bundle = await loadBundle();
  const conf = parseOsqueryJson(bundle.files.get('osquery.conf')!) as {
    schedule: Record<
      string,
      { query: string; interval: number; snapshot?: boolean; removed?: boolean; denylist?: boolean }
    >;
    packs: Record<string, string>;
  };
  const hb = conf.schedule[HEARTBEAT_QUERY];
  assert.ok(hb, 'osquery.conf schedules the heartbeat');
  assert.equal([hb!.interval, hb!.snapshot, hb!.removed, hb!.denylist], [300, true, false, false]);
  for (const column of ['i.pid', 'i.start_time', 'p.user_time', 'p.system_time', 'p.resident_size', 'p.pid = i.pid'])
    assert.ok(hb!.query.includes(column), `the heartbeat reports ${column}`);
  const [, pack, query] = /^pack_(.+)_(osquery_schedule)$/.exec(SCHEDULE_QUERY)!;
  const packPath = conf.packs[pack!];
  assert.ok(packPath, `osquery.conf loads the ${pack} pack`);
  const packFile = `packs/${packPath!.split('/').pop()}`;
  const packConf = parseOsqueryJson(bundle.files.get(packFile)!) as {
    queries: Record<string, { query: string; snapshot?: boolean; interval: number }>;
  };
  const schedule = packConf.queries[query!];
  assert.ok(schedule?.snapshot, `${packFile} has the ${query} snapshot`);
  for (const column of [
    's.executions',
    's.user_time',
    's.system_time',
    's.output_size',
    's.denylisted',
    'worker_pid',
    'worker_start_time',
  ])
    assert.ok(schedule!.query.includes(column), `the schedule snapshot reports ${column}`);
  const fluentd = bundle.files.get('fluentd/osquery.conf')!;
  assert.match(
    fluentd,
    new RegExp(`^\\s*${QUERY_NAME_ATTRIBUTE} \\$\\{record\\["name"\\]\\}$`, 'm'),
    'copied from the line name',
  );
  const keys = JSON.parse(/^\s*attribute_keys (\[.*\])$/m.exec(fluentd)![1]!) as string[];
  assert.equal(keys, ['gce_instance_id', 'gce_project_id', 'gce_zone', 'log_type', QUERY_NAME_ATTRIBUTE]);
});

t.run();
