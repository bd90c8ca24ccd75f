// Stage 5, record and summarise: the alerts owed sent, the hosts per state on the current version in its
// rollout record, the status page's snapshot of the project (an audit run's shard), and the result.
import { log } from '../../log.js';
import { reportInvalid } from '../../documents/document.js';
import { totalApiCalls, usageSince } from '../../metrics.js';
import { tallyHosts, type HostNeedingAction, type VmFix } from '../../domain/audit.js';
import type { Host, HostChange, HostState } from '../../domain/host.js';
import type { SilenceTally } from '../../domain/fleet-storm.js';
import * as rollouts from '../../adapters/rollouts.js';
import { deliverOwedAlerts } from '../alerts.js';
import { recordProjectStatus } from '../status.js';
import type { Audit } from './context.js';
import type { FixFailure, Healing } from './heal.js';
import type { World } from './read.js';
import type { Writing } from './write.js';

export interface ProjectAudit {
  project: string;
  instances: number;
  counts: Partial<Record<HostState, number>>;
  changes: HostChange[];
  hostWrites: number;
  apiCalls: number;
  zonesHealed: string[];
  /** Milliseconds from the start at which each step finished. */
  timings: Record<string, number>;
  /** VMs whose label or metadata fix failed; their hosts are left for the next audit. */
  fixFailures: FixFailure[];
  /** Hosts written by someone else between this audit's read and its write, decided again. */
  raced: number;
  /** Host documents that do not match their definition: left as they are, not counted (each logged). */
  invalidHosts: number;
  /** Hosts someone should look at: blocked, noncompliant, silent. */
  needingAction: HostNeedingAction[];
  /** Every host of the project as this audit left it (the status page's snapshot is built from them). */
  hosts: Host[];
  /** A dry run's account of what heal would have done (nothing was written or fixed); null otherwise. */
  dryRun: { zonesToCheck: string[]; fixes: VmFix[] } | null;
  /** The project's silence in this audit, for the fleet's storm at the run's close (auditProject adds it). */
  silence?: SilenceTally;
}

/** Host documents that do not match, logged one by one per project audit; beyond, their number. */
const INVALID_LOGGED = 20;

export async function recordAudit(
  world: World,
  healing: Healing,
  writing: Writing,
  audit: Audit,
): Promise<ProjectAudit> {
  const { project } = audit;
  const tally = tallyHosts(writing.hosts.values(), world.currentVersion);
  const invalid = [...world.invalidHosts.values(), ...(writing.applied ? writing.invalid.values() : [])];
  for (const i of invalid.slice(0, INVALID_LOGGED)) reportInvalid(i, 'the audit leaves it as it is');
  if (invalid.length > INVALID_LOGGED)
    log.warn(
      { project, invalidHosts: invalid.length },
      `audit: ${invalid.length - INVALID_LOGGED} more host documents do not match`,
    );
  if (writing.applied) {
    // What this audit owes, and whatever earlier audits or heartbeats failed to send.
    await deliverOwedAlerts(writing.alertKeys);
    if (world.currentVersion)
      await rollouts
        .recordHostCounts(world.currentVersion, project, tally.onVersion, world.rollout?.hostCounts?.[project])
        .catch((error: unknown) => {
          // Refused loudly; the project's hosts are recorded all the same.
          if (!(error instanceof rollouts.MissingRolloutRecord)) throw error;
          log.error({ project, configVersion: error.configVersion }, error.message);
        });
    // The status page's snapshot, before the run's result (written next) can close the run.
    if (audit.runId) await recordProjectStatus(audit.runId, project, writing.hosts.values(), audit.now);
  }
  audit.mark('doneAt');
  const result: ProjectAudit = {
    project,
    instances: world.vms.length,
    counts: tally.counts,
    changes: writing.changes,
    hostWrites: writing.applied ? writing.hostWrites : 0,
    apiCalls: totalApiCalls(usageSince(audit.usageBefore)),
    zonesHealed: healing.applied ? healing.zonesHealed : [],
    timings: audit.timings,
    fixFailures: healing.applied ? healing.fixFailures : [],
    raced: writing.applied ? writing.raced : 0,
    invalidHosts: invalid.length,
    needingAction: tally.needingAction,
    hosts: [...writing.hosts.values()],
    dryRun: healing.applied ? null : { zonesToCheck: healing.zonesToCheck, fixes: healing.fixes },
  };
  audit.progress({ phase: 'done', done: 1, total: 1 });
  const { instances, counts, hostWrites, raced, invalidHosts, apiCalls, zonesHealed, timings } = result;
  const fixFailures = result.fixFailures.length;
  log.info(
    { project, instances, counts, hostWrites, raced, fixFailures, invalidHosts, apiCalls, zonesHealed, timings },
    'audit: project reconciled',
  );
  return result;
}
