// Bundle -> a content-addressed configuration version and the files the OS policy places.
import { createHash } from 'node:crypto';
import { INLINE_LIMIT, vmPathOf, type Bundle } from './bundle.js';
import { syslogPipeOf } from './events.js';
import { effectiveFlags } from './flags.js';
import { parseOsqueryJson } from './lint.js';
import { osqueryVersionOfBundle } from './version.js';

export interface RenderSettings {
  logTopic: string;
  logTopicProject: string;
}

export interface RenderedFile {
  source: string;
  vmPath: string;
  permissions: string;
  content: string;
  sha256: string;
  /** Over OS Config's inline limit: delivered from Cloud Storage. */
  viaStorage: boolean;
}

export interface RenderedConfig {
  configVersion: string;
  /** The osquery version it runs with (the bundle's osquery.version): the policy pins the package to it. */
  osqueryVersion: string;
  files: RenderedFile[];
  /** The pipe osqueryd reads syslog from with this version's flags, or null when it ingests none. */
  syslogPipe: string | null;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The placeholder a `load` decorator names the configuration version with (osquery.conf): filled in after the
 * version is computed, since the version is the hash of the files that hold it.
 */
export const CONFIG_VERSION_PLACEHOLDER = '{{CONFIG_VERSION}}';

/** Placeholders a bundle may use; anything else in {{...}} is an error. CONFIG_VERSION is kept for later. */
function substitute(source: string, text: string, settings: RenderSettings): string {
  const values: Record<string, string> = {
    LOG_TOPIC: settings.logTopic,
    LOG_TOPIC_PROJECT: settings.logTopicProject,
    CONFIG_VERSION: CONFIG_VERSION_PLACEHOLDER,
  };
  return text.replace(/\{\{\s*([A-Z_]+)\s*\}\}/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`${source}: unknown placeholder {{${name}}}`);
    return values[name]!;
  });
}

/**
 * Pure: renders the bundle. The version is the hash of the canonical contents (every placed file's VM
 * path, mode and rendered text, sorted by path, and the osquery version it runs with), so the same bundle
 * and settings always give the same version and any change, a new osquery release included, gives a new one.
 * Then `{{CONFIG_VERSION}}` becomes the version in the files (osquery.conf's decorator).
 */
export function renderBundle(bundle: Bundle, settings: RenderSettings): RenderedConfig {
  const files: RenderedFile[] = [];
  for (const [source, text] of bundle.files) {
    const target = vmPathOf(source);
    if (!target) continue; // READMEs and other notes stay in the repository
    const content = substitute(source, text, settings);
    files.push({
      source,
      vmPath: target.path,
      permissions: target.permissions,
      content,
      sha256: sha256(content),
      viaStorage: content.length > INLINE_LIMIT,
    });
  }
  files.sort((a, b) => a.vmPath.localeCompare(b.vmPath));
  const osqueryVersion = osqueryVersionOfBundle(bundle.files);
  const canonical = JSON.stringify([
    ...files.map((f) => [f.vmPath, f.permissions, f.sha256]),
    ['osquery', osqueryVersion],
  ]);
  const configVersion = `v${sha256(canonical).slice(0, 12)}`;
  for (const f of files) {
    if (!f.content.includes(CONFIG_VERSION_PLACEHOLDER)) continue;
    f.content = f.content.split(CONFIG_VERSION_PLACEHOLDER).join(configVersion);
    f.sha256 = sha256(f.content);
    f.viaStorage = f.content.length > INLINE_LIMIT;
  }
  return { configVersion, osqueryVersion, files, syslogPipe: syslogPipeOfBundle(bundle) };
}

/** Pure: the pipe osqueryd reads syslog from with the bundle's flags and options (the linter's model). */
export function syslogPipeOfBundle(bundle: Bundle): string | null {
  let options: Record<string, unknown> = {};
  try {
    const conf = parseOsqueryJson(bundle.files.get('osquery.conf') ?? '{}') as { options?: unknown };
    if (typeof conf.options === 'object' && conf.options !== null) options = conf.options as Record<string, unknown>;
  } catch {
    // An osquery.conf that does not parse is the linter's finding; osqueryd would keep its flagfile's values.
  }
  return syslogPipeOf(effectiveFlags(bundle.files.get('osquery.flags') ?? '', options));
}
