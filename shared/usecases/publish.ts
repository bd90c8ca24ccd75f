// `osq-orch publish`: bundle -> version -> Cloud Storage -> rollouts/{version} -> every zone's assignment.
import { config, policySettings, renderSettings, required } from '../config.js';
import { log } from '../log.js';
import { isPermissionDenied } from '../errors.js';
import { mapLimit, perMinuteLimiter } from '../rate.js';
import { decideScope } from '../domain/scope.js';
import { loadBundle, DEFAULT_BUNDLE_DIR } from '../osquery/bundle.js';
import { formatFinding, lintBundle } from '../osquery/lint.js';
import { lintOptionsFor } from '../osquery/lint-policy.js';
import type { OsquerySchema } from '../osquery/schema.js';
import { objectNameOf, policyConfigOf, renderBundle, type RenderedConfig } from '../osquery/render.js';
import * as compute from '../adapters/compute.js';
import * as rollouts from '../adapters/rollouts.js';
import * as storage from '../adapters/storage.js';
import { reconcileZoneAssignment } from './assignments.js';
import { resolveTargets } from './targets.js';

export interface PublishReport {
  configVersion: string;
  uploaded: number;
  reused: number;
  recorded: boolean;
  zones: { created: string[]; updated: string[]; unchanged: string[] };
  failedProjects: Record<string, string>;
  osConfigWrites: number;
}

/** Uploads the files over the inline limit; returns their generations. */
async function upload(
  rendered: RenderedConfig,
  bucket: string,
): Promise<{ generations: Record<string, string>; uploaded: number; reused: number }> {
  const generations: Record<string, string> = {};
  let uploaded = 0;
  for (const f of rendered.files.filter((file) => file.viaStorage)) {
    const stored = await storage.ensureObject(bucket, objectNameOf(rendered.configVersion, f.source), f.content);
    generations[f.source] = stored.generation;
    if (stored.uploaded) uploaded += 1;
  }
  return { generations, uploaded, reused: Object.keys(generations).length - uploaded };
}

/** Zones of a project that hold in-scope VMs: they need the assignment. */
async function zonesNeedingAssignment(project: string): Promise<string[]> {
  const settings = policySettings();
  const vms = await compute.listProjectVms(project);
  return [...new Set(vms.filter((vm) => decideScope(vm, settings).inScope).map((vm) => vm.zone))].sort();
}

export class BundleRejected extends Error {
  override name = 'BundleRejected';
  constructor(readonly findings: string[]) {
    super(`the bundle has ${findings.length} lint error(s):\n${findings.join('\n')}`);
  }
}

export interface PublishOptions {
  bundleDir?: string;
  projects?: string[];
  /**
   * Lint against this schema first and refuse a bundle with errors: the thresholds of the bundle's
   * lint-policy.json apply, the policy is always on.
   */
  schema?: OsquerySchema;
}

export async function publish(options: PublishOptions = {}): Promise<PublishReport> {
  const bundle = await loadBundle(options.bundleDir ?? DEFAULT_BUNDLE_DIR);
  if (options.schema) {
    // The file's thresholds apply, but the performance policy is never off for what reaches the fleet.
    const lint = lintBundle(bundle, options.schema, lintOptionsFor(bundle, { policy: 'on' }));
    const errors = lint.findings.filter((f) => f.severity === 'error');
    if (errors.length > 0) throw new BundleRejected(errors.map(formatFinding));
  }
  const rendered = renderBundle(bundle, renderSettings());
  const needsBucket = rendered.files.some((f) => f.viaStorage);
  const bucket = needsBucket ? required('CONFIG_BUCKET') : null;
  const { generations, uploaded, reused } = bucket
    ? await upload(rendered, bucket)
    : { generations: {}, uploaded: 0, reused: 0 };
  const policy = policyConfigOf(rendered, bucket ?? '', generations);
  const { created, madeCurrent } = await rollouts.recordPublished({
    configVersion: rendered.configVersion,
    bucket,
    files: rendered.files.map((f) => ({
      source: f.source,
      vmPath: f.vmPath,
      sha256: f.sha256,
      size: f.content.length,
      ...(f.viaStorage
        ? { object: objectNameOf(rendered.configVersion, f.source), generation: generations[f.source] }
        : {}),
    })),
    policyConfig: policy,
  });

  const report: PublishReport = {
    configVersion: rendered.configVersion,
    uploaded,
    reused,
    recorded: created || madeCurrent,
    zones: { created: [], updated: [], unchanged: [] },
    failedProjects: {},
    osConfigWrites: 0,
  };
  const limiter = perMinuteLimiter(config().OSCONFIG_WRITES_PER_MINUTE);
  const takeWrite = async () => {
    await limiter.take();
    report.osConfigWrites += 1;
  };
  const recorded = (await rollouts.getRollout(rendered.configVersion))?.zones ?? {};
  for (const project of options.projects ?? (await resolveTargets(required('TARGET_PROJECTS'))).projects) {
    try {
      const zones = await zonesNeedingAssignment(project);
      // Reads in parallel (bounded); writes paced by the quota limiter.
      const outcomes = await mapLimit(zones, 4, (zone) =>
        reconcileZoneAssignment(project, zone, policy, takeWrite, recorded[`${project}/${zone}`]),
      );
      zones.forEach((zone, i) => report.zones[outcomes[i]!].push(`${project}/${zone}`));
    } catch (error) {
      // One project failing (permission denied, API disabled) does not stop the others.
      report.failedProjects[project] = error instanceof Error ? error.message : String(error);
      log.error(
        { project, reason: report.failedProjects[project], permissionDenied: isPermissionDenied(error) },
        'publish: project failed',
      );
    }
  }
  log.info({ ...report }, 'publish done');
  return report;
}
