// Firestore: osquery's cost as the orchestrator keeps it. queryStats/{configVersion}~{query} (hourly
// windows of increments, written by logHeartbeat; alerts and expiry by the audit's run close), the hosts
// where osqueryd costs most (hosts/{id}.osqueryd, a bounded query), and status/osquery (the status
// page's snapshot of both). Read through shared/documents (query-stats.ts, hosts.ts, status.ts).
import { FieldValue, Timestamp, type Firestore, type WriteBatch } from '@google-cloud/firestore';
import type { z } from 'zod';
import { clients } from '../clients.js';
import { isTransient } from '../errors.js';
import { countFirestore } from '../metrics.js';
import { mapLimit } from '../rate.js';
import {
  incrementTree,
  type HostCost,
  type OsqueryCostStatus,
  type QueryStatsDoc,
  type QueryStatsIncrement,
  type QueryStatsPlan,
} from '../domain/telemetry.js';
import { readDocument, reportInvalid, tryReadDocument } from '../documents/document.js';
import { logBudgetDocument, queryStatsDocument } from '../documents/query-stats.js';
import { hostCostRow } from '../documents/hosts.js';
import { osqueryStatus } from '../documents/status.js';
import { stageEpisodes } from './alerts.js';
import type { LogBudgetPlan } from '../domain/log-budget.js';
import { HOSTS } from './hosts.js';
import { STATUS } from './status.js';

export const QUERY_STATS = 'queryStats';
export const LOG_BUDGETS = 'logBudgets';
const OSQUERY_STATUS = 'osquery';

/** The numbers of an increment tree as FieldValue.increment (the tree's shape is the document's). */
function asIncrements(tree: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(tree).map(([k, v]) => [
      k,
      typeof v === 'number' ? FieldValue.increment(v) : asIncrements(v as Record<string, unknown>),
    ]),
  );
}

/** What writing buffered increments came to: the increments committed, and those that were not, with why. */
export interface QueryStatsWrite {
  written: QueryStatsIncrement[];
  failed: Array<{ increment: QueryStatsIncrement; error: unknown }>;
}

/**
 * Adds buffered increments to their queryStats documents: one set(..., {merge: true}) per document
 * (created when missing), in commits of at most 500. A commit that fails transiently stops the write (it
 * and the commits after it are returned as failed: retry them later); one that fails otherwise is written
 * again document by document, so one document that can never be written fails alone. Increments are not
 * idempotent: what is returned as written was committed once, and nothing else was.
 */
export async function writeQueryStats(
  increments: QueryStatsIncrement[],
  db: Firestore = clients.firestore(),
): Promise<QueryStatsWrite> {
  const result: QueryStatsWrite = { written: [], failed: [] };
  const stage = (writer: WriteBatch, inc: QueryStatsIncrement) =>
    writer.set(
      db.collection(QUERY_STATS).doc(inc.id),
      {
        configVersion: inc.configVersion,
        query: inc.query,
        ...(inc.interval === null ? {} : { interval: inc.interval }),
        ...asIncrements(incrementTree(inc.increments)),
      },
      { merge: true },
    );
  for (let i = 0; i < increments.length; i += 500) {
    const chunk = increments.slice(i, i + 500);
    try {
      const batch = db.batch();
      for (const inc of chunk) stage(batch, inc);
      await batch.commit();
      countFirestore('writes', chunk.length);
      result.written.push(...chunk);
    } catch (error) {
      if (isTransient(error)) {
        result.failed.push(...increments.slice(i).map((increment) => ({ increment, error })));
        return result;
      }
      await mapLimit(chunk, 50, async (inc) => {
        try {
          const one = db.batch();
          stage(one, inc);
          await one.commit();
          countFirestore('writes');
          result.written.push(inc);
        } catch (error) {
          result.failed.push({ increment: inc, error });
        }
      });
    }
  }
  return result;
}

/**
 * Every queryStats document, or those of one configuration version. One that does not match its definition
 * is left out and reported with its path: its readers (the run close's query alerts and summary, `osq-orch
 * queries`) go on with the others.
 */
export async function listQueryStats(
  configVersion?: string,
  db: Firestore = clients.firestore(),
): Promise<Array<{ id: string; doc: QueryStatsDoc }>> {
  const snapshot = await (
    configVersion ? db.collection(QUERY_STATS).where('configVersion', '==', configVersion) : db.collection(QUERY_STATS)
  ).get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return snapshot.docs.flatMap((d) => {
    const read = tryReadDocument(queryStatsDocument, d.ref.path, d.data());
    if (read.ok) return [{ id: d.id, doc: read.value }];
    reportInvalid(read.invalid, 'left out of the query statistics');
    return [];
  });
}

/**
 * Reads a queryStats document and writes `plan`'s decision in one transaction: its open query alerts
 * with the episode records they open or close, and its expired windows deleted (the document itself once
 * nothing is left). Null when the document is gone or nothing changed.
 */
export async function applyQueryStatsPlan(
  id: string,
  plan: (doc: QueryStatsDoc) => QueryStatsPlan,
  db: Firestore = clients.firestore(),
): Promise<{ plan: QueryStatsPlan | null; alertKeys: string[] }> {
  const ref = db.collection(QUERY_STATS).doc(id);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    if (!snapshot.exists) return { plan: null, alertKeys: [] };
    const decided = plan(readDocument(queryStatsDocument, ref.path, snapshot.data()));
    if (!decided.changed) return { plan: decided, alertKeys: [] };
    if (decided.remove) tx.delete(ref);
    else
      tx.update(ref, {
        // The whole map: its keys (`query.expensive`) hold dots.
        alerts: Object.fromEntries(Object.entries(decided.alerts).map(([k, d]) => [k, Timestamp.fromDate(d)])),
        ...Object.fromEntries(decided.expired.map((w) => [`windows.${w}`, FieldValue.delete()])),
      });
    countFirestore('writes');
    return { plan: decided, alertKeys: decided.episodes.flatMap((e) => stageEpisodes(tx, e, db)) };
  });
}

const budgetId = (configVersion: string) => configVersion.replace(/%/g, '%25').replace(/\//g, '%2F');

/** The versions with a logs.overBudget episode open: version -> when it began (few: deleted when closed). */
export async function openLogBudgets(db: Firestore = clients.firestore()): Promise<Map<string, Date>> {
  const snapshot = await db.collection(LOG_BUDGETS).get();
  countFirestore('reads', Math.max(1, snapshot.size));
  const open = new Map<string, Date>();
  for (const d of snapshot.docs) {
    const doc = readDocument(logBudgetDocument, d.ref.path, d.data());
    open.set(doc.configVersion, doc.since);
  }
  return open;
}

/**
 * A version's budget episode against what is stored now, in a transaction: `plan` is given the open
 * episode's start as read, its episodes are staged with the record's creation or deletion (so two run
 * closes never open the same episode twice). Returns the alert keys to deliver.
 */
export async function applyLogBudgetPlan(
  configVersion: string,
  plan: (open: Date | null) => LogBudgetPlan,
  db: Firestore = clients.firestore(),
): Promise<string[]> {
  const ref = db.collection(LOG_BUDGETS).doc(budgetId(configVersion));
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    const open = snapshot.exists ? readDocument(logBudgetDocument, ref.path, snapshot.data()).since : null;
    const decided = plan(open);
    if (!decided.changed) return [];
    if (decided.since) tx.set(ref, { configVersion, since: Timestamp.fromDate(decided.since) });
    else tx.delete(ref);
    countFirestore('writes');
    return decided.episodes.flatMap((e) => stageEpisodes(tx, e, db));
  });
}

/**
 * The in-scope hosts where osqueryd costs most, by CPU over its last heartbeat interval or by resident
 * memory: a bounded query (composite index hosts(inScope, osqueryd.cpuPercent | osqueryd.rssBytes)). A host
 * whose fields do not match their definition is left out and reported with its path.
 */
export async function topHostsByCost(
  by: 'cpu' | 'memory',
  n: number,
  db: Firestore = clients.firestore(),
): Promise<HostCost[]> {
  // Whole chains, so the Terraform contract test finds each query's composite index.
  const ordered =
    by === 'cpu'
      ? db.collection(HOSTS).where('inScope', '==', true).orderBy('osqueryd.cpuPercent', 'desc')
      : db.collection(HOSTS).where('inScope', '==', true).orderBy('osqueryd.rssBytes', 'desc');
  const row = hostCostRow.partial({ configVersion: true });
  const snapshot = await ordered
    .select(...Object.keys(row.shape))
    .limit(n)
    .get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return snapshot.docs.flatMap((d) => {
    const read = tryReadDocument(row, d.ref.path, d.data());
    if (!read.ok) {
      reportInvalid(read.invalid, 'left out of the hosts where osqueryd costs most');
      return [];
    }
    const { name, project, zone, configVersion, osqueryd: o } = read.value;
    return [
      {
        instanceId: d.id,
        name,
        project,
        zone,
        configVersion: configVersion ?? null,
        cpuPercent: o.cpuPercent ?? null,
        rssBytes: o.rssBytes,
        at: o.at,
        alerting: Boolean(o.episode),
      },
    ];
  });
}

/**
 * status/osquery: what the status page shows of osquery's cost, written at each audit run's close, once per
 * run: two shards closing the same run at once may both evaluate, and the second finds it written.
 */
export async function writeOsqueryStatus(
  status: OsqueryCostStatus,
  db: Firestore = clients.firestore(),
): Promise<boolean> {
  const stored: z.input<typeof osqueryStatus> = status;
  const ref = db.collection(STATUS).doc(OSQUERY_STATUS);
  countFirestore('transactions');
  const written = await db.runTransaction(async (tx) => {
    const current = await tx.get(ref);
    if (current.exists && current.get('runId') === status.runId) return false;
    tx.set(ref, stored);
    return true;
  });
  if (written) countFirestore('writes');
  return written;
}

export async function getOsqueryStatus(db: Firestore = clients.firestore()): Promise<OsqueryCostStatus | null> {
  const snapshot = await db.collection(STATUS).doc(OSQUERY_STATUS).get();
  countFirestore('reads');
  return snapshot.exists ? readDocument(osqueryStatus, snapshot.ref.path, snapshot.data()) : null;
}
