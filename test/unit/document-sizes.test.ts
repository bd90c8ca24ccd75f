// Bookkeeping at 10,000 target projects: every document the audit writes stays far below Firestore's limits
// (1 MiB and 40,000 index entries per document), sizes computed as Firestore documents them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Timestamp } from '@google-cloud/firestore';
import { auditRun } from '../../shared/documents/audits.js';
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

t("the run document with the cap's projects, each with a full result, and 100 skipped listed", () => {
  const entry = {
    status: 'succeeded',
    instances: 1_000,
    counts: { reporting: 900, silent: 20, noncompliant: 20, blocked: 20, pending: 20, exempt: 10, stopped: 10 },
    apiCalls: 12_345,
    hostWrites: 1_000,
    fixFailures: 3,
    invalidHosts: 1,
    error: 'x'.repeat(200),
  };
  const run = auditRun.parse({
    startedAt: Timestamp.now(),
    finishedAt: Timestamp.now(),
    status: 'partial',
    projects: Object.fromEntries([
      ...Array.from({ length: cap }, (_, i) => [projectId(i), entry]),
      ...Array.from({ length: 100 }, (_, i) => [projectId(cap + i), { status: 'skipped', instances: 0, reason: 'x' }]),
    ]),
    counts: entry.counts,
    coverage: 0.9,
    apiCalls: 1e7,
    hostWrites: 1e6,
    shardsPublished: true,
    skippedMore: 9_000,
    rolling: {
      targets: 10_000,
      selected: cap,
      readsPerTick: 576,
      cycleTicks: 105,
      cycleMinutes: 1575,
      neverAudited: 0,
      oldestAuditAgeMinutes: 1500,
    },
  });
  const bytes = documentSize('projects/p/databases/(default)/documents/audits/run-0123456789abcdef0123', run);
  const entries = indexEntries(run);
  assert.ok(bytes < MiB / 4, `${bytes} bytes`);
  assert.ok(entries < 40_000 / 2, `${entries} index entries`);
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
