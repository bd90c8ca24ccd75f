// Prepares osquery SQL against the schema with SQLite itself (node:sqlite): the tables and columns
// (hidden ones and column aliases included) as declared tables, table aliases as views, osquery's extra
// SQL functions registered.
import { DatabaseSync } from 'node:sqlite';
import type { OsquerySchema } from './schema.js';
import { COLUMN_ALIASES, TABLE_ALIASES } from './schema-extras.js';

// Functions osquery adds to SQLite (osquery/sql/sqlite_*.cpp); the linter needs only their names.
const OSQUERY_FUNCTIONS = [
  'regex_match',
  'regex_split',
  'split',
  'inet_aton',
  'community_id_v1',
  'version_compare',
  'in_cidr_block',
  'md5',
  'sha1',
  'sha256',
  'to_base64',
  'from_base64',
  'conditional_to_base64',
  'concat',
  'concat_ws',
  'sqrt',
  'log',
  'log10',
  'ln',
  'exp',
  'power',
  'ceil',
  'floor',
  'pi',
  'degrees',
  'radians',
  'sin',
  'cos',
  'tan',
  'cot',
  'asin',
  'acos',
  'atan',
  'atan2',
  'ltrim',
  'rtrim',
  'trim',
  'reverse',
  'uuid',
  'carve',
];

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export interface SqlCheck {
  /** SQLite's own message, when the statement does not prepare. */
  error?: string;
  /** Every table the statement reads. */
  tables: string[];
  /** Tables that need a constraint (schema `required` columns) and are read without one. */
  unconstrained: Array<{ table: string; columns: string[] }>;
}

export class SqlChecker {
  private readonly db = new DatabaseSync(':memory:');
  private readonly rootPages = new Map<number, { table: string; requiredIndex: boolean }>();

  constructor(private readonly schema: OsquerySchema) {
    for (const table of schema.values()) {
      const own = table.columns.map((c) => c.name);
      const aliases = Object.entries(COLUMN_ALIASES[table.name] ?? {})
        .filter(([, target]) => own.includes(target))
        .map(([alias]) => alias);
      const columns = [...new Set([...own, ...aliases])];
      this.db.exec(`CREATE TABLE ${quote(table.name)} (${columns.map(quote).join(', ')})`);
      // An index per required column: the plan then shows whether the query constrains it.
      for (const c of table.columns.filter((col) => col.required)) {
        this.db.exec(
          `CREATE INDEX ${quote(`${table.name}__required__${c.name}`)} ON ${quote(table.name)} (${quote(c.name)})`,
        );
      }
    }
    for (const [alias, target] of Object.entries(TABLE_ALIASES)) {
      const table = schema.get(target);
      if (!table || schema.has(alias)) continue;
      const visible = table.columns.filter((c) => !c.hidden).map((c) => quote(c.name));
      this.db.exec(`CREATE VIEW ${quote(alias)} AS SELECT ${[...new Set(visible)].join(', ')} FROM ${quote(target)}`);
    }
    for (const fn of OSQUERY_FUNCTIONS) {
      try {
        this.db.function(fn, { varargs: true, deterministic: true }, () => null);
      } catch {
        // Built into this SQLite already.
      }
    }
    const rows = this.db
      .prepare("SELECT name, tbl_name, rootpage, type FROM sqlite_schema WHERE type != 'view'")
      .all() as Array<{
      name: string;
      tbl_name: string;
      rootpage: number;
      type: string;
    }>;
    for (const r of rows)
      this.rootPages.set(r.rootpage, {
        table: r.tbl_name,
        requiredIndex: r.type === 'index' && r.name.includes('__required__'),
      });
  }

  check(sql: string): SqlCheck {
    let program: Array<{ opcode: string; p2: number }>;
    try {
      program = this.db.prepare(`EXPLAIN ${sql}`).all() as Array<{ opcode: string; p2: number }>;
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error), tables: [], unconstrained: [] };
    }
    const tables = new Set<string>();
    const constrained = new Set<string>();
    for (const op of program) {
      if (op.opcode !== 'OpenRead') continue;
      const page = this.rootPages.get(op.p2);
      if (!page) continue;
      tables.add(page.table);
      if (page.requiredIndex) constrained.add(page.table);
    }
    const unconstrained: SqlCheck['unconstrained'] = [];
    for (const table of tables) {
      const required =
        this.schema
          .get(table)
          ?.columns.filter((c) => c.required)
          .map((c) => c.name) ?? [];
      if (required.length === 0 || constrained.has(table)) continue;
      // LIKE patterns on a required column count (osquery expands them), though SQLite uses no index for them.
      if (required.some((c) => new RegExp(`\\b${c}\\s+like\\b`, 'i').test(sql))) continue;
      unconstrained.push({ table, columns: required });
    }
    return { tables: [...tables].sort(), unconstrained };
  }

  close(): void {
    this.db.close();
  }
}
