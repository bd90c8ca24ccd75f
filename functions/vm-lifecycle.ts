import type { CloudEvent } from '@google-cloud/functions-framework';
import { parseAuditLogEvent } from '../shared/domain/audit-event.js';
import { ConfigError } from '../shared/config.js';
import { asHandlerError, PermanentError } from '../shared/errors.js';
import { log } from '../shared/log.js';
import { runLifecycleAction } from '../shared/usecases/lifecycle.js';

/** Compute Engine audit-log entries (insert, bulkInsert, delete): from Eventarc, or pushed from the enrollment log sink. */
export async function vmLifecycle(event: CloudEvent<unknown>): Promise<void> {
  const eventRef = { eventId: event.id, source: event.source };
  const action = parseAuditLogEvent(event.type, event.data);
  if (action.kind === 'invalid') {
    // Acknowledged: redelivering a malformed entry cannot make it valid.
    log.warn({ ...eventRef, reason: action.reason }, 'vmLifecycle: rejected malformed event');
    return;
  }
  if (action.kind === 'ignore') {
    log.debug({ ...eventRef, reason: action.reason, method: action.method }, 'vmLifecycle: ignored entry');
    return;
  }
  const cause = `vmLifecycle ${action.method} ${action.operationId ?? event.id}`;
  try {
    const outcomes = await runLifecycleAction(action, cause);
    log.info({ ...eventRef, action: action.kind, outcomes }, `vmLifecycle: ${action.kind} done`);
  } catch (error) {
    const mapped = asHandlerError(error);
    if (mapped instanceof PermanentError) {
      log.error(
        { ...eventRef, action: action.kind, reason: mapped.message },
        'vmLifecycle: permanent failure, acknowledged',
      );
      return;
    }
    if (mapped instanceof ConfigError)
      log.error(
        { ...eventRef, action: action.kind, reason: mapped.message },
        'vmLifecycle: bad configuration, will be redelivered',
      );
    else
      log.warn(
        { ...eventRef, action: action.kind, reason: mapped.message },
        'vmLifecycle: transient failure, will be redelivered',
      );
    throw mapped;
  }
}
