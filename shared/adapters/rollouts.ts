// Firestore: rollouts/{configVersion} (what was published, where it is rolled out, and its staged
// rollout: stages, gates, decisions) and config/current (the version zones outside a rollout get, and
// the staged rollout under way), read through shared/documents/rollouts.ts. Every zone's version depends
// on them: one that does not match its definition raises DocumentInvalid (nothing is decided from it).
import {
  FieldPath,
  FieldValue,
  Timestamp,
  type DocumentSnapshot,
  type Firestore,
  type Transaction,
} from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { isNotFound, PermanentError } from '../errors.js';
import { countFirestore } from '../metrics.js';
import type { PolicyConfig } from '../domain/policy.js';
import type { ZoneRollout } from '../domain/assignment.js';
import type { StagedRollout } from '../domain/rollout.js';
import type { RolloutEpisode, RolloutTransition } from '../domain/rollout-transition.js';
import { readDocument, readsAs } from '../documents/document.js';
import * as documents from '../documents/rollouts.js';
import { ALERTS, isResolved, stageEpisodeOpen } from './alerts.js';

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

/** The published part of a record reads exactly as RolloutRecord says (checked when compiling). */
const publishedRecord = readsAs<Omit<RolloutRecord, 'staged'>>()(documents.publishedRecord);

/**
 * rollouts/{version} as read: what was published, and its staged rollout (the fields of the same document,
 * read when it has a `mode`: versions published before rollouts were staged have none).
 */
function recordOf(snapshot: DocumentSnapshot): RolloutRecord {
  const path = snapshot.ref.path;
  const data = snapshot.data();
  const record: RolloutRecord = readDocument(publishedRecord, path, data);
  if (data?.mode) record.staged = readDocument(documents.stagedRollout, path, { ...data, configVersion: snapshot.id });
  return record;
}

/** config/current: the version zones outside a rollout get, and the staged rollout under way (null: none). */
export interface CurrentConfig {
  configVersion: string | null;
  rollout: string | null;
  since: Date | null;
}

/** What config/current says before anything was published (no document yet). */
export const NO_CONFIGURATION = {
  current: { configVersion: null, rollout: null, since: null },
  currentRecord: null,
  rolloutRecord: null,
} as const satisfies Configuration;

const currentConfig = readsAs<CurrentConfig>()(documents.currentConfig);

const currentOf = (snapshot: DocumentSnapshot): CurrentConfig =>
  snapshot.exists ? readDocument(currentConfig, snapshot.ref.path, snapshot.data()) : NO_CONFIGURATION.current;

export class RolloutConflict extends Error {
  override name = 'RolloutConflict';
}

export async function readCurrent(db: Firestore = clients.firestore()): Promise<CurrentConfig> {
  const snapshot = await db.collection(CURRENT.collection).doc(CURRENT.doc).get();
  countFirestore('reads');
  return currentOf(snapshot);
}

/** What publish records of a version besides its rollout: the files and the policy built from them. */
export type PublishedFields = Omit<RolloutRecord, 'zones' | 'publishedAt' | 'staged' | 'hostCounts'>;

/** The revision a record's staged rollout is at (null: no staged rollout yet, or no record). */
const revisionOf = (snapshot: DocumentSnapshot) =>
  snapshot.exists
    ? (readDocument(documents.rolloutRevision, snapshot.ref.path, { revision: snapshot.get('revision') }).revision ??
      null)
    : null;

/** Resolves the episodes a transition ends: each once (one already resolved is left as it is). */
function closeEpisodes(tx: Transaction, snapshots: DocumentSnapshot[], at: Date) {
  for (const s of snapshots)
    if (s.exists && !isResolved(s)) {
      tx.update(s.ref, { resolved: { at: Timestamp.fromDate(at), sentAt: null }, owed: true });
      countFirestore('writes');
    }
}

/**
 * Commits a rollout transition (shared/domain/rollout-transition.ts) in one transaction, only while
 * config/current and every record it writes are as they were read (false otherwise: another publish,
 * decision or command came first, and nothing is written): the staged rollouts (and, for a publish, what
 * was published), config/current, the alert episodes it opens and the ones it ends.
 */
export async function commitTransition(
  t: RolloutTransition,
  published: PublishedFields | null = null,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const currentRef = db.collection(CURRENT.collection).doc(CURRENT.doc);
  const refs = t.writes.map((w) => db.collection(ROLLOUTS).doc(w.rollout.configVersion));
  const closing = t.closes.map((key) => db.collection(ALERTS).doc(key));
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const [currentSnapshot, ...snapshots] = await tx.getAll(currentRef, ...refs, ...closing);
    countFirestore('reads', 1 + refs.length + closing.length);
    const read = currentOf(currentSnapshot!);
    if (read.configVersion !== t.expectedCurrent.configVersion || read.rollout !== t.expectedCurrent.rollout)
      return false;
    const records = snapshots.slice(0, refs.length);
    if (t.writes.some((w, i) => revisionOf(records[i]!) !== w.expectedRevision)) return false;
    for (const [i, w] of t.writes.entries()) {
      const fields = {
        ...(w.published && published?.configVersion === w.rollout.configVersion ? published : {}),
        ...documents.stagedData(w.rollout),
      };
      if (records[i]!.exists) tx.update(refs[i]!, fields);
      else if (published?.configVersion === w.rollout.configVersion)
        tx.set(refs[i]!, { ...published, publishedAt: Timestamp.fromDate(t.at), zones: {}, ...fields });
      else throw new Error(`rollouts/${w.rollout.configVersion} is missing: nothing to decide on`);
    }
    countFirestore('writes', t.writes.length);
    if (t.current) {
      // `since` is when config/current's version became what it is: kept while it stays.
      const since = t.current.configVersion === read.configVersion ? (read.since ?? t.at) : t.at;
      tx.set(currentRef, { ...t.current, since: Timestamp.fromDate(since) });
      countFirestore('writes');
    }
    for (const episode of t.opens) stageEpisodeOpen(tx, episode, db);
    closeEpisodes(tx, snapshots.slice(refs.length), t.at);
    return true;
  });
}

/**
 * Records the controller's look at a rollout that holds (its evaluation, the stall episode it opens or
 * ends) unless a decision changed the rollout since (false then).
 */
export async function recordHold(
  hold: { rollout: StagedRollout; opens: RolloutEpisode[]; closes: string[] },
  at: Date,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const ref = db.collection(ROLLOUTS).doc(hold.rollout.configVersion);
  const closing = hold.closes.map((key) => db.collection(ALERTS).doc(key));
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const [snapshot, ...episodes] = await tx.getAll(ref, ...closing);
    countFirestore('reads', 1 + closing.length);
    if (revisionOf(snapshot!) !== hold.rollout.revision) return false;
    tx.update(ref, { evaluation: hold.rollout.evaluation, stall: hold.rollout.stall });
    countFirestore('writes');
    for (const episode of hold.opens) stageEpisodeOpen(tx, episode, db);
    closeEpisodes(tx, episodes, at);
    return true;
  });
}

/** config/current and the records a zone's version depends on. */
export interface Configuration {
  current: CurrentConfig;
  currentRecord: RolloutRecord | null;
  rolloutRecord: RolloutRecord | null;
}

/**
 * config/current with the records a zone's version depends on: the current version's and, while a
 * staged rollout has not completed, its target's (one read, then both records in one).
 */
export async function readConfiguration(db: Firestore = clients.firestore()): Promise<Configuration> {
  const current = await readCurrent(db);
  const ids = [current.configVersion, current.rollout].filter((v): v is string => Boolean(v));
  const snapshots = ids.length ? await db.getAll(...ids.map((id) => db.collection(ROLLOUTS).doc(id))) : [];
  countFirestore('reads', snapshots.length);
  const records = new Map(snapshots.filter((s) => s.exists).map((s) => [s.id, recordOf(s)]));
  return {
    current,
    currentRecord: current.configVersion ? (records.get(current.configVersion) ?? null) : null,
    rolloutRecord: current.rollout ? (records.get(current.rollout) ?? null) : null,
  };
}

export async function currentVersion(db: Firestore = clients.firestore()): Promise<string | null> {
  const snapshot = await db.collection(CURRENT.collection).doc(CURRENT.doc).get();
  countFirestore('reads');
  return currentOf(snapshot).configVersion;
}

export async function getRollout(
  configVersion: string,
  db: Firestore = clients.firestore(),
): Promise<RolloutRecord | null> {
  const snapshot = await db.collection(ROLLOUTS).doc(configVersion).get();
  countFirestore('reads');
  return snapshot.exists ? recordOf(snapshot) : null;
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
  // update() replaces the project's map whole (a state that dropped to zero disappears); the field path
  // quotes the project id, which may hold dots and colons (`example.com:acme`).
  try {
    await db.collection(ROLLOUTS).doc(configVersion).update(new FieldPath('hostCounts', project), counts);
    countFirestore('writes');
  } catch (error) {
    if (!isNotFound(error)) throw error;
    // The current version's record is gone (deleted by hand): said loudly, and the project's audit goes on.
    throw new MissingRolloutRecord(configVersion);
  }
}

/** config/current names a version whose rollouts/{version} record is missing: nothing is written on its behalf. */
export class MissingRolloutRecord extends PermanentError {
  override name = 'MissingRolloutRecord';
  constructor(readonly configVersion: string) {
    super(
      `rollouts/${configVersion} is missing (config/current names it): zones are left as they are ` +
        '(publish the version again to restore its record)',
    );
  }
}
