// The simulated OS Config agent on every VM, and the service-side reports OS Config keeps for each
// VM an assignment targets. One pass = every agent checks in once.
import { createHash } from 'node:crypto';
import { configVersionOfPolicy, pinnedVersionOf } from '../../../shared/domain/policy.js';
import { osqueryPackageVersion } from '../../../shared/osquery/version.js';
import { installPinned, installedRelease } from './releases.js';
import { SIM_OS, OSQUERY_VERSION, type SimAssignment, type SimVm, type World } from './world.js';
import { osquerydStarted, startRsyslog, syslogSettingsOf } from './syslog.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- assignment JSON as stored

const labelsMatch = (vm: SimVm, set: Json) =>
  Object.entries((set.labels ?? {}) as Record<string, string>).every(([k, v]) => vm.labels[k] === v);

function inventoryMatches(vm: SimVm, filter: Json): boolean {
  const os = SIM_OS[vm.os];
  if (filter.osShortName && filter.osShortName !== os.shortName) return false;
  const version = filter.osVersion as string | undefined;
  if (!version) return true;
  return version.endsWith('*') ? os.version.startsWith(version.slice(0, -1)) : os.version === version;
}

/** instanceFilter: exclusion label sets (any), inclusion label sets (any, if given), inventories (any, if given). */
export function filterSelects(filter: Json | undefined, vm: SimVm): boolean {
  if (!filter || filter.all) return true;
  if ((filter.exclusionLabels ?? []).some((set: Json) => labelsMatch(vm, set))) return false;
  const inclusion = filter.inclusionLabels ?? [];
  if (inclusion.length > 0 && !inclusion.some((set: Json) => labelsMatch(vm, set))) return false;
  const inventories = filter.inventories ?? [];
  return inventories.length === 0 || inventories.some((f: Json) => inventoryMatches(vm, f));
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Applies one resource as the real agent would; returns an error message when it cannot. */
function apply(world: World, vm: SimVm, resource: Json, policyId: string): string | null {
  if (vm.faults.policyFailure === resource.id) return `simulated failure of resource ${resource.id}`;
  if (resource.id === 'shipper-running' && vm.faults.shipperDown) {
    delete vm.applied[resource.id];
    return 'the log shipper is not running and did not start (simulated shipperDown)';
  }
  // A bad version: its osqueryd does not come up on any VM (the policy's osqueryd-running resource fails).
  const version = configVersionOfPolicy(policyId);
  if (resource.id === 'osqueryd-running' && version && world.badVersions.get(version)?.policyFailing)
    return `osqueryd did not start with configuration ${version} (simulated bad version)`;
  // The policy pins the osquery package (shared/domain/policy.ts pinnedOsquery): installed, upgraded or downgraded.
  if (resource.id === 'install-osquery' && resource.exec) {
    const pinned = pinnedVersionOf(resource);
    if (!pinned) return 'install-osquery names no version';
    const result = installPinned(world.releases, vm.installed, pinned);
    if ('error' in result) return result.error;
  }
  // A release whose osqueryd exits at start: the service never stays active, the restart fails.
  const release = installedRelease(vm.installed);
  if (resource.id === 'osqueryd-running' && release && world.releases.get(release)?.crashesAtStart) {
    // Not running: no worker, no line until a policy installs a release that starts (logs.ts shipsLogs).
    vm.osqueryd.worker = null;
    delete vm.applied['osqueryd-running'];
    return `osqueryd ${release} exited at start: Job for osqueryd.service failed (simulated crashing release)`;
  }
  const pkgName = resource.pkg?.apt?.name ?? resource.pkg?.yum?.name;
  if (pkgName) {
    if (resource.pkg.desiredState === 'REMOVED') delete vm.installed[pkgName];
    else vm.installed[pkgName] = pkgName === 'osquery' ? osqueryPackageVersion(OSQUERY_VERSION) : '1.0.0';
    // Installing rsyslog starts it (the package's postinst), with the rules and pipes there are then.
    if (pkgName === 'rsyslog' && resource.pkg.desiredState !== 'REMOVED' && !vm.syslog.rsyslog.running)
      startRsyslog(vm.syslog);
  }
  const file = resource.file;
  if (file) {
    let text: string | Buffer | undefined;
    if (typeof file.content === 'string') text = file.content;
    else if (file.file?.gcs) {
      // Downloaded by generation: a missing object or generation fails the resource, as on a real VM.
      const { bucket, object, generation } = file.file.gcs;
      const found = world.objects.get(`${bucket}/${object}`)?.find((o) => o.generation === String(generation));
      if (!found) return `failed to download gs://${bucket}/${object}#${generation}: object not found`;
      text = found.data;
    }
    if (text !== undefined) {
      vm.files[file.path] = sha256(text);
      // The simulated osqueryd reads its configuration from what was placed; rsyslog its rules (when it starts).
      if (String(file.path).startsWith('/etc/osquery/')) vm.osqueryFiles[file.path] = text.toString();
      if (String(file.path).startsWith('/etc/rsyslog.d/')) vm.syslog.rules[file.path] = text.toString();
    }
  }
  // osqueryd (re)started with the placed flags: it creates its syslog pipe when it ingests syslog.
  if (resource.id === 'osqueryd-running') osquerydStarted(vm.syslog, syslogSettingsOf(vm.osqueryFiles));
  if (resource.id === 'rsyslog-reads-pipe') {
    const failure = rsyslogReadsPipe(vm, resource, version);
    if (failure) return failure;
  }
  if (resource.exec) vm.applied[resource.id] = policyId;
  return null;
}

/**
 * The policy's rsyslog restart, as its scripts say (shared/domain/policy.ts): validate passes once the
 * marker names the version (nothing happens); enforce fails while the pipe it waits for does not exist,
 * else restarts rsyslog and writes the marker.
 */
function rsyslogReadsPipe(vm: SimVm, resource: Json, version: string | null): string | null {
  if (version !== null && vm.syslog.rsyslog.marker === version) return null;
  const pipe = /\[ -p (\S+) \] \|\|/.exec(String(resource.exec?.enforce?.script ?? ''))?.[1];
  if (!pipe || !vm.syslog.pipes.includes(pipe))
    return `no syslog pipe ${pipe ?? '(none named)'}: osqueryd has not created it`;
  startRsyslog(vm.syslog);
  vm.syslog.rsyslog.restarts += 1;
  vm.syslog.rsyslog.marker = version;
  return null;
}

function policyCompliance(world: World, vm: SimVm, policy: Json): Json {
  const group = (policy.resourceGroups ?? []).find(
    (g: Json) =>
      (g.inventoryFilters ?? []).length === 0 || g.inventoryFilters.some((f: Json) => inventoryMatches(vm, f)),
  );
  if (!group) {
    return policy.allowNoResourceGroupMatch
      ? { osPolicyId: policy.id, complianceState: 'COMPLIANT', osPolicyResourceCompliances: [] }
      : {
          osPolicyId: policy.id,
          complianceState: 'NON_COMPLIANT',
          complianceStateReason: 'resource-execution-errors',
          osPolicyResourceCompliances: [],
        };
  }
  const resources: Json[] = [];
  let failed = false;
  for (const resource of group.resources ?? []) {
    if (failed) {
      // Resources after a failure are not checked, as the real agent does.
      resources.push({ osPolicyResourceId: resource.id, configSteps: [], complianceState: 'UNKNOWN' });
      continue;
    }
    const failure = apply(world, vm, resource, String(policy.id));
    if (failure) {
      failed = true;
      resources.push({
        osPolicyResourceId: resource.id,
        configSteps: [
          { type: 'VALIDATION' },
          { type: 'DESIRED_STATE_CHECK' },
          { type: 'DESIRED_STATE_ENFORCEMENT', errorMessage: failure },
        ],
        complianceState: 'NON_COMPLIANT',
      });
      continue;
    }
    resources.push({
      osPolicyResourceId: resource.id,
      configSteps: [{ type: 'VALIDATION' }, { type: 'DESIRED_STATE_CHECK' }],
      complianceState: 'COMPLIANT',
    });
  }
  return failed
    ? {
        osPolicyId: policy.id,
        complianceState: 'NON_COMPLIANT',
        complianceStateReason: 'resource-execution-errors',
        osPolicyResourceCompliances: resources,
      }
    : { osPolicyId: policy.id, complianceState: 'COMPLIANT', osPolicyResourceCompliances: resources };
}

export const reportKey = (a: SimAssignment, vm: SimVm) => `${a.name}|${vm.id}`;

/** One check-in of every agent; returns the number of reports written. */
export function runAgents(world: World, now = new Date()): number {
  let written = 0;
  const byZone = new Map<string, SimAssignment[]>();
  for (const a of world.assignments.values()) {
    const key = `${a.project}/${a.zone}`;
    byZone.set(key, [...(byZone.get(key) ?? []), a]);
  }
  for (const vm of world.vms.values()) {
    for (const a of byZone.get(`${vm.project}/${vm.zone}`) ?? []) {
      const key = reportKey(a, vm);
      if (!filterSelects(a.body.instanceFilter as Json, vm)) {
        world.reports.delete(key);
        continue;
      }
      const instance =
        `projects/${vm.project}/locations/${vm.zone}/instances/` + (world.faults.reportsByName ? vm.name : vm.id);
      const base = {
        name: `${instance}/osPolicyAssignments/${a.id}/report`,
        instance,
        osPolicyAssignment: `${a.name}@${a.revisionId}`,
        updateTime: now.toISOString(),
        lastRunId: `run-${now.getTime()}`,
      };
      const policies = (a.body.osPolicies ?? []) as Json[];
      let reason: string | null = null;
      if (vm.status !== 'RUNNING') reason = 'vm-not-running';
      else if (vm.faults.agentMissing || !vm.serviceAccount || !world.osConfigEnabled(vm)) reason = 'no-agent-detected';
      const compliances = reason
        ? policies.map((p) => ({
            osPolicyId: p.id,
            complianceState: 'UNKNOWN',
            complianceStateReason: reason,
            osPolicyResourceCompliances: [],
          }))
        : policies.map((p) => policyCompliance(world, vm, p));
      world.reports.set(key, { ...base, osPolicyCompliances: compliances });
      written += 1;
    }
  }
  // A rollout finishes once every VM it targets has checked in at its revision.
  for (const a of world.assignments.values()) if (a.rolloutState === 'IN_PROGRESS') a.rolloutState = 'SUCCEEDED';
  return written;
}

/** Whether OS Config holds an inventory of the VM: its agent runs (and can reach the API). */
export const hasInventory = (world: World, vm: SimVm) =>
  !vm.faults.agentMissing && vm.status === 'RUNNING' && Boolean(vm.serviceAccount) && world.osConfigEnabled(vm);

/** The FULL inventory of a VM whose agent runs, as OS Config stores it. */
export function inventoryOf(world: World, vm: SimVm, now = new Date()): Json | null {
  if (!hasInventory(world, vm)) return null;
  const os = SIM_OS[vm.os];
  const items: Json = {};
  for (const [name, version] of Object.entries(vm.installed)) {
    const id = `installedPackage-${name}:x86_64:${version}`;
    const pkg =
      os.shortName === 'debian' || os.shortName === 'ubuntu'
        ? { aptPackage: { packageName: name, architecture: 'amd64', version } }
        : { yumPackage: { packageName: name, architecture: 'x86_64', version } };
    items[id] = {
      id,
      originType: 'INVENTORY_REPORT',
      type: 'INSTALLED_PACKAGE',
      installedPackage: pkg,
      createTime: now.toISOString(),
      updateTime: now.toISOString(),
    };
  }
  return {
    name: `projects/${vm.project}/locations/${vm.zone}/instances/${vm.id}/inventory`,
    osInfo: {
      hostname: vm.name,
      longName: os.longName,
      shortName: os.shortName,
      version: os.version,
      architecture: 'x86_64',
      kernelVersion: '6.1.0',
      kernelRelease: '6.1.0-28-cloud-amd64',
      osconfigAgentVersion: '20250115.00',
    },
    items,
    updateTime: now.toISOString(),
  };
}
