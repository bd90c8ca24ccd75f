// The simulator's state: projects, VMs, OS policy assignments, the reports and inventories the
// simulated OS Config agents produce, and the faults a test or a person injects.
import { createHash, randomBytes } from 'node:crypto';
import { newOsqueryd, type CostProfile, type SimOsqueryd } from './osqueryd.js';
import { defaultReleases, type Releases } from './releases.js';
import type { SimObject } from './storage-api.js';
import { newSyslog, type SimSyslog } from './syslog.js';

export const SIM_OS = {
  'debian-12': {
    shortName: 'debian',
    version: '12',
    longName: 'Debian GNU/Linux 12 (bookworm)',
    license: 'projects/debian-cloud/global/licenses/debian-12-bookworm',
    image: 'projects/debian-cloud/global/images/family/debian-12',
  },
  'ubuntu-2204': {
    shortName: 'ubuntu',
    version: '22.04',
    longName: 'Ubuntu 22.04.5 LTS',
    license: 'projects/ubuntu-os-cloud/global/licenses/ubuntu-2204-lts',
    image: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts',
  },
  'rhel-9': {
    shortName: 'rhel',
    version: '9.5',
    longName: 'Red Hat Enterprise Linux 9.5 (Plow)',
    license: 'projects/rhel-cloud/global/licenses/rhel-9-server',
    image: 'projects/rhel-cloud/global/images/family/rhel-9',
  },
  'rocky-9': {
    shortName: 'rocky',
    version: '9.5',
    longName: 'Rocky Linux 9.5 (Blue Onyx)',
    license: 'projects/rocky-linux-cloud/global/licenses/rocky-linux-9',
    image: 'projects/rocky-linux-cloud/global/images/family/rocky-linux-9',
  },
  'windows-2022': {
    shortName: 'windows',
    version: '10.0.20348',
    longName: 'Microsoft Windows Server 2022 Datacenter',
    license: 'projects/windows-cloud/global/licenses/windows-server-2022-dc',
    image: 'projects/windows-cloud/global/images/family/windows-2022',
  },
  cos: {
    shortName: 'cos',
    version: '117',
    longName: 'Container-Optimized OS from Google',
    license: 'projects/cos-cloud/global/licenses/cos',
    image: 'projects/cos-cloud/global/images/family/cos-stable',
  },
} as const;
export type SimOs = keyof typeof SIM_OS;
export const isSimOs = (os: unknown): os is SimOs => typeof os === 'string' && os in SIM_OS;

export { PINNED_OSQUERY_VERSION as OSQUERY_VERSION } from '../../../shared/osquery/version.js';
export const COMPUTE_BASE = 'https://www.googleapis.com/compute/v1';

export interface SimVm {
  id: string;
  name: string;
  project: string;
  zone: string;
  os: SimOs;
  status: string;
  labels: Record<string, string>;
  labelFingerprint: string;
  metadata: Array<{ key: string; value: string }>;
  metadataFingerprint: string;
  serviceAccount: string | null;
  creationTimestamp: string;
  faults: {
    agentMissing: boolean;
    policyFailure: string | null;
    logsStopped: boolean;
    /** The log shipper died and does not come back: lines stop and the shipper-running exec fails. */
    shipperDown?: boolean;
    /** osqueryd's watchdog kills its worker every round; after 4 quick respawns the watcher exits. */
    osquerydCrashLoop?: boolean;
    /** osqueryd runs without its watchdog (--disable_watchdog): its heartbeat says watcher -1. */
    osquerydUnwatched?: boolean;
    /**
     * OS Config's restart of osqueryd does not take (a unit override, a stuck process): the files change, the
     * marker is written, and the worker keeps running the configuration it loaded before. A drifted host.
     */
    osquerydNotRestarted?: boolean;
    /** The shipper sends heartbeats without an identity token (a configuration before the refresher). */
    unsignedHeartbeats?: boolean;
    /**
     * The attack on silence: besides its own lines, the VM publishes each heartbeat (with its own identity
     * token) again naming this other VM (its instance id, project and zone as attributes).
     */
    spoofAs?: string | null;
  };
  /** Quick respawns of the worker under osquerydCrashLoop (the watcher gives up after 4). */
  quickRespawns?: number;
  /** Packages the simulated agent installed, name -> version. */
  installed: Record<string, string>;
  /** Files the agent placed: VM path -> sha256 of the content. */
  files: Record<string, string>;
  /** Markers exec resources left (e.g. the configuration version osqueryd was restarted for). */
  applied: Record<string, string>;
  /** Text of the files placed under /etc/osquery/: what the simulated osqueryd reads its schedule from. */
  osqueryFiles: Record<string, string>;
  /** The simulated osqueryd: its worker process and this host's cost overrides. */
  osqueryd: SimOsqueryd;
  /** rsyslog, osqueryd's syslog pipe and its syslog_events buffer (syslog.ts). */
  syslog: SimSyslog;
}

export interface SimProject {
  id: string;
  number: string;
  metadata: Array<{ key: string; value: string }>;
  metadataFingerprint: string;
  /** Resource Manager: `folders/N` or `organizations/N`; null = no organisation. */
  parent: string | null;
  state: 'ACTIVE' | 'DELETE_REQUESTED';
}

/** A Resource Manager folder. */
export interface SimFolder {
  /** `folders/N` */
  name: string;
  /** `folders/N` or `organizations/N` */
  parent: string;
  displayName: string;
  state: 'ACTIVE' | 'DELETE_REQUESTED';
}

export interface SimAssignment {
  name: string;
  project: string;
  zone: string;
  id: string;
  body: Record<string, unknown>;
  revisionId: string;
  revisionCreateTime: string;
  rolloutState: 'IN_PROGRESS' | 'SUCCEEDED' | 'CANCELLED';
  etag: string;
  uid: string;
}

export interface SimOperation {
  name: string;
  done: boolean;
  /** Compute zone operations carry these. */
  compute?: { id: string; project: string; zone: string; operationType: string; targetLink: string; targetId: string };
  response?: Record<string, unknown>;
  error?: { code: number; message: string };
  metadata?: Record<string, unknown>;
}

export interface Faults {
  latencyMs: number;
  /** Fraction (0..1) of API requests answered with that status. */
  rate429: number;
  rate503: number;
  /**
   * The next `count` API requests (optionally only those whose
   * method name or path contains `match`) fail with `status`.
   */
  failNext: Array<{ status: number; count: number; match?: string }>;
  /** Projects whose API answers 403. */
  deniedProjects: string[];
  /** When false, insert/delete produce no audit-log events (events lost while the sink was down). */
  eventSinkUp: boolean;
  /** Every audit entry is delivered twice, by Eventarc and by the log sink alike. */
  duplicateEvents: boolean;
  /** Audit entries are held, then delivered newest first when the fault is cleared or events are flushed. */
  reorderEvents: boolean;
  /**
   * Services (compute.googleapis.com, osconfig.googleapis.com)
   * disabled per project: their calls answer 403 SERVICE_DISABLED.
   */
  disabledApis: Record<string, string[]>;
  /** The next N label/metadata writes race someone else's write: the fingerprint moves just before them (412). */
  concurrentWrites: number;
  /**
   * The next `count` API requests whose method name or path contains `match` wait, unanswered, until released
   * (POST /control/held/release): a caller is stopped at a known point while other writers act.
   */
  hold: Array<{ match: string; count: number }>;
  /** OS Config report names carry the instance name instead of its id (the API allows either). */
  reportsByName: boolean;
}

export const defaultFaults = (): Faults => ({
  latencyMs: 0,
  rate429: 0,
  rate503: 0,
  failNext: [],
  deniedProjects: [],
  eventSinkUp: true,
  duplicateEvents: false,
  reorderEvents: false,
  disabledApis: {},
  concurrentWrites: 0,
  hold: [],
  reportsByName: false,
});

export interface HeldRequest {
  route: string;
  path: string;
  release: () => void;
}

export const fingerprint = (value: unknown) =>
  createHash('sha256').update(JSON.stringify(value)).digest('base64').slice(0, 12);

/** How a configuration version misbehaves on every VM that runs it (osqueryd's costs are its CostProfile). */
export interface BadVersion {
  policyFailing?: boolean;
  logsStopped?: boolean;
}

const byZoneThenName = (a: SimVm, b: SimVm) => a.zone.localeCompare(b.zone) || a.name.localeCompare(b.name);

/**
 * VMs by id, indexed by project, zone and name as they change: a listing or a lookup costs the project's
 * or the zone's VMs, never the whole world's (100,000 VMs in 100 projects for the fleet benchmark). A VM's
 * project, zone and name never change once it is stored.
 */
export class VmStore extends Map<string, SimVm> {
  /** project -> zone -> name -> VM */
  private readonly index = new Map<string, Map<string, Map<string, SimVm>>>();
  /** Listing order per project (zone, then name) and per `project/zone` (name), until the next change there. */
  private readonly sorted = new Map<string, SimVm[]>();

  override set(id: string, vm: SimVm): this {
    const previous = super.get(id);
    if (previous) this.unindex(previous);
    super.set(id, vm);
    const zones = this.index.get(vm.project) ?? new Map<string, Map<string, SimVm>>();
    this.index.set(vm.project, zones);
    const names = zones.get(vm.zone) ?? new Map<string, SimVm>();
    zones.set(vm.zone, names);
    names.set(vm.name, vm);
    this.changed(vm);
    return this;
  }

  override delete(id: string): boolean {
    const vm = super.get(id);
    if (vm) this.unindex(vm);
    return super.delete(id);
  }

  override clear(): void {
    super.clear();
    this.index.clear();
    this.sorted.clear();
  }

  private unindex(vm: SimVm): void {
    const zones = this.index.get(vm.project);
    const names = zones?.get(vm.zone);
    if (names?.get(vm.name) === vm) names.delete(vm.name);
    if (names?.size === 0) zones!.delete(vm.zone);
    if (zones?.size === 0) this.index.delete(vm.project);
    this.changed(vm);
  }

  private changed(vm: SimVm): void {
    this.sorted.delete(vm.project);
    this.sorted.delete(`${vm.project}/${vm.zone}`);
  }

  byName(project: string, zone: string, name: string): SimVm | undefined {
    return this.index.get(project)?.get(zone)?.get(name);
  }

  /** The project's VMs, by zone then name (Compute's aggregated listing order here). */
  inProject(project: string): readonly SimVm[] {
    let list = this.sorted.get(project);
    if (!list) {
      list = [...(this.index.get(project)?.values() ?? [])].flatMap((names) => [...names.values()]);
      list.sort(byZoneThenName);
      this.sorted.set(project, list);
    }
    return list;
  }

  /** The zone's VMs, by name. */
  inZone(project: string, zone: string): readonly SimVm[] {
    const key = `${project}/${zone}`;
    let list = this.sorted.get(key);
    if (!list) {
      list = [...(this.index.get(project)?.get(zone)?.values() ?? [])].sort(byZoneThenName);
      this.sorted.set(key, list);
    }
    return list;
  }
}

const REPORT_KEY = /^projects\/([^/]+)\/locations\/([^/]+)\/osPolicyAssignments\/[^|]+\|(.+)$/;

/**
 * OS Config's reports, by `${assignmentName}|${instanceId}`, indexed by project and zone and by instance:
 * a zone's listing and a VM's removal cost that zone's or that VM's reports only.
 */
export class ReportStore extends Map<string, Record<string, unknown>> {
  /** project -> zone -> keys (in the order they were first stored: stable pages) */
  private readonly byZone = new Map<string, Map<string, Set<string>>>();
  private readonly byInstance = new Map<string, Set<string>>();

  override set(key: string, report: Record<string, unknown>): this {
    if (!super.has(key)) {
      const [, project, zone, instance] = REPORT_KEY.exec(key) ?? [];
      if (!project || !zone || !instance) throw new Error(`not a report key: ${key}`);
      const zones = this.byZone.get(project) ?? new Map<string, Set<string>>();
      this.byZone.set(project, zones);
      zones.set(zone, (zones.get(zone) ?? new Set()).add(key));
      this.byInstance.set(instance, (this.byInstance.get(instance) ?? new Set()).add(key));
    }
    return super.set(key, report);
  }

  override delete(key: string): boolean {
    if (!super.has(key)) return false;
    const [, project, zone, instance] = REPORT_KEY.exec(key)!;
    this.byZone.get(project!)?.get(zone!)?.delete(key);
    this.byInstance.get(instance!)?.delete(key);
    return super.delete(key);
  }

  override clear(): void {
    super.clear();
    this.byZone.clear();
    this.byInstance.clear();
  }

  /** The reports of a zone of the project, or of all its zones (`-`). */
  *inZone(project: string, zone: string): Generator<Record<string, unknown>> {
    const zones = this.byZone.get(project);
    const keys = zone === '-' ? [...(zones?.values() ?? [])].flatMap((k) => [...k]) : (zones?.get(zone) ?? []);
    for (const key of keys) yield super.get(key)!;
  }

  /** Keys of the reports about one instance (by id), every assignment's. */
  keysOf(instanceId: string): string[] {
    return [...(this.byInstance.get(instanceId) ?? [])];
  }

  /** Keys of the reports on one assignment (its full name). */
  keysOfAssignment(assignmentName: string): string[] {
    const [, project, zone] = /^projects\/([^/]+)\/locations\/([^/]+)\//.exec(assignmentName) ?? [];
    return [...(this.byZone.get(project ?? '')?.get(zone ?? '') ?? [])].filter((k) =>
      k.startsWith(`${assignmentName}|`),
    );
  }
}

export class World {
  projects = new Map<string, SimProject>();
  folders = new Map<string, SimFolder>();
  vms = new VmStore();
  assignments = new Map<string, SimAssignment>();
  operations = new Map<string, SimOperation>();
  /** key: `${assignmentName}|${instanceId}` */
  reports = new ReportStore();
  /** Cloud Storage: `${bucket}/${name}` -> every generation, oldest first. */
  objects = new Map<string, SimObject[]>();
  faults: Faults = defaultFaults();
  requests = new Map<string, number>();
  /** Requests stopped by the hold fault, oldest first. */
  held: HeldRequest[] = [];
  private heldWaiters: Array<() => void> = [];
  /** What osqueryd costs per configuration version (key: the version, or `default` for all). */
  costProfiles = new Map<string, CostProfile>();
  /**
   * A configuration version made bad (key: the version): on every VM that applies it, the OS policy fails
   * (`policyFailing`: its osqueryd-running resource) or the logs stop (`logsStopped`). What a canary catches.
   */
  badVersions = new Map<string, BadVersion>();
  /** osquery releases in the package repositories and how each behaves (releases.ts). */
  releases: Releases = defaultReleases();
  private nextId = BigInt(Date.now()) * 1000n;

  reset(): void {
    this.releaseHeld();
    this.projects.clear();
    this.folders.clear();
    this.vms.clear();
    this.assignments.clear();
    this.operations.clear();
    this.reports.clear();
    this.objects.clear();
    this.requests.clear();
    this.costProfiles.clear();
    this.badVersions.clear();
    this.releases = defaultReleases();
    this.faults = defaultFaults();
  }

  newId(): string {
    this.nextId += 1n;
    return this.nextId.toString();
  }

  project(id: string): SimProject {
    let p = this.projects.get(id);
    if (!p) {
      p = {
        id,
        number: String(100000000000 + this.projects.size + 1),
        metadata: [],
        metadataFingerprint: fingerprint([]),
        parent: null,
        state: 'ACTIVE',
      };
      this.projects.set(id, p);
    }
    return p;
  }

  setProjectMetadata(id: string, metadata: Record<string, string>): SimProject {
    const p = this.project(id);
    p.metadata = Object.entries(metadata).map(([key, value]) => ({ key, value }));
    p.metadataFingerprint = fingerprint(p.metadata);
    return p;
  }

  findVm(project: string, zone: string, name: string): SimVm | undefined {
    return this.vms.byName(project, zone, name);
  }

  addVm(spec: {
    project: string;
    zone: string;
    name: string;
    os: SimOs;
    labels?: Record<string, string>;
    metadata?: Record<string, string>;
    serviceAccount?: string | null;
    status?: string;
    agentMissing?: boolean;
    policyFailure?: string | null;
  }): SimVm {
    this.project(spec.project);
    const metadata = Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value }));
    const labels = { ...(spec.labels ?? {}) };
    const vm: SimVm = {
      id: this.newId(),
      name: spec.name,
      project: spec.project,
      zone: spec.zone,
      os: spec.os,
      status: spec.status ?? 'RUNNING',
      labels,
      labelFingerprint: fingerprint(labels),
      metadata,
      metadataFingerprint: fingerprint(metadata),
      serviceAccount:
        spec.serviceAccount === undefined
          ? `${this.project(spec.project).number}-compute@developer.gserviceaccount.com`
          : spec.serviceAccount,
      creationTimestamp: new Date().toISOString(),
      faults: {
        agentMissing: spec.agentMissing ?? false,
        policyFailure: spec.policyFailure ?? null,
        logsStopped: false,
      },
      installed: {},
      files: {},
      applied: {},
      osqueryFiles: {},
      osqueryd: newOsqueryd(),
      syslog: newSyslog(spec.os),
    };
    this.vms.set(vm.id, vm);
    return vm;
  }

  removeVm(vm: SimVm): void {
    this.vms.delete(vm.id);
    for (const key of this.reports.keysOf(vm.id)) this.reports.delete(key);
  }

  /** Stops a request until it is released. */
  hold(route: string, path: string): Promise<void> {
    return new Promise((release) => {
      this.held.push({ route, path, release });
      for (const wake of this.heldWaiters.splice(0)) wake();
    });
  }

  /** Resolves once at least `count` requests are held; rejects after `timeoutMs`. */
  async waitForHeld(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.held.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.held.length} of ${count} requests held after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.heldWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Lets the oldest `count` held requests (all by default) go on; returns how many. */
  releaseHeld(count = this.held.length): number {
    const released = this.held.splice(0, count);
    for (const r of released) r.release();
    return released.length;
  }

  count(name: string): void {
    this.requests.set(name, (this.requests.get(name) ?? 0) + 1);
  }

  /** enable-osconfig as the agent sees it: instance metadata wins over project metadata. */
  osConfigEnabled(vm: SimVm): boolean {
    const own = vm.metadata.find((i) => i.key === 'enable-osconfig');
    const value = own ? own.value : this.project(vm.project).metadata.find((i) => i.key === 'enable-osconfig')?.value;
    return value !== undefined && /^(true|1|yes)$/i.test(value);
  }

  operation(op: Omit<SimOperation, 'name'> & { name?: string }): SimOperation {
    const full: SimOperation = { ...op, name: op.name ?? `operation-${Date.now()}-${randomBytes(4).toString('hex')}` };
    this.operations.set(full.name, full);
    return full;
  }
}
