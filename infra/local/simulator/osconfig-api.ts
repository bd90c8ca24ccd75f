// OS Config v1 REST (OsConfigZonalService), the subset the project calls. The REST client sends enums
// as integers ($alt=json;enum-encoding=int); they are stored by name so the agent can read them.
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpError, route, type Route } from './http.js';
import { hasInventory, inventoryOf } from './agent.js';
import type { SimAssignment, World } from './world.js';

// Enum fields of OSPolicyAssignment, by JSON key: index = proto number.
const ENUMS: Record<string, readonly string[]> = {
  mode: ['MODE_UNSPECIFIED', 'VALIDATION', 'ENFORCEMENT'],
  desiredState: ['DESIRED_STATE_UNSPECIFIED', 'INSTALLED', 'REMOVED'],
  archiveType: ['ARCHIVE_TYPE_UNSPECIFIED', 'DEB', 'DEB_SRC'],
  interpreter: ['INTERPRETER_UNSPECIFIED', 'NONE', 'SHELL', 'POWERSHELL'],
  state: ['DESIRED_STATE_UNSPECIFIED', 'PRESENT', 'ABSENT', 'CONTENTS_MATCH'],
};

/** Numeric enums -> names, recursively; everything else as sent. */
export function enumsByName(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => enumsByName(v, key));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, enumsByName(v, k)]));
  if (typeof value === 'number' && ENUMS[key]) return ENUMS[key][value] ?? value;
  return value;
}

const rpcError = (code: number, status: string, message: string) =>
  new HttpError(code, message, { error: { code, message, status } });

const ASSIGNMENT_TYPE = 'type.googleapis.com/google.cloud.osconfig.v1.OSPolicyAssignment';
const METADATA_TYPE = 'type.googleapis.com/google.cloud.osconfig.v1.OSPolicyAssignmentOperationMetadata';
const EMPTY_TYPE = 'type.googleapis.com/google.protobuf.Empty';

export function assignmentJson(a: SimAssignment) {
  return {
    ...a.body,
    name: a.name,
    revisionId: a.revisionId,
    revisionCreateTime: a.revisionCreateTime,
    etag: a.etag,
    rolloutState: a.rolloutState,
    baseline: true,
    deleted: false,
    reconciling: a.rolloutState === 'IN_PROGRESS',
    uid: a.uid,
  };
}

const ASSIGNMENT_FIELDS = ['description', 'osPolicies', 'instanceFilter', 'rollout'] as const;

function pick(body: Record<string, unknown>): Record<string, unknown> {
  const normalized = enumsByName(body) as Record<string, unknown>;
  return Object.fromEntries(
    ASSIGNMENT_FIELDS.filter((f) => normalized[f] !== undefined).map((f) => [f, normalized[f]]),
  );
}

function validate(body: Record<string, unknown>): void {
  const policies = body.osPolicies as unknown[] | undefined;
  if (!Array.isArray(policies) || policies.length === 0)
    throw rpcError(400, 'INVALID_ARGUMENT', 'os_policies: at least one OS policy is required');
  if (!body.instanceFilter) throw rpcError(400, 'INVALID_ARGUMENT', 'instance_filter is required');
  if (!body.rollout) throw rpcError(400, 'INVALID_ARGUMENT', 'rollout is required');
  for (const text of JSON.stringify(body).matchAll(/"(content|script)":"((?:[^"\\]|\\.)*)"/g)) {
    if (JSON.parse(`"${text[2]}"`).length > 1024)
      throw rpcError(400, 'INVALID_ARGUMENT', `${text[1]} exceeds 1024 characters`);
  }
}

const newRevision = () => randomBytes(4).toString('hex');

export function osConfigRoutes(world: World): Route[] {
  const L = '/v1/projects/([^/]+)/locations/([^/]+)';
  const assignmentOr404 = (project: string, zone: string, id: string) => {
    const a = world.assignments.get(`projects/${project}/locations/${zone}/osPolicyAssignments/${id}`);
    if (!a)
      throw rpcError(
        404,
        'NOT_FOUND',
        `OSPolicyAssignment projects/${project}/locations/${zone}/osPolicyAssignments/${id} not found`,
      );
    return a;
  };
  // Long-running: the operation is reported done on its first poll.
  const startOperation = (a: SimAssignment, apiMethod: string, response: Record<string, unknown>) => {
    const op = world.operation({
      name: `${a.name}/operations/${randomUUID()}`,
      done: false,
      metadata: {
        '@type': METADATA_TYPE,
        osPolicyAssignment: `${a.name}@${a.revisionId}`,
        apiMethod,
        rolloutState: 'IN_PROGRESS',
        rolloutStartTime: new Date().toISOString(),
      },
      response,
    });
    return { name: op.name, metadata: op.metadata, done: false };
  };

  return [
    route(
      'POST',
      new RegExp(`^${L}/osPolicyAssignments$`),
      'osconfig.osPolicyAssignments.create',
      ({ params: [project, zone], query, body }) => {
        const id = query.get('osPolicyAssignmentId');
        if (!id) throw rpcError(400, 'INVALID_ARGUMENT', 'os_policy_assignment_id is required');
        const name = `projects/${project}/locations/${zone}/osPolicyAssignments/${id}`;
        if (world.assignments.has(name))
          throw rpcError(409, 'ALREADY_EXISTS', `OSPolicyAssignment ${name} already exists`);
        const fields = pick(body ?? {});
        validate(fields);
        const a: SimAssignment = {
          name,
          project: project!,
          zone: zone!,
          id,
          body: fields,
          revisionId: newRevision(),
          revisionCreateTime: new Date().toISOString(),
          rolloutState: 'IN_PROGRESS',
          etag: newRevision(),
          uid: randomUUID(),
        };
        world.assignments.set(name, a);
        return startOperation(a, 'CREATE', { '@type': ASSIGNMENT_TYPE, ...assignmentJson(a) });
      },
    ),
    route(
      'GET',
      new RegExp(`^${L}/osPolicyAssignments$`),
      'osconfig.osPolicyAssignments.list',
      ({ params: [project, zone] }) => ({
        osPolicyAssignments: [...world.assignments.values()]
          .filter((a) => a.project === project && a.zone === zone)
          .map(assignmentJson),
      }),
    ),
    route(
      'GET',
      new RegExp(`^${L}/osPolicyAssignments/([^/]+)$`),
      'osconfig.osPolicyAssignments.get',
      ({ params: [project, zone, id] }) => assignmentJson(assignmentOr404(project!, zone!, id!)),
    ),
    route(
      'PATCH',
      new RegExp(`^${L}/osPolicyAssignments/([^/]+)$`),
      'osconfig.osPolicyAssignments.patch',
      ({ params: [project, zone, id], query, body }) => {
        const a = assignmentOr404(project!, zone!, id!);
        const fields = pick(body ?? {});
        const mask = (query.get('updateMask') ?? '')
          .split(',')
          .filter(Boolean)
          .map((f) => f.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
        const next = {
          ...a.body,
          ...(mask.length ? Object.fromEntries(mask.filter((f) => f in fields).map((f) => [f, fields[f]])) : fields),
        };
        validate(next);
        if (body?.etag && body.etag !== a.etag) throw rpcError(409, 'ABORTED', 'etag mismatch');
        Object.assign(a, {
          body: next,
          revisionId: newRevision(),
          revisionCreateTime: new Date().toISOString(),
          rolloutState: 'IN_PROGRESS',
          etag: newRevision(),
        });
        return startOperation(a, 'UPDATE', { '@type': ASSIGNMENT_TYPE, ...assignmentJson(a) });
      },
    ),
    route(
      'DELETE',
      new RegExp(`^${L}/osPolicyAssignments/([^/]+)$`),
      'osconfig.osPolicyAssignments.delete',
      ({ params: [project, zone, id] }) => {
        const a = assignmentOr404(project!, zone!, id!);
        world.assignments.delete(a.name);
        for (const key of world.reports.keysOfAssignment(a.name)) world.reports.delete(key);
        return startOperation(a, 'DELETE', { '@type': EMPTY_TYPE });
      },
    ),
    route(
      'GET',
      new RegExp(`^${L}/osPolicyAssignments/([^/]+)/operations/([^/]+)$`),
      'osconfig.operations.get',
      ({ params: [project, zone, id, op] }) => {
        const operation = world.operations.get(
          `projects/${project}/locations/${zone}/osPolicyAssignments/${id}/operations/${op}`,
        );
        if (!operation) throw rpcError(404, 'NOT_FOUND', `operation ${op} not found`);
        operation.done = true;
        return { name: operation.name, metadata: operation.metadata, done: true, response: operation.response };
      },
    ),
    route(
      'GET',
      new RegExp(`^${L}/instances/([^/]+)/osPolicyAssignments/([^/]+)/reports$`),
      'osconfig.reports.list',
      ({ params: [project, zone, instance, assignment], query }) => {
        // Only the zone's reports (every zone's for `-`) are looked at, never the whole world's.
        const reports = [...world.reports.inZone(project!, zone!)].filter((r) => {
          const [, p, z, i, a] =
            /^projects\/([^/]+)\/locations\/([^/]+)\/instances\/([^/]+)\/osPolicyAssignments\/([^/]+)\/report$/.exec(
              String(r.name),
            ) ?? [];
          return (
            p === project &&
            (zone === '-' || z === zone) &&
            (instance === '-' || i === instance) &&
            (assignment === '-' || a === assignment)
          );
        });
        const { items, nextPageToken } = paged(reports, query);
        return { osPolicyAssignmentReports: items, nextPageToken };
      },
    ),
    route(
      'GET',
      new RegExp(`^${L}/instances/([^/]+)/osPolicyAssignments/([^/]+)/report$`),
      'osconfig.reports.get',
      ({ params: [project, zone, instance, assignment] }) => {
        const report = world.reports.get(
          `projects/${project}/locations/${zone}/osPolicyAssignments/${assignment}|${instance}`,
        );
        if (!report) throw rpcError(404, 'NOT_FOUND', `report for instance ${instance} not found`);
        return report;
      },
    ),
    route(
      'GET',
      new RegExp(`^${L}/instances/([^/]+)/inventories$`),
      'osconfig.inventories.list',
      ({ params: [project, zone, instance], query }) => {
        const now = new Date();
        const full = query.get('view') === 'FULL' || query.get('view') === '2';
        const vms = (zone === '-' ? world.vms.inProject(project!) : world.vms.inZone(project!, zone!)).filter(
          (vm) => (instance === '-' || vm.id === instance || vm.name === instance) && hasInventory(world, vm),
        );
        // Only the page's inventories are built.
        const { items, nextPageToken } = paged(vms, query);
        return {
          inventories: items.map((vm) => {
            const inv = inventoryOf(world, vm, now)!;
            return full ? inv : { ...inv, items: undefined };
          }),
          nextPageToken,
        };
      },
    ),
    route(
      'GET',
      new RegExp(`^${L}/instances/([^/]+)/inventory$`),
      'osconfig.inventories.get',
      ({ params: [project, zone, instance] }) => {
        const byId = world.vms.get(instance!);
        const vm =
          byId && byId.project === project && byId.zone === zone ? byId : world.findVm(project!, zone!, instance!);
        const inv = vm ? inventoryOf(world, vm) : null;
        if (!inv) throw rpcError(404, 'NOT_FOUND', `inventory for instance ${instance} not found`);
        return inv;
      },
    ),
  ];
}

function paged<T>(all: readonly T[], query: URLSearchParams): { items: T[]; nextPageToken: string } {
  const size = Math.min(Number(query.get('pageSize') ?? 1000) || 1000, 1000);
  const start = Number(query.get('pageToken') ?? 0) || 0;
  const next = start + size < all.length ? String(start + size) : '';
  return { items: all.slice(start, start + size), nextPageToken: next };
}
