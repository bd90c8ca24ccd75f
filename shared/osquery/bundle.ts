// An osquery configuration bundle: the files OS Config puts on every in-scope VM, read from a folder.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** Where each bundle file lands on a VM, and its mode. Keyed by the file's path inside the bundle. */
export const VM_PATHS: Record<string, { path: string; permissions: string }> = {
  'osquery.flags': { path: '/etc/osquery/osquery.flags', permissions: '0644' },
  'osquery.conf': { path: '/etc/osquery/osquery.conf', permissions: '0644' },
  'rsyslog/60-osquery.conf': { path: '/etc/rsyslog.d/60-osquery.conf', permissions: '0644' },
  'fluentd/osquery.conf': { path: '/etc/fluent/conf.d/osquery.conf', permissions: '0644' },
};

export const packVmPath = (file: string) => `/etc/osquery/packs/${path.basename(file)}`;

/**
 * fluentd's plugin directory (fluent-package v5: FLUENT_PLUGIN, fluentd's default): fluentd loads a
 * `@type X` filter from filter_X.rb there. Read-only to the service user: it is code fluentd runs.
 */
export const FLUENTD_PLUGIN_DIR = '/etc/fluent/plugin';

/**
 * Where a bundle file goes on the VM (packs/X.conf -> /etc/osquery/packs/X.conf,
 * fluentd/plugin/X.rb -> /etc/fluent/plugin/X.rb).
 */
export function vmPathOf(file: string): { path: string; permissions: string } | null {
  if (VM_PATHS[file]) return VM_PATHS[file];
  if (file.startsWith('packs/') && file.endsWith('.conf')) return { path: packVmPath(file), permissions: '0644' };
  if (/^fluentd\/plugin\/[a-z0-9_]+\.rb$/.test(file))
    return { path: `${FLUENTD_PLUGIN_DIR}/${path.basename(file)}`, permissions: '0644' };
  return null;
}

/** OS Config's limit for inline file content and exec scripts: a larger bundle file goes by Cloud Storage. */
export const INLINE_LIMIT = 1024;

/** Object name of a file of a version in the configuration bucket. */
export const objectNameOf = (configVersion: string, source: string) => `bundles/${configVersion}/${source}`;

export interface Bundle {
  dir: string;
  /** Bundle-relative path (forward slashes) -> content, sorted by path. */
  files: Map<string, string>;
}

export const DEFAULT_BUNDLE_DIR = path.resolve(import.meta.dirname, 'bundle');

export async function loadBundle(dir: string = DEFAULT_BUNDLE_DIR): Promise<Bundle> {
  const entries = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const files = new Map<string, string>();
  const relative = entries
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
  for (const rel of relative) files.set(rel, await readFile(path.join(dir, rel), 'utf8'));
  return { dir, files };
}

/**
 * `--name=value` lines of a flags file (comments and blanks skipped; gflags also takes `-name=value`);
 * bad lines are returned apart.
 */
export function parseFlags(text: string): { flags: Map<string, string>; bad: Array<{ line: number; text: string }> } {
  const flags = new Map<string, string>();
  const bad: Array<{ line: number; text: string }> = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^--?([a-z0-9_]+)(?:=(.*))?$/.exec(line);
    if (!m) bad.push({ line: i + 1, text: line });
    else flags.set(m[1]!, m[2] ?? 'true');
  });
  return { flags, bad };
}
