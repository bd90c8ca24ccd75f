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

/** Options that aim a REST client at the local simulator; empty in production. */
type ClientOptions = NonNullable<ConstructorParameters<typeof InstancesClient>[0]>;

function endpointOptions(): ClientOptions {
  const url = config().GOOGLE_API_ENDPOINT;
  if (!url) return {};
  const u = new URL(url);
  // A port written inside apiEndpoint is ignored by the REST transport; it must be passed on its own.
  return { apiEndpoint: u.hostname, port: Number(u.port), protocol: u.protocol.replace(':', ''), authClient: new PassThroughClient() };
}

// os-config still depends on an older google-auth-library; the PassThroughClient works with both.
type OsConfigOptions = ConstructorParameters<typeof OsConfigZonalServiceClient>[0] & object;

function lazy<T>(make: () => T): { get: () => T; reset: () => void } {
  let value: T | undefined;
  return { get: () => (value ??= make()), reset: () => (value = undefined) };
}

const instances = lazy(() => new InstancesClient(endpointOptions()));
const zoneOperations = lazy(() => new ZoneOperationsClient(endpointOptions()));
const projects = lazy(() => new ProjectsClient(endpointOptions()));
// REST fallback: the same transport as Compute, and the one the simulator speaks.
const osConfig = lazy(() => patchOsConfigDescriptors(new OsConfigZonalServiceClient({ ...endpointOptions(), fallback: true } as OsConfigOptions)));
const firestore = lazy(() => new Firestore({ databaseId: config().FIRESTORE_DATABASE, ignoreUndefinedProperties: true }));
// Storage takes the simulator's URL as apiEndpoint (no auth for a custom endpoint).
const storage = lazy(() => new Storage(config().GOOGLE_API_ENDPOINT ? { apiEndpoint: config().GOOGLE_API_ENDPOINT, projectId: config().GOOGLE_CLOUD_PROJECT ?? 'local' } : {}));
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
