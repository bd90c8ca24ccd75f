// `osq-orch publish`: bundle -> version -> Cloud Storage -> rollouts/{version} -> a staged rollout (the
// first stage's zones get the version, every other zone keeps the baseline), or every zone at once.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { renderSettings, required } from '../config.js';
import { log } from '../log.js';
import { parsePlan, resolveStages, zoneKey, type RolloutPlan } from '../domain/rollout-plan.js';
import type { Actor, StagedRollout } from '../domain/rollout.js';
import { policyConfigOf } from '../domain/policy.js';
import { checkPublish, publishTransition } from '../domain/rollout-transition.js';
import { loadBundle, DEFAULT_BUNDLE_DIR, objectNameOf } from '../osquery/bundle.js';
import { formatFinding, lintBundle } from '../osquery/lint.js';
import { lintOptionsFor } from '../osquery/lint-policy.js';
import type { OsquerySchema } from '../osquery/schema.js';
import { renderBundle, type RenderedConfig } from '../osquery/render.js';
import * as rollouts from '../adapters/rollouts.js';
import * as storage from '../adapters/storage.js';
import { fleetZones } from './assignments.js';
import { applyTransition, readConfigurationState } from './rollout-apply.js';
import { resolveTargets } from './targets.js';

/** The rollout plan beside the bundle (shared/osquery/rollout.json). */
export const DEFAULT_PLAN_FILE = path.resolve(import.meta.dirname, '../osquery/rollout.json');

/** Reads and validates a rollout plan; PlanInvalid names every problem before anything is published. */
export async function loadPlan(file: string = DEFAULT_PLAN_FILE): Promise<RolloutPlan> {
  const relative = path.relative(process.cwd(), file);
  return parsePlan(await readFile(file, 'utf8'), relative && !relative.startsWith('..') ? relative : file);
}

export interface PublishReport {
  configVersion: string;
  uploaded: number;
  reused: number;
  recorded: boolean;
  /** How the version goes out, and why when it is not staged. */
  rollout: {
    mode: StagedRollout['mode'];
    status: StagedRollout['status'];
    baseline: string | null;
    /** Each stage and its zones (staged); the first one got the version. */
    stages: Array<{ name: string; zones: string[]; hosts: number; bakeMinutes: number }>;
    skipped: Array<{ name: string; reason: string }>;
    note: string | null;
  };
  zones: { created: string[]; updated: string[]; unchanged: string[] };
  /** Zones whose assignment failed (the next audit brings them), and projects that could not be listed. */
  failedZones: Record<string, string>;
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
  /** Today's behaviour, for emergencies: every zone gets the version now, no canary, no gates, no rollback. */
  allAtOnce?: boolean;
  /** The rollout plan (default: loaded from planFile, validated before anything is uploaded). */
  plan?: RolloutPlan;
  planFile?: string;
  /** Who publishes and why (recorded in the rollout's history). */
  actor?: Actor;
  now?: Date;
}

export async function publish(options: PublishOptions = {}): Promise<PublishReport> {
  const now = options.now ?? new Date();
  const actor = options.actor ?? { by: process.env.USER ?? 'osq-orch', reason: '' };
  // The plan is checked before anything is uploaded or recorded (an emergency all-at-once needs none).
  const plan = options.allAtOnce ? null : (options.plan ?? (await loadPlan(options.planFile)));
  const bundle = await loadBundle(options.bundleDir ?? DEFAULT_BUNDLE_DIR);
  if (options.schema) {
    // The file's thresholds apply, but the performance policy is never off for what reaches the fleet.
    const lint = lintBundle(bundle, options.schema, lintOptionsFor(bundle, { policy: 'on' }));
    const errors = lint.findings.filter((f) => f.severity === 'error');
    if (errors.length > 0) throw new BundleRejected(errors.map(formatFinding));
  }
  const rendered = renderBundle(bundle, renderSettings());
  const version = rendered.configVersion;
  const { state, currentRecord, rolloutRecord } = await readConfigurationState();
  checkPublish(state, version, Boolean(options.allAtOnce));

  const needsBucket = rendered.files.some((f) => f.viaStorage);
  const bucket = needsBucket ? required('CONFIG_BUCKET') : null;
  const { generations, uploaded, reused } = bucket
    ? await upload(rendered, bucket)
    : { generations: {}, uploaded: 0, reused: 0 };
  const policy = policyConfigOf(rendered, bucket ?? '', generations);
  const published: rollouts.PublishedFields = {
    configVersion: version,
    bucket,
    files: rendered.files.map((f) => ({
      source: f.source,
      vmPath: f.vmPath,
      sha256: f.sha256,
      size: f.content.length,
      ...(f.viaStorage ? { object: objectNameOf(version, f.source), generation: generations[f.source] } : {}),
    })),
    policyConfig: policy,
  };
  const projects = options.projects ?? (await resolveTargets(required('TARGET_PROJECTS'))).projects;
  const fleet = await fleetZones(projects);

  const record =
    version === state.current.configVersion
      ? currentRecord
      : version === state.current.rollout
        ? rolloutRecord
        : await rollouts.getRollout(version);
  // An object of the version deleted since it was published was uploaded again, at a new generation: the
  // record (and every zone at the version) must pin the new one.
  const republished = Boolean(
    record &&
    published.files.some(
      (f) => f.generation && record.files.find((r) => r.source === f.source)?.generation !== f.generation,
    ),
  );
  const planned = publishTransition(state, {
    version,
    previous: record?.staged ?? null,
    republished,
    allAtOnce: Boolean(options.allAtOnce),
    stages: () => ({ ...resolveStages(plan!, version, fleet.zones), observe: plan!.observe }),
    actor,
    now,
  });
  let osConfigWrites = 0;
  const applied = await applyTransition(planned.transition, {
    published,
    fleet: async () => fleet.zones.map((z) => zoneKey(z.project, z.zone)),
    onWrite: () => (osConfigWrites += 1),
  });
  if (!applied.committed)
    throw new rollouts.RolloutConflict(
      'config/current changed meanwhile (another publish or a decision): run it again',
    );
  if (record && planned.recorded && !republished)
    log.info({ configVersion: version }, 'publish: the version was published before; a new rollout of it starts');
  const staged = planned.rollout;
  const note = planned.note;
  const brought = applied.zones;
  const report: PublishReport = {
    configVersion: version,
    uploaded,
    reused,
    recorded: planned.recorded,
    rollout: {
      mode: staged.mode,
      status: staged.status,
      baseline: staged.baseline,
      stages: staged.stages.map((s) => ({ name: s.name, zones: s.zones, hosts: s.hosts, bakeMinutes: s.bakeMinutes })),
      skipped: staged.skipped,
      note,
    },
    zones: { created: brought.created, updated: brought.updated, unchanged: brought.unchanged },
    failedZones: brought.failed,
    failedProjects: fleet.failed,
    osConfigWrites,
  };
  if (note) log.warn({ configVersion: version, mode: staged.mode }, note);
  log.info({ ...report }, 'publish done');
  return report;
}
