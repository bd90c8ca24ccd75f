// `npm run bench [-- --hosts N] [-- --out FILE]`: the fleet audit at scale against the simulator and the
// Firestore emulator, beside a naive baseline measured in the same run.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startEmulators } from '../../infra/local/emulators.js';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../infra/local/emulators.js';
import { quietKnownWarnings } from '../../shared/warnings.js';

quietKnownWarnings();
const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '10000' },
    zones: { type: 'string', default: '10' },
    out: { type: 'string' },
  },
});
const HOSTS = Number(values.hosts);
const HEARTBEAT_HOSTS = Math.min(5000, HOSTS);
const HEARTBEAT_LINES = 20;
const ZONES = Number(values.zones);
const PROJECT = 'bench-project';

export interface BenchRecord {
  name: string;
  hosts: number;
  wallMs: number;
  apiCalls: number;
  firestoreWrites: number;
  [extra: string]: unknown;
}

const emulators = await startEmulators();
// The simulator runs in its own process, as the real APIs are remote: its work does not share this
// process's event loop with the code being measured.
const simPort = await freePort();
const simulator = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    path.join(import.meta.dirname, '../../infra/local/simulator/main.ts'),
    '--port',
    String(simPort),
    '--agent-interval-ms',
    '0',
  ],
  { stdio: 'ignore' },
);
const simUrl = `http://127.0.0.1:${simPort}`;
const control = async (method: string, p: string, body?: unknown) => {
  const res = await fetch(`${simUrl}/control${p}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
  return res.json();
};
for (let i = 0; i < 100; i++) {
  try {
    await control('GET', '/health');
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
const simRequests = async () => ((await control('GET', '/stats')) as { total: number }).total;
Object.assign(process.env, {
  FIRESTORE_EMULATOR_HOST: emulators.firestoreHost,
  PUBSUB_EMULATOR_HOST: emulators.pubsubHost,
  GOOGLE_CLOUD_PROJECT: emulators.projectId,
  GOOGLE_API_ENDPOINT: simUrl,
  METADATA_SERVER_DETECTION: 'none',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  TARGET_PROJECTS: PROJECT,
  CONFIG_BUCKET: 'bench-config',
  OSCONFIG_WRITES_PER_MINUTE: '6000',
  OSCONFIG_READS_PER_MINUTE: '6000',
});
const records: BenchRecord[] = [];
try {
  const { publish } = await import('../../shared/usecases/publish.js');
  const { runAuditShard } = await import('../../shared/usecases/audit.js');
  const { createRun } = await import('../../shared/adapters/audits.js');
  const { usageSince, usageSnapshot, totalApiCalls } = await import('../../shared/metrics.js');
  const { clients } = await import('../../shared/clients.js');

  process.stdout.write(`setting up ${HOSTS} VMs in ${ZONES} zones of one project... `);
  await control('POST', '/projects', { id: PROJECT, metadata: { 'enable-osconfig': 'TRUE' } });
  const oses = ['debian-12', 'ubuntu-2204', 'rhel-9', 'rocky-9'] as const;
  const perZone = Math.floor(HOSTS / ZONES);
  for (let z = 0; z < ZONES; z++) {
    // Per zone: 2% without an agent, 1% failing the policy, the rest healthy; no audit-log events.
    const zone = `bench-zone-${z}`;
    const faulty = [
      { count: Math.floor(perZone * 0.02), agent: false, prefix: 'noagent' },
      { count: Math.floor(perZone * 0.01), policyFailure: 'install-osquery', prefix: 'failing' },
    ];
    for (const f of faulty)
      if (f.count)
        await control('POST', '/vms:bulk', {
          project: PROJECT,
          zone,
          namePrefix: `${f.prefix}-${z}`,
          count: f.count,
          os: oses[z % 4],
          as: 'none',
          agent: f.agent ?? true,
          policyFailure: f.policyFailure ?? null,
        });
    await control('POST', '/vms:bulk', {
      project: PROJECT,
      zone,
      namePrefix: `vm-${z}`,
      count: perZone - faulty.reduce((a, f) => a + f.count, 0),
      os: oses[z % 4],
      as: 'none',
    });
  }
  await publish();
  await control('POST', '/agents/run');
  // A fresh emulator's JVM is slow for its first few thousand writes: warm it up, so every figure
  // below (the baselines run later) is measured on a warm emulator.
  {
    const db = clients.firestore();
    for (let round = 0; round < 4; round++) {
      const batch = db.batch();
      for (let i = 0; i < 490; i++)
        batch.set(db.collection('bench_warmup').doc(`${round}-${i}`), { i, at: new Date() });
      await batch.commit();
    }
    await db.collection('bench_warmup').get();
  }
  console.log('done');

  // The real path: a run document, fleetAuditShard's reconcile, the run summary.
  const audit = async (name: string, runId: string): Promise<BenchRecord> => {
    await createRun(runId, [PROJECT], new Date());
    const simBefore = await simRequests();
    const before = usageSnapshot();
    const t0 = performance.now();
    await runAuditShard({ runId, project: PROJECT });
    const wallMs = Math.round(performance.now() - t0);
    const spent = usageSince(before);
    const simCalls = (await simRequests()) - simBefore;
    const run = (await clients.firestore().collection('audits').doc(runId).get()).data()!;
    return {
      name,
      hosts: HOSTS,
      wallMs,
      apiCalls: totalApiCalls(spent),
      apiCallsSeenBySimulator: simCalls,
      firestoreWrites: spent.firestoreWrites,
      hostWrites: run.hostWrites,
      coverage: run.coverage,
      counts: run.counts,
    };
  };
  records.push(await audit('audit.first', 'bench-first'));
  records.push(await audit('audit.unchanged', 'bench-unchanged'));

  // Naive baseline: for each VM, one report call and one Firestore write, one after the other.
  {
    const { listProjectVms } = await import('../../shared/adapters/compute.js');
    const before = usageSnapshot();
    const t0 = performance.now();
    const vms = await listProjectVms(PROJECT);
    const db = clients.firestore();
    let writes = 0;
    for (const vm of vms) {
      let state = 'unknown';
      try {
        const [report] = await clients.osConfig().getOSPolicyAssignmentReport({
          name: `projects/${PROJECT}/locations/${vm.zone}/instances/${vm.instanceId}/osPolicyAssignments/osquery/report`,
        });
        state = String(report.osPolicyCompliances?.[0]?.complianceState ?? 'unknown');
      } catch {
        state = 'no-report';
      }
      await db
        .collection('naive_hosts')
        .doc(vm.instanceId)
        .set({ name: vm.name, zone: vm.zone, state, updatedAt: new Date() });
      writes += 1;
    }
    const wallMs = Math.round(performance.now() - t0);
    records.push({
      name: 'audit.naive',
      hosts: HOSTS,
      wallMs,
      apiCalls: totalApiCalls(usageSince(before)),
      firestoreWrites: writes,
    });
  }

  // logHeartbeat: 5,000 hosts x 20 lines, one line per message (the shipper publishes one record per
  // message), 64 deliveries in flight as one busy function instance would see them.
  {
    const { logHeartbeat } = await import('../../functions/log-heartbeat.js');
    const { forgetHeartbeatCache } = await import('../../shared/usecases/heartbeat.js');
    const { mapLimit } = await import('../../shared/rate.js');
    const db = clients.firestore();
    const hostIds = (
      await db.collection('hosts').where('project', '==', PROJECT).select().limit(HEARTBEAT_HOSTS).get()
    ).docs.map((d) => d.id);
    const t0 = Math.floor(Date.now() / 1000) - 20 * 15;
    const messages: Array<{ id: string; line: number }> = [];
    for (let j = 0; j < HEARTBEAT_LINES; j++) for (const id of hostIds) messages.push({ id, line: t0 + j * 15 });
    const event = (m: { id: string; line: number }, k: number) => ({
      id: `m${k}`,
      type: 'google.cloud.pubsub.topic.v1.messagePublished',
      source: '//pubsub.googleapis.com/projects/p/topics/osquery-logs',
      specversion: '1.0',
      data: {
        message: {
          data: Buffer.from(
            JSON.stringify({ name: 'heartbeat', unixTime: m.line, action: 'snapshot', snapshot: [] }),
          ).toString('base64'),
          attributes: { gce_instance_id: m.id, gce_project_id: PROJECT, gce_zone: 'z', log_type: 'snapshot' },
          messageId: `m${k}`,
        },
      },
    });
    forgetHeartbeatCache();
    const before = usageSnapshot();
    let t = performance.now();
    await mapLimit(messages, 64, (m, k) => logHeartbeat(event(m, k) as never));
    let wallMs = Math.round(performance.now() - t);
    records.push({
      name: 'heartbeat.coalesced',
      hosts: hostIds.length,
      lines: messages.length,
      wallMs,
      linesPerSec: Math.round(messages.length / (wallMs / 1000)),
      apiCalls: 0,
      firestoreWrites: usageSince(before).firestoreWrites,
    });

    // Naive baseline: every line written to its host document.
    t = performance.now();
    await mapLimit(messages, 64, (m) =>
      db
        .collection('hosts')
        .doc(m.id)
        .update({ lastLogAt: new Date(m.line * 1000) }),
    );
    wallMs = Math.round(performance.now() - t);
    records.push({
      name: 'heartbeat.naive',
      hosts: hostIds.length,
      lines: messages.length,
      wallMs,
      linesPerSec: Math.round(messages.length / (wallMs / 1000)),
      apiCalls: 0,
      firestoreWrites: messages.length,
    });
  }
} finally {
  simulator.kill();
  await emulators.stop();
}

const byName = Object.fromEntries(records.map((r) => [r.name, r]));
const naive = byName['audit.naive']!;
/** One table row: each value right-aligned to its width (the first left-aligned). */
const row = (cells: Array<[unknown, number]>) =>
  cells.map(([v, w], i) => (i === 0 ? String(v).padEnd(w) : String(v).padStart(w))).join(' ');
const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
console.log('\nname              hosts    wall ms   API calls   Firestore writes   vs naive (wall)');
for (const r of records.filter((rec) => rec.name.startsWith('audit.'))) {
  const vsNaive = r === naive ? '1.0x' : `${ratio(naive.wallMs, r.wallMs)} faster`;
  console.log(
    `${row([
      [r.name, 16],
      [r.hosts, 6],
      [r.wallMs, 10],
      [r.apiCalls, 11],
      [r.firestoreWrites, 18],
    ])}   ${vsNaive}`,
  );
}
const computePages = Math.ceil(HOSTS / 500);
const first = byName['audit.first']!;
const unchanged = byName['audit.unchanged']!;
console.log(
  `\ntargets: unchanged audit writes <= changed hosts + 1 (run summary): ${unchanged.firestoreWrites} writes`,
);
console.log(
  `         API calls <= ceil(N/500) + 2 per zone per page = ${computePages} + ${2 * ZONES} = ` +
    `${computePages + 2 * ZONES}: first ${first.apiCalls}, unchanged ${unchanged.apiCalls}`,
);
console.log(
  `         wall time >= 10x naive: first ${ratio(naive.wallMs, first.wallMs)}, ` +
    `unchanged ${ratio(naive.wallMs, unchanged.wallMs)}`,
);
const hb = byName['heartbeat.coalesced']!;
const hbNaive = byName['heartbeat.naive']!;
console.log('\nname                  hosts    lines   wall ms   lines/s   Firestore writes');
for (const r of [hb, hbNaive]) {
  console.log(
    row([
      [r.name, 20],
      [r.hosts, 6],
      [r.lines, 8],
      [r.wallMs, 9],
      [r.linesPerSec, 9],
      [r.firestoreWrites, 18],
    ]),
  );
}
console.log(
  `targets: writes <= one per host per window: ${hb.firestoreWrites} for ${hb.hosts} hosts; ` +
    `throughput >= 10x naive: ${ratio(hb.linesPerSec as number, hbNaive.linesPerSec as number)}`,
);
if (values.out) {
  writeFileSync(values.out, `${JSON.stringify(records, null, 2)}\n`);
  console.log(`figures written to ${values.out}`);
}
process.exit(0);
