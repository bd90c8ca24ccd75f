// What every entry point shares: each invocation's log context (function, event id, trace), and one
// mapping from how a use case ended to what the trigger does. Pub/Sub and Eventarc redeliver on a
// thrown error and drop the event on a return; HTTP answers a status code.
import type { CloudEvent, Request } from '@google-cloud/functions-framework';
import { ConfigError, config } from '../shared/config.js';
import { asHandlerError, PermanentError, TransientError } from '../shared/errors.js';
import { log, traceFields, withLogContext, type LogContext } from '../shared/log.js';

/** The project a trace id is filed under: this one's, else the one the event's source names. */
function traceProject(source: string | undefined): string | undefined {
  let project: string | undefined;
  try {
    project = config().GOOGLE_CLOUD_PROJECT;
  } catch {
    // A bad setting is reported by the use case's error mapping; the trace can do without the project.
  }
  return project ?? /\/projects\/([^/]+)\//.exec(source ?? '')?.[1];
}

/**
 * A CloudEvent handler whose every log line (its own, and the use case's and adapters' below it)
 * carries `function`, `eventId` and, when the delivery brought a trace header, Cloud Logging's trace
 * fields. The Functions Framework puts the request's `traceparent` header on the event.
 */
export function eventHandler(
  name: string,
  handle: (event: CloudEvent<unknown>) => Promise<void>,
): (event: CloudEvent<unknown>) => Promise<void> {
  return (event) => {
    const context: LogContext = {
      function: name,
      eventId: event.id,
      ...traceFields(traceProject(event.source), { traceparent: event.traceparent }),
    };
    return withLogContext(context, () => handle(event));
  };
}

/** Runs an HTTP handler with its request's log context (function and trace). */
export function httpHandler<Res>(
  name: string,
  handle: (req: Request, res: Res) => Promise<void>,
): (req: Request, res: Res) => Promise<void> {
  return (req, res) => {
    const trace = traceFields(traceProject(undefined), {
      traceparent: req.get('traceparent'),
      cloudTraceContext: req.get('x-cloud-trace-context'),
    });
    return withLogContext({ function: name, ...trace }, () => handle(req, res));
  };
}

export interface RunOptions {
  /** Fields for the done and failure lines (e.g. the lifecycle action). */
  fields?: LogContext;
  /** The done line's level: debug where there is one invocation per message of a busy topic. */
  doneLevel?: 'info' | 'debug';
}

/**
 * Runs a use case and maps how it ended, with one line in one shape: done (its outcome); a permanent
 * failure (logged, and acknowledged: redelivery cannot fix it); bad configuration (logged and rethrown:
 * the event must still be there once the setting is fixed); a transient failure (rethrown, so the
 * trigger redelivers it with backoff).
 */
export async function runUseCase(name: string, run: () => Promise<unknown>, options: RunOptions = {}): Promise<void> {
  const fields = options.fields ?? {};
  let outcome: unknown;
  try {
    outcome = await run();
  } catch (error) {
    const mapped = asHandlerError(error);
    const failure = { ...fields, reason: mapped.message };
    if (mapped instanceof PermanentError) {
      log.error(failure, `${name}: permanent failure, acknowledged`);
      return;
    }
    if (mapped instanceof ConfigError) log.error(failure, `${name}: bad configuration, will be redelivered`);
    else log.warn(failure, `${name}: transient failure, will be redelivered`);
    throw mapped;
  }
  log[options.doneLevel ?? 'info']({ ...fields, outcome }, `${name}: done`);
}

/**
 * The HTTP form of the same mapping, for a failure the handler did not answer itself: 503 for a
 * transient one (the client may retry), 500 for bad configuration or anything permanent.
 */
export function httpStatusOf(error: unknown): {
  status: 500 | 503;
  mapped: TransientError | PermanentError | ConfigError;
} {
  const mapped = asHandlerError(error);
  return { status: mapped instanceof TransientError ? 503 : 500, mapped };
}
