// Firestore: audits/{runId}, one document per audit run (contracts.md), completed project by project.
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import { isInScope, type HostState } from '../domain/host.js';

export const AUDITS = 'audits';

export interface ProjectResult {
  status: 'succeeded' | 'failed';
  instances: number;
  error?: string;
  counts: Partial<Record<HostState, number>>;
  apiCalls: number;
  hostWrites: number;
}

/** Creates the run; false when it already exists (a redelivered tick). */
export async function createRun(
  runId: string,
  projects: string[],
  startedAt: Date,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  try {
    await db
      .collection(AUDITS)
      .doc(runId)
      .create({
        startedAt: Timestamp.fromDate(startedAt),
        finishedAt: null,
        status: 'running',
        projects: Object.fromEntries(projects.map((p) => [p, { status: 'running', instances: 0 }])),
        counts: {},
        coverage: null,
        apiCalls: 0,
        hostWrites: 0,
        shardsPublished: false,
      });
    countFirestore('writes');
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 6) return false; // ALREADY_EXISTS
    throw error;
  }
}

export async function markShardsPublished(runId: string, db: Firestore = clients.firestore()): Promise<void> {
  await db.collection(AUDITS).doc(runId).update({ shardsPublished: true });
  countFirestore('writes');
}

export async function getRun(runId: string, db: Firestore = clients.firestore()) {
  const snapshot = await db.collection(AUDITS).doc(runId).get();
  countFirestore('reads');
  return snapshot.exists ? snapshot.data()! : null;
}

/** Coverage = reporting / (in scope and not stopped). */
export function coverageOf(counts: Partial<Record<HostState, number>>): number | null {
  const denominator = Object.entries(counts)
    .filter(([state]) => isInScope(state as HostState) && state !== 'stopped')
    .reduce((a, [, n]) => a + (n ?? 0), 0);
  return denominator === 0 ? null : Math.round(((counts.reporting ?? 0) / denominator) * 10_000) / 10_000;
}

/**
 * Records one project's result; the last project to finish closes the run with totals. Returns false
 * when the project was already recorded (a redelivered shard), so nothing is counted twice.
 */
export async function recordProjectResult(
  runId: string,
  project: string,
  result: ProjectResult,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const ref = db.collection(AUDITS).doc(runId);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    if (!snapshot.exists) throw new Error(`audit run ${runId} does not exist`);
    const projects: Record<string, { status: string } & Partial<Omit<ProjectResult, 'status'>>> = {
      ...snapshot.get('projects'),
    };
    if (projects[project] && projects[project].status !== 'running') return false;
    projects[project] = result;
    const update: Record<string, unknown> = { [`projects.${project}`]: result };
    const all = Object.values(projects);
    if (all.every((p) => p.status !== 'running')) {
      const counts: Partial<Record<HostState, number>> = {};
      for (const p of all)
        for (const [state, n] of Object.entries(p.counts ?? {}))
          counts[state as HostState] = (counts[state as HostState] ?? 0) + (n ?? 0);
      const failed = all.filter((p) => p.status === 'failed').length;
      Object.assign(update, {
        finishedAt: Timestamp.now(),
        counts,
        coverage: coverageOf(counts),
        apiCalls: all.reduce((a, p) => a + (p.apiCalls ?? 0), 0),
        hostWrites: all.reduce((a, p) => a + (p.hostWrites ?? 0), 0),
        status: failed === 0 ? 'succeeded' : failed === all.length ? 'failed' : 'partial',
      });
    }
    tx.update(ref, update);
    countFirestore('writes');
    return true;
  });
}
