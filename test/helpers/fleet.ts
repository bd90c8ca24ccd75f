// Small helpers shared by the integration suites.
import type { Stack } from './stack.js';

export interface SimVmView {
  id: string;
  name: string;
  labels: Record<string, string>;
  metadata: { items: Array<{ key: string; value: string }> };
}

/** Creates a VM through the control API and waits until its audit-log events were handled. */
export async function createVm(stack: Stack, spec: Record<string, unknown>): Promise<{ id: string; name: string }> {
  const vm = await stack.control('POST', '/vms', spec);
  await stack.flushEvents();
  return vm;
}

export async function simVm(stack: Stack, id: string): Promise<SimVmView | undefined> {
  return (await stack.control<SimVmView[]>('GET', '/vms')).find((v) => v.id === id);
}
