// What each function (and the publishing pipeline) calls, as IAM permissions. Terraform grants exactly
// these through custom roles, and test/terraform.test.ts checks that it does. Keep it beside the
// adapters' calls: a new client call needs its permission here.

/**
 * Permissions in every target project (Compute inventory, OS Config). Granted on each project
 * TARGET_PROJECTS lists, and on each folder or organisation it names (every project below inherits them).
 */
export type TargetPermissions = readonly string[];
/** Permissions in the orchestrator project (Firestore, Pub/Sub topics, the configuration bucket). */
export interface FunctionPermissions {
  target: TargetPermissions;
  /** Besides `target`, on each target folder or organisation: listing what is under it (shared/usecases/targets.ts). */
  parent: readonly string[];
  /**
   * Firestore access: `true` reads and writes (roles/datastore.user, the narrowest predefined role that
   * writes), `'read'` only reads (roles/datastore.viewer), `false` none.
   */
  firestore: boolean | 'read';
  /** Topics (by setting name) the function publishes to. */
  publishes: readonly string[];
  /** Subscriptions (by setting name) the function pulls from, acknowledges and releases. */
  subscribes?: readonly string[];
}

const COMPUTE_READ = [
  'compute.instances.get',
  'compute.instances.list',
  'compute.projects.get',
  'compute.zoneOperations.get',
] as const;
const COMPUTE_FIX = ['compute.instances.setLabels', 'compute.instances.setMetadata'] as const;
/** Resolving TARGET_PROJECTS: the projects and subfolders of a folder or organisation, and each project's APIs. */
const TARGET_DISCOVERY = ['resourcemanager.projects.list', 'resourcemanager.folders.list'] as const;
const SERVICE_CHECK = ['serviceusage.services.get'] as const;
const ASSIGNMENT_WRITE = [
  'osconfig.osPolicyAssignments.get',
  'osconfig.osPolicyAssignments.create',
  'osconfig.osPolicyAssignments.update',
] as const;

export const FUNCTION_PERMISSIONS: Record<string, FunctionPermissions> = {
  vmLifecycle: {
    target: [
      ...COMPUTE_READ,
      ...COMPUTE_FIX,
      'osconfig.osPolicyAssignments.get',
      'osconfig.osPolicyAssignments.create',
    ],
    parent: [],
    firestore: true,
    // A host blocked at enrollment alerts at once.
    publishes: ['ALERT_TOPIC'],
  },
  // Resolves the targets at the start of each run: folders to projects, projects without the APIs skipped.
  fleetAudit: {
    target: [...SERVICE_CHECK],
    parent: [...TARGET_DISCOVERY],
    firestore: true,
    publishes: ['AUDIT_SHARD_TOPIC', 'DEAD_LETTER_TOPIC'],
  },
  fleetAuditShard: {
    target: [
      ...COMPUTE_READ,
      ...COMPUTE_FIX,
      ...ASSIGNMENT_WRITE,
      'osconfig.osPolicyAssignmentReports.list',
      'osconfig.inventories.list',
    ],
    parent: [],
    firestore: true,
    publishes: ['ALERT_TOPIC', 'DEAD_LETTER_TOPIC'],
  },
  logHeartbeat: { target: [], parent: [], firestore: true, publishes: ['ALERT_TOPIC', 'DEAD_LETTER_TOPIC'] },
  // logHeartbeat's pull delivery: the same writes, from the filtered pull subscription.
  logHeartbeatDrain: {
    target: [],
    parent: [],
    firestore: true,
    publishes: ['ALERT_TOPIC', 'DEAD_LETTER_TOPIC'],
    subscribes: ['LOG_HEARTBEAT_SUBSCRIPTION'],
  },
  monitoringAlert: { target: [], parent: [], firestore: true, publishes: ['ALERT_TOPIC', 'DEAD_LETTER_TOPIC'] },
  // The status page: reads the status snapshots, open alerts, the rollout record, and hosts for the evidence CSV.
  fleetStatus: { target: [], parent: [], firestore: 'read', publishes: [] },
};

/** `osq-orch publish` in Cloud Build: resolve the targets, upload to the bucket, update every zone's assignment. */
export const PUBLISHER_PERMISSIONS = {
  target: ['compute.instances.list', 'compute.projects.get', ...ASSIGNMENT_WRITE, ...SERVICE_CHECK],
  parent: [...TARGET_DISCOVERY],
  bucket: ['storage.objects.create', 'storage.objects.get'],
  firestore: true,
} as const;
