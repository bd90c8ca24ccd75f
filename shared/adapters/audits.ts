// Firestore: audits/{runId}, one document per audit run with run-level facts only; each project's result in
// audits/{runId}/projects/{project}, created once by its shard; the projects a run audits in its plan,
// audits/{runId}/plan/{bucket} (shared/documents/audits.ts). No document grows with the number of projects,
// and the run document is written three times a run (created, shards published, closed), never per shard.
// A document that does not match its definition raises DocumentInvalid: nothing is recorded from it.
import { FieldPath, Timestamp, type Firestore, type QuerySnapshot } from '@google-cloud/firestore';
import type { z } from 'zod';
import { clients } from '../clients.js';
import { isAlreadyExists } from '../errors.js';
import { countFirestore } from '../metrics.js';
import type { ProjectResult, RunTotals } from '../domain/audit.js';
import { planBucketCount, planBucketOf, planBuckets } from '../domain/run-plan.js';
import { readDocument } from '../documents/document.js';
import {
  auditRun,
  projectEntry,
  runPlan,
  type AuditRun,
  type ProjectEntry,
  type RollingRecord,
} from '../documents/audits.js';

export const AUDITS = 'audits';
export const RESULTS = 'projects';
const PLAN = 'plan';
const SKIPPED_LISTED = 100;
/** Results read per page when a run closes or is summarized. */
const RESULTS_PAGE = 1_000;

const runRef = (db: Firestore, runId: string) => db.collection(AUDITS).doc(runId);
const resultsOf = (db: Firestore, runId: string) => runRef(db, runId).collection(RESULTS);

/**
 * Creates the run and its plan in one commit; false when the run already exists (a redelivered tick).
 * `skipped` projects (an API off) are recorded as such and never audited; a run with nothing left to audit
 * is closed at once.
 */
export async function createRun(
  runId: string,
  projects: string[],
  startedAt: Date,
  skipped: Record<string, string> = {},
  rolling: RollingRecord | null = null,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  // Skipped projects are listed up to SKIPPED_LISTED (the document stays small at any number of targets).
  const listed = Object.entries(skipped).slice(0, SKIPPED_LISTED);
  const run: z.input<typeof auditRun> = {
    startedAt: Timestamp.fromDate(startedAt),
    finishedAt: null,
    status: 'running',
    projectCount: projects.length,
    skipped: Object.fromEntries(listed),
    counts: {},
    coverage: null,
    apiCalls: 0,
    hostWrites: 0,
    shardsPublished: false,
    ...(rolling ? { rolling } : {}),
    ...(Object.keys(skipped).length > listed.length
      ? { skippedMore: Object.keys(skipped).length - listed.length }
      : {}),
    ...(projects.length === 0 ? { status: 'succeeded', finishedAt: Timestamp.now() } : {}),
  };
  const plan = planBuckets(projects);
  const batch = db.batch().create(runRef(db, runId), run);
  if (projects.length > 0)
    plan.forEach((bucket, i) =>
      batch.create(runRef(db, runId).collection(PLAN).doc(String(i)), {
        projects: JSON.stringify(bucket),
      } satisfies z.input<typeof runPlan>),
    );
  try {
    await batch.commit();
    countFirestore('writes', 1 + (projects.length > 0 ? plan.length : 0));
    return true;
  } catch (error) {
    if (isAlreadyExists(error)) return false;
    throw error;
  }
}

export async function markShardsPublished(runId: string, db: Firestore = clients.firestore()): Promise<void> {
  await runRef(db, runId).update({ shardsPublished: true });
  countFirestore('writes');
}

export async function getRun(runId: string, db: Firestore = clients.firestore()): Promise<AuditRun | null> {
  const snapshot = await runRef(db, runId).get();
  countFirestore('reads');
  return snapshot.exists ? readDocument(auditRun, snapshot.ref.path, snapshot.data()) : null;
}

/** Every project the run audits (its plan), in no particular order. */
export async function runPlanProjects(runId: string, db: Firestore = clients.firestore()): Promise<string[]> {
  const snapshot = await runRef(db, runId).collection(PLAN).get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return snapshot.docs.flatMap((d) => planOf(d.ref.path, d.data()));
}

function planOf(path: string, data: unknown): string[] {
  const list: unknown = JSON.parse(readDocument(runPlan, path, data).projects);
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string'))
    throw new Error(`${path}: projects is not a JSON array of project ids`);
  return list as string[];
}

/**
 * Where one project stands in a run: `member` (the run audits it) and its result when recorded. Two reads
 * in one round trip: the project's plan bucket and its result.
 */
export async function projectInRun(
  run: AuditRun & { runId: string },
  project: string,
  db: Firestore = clients.firestore(),
): Promise<{ member: boolean; result: ProjectEntry | null }> {
  // A run written before its results moved off the run document is read, never recorded on: a shard of a
  // run in flight at that deploy is refused (logged, acknowledged) and the next tick audits its project.
  if (run.projectCount === undefined || run.projectCount === 0) return { member: false, result: null };
  const bucket = runRef(db, run.runId)
    .collection(PLAN)
    .doc(String(planBucketOf(project, planBucketCount(run.projectCount))));
  const [plan, result] = await db.getAll(bucket, resultsOf(db, run.runId).doc(project));
  countFirestore('reads', 2);
  return {
    member: plan!.exists && planOf(plan!.ref.path, plan!.data()).includes(project),
    result: result!.exists ? readDocument(projectEntry, result!.ref.path, result!.data()) : null,
  };
}

export async function getProjectResult(
  runId: string,
  project: string,
  db: Firestore = clients.firestore(),
): Promise<ProjectEntry | null> {
  const snapshot = await resultsOf(db, runId).doc(project).get();
  countFirestore('reads');
  return snapshot.exists ? readDocument(projectEntry, snapshot.ref.path, snapshot.data()) : null;
}

/**
 * The run's recorded results by project, read a page at a time (`status`: only those, e.g. the failed
 * ones). A run written before the subcollection has its results on the run document (`projects`).
 */
export async function runResults(
  runId: string,
  status?: ProjectEntry['status'],
  db: Firestore = clients.firestore(),
): Promise<Record<string, ProjectEntry>> {
  const out: Record<string, ProjectEntry> = {};
  let query = resultsOf(db, runId).orderBy(FieldPath.documentId()).limit(RESULTS_PAGE);
  if (status) query = query.where('status', '==', status);
  for (let last: string | null = null; ;) {
    const page: QuerySnapshot = await (last === null ? query : query.startAfter(last)).get();
    countFirestore('reads', Math.max(1, page.size));
    for (const d of page.docs) out[d.id] = readDocument(projectEntry, d.ref.path, d.data());
    if (page.size < RESULTS_PAGE) return out;
    last = page.docs[page.size - 1]!.id;
  }
}

/**
 * Records one project's result, once: created, so a redelivered shard (or two deliveries at once) writes
 * nothing and counts nothing twice. Returns false when it was already recorded. Writes no shared document:
 * the run is closed apart (closeRunIfComplete).
 */
export async function recordProjectResult(
  runId: string,
  project: string,
  result: ProjectResult,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  try {
    await resultsOf(db, runId)
      .doc(project)
      .create(result satisfies z.input<typeof projectEntry>);
    countFirestore('writes');
    return true;
  } catch (error) {
    if (isAlreadyExists(error)) return false;
    throw error;
  }
}

/**
 * Closes the run when every project's result is in: a count of its results (an aggregation, one read per
 * 1,000) against its projectCount; then the results, a page at a time, make the totals (`totals`, pure), and
 * a transaction on the run document writes them only while the run is still running. Results are created
 * once and never change, so every closer computes the same totals; the transaction makes one of them write
 * (`closed`), the others see `already`. Called after a shard's result is committed (each shard counts after
 * its own write, so the last one to write sees every result) and by each tick for runs left open.
 */
export async function closeRunIfComplete(
  runId: string,
  totals: (projects: ProjectEntry[]) => RunTotals | null,
  db: Firestore = clients.firestore(),
): Promise<'closed' | 'open' | 'already' | 'unknown'> {
  const [run, count] = await Promise.all([getRun(runId, db), resultsOf(db, runId).count().get()]);
  const recorded = count.data().count;
  countFirestore('reads', Math.max(1, Math.ceil(recorded / 1000)));
  if (!run || run.projectCount === undefined) return 'unknown';
  if (run.status !== 'running') return 'already';
  if (recorded < run.projectCount) return 'open';
  const closed = totals(Object.values(await runResults(runId, undefined, db)));
  if (!closed) return 'open';
  countFirestore('transactions');
  const wrote = await db.runTransaction(async (tx) => {
    const snapshot = await tx.get(runRef(db, runId));
    countFirestore('reads');
    if (readDocument(auditRun, snapshot.ref.path, snapshot.data()).status !== 'running') return false;
    tx.update(runRef(db, runId), {
      finishedAt: Timestamp.now(),
      counts: closed.counts,
      coverage: closed.coverage,
      apiCalls: closed.apiCalls,
      hostWrites: closed.hostWrites,
      status: closed.status,
      ...(closed.silence ? { silence: closed.silence } : {}),
    });
    return true;
  });
  if (wrote) countFirestore('writes'); // once committed: a transaction that lost runs its body again
  return wrote ? 'closed' : 'already';
}

/** Runs still open, oldest first (at most `limit`): a tick closes those whose results are all in. */
export async function openRuns(limit: number, db: Firestore = clients.firestore()): Promise<string[]> {
  const snapshot = await db.collection(AUDITS).where('status', '==', 'running').limit(limit).select().get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return snapshot.docs.map((d) => d.id);
}
