// An audit run's close without one hot document: N shards record at once (each its own result document),
// the run closes exactly once with the right totals, a redelivered shard in the middle counts nothing
// twice; two closers at once write the totals once; a run whose closer failed is closed by the next tick.
import * as assert from 'uvu/assert';
import { captureLogs, stackSuite } from './helpers/stack.js';
import { RUN_TOTALS_MESSAGE, runAuditShard, startAuditRun } from '../shared/usecases/audit.js';
import { closeAuditRun } from '../shared/usecases/run-close.js';
import { closeRunIfComplete, createRun, getRun, recordProjectResult, runResults } from '../shared/adapters/audits.js';
import { getFleetStatus } from '../shared/adapters/status.js';
import { runTotals, type ProjectResult } from '../shared/domain/audit.js';
import { RUN_CLOSED_MESSAGE } from '../shared/domain/status.js';

const N = 30;
const projects = Array.from({ length: N }, (_, i) => `close-${String(i).padStart(2, '0')}`);
// One domain-scoped project among them: its result document's id holds a dot and a colon.
projects[7] = 'example.com:close-07';
const ZONE = 'us-central1-a';
const t = stackSuite(
  'run close',
  { TARGET_PROJECTS: projects.join(','), OSCONFIG_WRITES_PER_MINUTE: '6000', OSCONFIG_READS_PER_MINUTE: '6000' },
  async (stack) => {
    for (const [i, project] of projects.entries()) {
      await stack.control('POST', '/projects', { id: project, metadata: { 'enable-osconfig': 'TRUE' } });
      // Project i has i % 3 VMs: the totals are sums a lost or doubled project would change.
      for (let v = 0; v < i % 3; v++) stack.sim.world.addVm({ project, zone: ZONE, name: `vm-${v}`, os: 'debian-12' });
    }
  },
);
const VMS = projects.reduce((a, _, i) => a + (i % 3), 0);

t(
  `${N} shards at once, one delivered twice in the middle: the run closes once, every project counted once`,
  async () => {
    const runId = 'close-all-at-once';
    await createRun(runId, projects, new Date());
    const deliveries = [...projects.slice(0, 15), projects[7]!, ...projects.slice(15)];
    const { result: outcomes, logs } = await captureLogs(() =>
      Promise.all(deliveries.map((project) => runAuditShard({ runId, project }))),
    );
    assert.is(outcomes.filter((o) => o === 'done').length, N, outcomes.join(' '));
    assert.is(outcomes.filter((o) => o === 'duplicate').length, 1, 'the redelivered shard counts nothing');
    assert.is(logs.filter((l) => l.message === RUN_TOTALS_MESSAGE).length, 1, 'the totals are written once');
    assert.is(logs.filter((l) => l.message === RUN_CLOSED_MESSAGE).length, 1, 'the close runs once');

    const results = await runResults(runId);
    assert.equal(Object.keys(results).sort(), [...projects].sort());
    const run = (await getRun(runId))!;
    assert.is(run.status, 'succeeded');
    assert.ok(run.finishedAt);
    const hosts = Object.values(run.counts).reduce((a, n) => a + (n ?? 0), 0);
    assert.is(hosts, VMS, JSON.stringify(run.counts));
    assert.is(
      run.apiCalls,
      Object.values(results).reduce((a, r) => a + (r.apiCalls ?? 0), 0),
    );
    assert.is(
      run.hostWrites,
      Object.values(results).reduce((a, r) => a + (r.hostWrites ?? 0), 0),
    );
    assert.is(run.hostWrites, VMS, 'each VM discovered once');
    const fleet = await getFleetStatus();
    assert.is(fleet?.run.runId, runId);
    assert.is(fleet?.history.filter((p) => p.runId === runId).length, 1);
    assert.is(Object.keys(fleet!.run.projects).length, N);

    // Delivered again after the close: nothing changes.
    assert.is(await runAuditShard({ runId, project: projects[3]! }), 'duplicate');
    assert.equal((await getRun(runId))!.finishedAt, run.finishedAt);
  },
);

const result = (i: number, status: ProjectResult['status'] = 'succeeded'): ProjectResult =>
  status === 'failed'
    ? { status, instances: 0, error: 'denied', counts: {}, apiCalls: 0, hostWrites: 0 }
    : { status, instances: i, counts: { pending: i }, apiCalls: 2 * i, hostWrites: i };

t('two closers at once (and three more): one writes the totals, the close is done once', async () => {
  const runId = 'close-concurrent';
  await createRun(runId, projects, new Date());
  await Promise.all(projects.map((p, i) => recordProjectResult(runId, p, result(i, i === 4 ? 'failed' : undefined))));
  assert.is(await recordProjectResult(runId, projects[4]!, result(4)), false, 'a result is written once');
  const closers = await Promise.all([1, 2, 3, 4, 5].map(() => closeRunIfComplete(runId, runTotals)));
  assert.equal(closers.filter((c) => c === 'closed').length, 1, closers.join(' '));
  assert.ok(
    closers.every((c) => c === 'closed' || c === 'already'),
    closers.join(' '),
  );
  const run = (await getRun(runId))!;
  const sum = projects.reduce((a, _, i) => a + (i === 4 ? 0 : i), 0);
  assert.equal(
    [run.status, run.counts, run.apiCalls, run.hostWrites],
    ['partial', { pending: sum }, 2 * sum, sum],
    'the totals of shared/domain/audit.ts runTotals, every project once',
  );
  const { result: closes, logs } = await captureLogs(() => Promise.all([closeAuditRun(runId), closeAuditRun(runId)]));
  assert.equal(closes.filter((c) => c.status.published).length, 1);
  assert.is(logs.filter((l) => l.message === RUN_CLOSED_MESSAGE).length, 1);
});

t(
  'a run whose closer failed after the last result: a redelivered shard, or else the next tick, closes it',
  async () => {
    // Every result in, no close (the shard that wrote the last one crashed before counting).
    await createRun('close-crashed', projects, new Date());
    await Promise.all(projects.map((p, i) => recordProjectResult('close-crashed', p, result(i))));
    assert.is((await getRun('close-crashed'))?.status, 'running');
    // Its redelivery finds its result there (a duplicate) and still closes the run.
    const { logs } = await captureLogs(() => runAuditShard({ runId: 'close-crashed', project: projects[0]! }));
    assert.is((await getRun('close-crashed'))?.status, 'succeeded');
    assert.is(logs.filter((l) => l.message === RUN_TOTALS_MESSAGE).length, 1);

    // Never redelivered (acknowledged, or the message lost): the next tick closes it before its own run.
    await createRun('close-abandoned', projects, new Date());
    await Promise.all(projects.map((p, i) => recordProjectResult('close-abandoned', p, result(i))));
    const { logs: tick } = await captureLogs(() => startAuditRun('close-next-tick', new Date(), projects.slice(0, 1)));
    const run = (await getRun('close-abandoned'))!;
    assert.equal([run.status, run.hostWrites], ['succeeded', projects.reduce((a, _, i) => a + i, 0)]);
    assert.ok(
      tick.some((l) => l.message.startsWith(RUN_TOTALS_MESSAGE) && l.runId === 'close-abandoned'),
      JSON.stringify(tick.map((l) => l.message)),
    );
    assert.ok(
      (await getFleetStatus())?.history.some((p) => p.runId === 'close-abandoned'),
      'its close was done',
    );
  },
);

t.run();
