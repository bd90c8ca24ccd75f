// The osquery table schema (published per version by the osquery project under CC BY 4.0). The pinned
// version's schema ships in the repository (see NOTICE); other versions are read from a path or URL.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { PINNED_OSQUERY_VERSION } from './version.js';

export const schemaUrl = (version: string) =>
  `https://raw.githubusercontent.com/osquery/osquery-site/source/src/data/osquery_schema_versions/${version}.json`;

/** The schema file kept in the repository for a version, or null when only the published URL has it. */
export function bundledSchemaPath(version: string): string | null {
  const file = path.resolve(import.meta.dirname, 'schema', `osquery-${version}.json`);
  return existsSync(file) ? file : null;
}

/**
 * Where the linter reads the schema from: an explicit path or
 * URL, else the repository's copy, else the published URL.
 */
export function schemaSource(explicit: string | undefined, version: string = PINNED_OSQUERY_VERSION): string {
  return explicit || bundledSchemaPath(version) || schemaUrl(version);
}

const tableSchema = z.object({
  name: z.string(),
  platforms: z.array(z.string()).default([]),
  evented: z.boolean().default(false),
  columns: z.array(
    z.object({
      name: z.string(),
      type: z.string().optional(),
      hidden: z.boolean().default(false),
      required: z.boolean().default(false),
      index: z.boolean().default(false),
    }),
  ),
});

export type OsqueryTable = z.infer<typeof tableSchema>;
export type OsquerySchema = Map<string, OsqueryTable>;

export function parseSchema(json: unknown): OsquerySchema {
  const tables = z.array(tableSchema).parse(json);
  return new Map(tables.map((t) => [t.name, t]));
}

/** Reads a schema from a file path or an http(s) URL. */
export async function loadSchema(source: string): Promise<OsquerySchema> {
  let text: string;
  if (/^https?:\/\//.test(source)) {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`fetching the osquery schema from ${source}: HTTP ${res.status}`);
    text = await res.text();
  } else {
    text = await readFile(source, 'utf8');
  }
  try {
    return parseSchema(JSON.parse(text));
  } catch (error) {
    throw new Error(`${source} is not an osquery schema: ${error instanceof Error ? error.message : error}`);
  }
}

export const runsOnLinux = (t: OsqueryTable) => t.platforms.some((p) => p === 'linux' || p === 'posix');

/** The schema a bundle is checked against, and a plain note when the repository lacks its osquery version's. */
export interface BundleSchema {
  source: string;
  /** The osquery version whose schema it is, or null for an explicit path or URL. */
  version: string | null;
  note: string | null;
}

/**
 * Pure but for the file check: an explicit path or URL wins; else the schema of the osquery version the bundle
 * pins (its osquery.version) when the repository keeps it; else the pinned version's, said plainly: findings
 * then come from that version only (a table new in the bundle's release reads as unknown, one it dropped passes).
 */
export function schemaForBundle(explicit: string | undefined, bundleVersion: string): BundleSchema {
  if (explicit) return { source: explicit, version: null, note: null };
  const own = bundledSchemaPath(bundleVersion);
  if (own) return { source: own, version: bundleVersion, note: null };
  return {
    source: bundledSchemaPath(PINNED_OSQUERY_VERSION) ?? schemaUrl(PINNED_OSQUERY_VERSION),
    version: PINNED_OSQUERY_VERSION,
    note:
      `the bundle pins osquery ${bundleVersion}, whose schema the repository does not have: checked against ` +
      `osquery ${PINNED_OSQUERY_VERSION}'s, so findings come from ${PINNED_OSQUERY_VERSION} only ` +
      `(add ${schemaUrl(bundleVersion)} as shared/osquery/schema/osquery-${bundleVersion}.json, or pass --schema)`,
  };
}
