// The heap one long-lived fleetAuditShard instance keeps per shard it serves: one process runs
// runAuditShard for one project after another (one run, as a tick's shards), collects fully after each
// and prints the heap still in use. The simulator runs in a process of its own, so only the shard's
// memory is measured here (the driver's own setup is collected before the first shard). The in-process
// counterpart of audit.fleet100k's shardHeapAfterRunMb, quick enough to bisect a creep with.
//   node --expose-gc --import tsx test/bench/shard-heap.ts [--projects 40] [--vms 500] [--snapshots DIR]
// --snapshots DIR writes a heap snapshot after the first shard, the middle one and the last.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { startEmulators } from '../../infra/local/emulators.js';
import { startSimulatorProcess, useBenchStack } from './simulator-process.js';

const { values } = parseArgs({
  options: { projects: { type: 'string' }, vms: { type: 'string' }, snapshots: { type: 'string' } },
});
const PROJECTS = Number(values.projects ?? 40);
const VMS = Number(values.vms ?? 500);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const emulators = await startEmulators();
const simulator = await startSimulatorProcess(emulators);
const control = simulator.control;
const projects = Array.from({ length: PROJECTS }, (_, i) => `heap-${String(i).padStart(3, '0')}`);
useBenchStack(emulators, simulator, projects);

try {
  const { publish } = await import('../../shared/usecases/publish.js');
  const { createRun } = await import('../../shared/adapters/audits.js');
  const { runAuditShard } = await import('../../shared/usecases/audit.js');
  const { config } = await import('../../shared/config.js');
  const { clients } = await import('../../shared/clients.js');
  // The topics the shard publishes to (alerts, fleet status) exist, as on Google Cloud.
  const pubsub = await clients.pubsub();
  for (const t of [config().ALERT_TOPIC]) await pubsub.createTopic(t).catch(() => 0);

  const oses = ['debian-12', 'ubuntu-2204', 'rhel-9', 'rocky-9'] as const;
  const zones = 4;
  const perZone = Math.floor(VMS / zones);
  for (const [p, project] of projects.entries()) {
    await control('POST', '/projects', { id: project, metadata: { 'enable-osconfig': 'TRUE' } });
    for (let z = 0; z < zones; z++) {
      const zone = `heap-zone-${z}`;
      const os = oses[(p + z) % 4];
      const noagent = Math.floor(perZone * 0.02);
      const failing = Math.floor(perZone * 0.01);
      const groups = [
        { namePrefix: `noagent-${z}`, count: noagent, agent: false },
        { namePrefix: `failing-${z}`, count: failing, policyFailure: 'install-osquery' },
        { namePrefix: `vm-${z}`, count: perZone - noagent - failing },
      ];
      for (const g of groups) if (g.count) await control('POST', '/vms:bulk', { project, zone, os, as: 'none', ...g });
    }
  }
  await publish({ projects });
  await control('POST', '/agents/run');
  // One run over every project and one more never audited, so the run stays open (no close, no rollout).
  const runId = `heap-${Date.now()}`;
  await createRun(runId, [...projects, 'heap-never'], new Date());

  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  gc();
  const start = process.memoryUsage().heapUsed;
  console.log(`${PROJECTS} projects of ${VMS} VMs; heap before the first shard ${mb(start)} MB`);
  const heaps: number[] = [];
  for (const [i, project] of projects.entries()) {
    const t0 = performance.now();
    const outcome = await runAuditShard({ runId, project });
    gc();
    const heap = process.memoryUsage().heapUsed;
    heaps.push(heap);
    console.log(
      `shard ${i + 1} ${project} ${outcome} ${Math.round(performance.now() - t0)} ms: ` +
        `heap ${mb(heap)} MB (+${mb(heap - start)})`,
    );
    if (values.snapshots && [0, Math.floor(PROJECTS / 2), PROJECTS - 1].includes(i))
      console.log(`  snapshot ${writeHeapSnapshot(path.join(values.snapshots, `shard-${i + 1}.heapsnapshot`))}`);
  }
  // The creep: the slope of the heap over the second half (the first shards also warm caches up).
  const half = heaps.slice(Math.floor(heaps.length / 2));
  const perShard = (half.at(-1)! - half[0]!) / Math.max(1, half.length - 1);
  console.log(
    `heap after ${PROJECTS} shards ${mb(heaps.at(-1)!)} MB; ` +
      `${(perShard / 2 ** 20).toFixed(2)} MB per shard (second half)`,
  );
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  simulator.kill();
  await emulators.stop();
  process.exit();
}
