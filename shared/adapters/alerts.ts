// Alert episodes: alerts/{dedupKey} records (Firestore) guard that each problem episode sends one
// `firing` and one `resolved` message on the alert topic, whatever the redeliveries and reruns. The
// sending is shared/usecases/alerts.ts's; this module keeps the records, the lease and the sent times.
// Records are read through shared/documents/alerts.ts: one that does not match raises DocumentInvalid (the
// delivery of that episode fails, is logged with the path and stays owed; the others go on).
import {
  Timestamp,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  type SetOptions,
} from '@google-cloud/firestore';
import type { z } from 'zod';
import { clients } from '../clients.js';
import { isAlreadyExists } from '../errors.js';
import { countFirestore } from '../metrics.js';
import {
  episodeKey,
  type AlertHost,
  type AlertQuery,
  type Episode,
  type EpisodeChange,
  type EpisodeMessages,
  type Severity,
} from '../domain/alerts.js';
import { readDocument } from '../documents/document.js';
import * as documents from '../documents/alerts.js';

export const ALERTS = 'alerts';
const LEASE_MS = 60_000;

/** What both a transaction and a batch offer for writing. */
export interface Writer {
  set(ref: DocumentReference, data: Record<string, unknown>, options?: SetOptions): unknown;
}

type EpisodeRecord =
  | { recorded: true; record: z.output<typeof documents.episodeDocument> }
  | { recorded: false; record: z.output<typeof documents.unrecordedEpisode> };

/**
 * An episode record, or the resolution of an episode never recorded (no `kind`, no `firing`); throws
 * DocumentInvalid when it does not match.
 */
function readEpisodeRecord(snapshot: DocumentSnapshot): EpisodeRecord {
  const data = snapshot.data() ?? {};
  const path = snapshot.ref.path;
  return data.kind === undefined && data.firing === undefined
    ? { recorded: false, record: readDocument(documents.unrecordedEpisode, path, data) }
    : { recorded: true, record: readDocument(documents.episodeDocument, path, data) };
}

/** Whether an episode's record is there and resolved (a resolution is recorded once). */
export function isResolved(snapshot: DocumentSnapshot): boolean {
  if (!snapshot.exists) return false;
  return (
    readDocument(documents.unrecordedEpisode.pick({ resolved: true }), snapshot.ref.path, {
      resolved: snapshot.get('resolved'),
    }).resolved !== null
  );
}

/** Adds the episode writes a host change owes to the same transaction or batch; returns the keys to flush. */
export function stageEpisodes(writer: Writer, change: EpisodeChange, db: Firestore = clients.firestore()): string[] {
  const keys: string[] = [];
  if (change.close) {
    const key =
      change.close.dedupKey ?? episodeKey(change.close.kind, change.close.instanceId, change.close.previousSince);
    // Merged field by field: a resolution already sent keeps its sentAt and is not sent again.
    writer.set(
      db.collection(ALERTS).doc(key),
      { resolved: { at: Timestamp.fromDate(change.close.at) }, owed: true },
      { merge: true },
    );
    keys.push(key);
  }
  if (change.open) {
    const o = change.open;
    const doc = documents.episodeData({
      dedupKey: o.dedupKey,
      kind: o.kind,
      severity: o.severity,
      host: o.host,
      reason: o.reason,
      since: Timestamp.fromDate(o.since),
      firing: { at: Timestamp.fromDate(o.since), sentAt: null },
      resolved: null,
      owed: !o.held,
      ...(o.held ? { held: true } : {}),
      ...(o.held && o.heldRun ? { heldRun: o.heldRun } : {}),
      ...(o.source ? { source: o.source } : {}),
      ...(o.query ? { query: o.query } : {}),
      ...(o.details ? { details: o.details } : {}),
    });
    writer.set(db.collection(ALERTS).doc(o.dedupKey), doc);
    keys.push(o.dedupKey);
  }
  countFirestore('writes', keys.length);
  return keys;
}

/**
 * Adds the opening of an episode no host drives (a rollout halted) to a transaction or batch, so it is
 * recorded with the decision that owes it; the caller delivers it after the commit.
 */
export function stageEpisodeOpen(
  writer: Writer,
  episode: {
    dedupKey: string;
    kind: string;
    severity: Severity;
    reason: string;
    at: Date;
    details: Record<string, unknown>;
  },
  db: Firestore = clients.firestore(),
): string {
  const at = Timestamp.fromDate(episode.at);
  const doc = documents.episodeData({
    dedupKey: episode.dedupKey,
    kind: episode.kind,
    severity: episode.severity,
    host: null,
    reason: episode.reason,
    since: at,
    firing: { at, sentAt: null },
    resolved: null,
    owed: true,
    details: episode.details,
  });
  writer.set(db.collection(ALERTS).doc(episode.dedupKey), doc);
  countFirestore('writes');
  return episode.dedupKey;
}

/** Opens an episode that no host state change drives (Cloud Monitoring incidents); false when it exists. */
export async function openEpisode(
  episode: {
    dedupKey: string;
    kind: string;
    severity: Severity;
    host: AlertHost | null;
    reason: string | null;
    source?: string;
    query?: AlertQuery;
    details?: Record<string, unknown>;
    since: Date;
    at: Date;
  },
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const { at, since, ...rest } = episode;
  const firing = { at: Timestamp.fromDate(at), sentAt: null };
  const doc = documents.episodeData({ ...rest, since: Timestamp.fromDate(since), firing, resolved: null, owed: true });
  try {
    await db.collection(ALERTS).doc(episode.dedupKey).create(doc);
    countFirestore('writes');
    return true;
  } catch (error) {
    if (isAlreadyExists(error)) return false;
    throw error;
  }
}

/** Closes an episode by key; false when it is unknown or already closed. */
export async function closeEpisode(dedupKey: string, at: Date, db: Firestore = clients.firestore()): Promise<boolean> {
  const ref = db.collection(ALERTS).doc(dedupKey);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    if (!snapshot.exists || isResolved(snapshot)) return false;
    tx.update(ref, { resolved: { at: Timestamp.fromDate(at), sentAt: null }, owed: true });
    countFirestore('writes');
    return true;
  });
}

/** Which messages an episode still owes (the domain's owedMessages). */
type Owes = (episode: EpisodeMessages) => { firing: boolean; resolved: boolean };

const episodeOf = (d: Episode): Episode => ({
  dedupKey: d.dedupKey,
  kind: d.kind,
  severity: d.severity,
  host: d.host,
  reason: d.reason,
  since: d.since,
  firing: d.firing,
  resolved: d.resolved,
  details: d.details ?? null,
  source: d.source ?? null,
  query: d.query ?? null,
});

/**
 * Takes the lease on an episode that owes a message, in a transaction, so two senders (a heartbeat and
 * an audit) never send the same message. An episode that owes nothing (it never fired) is settled at
 * once. Null when there is nothing to send now: unknown, settled, owing nothing, or leased by another.
 */
export async function leaseEpisode(
  key: string,
  owes: Owes,
  db: Firestore = clients.firestore(),
): Promise<Episode | null> {
  const ref = db.collection(ALERTS).doc(key);
  const now = Date.now();
  countFirestore('transactions');
  const doc = await db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    if (!snapshot.exists) return null;
    const read = readEpisodeRecord(snapshot);
    if (!read.record.owed) return null;
    // A resolution of an episode never recorded owes nothing: it is settled here.
    const owed = owes(read.record);
    if (!owed.firing && !owed.resolved) {
      tx.update(ref, { owed: false, leaseUntil: null });
      countFirestore('writes');
      return null;
    }
    if (!read.recorded || (read.record.leaseUntil && read.record.leaseUntil.getTime() > now)) return null;
    tx.update(ref, { leaseUntil: Timestamp.fromMillis(now + LEASE_MS) });
    return read.record;
  });
  return doc && episodeOf(doc);
}

/**
 * Records the sent times after the publish and releases the lease, in a transaction, so a resolution
 * staged meanwhile stays owed.
 */
export async function recordSent(
  key: string,
  sent: { firing?: Date; resolved?: Date },
  owes: Owes,
  db: Firestore = clients.firestore(),
): Promise<void> {
  const ref = db.collection(ALERTS).doc(key);
  const sentAt = {
    firing: sent.firing && Timestamp.fromDate(sent.firing),
    resolved: sent.resolved && Timestamp.fromDate(sent.resolved),
  };
  countFirestore('transactions');
  await db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    if (!snapshot.exists) return;
    const read = readEpisodeRecord(snapshot);
    const current = read.record;
    const update: Record<string, unknown> = { leaseUntil: null };
    if (sentAt.firing) update['firing.sentAt'] = sentAt.firing;
    if (sentAt.resolved) update['resolved.sentAt'] = sentAt.resolved;
    const after = owes({
      ...current,
      firing: read.recorded
        ? { ...read.record.firing, sentAt: read.record.firing.sentAt ?? sentAt.firing ?? null }
        : null,
      resolved: current.resolved && {
        ...current.resolved,
        sentAt: current.resolved.sentAt ?? sentAt.resolved ?? null,
      },
    });
    update.owed = after.firing || after.resolved;
    tx.update(ref, update);
    countFirestore('writes');
  });
}

/** Episodes with a message still owed (a publish failed, or a flusher died). */
export async function owedAlertKeys(db: Firestore = clients.firestore()): Promise<string[]> {
  const snapshot = await db.collection(ALERTS).where('owed', '==', true).select().get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return snapshot.docs.map((d) => d.id);
}
