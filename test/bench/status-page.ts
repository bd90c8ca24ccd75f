// The status page at scale on the Firestore emulator: render time and Firestore reads per page view,
// beside a naive baseline that aggregates the hosts collection on every view, and the evidence CSV.
//
//   npx tsx test/bench/status-page.ts [--hosts 10000] [--projects 2] [--views 30] [--out FILE]
//
// benchStatusPage() is the record for test/bench/bench.ts (`status.page`, `status.page.naive`,
// `status.evidence`, `status.publish`): call it with the emulators running and their variables set.
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { Host, HostState } from '../../shared/domain/host.js';

export interface StatusBenchRecord {
  name: string;
  hosts: number;
  wallMs: number;
  apiCalls: number;
  firestoreWrites: number;
  firestoreReads: number;
  [extra: string]: unknown;
}

/** The fleet's mix of states, per 1,000 hosts. */
const MIX: Array<[HostState, number, string | null]> = [
  ['reporting', 850, null],
  ['compliant', 10, null],
  ['pending', 20, 'policy-applying'],
  ['silent', 30, 'logs-stopped'],
  ['noncompliant', 10, 'resource-execution-errors:install-osquery'],
  ['blocked', 20, 'no-agent-detected'],
  ['stopped', 20, 'vm-terminated'],
  ['exempt', 30, 'gke-node'],
  ['deleted', 10, 'vm-deleted'],
];
const stateOf = (i: number): [HostState, string | null] => {
  let k = i % 1000;
  for (const [state, n, reason] of MIX) {
    if (k < n) return [state, reason];
    k -= n;
  }
  return ['reporting', null];
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!;

export async function benchStatusPage(
  options: { hosts?: number; projects?: number; views?: number } = {},
): Promise<StatusBenchRecord[]> {
  const HOSTS = options.hosts ?? 10_000;
  const PROJECTS = options.projects ?? 2;
  const VIEWS = options.views ?? 30;
  const { clients } = await import('../../shared/clients.js');
  const { mapLimit } = await import('../../shared/rate.js');
  const { usageSince, usageSnapshot } = await import('../../shared/metrics.js');
  const { coverageOf, summarizeProject, mergeFleetStatus } = await import('../../shared/domain/status.js');
  const { buildStatusView } = await import('../../shared/domain/status-view.js');
  const { renderStatusPage } = await import('../../shared/views/status-page.js');
  const hostsAdapter = await import('../../shared/adapters/hosts.js');
  const { createRun } = await import('../../shared/adapters/audits.js');
  const { readDocument } = await import('../../shared/documents/document.js');
  const { auditedHost, hostData } = await import('../../shared/documents/hosts.js');
  const { isInScope } = await import('../../shared/domain/host.js');
  const hostRecord = auditedHost.omit({ updatedAt: true });
  const { recordProjectStatus, publishRunStatus } = await import('../../shared/usecases/status.js');
  const db = clients.firestore();
  const records: StatusBenchRecord[] = [];
  const projects = Array.from({ length: PROJECTS }, (_, p) => `bench-status-${p}`);
  const now = new Date();

  // The fleet as an audit would have left it: host documents, open alert episodes, a published version.
  const version = 'vbench0000001';
  const byProject = new Map<string, Host[]>(projects.map((p) => [p, []]));
  const alerts: Array<Record<string, unknown>> = [];
  for (let i = 0; i < HOSTS; i++) {
    const [state, reason] = stateOf(i);
    const project = projects[i % PROJECTS]!;
    const zone = `bench-zone-${Math.floor(i / PROJECTS) % 10}`;
    const since = new Date(now.getTime() - (i % 500) * 60_000);
    const host: Host = {
      instanceId: String(7_000_000_000_000_000 + i),
      name: `vm-${String(i).padStart(6, '0')}`,
      project,
      zone,
      state,
      reason,
      stateSince: since,
      inScope: state !== 'exempt' && state !== 'deleted',
      lastLogAt: state === 'reporting' ? now : null,
      osqueryVersion: state === 'exempt' ? null : '5.23.1',
      configVersion: state === 'exempt' || state === 'pending' ? null : version,
      updatedAt: now,
    };
    byProject.get(project)!.push(host);
    const kind = { silent: 'host.silent', noncompliant: 'host.noncompliant', blocked: 'host.blocked' }[state as string];
    if (kind) {
      const dedupKey = `${kind}:${host.instanceId}:${since.getTime()}`;
      const h = { instanceId: host.instanceId, name: host.name, project, zone };
      alerts.push({
        dedupKey,
        kind,
        severity: 'warning',
        host: h,
        reason,
        since,
        firing: { at: since, sentAt: now },
        resolved: null,
        owed: false,
      });
    }
  }
  const writes: Array<[string, string, Record<string, unknown>]> = [];
  for (const hosts of byProject.values()) for (const h of hosts) writes.push(['hosts', h.instanceId, hostData(h)]);
  for (const a of alerts) writes.push(['alerts', a.dedupKey as string, a]);
  const chunks = Array.from({ length: Math.ceil(writes.length / 490) }, (_, k) => writes.slice(k * 490, k * 490 + 490));
  await mapLimit(chunks, 3, async (chunk) => {
    const batch = db.batch();
    for (const [collection, id, data] of chunk) batch.set(db.collection(collection).doc(id), data);
    await batch.commit();
  });
  await db.collection('config').doc('current').set({ configVersion: version, since: now });
  await db
    .collection('rollouts')
    .doc(version)
    .set({
      configVersion: version,
      publishedAt: now,
      bucket: null,
      files: [],
      policyConfig: { configVersion: version, files: [] },
      zones: Object.fromEntries(
        projects.flatMap((p) =>
          Array.from({ length: 10 }, (_, z) => [
            `${p}/bench-zone-${z}`,
            {
              project: p,
              zone: `bench-zone-${z}`,
              assignment: 'osquery',
              revisionId: `r${z}`,
              rolloutState: 'SUCCEEDED',
            },
          ]),
        ),
      ),
    });

  // What the audit adds for the page: one snapshot per project shard, one fleet document per run.
  {
    const runId = 'bench-status-run';
    await createRun(runId, projects, now);
    const before = usageSnapshot();
    const t0 = performance.now();
    const counts: Record<string, number> = {};
    for (const [project, hosts] of byProject) {
      await recordProjectStatus(runId, project, hosts, now);
      const s = summarizeProject(project, runId, now, hosts);
      for (const [k, n] of Object.entries(s.counts)) counts[k] = (counts[k] ?? 0) + n!;
    }
    const snapshotMs = Math.round(performance.now() - t0);
    const results = db.batch();
    for (const p of projects)
      results.create(db.collection('audits').doc(runId).collection('projects').doc(p), {
        status: 'succeeded',
        instances: byProject.get(p)!.length,
      });
    await results.commit();
    await db
      .collection('audits')
      .doc(runId)
      .update({
        status: 'succeeded',
        finishedAt: new Date(),
        counts,
        coverage: coverageOf(counts),
      });
    const t1 = performance.now();
    const outcome = await publishRunStatus(runId, now);
    const spent = usageSince(before);
    if (!outcome.published) throw new Error(`the run was not published: ${outcome.reason}`);
    records.push({
      name: 'status.publish',
      hosts: HOSTS,
      wallMs: Math.round(performance.now() - t0),
      snapshotMs,
      publishMs: Math.round(performance.now() - t1),
      apiCalls: 0,
      firestoreReads: spent.firestoreReads,
      firestoreWrites: spent.firestoreWrites,
      projects: PROJECTS,
    });
  }

  // Page views through the Functions Framework, as Cloud Functions serves them.
  const { getTestServer } = await import('@google-cloud/functions-framework/testing');
  await import('../../functions/index.js');
  const server = getTestServer('fleetStatus');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  try {
    const view = async (path: string) => {
      const t0 = performance.now();
      const res = await fetch(base + path);
      const body = await res.text();
      if (!res.ok) throw new Error(`${path}: ${res.status} ${body.slice(0, 200)}`);
      const timing = res.headers.get('server-timing') ?? '';
      return {
        ms: performance.now() - t0,
        reads: Number(/"(\d+) reads"/.exec(timing)?.[1]),
        serverMs: Number(/dur=(\d+)/.exec(timing)?.[1]),
        bytes: body.length,
      };
    };
    for (const [name, path] of [
      ['status.page', ''],
      ['status.api', 'api/status'],
      ['status.page.filtered', `?project=${projects[0]}&state=silent`],
    ] as const) {
      for (let i = 0; i < 3; i++) await view(path); // warm
      const samples = [];
      for (let i = 0; i < VIEWS; i++) samples.push(await view(path));
      records.push({
        name,
        hosts: HOSTS,
        wallMs: Math.round(median(samples.map((s) => s.ms))),
        wallMsP95: Math.round(p95(samples.map((s) => s.ms))),
        serverMs: median(samples.map((s) => s.serverMs)),
        apiCalls: 0,
        firestoreWrites: 0,
        firestoreReads: median(samples.map((s) => s.reads)),
        openAlerts: alerts.length,
        bytes: samples[0]!.bytes,
        views: VIEWS,
      });
    }

    // Naive baseline: every view reads every host document and aggregates it then.
    {
      const samples: Array<{ ms: number; reads: number }> = [];
      for (let i = 0; i < Math.max(3, Math.floor(VIEWS / 6)); i++) {
        const t0 = performance.now();
        const snapshot = await db
          .collection(hostsAdapter.HOSTS)
          .select(...hostsAdapter.RECORD_FIELDS)
          .get();
        const grouped = new Map<string, Host[]>();
        for (const d of snapshot.docs) {
          const r = readDocument(hostRecord, d.ref.path, d.data());
          const h: Host = { ...r, instanceId: d.id, inScope: isInScope(r.state), updatedAt: now };
          grouped.set(h.project, [...(grouped.get(h.project) ?? []), h]);
        }
        const snaps = [...grouped].map(([p, hs]) => summarizeProject(p, 'naive', now, hs));
        const counts: Record<string, number> = {};
        for (const s of snaps) for (const [k, n] of Object.entries(s.counts)) counts[k] = (counts[k] ?? 0) + n!;
        const run = {
          runId: 'naive',
          startedAt: now.toISOString(),
          finishedAt: now.toISOString(),
          status: 'succeeded',
          coverage: coverageOf(counts),
          counts,
          projects: Object.fromEntries([...grouped.keys()].map((p) => [p, { status: 'succeeded' }])),
        };
        const fleet = mergeFleetStatus(run, snaps, [], now);
        renderStatusPage(
          buildStatusView({
            fleet,
            project: null,
            currentVersion: version,
            rollout: null,
            alerts: { open: 0, shown: [] },
            filters: {},
            now,
          }),
        );
        samples.push({ ms: performance.now() - t0, reads: snapshot.size });
      }
      records.push({
        name: 'status.page.naive',
        hosts: HOSTS,
        wallMs: Math.round(median(samples.map((s) => s.ms))),
        apiCalls: 0,
        firestoreWrites: 0,
        firestoreReads: median(samples.map((s) => s.reads)),
        views: samples.length,
      });
    }

    // The evidence CSV, through the page's link.
    {
      const t0 = performance.now();
      const res = await fetch(`${base}evidence.csv`);
      const csv = await res.text();
      const rows = csv.trimEnd().split('\r\n').length - 1;
      const deleted = [...byProject.values()].flat().filter((h) => h.state === 'deleted').length;
      records.push({
        name: 'status.evidence',
        hosts: HOSTS,
        wallMs: Math.round(performance.now() - t0),
        apiCalls: 0,
        firestoreWrites: 0,
        firestoreReads: rows,
        rows,
        expectedRows: HOSTS - deleted,
        deletedHosts: deleted,
        bytes: csv.length,
      });
    }
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  return records;
}

/** A table of the records, and the ratios against the naive baseline. */
export function printStatusBench(records: StatusBenchRecord[]): void {
  const by = Object.fromEntries(records.map((r) => [r.name, r]));
  console.log('\nname                   hosts   median ms   p95 ms   server ms   Firestore reads   bytes');
  for (const r of records.filter((x) => x.name.startsWith('status.page') || x.name === 'status.api'))
    console.log(
      `${r.name.padEnd(22)} ${String(r.hosts).padStart(6)} ${String(r.wallMs).padStart(10)} ` +
        `${String(r.wallMsP95 ?? '').padStart(8)} ${String(r.serverMs ?? '').padStart(11)} ` +
        `${String(r.firestoreReads).padStart(17)} ${String(r.bytes ?? '').padStart(7)}`,
    );
  const page = by['status.page']!;
  const naive = by['status.page.naive']!;
  console.log(
    `page view vs naive: ${(naive.wallMs / page.wallMs).toFixed(1)}x faster, ` +
      `${(naive.firestoreReads / page.firestoreReads).toFixed(0)}x fewer reads ` +
      `(${page.firestoreReads} = status/fleet + config/current + rollouts/{version} + ` +
      `${Math.max(1, Math.ceil((page.openAlerts as number) / 1000))} ` +
      `for the count of ${page.openAlerts} open alerts + the 50 newest)`,
  );
  const pub = by['status.publish']!;
  console.log(
    `audit's extra cost: ${pub.firestoreReads} reads, ${pub.firestoreWrites} writes ` +
      `per run of ${pub.projects} projects ` +
      `(${pub.snapshotMs} ms for the snapshots, ${pub.publishMs} ms to publish)`,
  );
  const ev = by['status.evidence']!;
  console.log(
    `evidence CSV: ${ev.rows} rows for ${ev.hosts} hosts ` +
      `(${ev.deletedHosts} deleted VMs are not evidence; expected ${ev.expectedRows}), ` +
      `${ev.wallMs} ms, ${Math.round((ev.bytes as number) / 1024)} KiB`,
  );
}

// Run on its own: start the emulators, measure, print.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      hosts: { type: 'string', default: '10000' },
      projects: { type: 'string', default: '2' },
      views: { type: 'string', default: '30' },
      out: { type: 'string' },
    },
  });
  const { quietKnownWarnings } = await import('../../shared/warnings.js');
  quietKnownWarnings();
  const { startEmulators } = await import('../../infra/local/emulators.js');
  const emulators = await startEmulators();
  Object.assign(process.env, {
    FIRESTORE_EMULATOR_HOST: emulators.firestoreHost,
    PUBSUB_EMULATOR_HOST: emulators.pubsubHost,
    GOOGLE_CLOUD_PROJECT: emulators.projectId,
    METADATA_SERVER_DETECTION: 'none',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  try {
    process.stdout.write(`seeding ${values.hosts} hosts in ${values.projects} projects... `);
    const records = await benchStatusPage({
      hosts: Number(values.hosts),
      projects: Number(values.projects),
      views: Number(values.views),
    });
    console.log('done');
    printStatusBench(records);
    if (values.out) writeFileSync(values.out, `${JSON.stringify(records, null, 2)}\n`);
  } finally {
    await emulators.stop();
  }
  process.exit(0);
}
