// The simulator's control API (documented in infra/local/README.md): create and delete VMs the way a
// person or a managed instance group would, inject faults, run agents, read request counts.
import { z } from 'zod';
import { HttpError, route, type Route } from './http.js';
import { runAgents } from './agent.js';
import { instanceJson } from './compute-api.js';
import type { AuditLog, Eventarc } from './eventarc.js';
import type { LogSink } from './log-sink.js';
import { runningVersion, workerOf, type LogShipper } from './logs.js';
import { allowQuery, resolveCosts, restartWorker } from './osqueryd.js';
import { connected, logMessages, readerOf } from './syslog.js';
import { defaultFaults, SIM_OS, type SimVm, type World } from './world.js';

const METHOD_ALIASES: Record<string, string> = {
  v1: 'v1.compute.instances.insert',
  beta: 'beta.compute.instances.insert',
  mig: 'compute.instances.insert',
};

const vmSpec = z.object({
  project: z.string().min(1).default('demo-project'),
  zone: z.string().min(1).default('us-central1-a'),
  name: z.string().regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a Compute instance name'),
  os: z.enum(Object.keys(SIM_OS) as [keyof typeof SIM_OS, ...Array<keyof typeof SIM_OS>]).default('debian-12'),
  labels: z.record(z.string(), z.string()).default({}),
  metadata: z.record(z.string(), z.string()).default({}),
  /** null = no service account attached. */
  serviceAccount: z.string().nullable().optional(),
  /** false = created from an image without the OS Config agent. */
  agent: z.boolean().default(true),
  /** Resource id of the OS policy that fails on this VM (e.g. install-osquery). */
  policyFailure: z.string().nullable().default(null),
  status: z.string().default('RUNNING'),
  /** Audit-log methodName: v1, beta, mig (unprefixed), or a full method name. */
  method: z.string().default('v1'),
  /** The insert fails: no VM, and the last audit entry carries an error status. */
  failed: z.boolean().default(false),
  /** A GKE node: `labelled: false` marks it by metadata only. */
  gke: z
    .object({
      cluster: z.string().default('prod-cluster'),
      pool: z.string().default('default-pool'),
      labelled: z.boolean().default(true),
    })
    .optional(),
});

const bulkSpec = vmSpec.omit({ name: true, failed: true, method: true }).extend({
  namePrefix: z.string().regex(/^[a-z][-a-z0-9]{0,50}$/),
  count: z.number().int().min(1).max(20_000),
  /** bulkInsert entries name each instance (true) or only the zone (false). */
  named: z.boolean().default(false),
  /**
   * Emit bulkInsert audit entries (default), one insert per VM (many VMs
   * created at once), or nothing (a fleet that predates the orchestrator).
   */
  as: z.enum(['bulkInsert', 'inserts', 'none']).default('bulkInsert'),
});

const faultSpec = z.object({
  latencyMs: z.number().min(0).max(60_000).optional(),
  rate429: z.number().min(0).max(1).optional(),
  rate503: z.number().min(0).max(1).optional(),
  failNext: z
    .array(z.object({ status: z.number().int(), count: z.number().int().min(1), match: z.string().optional() }))
    .optional(),
  deniedProjects: z.array(z.string()).optional(),
  eventSinkUp: z.boolean().optional(),
  duplicateEvents: z.boolean().optional(),
  reorderEvents: z.boolean().optional(),
  disabledApis: z.record(z.string(), z.array(z.enum(['compute.googleapis.com', 'osconfig.googleapis.com']))).optional(),
  concurrentWrites: z.number().int().min(0).optional(),
  hold: z.array(z.object({ match: z.string().min(1), count: z.number().int().min(1) })).optional(),
  reportsByName: z.boolean().optional(),
});

const vmFaultSpec = z.object({
  agentMissing: z.boolean().optional(),
  /** osqueryd or the shipper broke: the VM stays compliant but its logs stop. */
  logsStopped: z.boolean().optional(),
  /** The shipper died: lines stop and OS Config reports shipper-running failing. */
  shipperDown: z.boolean().optional(),
  /** osqueryd's worker is killed every round (a new pid each heartbeat), then the watcher exits. */
  osquerydCrashLoop: z.boolean().optional(),
  /** osqueryd runs without its watchdog (--disable_watchdog): its heartbeat says watcher -1. */
  osquerydUnwatched: z.boolean().optional(),
  policyFailure: z.string().nullable().optional(),
  /** OS Config's restart of osqueryd does not take: the worker keeps the configuration it loaded (drift). */
  osquerydNotRestarted: z.boolean().optional(),
  /** Heartbeats without an identity token (a shipper on a configuration before the token refresher). */
  unsignedHeartbeats: z.boolean().optional(),
  /** Publish each heartbeat again naming this other VM (its instance id): a forged sign of life (host.spoofed). */
  spoofAs: z.string().nullable().optional(),
  status: z.string().optional(),
});

const costProfileSpec = z.object({
  /** osqueryd worker CPU, percent of one core. */
  cpuPercent: z.number().min(0).max(6_400).optional(),
  rssBytes: z.number().int().min(0).optional(),
  queries: z
    .record(
      z.string().min(1),
      z.object({
        userMs: z.number().min(0).optional(),
        systemMs: z.number().min(0).optional(),
        outputBytes: z.number().int().min(0).optional(),
        denylisted: z.boolean().optional(),
        /** A chatty query: changed rows an hour (each a logged line) and the bytes of each row's value. */
        churnPerHour: z.number().min(0).max(1_000_000).optional(),
        rowBytes: z.number().int().min(0).max(100_000).optional(),
      }),
    )
    .optional(),
});

const badVersionSpec = z.strictObject({ policyFailing: z.boolean().optional(), logsStopped: z.boolean().optional() });
/** An osquery release in the simulated repositories and how it behaves (releases.ts). */
const releaseSpec = z.strictObject({
  crashesAtStart: z.boolean().optional(),
  cpuFactor: z.number().min(0).max(100).optional(),
});

/** The `at` of a body (ISO 8601), else now. */
const atOf = (body: unknown) => {
  const at = parse(z.object({ at: z.string().datetime().optional() }).passthrough(), body ?? {}).at;
  return at ? new Date(at) : new Date();
};

const osquerydSpec = z.object({
  /** An expensive osqueryd on this host (null: back to its version's cost). */
  cpuPercent: z.number().min(0).max(6_400).nullable().optional(),
  rssBytes: z.number().int().min(0).nullable().optional(),
});

const syslogMessages = z.object({
  messages: z
    .array(
      z.object({
        message: z.string(),
        tag: z.string().optional(),
        severity: z.string().optional(),
        facility: z.string().optional(),
      }),
    )
    .min(1)
    .max(10_000),
  at: z.string().datetime().optional(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (!result.success)
    throw new HttpError(400, result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return result.data;
}

function makeVm(world: World, spec: z.infer<typeof vmSpec> & { name: string }): SimVm {
  const labels = { ...spec.labels };
  const metadata = { ...spec.metadata };
  if (spec.gke) {
    if (spec.gke.labelled)
      Object.assign(labels, {
        'goog-gke-node': '',
        'goog-k8s-cluster-name': spec.gke.cluster,
        'goog-k8s-node-pool-name': spec.gke.pool,
      });
    const mig = `gke-${spec.gke.cluster}-${spec.gke.pool}-grp`;
    Object.assign(metadata, {
      'cluster-name': spec.gke.cluster,
      'kube-env': 'KUBERNETES_MASTER: "true"',
      'created-by': `projects/${world.project(spec.project).number}/zones/${spec.zone}/instanceGroupManagers/${mig}`,
      'instance-template':
        `projects/${world.project(spec.project).number}/global/instanceTemplates/` +
        `gke-${spec.gke.cluster}-${spec.gke.pool}`,
    });
  }
  return world.addVm({
    project: spec.project,
    zone: spec.zone,
    name: spec.name,
    os: spec.os,
    labels,
    metadata,
    serviceAccount: spec.serviceAccount,
    status: spec.status,
    agentMissing: !spec.agent,
    policyFailure: spec.policyFailure,
  });
}

const RESOURCE_PARENT = /^(folders|organizations)\/\d{1,20}$/;
const projectSpec = z.object({
  id: z.string().min(1),
  metadata: z.record(z.string(), z.string()).optional(),
  /** Resource Manager parent: folders/N or organizations/N (null: none). */
  parent: z.string().regex(RESOURCE_PARENT, 'expected folders/N or organizations/N').nullable().optional(),
  state: z.enum(['ACTIVE', 'DELETE_REQUESTED']).optional(),
});
const folderSpec = z.object({
  id: z.string().regex(/^\d{1,20}$/, 'expected a numeric folder id'),
  parent: z.string().regex(RESOURCE_PARENT, 'expected folders/N or organizations/N'),
  displayName: z.string().min(1).optional(),
  state: z.enum(['ACTIVE', 'DELETE_REQUESTED']).default('ACTIVE'),
});

export interface AuditLogControls {
  auditLog: AuditLog;
  eventarc: Eventarc;
  logSink: LogSink | undefined;
}

export function controlRoutes(world: World, audit: AuditLogControls, shipper?: LogShipper): Route[] {
  const { auditLog, eventarc, logSink } = audit;
  const vmById = (id: string) => {
    const vm = world.vms.get(id);
    if (!vm) throw new HttpError(404, `no VM with id ${id}`);
    return vm;
  };
  return [
    route('GET', /^\/control\/health$/, 'control', () => ({ ok: true })),
    route('POST', /^\/control\/reset$/, 'control', () => {
      world.reset();
      auditLog.discardHeld();
      eventarc.deliveries.length = 0;
      if (logSink) logSink.published.length = 0;
      return { ok: true };
    }),
    route('POST', /^\/control\/projects$/, 'control', ({ body }) => {
      const spec = parse(projectSpec, body);
      const p = spec.metadata ? world.setProjectMetadata(spec.id, spec.metadata) : world.project(spec.id);
      if (spec.parent !== undefined) p.parent = spec.parent;
      if (spec.state) p.state = spec.state;
      return { id: p.id, number: p.number, metadata: p.metadata, parent: p.parent, state: p.state };
    }),
    route('GET', /^\/control\/projects$/, 'control', () => [...world.projects.values()]),
    route('POST', /^\/control\/folders$/, 'control', ({ body }) => {
      const spec = parse(folderSpec, body);
      const folder = {
        name: `folders/${spec.id}`,
        parent: spec.parent,
        displayName: spec.displayName ?? `folder-${spec.id}`,
        state: spec.state,
      };
      world.folders.set(folder.name, folder);
      return folder;
    }),
    route('GET', /^\/control\/vms$/, 'control', () =>
      [...world.vms.values()].map((vm) => ({
        ...instanceJson(vm),
        os: vm.os,
        faults: vm.faults,
        installed: vm.installed,
      })),
    ),
    route('POST', /^\/control\/vms$/, 'control', ({ body }) => {
      const spec = parse(vmSpec, body);
      if (spec.gke && !body?.os) spec.os = 'cos';
      if (spec.gke && !body?.method) spec.method = 'mig';
      if (world.findVm(spec.project, spec.zone, spec.name))
        throw new HttpError(409, `VM ${spec.name} already exists in ${spec.project}/${spec.zone}`);
      const method = METHOD_ALIASES[spec.method] ?? spec.method;
      const vm = makeVm(world, spec);
      if (spec.failed) world.removeVm(vm); // the insert failed: nothing exists, but the audit log says so
      auditLog.instanceInserted(vm, method, { failed: spec.failed });
      return { ...instanceJson(vm), os: vm.os, created: !spec.failed };
    }),
    route('POST', /^\/control\/vms:bulk$/, 'control', ({ body }) => {
      const spec = parse(bulkSpec, body);
      const vms: SimVm[] = [];
      for (let i = 1; i <= spec.count; i++) {
        const name = `${spec.namePrefix}-${String(i).padStart(String(spec.count).length, '0')}`;
        if (!world.findVm(spec.project, spec.zone, name))
          vms.push(makeVm(world, { ...spec, name, failed: false, method: 'v1' }));
      }
      if (spec.as === 'inserts') for (const vm of vms) auditLog.instanceInserted(vm, 'v1.compute.instances.insert');
      else if (spec.as === 'bulkInsert')
        auditLog.bulkInserted(spec.project, spec.zone, vms, 'v1.compute.instances.bulkInsert', spec.named);
      return { created: vms.map((vm) => ({ id: vm.id, name: vm.name })) };
    }),
    // ?silent=true: deleted behind the orchestrator's back (no audit-log event).
    route(
      'DELETE',
      /^\/control\/vms\/([^/]+)\/([^/]+)\/([^/]+)$/,
      'control',
      ({ params: [project, zone, name], query }) => {
        const vm = world.findVm(project!, zone!, name!);
        if (!vm) throw new HttpError(404, `no VM ${project}/${zone}/${name}`);
        world.removeVm(vm);
        if (query.get('silent') !== 'true') auditLog.instanceDeleted(vm, 'v1.compute.instances.delete');
        return { deleted: vm.id };
      },
    ),
    route('PATCH', /^\/control\/vms\/([^/]+)$/, 'control', ({ params: [id], body }) => {
      const vm = vmById(id!);
      const spec = parse(vmFaultSpec, body);
      if (spec.agentMissing !== undefined) vm.faults.agentMissing = spec.agentMissing;
      if (spec.logsStopped !== undefined) vm.faults.logsStopped = spec.logsStopped;
      if (spec.shipperDown !== undefined) vm.faults.shipperDown = spec.shipperDown;
      if (spec.osquerydCrashLoop !== undefined) {
        vm.faults.osquerydCrashLoop = spec.osquerydCrashLoop;
        vm.quickRespawns = 0;
      }
      if (spec.policyFailure !== undefined) vm.faults.policyFailure = spec.policyFailure;
      if (spec.osquerydNotRestarted !== undefined) vm.faults.osquerydNotRestarted = spec.osquerydNotRestarted;
      if (spec.osquerydUnwatched !== undefined) vm.faults.osquerydUnwatched = spec.osquerydUnwatched;
      if (spec.unsignedHeartbeats !== undefined) vm.faults.unsignedHeartbeats = spec.unsignedHeartbeats;
      if (spec.spoofAs !== undefined) vm.faults.spoofAs = spec.spoofAs;
      if (spec.status) vm.status = spec.status;
      return { id: vm.id, status: vm.status, faults: vm.faults };
    }),
    // The simulated osqueryd (osqueryd.ts): cost profiles per configuration version, and per-host faults.
    route('GET', /^\/control\/osquery\/profiles$/, 'control', () => Object.fromEntries(world.costProfiles)),
    route('PUT', /^\/control\/osquery\/profiles\/([^/]+)$/, 'control', ({ params: [version], body }) => {
      world.costProfiles.set(version!, parse(costProfileSpec, body));
      return world.costProfiles.get(version!);
    }),
    route('DELETE', /^\/control\/osquery\/profiles\/([^/]+)$/, 'control', ({ params: [version] }) => ({
      deleted: world.costProfiles.delete(version!),
    })),
    // osquery releases in the simulated package repositories (releases.ts): a pinned install finds them.
    route('GET', /^\/control\/osquery\/releases$/, 'control', () => Object.fromEntries(world.releases)),
    route('PUT', /^\/control\/osquery\/releases\/(\d+\.\d+\.\d+)$/, 'control', ({ params: [version], body }) => {
      world.releases.set(version!, parse(releaseSpec, body));
      return world.releases.get(version!);
    }),
    // A configuration version made bad on every VM that runs it (world.ts BadVersion).
    route('GET', /^\/control\/versions\/bad$/, 'control', () => Object.fromEntries(world.badVersions)),
    route('PUT', /^\/control\/versions\/([^/]+)\/bad$/, 'control', ({ params: [version], body }) => {
      world.badVersions.set(version!, parse(badVersionSpec, body));
      return world.badVersions.get(version!);
    }),
    route('DELETE', /^\/control\/versions\/([^/]+)\/bad$/, 'control', ({ params: [version] }) => ({
      deleted: world.badVersions.delete(version!),
    })),
    route('GET', /^\/control\/vms\/([^/]+)\/osqueryd$/, 'control', ({ params: [id] }) =>
      osquerydView(world, vmById(id!)),
    ),
    route('PATCH', /^\/control\/vms\/([^/]+)\/osqueryd$/, 'control', ({ params: [id], body }) => {
      const vm = vmById(id!);
      const spec = parse(osquerydSpec, body);
      if (spec.cpuPercent !== undefined) vm.osqueryd.cpuPercent = spec.cpuPercent;
      if (spec.rssBytes !== undefined) vm.osqueryd.rssBytes = spec.rssBytes;
      return osquerydView(world, vm);
    }),
    route('POST', /^\/control\/vms\/([^/]+)\/osqueryd\/restart$/, 'control', ({ params: [id] }) => {
      const vm = runningOsqueryd(vmById(id!));
      restartWorker(vm.osqueryd, new Date());
      return osquerydView(world, vm);
    }),
    route('POST', /^\/control\/vms\/([^/]+)\/osqueryd\/denylist$/, 'control', ({ params: [id], body }) => {
      const vm = runningOsqueryd(vmById(id!));
      const spec = parse(z.object({ query: z.string().min(1), denylisted: z.boolean().default(true) }), body);
      if (!vm.osqueryd.worker!.queries[spec.query])
        throw new HttpError(404, `osqueryd on ${vm.name} does not schedule ${spec.query}`);
      // As the watchdog does it: the worker is killed while running the query, the next one denylists it.
      if (spec.denylisted) restartWorker(vm.osqueryd, new Date(), spec.query);
      else allowQuery(vm.osqueryd, spec.query);
      return osquerydView(world, vm);
    }),
    // Syslog on the VM (syslog.ts): messages its programs log now, a steady load, and what rsyslog and
    // osqueryd did with them.
    route('GET', /^\/control\/vms\/([^/]+)\/syslog$/, 'control', ({ params: [id] }) => syslogView(vmById(id!))),
    route('POST', /^\/control\/vms\/([^/]+)\/syslog$/, 'control', ({ params: [id], body }) => {
      const vm = vmById(id!);
      const spec = parse(syslogMessages, body);
      const ingested = logMessages(
        vm.syslog,
        readerOf(vm),
        vm.name,
        spec.messages,
        spec.at ? new Date(spec.at) : new Date(),
      );
      return { ...syslogView(vm), accepted: ingested, rejected: spec.messages.length - ingested };
    }),
    route('PATCH', /^\/control\/vms\/([^/]+)\/syslog$/, 'control', ({ params: [id], body }) => {
      const vm = vmById(id!);
      vm.syslog.linesPerSecond = parse(
        z.object({ linesPerSecond: z.number().min(0).max(100_000) }),
        body,
      ).linesPerSecond;
      return syslogView(vm);
    }),
    route('POST', /^\/control\/faults$/, 'control', ({ body }) => {
      const spec = parse(faultSpec, body);
      world.faults = {
        ...world.faults,
        ...Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)),
      };
      if (!world.faults.reorderEvents) auditLog.releaseHeld(); // what was held goes out, newest first
      return world.faults;
    }),
    route('DELETE', /^\/control\/faults$/, 'control', () => {
      world.releaseHeld();
      world.faults = defaultFaults();
      auditLog.releaseHeld();
      return world.faults;
    }),
    route('GET', /^\/control\/held$/, 'control', () => world.held.map(({ route, path }) => ({ route, path }))),
    route('POST', /^\/control\/held\/wait$/, 'control', async ({ body }) => {
      const spec = parse(
        z.object({
          count: z.number().int().min(1).default(1),
          timeoutMs: z.number().int().min(0).max(600_000).default(30_000),
        }),
        body,
      );
      try {
        await world.waitForHeld(spec.count, spec.timeoutMs);
      } catch (error) {
        throw new HttpError(408, (error as Error).message);
      }
      return world.held.map(({ route, path }) => ({ route, path }));
    }),
    route('POST', /^\/control\/held\/release$/, 'control', ({ body }) => ({
      released: world.releaseHeld(parse(z.object({ count: z.number().int().min(1).optional() }), body).count),
    })),
    // `at`: the simulated clock of a test or a benchmark (reports and log lines stamped with it).
    route('POST', /^\/control\/agents\/run$/, 'control', ({ body }) => ({
      reports: runAgents(world, atOf(body)),
    })),
    route('POST', /^\/control\/logs\/ship$/, 'control', async ({ body }) => {
      if (!shipper) throw new HttpError(409, 'the simulator was started without a log topic');
      return { messages: await shipper.shipRound(atOf(body)) };
    }),
    route('GET', /^\/control\/assignments$/, 'control', () => [...world.assignments.values()]),
    route('GET', /^\/control\/stats$/, 'control', () => {
      const requests = Object.fromEntries([...world.requests.entries()].sort());
      return { requests, total: Object.values(requests).reduce((a, b) => a + b, 0) };
    }),
    route('POST', /^\/control\/stats\/reset$/, 'control', () => {
      world.requests.clear();
      return { ok: true };
    }),
    route('GET', /^\/control\/deliveries$/, 'control', () => eventarc.deliveries),
    route('GET', /^\/control\/sink$/, 'control', () => ({
      topic: logSink ? `projects/${logSink.target.projectId}/topics/${logSink.target.topic}` : null,
      published: logSink?.published ?? [],
      failed: logSink?.failed ?? 0,
    })),
    route('POST', /^\/control\/events\/flush$/, 'control', async () => {
      await auditLog.idle();
      return { delivered: eventarc.deliveries.length, published: logSink?.published.length ?? 0 };
    }),
    route('PUT', /^\/control\/event-sink$/, 'control', ({ body }) => {
      eventarc.sinkUrl = parse(z.object({ url: z.url().nullable() }), body).url ?? undefined;
      return { url: eventarc.sinkUrl ?? null };
    }),
  ];
}

/** A VM whose osqueryd runs (it started with the VM's first shipped round, or starts now). */
function runningOsqueryd(vm: SimVm): SimVm {
  if (vm.status !== 'RUNNING' || !vm.applied['osqueryd-running'])
    throw new HttpError(409, `osqueryd does not run on ${vm.name} (status ${vm.status}, OS policy not applied)`);
  workerOf(vm, new Date());
  return vm;
}

function syslogView(vm: SimVm) {
  const { rsyslog, pipes, linesPerSecond, buffer, ingested, dropped, read } = vm.syslog;
  const reader = readerOf(vm);
  return {
    id: vm.id,
    name: vm.name,
    rsyslog,
    pipes,
    osquerydReads: reader?.pipe ?? null,
    connected: connected(vm.syslog, reader),
    linesPerSecond,
    buffered: buffer.reduce((n, b) => n + b.count, 0),
    ingested,
    dropped,
    read,
  };
}

function osquerydView(world: World, vm: SimVm) {
  const w = vm.osqueryd.worker;
  const costs = resolveCosts(world.costProfiles, w?.configVersion ?? runningVersion(vm), vm.osqueryd);
  return {
    id: vm.id,
    name: vm.name,
    configVersion: w?.configVersion ?? runningVersion(vm),
    overrides: { cpuPercent: vm.osqueryd.cpuPercent, rssBytes: vm.osqueryd.rssBytes },
    cpuPercent: costs.cpuPercent,
    rssBytes: costs.rssBytes,
    worker: w && {
      pid: w.pid,
      startTime: w.startTime,
      cpuMs: Math.floor(w.cpuMs),
      osquerySeconds: w.clock,
      queries: Object.fromEntries(
        w.schedule.map((q) => {
          const s = w.queries[q.name]!;
          return [
            q.name,
            {
              interval: q.interval,
              executions: s.executions,
              denylisted: s.denylistedUntil > w.clock || costs.query(q.name).denylisted,
            },
          ];
        }),
      ),
    },
  };
}
