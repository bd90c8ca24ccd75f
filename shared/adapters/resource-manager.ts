// Resource Manager v3 (the projects and folders under a folder or organisation) and Service Usage v1
// (whether a project has an API on), over REST through google-auth-library: two GET methods each, too
// few to bring in two more client libraries. The local simulator speaks the same paths.
import { clients } from '../clients.js';
import { withRetry } from '../errors.js';
import { countApiCall } from '../metrics.js';
import { familyOfMethod } from '../domain/api-budget.js';
import { spendApiBudget } from './api-budget.js';

const RESOURCE_MANAGER = 'cloudresourcemanager.googleapis.com';
const SERVICE_USAGE = 'serviceusage.googleapis.com';

async function get<T>(host: string, path: string, query: Array<[string, string]>, method: string): Promise<T> {
  const api = await clients.googleApis();
  const url = `${api.baseUrl(host)}${path}?${new URLSearchParams(query).toString()}`;
  const family = familyOfMethod(method);
  return withRetry(async () => {
    if (family) await spendApiBudget(family); // the global API budget, every attempt
    countApiCall(method);
    return (await api.request<T>({ url })).data;
  });
}

/** Every page of a v3 list method under `parent`. */
async function listAll<T>(collection: 'projects' | 'folders', parent: string): Promise<T[]> {
  const out: T[] = [];
  let pageToken = '';
  do {
    const page = await get<Record<string, unknown> & { nextPageToken?: string }>(
      RESOURCE_MANAGER,
      `/v3/${collection}`,
      [['parent', parent], ['pageSize', '1000'], ...(pageToken ? [['pageToken', pageToken] as [string, string]] : [])],
      `resourcemanager.${collection}.list`,
    );
    out.push(...((page[collection] as T[] | undefined) ?? []));
    pageToken = page.nextPageToken ?? '';
  } while (pageToken);
  return out;
}

/** Ids of the ACTIVE projects directly under a folder or organisation (resourcemanager.projects.list). */
export async function listChildProjects(parent: string): Promise<string[]> {
  const projects = await listAll<{ projectId: string; state?: string }>('projects', parent);
  return projects.filter((p) => p.state === undefined || p.state === 'ACTIVE').map((p) => p.projectId);
}

/** Names (`folders/N`) of the ACTIVE folders directly under a folder or organisation (resourcemanager.folders.list). */
export async function listChildFolders(parent: string): Promise<string[]> {
  const folders = await listAll<{ name: string; state?: string }>('folders', parent);
  return folders.filter((f) => f.state === undefined || f.state === 'ACTIVE').map((f) => f.name);
}

/** The state (ENABLED, DISABLED) of each service in a project, one call (serviceusage.services.get). */
export async function serviceStates(project: string, services: readonly string[]): Promise<Record<string, string>> {
  const { services: found = [] } = await get<{ services?: Array<{ name: string; state: string }> }>(
    SERVICE_USAGE,
    `/v1/projects/${encodeURIComponent(project)}/services:batchGet`,
    services.map((s) => ['names', `projects/${project}/services/${s}`]),
    'serviceusage.services.batchGet',
  );
  return Object.fromEntries(found.map((s) => [s.name.slice(s.name.lastIndexOf('/') + 1), s.state]));
}
