// Firestore: a project's fleet.silent episode (alerts/{dedupKey}, kind fleet.silent) and the host.silent
// episodes a storm holds back (alerts/{dedupKey}.held).
import type { Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import type { OpenStorm } from '../domain/storm.js';
import { FLEET } from '../domain/fleet-storm.js';
import { readDocument } from '../documents/document.js';
import * as documents from '../documents/alerts.js';
import { ALERTS } from './alerts.js';

/** The project's open fleet.silent episode, or null. */
export async function openStorm(project: string, db: Firestore = clients.firestore()): Promise<OpenStorm | null> {
  const snapshot = await db
    .collection(ALERTS)
    .where('kind', '==', 'fleet.silent')
    .where('details.project', '==', project)
    .where('resolved', '==', null)
    .get();
  countFirestore('reads', Math.max(1, snapshot.size));
  const open = snapshot.docs.map((d) => readDocument(documents.episodeDocument, d.ref.path, d.data()));
  const first = open.sort((a, b) => a.since.getTime() - b.since.getTime())[0];
  return first ? { dedupKey: first.dedupKey, since: first.since } : null;
}

/**
 * Releases the host.silent episodes a storm held back in a project: those still open owe their firing now,
 * those resolved meanwhile are settled (they never fired, so they owe nothing). Returns the keys to deliver.
 */
export async function releaseHeld(project: string, db: Firestore = clients.firestore()): Promise<string[]> {
  const snapshot = await db.collection(ALERTS).where('held', '==', true).where('host.project', '==', project).get();
  countFirestore('reads', Math.max(1, snapshot.size));
  const keys: string[] = [];
  for (let i = 0; i < snapshot.docs.length; i += 400) {
    const batch = db.batch();
    for (const d of snapshot.docs.slice(i, i + 400)) {
      // Held for a run: its close (or the fleet's storm clearing) releases it.
      if (d.get('heldRun')) continue;
      const resolved = d.get('resolved') !== null && d.get('resolved') !== undefined;
      batch.update(d.ref, { held: false, owed: !resolved });
      if (!resolved) keys.push(d.id);
    }
    await batch.commit();
    countFirestore('writes', Math.min(400, snapshot.docs.length - i));
  }
  return keys;
}

/** The fleet's open fleet.silent episode (scope fleet), or null. */
export async function openFleetStorm(db: Firestore = clients.firestore()): Promise<OpenStorm | null> {
  const snapshot = await db
    .collection(ALERTS)
    .where('kind', '==', 'fleet.silent')
    .where('details.scope', '==', FLEET)
    .where('resolved', '==', null)
    .get();
  countFirestore('reads', Math.max(1, snapshot.size));
  const open = snapshot.docs.map((d) => readDocument(documents.episodeDocument, d.ref.path, d.data()));
  const first = open.sort((a, b) => a.since.getTime() - b.since.getTime())[0];
  return first ? { dedupKey: first.dedupKey, since: first.since } : null;
}

/** Held episodes read and released per transaction. */
const RELEASED_PER_TRANSACTION = 200;

/**
 * Releases the host.silent episodes held for a run's close (`runId`), or for any run (null: the fleet's
 * storm cleared): those still open owe their firing now, those resolved meanwhile are settled. Each episode
 * is read again in a transaction and released only while still held, so a repeated release (a redelivered
 * close, two closers) finds nothing and returns no key twice. Returns the keys to deliver.
 */
export async function releaseRunHeld(runId: string | null, db: Firestore = clients.firestore()): Promise<string[]> {
  let query = db.collection(ALERTS).where('held', '==', true);
  if (runId) query = query.where('heldRun', '==', runId);
  const snapshot = await query.select('heldRun').get();
  countFirestore('reads', Math.max(1, snapshot.size));
  const refs = snapshot.docs.filter((d) => d.get('heldRun')).map((d) => d.ref);
  const keys: string[] = [];
  for (let i = 0; i < refs.length; i += RELEASED_PER_TRANSACTION) {
    const chunk = refs.slice(i, i + RELEASED_PER_TRANSACTION);
    countFirestore('transactions');
    const released = await db.runTransaction(async (tx) => {
      const docs = await tx.getAll(...chunk);
      countFirestore('reads', docs.length);
      const out: string[] = [];
      let updates = 0;
      for (const d of docs) {
        if (!d.exists || d.get('held') !== true || !d.get('heldRun')) continue;
        const resolved = d.get('resolved') !== null && d.get('resolved') !== undefined;
        tx.update(d.ref, { held: false, owed: !resolved });
        updates += 1;
        if (!resolved) out.push(d.id);
      }
      return { out, updates };
    });
    countFirestore('writes', released.updates); // once committed: a transaction that lost runs its body again
    keys.push(...released.out);
  }
  return keys;
}
