// apiBudget/{family}: the global API budget's grants per quota family; serviceStates/{project}: a project's
// API enablement as Service Usage last said (cached for SERVICE_USAGE_CACHE_HOURS). docs/quotas.md.
import { z } from 'zod';
import { API_FAMILIES } from '../domain/api-budget.js';
import { timestamp, type DocumentDefinition } from './document.js';

export const apiBudgetDocument = z.object({
  family: z.enum(API_FAMILIES).describe('the quota family (the document id)'),
  grants: z
    .string()
    .describe(
      'JSON `[[atMs, calls], ...]`: the calls granted inside the last window, oldest first (a string: one ' +
        'index entry, however many grants)',
    ),
  perWindow: z.number().describe('the budget the last grant was scheduled against (calls per window)'),
  windowMs: z.number().describe("the window's length in milliseconds (60,000 unless scaled)"),
  updatedAt: timestamp.describe('when the last grant was made'),
});

export const serviceStatesDocument = z.object({
  states: z
    .record(z.string(), z.string())
    .meta({ key: 'service' })
    .describe('state (ENABLED, DISABLED) of each service the audit needs, as Service Usage said'),
  checkedAt: timestamp.describe('when Service Usage was read; trusted for SERVICE_USAGE_CACHE_HOURS'),
});

export type ApiBudgetDocument = z.output<typeof apiBudgetDocument>;

export const API_BUDGET_DOCUMENTS: DocumentDefinition[] = [
  {
    path: 'apiBudget/{family}',
    description:
      'The global API budget of one quota family: every instance schedules its calls against it in a ' +
      'transaction (shared/adapters/api-budget.ts); a handful of writes a minute per family.',
    schema: apiBudgetDocument,
  },
  {
    path: 'serviceStates/{project}',
    description:
      "A target project's API enablement from Service Usage, read at most once per SERVICE_USAGE_CACHE_HOURS " +
      'by the runs that audit it.',
    schema: serviceStatesDocument,
  },
];
