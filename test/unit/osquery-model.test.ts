// The linter's model of osqueryd 5.23.1: evented tables' publishers and flags, platforms, flag values.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  LINUX_EVENTED_TABLES,
  eventBufferOf,
  eventedTableStatus,
  eventsConfigOf,
  fimFlagsOn,
  inertPublisherFlags,
  rsyslogPipesOf,
  syslogPipeOf,
} from '../../shared/osquery/events.js';
import { effectiveFlags, parseBool } from '../../shared/osquery/flags.js';
import { systemsForPlatform } from '../../shared/osquery/platform.js';
import { bundledSchemaPath, loadSchema, runsOnLinux } from '../../shared/osquery/schema.js';
import { REMOVED_TABLES, TABLE_ALIASES, COLUMN_ALIASES } from '../../shared/osquery/schema-extras.js';
import { PINNED_OSQUERY_VERSION } from '../../shared/osquery/version.js';

const t = suite('osquery model');
const noConfig = eventsConfigOf({});
const status = (table: string, flagfile: string, conf: Record<string, unknown> = {}) =>
  eventedTableStatus(
    table,
    effectiveFlags(flagfile, (conf.options ?? {}) as Record<string, unknown>),
    eventsConfigOf(conf),
  );

t('every evented Linux table of the pinned schema is modelled, and nothing else', async () => {
  const schema = await loadSchema(bundledSchemaPath(PINNED_OSQUERY_VERSION)!);
  const evented = [...schema.values()].filter((table) => table.evented && runsOnLinux(table)).map((x) => x.name);
  assert.equal(evented.sort(), Object.keys(LINUX_EVENTED_TABLES).sort());
});

t("osqueryd's defaults: events on, audit off, udev on, everything else off", () => {
  const works = Object.keys(LINUX_EVENTED_TABLES).filter((table) => status(table, '')!.works);
  assert.equal(works, ['hardware_events']);
  assert.is(status('users', ''), undefined, 'not an evented table');
});

t('audit tables: --disable_audit=false is enough for process_events and user_events, each other needs its flag', () => {
  const audit = '--disable_audit=false\n';
  assert.ok(status('process_events', audit)!.works);
  assert.ok(status('user_events', audit)!.works);
  const socket = status('socket_events', audit)!;
  assert.ok(!socket.works && socket.missingFlags.map((f) => f.flag).join() === 'audit_allow_sockets');
  assert.ok(status('socket_events', `${audit}--audit_allow_sockets\n`)!.works, 'a bare boolean flag is true');
  for (const [table, flag] of [
    ['selinux_events', 'audit_allow_selinux_events'],
    ['apparmor_events', 'audit_allow_apparmor_events'],
    ['seccomp_events', 'audit_allow_seccomp_events'],
  ]) {
    assert.not.ok(status(table!, audit)!.works, table);
    assert.ok(status(table!, `${audit}--${flag}=true\n`)!.works, table);
  }
  const off = status('process_events', '--audit_allow_process_events=false\n--disable_audit=0\n')!;
  assert.ok(!off.works && /--audit_allow_process_events=true \(set to false in osquery.flags/.test(off.reason));
});

t('the reason names each missing flag with its default and source', () => {
  const s = status('socket_events', '')!;
  assert.ok(!s.works);
  assert.is(
    s.reason,
    'table socket_events returns nothing: its audit publisher needs --disable_audit=false ' +
      "(osquery's default is true; osquery/events/audit_flags.cpp) and --audit_allow_sockets=true " +
      "(osquery's default is false; osquery/events/audit_flags.cpp)",
  );
});

t('syscall-based audit tables warn without --audit_allow_config (osquery installs no rules)', () => {
  const without = status('process_events', '--disable_audit=false\n')!;
  assert.ok(without.works && /--audit_allow_config=true/.test(without.warning ?? ''));
  assert.equal(status('process_events', '--disable_audit=false\n--audit_allow_config=true\n'), { works: true });
  assert.equal(status('user_events', '--disable_audit=false\n'), { works: true }, 'user messages need no rules');
});

t('options in osquery.conf set flags too, and win over osquery.flags', () => {
  assert.ok(status('process_events', '', { options: { disable_audit: false, audit_allow_config: 'true' } })!.works);
  assert.not.ok(status('process_events', '--disable_audit=false\n', { options: { disable_audit: true } })!.works);
  // An option gflags cannot parse leaves the flag as the flagfile set it.
  assert.ok(status('process_events', '--disable_audit=false\n', { options: { disable_audit: 'maybe' } })!.works);
});

t('--disable_events=true and events.disable_subscribers turn any table off', () => {
  const off = status('hardware_events', '--disable_events=true\n')!;
  assert.ok(!off.works && /events are disabled/.test(off.reason));
  const unsubscribed = status('hardware_events', '', { events: { disable_subscribers: ['hardware_events'] } })!;
  assert.ok(!unsubscribed.works && /disable_subscribers/.test(unsubscribed.reason));
});

t('file events need --enable_file_events and file_paths; yara_events a yara category in file_paths', () => {
  const paths = { file_paths: { etc: ['/etc/%%'] } };
  assert.match((status('file_events', '--enable_file_events=true\n') as { reason: string }).reason, /no file_paths/);
  assert.ok(status('file_events', '--enable_file_events=true\n', paths)!.works);
  assert.not.ok(status('file_events', '', paths)!.works);
  const fimAudit = '--disable_audit=false\n--audit_allow_fim_events=true\n--audit_allow_config=true\n';
  assert.ok(status('process_file_events', fimAudit, paths)!.works);
  assert.not.ok(status('yara_events', '--enable_file_events=true\n', paths)!.works);
  assert.ok(
    status('yara_events', '--enable_file_events=true\n', { ...paths, yara: { file_paths: { etc: ['rules'] } } })!.works,
  );
  assert.ok(status('syslog_events', '--enable_syslog=true\n')!.works);
  assert.ok(status('bpf_process_events', '--enable_bpf_events=true\n')!.works);
  assert.equal(noConfig.filePathCategories.size, 0);
});

t('FIM is on when a file-event publisher runs', () => {
  assert.equal(fimFlagsOn(effectiveFlags('')), []);
  assert.equal(fimFlagsOn(effectiveFlags('--enable_file_events=true\n')), ['enable_file_events']);
  assert.equal(fimFlagsOn(effectiveFlags('--enable_file_events=true\n--disable_events=true\n')), []);
  assert.equal(fimFlagsOn(effectiveFlags('--audit_allow_fim_events=true\n')), [], 'audit is off by default');
  assert.equal(fimFlagsOn(effectiveFlags('--audit_allow_fim_events=true\n--disable_audit=false\n')), [
    'audit_allow_fim_events',
  ]);
});

t('syslog: the pipe osqueryd reads, inert publisher flags, the buffer flags syslog_events really uses', () => {
  assert.is(syslogPipeOf(effectiveFlags('')), null, "osquery's default: --enable_syslog=false");
  assert.is(syslogPipeOf(effectiveFlags('--enable_syslog=true\n')), '/var/osquery/syslog_pipe');
  assert.is(syslogPipeOf(effectiveFlags('--enable_syslog=true\n--syslog_pipe_path=/run/p\n')), '/run/p');
  assert.is(syslogPipeOf(effectiveFlags('--enable_syslog=true\n--disable_events=true\n')), null);
  assert.equal(inertPublisherFlags(effectiveFlags('--enable_syslog=true\n--disable_events=true\n')), [
    '--enable_syslog=true',
  ]);
  assert.equal(inertPublisherFlags(effectiveFlags('--disable_events=true\n--disable_audit=true\n')), []);
  assert.equal(inertPublisherFlags(effectiveFlags('--enable_syslog=true\n')), [], 'events on: nothing inert');
  assert.equal(eventBufferOf('syslog_events', effectiveFlags('--events_expiry=60\n')), {
    expiryFlag: 'syslog_events_expiry',
    expirySeconds: 2_592_000,
    expiryDefault: true,
    source: 'osquery/tables/events/linux/syslog_events.cpp',
  });
  assert.is(eventBufferOf('syslog_events', effectiveFlags('', { syslog_events_expiry: 1200 })).expirySeconds, 1200);
  assert.is(eventBufferOf('hardware_events', effectiveFlags('--events_expiry=60\n')).expirySeconds, 60);
  assert.equal(
    rsyslogPipesOf(
      '# *.* action(type="ompipe" Pipe="/commented")\n*.* action(type="ompipe" Pipe="/a" template="T")\n' +
        'auth.* action(pipe="/b" type="ompipe")\n*.* |/var/legacy_pipe;Fmt\n*.* /var/log/file\n',
    ),
    ['/a', '/b', '/var/legacy_pipe'],
  );
});

t("platforms: osquery's substring rules", () => {
  const on = (p: unknown) => [...systemsForPlatform(p)].sort().join(',');
  assert.is(on(undefined), 'darwin,linux,windows');
  assert.is(on(''), 'darwin,linux,windows');
  assert.is(on(42), 'darwin,linux,windows', 'osquery reads only strings');
  assert.is(on('all'), 'darwin,linux,windows');
  assert.is(on('any'), 'darwin,linux,windows');
  assert.is(on('linux'), 'linux');
  assert.is(on('ubuntu'), 'linux');
  assert.is(on('centos'), 'linux');
  assert.is(on('posix'), 'darwin,linux');
  assert.is(on('darwin'), 'darwin');
  assert.is(on('windows,darwin'), 'darwin,windows');
  assert.is(on('gentoo'), '');
  assert.is(on('freebsd'), '', 'osquery 5 is not built for FreeBSD');
});

t('gflags booleans', () => {
  for (const v of ['true', 'TRUE', '1', 't', 'yes', 'y']) assert.is(parseBool(v), true, v);
  for (const v of ['false', '0', 'f', 'no', 'N']) assert.is(parseBool(v), false, v);
  assert.is(parseBool('flase'), null);
  assert.is(effectiveFlags('--nodisable_audit\n').bool('disable_audit', true), false);
  assert.is(effectiveFlags('-disable_audit=false\n').bool('disable_audit', true), false);
});

t('schema extras: removed tables are absent from the pinned schema, aliases point at tables that exist', async () => {
  const schema = await loadSchema(bundledSchemaPath(PINNED_OSQUERY_VERSION)!);
  for (const name of Object.keys(REMOVED_TABLES)) assert.not.ok(schema.has(name), name);
  for (const [alias, target] of Object.entries(TABLE_ALIASES)) {
    assert.ok(schema.has(target), target);
    assert.not.ok(schema.has(alias), alias);
    assert.not.ok(REMOVED_TABLES[alias], `${alias} is an alias, not removed`);
  }
  for (const [table, columns] of Object.entries(COLUMN_ALIASES))
    for (const target of Object.values(columns))
      assert.ok(
        schema.get(table)!.columns.some((c) => c.name === target),
        `${table}.${target}`,
      );
});

t.run();
