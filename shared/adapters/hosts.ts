// Firestore: hosts/{instanceId} and hosts/{instanceId}/transitions.
import { Timestamp, type DocumentData, type Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import type { Host, HostChange, Transition } from '../domain/host.js';
import { countFirestore } from '../metrics.js';

export const HOSTS = 'hosts';
export const TRANSITIONS = 'transitions';

const DATE_FIELDS = ['stateSince', 'lastLogAt', 'updatedAt'] as const;

export function hostFromDoc(data: DocumentData): Host {
  const host = { ...data } as Record<string, unknown>;
  for (const f of DATE_FIELDS) if (host[f] instanceof Timestamp) host[f] = (host[f] as Timestamp).toDate();
  return host as unknown as Host;
}

/** Firestore stores Dates as Timestamps; transitions go to the subcollection with an id that orders them. */
function transitionId(t: Transition): string {
  return `${t.at.toISOString()}-${t.to}`;
}

export interface ApplyResult {
  host: Host | null;
  changed: boolean;
  transition: Transition | null;
}

/**
 * Reads a host and writes `plan`'s change to it in one transaction, so concurrent or repeated
 * deliveries see each other's writes. `plan` returns null when nothing is to be written.
 */
export async function applyHostChange(
  instanceId: string,
  plan: (current: Host | null) => HostChange | null,
  db: Firestore = clients.firestore(),
): Promise<ApplyResult> {
  const ref = db.collection(HOSTS).doc(instanceId);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    const current = snapshot.exists ? hostFromDoc(snapshot.data()!) : null;
    const change = plan(current);
    if (!change) return { host: current, changed: false, transition: null };
    tx.set(ref, change.host);
    if (change.transition) tx.set(ref.collection(TRANSITIONS).doc(transitionId(change.transition)), change.transition);
    countFirestore('writes', change.transition ? 2 : 1);
    return { host: change.host, changed: true, transition: change.transition };
  });
}

export async function getHost(instanceId: string, db: Firestore = clients.firestore()): Promise<Host | null> {
  const snapshot = await db.collection(HOSTS).doc(instanceId).get();
  countFirestore('reads');
  return snapshot.exists ? hostFromDoc(snapshot.data()!) : null;
}

/** A delete entry without instance_id: find the live host by its name (names are unique per zone while alive). */
export async function findLiveHostId(project: string, zone: string, name: string, db: Firestore = clients.firestore()): Promise<string | null> {
  const snapshot = await db.collection(HOSTS).where('project', '==', project).where('zone', '==', zone).where('name', '==', name).get();
  countFirestore('reads', Math.max(1, snapshot.size));
  const live = snapshot.docs.find((d) => d.get('state') !== 'deleted');
  return live?.id ?? null;
}

export async function listTransitions(instanceId: string, db: Firestore = clients.firestore()): Promise<Transition[]> {
  const snapshot = await db.collection(HOSTS).doc(instanceId).collection(TRANSITIONS).orderBy('at').get();
  return snapshot.docs.map((d) => {
    const t = d.data();
    return { ...t, at: (t.at as Timestamp).toDate() } as Transition;
  });
}

/** Every host document of a project, by instance id. */
export async function listProjectHosts(project: string, db: Firestore = clients.firestore()): Promise<Map<string, Host>> {
  const snapshot = await db.collection(HOSTS).where('project', '==', project).get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return new Map(snapshot.docs.map((d) => [d.id, hostFromDoc(d.data())]));
}

/** Writes host changes in batches (500 operations each), a transition beside each state change. */
export async function writeHostChanges(changes: HostChange[], db: Firestore = clients.firestore()): Promise<number> {
  let batch = db.batch();
  let ops = 0;
  let written = 0;
  const commits: Array<Promise<unknown>> = [];
  for (const change of changes) {
    const ref = db.collection(HOSTS).doc(change.host.instanceId);
    batch.set(ref, change.host);
    ops += 1;
    if (change.transition) {
      batch.set(ref.collection(TRANSITIONS).doc(transitionId(change.transition)), change.transition);
      ops += 1;
    }
    written += 1;
    if (ops >= 498) {
      commits.push(batch.commit());
      batch = db.batch();
      ops = 0;
    }
  }
  if (ops > 0) commits.push(batch.commit());
  await Promise.all(commits);
  countFirestore('writes', changes.length + changes.filter((c) => c.transition).length);
  return written;
}
