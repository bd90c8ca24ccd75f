// The osquery table schema (published per version by the osquery project), loaded at run time from a
// path or URL. It is never copied into this repository.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

export const DEFAULT_OSQUERY_VERSION = '5.23.1';
export const schemaUrl = (version: string) =>
  `https://raw.githubusercontent.com/osquery/osquery-site/source/src/data/osquery_schema_versions/${version}.json`;

const tableSchema = z.object({
  name: z.string(),
  platforms: z.array(z.string()).default([]),
  evented: z.boolean().default(false),
  columns: z.array(z.object({ name: z.string(), type: z.string().optional(), hidden: z.boolean().default(false), required: z.boolean().default(false), index: z.boolean().default(false) })),
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
