// docs/contracts.md's tables of the stored documents, written from their definitions (shared/documents):
// `npm run contracts` rewrites the part between the markers, and test/unit/contracts.test.ts fails when the
// checked-in page differs from what this writes. Each field's type comes from its schema, its meaning from
// the schema's description; the prose around the tables is the page's own.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { STORED_DOCUMENTS } from '../shared/documents/index.js';
import type { DocumentDefinition } from '../shared/documents/document.js';

export const CONTRACTS_FILE = path.resolve(import.meta.dirname, '../docs/contracts.md');
export const BEGIN = '<!-- stored documents: written by `npm run contracts` from shared/documents; edit there -->';
export const END = '<!-- end of the stored documents -->';

/** One row of a document's table. */
export interface FieldRow {
  field: string;
  type: string;
  meaning: string;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: z.ZodType): Def => s.def as unknown as Def;
const meta = (s: z.ZodType) => z.globalRegistry.get(s);
const child = (s: z.ZodType, key: string) => defOf(s)[key] as z.ZodType;

/** A field's schema with its wrappers taken off: what it is, and what the wrappers said about it. */
function unwrap(schema: z.ZodType) {
  let s = schema;
  let optional = false;
  let nullable = false;
  let rebuildable = false;
  let description: string | undefined;
  let key: string | undefined;
  for (;;) {
    const m = meta(s);
    description ??= m?.description;
    key ??= typeof m?.key === 'string' ? m.key : undefined;
    if (m?.rebuildable) rebuildable = true;
    if (m?.stored === 'timestamp')
      return { base: s, timestamp: true, optional, nullable, rebuildable, description, key };
    const d = defOf(s);
    if (d.type === 'optional') optional = true;
    else if (d.type === 'nullable') nullable = true;
    else if (d.type === 'default' || d.type === 'catch' || d.type === 'readonly') {
      // A default or a fallback reads an absent field as something: the stored field may be absent.
      if (d.type !== 'readonly') optional = true;
    } else if (d.type === 'pipe') {
      // A transform reads what is stored (the pipe's input) into the domain's form.
      s = child(s, 'in');
      continue;
    } else return { base: s, timestamp: false, optional, nullable, rebuildable, description, key };
    s = child(s, 'innerType');
  }
}

const code = (v: unknown) => `\`${String(v)}\``;

/** The stored type of a field's schema, in words, and the fields nested in it (objects, maps, arrays of them). */
function typeOf(schema: z.ZodType, at: string, rows: FieldRow[]): { type: string; nested: () => void } {
  const u = unwrap(schema);
  const none = () => {};
  const or = (t: string) => `${t}${u.nullable ? ' or null' : ''}`;
  if (u.timestamp) return { type: or('timestamp'), nested: none };
  const d = defOf(u.base);
  switch (d.type) {
    case 'string':
    case 'number':
    case 'boolean':
      return { type: or(d.type), nested: none };
    case 'unknown':
    case 'any':
      return { type: or('any'), nested: none };
    case 'enum':
      return {
        type: or(
          Object.values(d.entries as Record<string, string>)
            .map(code)
            .join(' \\| '),
        ),
        nested: none,
      };
    case 'object':
      return { type: or('map'), nested: () => fieldRows(u.base as z.ZodObject, `${at}.`, rows) };
    case 'record': {
      const key = `{${u.key ?? 'key'}}`;
      const value = typeOf(child(u.base, 'valueType'), `${at}.${key}`, rows);
      return { type: or(`map: ${key} → ${value.type}`), nested: value.nested };
    }
    case 'array': {
      const element = typeOf(child(u.base, 'element'), `${at}[]`, rows);
      return { type: or(`array of ${element.type}`), nested: element.nested };
    }
    default:
      throw new Error(`${at}: no words for a ${d.type} schema`);
  }
}

function fieldRows(object: z.ZodObject, prefix: string, rows: FieldRow[]): void {
  for (const [name, schema] of Object.entries(object.shape)) {
    const field = `${prefix}${name}`;
    const u = unwrap(schema as z.ZodType);
    const { type, nested } = typeOf(schema as z.ZodType, field, rows);
    const notes = [
      u.description ?? '',
      u.optional ? '(may be absent)' : '',
      u.rebuildable ? '(read as absent when it does not match: logHeartbeat rebuilds it)' : '',
    ];
    rows.push({ field: code(field), type, meaning: notes.filter(Boolean).join(' ') });
    nested();
  }
}

/** Every field of a document, nested ones by their path (`osqueryd.cpuPercent`, `stages[].zones`). */
export function documentRows(definition: DocumentDefinition): FieldRow[] {
  const rows: FieldRow[] = [];
  fieldRows(definition.schema, '', rows);
  return rows;
}

const cell = (s: string) => s.replace(/\n/g, ' ');

/** The generated part of docs/contracts.md: one section per stored document, with its table. */
export function renderDocuments(documents: readonly DocumentDefinition[] = STORED_DOCUMENTS): string {
  const sections = documents.map((d) =>
    [
      `### \`${d.path}\``,
      '',
      d.description,
      '',
      '| field | type | meaning |',
      '| --- | --- | --- |',
      ...documentRows(d).map((r) => `| ${r.field} | ${cell(r.type)} | ${cell(r.meaning)} |`),
    ].join('\n'),
  );
  return [BEGIN, '', ...sections.flatMap((s) => [s, '']), END].join('\n');
}

/** docs/contracts.md with its generated part replaced by `generated`. */
export function withDocuments(page: string, generated = renderDocuments()): string {
  const begin = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${CONTRACTS_FILE}: the markers of the stored documents are missing`);
  return page.slice(0, begin) + generated + page.slice(end + END.length);
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  writeFileSync(CONTRACTS_FILE, withDocuments(readFileSync(CONTRACTS_FILE, 'utf8')));
  console.log(`wrote ${path.relative(process.cwd(), CONTRACTS_FILE)}`);
}
