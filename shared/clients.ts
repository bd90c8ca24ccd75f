// The one place that builds Google Cloud clients. Each is created on first use, so a cold start
// pays only for the clients its function touches.
import { InstancesClient, ProjectsClient, ZoneOperationsClient } from '@google-cloud/compute';
import { Firestore } from '@google-cloud/firestore';
import { OsConfigZonalServiceClient } from '@google-cloud/os-config';
import { Storage } from '@google-cloud/storage';
import { PubSub } from '@google-cloud/pubsub';
import { PassThroughClient } from 'google-auth-library';
import { config } from './config.js';
import { patchOsConfigDescriptors } from './adapters/osconfig-client-fix.js';
import { countApiCall } from './metrics.js';

/** Options that aim a REST client at the local simulator; empty in production. */
type ClientOptions = NonNullable<ConstructorParameters<typeof InstancesClient>[0]>;

function endpointOptions(): ClientOptions {
  const url = config().GOOGLE_API_ENDPOINT;
  if (!url) return {};
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

/**
 * Counts every RPC a gax client sends (each page of a listing, each retry) under `${api}.${method}`.
 * initialize() builds the per-method call functions synchronously; each is wrapped once.
 */
function counted<T extends object>(client: T, api: string): T {
  const c = client as unknown as {
    initialize(): unknown;
    innerApiCalls: Record<string, (...args: unknown[]) => unknown>;
  };
  void Promise.resolve(c.initialize()).catch(() => undefined); // failures surface on the first call
  for (const [method, call] of Object.entries(c.innerApiCalls)) {
    c.innerApiCalls[method] = (...args: unknown[]) => {
      countApiCall(`${api}.${method}`);
      return call(...args);
    };
  }
  return client;
}

function lazy<T>(make: () => T): { get: () => T; reset: () => void } {
  let value: T | undefined;
  return { get: () => (value ??= make()), reset: () => (value = undefined) };
}

const instances = lazy(() => counted(new InstancesClient(endpointOptions()), 'compute.instances'));
const zoneOperations = lazy(() => counted(new ZoneOperationsClient(endpointOptions()), 'compute.zoneOperations'));
const projects = lazy(() => counted(new ProjectsClient(endpointOptions()), 'compute.projects'));
// REST fallback: the same transport as Compute, and the one the simulator speaks.
const osConfig = lazy(() =>
  counted(
    patchOsConfigDescriptors(
      new OsConfigZonalServiceClient({ ...endpointOptions(), fallback: true } as OsConfigOptions),
    ),
    'osconfig',
  ),
);
const firestore = lazy(
  () => new Firestore({ databaseId: config().FIRESTORE_DATABASE, ignoreUndefinedProperties: true }),
);
// Storage takes the simulator's URL as apiEndpoint (no auth for a custom endpoint).
const storage = lazy(
  () =>
    new Storage(
      config().GOOGLE_API_ENDPOINT
        ? { apiEndpoint: config().GOOGLE_API_ENDPOINT, projectId: config().GOOGLE_CLOUD_PROJECT ?? 'local' }
        : {},
    ),
);
// PUBSUB_EMULATOR_HOST, when set, points it at the emulator.
const pubsub = lazy(() => new PubSub({ projectId: config().GOOGLE_CLOUD_PROJECT }));

export const clients = {
  instances: instances.get,
  zoneOperations: zoneOperations.get,
  projects: projects.get,
  osConfig: osConfig.get,
  firestore: firestore.get,
  storage: storage.get,
  pubsub: pubsub.get,
};

/** Drop every client so the next use reads the (changed) configuration again. */
export function resetClients(): void {
  for (const c of [instances, zoneOperations, projects, osConfig, firestore, storage, pubsub]) c.reset();
}
