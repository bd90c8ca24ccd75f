// Compute Engine's audit log and the Eventarc stand-in: the entries of every insert and delete (two per
// operation: first, then last), delivered as binary-mode CloudEvents the way an Eventarc trigger delivers
// them, with retries on non-2xx. The log sink (log-sink.ts) is the other route of the same entries.
import { randomBytes } from 'node:crypto';
import { COMPUTE_BASE, type SimVm, type World } from './world.js';
import { sleep } from './http.js';

export interface Delivery {
  ceId: string;
  method: string;
  resourceName: string;
  position: 'first' | 'last';
  status: number | 'error';
  attempts: number;
}

/** Where Compute Engine's audit entries are written (the simulator's stand-in for Cloud Audit Logs). */
export interface AuditLogSink {
  instanceInserted(vm: SimVm, method: string, options?: { failed?: boolean }): void;
  instanceDeleted(vm: SimVm, method: string): void;
  /** bulkInsert: named = one entry pair per instance; otherwise one pair naming only the zone. */
  bulkInserted(project: string, zone: string, vms: SimVm[], method: string, named: boolean): void;
}

export interface EntrySpec {
  project: string;
  zone: string;
  resourceName: string;
  method: string;
  instanceId?: string;
  request?: Record<string, unknown>;
  failed?: boolean;
  targetId?: string;
}

/** One audit-log entry, built once: every route delivers the same LogEntry (same insertId). */
export interface AuditEntry {
  spec: EntrySpec;
  position: 'first' | 'last';
  /** The binary-mode CloudEvent Eventarc sends; its body is the LogEntry JSON a log sink publishes. */
  event: { headers: Record<string, string>; body: string };
}

/** A destination of audit entries: Eventarc (its own project) or a log sink (every project). */
export interface AuditLogRoute {
  accepts(project: string): boolean;
  /** Queues entries for delivery, in the order given. */
  enqueue(entries: AuditEntry[]): void;
  /** Resolves when everything queued so far was delivered (or given up on). */
  idle(): Promise<void>;
}

/**
 * Cloud Audit Logs for Compute Engine: two entries per operation (first, then last), written once and
 * routed to every route that takes the project, with the faults of /control/faults: lost
 * (`eventSinkUp: false`), duplicated (`duplicateEvents`: every entry delivered twice), out of order
 * (`reorderEvents`: entries are held, then delivered newest first, each operation's last entry before
 * its first, when the fault is cleared or the events are flushed), and failed operations (a last entry
 * with a non-zero status).
 */
export class AuditLog implements AuditLogSink {
  private held: AuditEntry[][] = [];

  constructor(
    private readonly world: World,
    readonly routes: AuditLogRoute[],
  ) {}

  instanceInserted(vm: SimVm, method: string, options: { failed?: boolean } = {}): void {
    this.operation({
      project: vm.project,
      zone: vm.zone,
      method,
      instanceId: vm.id,
      targetId: vm.id,
      failed: options.failed,
      resourceName: `projects/${vm.project}/zones/${vm.zone}/instances/${vm.name}`,
      request: {
        '@type': 'type.googleapis.com/compute.instances.insert',
        name: vm.name,
        labels: Object.entries(vm.labels).map(([key, value]) => ({ key, value })),
      },
    });
  }

  instanceDeleted(vm: SimVm, method: string): void {
    this.operation({
      project: vm.project,
      zone: vm.zone,
      method,
      instanceId: vm.id,
      targetId: vm.id,
      resourceName: `projects/${vm.project}/zones/${vm.zone}/instances/${vm.name}`,
      request: { '@type': 'type.googleapis.com/compute.instances.delete' },
    });
  }

  bulkInserted(project: string, zone: string, vms: SimVm[], method: string, named: boolean): void {
    if (named) {
      for (const vm of vms)
        this.operation({
          project,
          zone,
          method,
          instanceId: vm.id,
          targetId: vm.id,
          resourceName: `projects/${project}/zones/${zone}/instances/${vm.name}`,
          request: { '@type': 'type.googleapis.com/compute.instances.bulkInsert' },
        });
    } else {
      this.operation({
        project,
        zone,
        method,
        resourceName: `projects/${project}/zones/${zone}`,
        request: { '@type': 'type.googleapis.com/compute.instances.bulkInsert', count: String(vms.length) },
      });
    }
  }

  /** Delivers what the out-of-order fault held back: newest operation first, each last entry before its first. */
  releaseHeld(): void {
    for (const entries of this.held.splice(0).reverse()) this.route([...entries].reverse());
  }

  /** Forgets held entries (a reset world). */
  discardHeld(): void {
    this.held.length = 0;
  }

  /** Releases held entries, then resolves when every route delivered everything queued. */
  async idle(): Promise<void> {
    this.releaseHeld();
    await Promise.all(this.routes.map((r) => r.idle()));
  }

  private operation(spec: EntrySpec): void {
    if (!this.world.faults.eventSinkUp) return; // lost, as when the trigger or function was down
    const operationId = `operation-${Date.now()}-${randomBytes(6).toString('hex')}`;
    const principal = spec.method.startsWith('compute.')
      ? `${this.world.project(spec.project).number}@cloudservices.gserviceaccount.com`
      : 'operator@example.com';
    const entries = (['first', 'last'] as const).map((position) => ({
      spec,
      position,
      event: buildAuditLogEvent(spec, operationId, position, principal),
    }));
    if (this.world.faults.reorderEvents) this.held.push(entries);
    else this.route(entries);
  }

  private route(entries: AuditEntry[]): void {
    const delivered = this.world.faults.duplicateEvents ? entries.flatMap((e) => [e, e]) : entries;
    const project = entries[0]!.spec.project;
    for (const r of this.routes) if (r.accepts(project)) r.enqueue(delivered);
  }
}

/**
 * Eventarc stand-in: audit entries POSTed as binary-mode CloudEvents to vmLifecycle, one after the
 * other, retrying non-2xx answers with backoff. An Eventarc audit-log trigger sees its own project
 * only: `project` set, it takes that project's entries; unset, every project's (tests that need no sink).
 */
export class Eventarc implements AuditLogRoute {
  readonly deliveries: Delivery[] = [];
  private queue: Promise<void> = Promise.resolve();
  /** Where events go (the vmLifecycle function); unset = nowhere. */
  sinkUrl: string | undefined;
  maxAttempts = 5;

  constructor(
    sinkUrl?: string,
    /** The trigger's project (the orchestrator's); undefined = every project. */
    public project?: string,
  ) {
    this.sinkUrl = sinkUrl;
  }

  accepts(project: string): boolean {
    return this.project === undefined || this.project === project;
  }

  enqueue(entries: AuditEntry[]): void {
    this.queue = this.queue.then(async () => {
      for (const entry of entries) await this.deliver(entry);
    });
  }

  /** Resolves when every event queued so far has been delivered (or given up on). */
  idle(): Promise<void> {
    return this.queue;
  }

  private async deliver({ event, spec, position }: AuditEntry): Promise<void> {
    const record: Delivery = {
      ceId: event.headers['ce-id']!,
      method: spec.method,
      resourceName: spec.resourceName,
      position,
      status: 'error',
      attempts: 0,
    };
    this.deliveries.push(record);
    if (!this.sinkUrl) return;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      record.attempts = attempt;
      try {
        const res = await fetch(this.sinkUrl, { method: 'POST', headers: event.headers, body: event.body });
        record.status = res.status;
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        record.status = 'error';
      }
      await sleep(Math.min(50 * 2 ** attempt, 2_000)); // the real trigger backs off 10-600 s
    }
  }
}

/** One audit-log entry as Eventarc delivers it: binary-mode CloudEvent headers and the LogEntryData body. */
export function buildAuditLogEvent(
  spec: EntrySpec,
  operationId: string,
  position: 'first' | 'last',
  principal = 'operator@example.com',
) {
  const now = new Date().toISOString();
  const logName = `projects/${spec.project}/logs/cloudaudit.googleapis.com%2Factivity`;
  const protoPayload: Record<string, unknown> = {
    '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
    authenticationInfo: { principalEmail: principal },
    requestMetadata: { callerIp: '127.0.0.1', callerSuppliedUserAgent: 'osquery-orchestrator-simulator' },
    serviceName: 'compute.googleapis.com',
    methodName: spec.method,
    resourceName: spec.resourceName,
    resourceLocation: { currentLocations: [spec.zone] },
  };
  if (position === 'first') {
    protoPayload.request = spec.request;
    protoPayload.response = {
      '@type': 'type.googleapis.com/operation',
      id: operationId.replace(/\D/g, '').slice(0, 19),
      name: operationId,
      status: 'RUNNING',
      operationType: spec.method.split('.').pop(),
      zone: `${COMPUTE_BASE}/projects/${spec.project}/zones/${spec.zone}`,
      ...(spec.targetId ? { targetId: spec.targetId, targetLink: `${COMPUTE_BASE}/${spec.resourceName}` } : {}),
    };
  } else if (spec.failed) {
    protoPayload.status = { code: 3, message: 'INVALID_ARGUMENT' };
  }
  const data = {
    protoPayload,
    insertId: randomBytes(6).toString('hex'),
    resource: {
      type: 'gce_instance',
      labels: {
        project_id: spec.project,
        zone: spec.zone,
        ...(spec.instanceId ? { instance_id: spec.instanceId } : {}),
      },
    },
    timestamp: now,
    severity: spec.failed && position === 'last' ? 'ERROR' : 'NOTICE',
    logName,
    operation: {
      id: operationId,
      producer: 'compute.googleapis.com',
      ...(position === 'first' ? { first: true } : { last: true }),
    },
    receiveTimestamp: now,
  };
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'ce-specversion': '1.0',
    'ce-type': 'google.cloud.audit.log.v1.written',
    'ce-source': `//cloudaudit.googleapis.com/${logName.replace('cloudaudit.googleapis.com%2F', '')}`,
    'ce-id': `${logName}${data.insertId}${now}`,
    'ce-time': now,
    'ce-subject': `compute.googleapis.com/${spec.resourceName}`,
    'ce-dataschema':
      'https://googleapis.github.io/google-cloudevents/jsonschema/google/events/cloud/audit/v1/LogEntryData.json',
    'ce-servicename': 'compute.googleapis.com',
    'ce-methodname': spec.method,
    'ce-resourcename': spec.resourceName,
  };
  return { headers, body: JSON.stringify(data) };
}
