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

export async function settleStorm(project: string, storm: StormDecision, now: Date): Promise<void> {
  if (storm.open) {
    const { dedupKey, since, share, silentHosts, hosts, cause } = storm.open;
    const percent = Math.round(share * 1000) / 10;
    const opened = await openEpisode({
      dedupKey,
      kind: 'fleet.silent',
      severity: 'critical',
      host: null,
      reason: `${silentHosts} of ${hosts} hosts (${percent}%) in ${project} went silent at once; common cause ${cause}`,
      since,
      at: since,
      details: { project, share, silentHosts, hosts, cause },
    });
    if (opened) log.warn({ project, share, silentHosts, hosts, cause }, 'storm: fleet.silent opened');
    await deliverAlerts([dedupKey]);
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
    const { dedupKey, since, share, silentHosts, hosts, projects, cause } = storm.open;
    const percent = Math.round(share * 1000) / 10;
    const opened = await openEpisode({
      dedupKey,
      kind: 'fleet.silent',
      severity: 'critical',
      host: null,
      reason:
        `${silentHosts} of ${hosts} hosts (${percent}%) in ${projects} projects went silent at once; ` +
        `common cause ${cause}`,
      since,
      at: since,
      details: { scope: FLEET, runId, share, silentHosts, hosts, projects, cause },
    });
    if (opened)
      log.warn({ runId, share, silentHosts, hosts, projects, cause }, 'storm: fleet-wide fleet.silent opened');
    await deliverAlerts([dedupKey]);
  }
  if (storm.close) await closeEpisode(storm.close.dedupKey, now);
  const released = storm.release === 'none' ? [] : await releaseRunHeld(storm.release === 'run' ? runId : null);
  if (storm.close)
    log.info({ runId, released: released.length }, 'storm: fleet-wide fleet.silent cleared; held host alerts released');
  await deliverAlerts([...(storm.close ? [storm.close.dedupKey] : []), ...released]);
  return { opened: storm.open?.dedupKey ?? null, closed: storm.close?.dedupKey ?? null, released: released.length };
}
