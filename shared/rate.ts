// Bounded concurrency and per-minute quotas for API calls.

/** Runs fn over items with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * A token bucket refilled evenly over a minute: a burst of up to `perMinute` calls, then one call every
 * 60/perMinute seconds. Keeps a run inside an API's per-minute quota instead of bouncing off it.
 */
export function perMinuteLimiter(
  perMinute: number,
  now: () => number = Date.now,
): { take(): Promise<void>; waitedMs: () => number } {
  const refillMs = 60_000 / perMinute;
  let tokens = perMinute;
  let last = now();
  let waited = 0;
  let chain: Promise<void> = Promise.resolve();
  const take = () => {
    chain = chain.then(async () => {
      const t = now();
      tokens = Math.min(perMinute, tokens + (t - last) / refillMs);
      last = t;
      if (tokens < 1) {
        const wait = Math.ceil((1 - tokens) * refillMs);
        waited += wait;
        await new Promise((r) => setTimeout(r, wait));
        tokens = 1;
        last = now();
      }
      tokens -= 1;
    });
    return chain;
  };
  return { take, waitedMs: () => waited };
}
