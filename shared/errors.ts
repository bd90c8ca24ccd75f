import pRetry from 'p-retry';
import { ConfigError } from './config.js';

/**
 * A fault worth retrying: timeouts, 429, 5xx, aborted transactions. Handlers rethrow these so the trigger redelivers.
 */
export class TransientError extends Error {
  override name = 'TransientError';
}

/** Input or state that retrying cannot fix: handlers log it and acknowledge. */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

// The REST clients (gax fallback) turn HTTP statuses into gRPC codes (403 -> 7); GaxiosErrors and other
// transports keep HTTP statuses. The two share no numbers, so both are recognised.
const GRPC = {
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;
const TRANSIENT_GRPC = new Set<number>([
  GRPC.DEADLINE_EXCEEDED,
  GRPC.RESOURCE_EXHAUSTED,
  GRPC.ABORTED,
  GRPC.INTERNAL,
  GRPC.UNAVAILABLE,
]);
const TRANSIENT_HTTP = new Set([408, 429, 500, 502, 503, 504]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

/** The status of a client error, whichever library threw it: HTTP status or gRPC code, else undefined. */
export function statusOf(error: unknown): number | string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  if (typeof e.response?.status === 'number') return e.response.status;
  if (typeof e.code === 'number' || typeof e.code === 'string') return e.code;
  if (typeof e.status === 'number') return e.status;
  return undefined;
}

export function isTransient(error: unknown): boolean {
  if (error instanceof TransientError) return true;
  if (error instanceof PermanentError) return false;
  const status = statusOf(error);
  if (typeof status === 'number') return TRANSIENT_GRPC.has(status) || TRANSIENT_HTTP.has(status);
  if (typeof status === 'string') return NETWORK_CODES.has(status) || /^(429|5\d\d)$/.test(status);
  return false;
}

const hasStatus = (http: number, grpc: number) => (error: unknown) => {
  const status = statusOf(error);
  return status === http || status === grpc;
};
/** 404 / NOT_FOUND: the VM, assignment or document is not there. */
export const isNotFound = hasStatus(404, GRPC.NOT_FOUND);
/** 409 / ALREADY_EXISTS: a create lost a race, or ran twice; the goal is met. */
export const isAlreadyExists = hasStatus(409, GRPC.ALREADY_EXISTS);
/** 403 / PERMISSION_DENIED: a project this service account may not read or change. */
export const isPermissionDenied = hasStatus(403, GRPC.PERMISSION_DENIED);
/** 412 / FAILED_PRECONDITION: a fingerprint, generation or update time moved since it was read. */
export const isConditionNotMet = hasStatus(412, GRPC.FAILED_PRECONDITION);

export interface RetryOptions {
  retries?: number;
  minTimeoutMs?: number;
  maxTimeoutMs?: number;
}

/**
 * Runs `fn` (one Google API call, say), retrying transient faults with jittered exponential backoff;
 * anything else fails at once. API calls are counted where the clients are built (shared/clients.ts).
 *
 * The one retry layer: the calls inside run with the client library's own retries off (clientRetryOff()
 * for the gax clients, autoRetry off on Storage), so each attempt is one request, counted, and retried
 * on the same rules whichever library sent it. Never nest it: a read-modify-write that re-reads on 412
 * loops around calls that each have their own withRetry (shared/adapters/compute.ts).
 */
export function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  return pRetry(fn, {
    retries: options.retries ?? 5,
    minTimeout: options.minTimeoutMs ?? 100,
    maxTimeout: options.maxTimeoutMs ?? 5_000,
    randomize: true,
    shouldRetry: ({ error }) => isTransient(error),
  });
}

/**
 * gax CallOptions for every call withRetry wraps: the client's own retry off ("When set to null, the
 * call will not retry"). Left on, Compute's client retries UNAVAILABLE reads for up to ten minutes by
 * itself (instances_client_config.json), unseen by the API call counts, and multiplies withRetry's attempts.
 * A new object per call: the generated clients write the call's routing header into the options they get.
 */
export const clientRetryOff = (): { retry: null } => ({ retry: null });

/**
 * Whether the client that failed said retrying cannot help: an HTTP status or gRPC code that is not
 * transient (400, 403, 404, 409, 412, INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ...). gRPC UNKNOWN
 * says nothing, and an error without a status (a plain Error, a TypeError, a Date Firestore cannot store)
 * says nothing either: neither is known to be permanent.
 */
export function isKnownPermanent(error: unknown): boolean {
  if (error instanceof PermanentError) return true;
  if (error instanceof TransientError || isTransient(error)) return false;
  const status = statusOf(error);
  if (typeof status === 'number') return status !== GRPC.UNKNOWN;
  return typeof status === 'string' && /^4\d\d$/.test(status);
}

/**
 * Maps a failure that survived retries to what the trigger should do. Acknowledged (PermanentError) only
 * what is known to be permanent: an explicit PermanentError or a client status that says so
 * (isKnownPermanent). Everything else is rethrown so the event is redelivered (TransientError): a
 * transient fault, and a failure whose cause is unknown, because acknowledging it would drop the event
 * unprocessed while the fault may lie elsewhere (one bad write in a batch, a bug fixed by the next
 * deployment). A ConfigError is never permanent: the event is fine, the setting is not, and the event must
 * still be there once the setting is fixed.
 */
export function asHandlerError(error: unknown): TransientError | PermanentError | ConfigError {
  if (error instanceof TransientError || error instanceof PermanentError || error instanceof ConfigError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return isKnownPermanent(error)
    ? new PermanentError(message, { cause: error })
    : new TransientError(message, { cause: error });
}
