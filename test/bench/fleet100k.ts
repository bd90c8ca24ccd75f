// `audit.fleet100k`: the fleet audit of 100,000 VMs in 100 projects through the real fan-out, as on Google
// Cloud. A tick published to the Pub/Sub emulator is pushed to fleetAudit, which resolves the target
// folder to its projects (Resource Manager) and publishes one shard message per project; the shard
// subscription pushes each to fleetAuditShard. Every function runs the built code (dist/) in instances of
// its own (test/bench/function-instance.mjs: a Node process each, one request at a time), behind a front
// that queues pushes while every instance is busy, as Cloud Run does. Measured twice: the first audit
// (no host documents yet) and the next one with nothing changed, each with fresh instances, so each run's
// peak memory is its own.
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Usage } from '../../shared/metrics.js';

export const FLEET100K_RECORD = 'audit.fleet100k';

export interface Fleet100kRecord {
  name: `${typeof FLEET100K_RECORD}.${'first' | 'unchanged'}`;
  hosts: number;
  projects: number;
  /** From the tick's publication to the run closed and the fleet status published. */
  wallMs: number;
  /** Compute, OS Config, Resource Manager and Storage calls the functions made (their own counters). */
  apiCalls: number;
  /** The same, as the simulator counted the requests it answered. */
  apiCallsSeenBySimulator: number;
  firestoreWrites: number;
  /** Host documents written (the run's hostWrites). */
  hostWrites: number;
  /**
   * Peak resident memory of a fleetAuditShard instance (one shard at a time) over the run, the largest of
   * the pool: each instance serves about half the shards, and with no memory limit V8 collects lazily.
   */
  peakShardRssMb: number;
  /** Peak resident memory of a fresh instance through its first shard (its cold start included), the largest. */
  firstShardPeakRssMb: number;
  /** The largest heap a shard instance still held after the run (after a full collection): what shards leave behind. */
  shardHeapAfterRunMb: number;
  shardInstances: number;
  /** Shard pushes the instances served (100 without redeliveries) and the messages delivered twice or more. */
  shardPushes: number;
  redeliveredShards: number;
  /** Milliseconds after the tick's publication: fleetAudit answered, the first shard arrived, the last answered. */
  tickAnsweredMs: number;
  firstShardArrivedMs: number;
  lastShardAnsweredMs: number;
  /** One shard's time in fleetAuditShard (its queueing at the front included), median and max. */
  shardMsMedian: number;
  shardMsMax: number;
  runStatus: string;
  counts: Record<string, number>;
  coverage: number | null;
}

interface Instance {
  child: ChildProcess;
  url: string;
  busy: boolean;
}

interface InstanceReport {
  usage: Usage;
  served: number;
  refused: number;
  rssMb: number;
  peakRssMb: number;
  firstRequestPeakRssMb: number | null;
  heapUsedAfterGcMb: number | null;
}

/** Starts one instance of `fn` (a fresh process: its cold start is part of the run, as on Google Cloud). */
async function startInstance(mainModule: string, fn: string, env: NodeJS.ProcessEnv): Promise<Instance> {
  const child = fork(path.join(import.meta.dirname, 'function-instance.mjs'), [mainModule, fn], {
    env,
    // BENCH_CPU_PROF=<dir>: a CPU profile of each instance, written as it exits.
    execArgv: [
      '--expose-gc',
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []),
    ],
    stdio: ['ignore', process.env.BENCH_INSTANCE_LOGS ? 'inherit' : 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`${fn} instance exited (${code}) before listening`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, busy: false };
}

const report = (instance: Instance) =>
  new Promise<InstanceReport>((resolve) => {
    instance.child.once('message', (m: InstanceReport) => resolve(m));
    instance.child.send('usage');
  });

/**
 * The service in front of a function's instances: each push goes to a free instance, or waits in line
 * for one (Cloud Run queues a request while its instances are busy). Counts the pushes and the message
 * ids seen more than once (Pub/Sub's redeliveries).
 */
async function startFront(instances: Instance[]) {
  const waiting: Array<(i: Instance) => void> = [];
  const seen = new Map<string, number>();
  const stats = { pushes: 0, failed: 0, maxWaiting: 0 };
  /** Per push: when it arrived and when the function answered it (performance.now()). */
  const timeline: Array<{ arrived: number; answered: number }> = [];
  const acquire = () =>
    new Promise<Instance>((resolve) => {
      const free = instances.find((i) => !i.busy);
      if (free) {
        free.busy = true;
        resolve(free);
      } else {
        waiting.push(resolve);
        stats.maxWaiting = Math.max(stats.maxWaiting, waiting.length);
      }
    });
  const release = (instance: Instance) => {
    const next = waiting.shift();
    if (next) next(instance);
    else instance.busy = false;
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        try {
          const id = (JSON.parse(body.toString('utf8')) as { message?: { messageId?: string } }).message?.messageId;
          if (id) seen.set(id, (seen.get(id) ?? 0) + 1);
        } catch {
          // not a push body: the function answers it
        }
        stats.pushes += 1;
        const arrived = performance.now();
        const instance = await acquire();
        try {
          const upstream = await fetch(`${instance.url}${req.url ?? '/'}`, {
            method: 'POST',
            headers: { 'content-type': String(req.headers['content-type'] ?? 'application/json') },
            body,
          });
          const text = await upstream.text();
          if (!upstream.ok) stats.failed += 1;
          res.writeHead(upstream.status).end(text);
        } catch {
          stats.failed += 1;
          res.writeHead(503).end();
        } finally {
          timeline.push({ arrived, answered: performance.now() });
          release(instance);
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    stats,
    timeline,
    redelivered: () => [...seen.values()].filter((n) => n > 1).length,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

function sumUsage(reports: InstanceReport[]) {
  let apiCalls = 0;
  let firestoreWrites = 0;
  for (const r of reports) {
    apiCalls += Object.values(r.usage.apiCalls).reduce((a, b) => a + b, 0);
    firestoreWrites += r.usage.firestoreWrites;
  }
  return { apiCalls, firestoreWrites };
}

export async function measureFleet100k(options: {
  control: (method: string, path: string, body?: unknown) => Promise<unknown>;
  simRequests: () => Promise<number>;
  mainModule: string;
  projects?: number;
  vmsPerProject?: number;
  zonesPerProject?: number;
  /** fleetAuditShard instances; the emulator pushes at most 2 messages at a time per subscription. */
  shardInstances?: number;
  log?: (line: string) => void;
  /** Also the run with nothing changed (default true). */
  unchanged?: boolean;
}): Promise<Fleet100kRecord[]> {
  const { control, mainModule } = options;
  const projectCount = options.projects ?? 100;
  const perProject = options.vmsPerProject ?? 1000;
  const zoneCount = options.zonesPerProject ?? 4;
  const poolSize = options.shardInstances ?? 2;
  const say = options.log ?? (() => undefined);
  const { clients } = await import('../../shared/clients.js');
  const { config } = await import('../../shared/config.js');
  const { publish } = await import('../../shared/usecases/publish.js');
  const { runIdFor } = await import('../../shared/usecases/audit.js');
  const { getRun } = await import('../../shared/adapters/audits.js');
  const { getFleetStatus } = await import('../../shared/adapters/status.js');
  const { wirePushSubscriptions } = await import('../../infra/local/functions.js');

  // One folder holding the projects: fleetAudit discovers them at the start of each run.
  const folder = '9100';
  await control('POST', '/folders', { id: folder, parent: 'organizations/9000' });
  const projects = Array.from({ length: projectCount }, (_, i) => `fleet-${String(i).padStart(3, '0')}`);
  const oses = ['debian-12', 'ubuntu-2204', 'rhel-9', 'rocky-9'] as const;
  const perZone = Math.floor(perProject / zoneCount);
  for (const [p, project] of projects.entries()) {
    await control('POST', '/projects', {
      id: project,
      parent: `folders/${folder}`,
      metadata: { 'enable-osconfig': 'TRUE' },
    });
    for (let z = 0; z < zoneCount; z++) {
      // As audit.first's fleet: per zone 2% without an agent, 1% failing the policy, the rest healthy.
      const zone = `bench-zone-${z}`;
      const os = oses[(p + z) % 4];
      const groups: Array<{ namePrefix: string; count: number; agent?: boolean; policyFailure?: string }> = [
        { namePrefix: `noagent-${z}`, count: Math.floor(perZone * 0.02), agent: false },
        { namePrefix: `failing-${z}`, count: Math.floor(perZone * 0.01), policyFailure: 'install-osquery' },
      ];
      groups.push({ namePrefix: `vm-${z}`, count: perZone - groups[0]!.count - groups[1]!.count });
      for (const g of groups) if (g.count) await control('POST', '/vms:bulk', { project, zone, os, as: 'none', ...g });
    }
  }
  const hosts = projectCount * perZone * zoneCount;
  say(`${hosts} VMs in ${projectCount} projects`);
  await publish({ projects });
  await control('POST', '/agents/run');
  say('published, agents reported');

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TARGET_PROJECTS: `folders/${folder}`,
    LOG_LEVEL: process.env.BENCH_INSTANCE_LOGS ?? 'warn',
  };
  delete env.NODE_OPTIONS;
  const c = config();
  const pubsub = await clients.pubsub();

  const records: Fleet100kRecord[] = [];
  for (const which of options.unchanged === false ? (['first'] as const) : (['first', 'unchanged'] as const)) {
    // Fresh instances per run (as after the idle time between two ticks): each run's peak is its own.
    const tickInstances = [await startInstance(mainModule, 'fleetAudit', env)];
    const shardPool = await Promise.all(
      Array.from({ length: poolSize }, () => startInstance(mainModule, 'fleetAuditShard', env)),
    );
    const tickFront = await startFront(tickInstances);
    const shardFront = await startFront(shardPool);
    try {
      await wirePushSubscriptions([
        { topic: c.AUDIT_TICK_TOPIC, functionUrl: tickFront.url },
        { topic: c.AUDIT_SHARD_TOPIC, functionUrl: shardFront.url },
      ]);
      const simBefore = await options.simRequests();
      const t0 = performance.now();
      const messageId = await pubsub.topic(c.AUDIT_TICK_TOPIC).publishMessage({ json: { source: `bench-${which}` } });
      const runId = runIdFor(messageId);
      let run: Awaited<ReturnType<typeof getRun>> = null;
      for (let last = 0; ;) {
        run = await getRun(runId);
        if (run && run.status !== 'running' && (await getFleetStatus())?.run.runId === runId) break;
        const results = clients.firestore().collection('audits').doc(runId).collection('projects');
        const done = (await results.count().get()).data().count;
        if (done >= last + 10) say(`  ${which}: ${(last = done)} of ${projectCount} projects audited`);
        if (performance.now() - t0 > 30 * 60_000) throw new Error(`${FLEET100K_RECORD}.${which}: no result in 30 min`);
        await new Promise((r) => setTimeout(r, 250));
      }
      const wallMs = Math.round(performance.now() - t0);
      const pushes = shardFront.timeline;
      const ms = (x: number) => Math.round(x);
      const shardMs = pushes.map((p) => p.answered - p.arrived).sort((a, b) => a - b);
      const simCalls = (await options.simRequests()) - simBefore;
      const shardReports = await Promise.all(shardPool.map(report));
      const spent = sumUsage([...(await Promise.all(tickInstances.map(report))), ...shardReports]);
      records.push({
        name: `${FLEET100K_RECORD}.${which}`,
        hosts,
        projects: projectCount,
        wallMs,
        apiCalls: spent.apiCalls,
        apiCallsSeenBySimulator: simCalls,
        firestoreWrites: spent.firestoreWrites,
        hostWrites: run!.hostWrites,
        peakShardRssMb: Math.max(...shardReports.map((r) => r.peakRssMb)),
        firstShardPeakRssMb: Math.max(...shardReports.map((r) => r.firstRequestPeakRssMb ?? 0)),
        shardHeapAfterRunMb: Math.max(...shardReports.map((r) => r.heapUsedAfterGcMb ?? 0)),
        shardInstances: poolSize,
        shardPushes: shardFront.stats.pushes,
        redeliveredShards: shardFront.redelivered(),
        tickAnsweredMs: ms((tickFront.timeline[0]?.answered ?? t0) - t0),
        firstShardArrivedMs: ms(Math.min(...pushes.map((p) => p.arrived)) - t0),
        lastShardAnsweredMs: ms(Math.max(...pushes.map((p) => p.answered)) - t0),
        shardMsMedian: ms(shardMs[Math.floor(shardMs.length / 2)] ?? 0),
        shardMsMax: ms(shardMs.at(-1) ?? 0),
        runStatus: run!.status,
        counts: run!.counts,
        coverage: run!.coverage,
      });
    } finally {
      await tickFront.close();
      await shardFront.close();
      // Disconnected, an instance exits by itself (and writes its CPU profile when asked to).
      for (const i of [...tickInstances, ...shardPool]) i.child.disconnect();
    }
  }
  return records;
}
