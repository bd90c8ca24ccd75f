// Bookkeeping at 10,000 target projects: every document the audit writes stays far below Firestore's limits
// (1 MiB and 40,000 index entries per document), sizes computed as Firestore documents them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Timestamp } from '@google-cloud/firestore';
import { auditRun, projectEntry, runPlan } from '../../shared/documents/audits.js';
import { planBucketOf, planBuckets } from '../../shared/domain/run-plan.js';
import { mergeFleetStatus, summarizeProject } from '../../shared/domain/status.js';
import type { Host } from '../../shared/domain/host.js';
import { apiBudgetDocument, serviceStatesDocument } from '../../shared/documents/api-budget.js';
import { parseConfig } from '../../shared/config.js';
import { planRollingTick, readsPerProject } from '../../shared/domain/rolling-audit.js';

const t = suite('document sizes at 10,000 projects');
const MiB = 1024 * 1024;

/** Firestore's storage size (firestore/docs/storage-size): strings UTF-8 + 1, numbers 8, maps per field. */
function sizeOf(value: unknown): number {
  if (value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'number' || value instanceof Timestamp || value instanceof Date) return 8;
  if (typeof value === 'string') return Buffer.byteLength(value) + 1;
  if (Array.isArray(value)) return value.reduce((s: number, v) => s + sizeOf(v), 0);
  return Object.entries(value as object).reduce((s, [k, v]) => s + Buffer.byteLength(k) + 1 + sizeOf(v), 0);
}
const documentSize = (path: string, data: object) => Buffer.byteLength(path) + 16 + sizeOf(data) + 32;
/** Automatic single-field indexes: two entries (ascending, descending) per field, nested map fields included. */
function indexEntries(value: unknown): number {
  if (value === null || typeof value !== 'object' || value instanceof Timestamp || value instanceof Date) return 2;
  if (Array.isArray(value)) return value.length + value.reduce((s: number, v) => s + indexEntries(v), 0);
  return Object.values(value).reduce((s: number, v) => s + indexEntries(v), 0);
}

const projectId = (i: number) => `acme-prod-workload-${String(i).padStart(5, '0')}`; // 24 characters
const cap = parseConfig({}).AUDIT_MAX_PROJECTS_PER_RUN;
const host = (instanceId: string) =>
  ({ instanceId, name: `vm-${instanceId}`, state: 'reporting', reason: null, configVersion: 'v1' }) as unknown as Host;

t('a rolling tick at 10,000 projects audits at most the cap, whatever the budget', () => {
  const candidates = Array.from({ length: 10_000 }, (_, i) => ({
    project: projectId(i),
    lastAuditAt: null,
    zones: 3,
    inRolloutStage: false,
    needsAction: false,
  }));
  const plan = planRollingTick(candidates, cap * readsPerProject(1));
  assert.ok(plan.selected.length <= cap, `${plan.selected.length} projects`);
});

const TARGETS = 10_000;
const fullResult = {
  status: 'succeeded',
  instances: 1_000,
  counts: { reporting: 900, silent: 20, noncompliant: 20, blocked: 20, pending: 20, exempt: 10, stopped: 10 },
  apiCalls: 12_345,
  hostWrites: 1_000,
  fixFailures: 3,
  invalidHosts: 1,
  error: 'x'.repeat(200),
};
const RUN = 'projects/p/databases/(default)/documents/audits/run-0123456789abcdef0123';

t('the run document of a run auditing 10,000 projects, 100 skipped listed: run-level facts only', () => {
  const run = auditRun.parse({
    startedAt: Timestamp.now(),
    finishedAt: Timestamp.now(),
    status: 'partial',
    projectCount: TARGETS,
    skipped: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [projectId(TARGETS + i), 'x'.repeat(40)])),
    skippedMore: 9_000,
    counts: fullResult.counts,
    coverage: 0.9,
    apiCalls: 1e7,
    hostWrites: 1e6,
    shardsPublished: true,
    rolling: {
      targets: 20_000,
      selected: TARGETS,
      readsPerTick: 576,
      cycleTicks: 105,
      cycleMinutes: 1575,
      neverAudited: 0,
      oldestAuditAgeMinutes: 1500,
    },
  });
  const bytes = documentSize(RUN, run);
  const entries = indexEntries(run);
  // The same at any number of projects: nothing on it grows with them (the skipped list is capped at 100).
  assert.ok(bytes < MiB / 100, `${bytes} bytes`);
  assert.ok(entries < 40_000 / 100, `${entries} index entries`);
});

t("a project's result document, the fullest one, at any number of projects", () => {
  const result = projectEntry.parse(fullResult);
  const bytes = documentSize(`${RUN}/projects/example.com:${projectId(9_999)}`, result);
  assert.ok(bytes < 1_000, `${bytes} bytes`);
  assert.ok(indexEntries(result) < 40, `${indexEntries(result)} index entries`);
});

t("the run's plan at 10,000 projects: buckets of about 1,000, each one string", () => {
  const ids = Array.from({ length: TARGETS }, (_, i) => projectId(i));
  const buckets = planBuckets(ids);
  assert.is(buckets.length, 10);
  assert.is(buckets.flat().length, TARGETS, 'every project in exactly one bucket');
  assert.is(new Set(buckets.flat()).size, TARGETS);
  for (const [i, bucket] of buckets.entries()) {
    const doc = runPlan.parse({ projects: JSON.stringify(bucket) });
    const bytes = documentSize(`${RUN}/plan/${i}`, doc);
    assert.ok(bucket.length < 1_200, `bucket ${i}: ${bucket.length} projects`);
    assert.ok(bytes < MiB / 16, `bucket ${i}: ${bytes} bytes`);
    assert.is(indexEntries(doc), 2, 'one string: one index entry each way');
    for (const p of bucket) assert.is(planBucketOf(p, buckets.length), i, 'a shard finds its bucket');
  }
});

t('status/fleet, what binds the cap: one entry per project of the run, far below the limits at the cap', () => {
  // The status page's per-project table is written whole at each close: AUDIT_MAX_PROJECTS_PER_RUN bounds it
  // (3 zones a project: about 140 KB at 500, 2.8 MB at 10,000, which is why the cap stays).
  const fleetAt = (n: number) => {
    const ids = Array.from({ length: n }, (_, i) => projectId(i));
    const snapshots = ids.map((p, i) =>
      summarizeProject(
        p,
        'run-1',
        new Date(),
        [0, 1, 2].map((z) => ({ ...host(`${i}${z}`), project: p, zone: `us-central1-${'abc'[z]}` })),
      ),
    );
    const run = {
      runId: 'run-1',
      startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      status: 'succeeded',
      coverage: 1,
      counts: { reporting: 3 * n },
      projects: Object.fromEntries(ids.map((p) => [p, { status: 'succeeded', error: null }])),
    };
    return mergeFleetStatus(run, snapshots, [], new Date());
  };
  const atCap = fleetAt(cap);
  assert.ok(documentSize('status/fleet', atCap) < MiB / 4, `${documentSize('status/fleet', atCap)} bytes`);
  assert.ok(indexEntries(atCap) < 40_000 / 2, `${indexEntries(atCap)} index entries`);
  assert.ok(documentSize('status/fleet', fleetAt(TARGETS)) > MiB, 'at 10,000 projects it would not fit');
});

t("the budget document at a budget of 100,000 calls a minute, and a project's cached API states", () => {
  // At most one grant per transaction: a grant every 10 ms for a minute is 6,000 grants.
  const grants = Array.from({ length: 6_000 }, (_, i) => [1_765_000_000_000 + i * 10, 17]);
  const budget = apiBudgetDocument.parse({
    family: 'osconfigReads',
    grants: JSON.stringify(grants),
    perWindow: 100_000,
    windowMs: 60_000,
    updatedAt: Timestamp.now(),
  });
  assert.ok(documentSize('apiBudget/osconfigReads', budget) < MiB / 4);
  assert.ok(indexEntries(budget) < 100, 'the grants are one string: one index entry');
  const states = serviceStatesDocument.parse({
    states: { 'compute.googleapis.com': 'ENABLED', 'osconfig.googleapis.com': 'ENABLED' },
    checkedAt: Timestamp.now(),
  });
  assert.ok(documentSize(`serviceStates/${projectId(1)}`, states) < 1_000);
});

t.run();
