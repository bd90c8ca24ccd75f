// What every stored document's definition shares: the error a read raises when a document does not match
// its schema (naming the document and the field), timestamps read as dates, and the compile-time check that
// a schema reads exactly the domain's type. The definitions themselves: the other modules of this folder;
// the reference for people: docs/contracts.md, generated from them (npm run contracts).
import { Timestamp } from '@google-cloud/firestore';
import { z } from 'zod';
import { log } from '../log.js';

/**
 * A stored document that does not match its definition: which one, and what does not match (`stateSince:
 * expected a timestamp`). Neither transient nor permanent: the event that read it is fine, the document is
 * not, and once someone mends it (or a release reads it) a redelivery succeeds, so handlers treat it as a
 * failure of unknown cause. Each caller decides what an invalid document means for it (docs/contracts.md).
 */
export class DocumentInvalid extends Error {
  override name = 'DocumentInvalid';
  constructor(
    /** The document's path, e.g. `hosts/123`. */
    readonly path: string,
    /** One line per field that does not match, e.g. `stateSince: expected a timestamp`. */
    readonly problems: string[],
  ) {
    super(`${path}: ${problems.join('; ')}`);
  }
}

/** `stages[0].startedAt: expected a timestamp`: where in the document, and what is wrong there. */
function problemsOf(
  error: { issues: ReadonlyArray<{ path: readonly PropertyKey[]; message: string }> },
  prefix: PropertyKey[] = [],
): string[] {
  return error.issues.map((issue) => {
    const where = [...prefix, ...issue.path]
      .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i ? '.' : ''}${String(key)}`))
      .join('');
    return where ? `${where}: ${issue.message}` : issue.message;
  });
}

// Fields read as absent when they do not match (rebuildable below) are noted here while one read runs.
// Parsing is synchronous, so one read's notes never mix with another's.
let rebuiltNotes: string[] | null = null;

/**
 * Reads `data` (a document's fields, as Firestore returns them) with `schema`: the domain's value, dates for
 * timestamps, fields the schema does not know left out. Throws DocumentInvalid naming `path` and every
 * field that does not match; never casts. Fields marked rebuildable that do not match are read as absent and
 * reported (the writer rebuilds them from its next sample).
 */
export function readDocument<S extends z.ZodType>(schema: S, path: string, data: unknown): z.output<S> {
  rebuiltNotes = [];
  try {
    const result = schema.safeParse(data);
    if (!result.success) throw new DocumentInvalid(path, problemsOf(result.error));
    if (rebuiltNotes.length > 0)
      reportInvalid(new DocumentInvalid(path, rebuiltNotes), 'read as absent until its writer rebuilds it');
    return result.data;
  } finally {
    rebuiltNotes = null;
  }
}

/** One document of a listing: its value, or why it could not be read (the caller decides what that means). */
export type Read<T> = { ok: true; value: T } | { ok: false; invalid: DocumentInvalid };

/** readDocument for the documents of a listing: one that does not match is returned as such, not thrown. */
export function tryReadDocument<S extends z.ZodType>(schema: S, path: string, data: unknown): Read<z.output<S>> {
  try {
    return { ok: true, value: readDocument(schema, path, data) };
  } catch (error) {
    if (error instanceof DocumentInvalid) return { ok: false, invalid: error };
    throw error;
  }
}

/**
 * Logs a document that does not match its definition, with its path and each field, and what the reader
 * did about it (`outcome`: left as it is, skipped, shown as absent).
 */
export function reportInvalid(invalid: DocumentInvalid, outcome: string): void {
  log.warn(
    { document: invalid.path, problems: invalid.problems },
    `stored document does not match its definition (docs/contracts.md): ${outcome}`,
  );
}

const isTimestamp = (v: unknown): v is Timestamp | Date => v instanceof Timestamp || v instanceof Date;

/**
 * A Firestore timestamp, read as a Date. A Date is accepted too: it is what the writers hand the client
 * (which stores it as a timestamp), so the same schema checks what is written and what is read.
 */
export const timestamp = z
  .custom<Timestamp | Date>(isTimestamp, { message: 'expected a timestamp' })
  .transform((v) => (v instanceof Timestamp ? v.toDate() : v))
  .meta({ stored: 'timestamp' });

/**
 * A field its writer rebuilds from its next sample (logHeartbeat's osqueryd, querySchedule, syslog): when
 * it does not match, it is read as absent and reported, rather than making the whole document unreadable.
 */
export function rebuildable<S extends z.ZodType>(field: string, schema: S) {
  return schema
    .nullish()
    .catch((ctx) => {
      rebuiltNotes?.push(...problemsOf(ctx.error, [field]));
      return null;
    })
    .meta({ rebuildable: true });
}

/** A field some documents lack (older ones, or none written yet): read as null when absent. */
export const absentAsNull = <S extends z.ZodType>(schema: S) => schema.nullish().transform((v) => v ?? null);

/** A type with its intersections merged, however deep (`A & B` and its merged form are the same shape). */
type Merged<T> = T extends Date
  ? T
  : T extends ReadonlyArray<infer U>
    ? Array<Merged<U>>
    : T extends object
      ? { [K in keyof T]: Merged<T[K]> }
      : T;

/** Exactly the same shape both ways (optional, nullable and missing fields included). */
export type Same<A, B> =
  (<T>() => T extends Merged<A> ? 1 : 2) extends <T>() => T extends Merged<B> ? 1 : 2 ? true : false;

/**
 * A schema that reads exactly the domain's type `T` (checked when compiling, free at run time): the domain
 * keeps its types, and a schema that drifts from them does not compile.
 *   const host = readsAs<Host>()(z.object({ ... }));
 */
export const readsAs =
  <T>() =>
  <S extends z.ZodType>(schema: S & (Same<z.output<S>, T> extends true ? unknown : { drifted: 'from T' })): S =>
    schema;

/** One stored document (or family of documents), as docs/contracts.md lists it. */
export interface DocumentDefinition {
  /** Where it is stored, e.g. `hosts/{instanceId}`. */
  path: string;
  /** What it is for and who writes it, in a sentence or two. */
  description: string;
  schema: z.ZodObject;
}
