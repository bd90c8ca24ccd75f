// audits/{runId}: one document per audit run, completed project by project.
import { z } from 'zod';
import { HOST_STATES } from '../domain/host.js';
import { timestamp, type DocumentDefinition } from './document.js';

export const stateCounts = z.partialRecord(z.enum(HOST_STATES), z.number()).meta({ key: 'state' });

/** One project's entry: running until its shard records its result (shared/domain/audit.ts ProjectResult). */
export const projectEntry = z.object({
  status: z
    .enum(['running', 'succeeded', 'failed', 'skipped'])
    .describe('`skipped`: its Compute Engine or OS Config API is off, never audited'),
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
  finishedAt: timestamp.nullable().describe('when its last project finished (null: running)'),
  status: z
    .enum(['running', 'succeeded', 'partial', 'failed'])
    .describe('`partial`/`failed` count the audited projects only (never the skipped)'),
  projects: z.record(z.string(), projectEntry).meta({ key: 'project' }).describe("each target project's result"),
  counts: stateCounts.describe('hosts per state, every project'),
  coverage: z.number().nullable().describe('reporting / (in scope and not stopped); null until closed'),
  apiCalls: z.number().describe('Google API calls, every project'),
  hostWrites: z.number().describe('host documents written, every project'),
  rolling: rollingRecord
    .optional()
    .describe('present when the tick audits part of the targets (a rolling audit); absent: a full pass'),
  skippedMore: z.number().optional().describe('skipped projects beyond the 100 listed in `projects` (absent: none)'),
  shardsPublished: z
    .boolean()
    .optional()
    .describe('every project shard was published (a redelivered tick does not fan out twice)'),
});

export type AuditRun = z.output<typeof auditRun>;
export type ProjectEntry = z.output<typeof projectEntry>;

export const AUDIT_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'audits/{runId}',
    description:
      'One document per audit run (fleetAudit creates it), completed project by project by fleetAuditShard; ' +
      'the last project to finish closes it.',
    schema: auditRun,
  },
];
