// Firestore: pipeline/{subscriptionId} (shared/documents/pipeline.ts), with the pipeline.backlog episodes
// its changes open or close, written in the same transaction.
import type { Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import { planBacklogIncident, type BacklogIncident, type PipelineRecord } from '../domain/pipeline.js';
import { readDocument } from '../documents/document.js';
import * as documents from '../documents/pipeline.js';
import { stageEpisodeOpen, stageEpisodes } from './alerts.js';

export const PIPELINE = 'pipeline';

/**
 * Records a backlog incident opening or closing on a subscription, and the episode it opens or closes, in
 * one transaction (a redelivered notification writes nothing). Returns the alert keys to deliver.
 */
export async function recordBacklogIncident(
  incident: BacklogIncident,
  alert: { reason: string; details: Record<string, unknown> },
  db: Firestore = clients.firestore(),
): Promise<string[]> {
  const ref = db.collection(PIPELINE).doc(incident.subscription);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    const current = snapshot.exists ? readDocument(documents.pipelineRecord, ref.path, snapshot.data()) : null;
    const change = planBacklogIncident(current, incident);
    if (!change) return [];
    tx.set(ref, documents.pipelineData(change.next));
    countFirestore('writes');
    const keys: string[] = [];
    if (change.open)
      keys.push(
        stageEpisodeOpen(
          tx,
          {
            dedupKey: change.open.dedupKey,
            kind: 'pipeline.backlog',
            severity: 'critical',
            at: change.open.since,
            ...alert,
          },
          db,
        ),
      );
    if (change.close) {
      const { dedupKey, at } = change.close;
      const close = { kind: 'pipeline.backlog' as const, instanceId: incident.subscription, previousSince: at };
      keys.push(...stageEpisodes(tx, { close: { ...close, at, dedupKey } }, db));
    }
    return keys;
  });
}

/** Every subscription's record (a handful: the heartbeat's and the SIEM's). */
export async function listPipeline(db: Firestore = clients.firestore()): Promise<PipelineRecord[]> {
  const snapshot = await db.collection(PIPELINE).get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return snapshot.docs.map((d) => readDocument(documents.pipelineRecord, d.ref.path, d.data()));
}
