// The log path of every simulated VM: the simulated osqueryd's lines (heartbeat, osquery_schedule
// snapshot, other queries' results), shipped by "fluentd" to the Pub/Sub emulator's log topic one
// message per line, with the host identity and routing attributes (docs/heartbeat.md: Host identity).
import { PubSub, type Topic } from '@google-cloud/pubsub';
import { messageBytes } from '../../../shared/domain/log-volume.js';
import { configVersionOfPolicy } from '../../../shared/domain/policy.js';
import { installedRelease } from './releases.js';
import {
  restartWorker,
  decorationsFromFiles,
  resolveCosts,
  runRound,
  scheduleFromFiles,
  startWorker,
  storedResultsOf,
  type ShippedLine,
  type SimWorker,
} from './osqueryd.js';
import { newShipperCount, shipLines } from './shipper.js';
import type { IdentityTokens } from './identity-tokens.js';
import { HEARTBEAT_QUERY } from '../../../shared/osquery/log-routing.js';
import { offerLoad, readRows, readerOf } from './syslog.js';
import type { SimVm, World } from './world.js';

/**
 * A VM ships logs once its OS policy placed the configuration,
 * started osqueryd, wrote its identity and started the shipper.
 */
export function shipsLogs(vm: SimVm): boolean {
  return (
    vm.status === 'RUNNING' &&
    !vm.faults.agentMissing &&
    !vm.faults.logsStopped &&
    !vm.faults.shipperDown &&
    Boolean(vm.installed.osquery) &&
    Boolean(vm.applied['osqueryd-running']) &&
    Boolean(vm.applied['host-identity']) &&
    Boolean(vm.applied['shipper-running'])
  );
}

/** The configuration version osqueryd runs: the OS policy id (`osquery-{version}`) its restart was applied for. */
export const runningVersion = (vm: SimVm) => configVersionOfPolicy(vm.applied['osqueryd-running'] ?? '');

/** The VM's worker, (re)started when there is none or OS Config restarted osqueryd for another version. */
export function workerOf(vm: SimVm, now: Date): SimWorker {
  const version = runningVersion(vm);
  const current = vm.osqueryd.worker;
  const release = installedRelease(vm.installed) ?? undefined;
  if (current && current.configVersion === version && current.osqueryVersion === (release ?? current.osqueryVersion))
    return current;
  // A restart that did not take: the worker keeps the configuration (and binary) it loaded.
  if (current && vm.faults.osquerydNotRestarted) return current;
  // osquery's database (a query's stored results) outlives the worker: a new version's run of a query
  // it had before logs only what changed.
  vm.osqueryd.worker = startWorker(scheduleFromFiles(vm.osqueryFiles), version, now, {
    storedResults: storedResultsOf(current),
    osqueryVersion: release,
    decorations: decorationsFromFiles(vm.osqueryFiles),
  });
  return vm.osqueryd.worker;
}

/** One round of a VM's osqueryd (see osqueryd.ts), with this world's cost profiles. */
export function osquerydRound(world: World, vm: SimVm, now: Date): ShippedLine[] {
  const worker = workerOf(vm, now);
  worker.unwatched = vm.faults.osquerydUnwatched === true;
  // The VM's steady syslog load up to now, and what osqueryd ingested since its last round (its CPU).
  offerLoad(vm.syslog, readerOf(vm), now);
  const ingested = vm.syslog.unbilled;
  vm.syslog.unbilled = 0;
  const base = resolveCosts(world.costProfiles, worker.configVersion, vm.osqueryd);
  // A release with a CPU regression costs that much more on every VM that runs it.
  const factor = world.releases.get(worker.osqueryVersion)?.cpuFactor ?? 1;
  const costs = factor === 1 ? base : { ...base, cpuPercent: base.cpuPercent * factor };
  return runRound(vm, worker, costs, now, Math.random, { ingested, read: () => readRows(vm.syslog, vm.name) });
}

export class LogShipper {
  private topic: Topic | undefined;
  /** Messages (lines) published so far. */
  shipped = 0;
  /** Message bytes published so far, per VM and query (what the log-volume figures are checked against). */
  readonly shippedBytes = new Map<string, Map<string, number>>();
  /** Each VM's shipper count (shipper.ts): it restarts with the VM. */
  private readonly counts = new Map<string, ReturnType<typeof newShipperCount>>();

  constructor(
    private readonly world: World,
    private readonly target: { projectId: string; topic: string },
    /** The metadata server's tokens and the audience the OS policy asks for them (none: unsigned heartbeats). */
    private readonly identity?: { tokens: IdentityTokens; audience: string },
  ) {}

  /**
   * The VM's identity token, as its refresher (the OS policy's `identity-token` exec) keeps it: null before
   * that resource was applied, or with the `unsignedHeartbeats` fault (a shipper on an older configuration).
   */
  private tokenOf(vm: SimVm, now: Date): string | null {
    if (!this.identity || !vm.applied['identity-token'] || vm.faults.unsignedHeartbeats) return null;
    return this.identity.tokens.tokenFor(vm, this.identity.audience, now);
  }

  private topicHandle(): Topic {
    this.topic ??= new PubSub({ projectId: this.target.projectId }).topic(this.target.topic, {
      batching: { maxMessages: 500, maxMilliseconds: 50 },
    });
    return this.topic;
  }

  /** One round: every shipping VM's osqueryd runs one heartbeat interval and its lines are published. */
  async shipRound(now = new Date()): Promise<number> {
    const sends: Array<Promise<string>> = [];
    for (const vm of this.world.vms.values()) {
      if (vm.status !== 'RUNNING') {
        vm.osqueryd.worker = null; // a stopped VM has no osqueryd, and no shipper
        this.counts.delete(vm.id);
      }
      if (!shipsLogs(vm)) continue;
      // A bad version whose logs stop (the shipper dies with it): the host goes silent.
      if (this.world.badVersions.get(runningVersion(vm) ?? '')?.logsStopped) continue;
      if (vm.faults.osquerydCrashLoop) {
        // The watchdog killed the worker again: a new pid this round; after 4 quick respawns the watcher
        // exits ("Too many worker restarts") and nothing more is logged (osquery-facts: the watchdog).
        vm.quickRespawns = (vm.quickRespawns ?? 0) + 1;
        if (vm.quickRespawns > 4) continue;
        restartWorker(vm.osqueryd, now);
      }
      const identity = { gce_instance_id: vm.id, gce_project_id: vm.project, gce_zone: vm.zone };
      let count = this.counts.get(vm.id);
      if (!count) this.counts.set(vm.id, (count = newShipperCount(now)));
      const perQuery = this.shippedBytes.get(vm.id) ?? new Map<string, number>();
      this.shippedBytes.set(vm.id, perQuery);
      const victim = vm.faults.spoofAs ? this.world.vms.get(vm.faults.spoofAs) : undefined;
      for (const message of shipLines(count, osquerydRound(this.world, vm, now), identity, this.tokenOf(vm, now))) {
        const name = message.attributes.osquery_name ?? '';
        perQuery.set(name, (perQuery.get(name) ?? 0) + messageBytes(message.data, message.attributes));
        sends.push(this.topicHandle().publishMessage(message));
        // The attack: the same heartbeat (its own token) again, naming another VM (any VM can publish any line).
        if (victim && name === HEARTBEAT_QUERY) {
          const forged = { gce_instance_id: victim.id, gce_project_id: victim.project, gce_zone: victim.zone };
          sends.push(
            this.topicHandle().publishMessage({ ...message, attributes: { ...message.attributes, ...forged } }),
          );
        }
      }
    }
    await Promise.all(sends);
    this.shipped += sends.length;
    return sends.length;
  }

  async close(): Promise<void> {
    await this.topic?.flush().catch(() => undefined);
  }
}
