// Counts of what the process spent: API calls by method and Firestore operations. Audit runs report
// them (audits/{runId}.apiCalls, hostWrites) and benchmarks compare them.

export interface Usage {
  apiCalls: Record<string, number>;
  firestoreReads: number;
  firestoreWrites: number;
  transactions: number;
}

const usage: Usage = { apiCalls: {}, firestoreReads: 0, firestoreWrites: 0, transactions: 0 };

export function countApiCall(method: string): void {
  usage.apiCalls[method] = (usage.apiCalls[method] ?? 0) + 1;
}

export function countFirestore(kind: 'reads' | 'writes' | 'transactions', n = 1): void {
  if (kind === 'reads') usage.firestoreReads += n;
  else if (kind === 'writes') usage.firestoreWrites += n;
  else usage.transactions += n;
}

export function usageSnapshot(): Usage {
  return { ...usage, apiCalls: { ...usage.apiCalls } };
}

export const totalApiCalls = (u: Usage) => Object.values(u.apiCalls).reduce((a, b) => a + b, 0);

/** What was spent between two snapshots. */
export function usageSince(before: Usage): Usage {
  const now = usageSnapshot();
  const apiCalls: Record<string, number> = {};
  for (const [k, v] of Object.entries(now.apiCalls))
    if (v - (before.apiCalls[k] ?? 0) > 0) apiCalls[k] = v - (before.apiCalls[k] ?? 0);
  return {
    apiCalls,
    firestoreReads: now.firestoreReads - before.firestoreReads,
    firestoreWrites: now.firestoreWrites - before.firestoreWrites,
    transactions: now.transactions - before.transactions,
  };
}
