// Entry points (contracts.md). Each is a thin handler: parse, call a use case, map errors.
import * as functions from '@google-cloud/functions-framework';
import { vmLifecycle } from './vm-lifecycle.js';
import { fleetAudit, fleetAuditShard } from './fleet-audit.js';
import { logHeartbeat } from './log-heartbeat.js';
import { monitoringAlert } from './monitoring-alert.js';
import { fleetStatus } from './fleet-status.js';

functions.cloudEvent('vmLifecycle', vmLifecycle);
functions.cloudEvent('fleetAudit', fleetAudit);
functions.cloudEvent('fleetAuditShard', fleetAuditShard);
functions.cloudEvent('logHeartbeat', logHeartbeat);
functions.cloudEvent('monitoringAlert', monitoringAlert);
// HTTP (the status page): no trigger, private by Cloud Run invoker IAM (infra/terraform/status.tf).
functions.http('fleetStatus', fleetStatus);

export { vmLifecycle, fleetAudit, fleetAuditShard, logHeartbeat, monitoringAlert, fleetStatus };
