// audits/{runId}: one document per audit run, with run-level facts only; each project's result is a document of
// its own (audits/{runId}/projects/{project}) and the projects a run audits its plan (audits/{runId}/plan/{n}),
// so no document grows with the number of projects and no document is written by every shard.
import { z } from 'zod';
import { HOST_STATES } from '../domain/host.js';
import { timestamp, type DocumentDefinition } from './document.js';

export const stateCounts = z.partialRecord(z.enum(HOST_STATES), z.number()).meta({ key: 'state' });

const silenceShape = {
  newlySilent: z.number().describe('hosts the audit made silent'),
  silent: z.number().describe('in-scope hosts silent after it'),
  inScope: z.number().describe('in-scope hosts after it'),
  causes: z
    .record(z.string(), z.number())
    .meta({ key: 'cause' })
    .describe('causes of the newly silent hosts (the most common 5)'),
};

/** A project's silence in one audit (shared/domain/storm.ts SilenceTally), for the fleet's storm. */
export const projectSilence = z.object({
  ...silenceShape,
  projectStorm: z.boolean().describe("the project's own storm holds its host alerts (left out of the fleet's)"),
});

/** The run's silence (shared/domain/storm.ts RunSilence): what the fleet's storm is decided on at the close. */
export const runSilence = z.object({
  ...silenceShape,
  newlySilent: z.number().describe("hosts the run made silent, outside a project's own storm"),
  silent: z.number().describe("hosts silent after the run, outside a project's own storm"),
  inScope: z.number().describe("in-scope hosts of the run's projects (every one: the share is of them)"),
  projects: z.number().describe('projects whose results carried a silence'),
});

/**
 * One project's result (shared/domain/audit.ts ProjectResult). Stored as audits/{runId}/projects/{project},
 * created once by the project's shard; `running` and `skipped` are read only from runs written before the
 * results moved off the run document (`projects` there).
 */
export const projectEntry = z.object({
  status: z
    .enum(['running', 'succeeded', 'failed', 'skipped'])
    .describe('`succeeded` or `failed` (a result is written once its project is audited)'),
  instances: z.number().describe('VMs listed'),
  error: z.string().optional().describe('why it failed'),
  reason: z.string().optional().describe('why it was skipped'),
  counts: stateCounts.optional().describe('hosts per state'),
  apiCalls: z.number().optional().describe('Google API calls the audit made'),
  hostWrites: z.number().optional().describe('host documents written'),
  fixFailures: z.number().optional().describe('VMs whose label or metadata fix failed (left for the next audit)'),
  invalidHosts: z
    .number()
    .optional()
    .describe('host documents that did not match their definition, left as they are (absent: none)'),
  silence: projectSilence
    .optional()
    .describe("the project's silence in this audit, for the fleet's storm (absent: failed, or written before)"),
});

/** The rolling audit's account of a tick that audits part of the targets (shared/domain/rolling-audit.ts). */
export const rollingRecord = z.object({
  targets: z.number().describe('target projects resolved this tick (skipped ones left out)'),
  selected: z.number().describe('projects this run audits'),
  readsPerTick: z.number().nullable().describe('OS Config reads the tick planned (null: no budget)'),
  cycleTicks: z.number().describe('ticks within which every target project is audited (the bound)'),
  cycleMinutes: z.number().describe('the same in minutes (cycleTicks x AUDIT_TICK_MINUTES)'),
  neverAudited: z.number().describe('target projects never audited successfully yet'),
  oldestAuditAgeMinutes: z.number().nullable().describe('the longest audit age among the audited ones, minutes'),
});
export type RollingRecord = z.output<typeof rollingRecord>;

export const auditRun = z.object({
  startedAt: timestamp.describe('when the run was created'),
  finishedAt: timestamp.nullable().describe('when it was closed, every project finished (null: running)'),
  status: z
    .enum(['running', 'succeeded', 'partial', 'failed'])
    .describe('`partial`/`failed` count the audited projects only (never the skipped)'),
  projectCount: z
    .number()
    .optional()
    .describe(
      'projects this run audits, one shard each: the run closes when as many results are in ' +
        'audits/{runId}/projects (absent: a run written before the results moved there)',
    ),
  skipped: z
    .record(z.string(), z.string())
    .optional()
    .meta({ key: 'project' })
    .describe('projects never audited because an API is off, and why (at most 100; `skippedMore` counts the rest)'),
  projects: z
    .record(z.string(), projectEntry)
    .optional()
    .meta({ key: 'project' })
    .describe("runs written before audits/{runId}/projects only: each project's result (read, never written)"),
  counts: stateCounts.describe('hosts per state, every project'),
  coverage: z.number().nullable().describe('reporting / (in scope and not stopped); null until closed'),
  apiCalls: z.number().describe('Google API calls, every project'),
  hostWrites: z.number().describe('host documents written, every project'),
  silence: runSilence
    .optional()
    .describe("the run's silence, written with the totals: the fleet's storm is decided on it (absent: none yet)"),
  rolling: rollingRecord
    .optional()
    .describe('present when the tick audits part of the targets (a rolling audit); absent: a full pass'),
  skippedMore: z.number().optional().describe('skipped projects beyond the 100 listed in `skipped` (absent: none)'),
  shardsPublished: z
    .boolean()
    .optional()
    .describe('every project shard was published (a redelivered tick does not fan out twice)'),
});

/** A bucket of the run's plan: the projects its shards may record, found by a hash of the project id. */
export const runPlan = z.object({
  projects: z
    .string()
    .describe('the projects of this bucket, a JSON array in one string (one index entry however many)'),
});

export type AuditRun = z.output<typeof auditRun>;
export type ProjectEntry = z.output<typeof projectEntry>;

export const AUDIT_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'audits/{runId}',
    description:
      'One document per audit run (fleetAudit creates it): run-level facts only. It is closed (totals, status) ' +
      'once, by a shard that counts every project result in audits/{runId}/projects.',
    schema: auditRun,
  },
  {
    path: 'audits/{runId}/projects/{project}',
    description:
      "One project's result in the run, created once by its fleetAuditShard (a redelivered shard writes " +
      'nothing). The project id is the document id as it is: project ids hold no `/` and are never `.`, `..` ' +
      'or `__x__`.',
    schema: projectEntry,
  },
  {
    path: 'audits/{runId}/plan/{bucket}',
    description:
      'The projects the run audits, in buckets of about 1,000 by a hash of the project id (created with the ' +
      "run): a shard for a project not in its run's plan is refused.",
    schema: runPlan,
  },
];
