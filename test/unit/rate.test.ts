import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mapLimit, perMinuteLimiter } from '../../shared/rate.js';

const t = suite('concurrency and quota pacing');

t('mapLimit keeps order and never exceeds the limit', async () => {
  let inFlight = 0;
  let peak = 0;
  const out = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (n) => {
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, n));
    inFlight -= 1;
    return n * 10;
  });
  assert.equal(out, [50, 10, 40, 20, 30, 0]);
  assert.is(peak, 2);
});

t('perMinuteLimiter: a burst up to the quota, then paced', async () => {
  let clock = 0;
  const limiter = perMinuteLimiter(1200, () => clock); // one token per 50 ms
  for (let i = 0; i < 1200; i++) await limiter.take();
  assert.is(limiter.waitedMs(), 0, 'the burst is free');
  await limiter.take();
  assert.is(limiter.waitedMs(), 50, 'the next call waits one refill interval');
  clock += 60_000;
  for (let i = 0; i < 1200; i++) await limiter.take();
  assert.is(limiter.waitedMs(), 50, 'a minute later the bucket is full again');
});

t.run();
