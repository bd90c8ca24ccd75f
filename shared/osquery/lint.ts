// The bundle linter: what osqueryd 5.23.1 would do with a bundle on a Linux host, and this project's
// performance policy, before anything ships to a VM. Every `broken` finding follows osquery's source
// (the file is named where a rule comes from); `policy` findings are this project's own rules.
import path from 'node:path';
import { parseFlags, type Bundle } from './bundle.js';
import {
  eventBufferOf,
  eventedTableStatus,
  eventsConfigOf,
  fimFlagsOn,
  inertPublisherFlags,
  rsyslogPipesOf,
  syslogPipeOf,
  type EventsConfig,
} from './events.js';
import { CLI_ONLY_FLAGS, FLAG_DEFAULTS, effectiveFlags, type EffectiveFlags } from './flags.js';
import { DEFAULT_LINT_OPTIONS, type LintOptions } from './lint-policy.js';
import { systemsForPlatform, type OsquerySystem } from './platform.js';
import { runsOnLinux, type OsquerySchema } from './schema.js';
import { REMOVED_TABLES } from './schema-extras.js';
import { SqlChecker } from './sql-check.js';

export { DEFAULT_LINT_OPTIONS, type LintOptions } from './lint-policy.js';

/** `broken`: osquery rejects it, ignores it, or it can never return data. `policy`: this project's rules. */
export type FindingKind = 'broken' | 'policy';

export interface Finding {
  severity: 'error' | 'warning';
  kind: FindingKind;
  file: string;
  pack?: string;
  query?: string;
  reason: string;
}

export interface LintResult {
  findings: Finding[];
  /** Projected scheduled executions per host per hour on Linux (shards counted by their share). */
  executionsPerHour: number;
  queries: number;
}

/**
 * Top-level keys some config parser reads (keys() of every config_parser
 * plugin, plus schedule and packs: osquery/config/config.cpp).
 */
const CONF_KEYS = new Set([
  'options',
  'schedule',
  'packs',
  'decorators',
  'file_paths',
  'file_paths_query',
  'exclude_paths',
  'file_accesses',
  'yara',
  'events',
  'views',
  'logger',
  'auto_table_construction',
  'prometheus_targets',
  'kafka_topics',
  'feature_vectors',
]);
/** Query fields osquery reads (osquery/config/packs.cpp), plus the documentation fields packs carry. */
const QUERY_KEYS = new Set([
  'query',
  'interval',
  'removed',
  'snapshot',
  'platform',
  'version',
  'shard',
  'denylist',
  'startup_priority',
  'description',
  'value',
]);
const PACK_KEYS = new Set(['queries', 'discovery', 'platform', 'version', 'shard', 'oncall']);
const DECORATOR_KEYS = new Set(['load', 'always', 'interval']);
/**
 * osquery skips queries whose names start or end with these
 * (osquery/config/packs.cpp, osquery/database/database.cpp).
 */
const RESERVED_NAME_PREFIXES = ['query.', 'cache.', 'config_views.'];
const RESERVED_NAME_SUFFIXES = ['epoch', 'counter'];
/** This project's longest buffer for an evented table a query reads (policy): osquery's syslog default is 30 days. */
export const MAX_EVENTS_EXPIRY_SECONDS = 86_400;
/** osquery's longest interval (kMaxQueryInterval, osquery/config/packs.cpp). */
const MAX_INTERVAL = 604_800;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Set, and false as osquery's JSON::valueToBool reads it (osquery/utils/json/json.cpp): false, "false", 0, ... */
const isFalse = (v: unknown): boolean =>
  typeof v === 'boolean'
    ? !v
    : typeof v === 'string'
      ? !['true', 't'].includes(v.toLowerCase())
      : typeof v === 'number'
        ? v === 0
        : v === null;

/**
 * osquery strips line continuations and whole-line `#` and `//` comments from the config and packs
 * before parsing them (stripConfigComments, osquery/config/config.cpp).
 */
export function parseOsqueryJson(text: string): unknown {
  const stripped = text
    .replace(/\\\n/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => !line.startsWith('#') && !line.startsWith('//'))
    .join('\n');
  return JSON.parse(stripped);
}

interface QueryRef {
  file: string;
  pack?: string;
  query: string;
  body: Record<string, unknown>;
  /** Systems the pack runs on (all for the schedule). */
  packSystems: Set<OsquerySystem>;
  packShard?: unknown;
}

type Where = Pick<Finding, 'file' | 'pack' | 'query'>;
type Report = (f: Where & { reason: string }) => void;

/** Pure, apart from SQLite: every finding for a bundle against a schema. */
export function lintBundle(
  bundle: Bundle,
  schema: OsquerySchema,
  options: LintOptions = DEFAULT_LINT_OPTIONS,
): LintResult {
  const findings: Finding[] = [];
  const error: Report = (f) => findings.push({ severity: 'error', kind: 'broken', ...f });
  const warning: Report = (f) => findings.push({ severity: 'warning', kind: 'broken', ...f });
  const policy: Report = (f) => {
    if (options.policy !== 'off')
      findings.push({ severity: options.policy === 'warn' ? 'warning' : 'error', kind: 'policy', ...f });
  };

  // osquery.conf, with osquery's comment stripping.
  const confText = bundle.files.get('osquery.conf');
  let conf: Record<string, unknown> = {};
  if (confText === undefined) error({ file: 'osquery.conf', reason: 'missing' });
  else {
    try {
      const parsed = parseOsqueryJson(confText);
      if (!isObject(parsed)) error({ file: 'osquery.conf', reason: 'not a JSON object' });
      else conf = parsed;
    } catch (e) {
      error({ file: 'osquery.conf', reason: `not JSON: ${(e as Error).message}` });
    }
  }

  // Flags: osquery.flags, then the config's options, as osqueryd applies them.
  const flagsText = bundle.files.get('osquery.flags');
  if (flagsText === undefined)
    policy({
      file: 'osquery.flags',
      reason: "missing: osqueryd would run with osquery's default flags, without this project's watchdog limits",
    });
  const flagfile = parseFlags(flagsText ?? '');
  for (const b of flagfile.bad)
    error({
      file: 'osquery.flags',
      reason:
        `line ${b.line} is not --name=value: ${b.text} ` +
        '(gflags reads such a line as a program-name filter for the flags after it)',
    });
  checkWatchdog(flagfile.flags.get('watchdog_utilization_limit'), error);
  const confOptions = isObject(conf.options) ? conf.options : {};
  const flags = effectiveFlags(flagsText ?? '', confOptions);
  const eventsConfig = eventsConfigOf(conf);

  // Unknown keys: osquery's config parsers read only their own keys (Config::applyParsers,
  // osquery/config/config.cpp), so anything else is ignored; most likely a typo.
  for (const key of Object.keys(conf))
    if (!CONF_KEYS.has(key))
      warning({ file: 'osquery.conf', reason: `unknown top-level key "${key}": osquery ignores it` });
  if (isObject(conf.options)) {
    for (const key of Object.keys(conf.options))
      if (CLI_ONLY_FLAGS.has(key))
        error({
          file: 'osquery.conf',
          reason:
            `options.${key} is a startup-only flag: osquery ignores it here; ` +
            `put --${key} in osquery.flags (plugins/config/parsers/options.cpp)`,
        });
  } else if (conf.options !== undefined) error({ file: 'osquery.conf', reason: 'options must be an object' });

  const fim = fimFlagsOn(flags);
  if (fim.length > 0)
    policy({
      file: flags.origin(fim[0]!) === 'options' ? 'osquery.conf' : 'osquery.flags',
      reason: `file integrity monitoring is off by policy: --${fim.join(' and --')} turns it on`,
    });

  const inert = inertPublisherFlags(flags);
  if (inert.length > 0)
    error({
      file: flags.origin('disable_events') === 'options' ? 'osquery.conf' : 'osquery.flags',
      reason:
        `${inert.join(' and ')} does nothing while --disable_events=true: osquery sets up no event publisher ` +
        '(osquery/events/eventfactory.cpp)',
    });
  checkRsyslogRules(bundle, syslogPipeOf(flags), error, warning);

  const allSystems = systemsForPlatform(undefined);
  const queries: QueryRef[] = [];
  if (isObject(conf.schedule)) {
    for (const [name, body] of Object.entries(conf.schedule)) {
      if (!isObject(body)) error({ file: 'osquery.conf', query: name, reason: 'a scheduled query must be an object' });
      else queries.push({ file: 'osquery.conf', query: name, body, packSystems: allSystems });
    }
  } else if (conf.schedule !== undefined) error({ file: 'osquery.conf', reason: 'schedule must be an object' });

  // Packs: referenced by path (the bundle's packs/ land in /etc/osquery/packs/), inline, or "*" for the folder.
  const packFiles = [...bundle.files.keys()].filter((f) => f.startsWith('packs/'));
  const referenced = new Set<string>();
  const packs: Array<{ name: string; file: string; body: unknown }> = [];
  if (isObject(conf.packs)) {
    for (const [name, ref] of Object.entries(conf.packs)) {
      if (isObject(ref)) packs.push({ name, file: 'osquery.conf', body: ref });
      else if (typeof ref === 'string') {
        const targets =
          name === '*' || ref.endsWith('*')
            ? packFiles
            : packFiles.filter((f) => `/etc/osquery/packs/${path.basename(f)}` === ref);
        if (targets.length === 0)
          error({
            file: 'osquery.conf',
            pack: name,
            reason: `pack path ${ref} is not in the bundle (expected packs/${path.basename(ref)})`,
          });
        for (const file of targets) {
          referenced.add(file);
          const packName = name === '*' ? path.basename(file, '.conf') : name;
          try {
            packs.push({ name: packName, file, body: parseOsqueryJson(bundle.files.get(file)!) });
          } catch (e) {
            error({ file, pack: packName, reason: `not JSON: ${(e as Error).message}` });
          }
        }
      } else error({ file: 'osquery.conf', pack: name, reason: 'a pack must be a path or an object' });
    }
  }
  for (const file of packFiles)
    if (!referenced.has(file))
      warning({ file, reason: 'pack file is not referenced from osquery.conf: it will not run' });
  const packSystems = new Map<string, Set<OsquerySystem>>();
  for (const pack of packs) {
    const where = { file: pack.file, pack: pack.name };
    if (!isObject(pack.body)) {
      error({ ...where, reason: 'a pack must be a JSON object' });
      continue;
    }
    for (const key of Object.keys(pack.body))
      if (!PACK_KEYS.has(key)) warning({ ...where, reason: `unknown pack key "${key}": osquery ignores it` });
    const systems = checkPlatform(pack.body.platform, where, warning);
    packSystems.set(pack.name, systems);
    if (!isObject(pack.body.queries)) {
      error({ ...where, reason: 'queries must be an object' });
      continue;
    }
    for (const [name, body] of Object.entries(pack.body.queries)) {
      if (!isObject(body)) error({ ...where, query: name, reason: 'a query must be an object' });
      else queries.push({ ...where, query: name, body, packSystems: systems, packShard: pack.body.shard });
    }
  }

  // A query without an interval runs every --schedule_default_interval (osquery/config/packs.cpp).
  const defaultInterval = flags.text('schedule_default_interval') ?? String(FLAG_DEFAULTS.schedule_default_interval);
  const checker = new SqlChecker(schema);
  /** Evented tables that some query reads and that collect rows: their buffers are this project's concern. */
  const eventedRead = new Map<string, Where>();
  const sql = (text: string, where: Where, systems: Set<OsquerySystem>) =>
    checkSql(checker, schema, text, where, { systems, flags, eventsConfig, eventedRead }, error, warning);
  let executionsPerHour = 0;
  try {
    for (const q of queries) {
      const where = { file: q.file, pack: q.pack, query: q.query };
      for (const key of Object.keys(q.body)) {
        if (key === 'blacklist')
          warning({
            ...where,
            reason:
              'osquery 5 ignores "blacklist" (it reads "denylist", osquery/config/packs.cpp): ' +
              'the query is denylisted as by default',
          });
        else if (!QUERY_KEYS.has(key))
          warning({ ...where, reason: `unknown query field "${key}": osquery ignores it` });
      }
      if (
        RESERVED_NAME_PREFIXES.some((p) => q.query.startsWith(p)) ||
        RESERVED_NAME_SUFFIXES.some((s) => q.query.endsWith(s))
      )
        error({ ...where, reason: 'osquery skips a query whose name uses a reserved prefix or suffix' });
      // A pack for another system already has its warning; its queries are checked for that system.
      const systems = q.packSystems.has('linux')
        ? intersect(q.packSystems, checkPlatform(q.body.platform, where, warning))
        : intersect(q.packSystems, systemsForPlatform(q.body.platform));
      const onLinux = systems.has('linux');
      const interval = parseInterval(q.body.interval ?? defaultInterval);
      if (interval === null)
        error({
          ...where,
          reason:
            'interval ' +
            (q.body.interval === undefined
              ? `(schedule_default_interval) ${defaultInterval}`
              : JSON.stringify(q.body.interval)) +
            ' ' +
            `must be a whole number of seconds from 1 to ${MAX_INTERVAL}: osquery skips the query`,
        });
      const heartbeat = isFalse(q.body.removed) && isFalse(q.body.denylist);
      if (onLinux && interval !== null && interval < options.minIntervalSeconds && !heartbeat) {
        policy({
          ...where,
          reason:
            `interval ${interval} s is shorter than the ${options.minIntervalSeconds} s minimum ` +
            '(only heartbeats with removed:false and denylist:false may run more often)',
        });
      }
      if (typeof q.body.query !== 'string' || q.body.query.trim() === '') {
        error({ ...where, reason: 'query must be a non-empty SQL string' });
        continue;
      }
      if (onLinux && interval !== null) {
        const shard = Number(q.body.shard ?? q.packShard ?? 100);
        executionsPerHour +=
          (3600 / interval) * (Number.isFinite(shard) && shard > 0 && shard <= 100 ? shard / 100 : 1);
      }
      sql(q.body.query, where, systems);
    }
    for (const pack of packs) {
      if (!isObject(pack.body) || !Array.isArray(pack.body.discovery)) continue;
      for (const text of pack.body.discovery)
        sql(String(text), { file: pack.file, pack: pack.name, query: 'discovery' }, packSystems.get(pack.name)!);
    }
    if (isObject(conf.decorators)) {
      for (const [kind, value] of Object.entries(conf.decorators)) {
        const where = { file: 'osquery.conf', query: `decorators.${kind}` };
        if (!DECORATOR_KEYS.has(kind))
          warning({ ...where, reason: `unknown decorator kind "${kind}": osquery ignores it` });
        else if (kind === 'interval' && isObject(value)) {
          for (const [seconds, list] of Object.entries(value)) {
            // plugins/config/parsers/decorators.cpp
            if (!/^\d+$/.test(seconds) || Number(seconds) % 60 !== 0 || Number(seconds) === 0)
              error({
                ...where,
                reason: `interval key ${seconds} must be a positive multiple of 60: osquery skips these decorators`,
              });
            for (const text of Array.isArray(list) ? list : []) sql(String(text), where, allSystems);
          }
        } else if (Array.isArray(value)) {
          for (const text of value) sql(String(text), where, allSystems);
        } else error({ ...where, reason: 'decorators must be lists of SQL' });
      }
    }
  } finally {
    checker.close();
  }

  for (const [table, where] of eventedRead) {
    const buffer = eventBufferOf(table, flags);
    if (buffer.expirySeconds > MAX_EVENTS_EXPIRY_SECONDS)
      policy({
        ...where,
        reason:
          `table ${table} keeps its rows ${buffer.expirySeconds} s (--${buffer.expiryFlag}` +
          `${buffer.expiryDefault ? ", osquery's default" : ''}; ${buffer.source}): ` +
          `at most ${MAX_EVENTS_EXPIRY_SECONDS} s by policy`,
      });
  }

  executionsPerHour = Math.round(executionsPerHour * 100) / 100;
  if (executionsPerHour > options.budgetPerHour) {
    policy({
      file: 'osquery.conf',
      reason:
        `projected ${executionsPerHour} query executions per host per hour ` +
        `exceed the budget of ${options.budgetPerHour}`,
    });
  }
  return { findings, executionsPerHour, queries: queries.length };
}

const intersect = <T>(a: Set<T>, b: Set<T>) => new Set([...a].filter((x) => b.has(x)));

/**
 * The bundle's rsyslog rules against the pipe osqueryd reads (`pipe`, null when it reads no syslog): a rule
 * writing elsewhere feeds nothing; a rule without a reader, or a reader without a rule, ingests nothing.
 */
function checkRsyslogRules(bundle: Bundle, pipe: string | null, error: Report, warning: Report): void {
  const rules = [...bundle.files].filter(([file]) => file.startsWith('rsyslog/'));
  const written = rules.flatMap(([file, text]) => rsyslogPipesOf(text).map((target) => ({ file, target })));
  for (const { file, target } of written) {
    if (pipe === null)
      warning({
        file,
        reason: `writes to ${target}, but osqueryd reads no syslog (--enable_syslog=false or --disable_events=true)`,
      });
    else if (target !== pipe)
      error({ file, reason: `writes to ${target}, but osqueryd reads ${pipe} (--syslog_pipe_path): nothing arrives` });
  }
  if (pipe !== null && !written.some((w) => w.target === pipe))
    warning({
      file: 'osquery.flags',
      reason: `osqueryd reads syslog from ${pipe}, but no rsyslog rule in the bundle writes to it (rsyslog/*.conf)`,
    });
}

/** osquery/core/watcher.cpp clamps the utilization limit to 100 (% of all cores). */
function checkWatchdog(value: string | undefined, error: Report): void {
  if (value === undefined) return;
  const n = Number(value);
  if (!Number.isFinite(n))
    error({ file: 'osquery.flags', reason: `watchdog_utilization_limit ${value} is not a number` });
  else if (n > 100)
    error({
      file: 'osquery.flags',
      reason:
        `watchdog_utilization_limit ${n} is above 100: ` +
        'osquery clamps it to 100% of all cores, which turns the CPU watchdog off',
    });
}

/** The systems a pack's or query's `platform` runs on; a warning when Linux is not one of them. */
function checkPlatform(platform: unknown, where: Where, warning: Report): Set<OsquerySystem> {
  const systems = systemsForPlatform(platform);
  if (platform !== undefined && typeof platform !== 'string')
    warning({ ...where, reason: `platform ${JSON.stringify(platform)} is not a string: osquery ignores it` });
  else if (!systems.has('linux'))
    warning({
      ...where,
      reason:
        `platform ${JSON.stringify(platform)} never runs on Linux` +
        (systems.size === 0 ? ', nor anywhere else osquery runs' : '') +
        ' (osquery/core/system.cpp checkPlatform)',
    });
  return systems;
}

export function parseInterval(value: unknown): number | null {
  const n =
    typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= MAX_INTERVAL ? n : null;
}

function checkSql(
  checker: SqlChecker,
  schema: OsquerySchema,
  sql: string,
  where: Where,
  context: {
    systems: Set<OsquerySystem>;
    flags: EffectiveFlags;
    eventsConfig: EventsConfig;
    eventedRead: Map<string, Where>;
  },
  error: Report,
  warning: Report,
): void {
  const result = checker.check(sql);
  if (result.error) {
    const table = /no such table: (?:main\.)?(\S+)/.exec(result.error)?.[1];
    const removed = table ? REMOVED_TABLES[table] : undefined;
    const hint = removed ? `: removed in osquery ${removed.removedIn}${removed.hint ? `, ${removed.hint}` : ''}` : '';
    error({
      ...where,
      reason: table ? `unknown table ${table}${hint} (SQLite: ${result.error})` : `SQLite: ${result.error}`,
    });
    return;
  }
  const systems: ReadonlySet<string> = context.systems;
  const onLinux = systems.has('linux');
  for (const name of result.tables) {
    const table = schema.get(name)!;
    if (onLinux && !runsOnLinux(table))
      error({ ...where, reason: `table ${name} is not available on Linux (${table.platforms.join(', ')})` });
    else if (!onLinux && context.systems.size > 0 && !table.platforms.some((p) => systems.has(p)))
      error({
        ...where,
        reason: `table ${name} is not available on ${[...systems].join(' or ')} (${table.platforms.join(', ')})`,
      });
    if (onLinux && table.evented && runsOnLinux(table)) {
      const status = eventedTableStatus(name, context.flags, context.eventsConfig);
      if (status === undefined) {
        if (context.flags.bool('disable_events', false))
          error({
            ...where,
            reason: `table ${name} is evented but events are disabled (--disable_events=true): it returns nothing`,
          });
      } else if (!status.works) error({ ...where, reason: status.reason });
      else {
        if (!context.eventedRead.has(name)) context.eventedRead.set(name, where);
        if (status.warning) warning({ ...where, reason: status.warning });
      }
    }
  }
  for (const u of result.unconstrained)
    error({
      ...where,
      reason: `table ${u.table} needs a constraint on ${u.columns.join(' or ')} (WHERE ${u.columns[0]} = ...)`,
    });
}

/** One line per finding: severity, kind, file, pack, query, reason. */
export function formatFinding(f: Finding): string {
  const parts = [f.severity, f.kind, f.file];
  if (f.pack) parts.push(`pack=${f.pack}`);
  if (f.query) parts.push(`query=${f.query}`);
  return `${parts.join(' ')}: ${f.reason}`;
}
