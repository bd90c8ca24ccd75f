// What every entry point shares: reading the CloudEvent a request carries (or refusing it, 4xx), each
// invocation's log context (function, event id, trace), and one mapping from how a use case ended to what
// the trigger does. Pub/Sub and Eventarc redeliver on a 5xx and drop the event on a 2xx; a 4xx goes only
// to a request that is no event they send. HTTP answers a status code.
import * as functions from '@google-cloud/functions-framework';
import type { CloudEvent, Request, Response } from '@google-cloud/functions-framework';
import { ConfigError, config } from '../shared/config.js';
import { eventOfRequest } from '../shared/domain/event-request.js';
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

/**
 * Registers an event function, served as HTTP: the one place a request becomes a CloudEvent. The Functions
 * Framework's own CloudEvent path answers 500 to some bodies that are no event (its legacy-event
 * conversion throws on text, an empty body or an odd background event) and hands others to the function
 * as events (forms, background events, CloudEvents missing attributes); a cloudEvent handler cannot
 * answer anything but 204 or 500. Here a request that carries no event of a type in `accepts` is answered
 * 400 (405 for a method other than POST) with the reason, logged, and reaches no use case; an event runs
 * `handle`: 204 when it returns, 500 when it throws, so the trigger redelivers.
 */
export function eventFunction(
  name: string,
  accepts: readonly string[],
  handle: (event: CloudEvent<unknown>) => Promise<void>,
): void {
  functions.http(name, async (req: Request, res: Response) => {
    const read = eventOfRequest(
      { method: req.method, path: req.path, headers: req.headers, body: req.body },
      accepts,
      new Date(),
    );
    if (!read.ok) {
      const context = {
        function: name,
        ...traceFields(traceProject(undefined), { traceparent: req.get('traceparent') }),
      };
      withLogContext(context, () =>
        log.warn(
          { status: read.status, reason: read.reason, contentType: req.get('content-type') ?? null },
          `${name}: refused a request that carries no event it takes`,
        ),
      );
      res.status(read.status).type('text/plain').send(read.reason);
      return;
    }
    try {
      await handle(read.event as CloudEvent<unknown>);
    } catch (error) {
      // runUseCase logged what it rethrew; anything else failed before a use case ran.
      if (!(error instanceof TransientError || error instanceof ConfigError))
        log.error(
          { function: name, reason: error instanceof Error ? error.message : String(error) },
          `${name}: failed`,
        );
      // As the Functions Framework answers a handler that threw (the message only outside production).
      res.set('X-Google-Status', 'error');
      if (process.env.NODE_ENV === 'production') res.sendStatus(500);
      else res.status(500).send(error instanceof Error ? error.message : String(error));
      return;
    }
    res.sendStatus(204);
  });
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
