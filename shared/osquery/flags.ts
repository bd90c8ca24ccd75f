// osqueryd's flags as the linter needs them: which ones osquery reads only from the command line or the
// flagfile, how it parses booleans, and the value a flag has once osquery.flags and the config's
// `options` are both applied. Everything here is from osquery 5.23.1's source.
import { parseFlags } from './bundle.js';

/**
 * Flags declared with CLI_FLAG (osquery/core/flags.h): osquery ignores them in the config's `options`
 * with "The CLI only flag --X set via config file will be ignored" (plugins/config/parsers/options.cpp).
 * Every CLI_FLAG in osquery/ and plugins/ at 5.23.1.
 */
export const CLI_ONLY_FLAGS: ReadonlySet<string> = new Set([
  'alarm_timeout',
  'aws_enforce_fips',
  'carver_block_size',
  'carver_compression',
  'carver_continue_endpoint',
  'carver_disable_function',
  'carver_expiry',
  'carver_start_endpoint',
  'config_accelerated_refresh',
  'config_check',
  'config_dump',
  'config_enable_backup',
  'config_path',
  'config_plugin',
  'config_refresh',
  'config_tls_endpoint',
  'config_tls_max_attempts',
  'daemonize',
  'database_dump',
  'database_path',
  'disable_carver',
  'disable_enrollment',
  'disable_extensions',
  'disable_reenrollment',
  'disable_tables',
  'disable_watchdog',
  'enable_extensions_watchdog',
  'enable_tables',
  'enable_watchdog_debug',
  'enroll_always',
  'enroll_secret_env',
  'enroll_secret_path',
  'enroll_tls_endpoint',
  'extensions_autoload',
  'extensions_interval',
  'extensions_require',
  'extensions_socket',
  'extensions_timeout',
  'force',
  'install',
  'keep_container_worker_open',
  'logger_mode',
  'logger_plugin',
  'logger_stderr',
  'pidfile',
  'proxy_hostname',
  'tls_accept_gzip',
  'tls_client_cert',
  'tls_client_key',
  'tls_enroll_max_attempts',
  'tls_enroll_max_interval',
  'tls_hostname',
  'tls_server_certs',
  'tls_session_reuse',
  'tls_session_timeout',
  'uninstall',
  'watchdog_delay',
  'watchdog_forced_shutdown_delay',
  'watchdog_latency_limit',
  'watchdog_level',
  'watchdog_memory_limit',
  'watchdog_utilization_limit',
]);

/** Defaults of the non-boolean flags the linter reads (osquery/config/packs.cpp). */
export const FLAG_DEFAULTS = { schedule_default_interval: 3600 } as const;

/** gflags' boolean parsing (what a flagfile accepts): null when the text is not a boolean. */
export function parseBool(value: string): boolean | null {
  const v = value.trim().toLowerCase();
  if (['1', 't', 'true', 'y', 'yes'].includes(v)) return true;
  if (['0', 'f', 'false', 'n', 'no'].includes(v)) return false;
  return null;
}

/** Where a flag's value came from. */
export type FlagOrigin = 'osquery.flags' | 'options';

export interface EffectiveFlags {
  /** Boolean flag: the value osqueryd runs with (the options' value, else the flagfile's, else the default). */
  bool(name: string, osqueryDefault: boolean): boolean;
  /** Where its value was set, for messages; undefined when osquery's default applies. */
  origin(name: string): FlagOrigin | undefined;
  /** The text of a flag as set, options first. */
  text(name: string): string | undefined;
}

/** osquery turns a JSON option into text before setting the flag (plugins/config/parsers/options.cpp). */
export function optionText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' && Number.isFinite(value)) return String(Math.trunc(value));
  return null;
}

/**
 * The flags osqueryd runs with: osquery.flags first, then the config's `options`, which osquery applies
 * with Flag::updateValue when it loads the config (plugins/config/parsers/options.cpp), before the event
 * publishers start (osquery/core/init.cpp loads the config, then calls attachEvents). CLI-only flags in
 * options are ignored, as osquery ignores them; an option gflags cannot parse leaves the flag as it was.
 * Pure.
 */
export function effectiveFlags(flagfile: string, options: Record<string, unknown> = {}): EffectiveFlags {
  const fromFile = parseFlags(flagfile).flags;
  const fromOptions = new Map<string, string>();
  for (const [name, raw] of Object.entries(options)) {
    const value = optionText(raw);
    if (value !== null && value !== '' && !CLI_ONLY_FLAGS.has(name)) fromOptions.set(name, value);
  }
  const boolOf = (name: string): { value: boolean; origin: FlagOrigin } | undefined => {
    const option = fromOptions.get(name);
    if (option !== undefined && parseBool(option) !== null) return { value: parseBool(option)!, origin: 'options' };
    const file = fromFile.get(name);
    if (file !== undefined && parseBool(file) !== null) return { value: parseBool(file)!, origin: 'osquery.flags' };
    // gflags' --noname form sets a boolean false.
    if (fromFile.get(`no${name}`) === 'true') return { value: false, origin: 'osquery.flags' };
    return undefined;
  };
  return {
    bool: (name, osqueryDefault) => boolOf(name)?.value ?? osqueryDefault,
    origin: (name) =>
      boolOf(name)?.origin ?? (fromOptions.has(name) ? 'options' : fromFile.has(name) ? 'osquery.flags' : undefined),
    text: (name) => fromOptions.get(name) ?? fromFile.get(name),
  };
}
