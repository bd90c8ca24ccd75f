// The global API budget's scheduler and the simulator's quotas, pure: whatever the order and size of the
// requests, no window ever holds more than the budget, and the simulator answers Google's 429 past a limit.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { familyOfMethod, peakPerWindow, scheduleGrant, type Grant } from '../../shared/domain/api-budget.js';
import { Quotas, quotaFamilyOf } from '../../infra/local/simulator/quotas.js';
import { HttpError } from '../../infra/local/simulator/http.js';

const t = suite('API budget and simulated quotas');

/** A seeded generator (mulberry32): the random requests are the same on every run. */
function seeded(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

t('a burst up to the budget is granted at once, the next call one window after the first', () => {
  let grants: Grant[] = [];
  for (let i = 0; i < 60; i++) {
    const s = scheduleGrant(grants, 1_000 + i, 1, 60, 60_000);
    assert.is(s.at, 1_000 + i);
    grants = s.grants;
  }
  const next = scheduleGrant(grants, 2_000, 1, 60, 60_000);
  assert.is(next.at, 61_000, 'the oldest grant leaves the window');
  assert.ok(next.grants.length <= 61);
});

t('random requests from many callers: no window ever holds more than the budget, and nothing starves', () => {
  const random = seeded(25);
  const all: Grant[] = [];
  let grants: Grant[] = [];
  let now = 0;
  for (let i = 0; i < 2_000; i++) {
    now += Math.floor(random() * 400);
    const n = 1 + Math.floor(random() * 6);
    const s = scheduleGrant(grants, now, n, 48, 60_000);
    assert.ok(s.at >= now);
    assert.ok(s.at >= (all.at(-1)?.[0] ?? 0), 'served in the order asked');
    grants = s.grants;
    all.push([s.at, n]);
  }
  assert.ok(peakPerWindow(all, 60_000) <= 48, `peak ${peakPerWindow(all, 60_000)}`);
  // Demand (about 3.5 calls per 200 ms) exceeds the budget: the grants run at the budget's full rate.
  const span = all.at(-1)![0] - all[0]![0];
  const calls = all.reduce((s, [, n]) => s + n, 0);
  assert.ok(calls / (span / 60_000) > 48 * 0.9, `sustained ${(calls / (span / 60_000)).toFixed(1)} a minute`);
});

t('the families: OS Config reads and writes, Service Usage, Resource Manager; Compute is per project', () => {
  assert.is(familyOfMethod('serviceusage.services.batchGet'), 'serviceUsage');
  assert.is(familyOfMethod('resourcemanager.folders.list'), 'resourceManager');
  assert.is(familyOfMethod('osconfig.listOsPolicyAssignmentReports'), 'osconfigReads');
  assert.is(familyOfMethod('osconfig.createOsPolicyAssignment'), 'osconfigWrites');
  assert.is(familyOfMethod('compute.instances.aggregatedList'), null);
  assert.is(quotaFamilyOf('osconfig.osPolicyAssignments.patch'), 'osconfigWrites');
  assert.is(quotaFamilyOf('osconfig.operations.get'), 'osconfigReads');
  assert.is(quotaFamilyOf('compute.instances.aggregatedList'), 'computeReads');
  assert.is(quotaFamilyOf('storage.objects.get'), null);
});

t('the simulator: per user and per region, a sliding window, Google 429 RATE_LIMIT_EXCEEDED', () => {
  const q = new Quotas();
  q.configure({ limits: { osconfigReads: { perUser: 3, perRegion: 2 } }, windowMs: 1_000 });
  const path = (zone: string) => `/v1/projects/p/locations/${zone}/instances/-/inventories`;
  q.admit('osconfig.inventories.list', path('us-east1-b'), 'sa', 0);
  q.admit('osconfig.inventories.list', path('us-east1-c'), 'sa', 10);
  let refused: unknown;
  try {
    q.admit('osconfig.inventories.list', path('us-east1-d'), 'sa', 20); // same region, its third
  } catch (error) {
    refused = error;
  }
  assert.ok(refused instanceof HttpError);
  assert.is(refused.status, 429);
  const body = refused.body as { error: { status: string; details: Array<{ reason: string }> } };
  assert.is(body.error.status, 'RESOURCE_EXHAUSTED');
  assert.is(body.error.details[0]!.reason, 'RATE_LIMIT_EXCEEDED');
  q.admit('osconfig.inventories.list', path('europe-west1-b'), 'sa', 30); // another region: the user's third
  assert.throws(() => q.admit('osconfig.inventories.list', path('asia-east1-a'), 'sa', 40), /per user/);
  q.admit('osconfig.inventories.list', path('asia-east1-a'), 'sa', 1_001); // the first left the window
  assert.equal(q.rejected, { osconfigReads: 2 });
  assert.is(q.peaks['osconfigReads.perUser'], 3);
  q.admit('storage.objects.get', '/storage/v1/b/x/o/y', 'sa', 1_002); // no quota modelled: admitted
});

t.run();
