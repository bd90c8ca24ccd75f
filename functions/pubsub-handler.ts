// The shape every Pub/Sub entry point shares: unwrap the message, validate, run, map errors.
import type { CloudEvent } from '@google-cloud/functions-framework';
import type { z } from 'zod';
import { jsonOf, messageOf, type PubSubMessage } from '../shared/adapters/pubsub.js';
import { ConfigError } from '../shared/config.js';
import { asHandlerError, PermanentError } from '../shared/errors.js';
import { log } from '../shared/log.js';
import { rejectPoison } from '../shared/usecases/poison.js';

/**
 * A CloudEvent handler for Pub/Sub messages carrying JSON of `schema` (or raw, without one). Malformed
 * messages are logged with the reason and acknowledged (and dead-lettered when configured); transient
 * faults and bad configuration rethrow so Pub/Sub redelivers; permanent ones are logged and acknowledged.
 */
export function pubsubHandler<T>(
  name: string,
  schema: z.ZodType<T> | null,
  run: (value: T, message: PubSubMessage, event: CloudEvent<unknown>) => Promise<unknown>,
) {
  return async (event: CloudEvent<unknown>): Promise<void> => {
    const ref = { function: name, eventId: event.id };
    const unwrapped = messageOf(event.data);
    if (!unwrapped.ok) return rejectPoison(name, ref, unwrapped.reason, null);
    let value: T;
    if (schema) {
      const parsed = jsonOf(unwrapped.message, schema);
      if (!parsed.ok) return rejectPoison(name, ref, parsed.reason, unwrapped.message);
      value = parsed.value;
    } else value = unwrapped.message as unknown as T;
    try {
      const outcome = await run(value, unwrapped.message, event);
      log.info({ ...ref, outcome }, `${name}: done`);
    } catch (error) {
      const mapped = asHandlerError(error);
      if (mapped instanceof PermanentError) {
        log.error({ ...ref, reason: mapped.message }, `${name}: permanent failure, acknowledged`);
        return;
      }
      if (mapped instanceof ConfigError)
        log.error({ ...ref, reason: mapped.message }, `${name}: bad configuration, will be redelivered`);
      else log.warn({ ...ref, reason: mapped.message }, `${name}: transient failure, will be redelivered`);
      throw mapped;
    }
  };
}
