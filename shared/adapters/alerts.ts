// Alert episodes: alerts/{dedupKey} records (Firestore) guard that each problem episode sends one
// `firing` and one `resolved` message on the alert topic, whatever the redeliveries and reruns.
import { Timestamp, type DocumentReference, type Firestore, type SetOptions } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { config } from '../config.js';
import { log } from '../log.js';
import { isAlreadyExists } from '../errors.js';
import { countFirestore } from '../metrics.js';
import {
  episodeKey,
  owedMessages,
  type AlertHost,
  type AlertMessage,
  type EpisodeChange,
  type Severity,
} from '../domain/alerts.js';
import { publishJson } from './pubsub.js';

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
  leaseUntil?: Timestamp | null;
}

/** Adds the episode writes a host change owes to the same transaction or batch; returns the keys to flush. */
export function stageEpisodes(writer: Writer, change: EpisodeChange, db: Firestore = clients.firestore()): string[] {
  const keys: string[] = [];
  if (change.close) {
    const key = episodeKey(change.close.kind, change.close.instanceId, change.close.previousSince);
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
    };
    writer.set(db.collection(ALERTS).doc(o.dedupKey), doc as unknown as Record<string, unknown>);
    keys.push(o.dedupKey);
  }
  countFirestore('writes', keys.length);
  return keys;
}

/** Opens an episode that no host state change drives (Cloud Monitoring incidents); false when it exists. */
export async function openEpisode(
  doc: Omit<EpisodeDoc, 'owed' | 'resolved' | 'firing'> & { at: Date },
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const { at, ...rest } = doc;
  try {
    await db
      .collection(ALERTS)
      .doc(doc.dedupKey)
      .create({ ...rest, firing: { at: Timestamp.fromDate(at), sentAt: null }, resolved: null, owed: true });
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

function message(doc: EpisodeDoc, status: 'firing' | 'resolved'): AlertMessage {
  const at = status === 'firing' ? doc.firing.at : doc.resolved!.at;
  return {
    kind: doc.kind,
    status,
    severity: doc.severity,
    host: doc.host,
    reason: doc.reason,
    since: doc.since.toDate().toISOString(),
    at: at.toDate().toISOString(),
    dedupKey: doc.dedupKey,
  };
}

/**
 * Sends what an episode owes, at most once per message: a lease taken in a transaction keeps two
 * flushers (a heartbeat and an audit) from sending the same message; the sent times are recorded after
 * the publish, in a transaction, so a resolution staged meanwhile stays owed. An episode that owes
 * nothing (it never fired) is settled at once. A failed publish leaves the debt for the next flush
 * (every audit run flushes).
 */
async function flushOne(key: string, db: Firestore): Promise<number> {
  const ref = db.collection(ALERTS).doc(key);
  const now = Date.now();
  countFirestore('transactions');
  const doc = await db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    if (!snapshot.exists) return null;
    const d = snapshot.data() as EpisodeDoc;
    if (!d.owed) return null;
    const owes = owedMessages(d);
    if (!owes.firing && !owes.resolved) {
      tx.update(ref, { owed: false, leaseUntil: null });
      countFirestore('writes');
      return null;
    }
    if (d.leaseUntil && d.leaseUntil.toMillis() > now) return null;
    tx.update(ref, { leaseUntil: Timestamp.fromMillis(now + LEASE_MS) });
    return d;
  });
  if (!doc) return 0;
  const owes = owedMessages(doc);
  const sentAt: { firing?: Timestamp; resolved?: Timestamp } = {};
  try {
    if (owes.firing) {
      await publishJson(config().ALERT_TOPIC, message(doc, 'firing'), {
        kind: doc.kind,
        status: 'firing',
        severity: doc.severity,
      });
      sentAt.firing = Timestamp.now();
    }
    if (owes.resolved) {
      await publishJson(config().ALERT_TOPIC, message(doc, 'resolved'), {
        kind: doc.kind,
        status: 'resolved',
        severity: doc.severity,
      });
      sentAt.resolved = Timestamp.now();
    }
  } finally {
    countFirestore('transactions');
    await db.runTransaction(async (tx) => {
      const current = (await tx.get(ref)).data() as EpisodeDoc | undefined;
      if (!current) return;
      const update: Record<string, unknown> = { leaseUntil: null };
      if (sentAt.firing) update['firing.sentAt'] = sentAt.firing;
      if (sentAt.resolved) update['resolved.sentAt'] = sentAt.resolved;
      const after = owedMessages({
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
  return (sentAt.firing ? 1 : 0) + (sentAt.resolved ? 1 : 0);
}

/** Sends what the given episodes owe; errors are logged and left owed for the next flush. */
export async function flushAlerts(keys: string[], db: Firestore = clients.firestore()): Promise<number> {
  let sent = 0;
  for (const key of new Set(keys)) {
    try {
      sent += await flushOne(key, db);
    } catch (error) {
      log.error(
        { dedupKey: key, reason: error instanceof Error ? error.message : String(error) },
        'alert not sent; owed to the next flush',
      );
    }
  }
  return sent;
}

/** Episodes with a message still owed (a publish failed, or a flusher died). */
export async function owedAlertKeys(db: Firestore = clients.firestore()): Promise<string[]> {
  const snapshot = await db.collection(ALERTS).where('owed', '==', true).select().get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return snapshot.docs.map((d) => d.id);
}
