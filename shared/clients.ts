// The one place that builds Google Cloud clients. Each is created on first use, and the Compute, OS
// Config, Storage and Pub/Sub libraries are loaded only then (dynamic import): Compute is the costliest
// by far, and logHeartbeat, the function that scales out most, never calls it. Elsewhere, import only
// types from those libraries (`import type`), or they load with the module.
// Firestore is loaded with this module: every handler reads or writes hosts, and the adapters use its
// Timestamp and FieldValue (functions/index.ts imports each handler on its first event).
import { Firestore } from '@google-cloud/firestore';
import type { InstancesClient, ProjectsClient, ZoneOperationsClient } from '@google-cloud/compute';
import type { OsConfigZonalServiceClient } from '@google-cloud/os-config';
import type { Storage } from '@google-cloud/storage';
import type { PubSub, v1 } from '@google-cloud/pubsub';
import type { OAuth2Client } from 'google-auth-library';
import { config } from './config.js';
import { patchOsConfigDescriptors } from './osconfig-client-fix.js';
import { countApiCall } from './metrics.js';

/**
 * What an adapter takes for a client: the client, or the promise the getters below return. Adapters
 * default to `clients.x()`, evaluated only when called (the library still loads on first use); tests and
 * other callers pass their own.
 */
export type Awaitable<T> = T | Promise<T>;

/** Options that aim a REST client at the local simulator; empty in production. */
type ClientOptions = NonNullable<ConstructorParameters<typeof InstancesClient>[0]>;

async function endpointOptions(): Promise<ClientOptions> {
  const url = config().GOOGLE_API_ENDPOINT;
  if (!url) return {};
  const { PassThroughClient } = await import('google-auth-library');
  const u = new URL(url);
  // A port written inside apiEndpoint is ignored by the REST transport; it must be passed on its own.
  return {
    apiEndpoint: u.hostname,
    port: Number(u.port),
    protocol: u.protocol.replace(':', ''),
    authClient: new PassThroughClient(),
  };
}

// os-config still depends on an older google-auth-library; the PassThroughClient works with both.
type OsConfigOptions = ConstructorParameters<typeof OsConfigZonalServiceClient>[0] & object;

type StubMethod = (
  request: unknown,
  metadata: unknown,
  options: unknown,
  callback?: (...a: unknown[]) => unknown,
) => unknown;

/**
 * google-gax 6's REST transport (Compute's) arms an AbortSignal.timeout with the call's deadline (600 s
 * by default) and never disarms it; Node keeps a timeout signal that has a listener alive until it fires,
 * and the listener's scope holds the call's callback, hence its response. So every Compute response
 * stayed reachable for ten minutes after it arrived: a shard instance's heap grew by its projects'
 * inventories (about 2.7 MB per shard of 1,000 VMs). The stub is handed a callback that lets go of the
 * real one once called, so the armed signal holds nothing of the response (a unary call calls back once;
 * a second call, which gax makes only if its own first callback threw, is dropped).
 */
function releaseResponses(stub: Record<string, unknown>, methods: string[]): void {
  for (const method of methods) {
    const send = stub[method];
    if (typeof send !== 'function') continue;
    const released: StubMethod = (request, metadata, options, callback) => {
      if (!callback) return (send as StubMethod).call(stub, request, metadata, options);
      let pending: typeof callback | undefined = callback;
      return (send as StubMethod).call(stub, request, metadata, options, (...args: unknown[]) => {
        const deliver = pending;
        pending = undefined;
        return deliver?.(...args);
      });
    };
    stub[method] = released;
  }
}

/**
 * Counts every RPC a gax client sends (each page of a listing, each retry) under `${api}.${method}`.
 * initialize() builds the per-method call functions synchronously; each is wrapped once. The call
 * functions look their stub method up on each call, so the stub can be wrapped once it is built.
 */
function counted<T extends object>(client: T, api: string): T {
  const c = client as unknown as {
    initialize(): unknown;
    innerApiCalls: Record<string, (...args: unknown[]) => unknown>;
  };
  const stub = Promise.resolve(c.initialize());
  const methods = Object.keys(c.innerApiCalls);
  void stub
    .then((s) => {
      if (s && typeof s === 'object') releaseResponses(s as Record<string, unknown>, methods);
    })
    .catch(() => undefined); // failures surface on the first call
  for (const [method, call] of Object.entries(c.innerApiCalls)) {
    c.innerApiCalls[method] = (...args: unknown[]) => {
      countApiCall(`${api}.${method}`);
      return call(...args);
    };
  }
  return client;
}

function lazy<T>(make: () => T): { get: () => T; peek: () => T | undefined; reset: () => void } {
  let value: T | undefined;
  return { get: () => (value ??= make()), peek: () => value, reset: () => (value = undefined) };
}

// Each Compute and OS Config client from its own module: the packages' indexes load every client of
// three API versions and their generated protobuf code (@google-cloud/compute's alone is 31 MB of
// JavaScript: about a second and 150 MB more, measured by `npm run bench -- --only coldstart`).
const instances = lazy(async (): Promise<InstancesClient> => {
  const { InstancesClient } = await import('@google-cloud/compute/build/src/v1/instances_client.js');
  return counted(new InstancesClient(await endpointOptions()), 'compute.instances');
});
const zoneOperations = lazy(async (): Promise<ZoneOperationsClient> => {
  const { ZoneOperationsClient } = await import('@google-cloud/compute/build/src/v1/zone_operations_client.js');
  return counted(new ZoneOperationsClient(await endpointOptions()), 'compute.zoneOperations');
});
const projects = lazy(async (): Promise<ProjectsClient> => {
  const { ProjectsClient } = await import('@google-cloud/compute/build/src/v1/projects_client.js');
  return counted(new ProjectsClient(await endpointOptions()), 'compute.projects');
});
// REST fallback: the same transport as Compute, and the one the simulator speaks.
const osConfig = lazy(async (): Promise<OsConfigZonalServiceClient> => {
  const { OsConfigZonalServiceClient } =
    await import('@google-cloud/os-config/build/src/v1/os_config_zonal_service_client.js');
  const options = { ...(await endpointOptions()), fallback: true } as OsConfigOptions;
  return counted(patchOsConfigDescriptors(new OsConfigZonalServiceClient(options)), 'osconfig');
});
const firestore = lazy(
  () => new Firestore({ databaseId: config().FIRESTORE_DATABASE, ignoreUndefinedProperties: true }),
);
// Storage takes the simulator's URL as apiEndpoint (no auth for a custom endpoint). Its own retries are
// off: withRetry (shared/errors.ts) is the one retry layer, and it counts every attempt.
const storage = lazy(async (): Promise<Storage> => {
  const { Storage } = await import('@google-cloud/storage');
  const url = config().GOOGLE_API_ENDPOINT;
  const retryOptions = { autoRetry: false };
  return new Storage(
    url ? { apiEndpoint: url, projectId: config().GOOGLE_CLOUD_PROJECT ?? 'local', retryOptions } : { retryOptions },
  );
});
/**
 * REST calls to the APIs the orchestrator needs a method or two of (Resource Manager, Service Usage):
 * requests authorized with the function's credentials, on https://HOST, or unauthenticated on the
 * simulator's URL when GOOGLE_API_ENDPOINT is set (it serves every API on one port).
 */
export interface GoogleApis {
  baseUrl(host: string): string;
  request<T>(options: { url: string }): Promise<{ data: T }>;
}
const googleApis = lazy(async (): Promise<GoogleApis> => {
  const url = config().GOOGLE_API_ENDPOINT;
  const { GoogleAuth, PassThroughClient } = await import('google-auth-library');
  const client = url
    ? new PassThroughClient()
    : new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  return {
    baseUrl: (host) => (url ? url.replace(/\/$/, '') : `https://${host}`),
    request: <T>(options: { url: string }) => client.request<T>(options),
  };
});
// PUBSUB_EMULATOR_HOST, when set, points it at the emulator.
const pubsub = lazy(async (): Promise<PubSub> => {
  const { PubSub } = await import('@google-cloud/pubsub');
  return new PubSub({ projectId: config().GOOGLE_CLOUD_PROJECT });
});

/**
 * Synchronous pull (logHeartbeatDrain): the generated Subscriber client, on the same endpoint and
 * credentials as the PubSub client above (the emulator's when PUBSUB_EMULATOR_HOST is set). The
 * high-level Subscription only streams; a drain needs to pull a batch, ack it, and stop.
 */
const subscriber = lazy(async (): Promise<v1.SubscriberClient> => {
  const { v1 } = await import('@google-cloud/pubsub');
  const options = (await (await pubsub.get()).getClientConfig()) as ConstructorParameters<
    typeof v1.SubscriberClient
  >[0];
  return counted(new v1.SubscriberClient(options), 'pubsub.subscriber');
});

/**
 * Checks instance identity tokens (logHeartbeat): Google's certificates from HEARTBEAT_TOKEN_CERTS_URL, kept
 * as long as their Cache-Control allows (the library caches them per client: one client per instance).
 * Loaded on the first token: a function that never sees one never loads the library's verification.
 */
const identityTokens = lazy(async (): Promise<OAuth2Client> => {
  const { OAuth2Client } = await import('google-auth-library');
  return new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: config().HEARTBEAT_TOKEN_CERTS_URL } });
});

export const clients = {
  instances: instances.get,
  zoneOperations: zoneOperations.get,
  projects: projects.get,
  osConfig: osConfig.get,
  firestore: firestore.get,
  storage: storage.get,
  pubsub: pubsub.get,
  subscriber: subscriber.get,
  googleApis: googleApis.get,
  identityTokens: identityTokens.get,
};

const all = [
  instances,
  zoneOperations,
  projects,
  osConfig,
  firestore,
  storage,
  pubsub,
  subscriber,
  googleApis,
  identityTokens,
];

/** Drop every client so the next use reads the (changed) configuration again. */
export function resetClients(): void {
  for (const c of all) c.reset();
}

/** Closes the clients created so far (their channels keep a process alive), then drops them. */
export async function closeClients(): Promise<void> {
  await firestore.peek()?.terminate();
  await (await pubsub.peek())?.close();
  for (const c of [instances, zoneOperations, projects, osConfig, subscriber]) await (await c.peek())?.close();
  resetClients();
}
