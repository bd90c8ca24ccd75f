// Entry points (contracts.md). Each is a thin handler: parse, call a use case, map errors.
//
// Configuration is validated as this module loads: with a bad setting the instance does not start
// (a deploy does not go live), so Pub/Sub and Eventarc keep redelivering instead of an event being
// acknowledged and dropped; the one error names every bad variable.
//
// Cloud Functions loads this module for every function, so it imports no handler up front: each
// function imports its own handler (and the client libraries that one uses) on its first event.
import * as functions from '@google-cloud/functions-framework';
import type { CloudEvent } from '@google-cloud/functions-framework';
import { config } from '../shared/config.js';
import { log } from '../shared/log.js';

try {
  config();
} catch (error) {
  log.fatal({ reason: error instanceof Error ? error.message : String(error) }, 'functions cannot start');
  throw error;
}

functions.cloudEvent('vmLifecycle', async (event: CloudEvent<unknown>) =>
  (await import('./vm-lifecycle.js')).vmLifecycle(event),
);
functions.cloudEvent('fleetAudit', async (event: CloudEvent<unknown>) =>
  (await import('./fleet-audit.js')).fleetAudit(event),
);
functions.cloudEvent('fleetAuditShard', async (event: CloudEvent<unknown>) =>
  (await import('./fleet-audit.js')).fleetAuditShard(event),
);
functions.cloudEvent('logHeartbeat', async (event: CloudEvent<unknown>) =>
  (await import('./log-heartbeat.js')).logHeartbeat(event),
);
// Pull delivery of the same lines (Terraform's log_heartbeat_delivery = "pull"): a drain per scheduler tick.
functions.cloudEvent('logHeartbeatDrain', async (event: CloudEvent<unknown>) =>
  (await import('./log-heartbeat-drain.js')).logHeartbeatDrain(event),
);
functions.cloudEvent('monitoringAlert', async (event: CloudEvent<unknown>) =>
  (await import('./monitoring-alert.js')).monitoringAlert(event),
);
// HTTP (the status page): no trigger, private by Cloud Run invoker IAM (infra/terraform/status.tf).
functions.http('fleetStatus', async (req, res) => (await import('./fleet-status.js')).fleetStatus(req, res));
