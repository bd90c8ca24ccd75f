// `osq-orch publish`: bundle -> version -> Cloud Storage -> rollouts/{version} -> a staged rollout (the
// first stage's zones get the version, every other zone keeps the baseline), or every zone at once.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { config, renderSettings, required } from '../config.js';
import { log } from '../log.js';
import { perMinuteLimiter } from '../rate.js';
import { parsePlan, resolveStages, zoneKey, type RolloutPlan } from '../domain/rollout-plan.js';
import {
  allAtOnce,
  decide,
  LIVE,
  newRollout,
  planOfZones,
  RolloutRefused,
  type Actor,
  type StagedRollout,
} from '../domain/rollout.js';
import { loadBundle, DEFAULT_BUNDLE_DIR } from '../osquery/bundle.js';
import { formatFinding, lintBundle } from '../osquery/lint.js';
import { lintOptionsFor } from '../osquery/lint-policy.js';
import type { OsquerySchema } from '../osquery/schema.js';
import { objectNameOf, policyConfigOf, renderBundle, type RenderedConfig } from '../osquery/render.js';
import * as rollouts from '../adapters/rollouts.js';
import * as storage from '../adapters/storage.js';
import { bringZones, fleetZones } from './assignments.js';
import { endHaltEpisode } from './rollout.js';
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
  const { current, currentRecord, rolloutRecord } = await rollouts.readConfiguration();
  const under = rolloutRecord?.staged ?? null;
  if (
    under &&
    under.configVersion === version &&
    (under.status === 'halted' || under.status === 'rolled-back') &&
    !options.allAtOnce
  )
    throw new RolloutRefused(
      `${version} was ${under.status} at stage ${under.stages[under.stage]?.name}: only an operator resumes it ` +
        '(osq-orch rollout resume --reason ...)',
    );
  if (under && LIVE.has(under.status) && under.configVersion !== version && !options.allAtOnce)
    throw new RolloutRefused(
      `the rollout of ${under.configVersion} is ${under.status} at stage ${under.stages[under.stage]?.name}: ` +
        'let it complete, or roll it back (osq-orch rollout rollback), before publishing another version ' +
        '(publish --all-at-once replaces it, for emergencies)',
    );

  const needsBucket = rendered.files.some((f) => f.viaStorage);
  const bucket = needsBucket ? required('CONFIG_BUCKET') : null;
  const { generations, uploaded, reused } = bucket
    ? await upload(rendered, bucket)
    : { generations: {}, uploaded: 0, reused: 0 };
  const policy = policyConfigOf(rendered, bucket ?? '', generations);
  const published = {
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

  // What this publish records: nothing new when the version is already current or already rolling out.
  const existing =
    version === current.configVersion ? currentRecord : version === current.rollout ? rolloutRecord : null;
  let staged: StagedRollout;
  let recorded = false;
  let note: string | null = null;
  if (existing?.staged && (version === current.configVersion || LIVE.has(existing.staged.status))) {
    staged = existing.staged;
  } else {
    const previous = existing?.staged ?? (await rollouts.getRollout(version))?.staged ?? null;
    const revision = previous?.revision ?? 0;
    const baseline = current.configVersion === version ? (previous?.baseline ?? null) : current.configVersion;
    if (options.allAtOnce || !baseline) {
      note = options.allAtOnce
        ? 'published all at once (--all-at-once): every zone gets it now; no canary, no gates, no automatic rollback'
        : 'nothing was published before: no baseline to roll back to, so every zone gets it now';
      staged = allAtOnce({
        version,
        baseline,
        actor: { ...actor, reason: actor.reason || note },
        now,
        revision,
        history: previous?.history,
      });
    } else {
      const resolution = resolveStages(plan!, version, fleet.zones);
      staged = newRollout({
        version,
        baseline,
        stages: resolution.stages,
        skipped: resolution.skipped,
        observe: plan!.observe,
        actor,
        now,
        revision,
      });
    }
    // A rollout under way of another version (halted, rolled back, or replaced all at once) ends here.
    const superseded =
      under && under.configVersion !== version && under.status !== 'superseded' && under.status !== 'completed'
        ? decide(under, { kind: 'supersede', by: version }, actor, now)
        : null;
    const start = await rollouts.recordRolloutStart(published, staged, current, superseded);
    // A halted rollout left behind by this publish: its alert episode ends.
    if (under?.halt && under.status === 'halted' && superseded) await endHaltEpisode(under, now);
    recorded = true;
    if (!start.created)
      log.info({ configVersion: version }, 'publish: the version was published before; a new rollout of it starts');
  }

  const nextCurrent = staged.status === 'completed' ? version : current.configVersion;
  const versionOf = planOfZones(nextCurrent, staged);
  const records = new Map<string, rollouts.RolloutRecord>();
  for (const v of new Set([version, nextCurrent].filter((x): x is string => Boolean(x)))) {
    const record = await rollouts.getRollout(v);
    if (record) records.set(v, record);
  }
  const limiter = perMinuteLimiter(config().OSCONFIG_WRITES_PER_MINUTE);
  let osConfigWrites = 0;
  const brought = await bringZones(
    fleet.zones.map((z) => zoneKey(z.project, z.zone)),
    versionOf,
    records,
    async () => {
      await limiter.take();
      osConfigWrites += 1;
    },
  );
  const report: PublishReport = {
    configVersion: version,
    uploaded,
    reused,
    recorded,
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
