// Firestore: audits/{runId}, one document per audit run (shared/documents/audits.ts), completed project by
// project. A run that does not match its definition raises DocumentInvalid: nothing is recorded on it.
import { FieldPath, Timestamp, type Firestore } from '@google-cloud/firestore';
import type { z } from 'zod';
import { clients } from '../clients.js';
import { isAlreadyExists } from '../errors.js';
import { countFirestore } from '../metrics.js';
import type { ProjectResult, RunTotals } from '../domain/audit.js';
import { readDocument } from '../documents/document.js';
import { auditRun, type AuditRun, type ProjectEntry, type RollingRecord } from '../documents/audits.js';

export const AUDITS = 'audits';
const SKIPPED_LISTED = 100;

/**
 * Creates the run; false when it already exists (a redelivered tick). `skipped` projects (an API off)
 * are recorded as such and never audited; a run with nothing left to audit is closed at once.
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
    projects: Object.fromEntries([
      ...projects.map((p) => [p, { status: 'running', instances: 0 }]),
      ...listed.map(([p, reason]) => [p, { status: 'skipped', instances: 0, reason }]),
    ]),
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
  try {
    await db.collection(AUDITS).doc(runId).create(run);
    countFirestore('writes');
    return true;
  } catch (error) {
    if (isAlreadyExists(error)) return false;
    throw error;
  }
}

export async function markShardsPublished(runId: string, db: Firestore = clients.firestore()): Promise<void> {
  await db.collection(AUDITS).doc(runId).update({ shardsPublished: true });
  countFirestore('writes');
}

export async function getRun(runId: string, db: Firestore = clients.firestore()): Promise<AuditRun | null> {
  const snapshot = await db.collection(AUDITS).doc(runId).get();
  countFirestore('reads');
  return snapshot.exists ? readDocument(auditRun, snapshot.ref.path, snapshot.data()) : null;
}

/**
 * Records one project's result; the last project to finish closes the run with what `totals` makes of
 * every project's result. Returns false when the project was already recorded (a redelivered shard) or
 * is not one of the run's, so nothing is counted twice. Project ids may hold dots and colons
 * (`example.com:acme`): the field path quotes them.
 */
export async function recordProjectResult(
  runId: string,
  project: string,
  result: ProjectResult,
  totals: (projects: ProjectEntry[]) => RunTotals | null,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const ref = db.collection(AUDITS).doc(runId);
  countFirestore('transactions');
  const recorded = await db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    if (!snapshot.exists) throw new Error(`audit run ${runId} does not exist`);
    const projects = { ...readDocument(auditRun, ref.path, snapshot.data()).projects };
    if (!Object.hasOwn(projects, project) || projects[project]!.status !== 'running') return false;
    const entry: ProjectEntry = result;
    projects[project] = entry;
    const update: Array<[string | FieldPath, unknown]> = [[new FieldPath('projects', project), result]];
    const closed = totals(Object.values(projects));
    if (closed)
      update.push(
        ['finishedAt', Timestamp.now()],
        ['counts', closed.counts],
        ['coverage', closed.coverage],
        ['apiCalls', closed.apiCalls],
        ['hostWrites', closed.hostWrites],
        ['status', closed.status],
      );
    const [[field, value], ...more] = update as [
      [string | FieldPath, unknown],
      ...Array<[string | FieldPath, unknown]>,
    ];
    tx.update(ref, field, value, ...more.flat());
    return true;
  });
  // Counted once committed: shards finishing together contend for the run, and a transaction that
  // lost runs its body again.
  if (recorded) countFirestore('writes');
  return recorded;
}
