// Firestore: the status snapshots the audit leaves for the status page (status/fleet and
// status/fleet/projects/{project}), the page's live reads (open alerts), and the audit run the evidence
// report is stamped with. Read through shared/documents/status.ts: a document that does not match raises
// DocumentInvalid, or is returned apart by the reads of many.
import type { DocumentSnapshot, Firestore } from '@google-cloud/firestore';
import type { z } from 'zod';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import type { FleetStatus, HistoryPoint, ProjectStatus, RunSummary } from '../domain/status.js';
import type { AlertRow } from '../domain/status-view.js';
import { readDocument, reportInvalid, tryReadDocument, type DocumentInvalid } from '../documents/document.js';
import { fleetStatus, projectStatus } from '../documents/status.js';
import { auditRun, type RollingRecord } from '../documents/audits.js';
import { episodeDocument } from '../documents/alerts.js';
import { AUDITS, runResults } from './audits.js';
import { ALERTS } from './alerts.js';

export const STATUS = 'status';
const FLEET = 'fleet';
const PROJECTS = 'projects';

const fleetRef = (db: Firestore) => db.collection(STATUS).doc(FLEET);
const projectRef = (db: Firestore, project: string) => fleetRef(db).collection(PROJECTS).doc(project);

const readProject = (s: DocumentSnapshot) => tryReadDocument(projectStatus, s.ref.path, s.data());
const snapshotAt = projectStatus.pick({ at: true });

/**
 * Records a project's snapshot unless a newer one is there (two runs' shards of the same project may
 * finish out of order). Returns false when the stored one is newer.
 */
export async function writeProjectStatus(status: ProjectStatus, db: Firestore = clients.firestore()): Promise<boolean> {
  const ref = projectRef(db, status.project);
  countFirestore('transactions');
  const written = await db.runTransaction(async (tx) => {
    const stored = await tx.get(ref);
    countFirestore('reads');
    // A stored snapshot whose time cannot be read is the audit's own to replace (reported).
    const read = stored.exists ? tryReadDocument(snapshotAt, ref.path, stored.data()) : null;
    if (read && !read.ok) reportInvalid(read.invalid, 'replaced by the new snapshot');
    if (read?.ok && read.value.at > status.at) return false;
    tx.set(ref, projectStatusData(status));
    return true;
  });
  if (written) countFirestore('writes'); // once committed: a contended transaction runs its body again
  return written;
}

export async function getProjectStatus(
  project: string,
  db: Firestore = clients.firestore(),
): Promise<ProjectStatus | null> {
  const snapshot = await projectRef(db, project).get();
  countFirestore('reads');
  return snapshot.exists ? readDocument(projectStatus, snapshot.ref.path, snapshot.data()) : null;
}

/** Several projects' snapshots in one read (missing ones left out; those that do not match returned apart). */
export async function getProjectStatuses(
  projects: string[],
  db: Firestore = clients.firestore(),
): Promise<{ statuses: Map<string, ProjectStatus>; invalid: DocumentInvalid[] }> {
  const result: { statuses: Map<string, ProjectStatus>; invalid: DocumentInvalid[] } = {
    statuses: new Map(),
    invalid: [],
  };
  if (projects.length === 0) return result;
  const snapshots = await db.getAll(...projects.map((p) => projectRef(db, p)));
  countFirestore('reads', snapshots.length);
  for (const s of snapshots.filter((x) => x.exists)) {
    const read = readProject(s);
    if (read.ok) result.statuses.set(s.id, read.value);
    else result.invalid.push(read.invalid);
  }
  return result;
}

export async function getFleetStatus(db: Firestore = clients.firestore()): Promise<FleetStatus | null> {
  const snapshot = await fleetRef(db).get();
  countFirestore('reads');
  return snapshot.exists ? readDocument(fleetStatus, snapshot.ref.path, snapshot.data()) : null;
}

/**
 * The oldest project snapshots by their audit's time (`at`, oldest first, at most `limit`, only `at` read),
 * and how many there are: a bounded read however many projects the fleet holds (one read per 1,000 counted).
 */
export async function oldestProjectSnapshots(
  limit: number,
  db: Firestore = clients.firestore(),
): Promise<{ oldest: Array<{ project: string; at: string }>; snapshots: number }> {
  const projects = fleetRef(db).collection(PROJECTS);
  const [page, count] = await Promise.all([
    projects.orderBy('at', 'asc').limit(limit).select('at').get(),
    projects.count().get(),
  ]);
  const snapshots = count.data().count;
  countFirestore('reads', Math.max(1, page.size) + Math.max(1, Math.ceil(snapshots / 1000)));
  const oldest: Array<{ project: string; at: string }> = [];
  for (const d of page.docs) {
    const read = tryReadDocument(snapshotAt, d.ref.path, d.data());
    if (read.ok) oldest.push({ project: d.id, at: read.value.at });
    else reportInvalid(read.invalid, 'left out of the audit ages on the status page');
  }
  return { oldest, snapshots };
}

/** The latest audit run (by start, closed or not) and its `rolling` (null: a full pass), or null: no run yet. */
export async function latestRunRolling(
  db: Firestore = clients.firestore(),
): Promise<{ runId: string; rolling: RollingRecord | null } | null> {
  const snapshot = await db.collection(AUDITS).orderBy('startedAt', 'desc').limit(1).select('rolling').get();
  countFirestore('reads');
  const doc = snapshot.docs[0];
  if (!doc) return null;
  return { runId: doc.id, rolling: readDocument(runRolling, doc.ref.path, doc.data()).rolling ?? null };
}
const runRolling = auditRun.pick({ rolling: true });

/** The stored forms of the snapshots: the domain's values as they are. */
const projectStatusData = (s: ProjectStatus): z.input<typeof projectStatus> => s;
const fleetStatusData = (s: FleetStatus): z.input<typeof fleetStatus> => s;

/**
 * audits/{runId} as the status page summarizes it, its projects' results (audits/{runId}/projects, read a
 * page at a time) and the skipped ones listed; throws DocumentInvalid when one does not match.
 */
async function runSummary(snapshot: DocumentSnapshot, db: Firestore): Promise<RunSummary> {
  const run = readDocument(auditRun, snapshot.ref.path, snapshot.data());
  // A run written before the results moved off its document keeps them there (`projects`).
  const results = run.projects ?? (run.status === 'running' ? {} : await runResults(snapshot.id, undefined, db));
  const skipped = Object.entries(run.skipped ?? {}).map(([p, reason]) => [p, { status: 'skipped', error: reason }]);
  return {
    runId: snapshot.id,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    status: run.status,
    coverage: run.coverage,
    counts: run.counts,
    projects: Object.fromEntries([
      // A skipped project (an API off) shows its reason where a failed one shows its error.
      ...Object.entries(results).map(([p, r]) => [p, { status: r.status, error: r.error ?? r.reason ?? null }]),
      ...skipped,
    ]),
  };
}

export type PublishOutcome =
  | { published: false; reason: 'open' | 'unknown' | 'already' }
  /** `latest`: the run became the page's run (false: an older run closing late added its history point). */
  | { published: true; latest: boolean; run: FleetStatus['run'] };

/**
 * When audits/{runId} is closed, writes what `merge` makes of its projects' snapshots and the coverage
 * history (shared/domain/status.ts mergeFleetStatus) to status/fleet, once: a second call for the same run
 * changes nothing, and a run that closes after a newer one only adds its history point. The page shows what
 * can be read: a project snapshot that does not match its definition is left out, and a status/fleet that
 * does not match is written anew (its history restarts), each reported with its path; a run that does not
 * match raises DocumentInvalid (nothing is published from it).
 */
export async function publishRunStatus(
  runId: string,
  now: Date,
  merge: (run: RunSummary, projects: ProjectStatus[], history: HistoryPoint[], now: Date) => FleetStatus,
  db: Firestore = clients.firestore(),
): Promise<PublishOutcome> {
  const runSnapshot = await db.collection(AUDITS).doc(runId).get();
  countFirestore('reads');
  if (!runSnapshot.exists) return { published: false, reason: 'unknown' };
  if (runSnapshot.get('status') === 'running') return { published: false, reason: 'open' };
  const run = await runSummary(runSnapshot, db);
  if (run.status === 'running') return { published: false, reason: 'open' };
  // Written before each project's result was recorded, so complete once the run is closed.
  const projects = Object.keys(run.projects);
  const snapshots = projects.length ? await db.getAll(...projects.map((p) => projectRef(db, p))) : [];
  countFirestore('reads', snapshots.length);
  const statuses: ProjectStatus[] = [];
  for (const s of snapshots.filter((x) => x.exists)) {
    const read = readProject(s);
    if (read.ok) statuses.push(read.value);
    else reportInvalid(read.invalid, "left out of the run's fleet status");
  }
  countFirestore('transactions');
  const outcome = await db.runTransaction(async (tx): Promise<PublishOutcome> => {
    const stored = await tx.get(fleetRef(db));
    countFirestore('reads');
    const read = stored.exists ? tryReadDocument(fleetStatus, stored.ref.path, stored.data()) : null;
    if (read && !read.ok) reportInvalid(read.invalid, 'written anew: its coverage history restarts');
    const previous = read?.ok ? read.value : null;
    if (previous?.history.some((p) => p.runId === runId)) return { published: false, reason: 'already' };
    const merged = merge(run, statuses, previous?.history ?? [], now);
    const latest = !previous || previous.run.startedAt <= run.startedAt;
    tx.set(fleetRef(db), fleetStatusData(latest ? merged : { ...previous, history: merged.history }));
    return { published: true, latest, run: merged.run };
  });
  if (outcome.published) countFirestore('writes'); // once committed: a contended transaction runs its body again
  return outcome;
}

/**
 * Open alert episodes (firing, not resolved), newest first, and how many there are. The count is an
 * aggregation (one read per 1,000 matching index entries), the list at most `limit` reads. Records that do
 * not match their definition are counted, left out of the list and returned apart.
 */
export async function openAlerts(
  limit: number,
  db: Firestore = clients.firestore(),
): Promise<{ open: number; shown: AlertRow[]; invalid: DocumentInvalid[] }> {
  const [count, page] = await Promise.all([
    db.collection(ALERTS).where('resolved', '==', null).count().get(),
    db.collection(ALERTS).where('resolved', '==', null).orderBy('since', 'desc').limit(limit).get(),
  ]);
  const total = count.data().count;
  countFirestore('reads', Math.max(1, Math.ceil(total / 1000)) + Math.max(1, page.size));
  const result: { open: number; shown: AlertRow[]; invalid: DocumentInvalid[] } = {
    open: total,
    shown: [],
    invalid: [],
  };
  for (const d of page.docs) {
    const read = tryReadDocument(episodeDocument, d.ref.path, d.data());
    if (!read.ok) {
      result.invalid.push(read.invalid);
      continue;
    }
    const a = read.value;
    result.shown.push({
      dedupKey: d.id,
      kind: a.kind,
      severity: a.severity,
      host: a.host,
      query: a.query ?? null,
      reason: a.reason,
      since: a.since.toISOString(),
      notified: a.firing.sentAt !== null,
    });
  }
  return result;
}

/** The latest audit run to close (what the evidence report is stamped with), or null. */
export async function latestClosedRun(db: Firestore = clients.firestore()): Promise<RunSummary | null> {
  // Runs still open have finishedAt null, which sorts first: descending, the newest closed run leads.
  const snapshot = await db.collection(AUDITS).orderBy('finishedAt', 'desc').limit(1).get();
  countFirestore('reads');
  const doc = snapshot.docs[0];
  if (!doc || !doc.get('finishedAt')) return null;
  return runSummary(doc, db);
}
