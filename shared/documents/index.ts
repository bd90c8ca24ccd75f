// Every stored document, defined once: docs/contracts.md lists them from here (npm run contracts), and the
// adapters read them through these schemas (shared/documents/document.ts readDocument).
import type { DocumentDefinition } from './document.js';
import { HOST_DOCUMENTS } from './hosts.js';
import { ALERT_DOCUMENTS } from './alerts.js';
import { AUDIT_DOCUMENTS } from './audits.js';
import { ROLLOUT_DOCUMENTS } from './rollouts.js';
import { QUERY_STATS_DOCUMENTS } from './query-stats.js';
import { STATUS_DOCUMENTS } from './status.js';
import { PIPELINE_DOCUMENTS } from './pipeline.js';
import { API_BUDGET_DOCUMENTS } from './api-budget.js';

export const STORED_DOCUMENTS: readonly DocumentDefinition[] = [
  ...HOST_DOCUMENTS,
  ...ALERT_DOCUMENTS,
  ...AUDIT_DOCUMENTS,
  ...ROLLOUT_DOCUMENTS,
  ...QUERY_STATS_DOCUMENTS,
  ...STATUS_DOCUMENTS,
  ...PIPELINE_DOCUMENTS,
  ...API_BUDGET_DOCUMENTS,
];
