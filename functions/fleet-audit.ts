import { pubsubHandler } from './pubsub-handler.js';
import { PermanentError } from '../shared/errors.js';
import { auditShardSchema, runAuditShard, startAuditRun } from '../shared/usecases/audit.js';

/**
 * Pub/Sub, from the Cloud Scheduler tick: start a run, one shard message per target project. The run
 * is named after the tick's event id (Pub/Sub's message id), so every delivery of a tick names the same run.
 */
export const fleetAudit = pubsubHandler('fleetAudit', null, (_message, message, event) => {
  const tickId = event.id || message.messageId;
  if (!tickId) throw new PermanentError('a tick without an event id or message id cannot name its run');
  const time = message.publishTime ?? (event.time ? new Date(event.time) : new Date());
  return startAuditRun(tickId, Number.isNaN(time.getTime()) ? new Date() : time);
});

/** Pub/Sub, one message per project of a run: reconcile it; the shard that closes the run publishes its status. */
export const fleetAuditShard = pubsubHandler('fleetAuditShard', auditShardSchema, (shard) => runAuditShard(shard));
