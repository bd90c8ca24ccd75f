import { pubsubHandler } from './pubsub-handler.js';
import { auditShardSchema, runAuditShard, startAuditRun } from '../shared/usecases/audit.js';

/** Pub/Sub, from the Cloud Scheduler tick: start a run, one shard message per target project. */
export const fleetAudit = pubsubHandler('fleetAudit', null, (_message, message, event) =>
  startAuditRun(event.id, message.publishTime ?? (event.time ? new Date(event.time) : new Date())),
);

/** Pub/Sub, one message per project: reconcile that project. */
export const fleetAuditShard = pubsubHandler('fleetAuditShard', auditShardSchema, (shard) => runAuditShard(shard));
