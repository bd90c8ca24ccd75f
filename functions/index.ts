// Entry points (docs/contracts.md). Each is a thin handler: parse, call a use case, map errors.
//
// Configuration is validated as this module loads: with a bad setting the instance does not start
// (a deploy does not go live), so Pub/Sub and Eventarc keep redelivering instead of an event being
// acknowledged and dropped; the one error names every bad variable.
//
// Cloud Functions loads this module for every function, so it imports no handler up front: each
// function imports its own handler (and the client libraries that one uses) on its first event.
import * as functions from '@google-cloud/functions-framework';
import { config } from '../shared/config.js';
import { AUDIT_LOG_EVENT_TYPE } from '../shared/domain/audit-event.js';
import { PUBSUB_MESSAGE_EVENT_TYPE } from '../shared/domain/pubsub-message.js';
import { log } from '../shared/log.js';
import { eventFunction } from './invocation.js';

try {
  config();
} catch (error) {
  log.fatal({ reason: error instanceof Error ? error.message : String(error) }, 'functions cannot start');
  throw error;
}

// Event functions are registered (as HTTP) by eventFunction, which reads the CloudEvent itself: each
// refuses (400, with the reason) a request that carries no event of the types it takes.
const PUBSUB = [PUBSUB_MESSAGE_EVENT_TYPE];
// Eventarc's audit-log events, and the enrollment log sink's entries pushed through Pub/Sub.
eventFunction('vmLifecycle', [AUDIT_LOG_EVENT_TYPE, PUBSUB_MESSAGE_EVENT_TYPE], async (event) =>
  (await import('./vm-lifecycle.js')).vmLifecycle(event),
);
eventFunction('fleetAudit', PUBSUB, async (event) => (await import('./fleet-audit.js')).fleetAudit(event));
eventFunction('fleetAuditShard', PUBSUB, async (event) => (await import('./fleet-audit.js')).fleetAuditShard(event));
eventFunction('logHeartbeat', PUBSUB, async (event) => (await import('./log-heartbeat.js')).logHeartbeat(event));
// Pull delivery of the same lines (Terraform's log_heartbeat_delivery = "pull"): a drain per scheduler tick.
eventFunction('logHeartbeatDrain', PUBSUB, async (event) =>
  (await import('./log-heartbeat-drain.js')).logHeartbeatDrain(event),
);
eventFunction('monitoringAlert', PUBSUB, async (event) =>
  (await import('./monitoring-alert.js')).monitoringAlert(event),
);
// HTTP (the status page): no trigger, private by Cloud Run invoker IAM (infra/terraform/status.tf).
functions.http('fleetStatus', async (req, res) => (await import('./fleet-status.js')).fleetStatus(req, res));
