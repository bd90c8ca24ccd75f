// Resource Manager v3 (projects and folders under a parent) and Service Usage v1 (services.batchGet): the
// subset the orchestrator uses to turn a folder or organisation target into its active projects, and to
// skip projects whose Compute Engine or OS Config API is off. Projects and folders come from the control
// API (POST /control/projects with `parent`, POST /control/folders); disabled APIs from the
// `disabledApis` fault, which the Compute and OS Config routes answer with 403 SERVICE_DISABLED too.
import { HttpError, route, type Route } from './http.js';
import type { World } from './world.js';

const PAGE_MAX = 1000;
const PARENT = /^(folders|organizations)\/\d{1,20}$/;

function rpcError(code: number, status: string, message: string): HttpError {
  return new HttpError(code, message, { error: { code, message, status } });
}

/** One page of `items` (the token is an offset, as opaque to callers as Google's). */
function page<T>(items: T[], query: URLSearchParams): { items: T[]; nextPageToken?: string } {
  const size = Math.min(Number(query.get('pageSize')) || 500, PAGE_MAX);
  const start = Number(query.get('pageToken') ?? 0) || 0;
  const slice = items.slice(start, start + size);
  return start + size < items.length ? { items: slice, nextPageToken: String(start + size) } : { items: slice };
}

/** Google answers a parent the caller cannot see (or that does not exist) with PERMISSION_DENIED. */
function knownParent(world: World, parent: string | null): string {
  if (!parent || !PARENT.test(parent))
    throw rpcError(400, 'INVALID_ARGUMENT', `parent ${parent} is not a folder or organization`);
  const known =
    world.folders.has(parent) ||
    [...world.folders.values()].some((f) => f.parent === parent) ||
    [...world.projects.values()].some((p) => p.parent === parent);
  if (!known) throw rpcError(403, 'PERMISSION_DENIED', `The caller does not have permission on ${parent}`);
  return parent;
}

export const isServiceDisabled = (world: World, project: string, service: string) =>
  world.faults.disabledApis[project]?.includes(service) ?? false;

/** The 403 Google answers when a project has an API off (ErrorInfo reason SERVICE_DISABLED). */
export function serviceDisabledError(world: World, project: string, service: string, compute: boolean): HttpError {
  const number = world.project(project).number;
  const title = service === 'compute.googleapis.com' ? 'Compute Engine API' : 'OS Config API';
  const message =
    `${title} has not been used in project ${number} before or it is disabled. Enable it by visiting ` +
    `https://console.developers.google.com/apis/api/${service}/overview?project=${number} then retry.`;
  const details = [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'SERVICE_DISABLED',
      domain: 'googleapis.com',
      metadata: { service, consumer: `projects/${number}` },
    },
  ];
  return new HttpError(403, message, {
    error: {
      code: 403,
      message,
      // Compute (an older API) also lists the legacy `errors`; both carry the gRPC status and details.
      ...(compute ? { errors: [{ message, domain: 'usageLimits', reason: 'accessNotConfigured' }] } : {}),
      status: 'PERMISSION_DENIED',
      details,
    },
  });
}

export function resourceManagerRoutes(world: World): Route[] {
  const projectJson = (id: string) => {
    const p = world.projects.get(id)!;
    return {
      name: `projects/${p.number}`,
      parent: p.parent ?? undefined,
      projectId: p.id,
      state: p.state,
      displayName: p.id,
    };
  };
  return [
    route('GET', /^\/v3\/projects$/, 'resourcemanager.projects.list', ({ query }) => {
      const parent = knownParent(world, query.get('parent'));
      const showDeleted = query.get('showDeleted') === 'true';
      const children = [...world.projects.values()]
        .filter((p) => p.parent === parent && (showDeleted || p.state === 'ACTIVE'))
        .map((p) => p.id)
        .sort();
      const { items, nextPageToken } = page(children, query);
      return { projects: items.map(projectJson), ...(nextPageToken ? { nextPageToken } : {}) };
    }),
    route('GET', /^\/v3\/folders$/, 'resourcemanager.folders.list', ({ query }) => {
      const parent = knownParent(world, query.get('parent'));
      const showDeleted = query.get('showDeleted') === 'true';
      const children = [...world.folders.values()]
        .filter((f) => f.parent === parent && (showDeleted || f.state === 'ACTIVE'))
        .sort((a, b) => a.displayName.localeCompare(b.displayName));
      const { items, nextPageToken } = page(children, query);
      return { folders: items, ...(nextPageToken ? { nextPageToken } : {}) };
    }),
    route(
      'GET',
      /^\/v1\/projects\/([^/]+)\/services:batchGet$/,
      'serviceusage.services.batchGet',
      ({ params: [project], query }) => {
        const p = world.projects.get(project!);
        if (!p) throw rpcError(403, 'PERMISSION_DENIED', `Permission denied to get services of project ${project}`);
        const names = query.getAll('names');
        if (names.length === 0 || names.length > 30)
          throw rpcError(400, 'INVALID_ARGUMENT', 'between 1 and 30 names are required');
        return {
          services: names.map((name) => {
            const m = /^projects\/([^/]+)\/services\/([^/]+)$/.exec(name);
            if (!m || (m[1] !== p.id && m[1] !== p.number))
              throw rpcError(400, 'INVALID_ARGUMENT', `${name} is not a service of projects/${project}`);
            return {
              name: `projects/${p.number}/services/${m[2]}`,
              parent: `projects/${p.number}`,
              config: { name: m[2] },
              state: isServiceDisabled(world, p.id, m[2]!) ? 'DISABLED' : 'ENABLED',
            };
          }),
        };
      },
    ),
  ];
}
