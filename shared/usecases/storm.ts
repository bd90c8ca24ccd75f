// A project's silence storm after its audit (shared/domain/storm.ts decides): the fleet.silent episode
// opened or closed, and the held host.silent alerts released when it clears.
import { log } from '../log.js';
import type { StormDecision } from '../domain/storm.js';
import { closeEpisode, openEpisode } from '../adapters/alerts.js';
import { releaseHeld } from '../adapters/storms.js';
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
