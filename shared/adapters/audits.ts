// Firestore: audits/{runId}, one document per audit run (contracts.md), completed project by project.
import { FieldPath, Timestamp, type Firestore } from '@google-cloud/firestore';
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
  /** VMs whose label or metadata fix failed (each left for the next audit). */
  fixFailures?: number;
}

/**
 * Creates the run; false when it already exists (a redelivered tick). `skipped` projects (an API off)
 * are recorded as such and never audited; a run with nothing left to audit is closed at once.
 */
export async function createRun(
  runId: string,
  projects: string[],
  startedAt: Date,
  db: Firestore = clients.firestore(),
  skipped: Record<string, string> = {},
): Promise<boolean> {
  try {
    await db
      .collection(AUDITS)
      .doc(runId)
      .create({
        startedAt: Timestamp.fromDate(startedAt),
        finishedAt: null,
        status: 'running',
        projects: Object.fromEntries([
          ...projects.map((p) => [p, { status: 'running', instances: 0 }]),
          ...Object.entries(skipped).map(([p, reason]) => [p, { status: 'skipped', instances: 0, reason }]),
        ]),
        counts: {},
        coverage: null,
        apiCalls: 0,
        hostWrites: 0,
        shardsPublished: false,
        ...(projects.length === 0 ? { status: 'succeeded', finishedAt: Timestamp.now() } : {}),
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
 * when the project was already recorded (a redelivered shard) or is not one of the run's, so nothing is
 * counted twice. Project ids may hold dots and colons (`example.com:acme`): the field path quotes them.
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
    if (!Object.hasOwn(projects, project) || projects[project]!.status !== 'running') return false;
    projects[project] = result;
    const update: Array<[string | FieldPath, unknown]> = [[new FieldPath('projects', project), result]];
    const all = Object.values(projects);
    if (all.every((p) => p.status !== 'running')) {
      const counts: Partial<Record<HostState, number>> = {};
      for (const p of all)
        for (const [state, n] of Object.entries(p.counts ?? {}))
          counts[state as HostState] = (counts[state as HostState] ?? 0) + (n ?? 0);
      const failed = all.filter((p) => p.status === 'failed').length;
      const audited = all.filter((p) => p.status !== 'skipped').length; // a skipped project never makes a run partial
      update.push(
        ['finishedAt', Timestamp.now()],
        ['counts', counts],
        ['coverage', coverageOf(counts)],
        ['apiCalls', all.reduce((a, p) => a + (p.apiCalls ?? 0), 0)],
        ['hostWrites', all.reduce((a, p) => a + (p.hostWrites ?? 0), 0)],
        ['status', failed === 0 ? 'succeeded' : failed === audited ? 'failed' : 'partial'],
      );
    }
    const [[field, value], ...more] = update as [
      [string | FieldPath, unknown],
      ...Array<[string | FieldPath, unknown]>,
    ];
    tx.update(ref, field, value, ...more.flat());
    countFirestore('writes');
    return true;
  });
}
