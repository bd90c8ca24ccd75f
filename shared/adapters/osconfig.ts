// OS Config (VM Manager): the zone's osquery OS policy assignment, and the zone's reports and inventories.
// Each function takes the client it uses, by default the shared one; withRetry is the one retry layer.
// Every attempt spends the global API budget first (shared/adapters/api-budget.ts): an OS Config read or
// write, and a create's or update's operation poll as a read.
import type { OsConfigZonalServiceClient, protos } from '@google-cloud/os-config';
import { clients, type Awaitable } from '../clients.js';
import { clientRetryOff, isAlreadyExists, isNotFound, withRetry } from '../errors.js';
import { spendApiBudget } from './api-budget.js';

export type Assignment = protos.google.cloud.osconfig.v1.IOSPolicyAssignment;
type Client = Awaitable<OsConfigZonalServiceClient>;

export const assignmentName = (project: string, zone: string, id: string) =>
  `projects/${project}/locations/${zone}/osPolicyAssignments/${id}`;

export async function getAssignment(
  project: string,
  zone: string,
  id: string,
  osConfig: Client = clients.osConfig(),
): Promise<Assignment | null> {
  const client = await osConfig;
  try {
    const [assignment] = await withRetry(async () => {
      await spendApiBudget('osconfigReads');
      return client.getOSPolicyAssignment({ name: assignmentName(project, zone, id) }, clientRetryOff());
    });
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
export async function createAssignment(
  project: string,
  zone: string,
  id: string,
  body: Assignment,
  osConfig: Client = clients.osConfig(),
): Promise<{ assignment: Assignment; created: boolean }> {
  const client = await osConfig;
  try {
    const assignment = await withRetry(async () => {
      await spendApiBudget('osconfigWrites');
      const [operation] = await client.createOSPolicyAssignment(
        { parent: `projects/${project}/locations/${zone}`, osPolicyAssignmentId: id, osPolicyAssignment: body },
        clientRetryOff(),
      );
      // Spent once the write has left: a grant waited for before it would make the write leave late.
      await spendApiBudget('osconfigReads');
      const [result] = await operation.promise();
      return result as Assignment;
    });
    return { assignment, created: true };
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
    const existing = await getAssignment(project, zone, id, client);
    if (!existing) throw error;
    return { assignment: existing, created: false };
  }
}

/** Ensures the zone has the assignment: one read when it does, a create when it does not. */
export async function ensureAssignment(
  project: string,
  zone: string,
  id: string,
  build: () => Promise<Assignment>,
  osConfig: Client = clients.osConfig(),
): Promise<{ assignment: Assignment; created: boolean }> {
  const client = await osConfig;
  const existing = await getAssignment(project, zone, id, client);
  if (existing) return { assignment: existing, created: false };
  return createAssignment(project, zone, id, await build(), client);
}

/** Replaces the assignment's policies, filter and rollout (a new revision and rollout) and waits for it. */
export async function updateAssignment(
  name: string,
  body: Assignment,
  osConfig: Client = clients.osConfig(),
): Promise<Assignment> {
  const client = await osConfig;
  return withRetry(async () => {
    await spendApiBudget('osconfigWrites');
    const [operation] = await client.updateOSPolicyAssignment(
      {
        osPolicyAssignment: { ...body, name },
        updateMask: { paths: ['description', 'os_policies', 'instance_filter', 'rollout'] },
      },
      clientRetryOff(),
    );
    await spendApiBudget('osconfigReads'); // the operation's poll, as in createAssignment
    const [result] = await operation.promise();
    return result as Assignment;
  });
}

export type AssignmentReport = protos.google.cloud.osconfig.v1.IOSPolicyAssignmentReport;
export type Inventory = protos.google.cloud.osconfig.v1.IInventory;

// Partial responses (X-Goog-FieldMask): only what the audit reads, not every config step's output.
const REPORT_FIELDS =
  'nextPageToken,osPolicyAssignmentReports(name,updateTime,osPolicyCompliances(osPolicyId,complianceState,' +
  'complianceStateReason,osPolicyResourceCompliances(osPolicyResourceId,complianceState)))';
const INVENTORY_FIELDS = 'nextPageToken,inventories(name,osInfo(shortName,version,osconfigAgentVersion),items)';
const withFields = (fields: string) => ({
  ...clientRetryOff(),
  autoPaginate: false,
  otherArgs: { headers: { 'X-Goog-FieldMask': fields } },
});

/** Every OS policy assignment report of a zone, one wildcard listing (instances/-, assignments/-). */
export async function listZoneReports(
  project: string,
  zone: string,
  osConfig: Client = clients.osConfig(),
): Promise<AssignmentReport[]> {
  const client = await osConfig;
  return withRetry(async () => {
    await spendApiBudget('osconfigReads'); // one page (1,000 reports); a zone with more spends the rest unbudgeted
    const reports: AssignmentReport[] = [];
    const parent = `projects/${project}/locations/${zone}/instances/-/osPolicyAssignments/-`;
    for await (const r of client.listOSPolicyAssignmentReportsAsync(
      { parent, pageSize: 1000 },
      withFields(REPORT_FIELDS),
    ))
      reports.push(r);
    return reports;
  });
}

/** Every VM inventory of a zone with installed packages (FULL view), one wildcard listing. */
export async function listZoneInventories(
  project: string,
  zone: string,
  osConfig: Client = clients.osConfig(),
): Promise<Inventory[]> {
  const client = await osConfig;
  return withRetry(async () => {
    await spendApiBudget('osconfigReads'); // one page, as the reports above
    const inventories: Inventory[] = [];
    for await (const inv of client.listInventoriesAsync(
      { parent: `projects/${project}/locations/${zone}/instances/-`, view: 'FULL', pageSize: 1000 },
      withFields(INVENTORY_FIELDS),
    ))
      inventories.push(inv);
    return inventories;
  });
}

/** `projects/P/locations/Z/instances/I/osPolicyAssignments/A/report` -> I (the instance id or name). */
export const instanceOfReport = (name: string | null | undefined) =>
  /\/instances\/([^/]+)\/osPolicyAssignments\//.exec(name ?? '')?.[1] ?? null;

/** `projects/P/locations/Z/instances/I/inventory` -> I (the instance id or name). */
export const instanceOfInventory = (name: string | null | undefined) =>
  /\/instances\/([^/]+)\/inventory$/.exec(name ?? '')?.[1] ?? null;

/** The installed osquery version in a FULL inventory, or null. */
export function osqueryVersionOf(inventory: Inventory): string | null {
  for (const item of Object.values(inventory.items ?? {})) {
    const pkg = item.installedPackage;
    const found =
      pkg?.aptPackage?.packageName === 'osquery'
        ? pkg.aptPackage
        : pkg?.yumPackage?.packageName === 'osquery'
          ? pkg.yumPackage
          : null;
    if (found?.version) return found.version.replace(/-.*$/, '');
  }
  return null;
}
