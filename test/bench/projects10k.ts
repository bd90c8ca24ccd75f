// `audit.projects10k`: the rolling audit of many small projects inside Google's quotas. The simulator (in this
// process, to read its quota counters) enforces Google's default per-minute quotas per user and per region;
// the global API budget runs at its defaults. Time is scaled: a quota "minute" is TIME_SCALE times shorter
// (both the simulator's window and the budget's), and a 15-minute tick as much. Ticks run one after the
// other: resolve the targets (a folder), plan the tick, create the run, audit its projects through the
// shard use case (SHARD_CONCURRENCY at once, as that many fleetAuditShard instances), until every project
// was audited once (the cycle). When the machine cannot hold 10,000 projects, the record measures fewer and
// projects 10,000 from the measured per-project costs (`projected`).
import type { Simulator } from '../../infra/local/simulator/server.js';

export const PROJECTS10K_RECORD = 'audit.projects10k';

/** A quota minute lasts 60 s / TIME_SCALE here (Google's default quotas, scaled in time, not in number). */
const TIME_SCALE = 60;
const TICK_MINUTES = 15;
const SHARD_CONCURRENCY = 4;
/** A shard that fails as transient (a contended transaction) is delivered again, as Pub/Sub would. */
const DELIVERIES = 5;

export interface Projects10kRecord {
  name: typeof PROJECTS10K_RECORD;
  /** Projects measured (10,000 unless the machine could not hold them: see `projected`). */
  projects: number;
  vms: number;
  zones: number;
  ticks: number;
  /** The cycle in real time at Google's quotas (ticks x 15 minutes), and as measured (scaled). */
  cycleMs: number;
  cycleMsScaled: number;
  /** Wall time of the whole measurement (scaled time): ticks, audits, bookkeeping. */
  wallMs: number;
  api429: number;
  /** The most calls inside one quota minute, per family and scope, as the simulator counted. */
  peakPerMinute: Record<string, number>;
  budgetPerMinute: Record<string, number>;
  quotaPerMinute: Record<string, number>;
  /** The largest run document, bytes of its JSON (Firestore's own size is of the same order). */
  runDocBytes: number;
  /** Shards that failed as transient and were delivered again. */
  redeliveredShards: number;
  /** Every project audited within the cycle bound the first tick announced. */
  everyProjectWithinCycle: boolean;
  cycleBoundTicks: number;
  timeScale: number;
  /** OS Config reads per project audit, and the audit's wall time per project (SHARD_CONCURRENCY at once). */
  readsPerProject: number;
  auditMsPerProject: number;
  /** 10,000 projects at Google's default quotas from the measured costs (when fewer were measured). */
  projected: {
    projects: number;
    ticks: number;
    cycleMinutes: number;
    boundMinutes: number;
    cycleMinutesAt1000: number;
    tickReadsMeasured: number;
    tickReadsBudget: number;
    /** Each tick's audits fit its 15 minutes on one shard instance (auditMsPerProject x projects a tick). */
    tickBusyMinutes: number;
  } | null;
}

export async function measureProjects10k(options: {
  projects: number;
  vmsPerProject: number;
  log: (line: string) => void;
}): Promise<Projects10kRecord> {
  const { projects: count, vmsPerProject, log } = options;
  const windowSeconds = 60 / TIME_SCALE;
  Object.assign(process.env, {
    API_BUDGET_OSCONFIG_READS: '48',
    API_BUDGET_OSCONFIG_WRITES: '48',
    API_BUDGET_SERVICE_USAGE: '192',
    API_BUDGET_RESOURCE_MANAGER: '480',
    API_BUDGET_WINDOW_SECONDS: String(windowSeconds),
    API_BUDGET_MAX_WAIT_SECONDS: '600',
    AUDIT_TICK_MINUTES: String(TICK_MINUTES),
    TARGET_PROJECTS: 'folders/10000',
  });
  const { resetConfig, config } = await import('../../shared/config.js');
  const { resetClients, clients } = await import('../../shared/clients.js');
  const { startSimulator } = await import('../../infra/local/simulator/server.js');
  const { GOOGLE_DEFAULT_QUOTAS } = await import('../../infra/local/simulator/quotas.js');
  const sim: Simulator = await startSimulator({ agentIntervalMs: 0 });
  process.env.GOOGLE_API_ENDPOINT = sim.url;
  resetConfig();
  resetClients();
  const { resolveTargets } = await import('../../shared/usecases/targets.js');
  const { planAuditTick } = await import('../../shared/usecases/rolling-audit.js');
  const { runAuditShard, runIdFor } = await import('../../shared/usecases/audit.js');
  const audits = await import('../../shared/adapters/audits.js');
  const { mapLimit } = await import('../../shared/rate.js');
  const { readsPerProject: planned } = await import('../../shared/domain/rolling-audit.js');
  const readsPerProject1 = planned(1);
  const { isTransient } = await import('../../shared/errors.js');
  try {
    const db = clients.firestore();
    for (const c of ['apiBudget', 'serviceStates', 'audits']) await db.recursiveDelete(db.collection(c));
    await db.recursiveDelete(db.collection('status'));
    sim.world.folders.set('folders/10000', {
      name: 'folders/10000',
      parent: 'organizations/1',
      displayName: 'bench',
      state: 'ACTIVE',
    });
    const names = Array.from({ length: count }, (_, i) => `p10k-${String(i).padStart(5, '0')}`);
    const zones = ['us-central1-a', 'us-east1-b', 'europe-west1-b', 'asia-east1-a'];
    for (const [i, project] of names.entries()) {
      const p = sim.world.setProjectMetadata(project, { 'enable-osconfig': 'TRUE' });
      p.parent = 'folders/10000';
      const zone = zones[i % zones.length]!;
      for (let v = 0; v < vmsPerProject; v++) sim.world.addVm({ project, zone, name: `vm-${v}`, os: 'debian-12' });
    }
    log(
      `${count} projects of ${vmsPerProject} VMs, one zone each; ` +
        `quotas: Google's defaults, 1 minute = ${windowSeconds} s`,
    );
    sim.quotas.configure({ defaults: true, windowMs: windowSeconds * 1000 });

    const started = Date.now();
    const lastTick = new Map<string, number>();
    let bound = 0;
    let runDocBytes = 0;
    let auditMs = 0;
    let audited = 0;
    let tick = 0;
    let redelivered = 0;
    const tickMs = (TICK_MINUTES * 60_000) / TIME_SCALE;
    while (lastTick.size < count || tick === 0) {
      tick += 1;
      const tickStart = Date.now();
      const now = new Date();
      const runId = runIdFor(`projects10k-${started}-${tick}`);
      const { projects: targets, skipped } = await resolveTargets(config().TARGET_PROJECTS);
      const plan = await planAuditTick(targets, now);
      if (tick === 1) bound = plan.rolling?.cycleTicks ?? 1;
      await audits.createRun(runId, plan.selected, now, skipped, plan.rolling);
      const t0 = Date.now();
      await mapLimit(plan.selected, SHARD_CONCURRENCY, async (project) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await runAuditShard({ runId, project }, now);
          } catch (error) {
            if (!isTransient(error) || attempt >= DELIVERIES) throw error;
            redelivered += 1;
          }
        }
      });
      auditMs += Date.now() - t0;
      audited += plan.selected.length;
      for (const p of plan.selected) lastTick.set(p, tick);
      const run = await db.collection('audits').doc(runId).get();
      runDocBytes = Math.max(runDocBytes, Buffer.byteLength(JSON.stringify(run.data())));
      log(
        `tick ${tick}: ${plan.selected.length} projects, ${lastTick.size}/${count} audited at least once, ` +
          `${Date.now() - tickStart} ms (a tick lasts ${tickMs} ms scaled)`,
      );
      if (tick > bound + 2) break; // past the bound: the record says so
      // The next tick comes when the schedule says, or at once if this one overran it.
      const rest = tickMs - (Date.now() - tickStart);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    }
    const wallMs = Date.now() - started;
    const report = sim.quotas.report();
    const reads = [...sim.world.requests.entries()]
      .filter(([n]) => n.startsWith('osconfig.') && !/\.(create|patch|delete)$/.test(n))
      .reduce((s, [, n]) => s + n, 0);
    const readsPerProject = reads / audited;
    const auditMsPerProject = (auditMs * SHARD_CONCURRENCY) / audited;
    // The planner's arithmetic (3 reads a zone, four fifths of the tick's budget), as at Google's quotas: the
    // best case (every tick to the longest unaudited) and the bound (half of each tick to them).
    const perTickReads = Math.floor(48 * TICK_MINUTES * 0.8);
    const projectedTicks = (n: number) => Math.ceil((n * readsPerProject1) / perTickReads);
    const boundTicks = (n: number) => Math.ceil((n * readsPerProject1) / (Math.floor(perTickReads / 2) - 2));
    const c = config();
    const record: Projects10kRecord = {
      name: PROJECTS10K_RECORD,
      projects: count,
      vms: count * vmsPerProject,
      zones: count,
      ticks: tick,
      cycleMs: tick * TICK_MINUTES * 60_000,
      cycleMsScaled: tick * tickMs,
      wallMs,
      api429: Object.values(report.rejected).reduce((s, n) => s + (n ?? 0), 0),
      peakPerMinute: report.peaks,
      budgetPerMinute: {
        osconfigReads: c.API_BUDGET_OSCONFIG_READS,
        osconfigWrites: c.API_BUDGET_OSCONFIG_WRITES,
        serviceUsage: c.API_BUDGET_SERVICE_USAGE,
        resourceManager: c.API_BUDGET_RESOURCE_MANAGER,
      },
      quotaPerMinute: Object.fromEntries(
        Object.entries(GOOGLE_DEFAULT_QUOTAS).flatMap(([f, l]) =>
          Object.entries(l ?? {}).map(([scope, v]) => [`${f}.${scope}`, v as number]),
        ),
      ),
      runDocBytes,
      redeliveredShards: redelivered,
      everyProjectWithinCycle: lastTick.size === count && tick <= bound,
      cycleBoundTicks: bound,
      timeScale: TIME_SCALE,
      readsPerProject: Math.round(readsPerProject * 100) / 100,
      auditMsPerProject: Math.round(auditMsPerProject),
      projected:
        count >= 10_000
          ? null
          : {
              projects: 10_000,
              ticks: projectedTicks(10_000),
              cycleMinutes: projectedTicks(10_000) * TICK_MINUTES,
              boundMinutes: boundTicks(10_000) * TICK_MINUTES,
              cycleMinutesAt1000: projectedTicks(1_000) * TICK_MINUTES,
              // The reads a tick's projects take, measured, against what the budget allows in a tick.
              tickReadsMeasured: Math.round((perTickReads / readsPerProject1) * readsPerProject),
              tickReadsBudget: 48 * TICK_MINUTES,
              tickBusyMinutes: Math.round(((auditMsPerProject * (perTickReads / readsPerProject)) / 60_000) * 10) / 10,
            },
    };
    return record;
  } finally {
    await sim.close();
  }
}
