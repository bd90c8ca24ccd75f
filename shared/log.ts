import { AsyncLocalStorage } from 'node:async_hooks';
import { pino } from 'pino';

// Cloud Logging reads `severity` and `message` from one JSON object per line on stdout.
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

// A bad LOG_LEVEL is reported with every other bad setting by shared/config.ts; pino would throw here.
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const level = process.env.LOG_LEVEL && LEVELS.includes(process.env.LOG_LEVEL) ? process.env.LOG_LEVEL : 'info';

/** The fields every line of one invocation carries: function, eventId, the trace, the VM once known. */
export type LogContext = Record<string, unknown>;

const invocation = new AsyncLocalStorage<LogContext>();

export const log = pino(
  {
    level,
    messageKey: 'message',
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    // The invocation's context on every line, through every await: use cases and adapters log with this
    // one logger and their lines still belong to their invocation. A copy: pino merges the call's own
    // fields into what mixin returns (they win), and they must not stick to the invocation.
    mixin: () => ({ ...invocation.getStore() }),
  },
  // Plain stdout keeps the order with other output and lets tests read what was logged.
  process.stdout,
);

/** Runs `fn` with `context` on every line logged inside it, awaits included (one invocation). */
export function withLogContext<T>(context: LogContext, fn: () => T): T {
  return invocation.run({ ...context }, fn);
}

/** Adds fields to the current invocation's context (the VM's instance id, once the handler knows it). */
export function addLogContext(fields: LogContext): void {
  const context = invocation.getStore();
  if (context) Object.assign(context, fields);
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const CLOUD_TRACE_CONTEXT = /^([0-9a-f]{32})(?:\/(\d+))?(?:;o=([01]))?$/i;

/**
 * The Cloud Logging fields that put a line in its request's trace (Logs Explorer groups and filters by
 * them), from the W3C `traceparent` header or, failing that, `X-Cloud-Trace-Context`
 * (TRACE_ID/SPAN_ID;o=1, span id in decimal). Nothing when there is no project or no valid header.
 */
export function traceFields(
  project: string | undefined,
  headers: { traceparent?: unknown; cloudTraceContext?: unknown },
): LogContext {
  if (!project) return {};
  let traceId: string | undefined;
  let spanId: string | undefined;
  let sampled: boolean | undefined;
  const w3c = typeof headers.traceparent === 'string' ? TRACEPARENT.exec(headers.traceparent.trim()) : null;
  if (w3c && w3c[1] !== 'ff' && !/^0+$/.test(w3c[2]!) && !/^0+$/.test(w3c[3]!)) {
    traceId = w3c[2];
    spanId = w3c[3];
    sampled = (parseInt(w3c[4]!, 16) & 1) === 1;
  } else {
    const legacy =
      typeof headers.cloudTraceContext === 'string' ? CLOUD_TRACE_CONTEXT.exec(headers.cloudTraceContext.trim()) : null;
    if (!legacy || /^0+$/.test(legacy[1]!)) return {};
    traceId = legacy[1]!.toLowerCase();
    // Cloud Logging takes the span id as 16 hex digits.
    if (legacy[2] && /^\d{1,20}$/.test(legacy[2]) && BigInt(legacy[2]) > 0n && BigInt(legacy[2]) < 2n ** 64n)
      spanId = BigInt(legacy[2]).toString(16).padStart(16, '0');
    if (legacy[3] !== undefined) sampled = legacy[3] === '1';
  }
  return {
    'logging.googleapis.com/trace': `projects/${project}/traces/${traceId}`,
    ...(spanId ? { 'logging.googleapis.com/spanId': spanId } : {}),
    ...(sampled !== undefined ? { 'logging.googleapis.com/trace_sampled': sampled } : {}),
  };
}
