// TARGET_PROJECTS naming folders and organisations: resolved to their active projects through Resource
// Manager at the start of each run, projects without the Compute Engine or OS Config API skipped with the
// reason (Service Usage), against the simulator's Resource Manager and Service Usage and the emulators.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clearFirestore, startStack, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { startAuditRun } from '../shared/usecases/audit.js';
import { resolveTargets } from '../shared/usecases/targets.js';
import { publish } from '../shared/usecases/publish.js';
import { closeRunIfComplete, createRun, getRun, recordProjectResult, runResults } from '../shared/adapters/audits.js';
import { runTotals } from '../shared/domain/audit.js';
import { listProjectVms } from '../shared/adapters/compute.js';
import { clients } from '../shared/clients.js';
import { config, ConfigError, parseConfig, resetConfig } from '../shared/config.js';
import { isTarget, skipReason } from '../shared/domain/targets.js';
import { usageSince, usageSnapshot } from '../shared/metrics.js';
import { isPermissionDenied, statusOf } from '../shared/errors.js';

const ORG = 'organizations/1';
const Z = 'us-central1-a';
const t = suite<{ stack: Stack }>('targets: folders, organisations, skipped projects');

t.before(async (ctx) => {
  ctx.stack = await startStack({
    TARGET_PROJECTS: 'folders/100',
    CONFIG_BUCKET: 'cfg-targets',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
  });
});
t.after(async (ctx) => ctx.stack.close());

/**
 * organizations/1
 *   folders/100 prod: p-web, p-ml (Compute Engine API off), p-gone (being deleted)
 *     folders/110: p-data
 *       folders/111: p-deep
 *   folders/200 other: p-other
 *   p-root
 */
t.before.each(async ({ stack }) => {
  await clearFirestore();
  await stack.control('POST', '/reset');
  for (const [id, parent] of [
    ['100', ORG],
    ['110', 'folders/100'],
    ['111', 'folders/110'],
    ['200', ORG],
  ])
    await stack.control('POST', '/folders', { id, parent });
  for (const [id, parent, state] of [
    ['p-web', 'folders/100'],
    ['p-ml', 'folders/100'],
    ['p-gone', 'folders/100', 'DELETE_REQUESTED'],
    ['p-data', 'folders/110'],
    ['p-deep', 'folders/111'],
    ['p-other', 'folders/200'],
    ['p-root', ORG],
  ] as const)
    await stack.control('POST', '/projects', { id, parent, state, metadata: { 'enable-osconfig': 'TRUE' } });
  // No audit-log events: what is enrolled here, the audit (or publish) found.
  await stack.control('POST', '/faults', { eventSinkUp: false, disabledApis: { 'p-ml': ['compute.googleapis.com'] } });
});

/** Polls until the run is no longer running. */
async function waitForRun(runId: string) {
  for (let i = 0; i < 150; i++) {
    const run = await getRun(runId);
    if (run && run.status !== 'running') return run;
    await new Promise((r) => setTimeout(r, 200));
  }
  return getRun(runId);
}

t('what a target may be, and why a project is skipped (pure)', () => {
  for (const ok of ['acme-prod', 'example.com:acme', 'folders/123', 'organizations/456']) assert.ok(isTarget(ok), ok);
  for (const bad of ['folders/', 'folders/0123', 'folders/abc', 'projects/acme', 'organizations/1/x', 'Acme', ''])
    assert.not.ok(isTarget(bad), bad);
  assert.is(skipReason({ 'compute.googleapis.com': 'ENABLED', 'osconfig.googleapis.com': 'ENABLED' }), null);
  assert.is(
    skipReason({ 'compute.googleapis.com': 'DISABLED', 'osconfig.googleapis.com': 'ENABLED' }),
    'compute.googleapis.com is not enabled',
  );
  assert.is(
    skipReason({ 'compute.googleapis.com': 'DISABLED', 'osconfig.googleapis.com': 'DISABLED' }),
    'compute.googleapis.com and osconfig.googleapis.com are not enabled',
  );
  assert.is(skipReason({}), null, 'a service not reported is not assumed off');
  assert.throws(() => parseConfig({ TARGET_PROJECTS: 'acme,folders/x' }), /TARGET_PROJECTS/);
  assert.equal(parseConfig({ TARGET_PROJECTS: 'acme, folders/1 ,organizations/2' }).TARGET_PROJECTS, [
    'acme',
    'folders/1',
    'organizations/2',
  ]);
});

t(
  'a folder resolves to its active projects, subfolders included; one without an API is skipped with the reason',
  async () => {
    const before = usageSnapshot();
    const resolved = await resolveTargets(['folders/100']);
    assert.equal(resolved, {
      projects: ['p-data', 'p-deep', 'p-web'],
      skipped: { 'p-ml': 'compute.googleapis.com is not enabled' },
    });
    // One listing of projects and one of folders per folder, one Service Usage call per project.
    assert.equal(usageSince(before).apiCalls, {
      'resourcemanager.projects.list': 3,
      'resourcemanager.folders.list': 3,
      'serviceusage.services.batchGet': 4,
    });
  },
);

t(
  'API enablement is read once a day: a second run asks Service Usage nothing, an expired entry is read again',
  async ({ stack }) => {
    await resolveTargets(['folders/100']);
    const before = usageSnapshot();
    // Turned off since: the cache does not know yet (a day at most), and the shard would tell.
    await stack.control('POST', '/faults', { disabledApis: { 'p-web': ['osconfig.googleapis.com'] } });
    const again = await resolveTargets(['folders/100']);
    assert.equal(again.skipped, { 'p-ml': 'compute.googleapis.com is not enabled' });
    assert.is(usageSince(before).apiCalls['serviceusage.services.batchGet'], undefined, 'no Service Usage call');
    process.env.SERVICE_USAGE_CACHE_HOURS = '0';
    resetConfig();
    try {
      const fresh = await resolveTargets(['folders/100']);
      assert.is(fresh.skipped['p-web'], 'osconfig.googleapis.com is not enabled');
      assert.is(usageSince(before).apiCalls['serviceusage.services.batchGet'], 4);
    } finally {
      delete process.env.SERVICE_USAGE_CACHE_HOURS;
      resetConfig();
    }
  },
);

t('an organisation and listed projects: listed ones first, every project once', async ({ stack }) => {
  await stack.control('POST', '/faults', { disabledApis: { 'p-other': ['osconfig.googleapis.com'] } });
  const resolved = await resolveTargets(['p-root', 'p-web', ORG]);
  assert.equal(resolved, {
    projects: ['p-root', 'p-web', 'p-data', 'p-deep', 'p-ml'],
    skipped: { 'p-other': 'osconfig.googleapis.com is not enabled' },
  });
});

t('a folder that cannot be listed: a configuration error naming it (the run fails loudly)', async ({ stack }) => {
  try {
    await resolveTargets(['p-web', 'folders/999']);
    assert.unreachable('resolved an unknown folder');
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.match((error as Error).message, /folders\/999/);
    assert.match((error as Error).message, /permission/);
  }
  // Through fleetAudit: 500, so Pub/Sub redelivers the tick; no run is created.
  process.env.TARGET_PROJECTS = 'folders/999';
  resetConfig();
  try {
    const res = await fetch(
      `${stack.functions.urls.fleetAudit}projects/${process.env.GOOGLE_CLOUD_PROJECT}` +
        `/topics/${config().AUDIT_TICK_TOPIC}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          message: { data: Buffer.from('{}').toString('base64'), messageId: 'tick-unlistable' },
          subscription: 'projects/x/subscriptions/test',
        }),
      },
    );
    await res.arrayBuffer();
    assert.is(res.status, 500);
    assert.is((await clients.firestore().collection('audits').get()).size, 0);
  } finally {
    process.env.TARGET_PROJECTS = 'folders/100';
    resetConfig();
  }
});

t('a folder of 1,205 projects: every page read', async ({ stack }) => {
  await stack.control('POST', '/folders', { id: '300', parent: ORG });
  for (let i = 0; i < 1205; i++)
    await stack.control('POST', '/projects', { id: `bulk-${String(i).padStart(4, '0')}`, parent: 'folders/300' });
  const before = usageSnapshot();
  const { projects, skipped } = await resolveTargets(['folders/300']);
  assert.is(projects.length, 1205);
  assert.equal(skipped, {});
  assert.is(usageSince(before).apiCalls['resourcemanager.projects.list'], 2, 'two pages of at most 1000');
});

t('the API-disabled fault answers as Google does: 403 SERVICE_DISABLED', async ({ stack }) => {
  const res = await fetch(`${stack.sim.url}/compute/v1/projects/p-ml/aggregated/instances`);
  const body = (await res.json()) as {
    error: { status: string; message: string; details: Array<Record<string, unknown>> };
  };
  assert.is(res.status, 403);
  assert.is(body.error.status, 'PERMISSION_DENIED');
  assert.match(body.error.message, /Compute Engine API has not been used in project \d+ before or it is disabled/);
  assert.equal(
    body.error.details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.ErrorInfo')?.reason,
    'SERVICE_DISABLED',
  );
  const refused = await listProjectVms('p-ml').then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(isPermissionDenied(refused), `the Compute client sees PERMISSION_DENIED (${statusOf(refused)})`);
  assert.match(String((refused as Error).message), /has not been used in project/);
  assert.ok((await listProjectVms('p-web')).length === 0, 'other projects answer');
});

t(
  'an audit run over a folder: skipped projects recorded with the reason, never audited, the run succeeded',
  async ({ stack }) => {
    const web = await createVm(stack, { project: 'p-web', zone: Z, name: 'web', os: 'debian-12' });
    const deep = await createVm(stack, { project: 'p-deep', zone: Z, name: 'deep', os: 'ubuntu-2204' });
    await createVm(stack, { project: 'p-other', zone: Z, name: 'outside', os: 'debian-12' });
    const { runId, projects } = await startAuditRun('folder-tick', new Date(), ['folders/100']);
    assert.is(projects, 3, 'three shards: the skipped project gets none');
    const run = await waitForRun(runId!);
    const results = await runResults(runId!);
    assert.is(run?.status, 'succeeded', JSON.stringify(results));
    assert.equal(
      Object.fromEntries(Object.entries(results).map(([p, r]) => [p, r.status])),
      { 'p-web': 'succeeded', 'p-data': 'succeeded', 'p-deep': 'succeeded' },
      'the skipped project has no result: it was never audited',
    );
    assert.equal(run!.skipped, { 'p-ml': 'compute.googleapis.com is not enabled' });
    assert.is(run!.counts.pending, 2);
    const hosts = (await clients.firestore().collection('hosts').get()).docs.map((d) => d.id).sort();
    assert.equal(hosts, [web.id, deep.id].sort(), 'p-other is outside the folder');
    // The status page shows the reason where a failed project shows its error.
    const status = (await clients.firestore().collection('status').doc('fleet').get()).data();
    assert.equal(status?.projects['p-ml'], {
      runStatus: 'skipped',
      error: 'compute.googleapis.com is not enabled',
      snapshotRunId: null,
      snapshotAt: null,
      counts: {},
      zones: {},
    });
  },
);

t('a skipped project never makes a run partial or failed; a run with nothing to audit closes at once', async () => {
  const ok = { status: 'succeeded' as const, instances: 1, counts: { pending: 1 }, apiCalls: 1, hostWrites: 1 };
  const failed = { status: 'failed' as const, instances: 0, error: 'denied', counts: {}, apiCalls: 0, hostWrites: 0 };
  const cases: Array<[string, Array<[string, typeof ok | typeof failed]>, string]> = [
    ['one-ok', [['a', ok]], 'succeeded'],
    [
      'ok-failed',
      [
        ['a', ok],
        ['b', failed],
      ],
      'partial',
    ],
    [
      'all-failed',
      [
        ['a', failed],
        ['b', failed],
      ],
      'failed',
    ],
  ];
  for (const [runId, results, status] of cases) {
    await createRun(
      runId,
      results.map(([p]) => p),
      new Date(),
      { s: 'compute.googleapis.com is not enabled' },
    );
    for (const [p, r] of results) {
      await recordProjectResult(runId, p, r);
      await closeRunIfComplete(runId, runTotals);
    }
    const run = await getRun(runId);
    assert.is(run?.status, status, runId);
    assert.equal(run?.skipped, { s: 'compute.googleapis.com is not enabled' });
  }
  await createRun('nothing-left', [], new Date(), { s: 'osconfig.googleapis.com is not enabled' });
  const empty = await getRun('nothing-left');
  assert.is(empty?.status, 'succeeded');
  assert.ok(empty?.finishedAt, 'closed at creation: no shard will ever close it');
});

t(
  'publish over a folder: every discovered project with VMs gets its zone assignment, the skipped one nothing',
  async ({ stack }) => {
    await createVm(stack, { project: 'p-web', zone: Z, name: 'web', os: 'debian-12' });
    await createVm(stack, { project: 'p-data', zone: 'europe-west1-b', name: 'data', os: 'rhel-9' });
    const report = await publish();
    assert.equal(report.failedProjects, {}, 'the project without Compute is skipped, not failed');
    assert.equal(report.zones.created.sort(), ['p-data/europe-west1-b', `p-web/${Z}`]);
    const assignments = [...stack.sim.world.assignments.values()].map((a) => `${a.project}/${a.zone}`).sort();
    assert.ok(
      assignments.every((a) => !a.startsWith('p-ml/')),
      assignments.join(' '),
    );
  },
);

t.run();
