// The projects an audit run (or a publish) covers: TARGET_PROJECTS' project ids, plus the active projects
// under each folder or organisation it names (subfolders included), resolved through Resource Manager at
// the start of each run; then each project's Compute Engine and OS Config APIs checked through Service
// Usage, so a project without them is skipped with the reason instead of failing every run. What Service
// Usage said is kept for SERVICE_USAGE_CACHE_HOURS (serviceStates/{project}): a run asks only about the
// projects it has not heard of lately.
import { config, ConfigError } from '../config.js';
import { isTransient } from '../errors.js';
import { log } from '../log.js';
import { mapLimit } from '../rate.js';
import { isProjectId } from '../domain/ids.js';
import { isTargetParent, REQUIRED_SERVICES, skipReason } from '../domain/targets.js';
import * as resourceManager from '../adapters/resource-manager.js';
import * as serviceStates from '../adapters/service-states.js';

export interface ResolvedTargets {
  /** Projects to audit: the listed ones in their order, then the discovered ones, sorted; each once. */
  projects: string[];
  /** Projects left out, with why (an API off). */
  skipped: Record<string, string>;
}

/** Folders (or an organisation) listed at once; Resource Manager's read quota is generous. */
const LISTING_CONCURRENCY = 8;
const SERVICE_CHECK_CONCURRENCY = 16;

/**
 * The active projects under a folder or organisation, level by level through its subfolders. A parent
 * that cannot be listed (permission denied, unknown) is a deployment error: the run's scope would be
 * unknown, so it fails loudly (a ConfigError: the tick is redelivered) instead of auditing less.
 */
async function projectsUnder(parent: string): Promise<string[]> {
  const projects: string[] = [];
  const seen = new Set<string>([parent]);
  let level = [parent];
  try {
    while (level.length > 0) {
      const listed = await mapLimit(level, LISTING_CONCURRENCY, async (node) => ({
        projects: await resourceManager.listChildProjects(node),
        folders: await resourceManager.listChildFolders(node),
      }));
      projects.push(...listed.flatMap((l) => l.projects));
      level = [...new Set(listed.flatMap((l) => l.folders))].filter((f) => !seen.has(f));
      for (const f of level) seen.add(f);
    }
  } catch (error) {
    if (isTransient(error)) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(
      `TARGET_PROJECTS names ${parent}, whose projects cannot be listed (resourcemanager.projects.list and ` +
        `resourcemanager.folders.list on it): ${reason}`,
    );
  }
  return projects;
}

/**
 * Why a project is skipped, or null: from the cached states when fresh, else from Service Usage (then
 * cached). A project whose services cannot be read is audited (its shard tells) and nothing is cached.
 */
async function skipReasonOf(project: string, cached: Record<string, string> | undefined): Promise<string | null> {
  if (cached) return skipReason(cached);
  try {
    const states = await resourceManager.serviceStates(project, REQUIRED_SERVICES);
    await serviceStates.saveServiceStates(project, states, new Date());
    return skipReason(states);
  } catch (error) {
    if (isTransient(error)) throw error;
    log.warn(
      { project, reason: error instanceof Error ? error.message : String(error) },
      "targets: cannot read the project's enabled APIs (serviceusage.services.get); it is audited anyway",
    );
    return null;
  }
}

/** TARGET_PROJECTS (project ids, folders/N, organizations/N) -> the projects to audit and the skipped ones. */
export async function resolveTargets(targets: readonly string[]): Promise<ResolvedTargets> {
  const listed = targets.filter(isProjectId);
  const discovered: string[] = [];
  for (const parent of targets.filter(isTargetParent)) discovered.push(...(await projectsUnder(parent)));
  const candidates = [...new Set([...listed, ...[...new Set(discovered)].sort()])];
  const cacheMs = config().SERVICE_USAGE_CACHE_HOURS * 3_600_000;
  const cached =
    cacheMs > 0 ? await serviceStates.cachedServiceStates(candidates, new Date(Date.now() - cacheMs)) : new Map();
  const reasons = await mapLimit(candidates, SERVICE_CHECK_CONCURRENCY, (p) => skipReasonOf(p, cached.get(p)));
  const resolved: ResolvedTargets = { projects: [], skipped: {} };
  candidates.forEach((project, i) => {
    if (reasons[i]) resolved.skipped[project] = reasons[i];
    else resolved.projects.push(project);
  });
  const parents = targets.filter(isTargetParent);
  if (parents.length > 0 || Object.keys(resolved.skipped).length > 0)
    log.info(
      { parents, discovered: discovered.length, projects: resolved.projects.length, skipped: resolved.skipped },
      'targets resolved',
    );
  return resolved;
}
