// The global API budget in Firestore (apiBudget/{family}): before calling a quota-bound API, an instance
// schedules its calls in a transaction against every grant any instance made in the last window, then waits
// until its grant's time. Concurrent callers in one process share one transaction (their calls are granted
// together), so the document sees a handful of writes a minute. Why this design: docs/quotas.md.
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { config } from '../config.js';
import { TransientError } from '../errors.js';
import { log } from '../log.js';
import { countFirestore } from '../metrics.js';
import { scheduleGrant, type ApiFamily, type Grant } from '../domain/api-budget.js';
import { readDocument } from '../documents/document.js';
import { apiBudgetDocument } from '../documents/api-budget.js';

export const API_BUDGET = 'apiBudget';

/** The configured budget of a family, calls per window (0: no budget), and the window. */
export function budgetOf(family: ApiFamily): { perWindow: number; windowMs: number } {
  const c = config();
  const perWindow = {
    osconfigReads: c.API_BUDGET_OSCONFIG_READS,
    osconfigWrites: c.API_BUDGET_OSCONFIG_WRITES,
    serviceUsage: c.API_BUDGET_SERVICE_USAGE,
    resourceManager: c.API_BUDGET_RESOURCE_MANAGER,
  }[family];
  return { perWindow, windowMs: c.API_BUDGET_WINDOW_SECONDS * 1000 };
}

/**
 * Grants are spaced as if the window were longer by this much: a call leaves a little after its grant
 * (a busy event loop, a slow connection), and one that leaves late must still fall outside Google's window
 * of the calls granted a window later. A twentieth of the window, at least two seconds; a grant
 * used later than half of that is void (the caller asks again, up to three times).
 */
export const guardMs = (windowMs: number) => Math.max(2_000, windowMs / 20);

interface Waiter {
  n: number;
  resolve: (at: number) => void;
  reject: (error: unknown) => void;
}
const queues = new Map<ApiFamily, { waiting: Waiter[]; busy: boolean }>();
let waitedMs = 0;

/** Milliseconds this process's calls waited for the budget (benches report it). */
export const budgetWaitedMs = () => waitedMs;

/**
 * Waits until `n` calls of `family` fit the global budget, and counts them as made. Throws a TransientError
 * (the event is redelivered later) when the wait would exceed API_BUDGET_MAX_WAIT_SECONDS.
 */
export async function spendApiBudget(family: ApiFamily, n = 1, db?: Firestore): Promise<void> {
  const { perWindow } = budgetOf(family);
  if (perWindow === 0 || n <= 0) return;
  // A request larger than the budget is granted in budget-sized parts, one window apart.
  for (let left = n, voided = 0; left > 0;) {
    const part = Math.min(left, perWindow);
    const at = await new Promise<number>((resolve, reject) => {
      const queue = queues.get(family) ?? { waiting: [], busy: false };
      queues.set(family, queue);
      queue.waiting.push({ n: part, resolve, reject });
      void drain(family, queue, db);
    });
    const wait = at - Date.now();
    if (wait > 0) {
      waitedMs += wait;
      await new Promise((r) => setTimeout(r, wait));
    }
    // A grant used late (a busy instance) could land beside the next window's grants: void, ask again.
    const late = Date.now() - at;
    if (late > guardMs(budgetOf(family).windowMs) / 2 && voided++ < 3) {
      log.warn({ family, lateMs: late }, 'API budget: a grant came too late to use (a busy instance); asking again');
      continue;
    }
    left -= part;
  }
}

/** Grants the waiting callers together, as many as one grant may hold, one transaction at a time. */
async function drain(family: ApiFamily, queue: { waiting: Waiter[]; busy: boolean }, db?: Firestore): Promise<void> {
  if (queue.busy) return;
  queue.busy = true;
  try {
    while (queue.waiting.length > 0) {
      const { perWindow } = budgetOf(family);
      const batch: Waiter[] = [];
      let calls = 0;
      while (queue.waiting.length > 0 && calls + queue.waiting[0]!.n <= perWindow) {
        calls += queue.waiting[0]!.n;
        batch.push(queue.waiting.shift()!);
      }
      try {
        const at = await grant(family, calls, db ?? clients.firestore());
        for (const w of batch) w.resolve(at);
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
  } finally {
    queue.busy = false;
  }
}

async function grant(family: ApiFamily, calls: number, db: Firestore): Promise<number> {
  const { perWindow, windowMs } = budgetOf(family);
  const maxWaitMs = config().API_BUDGET_MAX_WAIT_SECONDS * 1000;
  const ref = db.collection(API_BUDGET).doc(family);
  countFirestore('transactions');
  const at = await db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    const stored = snapshot.exists ? readDocument(apiBudgetDocument, ref.path, snapshot.data()) : null;
    const grants = stored ? (JSON.parse(stored.grants) as Grant[]) : [];
    const now = Date.now();
    const scheduled = scheduleGrant(grants, now, calls, perWindow, windowMs + guardMs(windowMs));
    if (scheduled.at - now > maxWaitMs)
      throw new TransientError(
        `API budget ${family}: ${calls} calls would wait ${Math.round((scheduled.at - now) / 1000)} s ` +
          `(more than API_BUDGET_MAX_WAIT_SECONDS); retried later`,
      );
    tx.set(ref, {
      family,
      grants: JSON.stringify(scheduled.grants),
      perWindow,
      windowMs,
      updatedAt: Timestamp.fromMillis(now),
    });
    return scheduled.at;
  });
  countFirestore('writes');
  return at;
}
