// Compute Engine v1 REST, the subset the project calls, in the shapes @google-cloud/compute sends and expects.
import { HttpError, route, type Route } from './http.js';
import { COMPUTE_BASE, fingerprint, isSimOs, SIM_OS, type SimOperation, type SimVm, type World } from './world.js';
import type { AuditLogSink } from './eventarc.js';

export function instanceJson(vm: SimVm) {
  const os = SIM_OS[vm.os];
  return {
    kind: 'compute#instance',
    id: vm.id,
    name: vm.name,
    creationTimestamp: vm.creationTimestamp,
    zone: `${COMPUTE_BASE}/projects/${vm.project}/zones/${vm.zone}`,
    machineType: `${COMPUTE_BASE}/projects/${vm.project}/zones/${vm.zone}/machineTypes/e2-small`,
    status: vm.status,
    labels: vm.labels,
    labelFingerprint: vm.labelFingerprint,
    metadata: { kind: 'compute#metadata', fingerprint: vm.metadataFingerprint, items: vm.metadata },
    serviceAccounts: vm.serviceAccount
      ? [{ email: vm.serviceAccount, scopes: ['https://www.googleapis.com/auth/cloud-platform'] }]
      : [],
    disks: [
      {
        kind: 'compute#attachedDisk',
        boot: true,
        deviceName: 'persistent-disk-0',
        licenses: [`${COMPUTE_BASE}/${os.license}`],
        type: 'PERSISTENT',
      },
    ],
    selfLink: `${COMPUTE_BASE}/projects/${vm.project}/zones/${vm.zone}/instances/${vm.name}`,
  };
}

const notFound = (what: string) =>
  new HttpError(404, `The resource '${what}' was not found`, {
    error: {
      code: 404,
      message: `The resource '${what}' was not found`,
      errors: [{ domain: 'global', reason: 'notFound', message: `The resource '${what}' was not found` }],
    },
  });

const conditionNotMet = (what: string) =>
  new HttpError(412, `${what} fingerprint either invalid or resource ${what.toLowerCase()} have changed`, {
    error: {
      code: 412,
      message: `${what} fingerprint either invalid or resource ${what.toLowerCase()} have changed`,
      errors: [
        {
          domain: 'global',
          reason: 'conditionNotMet',
          message: 'Supplied fingerprint does not match current fingerprint.',
          locationType: 'header',
          location: 'If-Match',
        },
      ],
    },
  });

function operationJson(op: SimOperation) {
  const c = op.compute!;
  return {
    kind: 'compute#operation',
    id: c.id,
    name: op.name,
    zone: `${COMPUTE_BASE}/projects/${c.project}/zones/${c.zone}`,
    operationType: c.operationType,
    targetLink: c.targetLink,
    targetId: c.targetId,
    status: op.done ? 'DONE' : 'RUNNING',
    progress: op.done ? 100 : 0,
    selfLink: `${COMPUTE_BASE}/projects/${c.project}/zones/${c.zone}/operations/${op.name}`,
    ...(op.error ? { error: { errors: [{ code: String(op.error.code), message: op.error.message }] } } : {}),
  };
}

/** Zone operations complete at once: the simulator changes state synchronously. */
function zoneOperation(world: World, vm: SimVm, operationType: string) {
  const op = world.operation({
    done: true,
    compute: {
      id: world.newId(),
      project: vm.project,
      zone: vm.zone,
      operationType,
      targetLink: `${COMPUTE_BASE}/projects/${vm.project}/zones/${vm.zone}/instances/${vm.name}`,
      targetId: vm.id,
    },
  });
  return operationJson(op);
}

/** Compute accepts an instance's name or its numeric id wherever it names an instance. */
function vmOr404(world: World, project: string, zone: string, name: string): SimVm {
  const byId = /^[1-9][0-9]{0,19}$/.test(name) ? world.vms.get(name) : undefined;
  const vm = byId && byId.project === project && byId.zone === zone ? byId : world.findVm(project, zone, name);
  if (!vm) throw notFound(`projects/${project}/zones/${zone}/instances/${name}`);
  return vm;
}

function page<T>(items: readonly T[], query: URLSearchParams): { page: T[]; nextPageToken?: string } {
  const max = Math.min(Number(query.get('maxResults') ?? 500) || 500, 500);
  const start = Number(query.get('pageToken') ?? 0) || 0;
  const slice = items.slice(start, start + max);
  return start + max < items.length ? { page: slice, nextPageToken: String(start + max) } : { page: slice };
}

/** The concurrentWrites fault: someone else's write lands between the caller's read and its write. */
function racingWrite(world: World, vm: SimVm): void {
  if (world.faults.concurrentWrites <= 0) return;
  world.faults.concurrentWrites -= 1;
  vm.labelFingerprint = fingerprint([vm.labels, world.newId()]);
  vm.metadataFingerprint = fingerprint([vm.metadata, world.newId()]);
}

export function computeRoutes(world: World, sink: AuditLogSink): Route[] {
  const P = '/compute/v1/projects/([^/]+)';
  return [
    route(
      'GET',
      new RegExp(`^${P}/aggregated/instances$`),
      'compute.instances.aggregatedList',
      ({ params: [project], query }) => {
        const { page: slice, nextPageToken } = page(world.vms.inProject(project!), query);
        const items: Record<string, unknown> = {};
        for (const vm of slice) {
          const scope = `zones/${vm.zone}`;
          const entry = (items[scope] ??= { instances: [] }) as { instances: unknown[] };
          entry.instances.push(instanceJson(vm));
        }
        return {
          kind: 'compute#instanceAggregatedList',
          id: `projects/${project}/aggregated/instances`,
          items,
          ...(nextPageToken ? { nextPageToken } : {}),
        };
      },
    ),
    route(
      'GET',
      new RegExp(`^${P}/zones/([^/]+)/instances$`),
      'compute.instances.list',
      ({ params: [project, zone], query }) => {
        const { page: slice, nextPageToken } = page(world.vms.inZone(project!, zone!), query);
        return {
          kind: 'compute#instanceList',
          items: slice.map(instanceJson),
          ...(nextPageToken ? { nextPageToken } : {}),
        };
      },
    ),
    route(
      'GET',
      new RegExp(`^${P}/zones/([^/]+)/instances/([^/]+)$`),
      'compute.instances.get',
      ({ params: [project, zone, name] }) => instanceJson(vmOr404(world, project!, zone!, name!)),
    ),
    route(
      'POST',
      new RegExp(`^${P}/zones/([^/]+)/instances$`),
      'compute.instances.insert',
      ({ params: [project, zone], body }) => {
        if (!body?.name) throw new HttpError(400, 'Invalid value for field resource.name');
        if (world.findVm(project!, zone!, body.name))
          throw new HttpError(
            409,
            `The resource 'projects/${project}/zones/${zone}/instances/${body.name}' already exists`,
          );
        const image = String(body.disks?.[0]?.initializeParams?.sourceImage ?? '');
        const os =
          Object.entries(SIM_OS).find(([, o]) => image.includes(o.image.split('/family/')[1]!))?.[0] ?? 'debian-12';
        const vm = world.addVm({
          project: project!,
          zone: zone!,
          name: body.name,
          os: isSimOs(os) ? os : 'debian-12',
          labels: body.labels,
          metadata: Object.fromEntries(
            (body.metadata?.items ?? []).map((i: { key: string; value: string }) => [i.key, i.value]),
          ),
          serviceAccount: body.serviceAccounts?.[0]?.email ?? null,
        });
        const op = zoneOperation(world, vm, 'insert');
        sink.instanceInserted(vm, 'v1.compute.instances.insert');
        return op;
      },
    ),
    route(
      'DELETE',
      new RegExp(`^${P}/zones/([^/]+)/instances/([^/]+)$`),
      'compute.instances.delete',
      ({ params: [project, zone, name] }) => {
        const vm = vmOr404(world, project!, zone!, name!);
        world.removeVm(vm);
        const op = zoneOperation(world, vm, 'delete');
        sink.instanceDeleted(vm, 'v1.compute.instances.delete');
        return op;
      },
    ),
    route(
      'POST',
      new RegExp(`^${P}/zones/([^/]+)/instances/([^/]+)/setLabels$`),
      'compute.instances.setLabels',
      ({ params: [project, zone, name], body }) => {
        const vm = vmOr404(world, project!, zone!, name!);
        racingWrite(world, vm);
        if (body?.labelFingerprint !== vm.labelFingerprint) throw conditionNotMet('Labels');
        vm.labels = { ...(body.labels ?? {}) };
        vm.labelFingerprint = fingerprint([vm.labels, world.newId()]);
        return zoneOperation(world, vm, 'setLabels');
      },
    ),
    route(
      'POST',
      new RegExp(`^${P}/zones/([^/]+)/instances/([^/]+)/setMetadata$`),
      'compute.instances.setMetadata',
      ({ params: [project, zone, name], body }) => {
        const vm = vmOr404(world, project!, zone!, name!);
        racingWrite(world, vm);
        if (body?.fingerprint !== vm.metadataFingerprint) throw conditionNotMet('Metadata');
        vm.metadata = (body.items ?? []).map((i: { key: string; value: string }) => ({ key: i.key, value: i.value }));
        vm.metadataFingerprint = fingerprint([vm.metadata, world.newId()]);
        return zoneOperation(world, vm, 'setMetadata');
      },
    ),
    route(
      'GET',
      new RegExp(`^${P}/zones/([^/]+)/operations/([^/]+)$`),
      'compute.zoneOperations.get',
      ({ params: [, , name] }) => {
        const op = world.operations.get(name!);
        if (!op?.compute) throw notFound(`operations/${name}`);
        return operationJson(op);
      },
    ),
    route(
      'POST',
      new RegExp(`^${P}/zones/([^/]+)/operations/([^/]+)/wait$`),
      'compute.zoneOperations.wait',
      ({ params: [, , name] }) => {
        const op = world.operations.get(name!);
        if (!op?.compute) throw notFound(`operations/${name}`);
        return operationJson(op);
      },
    ),
    route('GET', new RegExp(`^${P}$`), 'compute.projects.get', ({ params: [project] }) => {
      const p = world.project(project!);
      return {
        kind: 'compute#project',
        id: p.number,
        name: p.id,
        commonInstanceMetadata: { kind: 'compute#metadata', fingerprint: p.metadataFingerprint, items: p.metadata },
      };
    }),
  ];
}
