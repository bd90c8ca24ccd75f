// OS Config (VM Manager): the zone's osquery OS policy assignment.
import type { protos } from '@google-cloud/os-config';
import { clients } from '../clients.js';
import { callApi, isAlreadyExists, isNotFound } from '../errors.js';

export type Assignment = protos.google.cloud.osconfig.v1.IOSPolicyAssignment;

export const assignmentName = (project: string, zone: string, id: string) => `projects/${project}/locations/${zone}/osPolicyAssignments/${id}`;

export async function getAssignment(project: string, zone: string, id: string): Promise<Assignment | null> {
  try {
    const [assignment] = await callApi('osconfig.osPolicyAssignments.get', () => clients.osConfig().getOSPolicyAssignment({ name: assignmentName(project, zone, id) }));
    return assignment;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/**
 * Creates the assignment and waits for the operation. Creates race when many VMs appear in a new zone
 * at once: the losers get ALREADY_EXISTS, which means the goal is met, so they read the winner's.
 */
export async function createAssignment(project: string, zone: string, id: string, body: Assignment): Promise<{ assignment: Assignment; created: boolean }> {
  try {
    const assignment = await callApi('osconfig.osPolicyAssignments.create', async () => {
      const [operation] = await clients.osConfig().createOSPolicyAssignment({ parent: `projects/${project}/locations/${zone}`, osPolicyAssignmentId: id, osPolicyAssignment: body });
      const [result] = await operation.promise();
      return result as Assignment;
    });
    return { assignment, created: true };
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
    const existing = await getAssignment(project, zone, id);
    if (!existing) throw error;
    return { assignment: existing, created: false };
  }
}

/** Ensures the zone has the assignment: one read when it does, a create when it does not. */
export async function ensureAssignment(project: string, zone: string, id: string, build: () => Promise<Assignment>): Promise<{ assignment: Assignment; created: boolean }> {
  const existing = await getAssignment(project, zone, id);
  if (existing) return { assignment: existing, created: false };
  return createAssignment(project, zone, id, await build());
}

/** Replaces the assignment's policies, filter and rollout (a new revision and rollout) and waits for it. */
export async function updateAssignment(name: string, body: Assignment): Promise<Assignment> {
  return callApi('osconfig.osPolicyAssignments.patch', async () => {
    const [operation] = await clients.osConfig().updateOSPolicyAssignment({
      osPolicyAssignment: { ...body, name },
      updateMask: { paths: ['description', 'os_policies', 'instance_filter', 'rollout'] },
    });
    const [result] = await operation.promise();
    return result as Assignment;
  });
}
