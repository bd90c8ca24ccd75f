// The bundle linter: structure, SQL against the schema, and cost, before anything ships to a VM.
import path from 'node:path';
import { parseFlags, type Bundle } from './bundle.js';
import { runsOnLinux, type OsquerySchema } from './schema.js';
import { SqlChecker } from './sql-check.js';

export interface Finding {
  severity: 'error' | 'warning';
  file: string;
  pack?: string;
  query?: string;
  reason: string;
}

export interface LintOptions {
  /** Projected scheduled-query executions per host per hour allowed. */
  budgetPerHour: number;
  /** No query runs more often than this, except heartbeats (`removed: false`, `denylist: false`). */
  minIntervalSeconds: number;
}

export const DEFAULT_LINT_OPTIONS: LintOptions = { budgetPerHour: 60, minIntervalSeconds: 300 };

export interface LintResult {
  findings: Finding[];
  /** Projected scheduled executions per host per hour (shards counted by their share). */
  executionsPerHour: number;
  queries: number;
}

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
  'auto_table_construction',
  'prometheus_targets',
  'feature_vectors',
]);
const QUERY_KEYS = new Set([
  'query',
  'interval',
  'removed',
  'snapshot',
  'platform',
  'version',
  'shard',
  'denylist',
  'blacklist',
  'description',
  'value',
]);
const PACK_KEYS = new Set(['queries', 'discovery', 'platform', 'version', 'shard', 'oncall']);
const PLATFORMS = new Set(['all', 'any', 'linux', 'darwin', 'windows', 'freebsd', 'posix']);
const DECORATOR_KEYS = new Set(['load', 'always', 'interval']);
/** Read once at start-up: osquery ignores them in the config's options (with a warning). */
export const STARTUP_ONLY_FLAGS = new Set([
  'watchdog_level',
  'watchdog_memory_limit',
  'watchdog_utilization_limit',
  'watchdog_delay',
  'watchdog_latency_limit',
  'disable_watchdog',
  'config_refresh',
  'config_accelerated_refresh',
  'config_plugin',
  'config_path',
  'flagfile',
  'host_identifier',
  'specified_identifier',
  'logger_plugin',
  'logger_path',
  'logger_rotate',
  'logger_rotate_size',
  'logger_rotate_max_files',
  'logger_mode',
  'database_path',
  'pidfile',
  'disable_events',
  'disable_audit',
  'enable_file_events',
  'disable_database',
  'extensions_autoload',
  'extensions_socket',
  'extensions_timeout',
  'distributed_plugin',
  'enroll_secret_path',
  'tls_hostname',
  'force',
  'daemonize',
  'enable_syslog',
  'syslog_pipe_path',
]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function platformIncludesLinux(platform: unknown): boolean {
  if (typeof platform !== 'string' || platform === '') return true;
  return platform.split(',').some((p) => ['all', 'any', 'linux', 'posix'].includes(p.trim()));
}

interface QueryRef {
  file: string;
  pack?: string;
  query: string;
  body: Record<string, unknown>;
  packPlatform?: unknown;
  packShard?: unknown;
}

/** Pure, apart from SQLite: every finding for a bundle against a schema. */
export function lintBundle(
  bundle: Bundle,
  schema: OsquerySchema,
  options: LintOptions = DEFAULT_LINT_OPTIONS,
): LintResult {
  const findings: Finding[] = [];
  const error = (f: Omit<Finding, 'severity'>) => findings.push({ severity: 'error', ...f });
  const warning = (f: Omit<Finding, 'severity'>) => findings.push({ severity: 'warning', ...f });

  // Flags.
  const flagsText = bundle.files.get('osquery.flags');
  const { flags, bad } = parseFlags(flagsText ?? '');
  if (flagsText === undefined) error({ file: 'osquery.flags', reason: 'missing' });
  for (const b of bad) error({ file: 'osquery.flags', reason: `line ${b.line} is not --name=value: ${b.text}` });
  checkWatchdog(flags.get('watchdog_utilization_limit'), 'osquery.flags', error);
  // osquery's default is --disable_events=true.
  const eventsEnabled = flags.get('disable_events') === 'false';

  // osquery.conf.
  const confText = bundle.files.get('osquery.conf');
  let conf: Record<string, unknown> = {};
  if (confText === undefined) error({ file: 'osquery.conf', reason: 'missing' });
  else {
    try {
      const parsed = JSON.parse(confText);
      if (!isObject(parsed)) error({ file: 'osquery.conf', reason: 'not a JSON object' });
      else conf = parsed;
    } catch (e) {
      error({ file: 'osquery.conf', reason: `not JSON: ${(e as Error).message}` });
    }
  }
  for (const key of Object.keys(conf))
    if (!CONF_KEYS.has(key)) error({ file: 'osquery.conf', reason: `unknown top-level key "${key}"` });
  if (isObject(conf.options)) {
    for (const [key, value] of Object.entries(conf.options)) {
      if (STARTUP_ONLY_FLAGS.has(key))
        error({
          file: 'osquery.conf',
          reason: `options.${key} is a startup-only flag: osquery ignores it here; put --${key} in osquery.flags`,
        });
      if (key === 'watchdog_utilization_limit') checkWatchdog(String(value), 'osquery.conf', error);
    }
  } else if (conf.options !== undefined) error({ file: 'osquery.conf', reason: 'options must be an object' });

  const queries: QueryRef[] = [];
  if (isObject(conf.schedule)) {
    for (const [name, body] of Object.entries(conf.schedule)) {
      if (!isObject(body)) error({ file: 'osquery.conf', query: name, reason: 'a scheduled query must be an object' });
      else queries.push({ file: 'osquery.conf', query: name, body });
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
            packs.push({ name: packName, file, body: JSON.parse(bundle.files.get(file)!) });
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
  for (const pack of packs) {
    if (!isObject(pack.body)) {
      error({ file: pack.file, pack: pack.name, reason: 'a pack must be a JSON object' });
      continue;
    }
    for (const key of Object.keys(pack.body))
      if (!PACK_KEYS.has(key)) error({ file: pack.file, pack: pack.name, reason: `unknown pack key "${key}"` });
    checkPlatform(pack.body.platform, { file: pack.file, pack: pack.name }, error);
    if (!isObject(pack.body.queries)) {
      error({ file: pack.file, pack: pack.name, reason: 'queries must be an object' });
      continue;
    }
    for (const [name, body] of Object.entries(pack.body.queries)) {
      if (!isObject(body))
        error({ file: pack.file, pack: pack.name, query: name, reason: 'a query must be an object' });
      else
        queries.push({
          file: pack.file,
          pack: pack.name,
          query: name,
          body,
          packPlatform: pack.body.platform,
          packShard: pack.body.shard,
        });
    }
  }

  const checker = new SqlChecker(schema);
  let executionsPerHour = 0;
  try {
    for (const q of queries) {
      const where = { file: q.file, pack: q.pack, query: q.query };
      for (const key of Object.keys(q.body))
        if (!QUERY_KEYS.has(key)) error({ ...where, reason: `unknown query field "${key}"` });
      checkPlatform(q.body.platform, where, error);
      const interval = parseInterval(q.body.interval);
      if (interval === null)
        error({
          ...where,
          reason: `interval ${JSON.stringify(q.body.interval)} must be a whole number of seconds from 1 to 604800`,
        });
      const heartbeat = q.body.removed === false && q.body.denylist === false;
      if (interval !== null && interval < options.minIntervalSeconds && !heartbeat) {
        error({
          ...where,
          reason:
            `interval ${interval} s is shorter than the ${options.minIntervalSeconds} s minimum ` +
            '(only heartbeats with removed:false and denylist:false may run more often)',
        });
      }
      const onLinux = platformIncludesLinux(q.packPlatform) && platformIncludesLinux(q.body.platform);
      if (typeof q.body.query !== 'string' || q.body.query.trim() === '') {
        error({ ...where, reason: 'query must be a non-empty SQL string' });
        continue;
      }
      if (onLinux && interval !== null) {
        const shard = Number(q.body.shard ?? q.packShard ?? 100);
        executionsPerHour +=
          (3600 / interval) * (Number.isFinite(shard) && shard > 0 && shard <= 100 ? shard / 100 : 1);
      }
      checkSql(checker, schema, q.body.query, where, { onLinux, eventsEnabled }, error);
    }
    for (const pack of packs) {
      if (!isObject(pack.body) || !Array.isArray(pack.body.discovery)) continue;
      for (const sql of pack.body.discovery)
        checkSql(
          checker,
          schema,
          String(sql),
          { file: pack.file, pack: pack.name, query: 'discovery' },
          { onLinux: true, eventsEnabled },
          error,
        );
    }
    if (isObject(conf.decorators)) {
      for (const [kind, value] of Object.entries(conf.decorators)) {
        const where = { file: 'osquery.conf', query: `decorators.${kind}` };
        if (!DECORATOR_KEYS.has(kind)) error({ ...where, reason: `unknown decorator kind "${kind}"` });
        else if (kind === 'interval' && isObject(value)) {
          for (const [seconds, list] of Object.entries(value)) {
            if (!/^\d+$/.test(seconds) || Number(seconds) % 60 !== 0 || Number(seconds) === 0)
              error({ ...where, reason: `interval key ${seconds} must be a positive multiple of 60` });
            for (const sql of Array.isArray(list) ? list : [])
              checkSql(checker, schema, String(sql), where, { onLinux: true, eventsEnabled }, error);
          }
        } else if (Array.isArray(value)) {
          for (const sql of value)
            checkSql(checker, schema, String(sql), where, { onLinux: true, eventsEnabled }, error);
        } else error({ ...where, reason: 'decorators must be lists of SQL' });
      }
    }
  } finally {
    checker.close();
  }

  executionsPerHour = Math.round(executionsPerHour * 100) / 100;
  if (executionsPerHour > options.budgetPerHour) {
    error({
      file: 'osquery.conf',
      reason: `projected ${executionsPerHour} query executions per host per hour exceed the budget of ${options.budgetPerHour}`,
    });
  }
  return { findings, executionsPerHour, queries: queries.length };
}

function checkWatchdog(value: string | undefined, file: string, error: (f: Omit<Finding, 'severity'>) => void): void {
  if (value === undefined) return;
  const n = Number(value);
  if (!Number.isFinite(n)) error({ file, reason: `watchdog_utilization_limit ${value} is not a number` });
  else if (n > 100)
    error({
      file,
      reason: `watchdog_utilization_limit ${n} is above 100: osquery clamps it to 100% of all cores, which turns the CPU watchdog off`,
    });
}

function checkPlatform(
  platform: unknown,
  where: Omit<Finding, 'severity' | 'reason'>,
  error: (f: Omit<Finding, 'severity'>) => void,
): void {
  if (platform === undefined) return;
  if (typeof platform !== 'string' || platform.split(',').some((p) => !PLATFORMS.has(p.trim())))
    error({ ...where, reason: `unknown platform ${JSON.stringify(platform)}` });
}

export function parseInterval(value: unknown): number | null {
  const n =
    typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 604_800 ? n : null;
}

function checkSql(
  checker: SqlChecker,
  schema: OsquerySchema,
  sql: string,
  where: Omit<Finding, 'severity' | 'reason'>,
  context: { onLinux: boolean; eventsEnabled: boolean },
  error: (f: Omit<Finding, 'severity'>) => void,
): void {
  const result = checker.check(sql);
  if (result.error) {
    const table = /no such table: (?:main\.)?(\S+)/.exec(result.error)?.[1];
    error({ ...where, reason: table ? `unknown table ${table} (SQLite: ${result.error})` : `SQLite: ${result.error}` });
    return;
  }
  for (const name of result.tables) {
    const table = schema.get(name)!;
    if (context.onLinux && !runsOnLinux(table))
      error({ ...where, reason: `table ${name} is not available on Linux (${table.platforms.join(', ')})` });
    if (table.evented && !context.eventsEnabled)
      error({
        ...where,
        reason: `table ${name} is evented but events are disabled (--disable_events): it returns nothing`,
      });
  }
  for (const u of result.unconstrained)
    error({
      ...where,
      reason: `table ${u.table} needs a constraint on ${u.columns.join(' or ')} (WHERE ${u.columns[0]} = ...)`,
    });
}

/** One line per finding: severity, file, pack, query, reason. */
export function formatFinding(f: Finding): string {
  const parts = [f.severity, f.file];
  if (f.pack) parts.push(`pack=${f.pack}`);
  if (f.query) parts.push(`query=${f.query}`);
  return `${parts.join(' ')}: ${f.reason}`;
}
