// The bundle linter against the osquery schema of the pinned version (kept in the repository; see NOTICE).
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadBundle, DEFAULT_BUNDLE_DIR } from '../shared/osquery/bundle.js';
import { formatFinding, lintBundle, type Finding } from '../shared/osquery/lint.js';
import { loadSchema, type OsquerySchema, bundledSchemaPath } from '../shared/osquery/schema.js';
import { PINNED_OSQUERY_VERSION } from '../shared/osquery/version.js';

export const SCHEMA_PATH = bundledSchemaPath(PINNED_OSQUERY_VERSION)!;
const t = suite<{ schema: OsquerySchema }>('bundle linter');
t.before(async (ctx) => {
  ctx.schema = await loadSchema(SCHEMA_PATH);
});

const FLAGS = '--disable_events=true\n--watchdog_utilization_limit=10\n';

async function lint(
  schema: OsquerySchema,
  conf: unknown,
  extra: Record<string, string> = {},
  flags = FLAGS,
  options = { budgetPerHour: 60, minIntervalSeconds: 300 },
) {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
  const files: Record<string, string> = {
    'osquery.flags': flags,
    'osquery.conf': typeof conf === 'string' ? conf : JSON.stringify(conf),
    ...extra,
  };
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  return lintBundle(await loadBundle(dir), schema, options);
}
const reasons = (findings: Finding[]) => findings.filter((f) => f.severity === 'error').map((f) => f.reason);
const q = (query: string, interval: unknown = 3600, more: Record<string, unknown> = {}) => ({
  query,
  interval,
  ...more,
});

t('the default bundle lints clean', async ({ schema }) => {
  const result = lintBundle(await loadBundle(DEFAULT_BUNDLE_DIR), schema);
  assert.equal(result.findings.map(formatFinding), []);
  assert.ok(result.queries >= 15, `${result.queries} queries`);
  assert.ok(result.executionsPerHour <= 60);
});

t('a clean minimal bundle has no findings and counts executions', async ({ schema }) => {
  const r = await lint(schema, {
    schedule: {
      hb: q('SELECT unix_time FROM time', 300, { removed: false, denylist: false }),
      users: q('SELECT uid, username FROM users', '3600'),
    },
  });
  assert.equal(r.findings, []);
  assert.is(r.executionsPerHour, 13);
});

t("unknown tables, unknown columns and syntax errors carry SQLite's message", async ({ schema }) => {
  const r = await lint(schema, {
    schedule: { a: q('SELECT * FROM no_such_table'), b: q('SELECT nope FROM users'), c: q('SELEC * FROM users') },
  });
  const byQuery = Object.fromEntries(r.findings.map((f) => [f.query, f.reason]));
  assert.match(byQuery.a!, /unknown table no_such_table \(SQLite: no such table: no_such_table\)/);
  assert.match(byQuery.b!, /SQLite: no such column: nope/);
  assert.match(byQuery.c!, /SQLite: near "SELEC": syntax error/);
});

t('hidden columns and osquery SQL functions prepare', async ({ schema }) => {
  const r = await lint(schema, {
    schedule: {
      a: q("SELECT pid, regex_match(cmdline, 'ssh', 0) AS m, sha256(name) FROM processes WHERE cmdline != ''"),
    },
  });
  assert.equal(r.findings, []);
});

t('tables not on Linux, evented tables with events disabled', async ({ schema }) => {
  const r = await lint(schema, {
    schedule: { win: q('SELECT * FROM services'), ev: q('SELECT * FROM process_events') },
  });
  assert.ok(reasons(r.findings).some((x) => /table services is not available on Linux/.test(x)));
  assert.ok(reasons(r.findings).some((x) => /process_events is evented but events are disabled/.test(x)));
  const enabled = await lint(
    schema,
    { schedule: { ev: q('SELECT * FROM process_events') } },
    {},
    '--disable_events=false\n',
  );
  assert.equal(reasons(enabled.findings), []);
  const darwinOnly = await lint(schema, {
    schedule: { mac: q('SELECT * FROM launchd', 3600, { platform: 'darwin' }) },
  });
  assert.equal(reasons(darwinOnly.findings), [], 'a query for another platform is not held to Linux');
});

t('file and hash need a path or directory constraint', async ({ schema }) => {
  const r = await lint(schema, {
    schedule: {
      bad: q('SELECT * FROM file'),
      badhash: q('SELECT h.sha256 FROM hash h JOIN users u ON u.uid = 0'),
      eq: q("SELECT * FROM file WHERE path = '/etc/passwd'"),
      dir: q("SELECT f.path FROM file AS f WHERE f.directory IN ('/etc', '/usr/bin')"),
      like: q("SELECT * FROM hash WHERE path LIKE '/etc/%%'"),
      join: q('SELECT h.md5 FROM processes p JOIN hash h ON h.path = p.path'),
    },
  });
  const bad = r.findings.map((f) => f.query);
  assert.equal(bad.sort(), ['bad', 'badhash']);
  assert.match(r.findings[0]!.reason, /needs a constraint on path or directory/);
});

t('structure: keys, fields, intervals, platforms, startup-only options, watchdog', async ({ schema }) => {
  const r = await lint(
    schema,
    {
      options: { watchdog_memory_limit: 300, host_identifier: 'uuid', schedule_splay_percent: 10 },
      schedule: {
        i0: q('SELECT 1', 0),
        ibig: q('SELECT 1', 604801),
        istr: q('SELECT 1', 'hourly'),
        fast: q('SELECT 1', 60),
        plat: q('SELECT 1', 3600, { platform: 'plan9' }),
        field: q('SELECT 1', 3600, { intervall: 5 }),
      },
      extra_key: {},
    },
    {},
    '--watchdog_utilization_limit=130\nnot a flag\n',
  );
  const all = reasons(r.findings).join('\n');
  for (const pattern of [
    /unknown top-level key "extra_key"/,
    /options.watchdog_memory_limit is a startup-only flag/,
    /options.host_identifier is a startup-only flag/,
    /interval 0 must be/,
    /interval 604801 must be/,
    /interval "hourly" must be/,
    /interval 60 s is shorter than the 300 s minimum/,
    /unknown platform "plan9"/,
    /unknown query field "intervall"/,
    /watchdog_utilization_limit 130 is above 100/,
    /line 2 is not --name=value/,
  ])
    assert.match(all, pattern);
  assert.not.match(all, /schedule_splay_percent/);
});

t('packs: by path, missing files, unreferenced files, pack fields, budget', async ({ schema }) => {
  const pack = JSON.stringify({
    platform: 'linux',
    queries: { ports: q('SELECT port FROM listening_ports', '1800'), typo: q('SELECT * FROM listening_portz') },
  });
  const r = await lint(
    schema,
    { packs: { net: '/etc/osquery/packs/net.conf', gone: '/etc/osquery/packs/gone.conf' } },
    { 'packs/net.conf': pack, 'packs/orphan.conf': '{"queries": {}}' },
    FLAGS,
    { budgetPerHour: 1, minIntervalSeconds: 300 },
  );
  const lines = r.findings.map(formatFinding);
  assert.ok(
    lines.includes(
      'error packs/net.conf pack=net query=typo: unknown table listening_portz (SQLite: no such table: listening_portz)',
    ),
    lines.join('\n'),
  );
  assert.ok(lines.some((l) => /pack=gone: pack path \/etc\/osquery\/packs\/gone.conf is not in the bundle/.test(l)));
  assert.ok(lines.some((l) => /^warning packs\/orphan.conf: pack file is not referenced/.test(l)));
  assert.ok(
    lines.some((l) => /projected 3 query executions per host per hour exceed the budget of 1/.test(l)),
    lines.join('\n'),
  );
});

t('shards count by their share of hosts', async ({ schema }) => {
  const r = await lint(schema, { schedule: { a: q('SELECT 1', 360, { shard: 50 }) } });
  assert.is(r.executionsPerHour, 5);
});

t('decorators are checked as SQL, interval keys multiples of 60', async ({ schema }) => {
  const r = await lint(schema, {
    decorators: {
      load: ['SELECT uuid FROM system_info'],
      always: ['SELECT nope FROM system_info'],
      interval: { '90': ['SELECT 1'] },
    },
  });
  assert.equal(reasons(r.findings).length, 2);
});

t.run();
