// `enroll.latency`: a VM created in a project other than the orchestrator's -> its host `pending`, through
// the log sink path as on Google Cloud: the simulator's sink publishes the VM's audit entries to the Pub/Sub
// emulator, the push subscription delivers them to vmLifecycle (served by the Functions Framework in this
// process), which reads the VM and its zone's assignment and writes Firestore. Without the sink, the VM
// waits for the next audit: up to the audit interval (15 minutes by default), half of it on average.
import { COMPUTE_AUDIT_LOG_TOPIC, serveFunctions } from '../../infra/local/functions.js';
import { clients } from '../../shared/clients.js';

export const ENROLL_RECORD = 'enroll.latency';
/** The simulator must publish every project's audit entries here (main.ts --audit-log-topic). */
export const ENROLL_SINK_TOPIC = COMPUTE_AUDIT_LOG_TOPIC;

export interface EnrollLatencyRecord {
  name: typeof ENROLL_RECORD;
  vms: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** VMs created per second (one every intervalMs), each measured from its creation. */
  createdPerSecond: number;
  /** The baseline: the mean wait for the next audit of a 15-minute schedule. */
  auditPathMeanMs: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;

export async function measureEnrollLatency(options: {
  control: (method: string, path: string, body?: unknown) => Promise<unknown>;
  vms?: number;
  intervalMs?: number;
}): Promise<EnrollLatencyRecord> {
  const vms = options.vms ?? 200;
  const intervalMs = options.intervalMs ?? 200;
  const project = 'bench-enroll';
  const zone = 'us-east1-b';
  const functions = await serveFunctions();
  await functions.wireTriggers();
  await options.control('POST', '/projects', { id: project, metadata: { 'enable-osconfig': 'TRUE' } });

  // When each host is first seen pending, as Firestore tells a listener.
  const pendingAt = new Map<string, number>();
  let allPending: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allPending = resolve));
  const stop = clients
    .firestore()
    .collection('hosts')
    .where('project', '==', project)
    .onSnapshot((snapshot) => {
      const now = performance.now();
      for (const change of snapshot.docChanges())
        if (change.doc.get('state') === 'pending' && !pendingAt.has(change.doc.id)) pendingAt.set(change.doc.id, now);
      if (pendingAt.size >= vms) allPending();
    });

  const createdAt = new Map<string, number>();
  try {
    for (let i = 0; i < vms; i++) {
      const started = performance.now();
      const vm = (await options.control('POST', '/vms', {
        project,
        zone,
        name: `enroll-${String(i).padStart(4, '0')}`,
        os: 'debian-12',
      })) as { id: string };
      createdAt.set(vm.id, started);
      const wait = intervalMs - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`${ENROLL_RECORD}: ${pendingAt.size} of ${vms} hosts pending after 120 s`)),
        120_000,
      ).unref(),
    );
    await Promise.race([done, timeout]);
  } finally {
    stop();
    await functions.close();
  }
  const latencies = [...createdAt].map(([id, t]) => pendingAt.get(id)! - t).sort((a, b) => a - b);
  return {
    name: ENROLL_RECORD,
    vms,
    p50Ms: Math.round(percentile(latencies, 0.5)),
    p95Ms: Math.round(percentile(latencies, 0.95)),
    maxMs: Math.round(latencies[latencies.length - 1]!),
    createdPerSecond: Math.round(1000 / intervalMs),
    auditPathMeanMs: 7.5 * 60_000,
  };
}
