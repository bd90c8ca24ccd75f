// A silence storm (shared/domain/storm.ts decides): a project's after its audit, the fleet's at a run's close;
// the fleet.silent episode opened or closed, and the held host.silent alerts released when it clears.
import { log } from '../log.js';
import { config } from '../config.js';
import type { StormDecision } from '../domain/storm.js';
import { decideFleetStorm, FLEET } from '../domain/fleet-storm.js';
import { closeEpisode, openEpisode } from '../adapters/alerts.js';
import { getRun } from '../adapters/audits.js';
import { openFleetStorm, releaseHeld, releaseRunHeld } from '../adapters/storms.js';
import { deliverAlerts } from './alerts.js';

/** Opens a storm's fleet.silent episode (`where` the hosts are: a project, or "N projects"); true when new. */
function openStormEpisode(
  open: { dedupKey: string; since: Date; share: number; silentHosts: number; hosts: number; cause: string },
  where: string,
  details: Record<string, unknown>,
): Promise<boolean> {
  const { dedupKey, since, share, silentHosts, hosts, cause } = open;
  const percent = Math.round(share * 1000) / 10;
  return openEpisode({
    dedupKey,
    kind: 'fleet.silent',
    severity: 'critical',
    host: null,
    reason: `${silentHosts} of ${hosts} hosts (${percent}%) in ${where} went silent at once; common cause ${cause}`,
    since,
    at: since,
    details,
  });
}

export async function settleStorm(project: string, storm: StormDecision, now: Date): Promise<void> {
  if (storm.open) {
    const { share, silentHosts, hosts, cause } = storm.open;
    if (await openStormEpisode(storm.open, project, { project, share, silentHosts, hosts, cause }))
      log.warn({ project, share, silentHosts, hosts, cause }, 'storm: fleet.silent opened');
    await deliverAlerts([storm.open.dedupKey]);
  }
  if (storm.close) {
    await closeEpisode(storm.close.dedupKey, now);
    // The hosts still silent alert one by one now; those that reported again owe nothing.
    const released = await releaseHeld(project);
    log.info({ project, released: released.length }, 'storm: fleet.silent cleared; held host alerts released');
    await deliverAlerts([storm.close.dedupKey, ...released]);
  }
}

/**
 * At a run's close (shared/usecases/run-close.ts): the fleet's storm decided on the run's silence. The
 * host.silent episodes its shards held are kept while the fleet is in a storm, and otherwise delivered now.
 * Safe to repeat: the episode's key comes from the run's start (created once), and a release finds only
 * what is still held. Returns the fleet.silent opened, if any, and how many host alerts were released.
 */
export async function settleFleetStorm(
  runId: string,
  now: Date,
): Promise<{ opened: string | null; closed: string | null; released: number }> {
  const run = await getRun(runId);
  if (!run?.silence) {
    // A run without a silence (closed before the storm was kept): what it held is released.
    const released = await releaseRunHeld(runId);
    await deliverAlerts(released);
    return { opened: null, closed: null, released: released.length };
  }
  const storm = decideFleetStorm(run.silence, await openFleetStorm(), config().SILENT_STORM_SHARE, run.startedAt);
  if (storm.open) {
    const { share, silentHosts, hosts, projects, cause } = storm.open;
    const details = { scope: FLEET, runId, share, silentHosts, hosts, projects, cause };
    if (await openStormEpisode(storm.open, `${projects} projects`, details))
      log.warn({ runId, share, silentHosts, hosts, projects, cause }, 'storm: fleet-wide fleet.silent opened');
    await deliverAlerts([storm.open.dedupKey]);
  }
  if (storm.close) await closeEpisode(storm.close.dedupKey, now);
  const released = storm.release === 'none' ? [] : await releaseRunHeld(storm.release === 'run' ? runId : null);
  if (storm.close)
    log.info({ runId, released: released.length }, 'storm: fleet-wide fleet.silent cleared; held host alerts released');
  await deliverAlerts([...(storm.close ? [storm.close.dedupKey] : []), ...released]);
  return { opened: storm.open?.dedupKey ?? null, closed: storm.close?.dedupKey ?? null, released: released.length };
}
