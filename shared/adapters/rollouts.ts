// Firestore: rollouts/{configVersion} (what was published, where it is rolled out, and its staged
// rollout: stages, gates, decisions) and config/current (the version zones outside a rollout get, and
// the staged rollout under way).
import {
  FieldPath,
  FieldValue,
  Timestamp,
  type DocumentData,
  type Firestore,
  type Transaction,
} from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { isNotFound } from '../errors.js';
import { countFirestore } from '../metrics.js';
import type { PolicyConfig } from '../domain/policy.js';
import type { ZoneRollout } from '../domain/assignment.js';
import type { Evaluation, StagedRollout } from '../domain/rollout.js';
import { stageEpisodeOpen } from './alerts.js';

export const ROLLOUTS = 'rollouts';
export const CURRENT = { collection: 'config', doc: 'current' } as const;

export interface RolloutRecord {
  configVersion: string;
  publishedAt: Date;
  bucket: string | null;
  files: Array<{ source: string; vmPath: string; sha256: string; size: number; object?: string; generation?: string }>;
  /** What vmLifecycle needs to create an assignment at this version. */
  policyConfig: PolicyConfig;
  /** `${project}/${zone}` -> the zone's assignment at this version. */
  zones: Record<string, ZoneRollout>;
  /** project -> hosts per state that run this version (written by the audit). */
  hostCounts?: Record<string, Record<string, number>>;
  /** Its staged rollout (fields of the same document); absent on versions published before rollouts were staged. */
  staged?: StagedRollout;
}

/** The fields of a staged rollout, kept at the top of rollouts/{version} (`status: "halted"` reads as it says). */
const STAGED_FIELDS = [
  'mode',
  'status',
  'baseline',
  'startedAt',
  'stage',
  'stages',
  'skipped',
  'observe',
  'revision',
  'resumedAt',
  'halt',
  'evaluation',
  'history',
] as const;

/** Timestamps back to Dates, however deep (stages, history, halt, evaluation). */
function withDates<T>(value: T): T {
  if (value instanceof Timestamp) return value.toDate() as T;
  if (Array.isArray(value)) return value.map(withDates) as T;
  if (value && typeof value === 'object' && !(value instanceof Date))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withDates(v)])) as T;
  return value;
}

function recordOf(id: string, data: DocumentData): RolloutRecord {
  const { publishedAt, ...rest } = data;
  const record = { ...rest, publishedAt: (publishedAt as Timestamp).toDate() } as RolloutRecord;
  if (data.mode) {
    record.staged = withDates({
      configVersion: id,
      ...Object.fromEntries(STAGED_FIELDS.map((f) => [f, data[f] ?? null])),
    }) as StagedRollout;
    record.staged.skipped ??= [];
    record.staged.history ??= [];
  }
  for (const f of STAGED_FIELDS) delete (record as unknown as Record<string, unknown>)[f];
  return record;
}

const stagedFields = (r: StagedRollout): DocumentData => {
  const { configVersion: _id, ...fields } = r;
  return fields;
};

/** config/current: the version zones outside a rollout get, and the staged rollout under way (null: none). */
export interface CurrentConfig {
  configVersion: string | null;
  rollout: string | null;
  since: Date | null;
}

const currentOf = (data: DocumentData | undefined): CurrentConfig => ({
  configVersion: (data?.configVersion as string | undefined) ?? null,
  rollout: (data?.rollout as string | undefined) ?? null,
  since: data?.since instanceof Timestamp ? data.since.toDate() : null,
});

export class RolloutConflict extends Error {
  override name = 'RolloutConflict';
}

export async function readCurrent(db: Firestore = clients.firestore()): Promise<CurrentConfig> {
  const snapshot = await db.collection(CURRENT.collection).doc(CURRENT.doc).get();
  countFirestore('reads');
  return currentOf(snapshot.data());
}

/** Against config/current as the caller read it: anything else means another publish or decision came first. */
function expectCurrent(tx: Transaction, db: Firestore, expected: CurrentConfig) {
  return tx.get(db.collection(CURRENT.collection).doc(CURRENT.doc)).then((snapshot) => {
    countFirestore('reads');
    const now = currentOf(snapshot.data());
    if (now.configVersion !== expected.configVersion || now.rollout !== expected.rollout)
      throw new RolloutConflict(
        `config/current changed meanwhile (now ${now.configVersion ?? 'nothing'}` +
          `${now.rollout ? `, rollout of ${now.rollout}` : ''}): run the command again`,
      );
  });
}

function writeCurrent(
  tx: Transaction,
  db: Firestore,
  next: { configVersion: string | null; rollout: string | null },
  since: Date,
) {
  tx.set(db.collection(CURRENT.collection).doc(CURRENT.doc), { ...next, since: Timestamp.fromDate(since) });
  countFirestore('writes');
}

/**
 * Records a published version and its rollout in one transaction, against config/current as the caller
 * read it: the version becomes current when nothing is left to stage (published all at once, or no
 * zone), else it becomes the rollout under way beside the unchanged current version. `superseded` is a
 * rollout under way that this one replaces (all at once), at its next revision.
 */
export async function recordRolloutStart(
  published: Omit<RolloutRecord, 'zones' | 'publishedAt' | 'staged' | 'hostCounts'>,
  staged: StagedRollout,
  expected: CurrentConfig,
  superseded: StagedRollout | null = null,
  db: Firestore = clients.firestore(),
): Promise<{ created: boolean; madeCurrent: boolean }> {
  const ref = db.collection(ROLLOUTS).doc(published.configVersion);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const [existing] = await Promise.all([tx.get(ref), expectCurrent(tx, db, expected)]);
    countFirestore('reads');
    if (superseded && !(await expectRevision(tx, db, superseded)))
      throw new RolloutConflict(`the rollout of ${superseded.configVersion} changed meanwhile: run the command again`);
    const now = staged.startedAt;
    if (existing.exists) tx.update(ref, stagedFields(staged));
    else tx.set(ref, { ...published, publishedAt: Timestamp.fromDate(now), zones: {}, ...stagedFields(staged) });
    if (superseded) tx.update(db.collection(ROLLOUTS).doc(superseded.configVersion), stagedFields(superseded));
    const madeCurrent = staged.status === 'completed';
    writeCurrent(
      tx,
      db,
      madeCurrent
        ? { configVersion: published.configVersion, rollout: null }
        : { configVersion: expected.configVersion, rollout: published.configVersion },
      madeCurrent ? now : (expected.since ?? now),
    );
    countFirestore('writes', 1 + Number(Boolean(superseded)));
    return { created: !existing.exists, madeCurrent };
  });
}

async function expectRevision(tx: Transaction, db: Firestore, next: StagedRollout): Promise<boolean> {
  const snapshot = await tx.get(db.collection(ROLLOUTS).doc(next.configVersion));
  countFirestore('reads');
  return snapshot.exists && snapshot.get('revision') === next.revision - 1;
}

/**
 * Writes a decision on a rollout only if the record is still at the revision it was made on (false
 * otherwise: another controller or an operator decided first, and nothing is written). In the same
 * transaction: config/current when the decision changes it (completed, rolled back to a version), and
 * the opening of the alert episode a halt owes.
 */
export async function applyDecision(
  next: StagedRollout,
  also: {
    current?: { expected: CurrentConfig; next: { configVersion: string | null; rollout: string | null } };
    episode?: Parameters<typeof stageEpisodeOpen>[1];
  } = {},
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const ref = db.collection(ROLLOUTS).doc(next.configVersion);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const [fresh] = await Promise.all([
      expectRevision(tx, db, next),
      also.current ? expectCurrent(tx, db, also.current.expected) : undefined,
    ]);
    if (!fresh) return false;
    tx.update(ref, stagedFields(next));
    countFirestore('writes');
    if (also.current) writeCurrent(tx, db, also.current.next, next.history.at(-1)?.at ?? new Date());
    if (also.episode) stageEpisodeOpen(tx, also.episode, db);
    return true;
  });
}

/** Makes a published version current, no rollout under way (rollback --to when no rollout record decides it). */
export async function setCurrent(
  expected: CurrentConfig,
  next: { configVersion: string | null; rollout: string | null },
  at: Date,
  db: Firestore = clients.firestore(),
): Promise<void> {
  countFirestore('transactions');
  await db.runTransaction(async (tx) => {
    await expectCurrent(tx, db, expected);
    writeCurrent(tx, db, next, at);
  });
}

/** Records the controller's latest look at a rollout, unless a decision changed it since. */
export async function recordEvaluation(
  configVersion: string,
  revision: number,
  evaluation: Evaluation,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const ref = db.collection(ROLLOUTS).doc(configVersion);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    if (!snapshot.exists || snapshot.get('revision') !== revision) return false;
    tx.update(ref, { evaluation });
    countFirestore('writes');
    return true;
  });
}

/**
 * config/current with the records a zone's version depends on: the current version's and, while a
 * staged rollout has not completed, its target's (one read, then both records in one).
 */
export async function readConfiguration(db: Firestore = clients.firestore()): Promise<{
  current: CurrentConfig;
  currentRecord: RolloutRecord | null;
  rolloutRecord: RolloutRecord | null;
}> {
  const current = await readCurrent(db);
  const ids = [current.configVersion, current.rollout].filter((v): v is string => Boolean(v));
  const snapshots = ids.length ? await db.getAll(...ids.map((id) => db.collection(ROLLOUTS).doc(id))) : [];
  countFirestore('reads', snapshots.length);
  const records = new Map(snapshots.filter((s) => s.exists).map((s) => [s.id, recordOf(s.id, s.data()!)]));
  return {
    current,
    currentRecord: current.configVersion ? (records.get(current.configVersion) ?? null) : null,
    rolloutRecord: current.rollout ? (records.get(current.rollout) ?? null) : null,
  };
}

export async function currentVersion(db: Firestore = clients.firestore()): Promise<string | null> {
  const snapshot = await db.collection(CURRENT.collection).doc(CURRENT.doc).get();
  countFirestore('reads');
  return (snapshot.get('configVersion') as string | undefined) ?? null;
}

export async function getRollout(
  configVersion: string,
  db: Firestore = clients.firestore(),
): Promise<RolloutRecord | null> {
  const snapshot = await db.collection(ROLLOUTS).doc(configVersion).get();
  countFirestore('reads');
  return snapshot.exists ? recordOf(snapshot.id, snapshot.data()!) : null;
}

const zoneKey = (project: string, zone: string) => `${project}/${zone}`;

/**
 * Takes a zone off a version's record before its assignment moves to another version: a record lists
 * a zone only while the zone's assignment is at that version, so the audit's shortcut for zones rolled
 * out (SUCCEEDED) never trusts a zone that was moved away since.
 */
export async function forgetZoneRollout(
  configVersion: string,
  project: string,
  zone: string,
  db: Firestore = clients.firestore(),
): Promise<void> {
  try {
    await db
      .collection(ROLLOUTS)
      .doc(configVersion)
      .update(new FieldPath('zones', zoneKey(project, zone)), FieldValue.delete());
    countFirestore('writes');
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** Notes a zone's assignment revision on the version's record (merge: zones are written independently). */
export async function recordZoneRollout(
  configVersion: string,
  zone: ZoneRollout,
  db: Firestore = clients.firestore(),
): Promise<void> {
  await db
    .collection(ROLLOUTS)
    .doc(configVersion)
    .set(
      { zones: { [zoneKey(zone.project, zone.zone)]: { ...zone, updatedAt: FieldValue.serverTimestamp() } } },
      { merge: true },
    );
  countFirestore('writes');
}

/** The audit's count of hosts per state on this version, for one project; written only when it changed. */
export async function recordHostCounts(
  configVersion: string,
  project: string,
  counts: Record<string, number>,
  previous?: Record<string, number>,
  db: Firestore = clients.firestore(),
): Promise<void> {
  const same =
    previous && JSON.stringify(Object.entries(previous).sort()) === JSON.stringify(Object.entries(counts).sort());
  if (same) return;
  // update() replaces the project's map whole (a state that dropped to zero disappears).
  await db
    .collection(ROLLOUTS)
    .doc(configVersion)
    .update({ [`hostCounts.${project}`]: counts });
  countFirestore('writes');
}
