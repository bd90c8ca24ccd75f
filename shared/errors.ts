import pRetry from 'p-retry';
import { ConfigError } from './config.js';

/** A fault worth retrying: timeouts, 429, 5xx, aborted transactions. Handlers rethrow these so the trigger redelivers. */
export class TransientError extends Error {
  override name = 'TransientError';
}

/** Input or state that retrying cannot fix: handlers log it and acknowledge. */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

// The REST clients (gax fallback) turn HTTP statuses into gRPC codes (403 -> 7); GaxiosErrors and other
// transports keep HTTP statuses. The two share no numbers, so both are recognised.
const TRANSIENT_GRPC = new Set([4, 8, 10, 13, 14]); // DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE
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

export const isNotFound = (error: unknown) => statusOf(error) === 404 || statusOf(error) === 5;
export const isAlreadyExists = (error: unknown) => statusOf(error) === 409 || statusOf(error) === 6;
export const isPermissionDenied = (error: unknown) => statusOf(error) === 403 || statusOf(error) === 7;
export const isConditionNotMet = (error: unknown) => statusOf(error) === 412 || statusOf(error) === 9;

export interface RetryOptions {
  retries?: number;
  minTimeoutMs?: number;
  maxTimeoutMs?: number;
  /** Also retry these (e.g. a stale fingerprint, after re-reading). */
  alsoRetry?: (error: unknown) => boolean;
}

/**
 * Runs `fn` (one Google API call, say), retrying transient faults with jittered exponential backoff;
 * anything else fails at once. API calls are counted where the clients are built (shared/clients.ts).
 */
export function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  return pRetry(fn, {
    retries: options.retries ?? 5,
    minTimeout: options.minTimeoutMs ?? 100,
    maxTimeout: options.maxTimeoutMs ?? 5_000,
    randomize: true,
    shouldRetry: ({ error }) => isTransient(error) || (options.alsoRetry?.(error) ?? false),
  });
}

/**
 * Maps a failure that survived retries to what the trigger should do: acknowledge a PermanentError,
 * rethrow the rest so the event is redelivered. A ConfigError is never permanent: the event is fine,
 * the setting is not, and the event must still be there once the setting is fixed.
 */
export function asHandlerError(error: unknown): TransientError | PermanentError | ConfigError {
  if (error instanceof TransientError || error instanceof PermanentError || error instanceof ConfigError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return isTransient(error)
    ? new TransientError(message, { cause: error })
    : new PermanentError(message, { cause: error });
}
