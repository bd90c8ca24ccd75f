// Turns a Compute Engine audit-log entry into the one thing vmLifecycle should do about it, whichever way
// it came: an Eventarc CloudEvent (the orchestrator's own project), or the LogEntry JSON a log sink
// published to Pub/Sub (every project under an organisation or folder). Both end in parseAuditLogEntry.
import { z } from 'zod';
import { isInstanceId, isInstanceName, isProjectId, isZone } from './ids.js';
import { messageOf, PUBSUB_MESSAGE_EVENT_TYPE } from './pubsub-message.js';

export interface InstanceRef {
  project: string;
  zone: string;
  name: string;
  /** Numeric instance id when the entry carries it (resource.labels.instance_id). */
  instanceId?: string;
}

export type LifecycleAction =
  | { kind: 'enroll'; instance: InstanceRef; method: string; operationId?: string }
  | { kind: 'retire'; instance: InstanceRef; method: string; operationId?: string }
  /** A bulkInsert entry that does not name its instances: enroll whatever the location now holds. */
  | {
      kind: 'reconcile-location';
      project: string;
      zone?: string;
      region?: string;
      method: string;
      operationId?: string;
    }
  | { kind: 'ignore'; reason: string; method?: string }
  | { kind: 'invalid'; reason: string };

/**
 * Every audit-log method name vmLifecycle acts on (v1., beta., and unprefixed: managed instance groups).
 * Eventarc's triggers (through the function manifest) and the log sink's filter in Terraform must match
 * exactly these (test/unit/terraform.test.ts).
 */
export const LIFECYCLE_METHODS: readonly string[] = ['v1.', 'beta.', ''].flatMap((prefix) =>
  ['insert', 'bulkInsert', 'delete'].map((verb) => `${prefix}compute.instances.${verb}`),
);
const verbOf = (method: string) =>
  LIFECYCLE_METHODS.includes(method)
    ? (method.slice(method.lastIndexOf('.') + 1) as 'insert' | 'bulkInsert' | 'delete')
    : undefined;
const INSTANCE_NAME = /^projects\/([^/]+)\/zones\/([^/]+)\/instances\/([^/]+)$/;
const ZONE_OR_REGION = /^projects\/([^/]+)\/(zones|regions)\/([^/]+)(?:\/instances)?\/?$/;

const entrySchema = z.object({
  protoPayload: z.object(
    {
      serviceName: z.string().optional(),
      methodName: z.string({ message: 'protoPayload.methodName is missing' }),
      resourceName: z.string({ message: 'protoPayload.resourceName is missing' }),
      status: z.object({ code: z.number().optional(), message: z.string().optional() }).passthrough().optional(),
    },
    { message: 'protoPayload is missing' },
  ),
  resource: z.object({ type: z.string().optional(), labels: z.record(z.string(), z.string()).optional() }).optional(),
  operation: z
    .object({ id: z.string().optional(), first: z.boolean().optional(), last: z.boolean().optional() })
    .optional(),
});

/** Why a resource name's project, zone or instance name is not one Compute could have written, or null. */
function identityProblem(project: string, zone: string, name: string): string | null {
  if (!isProjectId(project)) return `project ${JSON.stringify(project.slice(0, 100))} is not a project id`;
  if (!isZone(zone)) return `zone ${JSON.stringify(zone.slice(0, 100))} is not a zone`;
  if (!isInstanceName(name)) return `instance name ${JSON.stringify(name.slice(0, 100))} is not an instance name`;
  return null;
}

export const AUDIT_LOG_EVENT_TYPE = 'google.cloud.audit.log.v1.written';
const NOT_JSON = 'the audit log entry is not JSON';

/**
 * Pure: a CloudEvent's type and data (already JSON-decoded, or a string/Buffer that failed to) -> action.
 * Eventarc's audit-log event carries the entry as its data; a log sink's entry arrives as the data of a
 * Pub/Sub message (the messagePublished event the Functions Framework makes of a push).
 */
export function parseAuditLogEvent(type: string | undefined, data: unknown): LifecycleAction {
  if (type === AUDIT_LOG_EVENT_TYPE) {
    if (typeof data === 'string' || Buffer.isBuffer(data)) return { kind: 'invalid', reason: NOT_JSON };
    return parseAuditLogEntry(data);
  }
  if (type === PUBSUB_MESSAGE_EVENT_TYPE) {
    const unwrapped = messageOf(data);
    if (!unwrapped.ok) return { kind: 'invalid', reason: unwrapped.reason };
    let entry: unknown;
    try {
      entry = JSON.parse(unwrapped.message.data.toString('utf8'));
    } catch {
      return { kind: 'invalid', reason: NOT_JSON };
    }
    return parseAuditLogEntry(entry);
  }
  return { kind: 'invalid', reason: `unexpected event type ${JSON.stringify(type)}` };
}

/** Pure: one Compute Engine audit LogEntry (JSON) -> action. The one parser of both delivery paths. */
export function parseAuditLogEntry(data: unknown): LifecycleAction {
  const parsed = entrySchema.safeParse(data);
  if (!parsed.success) {
    return {
      kind: 'invalid',
      reason: parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; '),
    };
  }
  const { protoPayload, resource, operation } = parsed.data;
  const method = protoPayload.methodName;
  const verb = verbOf(method);
  if (!verb)
    return { kind: 'ignore', reason: `method ${method} is not an instance insert, bulkInsert or delete`, method };
  if (protoPayload.serviceName && protoPayload.serviceName !== 'compute.googleapis.com') {
    return { kind: 'ignore', reason: `service ${protoPayload.serviceName} is not compute.googleapis.com`, method };
  }
  // Two entries per operation; only the last one says whether it succeeded, and the VM may not exist before it.
  if (operation && operation.last !== true)
    return { kind: 'ignore', reason: 'not the last entry of the operation', method };
  if (protoPayload.status?.code) {
    return {
      kind: 'ignore',
      reason: `operation failed: code ${protoPayload.status.code} ${protoPayload.status.message ?? ''}`.trim(),
      method,
    };
  }
  const operationId = operation?.id;
  const named = INSTANCE_NAME.exec(protoPayload.resourceName);
  if (named) {
    const [, project, zone, name] = named as unknown as [string, string, string, string];
    const wrong = identityProblem(project, zone, name);
    if (wrong) return { kind: 'invalid', reason: wrong };
    // The id becomes a Firestore document id: anything but a Compute instance id is refused here.
    const instanceId = resource?.labels?.instance_id || undefined; // empty: the entry names no id
    if (instanceId !== undefined && !isInstanceId(instanceId))
      return {
        kind: 'invalid',
        reason:
          `resource.labels.instance_id ${JSON.stringify(instanceId.slice(0, 100))} ` +
          'is not an unsigned 64-bit decimal',
      };
    const instance: InstanceRef = { project, zone, name, ...(instanceId ? { instanceId } : {}) };
    return verb === 'delete'
      ? { kind: 'retire', instance, method, operationId }
      : { kind: 'enroll', instance, method, operationId };
  }
  const location = ZONE_OR_REGION.exec(protoPayload.resourceName);
  if (verb === 'bulkInsert' && location) {
    const [, project, scope, where] = location as unknown as [string, string, string, string];
    if (!isProjectId(project) || !isZone(where))
      return {
        kind: 'invalid',
        reason: `resourceName ${JSON.stringify(protoPayload.resourceName.slice(0, 200))} is not a location`,
      };
    return scope === 'zones'
      ? { kind: 'reconcile-location', project, zone: where, method, operationId }
      : { kind: 'reconcile-location', project, region: where, method, operationId };
  }
  return {
    kind: 'invalid',
    reason: `resourceName ${JSON.stringify(protoPayload.resourceName.slice(0, 200))} does not name an instance`,
  };
}
