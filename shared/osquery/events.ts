// Whether a Linux evented table has rows under osqueryd 5.23.1. Events are on in osqueryd
// (--disable_events defaults to false: osquery/events/eventfactory.cpp; only the shell turns them off,
// osquery/core/init.cpp). What decides it is the table's publisher, which must set up, and its subscriber,
// whose init() must succeed (osquery/events/eventfactory.cpp registerEventSubscriber): each has flags with
// osquery's defaults, modelled below from osquery's source. Pure.
import type { EffectiveFlags } from './flags.js';

/** A boolean flag a publisher or subscriber needs, and osquery's default for it. */
export interface FlagNeed {
  flag: string;
  needs: boolean;
  osqueryDefault: boolean;
  /** osquery source file that declares and reads the flag. */
  source: string;
}

const need = (flag: string, needs: boolean, osqueryDefault: boolean, source: string): FlagNeed => ({
  flag,
  needs,
  osqueryDefault,
  source,
});

export type PublisherName = 'audit' | 'bpf' | 'inotify' | 'syslog' | 'udev';

/** Linux event publishers and the flags their setUp() checks. */
export const PUBLISHERS: Record<PublisherName, { flags: FlagNeed[]; source: string }> = {
  // IsPublisherEnabled(): --disable_audit=false and one audit_allow_* on (each table below needs its own).
  audit: {
    flags: [need('disable_audit', false, true, 'osquery/events/audit_flags.cpp')],
    source: 'osquery/events/linux/auditeventpublisher.cpp',
  },
  bpf: {
    flags: [need('enable_bpf_events', true, false, 'osquery/events/linux/bpf/bpfeventpublisher.cpp')],
    source: 'osquery/events/linux/bpf/bpfeventpublisher.cpp',
  },
  inotify: {
    flags: [need('enable_file_events', true, false, 'osquery/events/file_events_flags.cpp')],
    source: 'osquery/events/linux/inotify.cpp',
  },
  syslog: {
    flags: [need('enable_syslog', true, false, 'osquery/events/linux/syslog.cpp')],
    source: 'osquery/events/linux/syslog.cpp',
  },
  udev: { flags: [], source: 'osquery/events/linux/udev.cpp' },
};

/** osqueryd's --syslog_pipe_path default (osquery/events/linux/syslog.cpp:40-43). */
export const DEFAULT_SYSLOG_PIPE = '/var/osquery/syslog_pipe';

/**
 * The pipe osqueryd creates and reads syslog from with these flags, or null when it reads none: events off
 * (no publisher is set up: osquery/events/eventfactory.cpp:147) or --enable_syslog off (syslog.cpp:142).
 */
export function syslogPipeOf(flags: EffectiveFlags): string | null {
  if (flags.bool('disable_events', false) || !flags.bool('enable_syslog', false)) return null;
  return flags.text('syslog_pipe_path') ?? DEFAULT_SYSLOG_PIPE;
}

/**
 * Publisher flags set to turn a publisher on while --disable_events=true makes them do nothing (osquery sets
 * up no publisher then: osquery/events/eventfactory.cpp:147): the configuration says it collects, and
 * osquery collects nothing.
 */
export function inertPublisherFlags(flags: EffectiveFlags): string[] {
  if (!flags.bool('disable_events', false)) return [];
  return Object.values(PUBLISHERS)
    .flatMap((p) => p.flags)
    .filter(
      (f) => f.needs !== f.osqueryDefault && flags.origin(f.flag) && flags.bool(f.flag, f.osqueryDefault) === f.needs,
    )
    .map((f) => `--${f.flag}=${f.needs}`);
}

/** How long an evented table keeps rows, and the flag that says so (osquery 5.23.1's defaults). */
export interface EventBuffer {
  expiryFlag: string;
  expirySeconds: number;
  /** osquery's default applies (the flag is not set). */
  expiryDefault: boolean;
  source: string;
}

/**
 * syslog_events overrides getEventsExpiry/getEventBatchesMax with its own flags
 * (osquery/tables/events/linux/syslog_events.cpp:21-46): --events_expiry does not bound it. Every other
 * subscriber uses --events_expiry (osquery/events/eventsubscriberplugin.cpp:80).
 */
export function eventBufferOf(table: string, flags: EffectiveFlags): EventBuffer {
  const [flag, fallback, source] =
    table === 'syslog_events'
      ? ['syslog_events_expiry', 30 * 86_400, 'osquery/tables/events/linux/syslog_events.cpp']
      : ['events_expiry', 3600, 'osquery/events/eventsubscriberplugin.cpp'];
  const text = flags.text(flag);
  const value = text !== undefined && /^\d+$/.test(text.trim()) ? Number(text) : null;
  return { expiryFlag: flag, expirySeconds: value ?? fallback, expiryDefault: value === null, source };
}

/** The rsyslog rule's ompipe targets: `action(type="ompipe" Pipe="...")` (and the legacy `|/path` form). */
export function rsyslogPipesOf(rule: string): string[] {
  const pipes: string[] = [];
  for (const raw of rule.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    const action =
      /type\s*=\s*"ompipe"[^)]*?\bpipe\s*=\s*"([^"]+)"/i.exec(line) ??
      /\bpipe\s*=\s*"([^"]+)"[^)]*?type\s*=\s*"ompipe"/i.exec(line);
    if (action) pipes.push(action[1]!);
    else {
      const legacy = /^\S+\s+\|([^;\s]+)/.exec(line);
      if (legacy) pipes.push(legacy[1]!);
    }
  }
  return pipes;
}

/** What in osquery.conf a subscriber subscribes from: without it, it watches nothing. */
export type ConfigNeed = 'file_paths' | 'yara_file_paths';

export interface EventedTable {
  publisher: PublisherName;
  /** Flags the subscriber's init() checks. */
  flags: FlagNeed[];
  config?: ConfigNeed;
  /**
   * The table's rows come from syscall audit rules, which osquery installs only with
   * --audit_allow_config=true (osquery/events/linux/auditdnetlink.cpp); otherwise only rules the host
   * already has feed it.
   */
  needsAuditRules?: boolean;
}

const AUDIT = 'osquery/events/audit_flags.cpp';
/** Every Linux evented table of osquery 5.23.1 (specs/linux, specs/posix, specs/yara_events.table). */
export const LINUX_EVENTED_TABLES: Record<string, EventedTable> = {
  process_events: {
    publisher: 'audit',
    flags: [need('audit_allow_process_events', true, true, AUDIT)],
    needsAuditRules: true,
  },
  socket_events: {
    publisher: 'audit',
    flags: [need('audit_allow_sockets', true, false, AUDIT)],
    needsAuditRules: true,
  },
  user_events: { publisher: 'audit', flags: [need('audit_allow_user_events', true, true, AUDIT)] },
  process_file_events: {
    publisher: 'audit',
    flags: [need('audit_allow_fim_events', true, false, AUDIT)],
    config: 'file_paths',
    needsAuditRules: true,
  },
  selinux_events: {
    publisher: 'audit',
    flags: [need('audit_allow_selinux_events', true, false, 'osquery/tables/events/linux/selinux_events.cpp')],
  },
  apparmor_events: {
    publisher: 'audit',
    flags: [need('audit_allow_apparmor_events', true, false, 'osquery/tables/events/linux/apparmor_events.cpp')],
  },
  seccomp_events: {
    publisher: 'audit',
    flags: [need('audit_allow_seccomp_events', true, false, 'osquery/tables/events/linux/seccomp_events.cpp')],
  },
  bpf_process_events: { publisher: 'bpf', flags: [] },
  bpf_socket_events: { publisher: 'bpf', flags: [] },
  file_events: { publisher: 'inotify', flags: [], config: 'file_paths' },
  yara_events: { publisher: 'inotify', flags: [], config: 'yara_file_paths' },
  hardware_events: { publisher: 'udev', flags: [] },
  syslog_events: { publisher: 'syslog', flags: [] },
};

/** The parts of osquery.conf that feed subscribers. */
export interface EventsConfig {
  /** Categories of `file_paths` (and `file_paths_query`) with at least one path. */
  filePathCategories: ReadonlySet<string>;
  /** Categories named in `yara.file_paths`. */
  yaraCategories: ReadonlySet<string>;
  /** `events.disable_subscribers`, which wins over `events.enable_subscribers`. */
  disabledSubscribers: ReadonlySet<string>;
}

export type EventedStatus =
  { works: true; warning?: string } | { works: false; reason: string; missingFlags: FlagNeed[] };

const flagText = (f: FlagNeed) => `--${f.flag}=${f.needs}`;

/**
 * Whether osqueryd collects rows for a Linux evented table with these flags and this config; when it
 * does not, the reason names what is missing. Undefined for a table this model does not know.
 */
export function eventedTableStatus(
  table: string,
  flags: EffectiveFlags,
  config: EventsConfig,
): EventedStatus | undefined {
  const model = LINUX_EVENTED_TABLES[table];
  if (!model) return undefined;
  if (flags.bool('disable_events', false))
    return {
      works: false,
      reason: `table ${table} is evented but events are disabled (--disable_events=true): it returns nothing`,
      missingFlags: [need('disable_events', false, false, 'osquery/events/eventfactory.cpp')],
    };
  if (config.disabledSubscribers.has(table))
    return {
      works: false,
      reason: `table ${table} returns nothing: the config's events.disable_subscribers turns its subscriber off`,
      missingFlags: [],
    };
  const publisher = PUBLISHERS[model.publisher];
  const missing = [...publisher.flags, ...model.flags].filter((f) => flags.bool(f.flag, f.osqueryDefault) !== f.needs);
  if (missing.length > 0) {
    const parts = missing.map((f) => {
      const origin = flags.origin(f.flag);
      const value = origin ? `set to ${!f.needs} in ${origin}` : `osquery's default is ${f.osqueryDefault}`;
      return `${flagText(f)} (${value}; ${f.source})`;
    });
    return {
      works: false,
      reason: `table ${table} returns nothing: its ${model.publisher} publisher needs ${parts.join(' and ')}`,
      missingFlags: missing,
    };
  }
  if (model.config === 'file_paths' && config.filePathCategories.size === 0)
    return {
      works: false,
      reason: `table ${table} returns nothing: the config has no file_paths for it to watch`,
      missingFlags: [],
    };
  if (model.config === 'yara_file_paths' && ![...config.yaraCategories].some((c) => config.filePathCategories.has(c)))
    return {
      works: false,
      reason:
        `table ${table} returns nothing: no yara.file_paths category names a file_paths category ` +
        '(osquery/tables/yara/yara_events.cpp)',
      missingFlags: [],
    };
  if (model.needsAuditRules && !flags.bool('audit_allow_config', false))
    return {
      works: true,
      warning:
        `table ${table} gets only what the host's own audit rules record: osquery installs its audit rules ` +
        `only with --audit_allow_config=true (default false; osquery/events/linux/auditdnetlink.cpp)`,
    };
  return { works: true };
}

/** The subscriber-feeding parts of an osquery.conf object (osquery/config parsers file_paths, yara, events). */
export function eventsConfigOf(conf: Record<string, unknown>): EventsConfig {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const filePathCategories = new Set<string>();
  if (isObject(conf.file_paths))
    for (const [category, paths] of Object.entries(conf.file_paths))
      if (Array.isArray(paths) && paths.some((p) => typeof p === 'string' && p !== ''))
        filePathCategories.add(category);
  // file_paths_query: categories whose paths come from a query at run time; assume they yield paths.
  if (isObject(conf.file_paths_query))
    for (const category of Object.keys(conf.file_paths_query)) filePathCategories.add(category);
  const yara = isObject(conf.yara) && isObject(conf.yara.file_paths) ? Object.keys(conf.yara.file_paths) : [];
  const events = isObject(conf.events) ? conf.events : {};
  const disabled = Array.isArray(events.disable_subscribers)
    ? events.disable_subscribers.filter((s): s is string => typeof s === 'string')
    : [];
  return { filePathCategories, yaraCategories: new Set(yara), disabledSubscribers: new Set(disabled) };
}

/**
 * File integrity monitoring that these flags turn on, by the flag that does it: inotify file events
 * (file_events, yara_events) or audit-based process_file_events. Empty when events are off.
 */
export function fimFlagsOn(flags: EffectiveFlags): string[] {
  if (flags.bool('disable_events', false)) return [];
  const on: string[] = [];
  if (flags.bool('enable_file_events', false)) on.push('enable_file_events');
  if (!flags.bool('disable_audit', true) && flags.bool('audit_allow_fim_events', false))
    on.push('audit_allow_fim_events');
  return on;
}
