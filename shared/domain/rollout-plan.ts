// The progressive rollout plan (shared/osquery/rollout.json): ordered stages, each selecting zones, a
// bake time and the health gates a stage must pass before the next one starts. Validated whole before
// anything is published; resolved to zones (pure, deterministic) when a rollout starts.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isProjectId, isZone } from './ids.js';

const percent = (what: string) =>
  z
    .number({ message: `${what}: expected a number` })
    .min(0, `${what}: a percentage from 0 to 100`)
    .max(100, `${what}: a percentage from 0 to 100`);

/** The health gates: each holds while its value stays at or below its threshold. */
const gatesSchema = z.strictObject({
  /** Share of the targeted hosts (in the stages reached) that went noncompliant on the target version. */
  noncompliant: z.strictObject({ maxPercent: percent('maxPercent') }),
  /** Share of the targeted hosts that went silent on the target version. */
  silent: z.strictObject({ maxPercent: percent('maxPercent') }),
  /** Share of the targeted hosts with a Cloud Monitoring incident opened on the target version during the rollout. */
  incidents: z.strictObject({ maxPercent: percent('maxPercent') }),
  /** Share of the targeted hosts whose osqueryd worker used more than cpuPercent of a core (heartbeat telemetry). */
  osquerydCpu: z.strictObject({
    cpuPercent: z.number().gt(0, 'cpuPercent: above 0').max(100, 'cpuPercent: at most 100 (one core)'),
    maxPercent: percent('maxPercent'),
  }),
  /** Share of the targeted hosts whose osqueryd worker's resident memory is above rssMiB. */
  osquerydMemory: z.strictObject({
    rssMiB: z.number().int().min(1, 'rssMiB: at least 1').max(65_536, 'rssMiB: at most 65536'),
    maxPercent: percent('maxPercent'),
  }),
  /** Queries of the target version osquery's watchdog denylisted on some host. */
  denylistedQueries: z.strictObject({
    max: z.number().int('max: a whole number').min(0, 'max: 0 or more').max(1000, 'max: at most 1000'),
  }),
  /**
   * Log bytes per host and day the target's hosts ship, as a percent increase over the baseline's hosts
   * (shared/domain/log-volume.ts). Optional: a rollout started before the gate existed is not judged by it.
   */
  logVolume: z
    .strictObject({
      maxIncreasePercent: z
        .number({ message: 'maxIncreasePercent: expected a number' })
        .min(0, 'maxIncreasePercent: 0 or more')
        .max(10_000, 'maxIncreasePercent: at most 10000'),
    })
    .optional(),
});
export type Gates = z.infer<typeof gatesSchema>;
export type GateName = keyof Gates;
export const GATE_NAMES = [
  'noncompliant',
  'silent',
  'incidents',
  'osquerydCpu',
  'osquerydMemory',
  'denylistedQueries',
  'logVolume',
] as const satisfies readonly GateName[];

const zoneRef = z.string().refine((v) => {
  const [project, zone, ...rest] = v.split('/');
  return rest.length === 0 && isProjectId(project ?? '') && isZone(zone ?? '');
}, 'expected project/zone (e.g. acme-prod/us-central1-a)');
const projectId = z.string().refine(isProjectId, 'expected a project id');
const label = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}=[a-z0-9_-]{0,63}$/, 'expected key=value with Compute label characters');

/** What a stage selects: exactly one of these. */
const selectSchema = z
  .strictObject({
    zones: z.array(zoneRef).min(1, 'zones is empty: list at least one project/zone'),
    projects: z.array(projectId).min(1, 'projects is empty: list at least one project'),
    label,
    percent: z
      .number()
      .gt(0, 'percent: above 0 (a stage must add zones)')
      .max(100, 'percent: a percentage from 0 to 100'),
  })
  .partial()
  .refine((s) => Object.keys(s).length === 1, {
    message: 'select exactly one of zones, projects, label or percent (an empty stage selects nothing)',
  });
export type Selection = z.infer<typeof selectSchema>;

const stageSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9%._-]{0,39}$/, 'expected a short name (letters, digits, %._-)'),
  select: selectSchema,
  bakeMinutes: z.number().min(0, 'bakeMinutes: 0 or more').max(10_080, 'bakeMinutes: at most a week (10080)'),
  /** This stage's own thresholds, gate by gate (the others are the plan's). */
  gates: gatesSchema.partial().optional(),
});

const observeSchema = z.strictObject({
  /** Share of a stage's hosts that must have reported on the target version before it may be promoted. */
  minPercent: percent('minPercent'),
  /** Hosts on the target version, across the stages reached, before any promotion. */
  minHosts: z.number().int().min(0, 'minHosts: 0 or more'),
});

export const planSchema = z
  .strictObject({
    stages: z.array(stageSchema).min(1, 'stages is empty: a plan has at least one stage').max(20, 'at most 20 stages'),
    gates: gatesSchema,
    observe: observeSchema,
  })
  .superRefine((plan, ctx) => {
    const names = new Set<string>();
    let lastPercent = 0;
    plan.stages.forEach((stage, i) => {
      if (names.has(stage.name))
        ctx.addIssue({ code: 'custom', path: ['stages', i, 'name'], message: `stage name ${stage.name} repeats` });
      names.add(stage.name);
      const p = stage.select.percent;
      if (p !== undefined) {
        if (p <= lastPercent)
          ctx.addIssue({
            code: 'custom',
            path: ['stages', i, 'select', 'percent'],
            message: `percent ${p} does not grow (an earlier stage already reaches ${lastPercent}%)`,
          });
        lastPercent = Math.max(lastPercent, p);
      }
    });
    if (plan.stages.at(-1)?.select.percent !== 100)
      ctx.addIssue({
        code: 'custom',
        path: ['stages', plan.stages.length - 1, 'select'],
        message: 'the last stage must reach every zone: select {"percent": 100}',
      });
  });
export type RolloutPlan = z.infer<typeof planSchema>;
export type PlanStage = RolloutPlan['stages'][number];

export class PlanInvalid extends Error {
  override name = 'PlanInvalid';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`rollout plan ${source} is invalid:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/** `stages[1] (10%).select.percent` from an issue's path. */
function where(path: PropertyKey[], input: unknown): string {
  let out = '';
  let node: unknown = input;
  for (const key of path) {
    out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
    node = node && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined;
    if (
      typeof key === 'number' &&
      node &&
      typeof node === 'object' &&
      typeof (node as { name?: unknown }).name === 'string'
    )
      out += ` (${(node as { name: string }).name})`;
  }
  return out || '(plan)';
}

/** Pure: a plan from its JSON text, or PlanInvalid naming every problem (file, field, why). */
export function parsePlan(text: string, source: string): RolloutPlan {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PlanInvalid(source, [`not JSON: ${(error as Error).message}`]);
  }
  const result = planSchema.safeParse(json);
  if (!result.success)
    throw new PlanInvalid(
      source,
      result.error.issues.map(
        (i) => `${where(i.path, json)}: ${/received undefined$/.test(i.message) ? 'missing' : i.message}`,
      ),
    );
  return result.data;
}

// --- Resolving the stages to zones ------------------------------------------------------------------

/** A zone of the fleet when the rollout starts: its in-scope hosts and the labels they carry. */
export interface FleetZone {
  project: string;
  zone: string;
  /** In-scope VMs in the zone. */
  hosts: number;
  /** `key=value` of every label some in-scope VM of the zone carries. */
  labels: ReadonlySet<string>;
}

export const zoneKey = (project: string, zone: string) => `${project}/${zone}`;

/** Pure: the zones holding in-scope VMs, with their host counts and labels. */
export function fleetZonesOf(
  vms: Array<{ project: string; zone: string; labels: Record<string, string> }>,
): FleetZone[] {
  const zones = new Map<string, { project: string; zone: string; hosts: number; labels: Set<string> }>();
  for (const vm of vms) {
    const key = zoneKey(vm.project, vm.zone);
    let z = zones.get(key);
    if (!z) zones.set(key, (z = { project: vm.project, zone: vm.zone, hosts: 0, labels: new Set() }));
    z.hosts += 1;
    for (const [k, v] of Object.entries(vm.labels)) z.labels.add(`${k}=${v}`);
  }
  return [...zones.values()].sort((a, b) => zoneKey(a.project, a.zone).localeCompare(zoneKey(b.project, b.zone)));
}

/** A stage as the rollout record keeps it: its zones fixed when the rollout started. */
export interface ResolvedStage {
  name: string;
  bakeMinutes: number;
  gates: Gates;
  /** `project/zone`, in the order they were chosen. */
  zones: string[];
  /** In-scope VMs in those zones when the rollout started. */
  hosts: number;
}

export interface Resolution {
  stages: ResolvedStage[];
  /** Stages that selected no zone not already taken, with why: they are left out of the rollout. */
  skipped: Array<{ name: string; reason: string }>;
}

/** The order in which percentage stages take zones: a hash of the version and the zone, stable per version. */
const rank = (version: string, key: string) => createHash('sha256').update(`${version}:${key}`).digest('hex');

/**
 * Pure: each stage's zones. A zone belongs to the first stage that selects it. `zones` and `projects`
 * take the listed ones that hold in-scope VMs; `label` the zones where some in-scope VM carries it;
 * `percent` brings the share of zones reached to that percentage (rounded up), taking the remaining
 * zones in the order of a hash of the version and the zone (so each version canaries other zones,
 * and the same publish always picks the same ones). A stage that adds no zone is skipped.
 */
export function resolveStages(plan: RolloutPlan, version: string, fleet: FleetZone[]): Resolution {
  const byKey = new Map(fleet.map((z) => [zoneKey(z.project, z.zone), z]));
  const taken = new Set<string>();
  const stages: ResolvedStage[] = [];
  const skipped: Resolution['skipped'] = [];
  const remaining = () =>
    [...byKey.keys()].filter((k) => !taken.has(k)).sort((a, b) => rank(version, a).localeCompare(rank(version, b)));
  for (const stage of plan.stages) {
    const s = stage.select;
    let picked: string[];
    if (s.zones) picked = s.zones.filter((k) => byKey.has(k) && !taken.has(k));
    else if (s.projects) picked = remaining().filter((k) => s.projects!.includes(byKey.get(k)!.project));
    else if (s.label) picked = remaining().filter((k) => byKey.get(k)!.labels.has(s.label!));
    else {
      const want = Math.ceil((s.percent! / 100) * byKey.size - 1e-9);
      picked = remaining().slice(0, Math.max(0, want - taken.size));
    }
    picked = [...new Set(picked)];
    if (picked.length === 0) {
      skipped.push({ name: stage.name, reason: emptyReason(s, byKey.size, taken.size) });
      continue;
    }
    for (const k of picked) taken.add(k);
    stages.push({
      name: stage.name,
      bakeMinutes: stage.bakeMinutes,
      gates: { ...plan.gates, ...stage.gates },
      zones: picked,
      hosts: picked.reduce((n, k) => n + byKey.get(k)!.hosts, 0),
    });
  }
  return { stages, skipped };
}

function emptyReason(s: Selection, zones: number, taken: number): string {
  if (zones === 0) return 'no zone holds in-scope VMs';
  if (s.label) return `no in-scope VM carries ${s.label} in a zone not already taken`;
  if (s.percent !== undefined)
    return taken >= zones ? 'every zone was already taken' : `earlier stages already reach ${s.percent}% of the zones`;
  return 'none of the listed zones holds in-scope VMs (or they were already taken)';
}
