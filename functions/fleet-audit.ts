import { pubsubHandler } from './pubsub-handler.js';
import { auditShardSchema, runAuditShard, startAuditRun } from '../shared/usecases/audit.js';
import { publishRunStatus } from '../shared/usecases/status.js';

/** Pub/Sub, from the Cloud Scheduler tick: start a run, one shard message per target project. */
export const fleetAudit = pubsubHandler('fleetAudit', null, (_message, message, event) =>
  startAuditRun(event.id, message.publishTime ?? (event.time ? new Date(event.time) : new Date())),
);

/** Pub/Sub, one message per project: reconcile that project. */
export const fleetAuditShard = pubsubHandler('fleetAuditShard', auditShardSchema, async (shard) => {
  const outcome = await runAuditShard(shard);
  // Status page: the shard that closed the run publishes the fleet status (a redelivery repeats it harmlessly).
  await publishRunStatus(shard.runId);
  return outcome;
});
