// Compute Engine: the inventory. Every call retries transient faults (withRetry, the one retry layer);
// fingerprinted writes re-read on 412. Each function takes the client it uses, by default the shared one.
import type { InstancesClient, ProjectsClient, protos, ZoneOperationsClient } from '@google-cloud/compute';
import { clients, type Awaitable } from '../clients.js';
import { clientRetryOff, isConditionNotMet, isNotFound, withRetry } from '../errors.js';
import { lastSegment, osFamilyFromLicenses, type Vm } from '../domain/vm.js';

type Instance = protos.google.cloud.compute.v1.IInstance;
type Operation = protos.google.cloud.compute.v1.IOperation;

function metadataMap(items: protos.google.cloud.compute.v1.IItems[] | null | undefined): Record<string, string> {
  return Object.fromEntries((items ?? []).map((i) => [i.key ?? '', i.value ?? '']));
}

export function toVm(instance: Instance, project: string): Vm {
  const bootDisk = instance.disks?.find((d) => d.boot) ?? instance.disks?.[0];
  return {
    instanceId: String(instance.id ?? ''),
    name: instance.name ?? '',
    project,
    zone: lastSegment(instance.zone ?? ''),
    status: instance.status ?? 'UNKNOWN',
    labels: { ...(instance.labels ?? {}) },
    labelFingerprint: instance.labelFingerprint ?? '',
    metadata: metadataMap(instance.metadata?.items),
    metadataFingerprint: instance.metadata?.fingerprint ?? '',
    serviceAccounts: (instance.serviceAccounts ?? []).map((s) => s.email ?? '').filter(Boolean),
    os: osFamilyFromLicenses(bootDisk?.licenses ?? []),
    ...(instance.creationTimestamp ? { createdAt: new Date(instance.creationTimestamp) } : {}),
  };
}

export interface VmRef {
  project: string;
  zone: string;
  name: string;
}

const instanceRequest = (ref: VmRef) => ({ project: ref.project, zone: ref.zone, instance: ref.name });

async function readInstance(ref: VmRef, instances: InstancesClient): Promise<Instance> {
  const [instance] = await withRetry(() => instances.get(instanceRequest(ref), clientRetryOff()));
  return instance;
}

/** The VM, or null when it does not exist (any more). */
export async function getVm(
  ref: VmRef,
  instances: Awaitable<InstancesClient> = clients.instances(),
): Promise<Vm | null> {
  try {
    return toVm(await readInstance(ref, await instances), ref.project);
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** Whether the VM with this id still exists in that project and zone (Compute takes an id where it takes a name). */
export async function instanceExists(
  project: string,
  zone: string,
  instanceId: string,
  instances: Awaitable<InstancesClient> = clients.instances(),
): Promise<boolean> {
  return (await getVm({ project, zone, name: instanceId }, instances))?.instanceId === instanceId;
}

/** Project-wide metadata (commonInstanceMetadata), where enable-osconfig is usually set. */
export async function getProjectMetadata(
  project: string,
  projects: Awaitable<ProjectsClient> = clients.projects(),
): Promise<Record<string, string>> {
  const client = await projects;
  const [p] = await withRetry(() => client.get({ project }, clientRetryOff()));
  return metadataMap(p.commonInstanceMetadata?.items);
}

/** Every VM of a zone (paged by the client, 500 per page). A transient fault lists again from the start. */
export async function listZoneVms(
  project: string,
  zone: string,
  instances: Awaitable<InstancesClient> = clients.instances(),
): Promise<Vm[]> {
  const client = await instances;
  return withRetry(async () => {
    const vms: Vm[] = [];
    for await (const instance of client.listAsync({ project, zone, maxResults: 500 }, clientRetryOff()))
      vms.push(toVm(instance, project));
    return vms;
  });
}

/** Every VM of a project, one aggregated listing over all zones (500 per page). */
export async function listProjectVms(
  project: string,
  filter: { zonePrefix?: string } = {},
  instances: Awaitable<InstancesClient> = clients.instances(),
): Promise<Vm[]> {
  const client = await instances;
  return withRetry(async () => {
    const vms: Vm[] = [];
    for await (const [scope, list] of client.aggregatedListAsync({ project, maxResults: 500 }, clientRetryOff())) {
      if (filter.zonePrefix && !lastSegment(scope).startsWith(filter.zonePrefix)) continue;
      for (const instance of list.instances ?? []) vms.push(toVm(instance, project));
    }
    return vms;
  });
}

/** Waits for a zone operation; the zoneOperations client is taken (or created) only if it is still running. */
async function waitForZoneOperation(
  project: string,
  zone: string,
  operation: Operation,
  zoneOperations: Awaitable<ZoneOperationsClient> | undefined,
): Promise<void> {
  let op = operation;
  while (op.status !== 'DONE') {
    const client = await (zoneOperations ?? clients.zoneOperations());
    [op] = await withRetry(() => client.wait({ project, zone, operation: String(op.name) }, clientRetryOff()));
  }
  if (op.error?.errors?.length) {
    const first = op.error.errors[0];
    throw Object.assign(new Error(`operation ${op.name} failed: ${first?.code} ${first?.message}`), {
      code: first?.code,
    });
  }
}

/** How many times a fingerprinted write re-reads after losing a race (412) before it gives up. */
const FINGERPRINT_REREADS = 5;

/**
 * Optimistic concurrency for a field Compute replaces whole (metadata, labels): read the instance, write
 * against the fingerprint read, and on 412 (someone else wrote in between) read again and write again.
 * This loop handles only 412; each call inside retries its own transient faults (withRetry), once.
 */
async function writeAgainstFingerprint(
  ref: VmRef,
  instances: Awaitable<InstancesClient>,
  zoneOperations: Awaitable<ZoneOperationsClient> | undefined,
  write: (client: InstancesClient, current: Instance) => Promise<[{ latestResponse: unknown }, ...unknown[]]>,
): Promise<void> {
  const client = await instances;
  for (let reread = 0; ; reread++) {
    const current = await readInstance(ref, client);
    try {
      const [op] = await withRetry(() => write(client, current));
      await waitForZoneOperation(ref.project, ref.zone, op.latestResponse as Operation, zoneOperations);
      return;
    } catch (error) {
      if (!isConditionNotMet(error) || reread >= FINGERPRINT_REREADS) throw error;
    }
  }
}

/** Sets one instance metadata key, keeping the others (metadata is replaced whole, guarded by its fingerprint). */
export async function setInstanceMetadata(
  ref: VmRef,
  key: string,
  value: string,
  instances: Awaitable<InstancesClient> = clients.instances(),
  zoneOperations?: Awaitable<ZoneOperationsClient>,
): Promise<void> {
  await writeAgainstFingerprint(ref, instances, zoneOperations, (client, current) => {
    const items = (current.metadata?.items ?? []).filter((i) => i.key !== key);
    items.push({ key, value });
    return client.setMetadata(
      { ...instanceRequest(ref), metadataResource: { fingerprint: current.metadata?.fingerprint ?? '', items } },
      clientRetryOff(),
    );
  });
}

/** Sets one label, keeping the others (same fingerprint discipline as metadata). */
export async function setInstanceLabel(
  ref: VmRef,
  key: string,
  value: string,
  instances: Awaitable<InstancesClient> = clients.instances(),
  zoneOperations?: Awaitable<ZoneOperationsClient>,
): Promise<void> {
  await writeAgainstFingerprint(ref, instances, zoneOperations, (client, current) =>
    client.setLabels(
      {
        ...instanceRequest(ref),
        instancesSetLabelsRequestResource: {
          labels: { ...(current.labels ?? {}), [key]: value },
          labelFingerprint: current.labelFingerprint ?? '',
        },
      },
      clientRetryOff(),
    ),
  );
}
