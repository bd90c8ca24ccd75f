// Before osq-orch talks to Google Cloud: is every service it is about to use reachable, and are there
// credentials for those that are not local? A command then fails at once with one clear reason,
// instead of an auth library's stack trace or a minute of client retries against a closed port.
import { config } from '../shared/config.js';

/** Firestore, Pub/Sub, or the REST APIs (Compute, OS Config, Cloud Storage). */
export type Service = 'firestore' | 'pubsub' | 'apis';

const LOCAL: Record<Service, { variable: string; what: string; url: () => string | undefined }> = {
  firestore: {
    variable: 'FIRESTORE_EMULATOR_HOST',
    what: 'the Firestore emulator',
    url: () => process.env.FIRESTORE_EMULATOR_HOST && `http://${process.env.FIRESTORE_EMULATOR_HOST}/`,
  },
  pubsub: {
    variable: 'PUBSUB_EMULATOR_HOST',
    what: 'the Pub/Sub emulator',
    url: () => process.env.PUBSUB_EMULATOR_HOST && `http://${process.env.PUBSUB_EMULATOR_HOST}/`,
  },
  apis: { variable: 'GOOGLE_API_ENDPOINT', what: 'the API endpoint', url: () => config().GOOGLE_API_ENDPOINT },
};
const NAMES: Record<Service, string> = {
  firestore: 'Firestore',
  pubsub: 'Pub/Sub',
  apis: 'Compute Engine, OS Config and Cloud Storage',
};

/** A reason osq-orch cannot go on, already worded for the terminal. */
export class AccessError extends Error {
  override name = 'AccessError';
}

const causeOf = (error: unknown): string => {
  const e = error as { cause?: { code?: string; message?: string }; name?: string; message?: string };
  if (e?.name === 'TimeoutError') return 'no answer';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
};

/** Throws an AccessError naming the first service that cannot be used, and why. */
export async function checkGoogleAccess(services: Service[], timeoutMs = 5_000): Promise<void> {
  const remote: Service[] = [];
  for (const service of services) {
    const { variable, what, url } = LOCAL[service];
    const local = url();
    if (!local) {
      remote.push(service);
      continue;
    }
    try {
      // Any HTTP answer will do: something is listening there.
      await (await fetch(local, { signal: AbortSignal.timeout(timeoutMs) })).arrayBuffer();
    } catch (error) {
      throw new AccessError(`cannot reach ${what} at ${local} (${variable}): ${causeOf(error)}`);
    }
  }
  if (remote.length === 0) return;
  const { GoogleAuth } = await import('google-auth-library');
  const auth = new GoogleAuth({ scopes: 'https://www.googleapis.com/auth/cloud-platform' });
  const forWhat = remote.map((s) => NAMES[s]).join(', ');
  try {
    await Promise.race([
      auth.getAccessToken(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), timeoutMs).unref()),
    ]);
  } catch (error) {
    const message = causeOf(error);
    if (/default credentials/i.test(message))
      throw new AccessError(
        `no Google credentials for ${forWhat} (\`gcloud auth application-default login\`, or set ` +
          'GOOGLE_APPLICATION_CREDENTIALS)',
      );
    throw new AccessError(`cannot get a Google access token for ${forWhat}: ${message.split('\n')[0]}`);
  }
}
