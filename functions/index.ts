// Entry points (contracts.md). Each is a thin handler: parse, call a use case, map errors.
//
// Configuration is validated as this module loads: with a bad setting the instance does not start
// (a deploy does not go live), so Pub/Sub and Eventarc keep redelivering instead of an event being
// acknowledged and dropped; the one error names every bad variable.
import * as functions from '@google-cloud/functions-framework';
import { config } from '../shared/config.js';
import { log } from '../shared/log.js';
import { vmLifecycle } from './vm-lifecycle.js';
import { fleetAudit, fleetAuditShard } from './fleet-audit.js';
import { logHeartbeat } from './log-heartbeat.js';
import { monitoringAlert } from './monitoring-alert.js';

try {
  config();
} catch (error) {
  log.fatal({ reason: error instanceof Error ? error.message : String(error) }, 'functions cannot start');
  throw error;
}

functions.cloudEvent('vmLifecycle', vmLifecycle);
functions.cloudEvent('fleetAudit', fleetAudit);
functions.cloudEvent('fleetAuditShard', fleetAuditShard);
functions.cloudEvent('logHeartbeat', logHeartbeat);
functions.cloudEvent('monitoringAlert', monitoringAlert);

export { vmLifecycle, fleetAudit, fleetAuditShard, logHeartbeat, monitoringAlert };
