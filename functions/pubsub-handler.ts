// The shape every Pub/Sub entry point shares: unwrap the message, validate, run, map errors.
import type { CloudEvent } from '@google-cloud/functions-framework';
import type { z } from 'zod';
import { eventHandler, runUseCase, type RunOptions } from './invocation.js';
import { jsonOf, messageOf, type PubSubMessage } from '../shared/adapters/pubsub.js';
import { rejectPoison } from '../shared/usecases/poison.js';

/**
 * A CloudEvent handler for Pub/Sub messages carrying JSON of `schema` (or raw, without one). Malformed
 * messages are logged with the reason and acknowledged (and dead-lettered when configured); the rest
 * goes to `run`, whose failures runUseCase maps (transient and configuration rethrown, permanent acknowledged).
 */
export function pubsubHandler<T>(
  name: string,
  schema: z.ZodType<T> | null,
  run: (value: T, message: PubSubMessage, event: CloudEvent<unknown>) => Promise<unknown>,
  options: Pick<RunOptions, 'doneLevel'> = {},
) {
  return eventHandler(name, async (event) => {
    const ref = { function: name, eventId: event.id };
    const unwrapped = messageOf(event.data);
    if (!unwrapped.ok) return rejectPoison(name, ref, unwrapped.reason, null);
    let value: T;
    if (schema) {
      const parsed = jsonOf(unwrapped.message, schema);
      if (!parsed.ok) return rejectPoison(name, ref, parsed.reason, unwrapped.message);
      value = parsed.value;
    } else value = unwrapped.message as unknown as T;
    await runUseCase(name, () => run(value, unwrapped.message, event), options);
  });
}
