// Alert episodes: alerts/{dedupKey} records (Firestore) guard that each problem episode sends one
// `firing` and one `resolved` message on the alert topic, whatever the redeliveries and reruns. The
// sending is shared/usecases/alerts.ts's; this module keeps the records, the lease and the sent times.
import { Timestamp, type DocumentReference, type Firestore, type SetOptions } from '@google-cloud/firestore';
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

export const ALERTS = 'alerts';
const LEASE_MS = 60_000;

/** What both a transaction and a batch offer for writing. */
export interface Writer {
  set(ref: DocumentReference, data: Record<string, unknown>, options?: SetOptions): unknown;
}

export interface EpisodeDoc {
  dedupKey: string;
  kind: string;
  severity: Severity;
  host: AlertHost | null;
  reason: string | null;
  since: Timestamp;
  firing: { at: Timestamp; sentAt: Timestamp | null };
  resolved: { at: Timestamp; sentAt?: Timestamp | null } | null;
  /** Some message of this episode is not sent yet. */
  owed: boolean;
  /** Kind-specific fields of its messages (rollout.halted). */
  details?: Record<string, unknown> | null;
  /** host.performance: `osquery` or `monitoring`; absent for other kinds. */
  source?: string;
  /** query.* alerts: the query of one configuration version. */
  query?: AlertQuery;
  leaseUntil?: Timestamp | null;
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
    const doc: EpisodeDoc = {
      dedupKey: o.dedupKey,
      kind: o.kind,
      severity: o.severity,
      host: o.host,
      reason: o.reason,
      since: Timestamp.fromDate(o.since),
      firing: { at: Timestamp.fromDate(o.since), sentAt: null },
      resolved: null,
      owed: true,
      ...(o.source ? { source: o.source } : {}),
      ...(o.query ? { query: o.query } : {}),
    };
    writer.set(db.collection(ALERTS).doc(o.dedupKey), doc as unknown as Record<string, unknown>);
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
  const doc: EpisodeDoc = {
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
  };
  writer.set(db.collection(ALERTS).doc(episode.dedupKey), doc as unknown as Record<string, unknown>);
  countFirestore('writes');
  return episode.dedupKey;
}

/** Opens an episode that no host state change drives (Cloud Monitoring incidents); false when it exists. */
export async function openEpisode(
  episode: Omit<EpisodeDoc, 'owed' | 'resolved' | 'firing' | 'since'> & { since: Date; at: Date },
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const { at, since, ...rest } = episode;
  const firing = { at: Timestamp.fromDate(at), sentAt: null };
  try {
    await db
      .collection(ALERTS)
      .doc(episode.dedupKey)
      .create({ ...rest, since: Timestamp.fromDate(since), firing, resolved: null, owed: true });
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
    if (!snapshot.exists || snapshot.get('resolved')) return false;
    tx.update(ref, { resolved: { at: Timestamp.fromDate(at), sentAt: null }, owed: true });
    countFirestore('writes');
    return true;
  });
}

/** Which messages an episode still owes (the domain's owedMessages). */
type Owes = (episode: EpisodeMessages) => { firing: boolean; resolved: boolean };

const episodeOf = (d: EpisodeDoc): Episode => ({
  dedupKey: d.dedupKey,
  kind: d.kind,
  severity: d.severity,
  host: d.host,
  reason: d.reason,
  since: d.since.toDate(),
  firing: { at: d.firing.at.toDate(), sentAt: d.firing.sentAt?.toDate() ?? null },
  resolved: d.resolved && { at: d.resolved.at.toDate(), sentAt: d.resolved.sentAt?.toDate() ?? null },
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
    const d = snapshot.data() as EpisodeDoc;
    if (!d.owed) return null;
    const owed = owes(d);
    if (!owed.firing && !owed.resolved) {
      tx.update(ref, { owed: false, leaseUntil: null });
      countFirestore('writes');
      return null;
    }
    if (d.leaseUntil && d.leaseUntil.toMillis() > now) return null;
    tx.update(ref, { leaseUntil: Timestamp.fromMillis(now + LEASE_MS) });
    return d;
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
    const current = (await tx.get(ref)).data() as EpisodeDoc | undefined;
    if (!current) return;
    const update: Record<string, unknown> = { leaseUntil: null };
    if (sentAt.firing) update['firing.sentAt'] = sentAt.firing;
    if (sentAt.resolved) update['resolved.sentAt'] = sentAt.resolved;
    const after = owes({
      ...current,
      firing: current.firing && { ...current.firing, sentAt: current.firing.sentAt ?? sentAt.firing ?? null },
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
