// Stage 4, write: the host changes, each conditioned on the document as read. Hosts another writer
// changed meanwhile (a heartbeat, vmLifecycle, another delivery) are decided again on what is there now.
import { log } from '../../log.js';
import { mapLimit } from '../../rate.js';
import { decideHost, hostsAfter, type HostPlan } from '../../domain/audit.js';
import type { Host, HostChange } from '../../domain/host.js';
import * as hosts from '../../adapters/hosts.js';
import { DocumentInvalid } from '../../documents/document.js';
import type { Audit } from './context.js';
import type { World } from './read.js';

export type Writing =
  | {
      applied: true;
      /** The changes written at the first attempt or lost to another writer (then decided again). */
      changes: HostChange[];
      /** Host documents written. */
      hostWrites: number;
      /** Hosts written by someone else between the read and the write, decided again. */
      raced: number;
      /** The alert episodes the writes opened or closed. */
      alertKeys: string[];
      /** Every host as the audit left it, by instance id. */
      hosts: Map<string, Host>;
      /** Hosts whose document, read again after a lost race, does not match its definition: left as they are. */
      invalid: Map<string, DocumentInvalid>;
    }
  | {
      /** A dry run: `changes` would have been written; `hosts` as they would be. */
      applied: false;
      changes: HostChange[];
      hosts: Map<string, Host>;
    };

export async function writeHosts(world: World, plans: HostPlan[], audit: Audit): Promise<Writing> {
  const changes = plans.flatMap((p) => (p.change ? [p.change] : []));
  const after = hostsAfter(plans);
  audit.mark('reconciledAt');
  if (audit.dryRun) return { applied: false, changes, hosts: after };

  audit.progress({ phase: 'write', done: 0, total: changes.length });
  const written = await hosts.writeHostChanges(changes, world.hosts);
  let hostWrites = written.changesWritten;
  let raced = 0;
  const alertKeys = [...written.alertKeys];
  // Decided again on what is there now, in a transaction each, so no newer fact (a heartbeat, an
  // enrollment, a deletion) is overwritten.
  const planOf = new Map(plans.map((p) => [p.instanceId, p]));
  const invalid = new Map<string, DocumentInvalid>();
  const decideAgain = (id: string) =>
    hosts
      .applyHostChange(id, (current) => decideHost(planOf.get(id)!.sighting, current, audit)?.change ?? null)
      .catch((error: unknown) => {
        // Left as it is, like a document the first read could not read (it is not counted either).
        if (!(error instanceof DocumentInvalid)) throw error;
        invalid.set(id, error);
        after.delete(id);
        return null;
      });
  await mapLimit(written.lost, 8, async (id) => {
    const result = await decideAgain(id);
    if (!result) return;
    raced += 1;
    if (result.changed) hostWrites += 1;
    if (result.host) after.set(id, result.host);
    alertKeys.push(...result.alertKeys);
  });
  if (raced > 0)
    log.info({ project: audit.project, raced }, 'audit: hosts written by others meanwhile were decided again');
  audit.progress({ phase: 'write', done: changes.length, total: changes.length });
  return { applied: true, changes, hostWrites, raced, alertKeys, hosts: after, invalid };
}
