// Firestore: serviceStates/{project}, a project's API enablement as Service Usage last said
// (shared/documents/api-budget.ts). Enablement rarely changes: a run reads Service Usage only for projects
// whose entry is older than SERVICE_USAGE_CACHE_HOURS, instead of once per project per run.
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import { tryReadDocument, reportInvalid } from '../documents/document.js';
import { serviceStatesDocument } from '../documents/api-budget.js';

export const SERVICE_STATES = 'serviceStates';
const READ_CHUNK = 300;

/** The cached states of each project checked since `notBefore` (an unreadable entry counts as absent). */
export async function cachedServiceStates(
  projects: readonly string[],
  notBefore: Date,
  db: Firestore = clients.firestore(),
): Promise<Map<string, Record<string, string>>> {
  const found = new Map<string, Record<string, string>>();
  for (let i = 0; i < projects.length; i += READ_CHUNK) {
    const refs = projects.slice(i, i + READ_CHUNK).map((p) => db.collection(SERVICE_STATES).doc(p));
    if (refs.length === 0) continue;
    const snapshots = await db.getAll(...refs);
    countFirestore('reads', snapshots.length);
    for (const s of snapshots) {
      if (!s.exists) continue;
      const read = tryReadDocument(serviceStatesDocument, s.ref.path, s.data());
      if (!read.ok) reportInvalid(read.invalid, 'Service Usage is read again');
      else if (read.value.checkedAt >= notBefore) found.set(s.id, read.value.states);
    }
  }
  return found;
}

export async function saveServiceStates(
  project: string,
  states: Record<string, string>,
  at: Date,
  db: Firestore = clients.firestore(),
): Promise<void> {
  await db
    .collection(SERVICE_STATES)
    .doc(project)
    .set({ states, checkedAt: Timestamp.fromDate(at) });
  countFirestore('writes');
}
