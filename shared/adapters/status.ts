// Firestore: the status snapshots the audit leaves for the status page (status/fleet and
// status/fleet/projects/{project}), the page's live reads (open alerts), and the evidence report's
// paged walk over the hosts collection.
import { Timestamp, type DocumentData, type Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import type { FleetStatus, HistoryPoint, ProjectStatus, RunSummary } from '../domain/status.js';
import type { AlertRow } from '../domain/status-view.js';
import { AUDITS } from './audits.js';
import { ALERTS } from './alerts.js';

export const STATUS = 'status';
const FLEET = 'fleet';
const PROJECTS = 'projects';

const fleetRef = (db: Firestore) => db.collection(STATUS).doc(FLEET);
const projectRef = (db: Firestore, project: string) => fleetRef(db).collection(PROJECTS).doc(project);

const iso = (v: unknown): string | null =>
  v instanceof Timestamp ? v.toDate().toISOString() : typeof v === 'string' ? v : null;

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
    const at = stored.get('at') as string | undefined;
    if (at && at > status.at) return false;
    tx.set(ref, status as unknown as DocumentData);
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
  return snapshot.exists ? (snapshot.data() as ProjectStatus) : null;
}

/** Several projects' snapshots in one read (missing ones left out). */
export async function getProjectStatuses(
  projects: string[],
  db: Firestore = clients.firestore(),
): Promise<Map<string, ProjectStatus>> {
  if (projects.length === 0) return new Map();
  const snapshots = await db.getAll(...projects.map((p) => projectRef(db, p)));
  countFirestore('reads', snapshots.length);
  return new Map(snapshots.filter((s) => s.exists).map((s) => [s.id, s.data() as ProjectStatus]));
}

export async function getFleetStatus(db: Firestore = clients.firestore()): Promise<FleetStatus | null> {
  const snapshot = await fleetRef(db).get();
  countFirestore('reads');
  return snapshot.exists ? (snapshot.data() as FleetStatus) : null;
}

function runSummary(runId: string, data: DocumentData): RunSummary {
  const projects = (data.projects ?? {}) as Record<string, { status: string; error?: string; reason?: string }>;
  return {
    runId,
    startedAt: iso(data.startedAt) ?? new Date(0).toISOString(),
    finishedAt: iso(data.finishedAt),
    status: String(data.status),
    coverage: typeof data.coverage === 'number' ? data.coverage : null,
    counts: data.counts ?? {},
    projects: Object.fromEntries(
      // A skipped project (an API off) shows its reason where a failed one shows its error.
      Object.entries(projects).map(([p, r]) => [p, { status: r.status, error: r.error ?? r.reason ?? null }]),
    ),
  };
}

export type PublishOutcome =
  | { published: false; reason: 'open' | 'unknown' | 'already' }
  /** `latest`: the run became the page's run (false: an older run closing late added its history point). */
  | { published: true; latest: boolean; run: FleetStatus['run'] };

/**
 * When audits/{runId} is closed, writes what `merge` makes of its projects' snapshots and the coverage
 * history (shared/domain/status.ts mergeFleetStatus) to status/fleet, once: a second call for the same run
 * changes nothing, and a run that closes after a newer one only adds its history point.
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
  const run = runSummary(runId, runSnapshot.data()!);
  if (run.status === 'running') return { published: false, reason: 'open' };
  // Written before each project's result was recorded, so complete once the run is closed.
  const projects = Object.keys(run.projects);
  const snapshots = projects.length ? await db.getAll(...projects.map((p) => projectRef(db, p))) : [];
  countFirestore('reads', snapshots.length);
  const statuses = snapshots.filter((s) => s.exists).map((s) => s.data() as ProjectStatus);
  countFirestore('transactions');
  const outcome = await db.runTransaction(async (tx): Promise<PublishOutcome> => {
    const stored = await tx.get(fleetRef(db));
    countFirestore('reads');
    const previous = stored.exists ? (stored.data() as FleetStatus) : null;
    if (previous?.history.some((p) => p.runId === runId)) return { published: false, reason: 'already' };
    const merged = merge(run, statuses, previous?.history ?? [], now);
    const latest = !previous || previous.run.startedAt <= run.startedAt;
    tx.set(fleetRef(db), (latest ? merged : { ...previous, history: merged.history }) as unknown as DocumentData);
    return { published: true, latest, run: merged.run };
  });
  if (outcome.published) countFirestore('writes'); // once committed: a contended transaction runs its body again
  return outcome;
}

/**
 * Open alert episodes (firing, not resolved), newest first, and how many there are. The count is an
 * aggregation (one read per 1,000 matching index entries), the list at most `limit` reads.
 */
export async function openAlerts(
  limit: number,
  db: Firestore = clients.firestore(),
): Promise<{ open: number; shown: AlertRow[] }> {
  const [count, page] = await Promise.all([
    db.collection(ALERTS).where('resolved', '==', null).count().get(),
    db.collection(ALERTS).where('resolved', '==', null).orderBy('since', 'desc').limit(limit).get(),
  ]);
  const total = count.data().count;
  countFirestore('reads', Math.max(1, Math.ceil(total / 1000)) + Math.max(1, page.size));
  return {
    open: total,
    shown: page.docs.map((d) => {
      const a = d.data();
      return {
        dedupKey: d.id,
        kind: String(a.kind ?? ''),
        severity: String(a.severity ?? ''),
        host: a.host ?? null,
        query: a.query ?? null,
        reason: a.reason ?? null,
        since: iso(a.since) ?? '',
        notified: Boolean(a.firing?.sentAt),
      };
    }),
  };
}

/** The latest audit run to close (what the evidence report is stamped with), or null. */
export async function latestClosedRun(db: Firestore = clients.firestore()): Promise<RunSummary | null> {
  // Runs still open have finishedAt null, which sorts first: descending, the newest closed run leads.
  const snapshot = await db.collection(AUDITS).orderBy('finishedAt', 'desc').limit(1).get();
  countFirestore('reads');
  const doc = snapshot.docs[0];
  if (!doc || !doc.get('finishedAt')) return null;
  return runSummary(doc.id, doc.data());
}
