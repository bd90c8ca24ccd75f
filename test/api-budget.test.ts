// The global API budget against the simulator's quotas: two audits (the scheduled one in this process, a
// manual `osq-orch audit` in another) and a publish at once stay inside every quota family's budget, counted
// by the simulator, with no 429; the budget paced them (more calls than one window holds were made).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { stackSuite } from './helpers/stack.js';
import { auditProject } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WINDOW_MS = 5_000;
// Budgets below the simulator's limits by Google-like headroom (the production defaults keep a fifth).
const BUDGET = { osconfigReads: 10, osconfigWrites: 4, serviceUsage: 3, resourceManager: 6 };
const LIMITS = {
  osconfigReads: { perUser: 12, perRegion: 12 },
  osconfigWrites: { perUser: 5, perRegion: 5 },
  serviceUsage: { perUser: 4 },
  resourceManager: { perUser: 8 },
};
const PROJECTS = ['qa', 'qb', 'qc'];

const t = stackSuite(
  'global API budget',
  {
    TARGET_PROJECTS: PROJECTS.join(','),
    CONFIG_BUCKET: 'osquery-config-budget',
    LOG_TOPIC: 'osquery-logs',
    API_BUDGET_OSCONFIG_READS: String(BUDGET.osconfigReads),
    API_BUDGET_OSCONFIG_WRITES: String(BUDGET.osconfigWrites),
    API_BUDGET_SERVICE_USAGE: String(BUDGET.serviceUsage),
    API_BUDGET_RESOURCE_MANAGER: String(BUDGET.resourceManager),
    API_BUDGET_WINDOW_SECONDS: String(WINDOW_MS / 1000),
    API_BUDGET_MAX_WAIT_SECONDS: '120',
    // The per-instance pacing out of the way: only the global budget paces here.
    OSCONFIG_READS_PER_MINUTE: '6000',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
  },
  async (stack) => {
    const w = stack.sim.world;
    for (const project of PROJECTS) {
      w.setProjectMetadata(project, { 'enable-osconfig': 'TRUE' });
      for (const zone of ['us-central1-a', 'us-central1-b', 'europe-west1-b'])
        w.addVm({ project, zone, name: `vm-${zone}`, os: 'debian-12' });
    }
  },
);

/**
 * `osq-orch audit` in a process of its own: the only thing it shares with this one is Firestore. `started`
 * resolves once its audit is under way (its first progress line), so this process's own work, which keeps the
 * simulator here busy, never delays the CLI's start-up check of the endpoint.
 */
function manualAudit(simUrl: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/osq-orch.ts'), 'audit'], {
    cwd: ROOT,
    env: { ...process.env, GOOGLE_API_ENDPOINT: simUrl, LOG_LEVEL: 'silent' },
  });
  let out = '';
  let begin: () => void;
  const started = new Promise<void>((resolve) => (begin = resolve));
  const collect = (c: Buffer) => {
    out += c;
    if (/inventory|reports/.test(out)) begin();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const done = new Promise<{ status: number | null; out: string }>((resolve) =>
    child.on('close', (status) => (begin(), resolve({ status, out }))),
  );
  return { started, done };
}

t('two audits and a publish at once never exceed the budget (the simulator counts)', async ({ stack }) => {
  await stack.control('PUT', '/quotas', { limits: LIMITS, windowMs: WINDOW_MS });
  const cli = manualAudit(stack.sim.url);
  await cli.started;
  const [manual, scheduled, published] = await Promise.all([
    cli.done,
    Promise.all(PROJECTS.map((p) => auditProject(p, { cause: 'budget test' }))),
    publish(),
  ]);
  assert.is(manual.status, 0, manual.out);
  assert.is(scheduled.length, PROJECTS.length);
  assert.equal(published.failedProjects, {});
  const quotas = await stack.control<{ rejected: Record<string, number>; peaks: Record<string, number> }>(
    'GET',
    '/quotas',
  );
  assert.equal(quotas.rejected, {}, 'no call was refused');
  for (const [family, limits] of Object.entries(LIMITS))
    for (const [scope, limit] of Object.entries(limits)) {
      const peak = quotas.peaks[`${family}.${scope}`] ?? 0;
      assert.ok(peak <= limit, `${family} ${scope}: ${peak} in one window, limit ${limit}`);
    }
  const requests = Object.fromEntries(stack.sim.world.requests);
  const reads = Object.entries(requests)
    .filter(([name]) => name.startsWith('osconfig.') && !/\.(create|patch|delete)$/.test(name))
    .reduce((s, [, n]) => s + n, 0);
  assert.ok(reads > 2 * LIMITS.osconfigReads.perUser, `${reads} OS Config reads: the budget had to pace them`);
  assert.ok(quotas.peaks['osconfigReads.perUser']! >= BUDGET.osconfigReads - 2, 'the budget was used, not wasted');
});

t.run();
