// The status page's JSON API and the compliance evidence against the emulators and the simulator: a
// known fleet audited twice, served by fleetStatus through the Functions Framework.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clearFirestore, startStack, type Stack } from './helpers/stack.js';
import { A, B, STATUS_FLEET_ENV, Z1, Z2, at, buildStatusFleet, type Fleet } from './helpers/status-fleet.js';
import { startAuditRun } from '../shared/usecases/audit.js';
import { publishRunStatus, writeEvidence } from '../shared/usecases/status.js';
import { EVIDENCE_WRITERS } from '../shared/views/evidence.js';
import { getFleetStatus } from '../shared/adapters/status.js';
import { getRun } from '../shared/adapters/audits.js';
import { getHost } from '../shared/adapters/hosts.js';
import { FieldValue } from '@google-cloud/firestore';
import { clients } from '../shared/clients.js';
import type { StatusView } from '../shared/domain/status-view.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const t = suite<{ stack: Stack; fleet: Fleet }>('fleet status: JSON API and evidence');

t.before(async (ctx) => {
  ctx.stack = await startStack(STATUS_FLEET_ENV);
  await clearFirestore();
  ctx.fleet = await buildStatusFleet(ctx.stack);
});
t.after(async (ctx) => ctx.stack.close());

const get = async (stack: Stack, p: string) => {
  const res = await fetch(new URL(p, stack.functions.urls.fleetStatus));
  return { res, body: await res.text() };
};
const api = async (stack: Stack, query = '') => {
  const { res, body } = await get(stack, `api/status${query}`);
  assert.is(res.status, 200, body);
  return { view: JSON.parse(body) as StatusView, res };
};

t('coverage now and per run, counts per project and zone', async ({ stack }) => {
  const { view } = await api(stack);
  assert.is(view.run?.runId, 'run-2');
  assert.is(view.run?.status, 'succeeded');
  assert.equal(view.coverage.now, 0.5, '3 reporting of 6 in scope and running');
  assert.equal([view.coverage.reporting, view.coverage.expected], [3, 6]);
  assert.equal(
    view.coverage.history.map((p) => [p.runId, p.coverage, p.reporting, p.expected]),
    [
      ['run-1', 0, 0, 7],
      ['run-2', 0.5, 3, 6],
    ],
    'run 1: nothing reporting yet among 7 (doomed still there)',
  );
  assert.equal((await getRun('run-2'))?.coverage, view.coverage.now, 'the same figure as audits/{runId}');
  assert.equal(view.states.totals, { reporting: 3, silent: 1, blocked: 1, noncompliant: 1, exempt: 3, stopped: 1 });
  assert.equal(
    view.states.rows.map((r) => [r.project, r.zone, r.counts, r.total, r.stale]),
    [
      [A, Z2, { noncompliant: 1, stopped: 1, exempt: 2 }, 4, false],
      [A, Z1, { blocked: 1, reporting: 2, silent: 1 }, 4, false],
      [B, Z1, { reporting: 1, exempt: 1 }, 2, false],
    ],
  );
  assert.is(view.states.deleted, 1, 'doomed is counted apart');
});

t('every host needing action with its reason and since when; exempt hosts with theirs', async ({ stack, fleet }) => {
  const { view } = await api(stack);
  assert.equal(
    view.needingAction.hosts.map((h) => [h.state, h.name, h.project, h.zone, h.reason, h.since]),
    [
      ['silent', 'quiet', A, Z1, 'never-reported', at(45).toISOString()],
      ['noncompliant', 'failing', A, Z2, 'resource-execution-errors:install-osquery', at(45).toISOString()],
      ['blocked', 'agentless', A, Z1, 'no-agent-detected', at(45).toISOString()],
    ],
  );
  assert.equal([view.needingAction.total, view.needingAction.truncated], [3, false]);
  assert.is(view.needingAction.hosts[0]!.instanceId, fleet.ids.quiet);
  assert.equal(
    view.exempt.hosts.map((h) => [h.name, h.reason]),
    [
      ['gke-pool-1', 'gke-node'],
      ['bastion', 'opt-out-label'],
      ['win-1', 'unsupported-os:windows'],
    ],
  );
  assert.equal(view.exempt.byKey, { 'gke-node': 1, 'opt-out-label': 1, 'unsupported-os:windows': 1 });
});

t('filters narrow the lists; a bad filter is a 400 with the reason', async ({ stack }) => {
  const names = async (q: string) => (await api(stack, q)).view.needingAction.hosts.map((h) => h.name);
  assert.equal(await names('?state=silent'), ['quiet']);
  assert.equal(await names(`?zone=${Z2}`), ['failing']);
  assert.equal(await names('?q=AGENT'), ['agentless']);
  const b = (await api(stack, `?project=${B}`)).view;
  assert.equal([b.needingAction.hosts, b.exempt.hosts.map((h) => h.name)], [[], ['win-1']]);
  const bad = await get(stack, 'api/status?state=reporting');
  assert.is(bad.res.status, 400);
  assert.match(bad.body, /state/);
  assert.is((await get(stack, 'nope')).res.status, 404);
  const post = await fetch(stack.functions.urls.fleetStatus, { method: 'POST' });
  assert.equal([post.status, post.headers.get('allow')], [405, 'GET, HEAD']);
});

t('configuration versions live, the rollout of the current version, open alerts', async ({ stack, fleet }) => {
  const { view } = await api(stack);
  const onCurrent = [];
  for (const id of Object.values(fleet.ids)) {
    const h = await getHost(id);
    if (h?.inScope && h.configVersion === fleet.version) onCurrent.push(id);
  }
  assert.is(view.configuration.current, fleet.version);
  const live = view.configuration.live.find((v) => v.version === fleet.version);
  assert.equal(live, { version: fleet.version, hosts: onCurrent.length, current: true });
  assert.ok(onCurrent.length >= 4, `r1, r2, r3 and quiet run the current version (${onCurrent.length})`);
  assert.equal(
    view.configuration.rollout?.zones.map((z) => [z.project, z.zone, z.rolloutState]),
    [
      [A, Z2, 'SUCCEEDED'],
      [A, Z1, 'SUCCEEDED'],
      [B, Z1, 'SUCCEEDED'],
    ],
  );
  assert.is(view.configuration.stages, null, 'the first version went everywhere at once: nothing staged');
  assert.equal(view.osquery.versions, [
    { version: '5.23.1', hosts: view.osquery.versions[0]!.hosts },
    ...view.osquery.versions.slice(1),
  ]);
  assert.is(view.alerts.open, 5);
  assert.equal(view.alerts.shown.map((a) => [a.kind, a.host?.name, a.notified]).sort(), [
    ['host.blocked', 'agentless', true],
    ['host.noncompliant', 'failing', true],
    ['host.silent', 'quiet', true],
    ['query.denylisted', undefined, true],
    ['query.expensive', undefined, true],
  ]);
  // osquery's cost, as the run's close left it: hosts by CPU from their heartbeats, queries by cost.
  assert.is(view.osquery.cost?.runId, 'run-2');
  assert.equal(
    view.osquery.topHosts!.cpu.map((h) => [h.name, h.cpuPercent]),
    [
      ['r1', 14],
      ['r2', 2],
      ['r3', 0.5],
    ],
  );
  assert.equal(
    view.osquery.topQueries!.map((q) => [q.query, q.class, q.denylistedHosts]),
    [
      ['pack_fim_file_hashes', 'considerable', 0],
      ['pack_network_listening_ports', 'minimal', 0],
      ['pack_users_logged_in', 'minimal', 1],
    ],
  );
});

t('a page view reads aggregates: a fixed number of documents, never the hosts', async ({ stack }) => {
  const { res } = await api(stack);
  const reads = Number(/"(\d+) reads"/.exec(res.headers.get('server-timing') ?? '')?.[1]);
  // status/fleet + config/current + rollouts/{version} + the open-alert count + the 5 open alerts + status/osquery
  // + the latest run's `rolling` + the 2 oldest project snapshots and their count (audit coverage) + the log
  // subscriptions' backlogs (pipeline/, none here: one read).
  assert.is(reads, 15, res.headers.get('server-timing') ?? 'no Server-Timing header');
  const filtered = await api(stack, `?project=${A}`);
  assert.match(filtered.res.headers.get('server-timing') ?? '', /"16 reads"/, 'plus the project snapshot');
  const page = await get(stack, '');
  assert.is(page.res.status, 200);
  assert.match(page.res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.is(page.res.headers.get('cache-control'), 'no-store');
  assert.match(page.body, /<span id="coverage" class="big">50\.0%<\/span\s*>/);
  assert.match(
    page.body,
    /<tr data-state="silent" data-instance-id="\d+" data-cause="[a-z-]*">\s*<td><span class="chip s-silent">silent<\/span><\/td>\s*<td class="host">quiet<\/td>/,
  );
});

t("audit coverage: the cycle from the latest run, each project's audit age oldest first", async ({ stack }) => {
  const { view } = await api(stack);
  assert.equal(view.audit?.cycle, { mode: 'every-tick', tickMinutes: 15 }, 'two projects: a full pass each tick');
  assert.is(view.audit?.runId, 'run-2');
  assert.equal(view.audit?.projects.map((p) => p.project).sort(), [A, B]);
  assert.ok(view.audit?.projects.every((p) => p.lastAuditAt === at(45).toISOString() && p.ageMinutes !== null));
  assert.is(view.audit?.more, 0);
  // The latest run audited part of the targets: the page shows its cycle.
  const rolling = {
    targets: 2,
    selected: 1,
    readsPerTick: 3,
    cycleTicks: 2,
    cycleMinutes: 30,
    neverAudited: 0,
    oldestAuditAgeMinutes: 45,
  };
  const run2 = clients.firestore().collection('audits').doc('run-2');
  await run2.update({ rolling });
  try {
    const after = await api(stack);
    assert.equal(after.view.audit?.cycle, {
      mode: 'rolling',
      tickMinutes: 15,
      cycleTicks: 2,
      cycleMinutes: 30,
      selected: 1,
      targets: 2,
      neverAudited: 0,
    });
    const page = await get(stack, '');
    assert.match(page.body, /<section id="audit-coverage">/);
    assert.match(page.body, /1 of 2 projects a tick; every project within\s+2\s+ticks \(30 min\)/);
  } finally {
    await run2.update({ rolling: FieldValue.delete() });
  }
});

function osqOrch(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/osq-orch.ts'), ...args], {
      cwd: ROOT,
      env: process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

t(
  'evidence: every in-scope and exempt VM once, stamped with the run; the page serves what the CLI writes',
  async ({ stack, fleet }) => {
    const { res, body } = await get(stack, 'evidence.csv');
    assert.is(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/csv/);
    assert.match(res.headers.get('content-disposition') ?? '', /filename="osquery-evidence-run-2\.csv"/);
    const lines = body.trimEnd().split('\r\n');
    const header = lines[0]!.split(',');
    const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
    assert.is(rows.length, 10, '7 in scope + 3 exempt; the deleted VM is not evidence');
    const closed = (await getRun('run-2'))!.finishedAt?.toISOString();
    assert.ok(rows.every((r) => r.audit_run_id === 'run-2' && r.audit_run_finished_at === closed));
    assert.equal(new Set(rows.map((r) => r.instance_id)).size, 10, 'no VM twice');
    assert.not.ok(rows.some((r) => r.instance_id === fleet.ids.doomed));
    const r1 = rows.find((r) => r.instance_id === fleet.ids.r1)!;
    assert.equal(
      [r1.in_scope, r1.state, r1.config_version, r1.osquery_version, r1.last_log_at],
      [
        'true',
        'reporting',
        fleet.version,
        '5.23.1',
        at(44)
          .toISOString()
          .replace(/\.\d+Z$/, '.000Z'),
      ],
    );
    const win = rows.find((r) => r.instance_id === fleet.ids.win)!;
    assert.equal([win.in_scope, win.state, win.reason], ['false', 'exempt', 'unsupported-os:windows']);
    assert.equal(
      rows.map((r) => r.in_scope),
      [...Array(7).fill('true'), ...Array(3).fill('false')],
      'in-scope VMs first, then the exempt ones',
    );

    const cli = await osqOrch(['report']);
    assert.is(cli.status, 0, cli.stderr);
    assert.is(cli.stdout, body, 'the CLI and the download link give the same CSV');
    assert.match(cli.stderr, /7 in-scope and 3 exempt VMs, audit run run-2 \(succeeded/);

    const dir = mkdtempSync(path.join(tmpdir(), 'evidence-'));
    const out = path.join(dir, 'b.json');
    const json = await osqOrch(['report', '--format', 'json', '--project', B, '--out', out]);
    assert.is(json.status, 0, json.stderr);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal([doc.run.runId, doc.project, doc.counts], ['run-2', B, { inScope: 1, exempt: 1 }]);
    assert.equal(doc.hosts.map((h: { name: string }) => h.name).sort(), ['r3', 'win-1']);
    assert.not.ok(existsSync(`${out}.partial`));
    const htmlOut = path.join(dir, 'a.html');
    assert.is((await osqOrch(['report', '--format', 'html', '--project', A, '--out', htmlOut])).status, 0);
    const page = readFileSync(htmlOut, 'utf8');
    assert.is((page.match(/<tr>\s*<td>/g) ?? []).length, 8, 'stat-a: 6 in scope, 2 exempt');
    assert.match(page, /Audit run <code>run-2<\/code>/);
    const bad = await osqOrch(['report', '--format', 'xml']);
    assert.is(bad.status, 2);
    assert.match(bad.stderr, /--format must be one of csv, json, html/);
  },
);

t('evidence pages through the hosts collection: small pages give the same rows', async () => {
  const chunks = async (pageSize?: number) => {
    let out = '';
    const result = await writeEvidence(EVIDENCE_WRITERS.csv, async (c) => void (out += c), { pageSize });
    return { out, result };
  };
  const whole = await chunks();
  const paged = await chunks(2);
  assert.is(paged.out, whole.out);
  assert.equal([paged.result.inScope, paged.result.exempt], [7, 3]);
});

t('over Pub/Sub: the shard that closes a run publishes the fleet status, once', async ({ stack }) => {
  await stack.control('POST', '/agents/run');
  // Later than the runs above (their clocks ran ahead): a run older than the page's run would only add its point.
  const runId = (await startAuditRun('status-tick', at(46), [A, B])).runId!;
  let fleet = await getFleetStatus();
  for (let i = 0; i < 150 && fleet?.run.runId !== runId; i++) {
    await new Promise((r) => setTimeout(r, 200));
    fleet = await getFleetStatus();
  }
  assert.is(fleet?.run.runId, runId, 'status/fleet follows the newest run');
  const run = (await getRun(runId))!;
  assert.equal(fleet!.run.counts, run.counts);
  assert.is(fleet!.run.coverage, run.coverage);
  assert.equal(
    fleet!.history.map((p) => p.runId),
    ['run-1', 'run-2', runId],
  );
  assert.equal(await publishRunStatus(runId), { published: false, reason: 'already' }, 'a redelivery changes nothing');
  const snapshot = await clients.firestore().collection('status').doc('fleet').collection('projects').doc(A).get();
  // The shards ran on the real clock, earlier than run-2's (which ran 45 minutes ahead): a snapshot never
  // goes back in time, so stat-a's is still run-2's.
  assert.equal([snapshot.get('runId'), snapshot.get('at')], ['run-2', at(45).toISOString()]);
});

t.run();
