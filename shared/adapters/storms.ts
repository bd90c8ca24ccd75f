// Firestore: a project's fleet.silent episode (alerts/{dedupKey}, kind fleet.silent) and the host.silent
// episodes a storm holds back (alerts/{dedupKey}.held).
import type { Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import type { OpenStorm } from '../domain/storm.js';
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
      const resolved = d.get('resolved') !== null && d.get('resolved') !== undefined;
      batch.update(d.ref, { held: false, owed: !resolved });
      if (!resolved) keys.push(d.id);
    }
    await batch.commit();
    countFirestore('writes', Math.min(400, snapshot.docs.length - i));
  }
  return keys;
}
