import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { asHandlerError, isTransient, PermanentError, TransientError, withRetry } from '../../shared/errors.js';

const t = suite('error mapping and retries');
const withCode = (code: number | string) => Object.assign(new Error(`code ${code}`), { code });

t('transient: HTTP 429/5xx, gRPC UNAVAILABLE/RESOURCE_EXHAUSTED/ABORTED/DEADLINE, network resets', () => {
  for (const code of [429, 500, 502, 503, 504, 408, 14, 8, 10, 4, 13, 'ECONNRESET', 'ECONNREFUSED'])
    assert.ok(isTransient(withCode(code)), String(code));
});

t('permanent: 400, 403, 404, 409, 412, gRPC INVALID_ARGUMENT/PERMISSION_DENIED/NOT_FOUND, plain errors', () => {
  for (const code of [400, 403, 404, 409, 412, 3, 7, 5]) assert.not.ok(isTransient(withCode(code)), String(code));
  assert.not.ok(isTransient(new Error('boom')));
});

t('withRetry retries transient faults and gives up on permanent ones at once', async () => {
  let calls = 0;
  const value = await withRetry(
    async () => {
      calls += 1;
      if (calls < 3) throw withCode(503);
      return 'ok';
    },
    { minTimeoutMs: 1, maxTimeoutMs: 2 },
  );
  assert.equal([value, calls], ['ok', 3]);

  calls = 0;
  try {
    await withRetry(
      async () => {
        calls += 1;
        throw withCode(403);
      },
      { minTimeoutMs: 1 },
    );
    assert.unreachable();
  } catch (error) {
    assert.is((error as { code: number }).code, 403);
    assert.is(calls, 1);
  }
});

t('asHandlerError: what a handler rethrows (transient) and what it acknowledges (permanent)', () => {
  assert.instance(asHandlerError(withCode(503)), TransientError);
  assert.instance(asHandlerError(withCode(403)), PermanentError);
  // Issue 20: a failure of unknown cause is redelivered, never acknowledged unprocessed (was PermanentError).
  assert.instance(asHandlerError('weird'), TransientError);
});

t(
  'asHandlerError: acknowledged only when known permanent; no status, gRPC UNKNOWN or a local code is redelivered',
  () => {
    for (const code of [400, 403, 404, 409, 412, 3, 5, 6, 7, 9, '404'])
      assert.instance(asHandlerError(withCode(code)), PermanentError, String(code));
    assert.instance(asHandlerError(new PermanentError('no such project')), PermanentError);
    // A Date Firestore cannot store fails the commit locally with a plain Error: the cause may be one write of many.
    for (const unknown of [
      new Error('Value for argument "data" is not a valid Firestore document. Cannot use "Invalid Date"'),
      new TypeError("Cannot read properties of undefined (reading 'getTime')"),
      withCode(2),
      withCode('ERR_INVALID_ARG_TYPE'),
      undefined,
    ])
      assert.instance(asHandlerError(unknown), TransientError, String(unknown));
    assert.not.ok(
      isTransient(new Error('boom')),
      'still not retried in-process: redelivery, not withRetry, retries it',
    );
  },
);

t.run();
