// The bundle linter against the osquery schema of the pinned version (kept in the repository; see NOTICE).
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadBundle, DEFAULT_BUNDLE_DIR } from '../../shared/osquery/bundle.js';
import {
  DEFAULT_LINT_OPTIONS,
  formatFinding,
  lintBundle,
  type Finding,
  type LintOptions,
} from '../../shared/osquery/lint.js';
import { lintOptionsFor } from '../../shared/osquery/lint-policy.js';
import { LINUX_EVENTED_TABLES, eventedTableStatus, eventsConfigOf, fimFlagsOn } from '../../shared/osquery/events.js';
import { effectiveFlags } from '../../shared/osquery/flags.js';
import { loadSchema, type OsquerySchema, bundledSchemaPath } from '../../shared/osquery/schema.js';
import { PINNED_OSQUERY_VERSION } from '../../shared/osquery/version.js';

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
  flags: string | null = FLAGS,
  options: Partial<LintOptions> = {},
) {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
  const files: Record<string, string> = {
    ...(flags === null ? {} : { 'osquery.flags': flags }),
    'osquery.conf': typeof conf === 'string' ? conf : JSON.stringify(conf),
    ...extra,
  };
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  const bundle = await loadBundle(dir);
  return lintBundle(bundle, schema, lintOptionsFor(bundle, options));
}
const reasons = (findings: Finding[]) => findings.filter((f) => f.severity === 'error').map((f) => f.reason);
const warnings = (findings: Finding[]) => findings.filter((f) => f.severity === 'warning').map((f) => f.reason);
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

t('tables not on Linux; evented tables with --disable_events=true return nothing', async ({ schema }) => {
  const r = await lint(schema, {
    schedule: { win: q('SELECT * FROM services'), ev: q('SELECT * FROM process_events') },
  });
  assert.ok(reasons(r.findings).some((x) => /table services is not available on Linux/.test(x)));
  assert.ok(reasons(r.findings).some((x) => /process_events is evented but events are disabled/.test(x)));
  const darwinOnly = await lint(schema, {
    schedule: { mac: q('SELECT * FROM launchd', 3600, { platform: 'darwin' }) },
  });
  assert.equal(reasons(darwinOnly.findings), [], 'a query for another platform is not held to Linux');
});

// osqueryd runs with events on (--disable_events defaults to false); audit tables need the audit publisher.
t('an audit-based evented table: broken without --disable_audit=false, working with it', async ({ schema }) => {
  const conf = { schedule: { procs: q('SELECT pid, path, cmdline FROM process_events') } };
  const without = await lint(schema, conf, {}, '--watchdog_utilization_limit=10\n');
  assert.equal(without.findings.map(formatFinding), [
    'error broken osquery.conf query=procs: table process_events returns nothing: its audit publisher needs ' +
      "--disable_audit=false (osquery's default is true; osquery/events/audit_flags.cpp)",
  ]);
  const audit = await lint(schema, conf, {}, '--disable_audit=false\n');
  assert.equal(reasons(audit.findings), [], 'working: no error');
  assert.match(
    warnings(audit.findings).join('\n'),
    /only what the host's own audit rules record.*--audit_allow_config=true/,
  );
  const configured = await lint(schema, conf, {}, '--disable_audit=false\n--audit_allow_config=true\n');
  assert.equal(configured.findings, []);
  const viaOptions = await lint(
    schema,
    { ...conf, options: { disable_audit: false, audit_allow_config: true } },
    {},
    '--watchdog_utilization_limit=10\n',
  );
  assert.equal(viaOptions.findings, [], 'flags set in the config options count');
});

t('socket_events needs --audit_allow_sockets; the finding names the missing flag', async ({ schema }) => {
  const conf = { schedule: { sockets: q('SELECT pid, remote_address FROM socket_events') } };
  const r = await lint(schema, conf, {}, '--disable_audit=false\n--audit_allow_config=true\n');
  assert.equal(reasons(r.findings), [
    'table socket_events returns nothing: its audit publisher needs --audit_allow_sockets=true ' +
      "(osquery's default is false; osquery/events/audit_flags.cpp)",
  ]);
  const ok = await lint(schema, conf, {}, '--disable_audit=false\n--audit_allow_config=true\n--audit_allow_sockets\n');
  assert.equal(ok.findings, []);
});

t('other publishers: file_events, syslog_events, hardware_events', async ({ schema }) => {
  const conf = {
    schedule: {
      files: q('SELECT target_path FROM file_events'),
      logs: q('SELECT message FROM syslog_events'),
      usb: q('SELECT action FROM hardware_events'),
    },
    file_paths: { etc: ['/etc/%%'] },
  };
  const r = await lint(schema, conf, {}, '', { policy: 'off' });
  assert.equal(reasons(r.findings).sort(), [
    'table file_events returns nothing: its inotify publisher needs --enable_file_events=true ' +
      "(osquery's default is false; osquery/events/file_events_flags.cpp)",
    'table syslog_events returns nothing: its syslog publisher needs --enable_syslog=true ' +
      "(osquery's default is false; osquery/events/linux/syslog.cpp)",
  ]);
  // With the publishers on, and the rsyslog rule that feeds osquery's pipe (without it, a warning says so).
  const rule = { 'rsyslog/60-osquery.conf': '*.* action(type="ompipe" Pipe="/var/osquery/syslog_pipe")\n' };
  const flagsOn = '--enable_file_events=true\n--enable_syslog=true\n';
  const on = await lint(schema, conf, rule, flagsOn, { policy: 'off' });
  assert.equal(on.findings, []);
});

const RULE = (pipe = '/var/osquery/syslog_pipe') => ({
  'rsyslog/60-osquery.conf':
    'template(name="T" type="string" string="%msg%\\n")\n' + `*.* action(type="ompipe" Pipe="${pipe}" template="T")\n`,
});
const SYSLOG_ON = '--enable_syslog=true\n--syslog_events_expiry=1200\n--watchdog_utilization_limit=10\n';
const syslogConf = { schedule: { logs: q('SELECT message FROM syslog_events', 300, { removed: false }) } };

t(
  'syslog turned on while --disable_events=true (the bundle before issue 27): an error, and the rule reads nothing',
  async ({ schema }) => {
    const r = await lint(schema, {}, RULE(), '--disable_events=true\n--enable_syslog=true\n');
    assert.equal(r.findings.map(formatFinding), [
      'error broken osquery.flags: --enable_syslog=true does nothing while --disable_events=true: osquery sets up ' +
        'no event publisher (osquery/events/eventfactory.cpp)',
      'warning broken rsyslog/60-osquery.conf: writes to /var/osquery/syslog_pipe, but osqueryd reads no syslog ' +
        '(--enable_syslog=false or --disable_events=true)',
    ]);
    // Reading syslog_events with events off stays broken, as before.
    const read = await lint(schema, syslogConf, RULE(), `--disable_events=true\n${SYSLOG_ON}`);
    assert.ok(reasons(read.findings).some((x) => /syslog_events is evented but events are disabled/.test(x)));
  },
);

t(
  'the rsyslog rule must write to the pipe osqueryd reads; each without the other ingests nothing',
  async ({ schema }) => {
    const ok = await lint(schema, syslogConf, RULE(), SYSLOG_ON);
    assert.equal(ok.findings, []);
    const elsewhere = await lint(schema, syslogConf, RULE('/tmp/pipe'), SYSLOG_ON);
    assert.equal(reasons(elsewhere.findings), [
      'writes to /tmp/pipe, but osqueryd reads /var/osquery/syslog_pipe (--syslog_pipe_path): nothing arrives',
    ]);
    const moved = await lint(schema, syslogConf, RULE('/run/osq'), `${SYSLOG_ON}--syslog_pipe_path=/run/osq\n`);
    assert.equal(moved.findings, [], 'both moved together');
    const noRule = await lint(schema, syslogConf, {}, SYSLOG_ON);
    assert.equal(warnings(noRule.findings), [
      'osqueryd reads syslog from /var/osquery/syslog_pipe, but no rsyslog rule in the bundle writes to it ' +
        '(rsyslog/*.conf)',
    ]);
    const off = await lint(schema, {}, RULE(), '--enable_syslog=false\n');
    assert.match(warnings(off.findings).join(), /osqueryd reads no syslog/);
    assert.equal(reasons(off.findings), []);
  },
);

t(
  "syslog_events' buffer: its own expiry (osquery's default 30 days), not --events_expiry, at most a day by policy",
  async ({ schema }) => {
    const unbounded = await lint(schema, syslogConf, RULE(), '--enable_syslog=true\n--events_expiry=60\n');
    assert.equal(reasons(unbounded.findings), [
      "table syslog_events keeps its rows 2592000 s (--syslog_events_expiry, osquery's default; " +
        'osquery/tables/events/linux/syslog_events.cpp): at most 86400 s by policy',
    ]);
    assert.is(unbounded.findings[0]!.kind, 'policy');
    const week = await lint(schema, syslogConf, RULE(), '--enable_syslog=true\n--syslog_events_expiry=604800\n');
    assert.match(reasons(week.findings).join(), /keeps its rows 604800 s \(--syslog_events_expiry;/);
    assert.equal((await lint(schema, syslogConf, RULE(), SYSLOG_ON)).findings, []);
  },
);

t('the default bundle ingests syslog and nothing else evented, every 300 s', async () => {
  const bundle = await loadBundle(DEFAULT_BUNDLE_DIR);
  const conf = JSON.parse(bundle.files.get('osquery.conf')!);
  assert.equal(conf.events.disable_subscribers, ['hardware_events'], "udev's table has no flag: unsubscribed");
  const pack = JSON.parse(bundle.files.get('packs/syslog.conf')!);
  assert.is(pack.queries.syslog_events.interval, DEFAULT_LINT_OPTIONS.minIntervalSeconds);
  assert.is(pack.queries.syslog_events.removed, false);
  const flags = effectiveFlags(bundle.files.get('osquery.flags')!, conf.options);
  const on = Object.keys(LINUX_EVENTED_TABLES).filter(
    (table) => eventedTableStatus(table, flags, eventsConfigOf(conf))?.works,
  );
  assert.equal(on, ['syslog_events']);
  assert.equal(fimFlagsOn(flags), [], 'no file integrity monitoring');
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

t('structure: intervals, startup-only options, watchdog, flag lines', async ({ schema }) => {
  const r = await lint(
    schema,
    {
      options: { watchdog_memory_limit: 300, host_identifier: 'uuid', schedule_splay_percent: 10 },
      schedule: {
        i0: q('SELECT 1', 0),
        ibig: q('SELECT 1', 604801),
        istr: q('SELECT 1', 'hourly'),
        fast: q('SELECT 1', 60),
        'query.reserved': q('SELECT 1'),
      },
    },
    {},
    '--watchdog_utilization_limit=130\nnot a flag\n',
  );
  const all = reasons(r.findings).join('\n');
  for (const pattern of [
    /options.watchdog_memory_limit is a startup-only flag/,
    /interval 0 must be/,
    /interval 604801 must be/,
    /interval "hourly" must be/,
    /interval 60 s is shorter than the 300 s minimum/,
    /watchdog_utilization_limit 130 is above 100/,
    /line 2 is not --name=value/,
    /reserved prefix or suffix/,
  ])
    assert.match(all, pattern);
  // host_identifier is a plain FLAG: osquery applies it from the config's options.
  assert.not.match(all, /host_identifier|schedule_splay_percent/);
  const kindOf = (pattern: RegExp) => r.findings.find((f) => pattern.test(f.reason))?.kind;
  assert.is(kindOf(/interval 60 s is shorter/), 'policy');
  assert.is(kindOf(/interval 0 must be/), 'broken');
  assert.is(kindOf(/watchdog_utilization_limit 130/), 'broken');
});

// osquery's config parsers read their own keys and ignore the rest (osquery/config/config.cpp applyParsers).
t('unknown keys are warnings, not errors: top level, pack, query, decorator kind', async ({ schema }) => {
  const r = await lint(schema, {
    platform: 'linux',
    extra_key: {},
    schedule: { field: q('SELECT 1', 3600, { intervall: 5 }), old: q('SELECT 1', 3600, { blacklist: false }) },
    packs: { p: { queries: {}, owner: 'me' } },
    decorators: { sometimes: ['SELECT 1'] },
  });
  assert.equal(reasons(r.findings), []);
  const all = warnings(r.findings).join('\n');
  for (const pattern of [
    /unknown top-level key "platform": osquery ignores it/,
    /unknown top-level key "extra_key"/,
    /unknown query field "intervall"/,
    /unknown pack key "owner"/,
    /unknown decorator kind "sometimes"/,
    /osquery 5 ignores "blacklist"/,
  ])
    assert.match(all, pattern);
});

t('a query without an interval runs every schedule_default_interval (3600 s unless set)', async ({ schema }) => {
  const r = await lint(schema, { schedule: { a: { query: 'SELECT 1' } } });
  assert.equal(r.findings, []);
  assert.is(r.executionsPerHour, 1);
  const set = await lint(schema, {
    options: { schedule_default_interval: 600 },
    schedule: { a: { query: 'SELECT 1' } },
  });
  assert.is(set.executionsPerHour, 6);
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
    { budgetPerHour: 1 },
  );
  const lines = r.findings.map(formatFinding);
  assert.ok(
    lines.includes(
      'error broken packs/net.conf pack=net query=typo: unknown table listening_portz ' +
        '(SQLite: no such table: listening_portz)',
    ),
    lines.join('\n'),
  );
  assert.ok(lines.some((l) => /pack=gone: pack path \/etc\/osquery\/packs\/gone.conf is not in the bundle/.test(l)));
  assert.ok(lines.some((l) => /^warning broken packs\/orphan.conf: pack file is not referenced/.test(l)));
  assert.ok(
    lines.some((l) =>
      /^error policy osquery.conf: projected 3 query executions per host per hour exceed the budget of 1/.test(l),
    ),
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

// osquery/core/system.cpp checkPlatform: substring matches; ubuntu and centos are Linux.
t('platforms ubuntu, centos, posix run on Linux, at pack and query level', async ({ schema }) => {
  const pack = (platform: string) => JSON.stringify({ platform, queries: { users: q('SELECT uid FROM users', 3600) } });
  const r = await lint(
    schema,
    {
      schedule: {
        deb: q('SELECT name FROM deb_packages', 3600, { platform: 'ubuntu' }),
        rpm: q('SELECT name FROM rpm_packages', 3600, { platform: 'centos' }),
        cron: q('SELECT command FROM crontab', 3600, { platform: 'posix' }),
      },
      packs: {
        u: '/etc/osquery/packs/u.conf',
        c: '/etc/osquery/packs/c.conf',
        p: '/etc/osquery/packs/p.conf',
      },
    },
    { 'packs/u.conf': pack('ubuntu'), 'packs/c.conf': pack('centos'), 'packs/p.conf': pack('posix') },
  );
  assert.equal(r.findings, []);
  assert.is(r.executionsPerHour, 6, 'all six run on Linux and count against the budget');
});

t(
  'platforms gentoo and darwin never run on Linux: a warning, the SQL still checked for that platform',
  async ({ schema }) => {
    const pack = (platform: string, sql: string) => JSON.stringify({ platform, queries: { a: q(sql, 60) } });
    const r = await lint(
      schema,
      {
        schedule: {
          portage: q('SELECT package FROM portage_packages', 3600, { platform: 'gentoo' }),
          portage_typo: q('SELECT nope FROM portage_packages', 3600, { platform: 'gentoo' }),
          mac: q('SELECT label FROM launchd', 3600, { platform: 'darwin' }),
          mac_win: q('SELECT name FROM services', 3600, { platform: 'darwin' }),
        },
        packs: { g: '/etc/osquery/packs/g.conf', d: '/etc/osquery/packs/d.conf' },
      },
      {
        'packs/g.conf': pack('gentoo', 'SELECT package FROM portage_packages'),
        'packs/d.conf': pack('darwin', 'SELECT nope FROM launchd'),
      },
    );
    const lines = r.findings.map(formatFinding);
    for (const line of [
      'warning broken osquery.conf query=portage: platform "gentoo" never runs on Linux, ' +
        'nor anywhere else osquery runs (osquery/core/system.cpp checkPlatform)',
      'warning broken osquery.conf query=mac: platform "darwin" never runs on Linux ' +
        '(osquery/core/system.cpp checkPlatform)',
      'warning broken packs/g.conf pack=g: platform "gentoo" never runs on Linux, nor anywhere else osquery runs ' +
        '(osquery/core/system.cpp checkPlatform)',
      'warning broken packs/d.conf pack=d: platform "darwin" never runs on Linux ' +
        '(osquery/core/system.cpp checkPlatform)',
      'error broken osquery.conf query=portage_typo: SQLite: no such column: nope',
      'error broken osquery.conf query=mac_win: table services is not available on darwin (windows)',
      'error broken packs/d.conf pack=d query=a: SQLite: no such column: nope',
    ])
      assert.ok(lines.includes(line), `${line}\n---\n${lines.join('\n')}`);
    assert.is(lines.length, 9, lines.join('\n'));
    assert.is(r.executionsPerHour, 0, 'nothing runs on Linux: no cost, no interval policy');
  },
);

t('the policy: errors by default, warnings with warn, gone with off; broken findings stay', async ({ schema }) => {
  const conf = {
    schedule: {
      fast: q('SELECT 1', 10),
      typo: q('SELECT nope FROM users'),
    },
  };
  const on = await lint(schema, conf, {}, FLAGS, { budgetPerHour: 100 });
  assert.equal(
    on.findings.map((f) => [f.severity, f.kind]),
    [
      ['error', 'policy'],
      ['error', 'broken'],
      ['error', 'policy'],
    ],
  );
  const warn = await lint(schema, conf, {}, FLAGS, { budgetPerHour: 100, policy: 'warn' });
  assert.equal(
    warn.findings.map((f) => [f.severity, f.kind]),
    [
      ['warning', 'policy'],
      ['error', 'broken'],
      ['warning', 'policy'],
    ],
  );
  const off = await lint(schema, conf, {}, FLAGS, { policy: 'off' });
  assert.equal(off.findings.map(formatFinding), ['error broken osquery.conf query=typo: SQLite: no such column: nope']);
  assert.is(off.executionsPerHour, 361, 'the cost is still measured');
});

t('FIM and a missing osquery.flags are policy findings', async ({ schema }) => {
  const conf = { schedule: { a: q('SELECT 1') } };
  const fim = await lint(schema, conf, {}, '--enable_file_events=true\n');
  assert.equal(fim.findings.map(formatFinding), [
    'error policy osquery.flags: file integrity monitoring is off by policy: --enable_file_events turns it on',
  ]);
  const noFlags = await lint(schema, conf, {}, null);
  assert.equal(
    noFlags.findings.map((f) => [f.kind, f.file]),
    [['policy', 'osquery.flags']],
  );
  assert.equal((await lint(schema, conf, {}, null, { policy: 'off' })).findings, []);
});

t(
  'lint-policy.json beside osquery.conf sets the policy; options given win; a bad file is an error',
  async ({ schema }) => {
    const conf = { schedule: { fast: q('SELECT 1', 60) } };
    const file = (json: unknown) => ({ 'lint-policy.json': JSON.stringify(json) });
    assert.equal((await lint(schema, conf, file({ policy: 'off' }))).findings, []);
    assert.equal((await lint(schema, conf, file({ minIntervalSeconds: 60 }))).findings, []);
    assert.is((await lint(schema, conf, file({ policy: 'off' }), FLAGS, { policy: 'on' })).findings.length, 1);
    for (const bad of [{ policy: 'of' }, { budget: 5 }, 'not json'])
      await lint(schema, conf, typeof bad === 'string' ? { 'lint-policy.json': bad } : file(bad)).then(
        () => assert.unreachable(`${JSON.stringify(bad)} accepted`),
        (error: Error) => assert.match(error.message, /lint-policy.json/),
      );
    assert.equal(DEFAULT_LINT_OPTIONS, { budgetPerHour: 60, minIntervalSeconds: 300, policy: 'on' });
  },
);

t('removed tables say when osquery removed them; aliases osquery accepts prepare', async ({ schema }) => {
  const r = await lint(schema, {
    schedule: {
      integrity: q('SELECT * FROM kernel_integrity'),
      opera: q('SELECT name FROM opera_extensions'),
      hosts: q('SELECT address, hostnames FROM hosts'),
      schedule: q('SELECT name, blacklisted FROM osquery_schedule'),
      time: q('SELECT date_time FROM time'),
    },
  });
  assert.equal(r.findings.map(formatFinding), [
    'error broken osquery.conf query=integrity: unknown table kernel_integrity: removed in osquery 4.1.1, ' +
      'it read the retired osquery kernel extension (SQLite: no such table: kernel_integrity)',
    'error broken osquery.conf query=opera: unknown table opera_extensions: removed in osquery 4.7.0, ' +
      "chrome_extensions covers Opera (browser_type = 'opera') (SQLite: no such table: opera_extensions)",
  ]);
});

t('config and packs: line continuations and whole-line comments, as osquery strips them', async ({ schema }) => {
  const pack = [
    '{',
    '  // osquery drops comment lines',
    '  # and these',
    '  "queries": {',
    '    "users": {',
    '      "query": "SELECT uid FROM users \\',
    '        WHERE uid = 0;",',
    '      "interval": 3600',
    '    }',
    '  }',
    '}',
  ].join('\n');
  const r = await lint(schema, '{\n# comment\n"packs": {"p": "/etc/osquery/packs/p.conf"}\n}', {
    'packs/p.conf': pack,
  });
  assert.equal(r.findings, []);
  assert.is(r.queries, 1);
});

t.run();
