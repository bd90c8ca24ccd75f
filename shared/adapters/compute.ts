// Compute Engine: the inventory. Every call retries transient faults; fingerprinted writes re-read on 412.
import type { protos } from '@google-cloud/compute';
import { clients } from '../clients.js';
import { isConditionNotMet, isNotFound, withRetry } from '../errors.js';
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

/** The VM, or null when it does not exist (any more). */
export async function getVm(ref: VmRef): Promise<Vm | null> {
  try {
    const [instance] = await withRetry(async () =>
      (await clients.instances()).get({ project: ref.project, zone: ref.zone, instance: ref.name }),
    );
    return toVm(instance, ref.project);
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** Whether the VM with this id still exists in that project and zone (Compute takes an id where it takes a name). */
export async function instanceExists(project: string, zone: string, instanceId: string): Promise<boolean> {
  return (await getVm({ project, zone, name: instanceId }))?.instanceId === instanceId;
}

/** Project-wide metadata (commonInstanceMetadata), where enable-osconfig is usually set. */
export async function getProjectMetadata(project: string): Promise<Record<string, string>> {
  const [p] = await withRetry(async () => (await clients.projects()).get({ project }));
  return metadataMap(p.commonInstanceMetadata?.items);
}

/** Every VM of a zone (paged by the client, 500 per page). */
export async function listZoneVms(project: string, zone: string): Promise<Vm[]> {
  const vms: Vm[] = [];
  await withRetry(async () => {
    vms.length = 0;
    for await (const instance of (await clients.instances()).listAsync({ project, zone, maxResults: 500 }))
      vms.push(toVm(instance, project));
  });
  return vms;
}

/** Every VM of a project, one aggregated listing over all zones (500 per page). */
export async function listProjectVms(project: string, filter?: { zonePrefix?: string }): Promise<Vm[]> {
  const vms: Vm[] = [];
  await withRetry(async () => {
    vms.length = 0;
    for await (const [scope, list] of (await clients.instances()).aggregatedListAsync({ project, maxResults: 500 })) {
      if (filter?.zonePrefix && !lastSegment(scope).startsWith(filter.zonePrefix)) continue;
      for (const instance of list.instances ?? []) vms.push(toVm(instance, project));
    }
  });
  return vms;
}

async function waitForZoneOperation(project: string, zone: string, operation: Operation): Promise<void> {
  let op = operation;
  while (op.status !== 'DONE') {
    [op] = await withRetry(async () =>
      (await clients.zoneOperations()).wait({ project, zone, operation: String(op.name) }),
    );
  }
  if (op.error?.errors?.length) {
    const first = op.error.errors[0];
    throw Object.assign(new Error(`operation ${op.name} failed: ${first?.code} ${first?.message}`), {
      code: first?.code,
    });
  }
}

/**
 * Sets one instance metadata key, keeping the others. Metadata is replaced whole and guarded by a
 * fingerprint: someone else's write in between gives 412, and the write is retried on a fresh read.
 */
export async function setInstanceMetadata(ref: VmRef, key: string, value: string): Promise<void> {
  await withRetry(
    async () => {
      const [instance] = await withRetry(async () =>
        (await clients.instances()).get({ project: ref.project, zone: ref.zone, instance: ref.name }),
      );
      const items = (instance.metadata?.items ?? []).filter((i) => i.key !== key);
      items.push({ key, value });
      const [op] = await withRetry(
        async () =>
          (await clients.instances()).setMetadata({
            project: ref.project,
            zone: ref.zone,
            instance: ref.name,
            metadataResource: { fingerprint: instance.metadata?.fingerprint ?? '', items },
          }),
        { retries: 0 },
      );
      await waitForZoneOperation(ref.project, ref.zone, op.latestResponse as Operation);
    },
    { alsoRetry: isConditionNotMet },
  );
}

/** Sets one label, keeping the others (same fingerprint discipline as metadata). */
export async function setInstanceLabel(ref: VmRef, key: string, value: string): Promise<void> {
  await withRetry(
    async () => {
      const [instance] = await withRetry(async () =>
        (await clients.instances()).get({ project: ref.project, zone: ref.zone, instance: ref.name }),
      );
      const [op] = await withRetry(
        async () =>
          (await clients.instances()).setLabels({
            project: ref.project,
            zone: ref.zone,
            instance: ref.name,
            instancesSetLabelsRequestResource: {
              labels: { ...(instance.labels ?? {}), [key]: value },
              labelFingerprint: instance.labelFingerprint ?? '',
            },
          }),
        { retries: 0 },
      );
      await waitForZoneOperation(ref.project, ref.zone, op.latestResponse as Operation);
    },
    { alsoRetry: isConditionNotMet },
  );
}
