import { eventHandler, runUseCase } from './invocation.js';
import { parseAuditLogEvent } from '../shared/domain/audit-event.js';
import { addLogContext, log } from '../shared/log.js';
import { runLifecycleAction } from '../shared/usecases/lifecycle.js';

/**
 * Compute Engine audit-log entries (insert, bulkInsert, delete):
 * from Eventarc, or pushed from the enrollment log sink.
 */
export const vmLifecycle = eventHandler('vmLifecycle', async (event) => {
  const action = parseAuditLogEvent(event.type, event.data);
  if (action.kind === 'invalid') {
    // Acknowledged: redelivering a malformed entry cannot make it valid.
    log.warn({ source: event.source, reason: action.reason }, 'vmLifecycle: rejected malformed event');
    return;
  }
  if (action.kind === 'ignore') {
    log.debug({ reason: action.reason, method: action.method }, 'vmLifecycle: ignored entry');
    return;
  }
  // One VM's story is one filter (jsonPayload.instanceId) when the entry names the VM's id.
  if (action.kind !== 'reconcile-location' && action.instance.instanceId)
    addLogContext({ instanceId: action.instance.instanceId });
  const cause = `vmLifecycle ${action.method} ${action.operationId ?? event.id}`;
  await runUseCase('vmLifecycle', () => runLifecycleAction(action, cause), { fields: { action: action.kind } });
});
