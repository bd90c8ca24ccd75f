// The function manifest: every function of the orchestrator, once. functions/index.ts registers each
// entry point from it, the local stack serves and wires each from it (infra/local/functions.ts), and
// Terraform deploys each from it: `npm run manifest` writes infra/terraform/functions.json, which the
// Terraform reads with for_each (a unit test fails when that file is stale).
//
// Adding a function: an entry here, its handler (functions/<name>.ts, loaded by `load` on the first
// event), its test, and `npm run manifest`. Its memory is sized from its peak: until a cold-start
// scenario in test/bench/bench.ts measures it (`npm run bench -- --only coldstart.<name>`), the figure
// here is an estimate.
//
// Data only: nothing here runs as the module loads, and no handler is imported up front (Cloud Functions
// loads functions/index.ts, and so this module, for every function; `load` imports one handler on demand).
import type { CloudEvent, Request, Response } from '@google-cloud/functions-framework';
import type { Config } from '../shared/config.js';
import { AUDIT_LOG_EVENT_TYPE, LIFECYCLE_METHODS } from '../shared/domain/audit-event.js';
import { PUBSUB_MESSAGE_EVENT_TYPE } from '../shared/domain/pubsub-message.js';
import { LOG_HEARTBEAT_FILTER } from '../shared/osquery/log-routing.js';

/** A setting naming a Pub/Sub topic (shared/config.ts), the way the manifest names topics. */
export type TopicSetting = Extract<keyof Config, `${string}_TOPIC`>;
/** A setting naming a Pub/Sub subscription. */
export type SubscriptionSetting = Extract<keyof Config, `${string}_SUBSCRIPTION`>;
/** The Terraform variables a function's deployment is tuned by (infra/terraform/variables.tf). */
export type TerraformVariable =
  | 'max_instances'
  | 'audit_shard_max_instances'
  | 'status_page_max_instances'
  | 'log_heartbeat_concurrency'
  | 'log_drain_budget_seconds';

/** How events reach a function. */
export type Trigger =
  /**
   * Cloud Audit Logs entries of a service (Eventarc: one trigger per method name, the first the
   * function's own), and the same entries of every target project through the enrollment log sink's
   * topic, pushed (infra/terraform/sink.tf).
   */
  | { kind: 'auditLog'; service: string; methods: readonly string[] }
  /** Messages on the topic of a setting (an Eventarc Pub/Sub trigger). */
  | { kind: 'pubsub'; topic: TopicSetting }
  /**
   * Messages on the topic of a setting that pass a filter, through a push subscription of its own (an
   * Eventarc trigger cannot filter): Pub/Sub acknowledges the rest without invoking the function.
   */
  | { kind: 'filteredPush'; topic: TopicSetting; filter: string }
  /** Browsers (no trigger, no retry): private by Cloud Run invoker IAM, or behind IAP. */
  | { kind: 'http' };

/** What a function's service account is granted, and nothing more. */
export interface Permissions {
  /** In every target project (a custom role there), and under every target folder or organisation. */
  target: readonly string[];
  /** Besides `target`, under each target folder or organisation: listing what is below it (usecases/targets.ts). */
  parent: readonly string[];
  /** Firestore in the orchestrator project: reads and writes (roles/datastore.user), reads only (datastore.viewer). */
  firestore: 'write' | 'read' | 'none';
  /** Topics it publishes to (roles/pubsub.publisher on each, never project-wide). */
  publishes: readonly TopicSetting[];
  /** Subscriptions it pulls from, acknowledges and releases (roles/pubsub.subscriber on each). */
  subscribes: readonly SubscriptionSetting[];
}

export type EventHandler = (event: CloudEvent<unknown>) => Promise<void>;
export type HttpHandler = (req: Request, res: Response) => Promise<void>;

interface Common {
  /** The Cloud Function's description. */
  description: string;
  /** What it runs for, as its service account's description says ("Runs <name>: <duty>."). */
  duty: string;
  /**
   * Resident memory at work, MB, as `npm run bench` measures it on Node 22 (the larger of two runs):
   * coldstart.<function> peakRssMb, a fresh instance and its first event on its heaviest path. The
   * function gets the smallest Cloud Functions size of at least twice this (memorySize). Re-measure
   * when the code or its dependencies change.
   */
  peakMb: number;
  /** Seconds an invocation may run; with `timeoutAfter`, that many seconds after the budget that variable sets. */
  timeoutSeconds: number;
  timeoutAfter?: 'log_drain_budget_seconds';
  /** The variable its instance count is capped by. */
  maxInstances: TerraformVariable;
  /** Requests one instance serves at once (a variable), when more than Cloud Functions' 1. */
  concurrency?: 'log_heartbeat_concurrency';
  /** CPUs, when more than the memory size gives. */
  cpu?: '1';
  /**
   * Deployed only with this log_heartbeat_delivery (Terraform), the way the log topic's heartbeat lines
   * reach the code. Its service account exists either way (switching never recreates it); its grants
   * follow the delivery, except where `grantsInBothDeliveries` (logHeartbeat's predate pull delivery).
   */
  delivery?: 'push' | 'pull';
  grantsInBothDeliveries?: true;
  permissions: Permissions;
}

export interface EventFunction extends Common {
  trigger: Exclude<Trigger, { kind: 'http' }>;
  /** Imports its handler (on the first event). */
  load: () => Promise<EventHandler>;
}
export interface HttpFunction extends Common {
  trigger: Extract<Trigger, { kind: 'http' }>;
  load: () => Promise<HttpHandler>;
}
export type FunctionSpec = EventFunction | HttpFunction;
export const isHttp = (spec: FunctionSpec): spec is HttpFunction => spec.trigger.kind === 'http';

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
/** What a function that only records what it reads needs: Firestore, alerts, dead letters. */
const RECORDS_AND_ALERTS: Permissions = {
  target: [],
  parent: [],
  firestore: 'write',
  publishes: ['ALERT_TOPIC', 'DEAD_LETTER_TOPIC'],
  subscribes: [],
};

/**
 * Every function, by entry point (the names are the contract's: docs/contracts.md). In this order the local
 * stack gives them ports (npm start: 8081 up): a new function goes last, so the others keep theirs.
 */
export const FUNCTIONS = {
  vmLifecycle: {
    description: 'Enrolls a new VM or retires a deleted one (Compute Engine audit logs).',
    duty: 'enrolls new VMs and retires deleted ones',
    trigger: { kind: 'auditLog', service: 'compute.googleapis.com', methods: LIFECYCLE_METHODS },
    load: async () => (await import('./vm-lifecycle.js')).vmLifecycle,
    peakMb: 209,
    timeoutSeconds: 300,
    maxInstances: 'max_instances',
    permissions: {
      target: [
        ...COMPUTE_READ,
        ...COMPUTE_FIX,
        'osconfig.osPolicyAssignments.get',
        'osconfig.osPolicyAssignments.create',
      ],
      parent: [],
      firestore: 'write',
      // A host blocked at enrollment alerts at once.
      publishes: ['ALERT_TOPIC'],
      subscribes: [],
    },
  },
  fleetAudit: {
    description: 'Starts an audit run: one shard message per target project.',
    duty: 'starts an audit run, one shard message per target project',
    trigger: { kind: 'pubsub', topic: 'AUDIT_TICK_TOPIC' },
    load: async () => (await import('./fleet-audit.js')).fleetAudit,
    peakMb: 149,
    timeoutSeconds: 120,
    maxInstances: 'max_instances',
    // Resolves the targets at the start of each run: folders to projects, projects without the APIs skipped.
    permissions: {
      target: [...SERVICE_CHECK],
      parent: [...TARGET_DISCOVERY],
      firestore: 'write',
      publishes: ['AUDIT_SHARD_TOPIC', 'DEAD_LETTER_TOPIC'],
      subscribes: [],
    },
  },
  fleetAuditShard: {
    description: 'Reconciles one target project: Compute inventory, OS Config reports and inventory, Firestore.',
    duty: 'reconciles one target project',
    trigger: { kind: 'pubsub', topic: 'AUDIT_SHARD_TOPIC' },
    load: async () => (await import('./fleet-audit.js')).fleetAuditShard,
    // Its work grows with the project: its cold start plus the audit's rssGrowthMb for a 10,000-VM project.
    peakMb: 489,
    timeoutSeconds: 540,
    // Each instance paces OS Config calls on its own: more instances, more calls per minute.
    maxInstances: 'audit_shard_max_instances',
    permissions: {
      target: [
        ...COMPUTE_READ,
        ...COMPUTE_FIX,
        ...ASSIGNMENT_WRITE,
        'osconfig.osPolicyAssignmentReports.list',
        'osconfig.inventories.list',
      ],
      parent: [],
      firestore: 'write',
      publishes: ['ALERT_TOPIC', 'DEAD_LETTER_TOPIC'],
      subscribes: [],
    },
  },
  logHeartbeat: {
    description: "Records when each host's osquery logs last arrived.",
    duty: "records when each host's logs last arrived",
    trigger: { kind: 'filteredPush', topic: 'LOG_TOPIC', filter: LOG_HEARTBEAT_FILTER },
    load: async () => (await import('./log-heartbeat.js')).logHeartbeat,
    peakMb: 147,
    timeoutSeconds: 60,
    maxInstances: 'max_instances',
    // The busiest trigger: several messages per instance at once (needs a whole CPU).
    concurrency: 'log_heartbeat_concurrency',
    cpu: '1',
    delivery: 'push',
    grantsInBothDeliveries: true,
    permissions: RECORDS_AND_ALERTS,
  },
  monitoringAlert: {
    description: 'Attaches Cloud Monitoring incidents to hosts; raises and resolves alerts.',
    duty: 'attaches Cloud Monitoring incidents to hosts',
    trigger: { kind: 'pubsub', topic: 'INCIDENT_TOPIC' },
    load: async () => (await import('./monitoring-alert.js')).monitoringAlert,
    peakMb: 148,
    timeoutSeconds: 120,
    maxInstances: 'max_instances',
    permissions: RECORDS_AND_ALERTS,
  },
  fleetStatus: {
    description: 'The fleet status page, its JSON (/api/status) and the evidence CSV (/evidence.csv).',
    duty: 'reads the status snapshots, open alerts and hosts (read only)',
    trigger: { kind: 'http' },
    load: async () => (await import('./fleet-status.js')).fleetStatus,
    peakMb: 123,
    // A page view takes a few document reads; the evidence CSV streams every host, hence the timeout.
    timeoutSeconds: 300,
    maxInstances: 'status_page_max_instances',
    // Reads the status snapshots, open alerts, the rollout record, and hosts for the evidence CSV.
    permissions: { target: [], parent: [], firestore: 'read', publishes: [], subscribes: [] },
  },
  logHeartbeatDrain: {
    description: "Drains the filtered log subscription every minute: when each host's osquery logs last arrived.",
    duty: 'drains the filtered log subscription (pull delivery)',
    // The drain tick Cloud Scheduler publishes every minute; it drains logHeartbeat's filtered lines.
    trigger: { kind: 'pubsub', topic: 'LOG_DRAIN_TICK_TOPIC' },
    load: async () => (await import('./log-heartbeat-drain.js')).logHeartbeatDrain,
    // Ending a silent episode through a drain tick (one run: 147.2 MB; a drain holds up to 1,000 pulled
    // messages of ~1 KB at once, well inside the margin).
    peakMb: 150,
    // Its budget ends well before its timeout: in-flight messages finish, the rest is released.
    timeoutSeconds: 60,
    timeoutAfter: 'log_drain_budget_seconds',
    maxInstances: 'max_instances',
    // One drain per instance (the default concurrency): a drain keeps 160 messages in flight itself.
    cpu: '1',
    delivery: 'pull',
    // logHeartbeat's writes, from the filtered pull subscription.
    permissions: { ...RECORDS_AND_ALERTS, subscribes: ['LOG_HEARTBEAT_SUBSCRIPTION'] },
  },
} as const satisfies Record<string, FunctionSpec>;

export type FunctionName = keyof typeof FUNCTIONS;
export const FUNCTION_NAMES = Object.keys(FUNCTIONS) as FunctionName[];

/** Every function with its name, in the manifest's order. */
export function functionList(): Array<FunctionSpec & { name: FunctionName }> {
  return FUNCTION_NAMES.map((name) => ({ name, ...(FUNCTIONS[name] as FunctionSpec) }));
}

/**
 * The CloudEvent types a function takes: Pub/Sub messages, and for audit-log functions also Eventarc's
 * audit-log events (the enrollment sink's entries come as Pub/Sub messages).
 */
export function eventTypesOf(trigger: Trigger): string[] {
  if (trigger.kind === 'http') return [];
  return trigger.kind === 'auditLog' ? [AUDIT_LOG_EVENT_TYPE, PUBSUB_MESSAGE_EVENT_TYPE] : [PUBSUB_MESSAGE_EVENT_TYPE];
}

/** Cloud Functions' memory sizes, MiB. */
export const MEMORY_SIZES_MIB = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768] as const;

/** The smallest Cloud Functions memory size of at least twice a measured peak (MB), as Terraform writes it. */
export function memorySize(peakMb: number): string {
  const size = MEMORY_SIZES_MIB.find((mib) => mib >= 2 * peakMb);
  if (!size) throw new Error(`a peak of ${peakMb} MB fits no Cloud Functions memory size`);
  return `${size}Mi`;
}

/** Whether a function is deployed with a log_heartbeat_delivery (Terraform's; the local stack's --log-delivery). */
export function deployedWith(spec: Pick<FunctionSpec, 'delivery'>, delivery: 'push' | 'pull'): boolean {
  return spec.delivery === undefined || spec.delivery === delivery;
}

/** `osq-orch publish` in Cloud Build: resolve the targets, upload to the bucket, update every zone's assignment. */
export const PUBLISHER_PERMISSIONS = {
  target: ['compute.instances.list', 'compute.projects.get', ...ASSIGNMENT_WRITE, ...SERVICE_CHECK],
  parent: [...TARGET_DISCOVERY],
  bucket: ['storage.objects.create', 'storage.objects.get'],
  firestore: 'write',
} as const;
