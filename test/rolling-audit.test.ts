// The rolling audit on the stack: when the targets need more OS Config reads than a tick's budget, each
// tick's run audits part of them (never audited first, then the longest unaudited), records the cycle, and
// every project is audited within the cycle.
import * as assert from 'uvu/assert';
import { stackSuite } from './helpers/stack.js';
import { startAuditRun } from '../shared/usecases/audit.js';
import { getRun, runResults } from '../shared/adapters/audits.js';

const PROJECTS = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
const t = stackSuite(
  'rolling audit',
  {
    TARGET_PROJECTS: PROJECTS.join(','),
    CONFIG_BUCKET: 'cfg-rolling',
    // 10 reads a window of one second; a tick of one minute plans 8 reads: two projects of 3 reads.
    API_BUDGET_OSCONFIG_READS: '10',
    API_BUDGET_WINDOW_SECONDS: '1',
    AUDIT_TICK_MINUTES: '1',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
  },
  async (stack) => {
    for (const project of PROJECTS) {
      stack.sim.world.setProjectMetadata(project, { 'enable-osconfig': 'TRUE' });
      stack.sim.world.addVm({ project, zone: 'us-central1-a', name: 'vm', os: 'debian-12' });
    }
  },
);

async function closedRun(runId: string) {
  for (let i = 0; i < 300; i++) {
    const run = await getRun(runId);
    if (run && run.status !== 'running') return run;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`run ${runId} did not close`);
}

t('each tick audits part of the targets: never audited and pending first; every project within the bound', async () => {
  const seen: string[][] = [];
  let bound = Infinity;
  for (let tick = 1; new Set(seen.flat()).size < PROJECTS.length; tick++) {
    assert.ok(tick <= bound, `tick ${tick}: every project was to be audited within ${bound} ticks`);
    const started = await startAuditRun(`rolling-tick-${tick}`, new Date());
    const run = await closedRun(started.runId!);
    const audited = Object.keys(await runResults(started.runId!)).sort();
    seen.push(audited);
    assert.is(run.status, 'succeeded');
    assert.is(run.rolling?.targets, PROJECTS.length);
    assert.is(run.rolling?.selected, audited.length);
    assert.is(audited.length, 2, `tick ${tick}: ${audited.join(' ')}`);
    if (tick === 1) bound = run.rolling!.cycleTicks;
  }
  assert.equal(seen[0], ['r1', 'r2'], 'never audited first');
  // Tick 2: the age half takes the next never-audited project, the priority half one whose hosts are
  // pending (no agent has reported yet), before any project never audited.
  assert.ok(seen[1]!.includes('r3'), seen[1]!.join(' '));
  assert.ok(
    seen[1]!.some((p) => p === 'r1' || p === 'r2'),
    seen[1]!.join(' '),
  );
  const last = await getRun((await startAuditRun('rolling-tick-last', new Date())).runId!);
  assert.is(last?.rolling?.neverAudited, 0);
});

t.run();
