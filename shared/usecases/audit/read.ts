// Stage 1, read the world: the project's VMs and host documents, the current version and its rollout
// record, the project's metadata when needed, and per zone what OS Config reports.
import { config } from '../../config.js';
import { mapLimit, perMinuteLimiter } from '../../rate.js';
import type { Observations } from '../../domain/audit.js';
import { observedKey, reduceReport } from '../../domain/reconcile.js';
import { decideScope, instanceDecidesOsConfig } from '../../domain/scope.js';
import type { Vm } from '../../domain/vm.js';
import * as compute from '../../adapters/compute.js';
import * as osconfig from '../../adapters/osconfig.js';
import * as hosts from '../../adapters/hosts.js';
import * as rollouts from '../../adapters/rollouts.js';
import { listPipeline } from '../../adapters/pipeline.js';
import { heartbeatBacklog, heartbeatBehind, type BacklogHold } from '../../domain/pipeline.js';
import type { ZoneRollout } from '../../domain/assignment.js';
import { zoneVersionsOf, type ZoneVersions } from '../assignments.js';
import type { DocumentInvalid } from '../../documents/document.js';
import type { Audit } from './context.js';

export interface World {
  vms: Vm[];
  /** The VMs decideScope keeps: their zones need the assignment. */
  inScope: Vm[];
  /** Host documents as read, with the update time each conditional write checks against. */
  hosts: Map<string, hosts.ReadHost>;
  /** Host documents that do not match their definition, by instance id: left as they are (not decided). */
  invalidHosts: Map<string, DocumentInvalid>;
  /** The project's metadata; read only when some in-scope VM leaves enable-osconfig to it. */
  projectMetadata: Record<string, string>;
  observations: Observations;
  /** The current configuration version and its rollout record (null: nothing published). */
  currentVersion: string | null;
  rollout: rollouts.RolloutRecord | null;
  /**
   * The version each zone (`project/zone`) gets now: the rollout
   * under way's target in the stages it reached, else current.
   */
  versionOfZone: (key: string) => string | null;
  /** The records of the versions zones get (current, and the target of a rollout under way). */
  records: ReadonlyMap<string, rollouts.RolloutRecord>;
  /** The configuration as read: what heal brings zones to, and what it checks for a newer decision after. */
  zoneVersions: ZoneVersions;
  /** Per zone, the rollout recorded on the record of the version it gets (what heal trusts). */
  zoneRollouts: Record<string, ZoneRollout>;
  /** The heartbeat path is behind (a pipeline.backlog episode open on its subscription): silence waits. */
  pipelineBehind: boolean;
  /** How far its backlog reaches, when Cloud Monitoring measured the age (null: keeps up, or every line held). */
  backlog: BacklogHold | null;
}

export async function readWorld(audit: Audit): Promise<World> {
  const { project, progress } = audit;
  const timed = <T>(step: string, p: Promise<T>) => p.then((v) => (audit.mark(step), v));
  progress({ phase: 'inventory', done: 0, total: 1 });
  const vmsListed = timed('vmsListedAt', compute.listProjectVms(project));
  const hostsRead = timed('hostsReadAt', hosts.listProjectHosts(project));
  // Joined now, so a refusal (403) while the rollout record is read is handled, never left unhandled.
  const inventory = Promise.all([vmsListed, hostsRead]);
  inventory.catch(() => undefined); // awaited below
  const pipeline = listPipeline();
  pipeline.catch(() => undefined); // awaited below
  const configuration = await rollouts.readConfiguration();
  const rollout = configuration.currentRecord;
  const currentVersion = configuration.current.configVersion;
  const zoneVersions = zoneVersionsOf(configuration);
  const { versionOf: versionOfZone, records } = zoneVersions;
  // A record lists a zone while the zone's assignment is at its version: trusted only for the version the zone gets.
  const zoneRollouts: Record<string, ZoneRollout> = {};
  for (const record of records.values())
    for (const [key, z] of Object.entries(record.zones ?? {}))
      if (versionOfZone(key) === record.configVersion) zoneRollouts[key] = z;

  // Zones the current version was rolled out to are known before Compute answers: their reports are
  // listed while the VMs and host documents are still being read.
  const observations: Observations = { reports: new Map(), osqueryVersions: new Map(), zonesWithReports: new Set() };
  const reads = perMinuteLimiter(config().OSCONFIG_READS_PER_MINUTE);
  let zonesDone = 0;
  const knownZones = Object.values(zoneRollouts)
    .filter((z) => z.project === project)
    .map((z) => z.zone)
    .sort();
  const early = timed(
    'knownZonesObservedAt',
    observeZones(project, knownZones, observations, reads, () =>
      progress({ phase: 'reports', done: ++zonesDone, total: knownZones.length }),
    ),
  );
  early.catch(() => undefined); // awaited below; avoid an unhandled rejection while Compute is read
  const [vms, known] = await inventory;
  const inScope = vms.filter((vm) => decideScope(vm, audit.settings).inScope);
  const projectMetadata = inScope.some((vm) => !instanceDecidesOsConfig(vm))
    ? await compute.getProjectMetadata(project)
    : {};
  progress({ phase: 'inventory', done: 1, total: 1 });

  const zones = [...new Set(inScope.filter((vm) => vm.status === 'RUNNING').map((vm) => vm.zone))].sort();
  const extraZones = zones.filter((z) => !knownZones.includes(z));
  await Promise.all([
    early,
    observeZones(project, extraZones, observations, reads, () =>
      progress({ phase: 'reports', done: ++zonesDone, total: knownZones.length + extraZones.length }),
    ),
  ]);
  audit.mark('observedAt');
  const pipelines = await pipeline;
  return {
    pipelineBehind: heartbeatBehind(pipelines),
    backlog: heartbeatBacklog(pipelines),
    vms,
    inScope,
    hosts: known.hosts,
    invalidHosts: known.invalid,
    projectMetadata,
    observations,
    currentVersion,
    rollout,
    versionOfZone,
    records,
    zoneVersions,
    zoneRollouts,
  };
}

/** Reports and inventories of zones: two wildcard listings per zone, paced to the OS Config read quota. */
async function observeZones(
  project: string,
  zones: string[],
  into: Observations,
  reads: ReturnType<typeof perMinuteLimiter>,
  onZone: () => void,
): Promise<void> {
  const assignmentId = config().ASSIGNMENT_ID;
  await mapLimit(zones, 5, async (zone) => {
    await reads.take();
    const zoneReports = await osconfig.listZoneReports(project, zone);
    await reads.take();
    const inventories = await osconfig.listZoneInventories(project, zone);
    for (const r of zoneReports) {
      if (!String(r.name).includes(`/osPolicyAssignments/${assignmentId}/`)) continue;
      const instance = osconfig.instanceOfReport(r.name);
      const reduced = reduceReport(r as Parameters<typeof reduceReport>[0]);
      if (instance && reduced) {
        into.reports.set(observedKey(zone, instance), reduced);
        into.zonesWithReports.add(zone);
      }
    }
    for (const inv of inventories) {
      const instance = osconfig.instanceOfInventory(inv.name);
      if (instance) into.osqueryVersions.set(observedKey(zone, instance), osconfig.osqueryVersionOf(inv));
    }
    onZone();
  });
}
