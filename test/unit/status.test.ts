// The status snapshot, the page's view and its rendering, the evidence formats (pure).
import { createHash } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Host, HostState } from '../../shared/domain/host.js';
import {
  EXEMPT_CAP,
  HISTORY_CAP,
  NEEDS_ACTION_CAP,
  SNAPSHOT_BUDGET_BYTES,
  fitToBudget,
  coverageOf,
  coverageParts,
  mergeFleetStatus,
  storedSize,
  summarizeProject,
  withHistoryPoint,
  type RunSummary,
} from '../../shared/domain/status.js';
import { buildStatusView, parseFilters, type StatusInputs } from '../../shared/domain/status-view.js';
import { CONTENT_SECURITY_POLICY, coverageChart, renderStatusPage } from '../../shared/views/status-page.js';
import { evidenceRow } from '../../shared/domain/evidence.js';
import { logCostStatus, osqueryCostStatus } from '../../shared/domain/telemetry/cost-status.js';
import { versionVolumes, type QueryVolume } from '../../shared/domain/log-volume.js';
import { DEFAULT_PRICES, monthlyLogCost } from '../../shared/domain/cost-model.js';
import { EVIDENCE_WRITERS, csvField } from '../../shared/views/evidence.js';
import { AUDIT_AGES_SHOWN } from '../../shared/domain/status-audit.js';

const t = suite('fleet status (pure)');
const T = new Date('2026-11-27T12:00:00Z');
const MiB = 1024 * 1024;

let seq = 0;
function host(state: HostState, over: Partial<Host> = {}): Host {
  seq += 1;
  return {
    instanceId: String(1000 + seq),
    name: `vm-${seq}`,
    project: 'p1',
    zone: 'z-a',
    state,
    reason: null,
    stateSince: new Date(T.getTime() - seq * 60_000),
    inScope: state !== 'exempt' && state !== 'deleted',
    lastLogAt: null,
    osqueryVersion: state === 'reporting' ? '5.23.1' : null,
    configVersion: state === 'reporting' ? 'vaaaaaaaaaaaa' : null,
    updatedAt: T,
    ...over,
  };
}

const run = (runId: string, startedAt: string, counts: RunSummary['counts'], projects: RunSummary['projects']) => ({
  runId,
  startedAt,
  finishedAt: startedAt,
  status: Object.values(projects).every((p) => p.status === 'succeeded') ? 'succeeded' : 'partial',
  coverage: coverageOf(counts),
  counts,
  projects,
});

t('a project snapshot: counts per zone, versions of in-scope hosts, lists most urgent first', () => {
  const hosts = [
    host('reporting'),
    host('reporting', { zone: 'z-b' }),
    host('blocked', { reason: 'no-agent-detected', stateSince: new Date('2026-11-27T08:00:00Z') }),
    host('silent', {
      reason: 'logs-stopped',
      stateSince: new Date('2026-11-27T11:00:00Z'),
      configVersion: 'vold000000000',
    }),
    host('silent', { reason: 'never-reported', stateSince: new Date('2026-11-27T10:00:00Z'), zone: 'z-b' }),
    host('exempt', { reason: 'gke-node' }),
    host('exempt', { reason: 'opt-out-label', zone: 'z-b' }),
    host('deleted', { reason: 'vm-deleted' }),
  ];
  const s = summarizeProject('p1', 'run-1', T, hosts);
  assert.equal(s.counts, { reporting: 2, blocked: 1, silent: 2, exempt: 2, deleted: 1 });
  assert.equal(s.zones, {
    'z-a': { reporting: 1, blocked: 1, silent: 1, exempt: 1, deleted: 1 },
    'z-b': { reporting: 1, silent: 1, exempt: 1 },
  });
  assert.equal(s.configVersions, { vaaaaaaaaaaaa: 2, none: 2, vold000000000: 1 }, 'exempt and deleted are not counted');
  assert.equal(s.osqueryVersions, { '5.23.1': 2, none: 3 });
  assert.equal(
    s.needingAction.hosts.map((h) => [h.state, h.reason]),
    [
      ['silent', 'never-reported'],
      ['silent', 'logs-stopped'],
      ['blocked', 'no-agent-detected'],
    ],
    'silent before blocked; within a state the oldest problem first',
  );
  assert.equal(s.needingAction.byKey, { blocked: 1, silent: 2 });
  assert.is(s.needingAction.hosts[0]!.since, '2026-11-27T10:00:00.000Z');
  assert.equal(s.exempt.byKey, { 'gke-node': 1, 'opt-out-label': 1 });
  assert.equal([s.needingAction.total, s.exempt.total], [3, 2]);
  assert.is(s.at, T.toISOString());
});

t('lists are capped per state; totals count every host', () => {
  const hosts = [
    ...Array.from({ length: 1000 }, () => host('silent', { reason: 'logs-stopped' })),
    ...Array.from({ length: 10 }, () => host('blocked', { reason: 'no-service-account' })),
    ...Array.from({ length: 800 }, () => host('exempt', { reason: 'gke-node' })),
  ];
  const s = summarizeProject('p1', 'run-1', T, hosts);
  const shown = (state: string) => s.needingAction.hosts.filter((h) => h.state === state).length;
  assert.equal(
    [shown('silent'), shown('blocked')],
    [NEEDS_ACTION_CAP, 10],
    'a flood of silent hosts hides no blocked one',
  );
  assert.equal([s.needingAction.total, s.needingAction.byKey.silent], [1010, 1000]);
  assert.equal([s.exempt.hosts.length, s.exempt.total], [EXEMPT_CAP, 800]);
});

/** A fleet at the edge: 100,000 hosts, names and reasons at their longest. */
function bigFleet(projects: number, perProject: number) {
  const states: HostState[] = ['reporting', 'reporting', 'reporting', 'silent', 'noncompliant', 'blocked', 'exempt'];
  const out: Host[][] = [];
  for (let p = 0; p < projects; p++) {
    const project = `project-${String(p).padStart(2, '0')}-${'x'.repeat(19)}`; // 30 characters
    out.push(
      Array.from({ length: perProject }, (_, i) =>
        host(states[i % states.length]!, {
          project,
          zone: `northamerica-northeast${i % 2}-${'abc'[i % 3]}`,
          name: `${'n'.repeat(55)}-${String(i).padStart(7, '0')}`, // 63 characters
          reason: `resource-execution-errors:${'r'.repeat(60)}-${i % 50}`,
          configVersion: `v${String(i % 3).padStart(12, '0')}`,
        }),
      ),
    );
  }
  return out;
}

t('at 100,000 hosts every snapshot and the fleet document stay under 1 MiB, history full', () => {
  const fleet = bigFleet(20, 5000);
  const snapshots = fleet.map((hosts) => summarizeProject(hosts[0]!.project, 'run-x', T, hosts));
  for (const s of snapshots) assert.ok(storedSize(s) < MiB, `project snapshot ${storedSize(s)} bytes`);
  const one = summarizeProject('one', 'run-x', T, fleet.flat());
  assert.ok(storedSize(one) < MiB, `one project of 100,000 hosts: ${storedSize(one)} bytes`);
  const needing = fleet.flat().filter((h) => ['silent', 'noncompliant', 'blocked'].includes(h.state)).length;
  assert.is(one.needingAction.total, needing);
  const history = Array.from({ length: HISTORY_CAP }, (_, i) => ({
    runId: `20261120T000000Z-${String(i).padStart(8, '0')}`,
    at: new Date(T.getTime() - (HISTORY_CAP - i) * 900_000).toISOString(),
    status: 'succeeded',
    coverage: 0.4286,
    reporting: 42_860,
    expected: 100_000,
  }));
  const counts: RunSummary['counts'] = {};
  for (const s of snapshots)
    for (const [k, n] of Object.entries(s.counts)) counts[k as HostState] = (counts[k as HostState] ?? 0) + n!;
  const projects = Object.fromEntries(snapshots.map((s) => [s.project, { status: 'succeeded' }]));
  const merged = mergeFleetStatus(run('run-x', T.toISOString(), counts, projects), snapshots, history, T);
  const size = storedSize(merged);
  assert.ok(size < MiB, `fleet document: ${size} bytes`);
  assert.is(merged.history.length, HISTORY_CAP, 'the oldest point made room');
  assert.is(
    merged.needingAction.total,
    snapshots.reduce((a, s) => a + s.needingAction.total, 0),
  );
  assert.is(merged.needingAction.hosts.length, 3 * NEEDS_ACTION_CAP);
  console.log(
    `  sizes at 100,000 hosts: fleet document ${(size / 1024).toFixed(0)} KiB, ` +
      `project snapshot ${(storedSize(snapshots[0]) / 1024).toFixed(0)} KiB`,
  );
});

t('absurdly long values: reasons clipped, reason keys bounded; a document over budget sheds list entries', () => {
  const hosts = Array.from({ length: 2000 }, (_, i) =>
    host(i % 2 ? 'silent' : 'exempt', { reason: `${i}-${'y'.repeat(3000)}` }),
  );
  const s = summarizeProject('p1', 'run-1', T, hosts);
  assert.ok(storedSize(s) < SNAPSHOT_BUDGET_BYTES, `${storedSize(s)} bytes`);
  assert.ok(s.needingAction.hosts.every((h) => h.reason!.length <= 200));
  assert.is(Object.keys(s.exempt.byKey).length, 50);
  assert.is(
    Object.values(s.exempt.byKey).reduce((a, n) => a + n, 0),
    1000,
    'folded into `other`, still counted',
  );
  assert.equal([s.needingAction.total, s.exempt.total], [1000, 1000]);

  const huge = { ...s, padding: 'z'.repeat(SNAPSHOT_BUDGET_BYTES - 100_000) };
  const fitted = fitToBudget(huge);
  assert.ok(storedSize(fitted) < SNAPSHOT_BUDGET_BYTES, `${storedSize(fitted)} bytes`);
  assert.ok(fitted.needingAction.hosts.length > 0 && fitted.needingAction.hosts.length < s.needingAction.hosts.length);
  assert.equal([fitted.needingAction.total, fitted.exempt.total], [1000, 1000], 'totals stay whole');
});

t('coverage parts follow the audit run rule (reporting / in scope and not stopped)', () => {
  // audits/{runId}.coverage (coverageOf) is the page's coverage: one rule, checked against hand-counted values.
  for (const [counts, coverage] of [
    [{ reporting: 3, silent: 1, blocked: 1, noncompliant: 1, exempt: 3, stopped: 1, deleted: 4 }, 0.5],
    [{ exempt: 2 }, null],
    [{ reporting: 1 }, 1],
    [{ pending: 2, compliant: 1, stopped: 5 }, 0],
  ] as const) {
    assert.is(coverageParts(counts).coverage, coverage, JSON.stringify(counts));
    assert.is(coverageOf(counts), coverage, JSON.stringify(counts));
  }
  assert.equal(coverageParts({ reporting: 3, silent: 1, stopped: 2, exempt: 1 }), {
    reporting: 3,
    expected: 4,
    coverage: 0.75,
  });
});

t('merging a run: a failed project keeps its earlier snapshot, marked; history once per run, in time order', () => {
  const a1 = summarizeProject('a', 'run-1', T, [host('reporting', { project: 'a' })]);
  const b1 = summarizeProject('b', 'run-1', T, [host('silent', { project: 'b', reason: 'logs-stopped' })]);
  const a2 = summarizeProject('a', 'run-2', T, [
    host('reporting', { project: 'a' }),
    host('blocked', { project: 'a' }),
  ]);
  const r2 = run(
    'run-2',
    '2026-11-27T12:15:00Z',
    { reporting: 1, blocked: 1 },
    {
      a: { status: 'succeeded' },
      b: { status: 'failed', error: 'permission denied' },
    },
  );
  const first = mergeFleetStatus(
    run(
      'run-1',
      '2026-11-27T12:00:00Z',
      { reporting: 1, silent: 1 },
      { a: { status: 'succeeded' }, b: { status: 'succeeded' } },
    ),
    [a1, b1],
    [],
    T,
  );
  const merged = mergeFleetStatus(r2, [a2, b1], first.history, T);
  assert.is(merged.projects.b!.snapshotRunId, 'run-1');
  assert.equal([merged.projects.b!.runStatus, merged.projects.b!.error], ['failed', 'permission denied']);
  assert.equal(merged.needingAction.byKey, { blocked: 1, silent: 1 }, "b's last known problems still listed");
  assert.equal(
    merged.history.map((p) => [p.runId, p.coverage, p.reporting, p.expected, p.status]),
    [
      ['run-1', 0.5, 1, 2, 'succeeded'],
      ['run-2', 0.5, 1, 2, 'partial'],
    ],
  );
  const again = withHistoryPoint(merged.history, merged.history[0]!);
  assert.equal(again, merged.history, 'a run is in the history once');
  const late = withHistoryPoint(merged.history, { ...merged.history[0]!, runId: 'run-0', at: '2026-11-27T11:45:00Z' });
  assert.equal(
    late.map((p) => p.runId),
    ['run-0', 'run-1', 'run-2'],
    'a run closing late lands in time order',
  );
});

t('filters: parsed from the query string, bad values refused with the reason', () => {
  assert.equal(parseFilters({ state: 'silent', project: 'acme-prod', zone: '', q: ' web ' }), {
    ok: true,
    filters: { state: 'silent', project: 'acme-prod', q: 'web' },
  });
  assert.equal(parseFilters({ state: ['blocked', 'silent'] }), { ok: true, filters: { state: 'blocked' } });
  const bad = parseFilters({ state: 'reporting' });
  assert.ok(!bad.ok && /state/.test(bad.reason));
  assert.not.ok(parseFilters({ project: '<script>' }).ok);
  assert.equal(parseFilters({ other: 'x' }), { ok: true, filters: {} });
});

function inputs(over: Partial<StatusInputs> = {}): StatusInputs {
  const a = summarizeProject('a', 'run-2', T, [
    host('reporting', { project: 'a', zone: 'z1' }),
    host('silent', { project: 'a', zone: 'z1', name: 'web-2', reason: 'logs-stopped' }),
    host('blocked', { project: 'a', zone: 'z2', name: 'legacy-1', reason: 'no-agent-detected' }),
    host('exempt', { project: 'a', zone: 'z2', name: 'gke-1', reason: 'gke-node' }),
    host('deleted', { project: 'a', zone: 'z2' }),
  ]);
  const b = summarizeProject('b', 'run-1', T, [
    host('noncompliant', {
      project: 'b',
      zone: 'z1',
      name: 'db-1',
      reason: 'resource-execution-errors:install-osquery',
    }),
  ]);
  const fleet = mergeFleetStatus(
    run(
      'run-2',
      '2026-11-27T12:15:00Z',
      { reporting: 1, silent: 1, blocked: 1, exempt: 1, deleted: 1 },
      {
        a: { status: 'succeeded' },
        b: { status: 'failed', error: 'API disabled' },
      },
    ),
    [a, b],
    [],
    T,
  );
  return {
    fleet,
    project: null,
    currentVersion: 'vaaaaaaaaaaaa',
    rollout: null,
    alerts: { open: 0, shown: [] },
    filters: {},
    now: T,
    ...over,
  };
}

t('the view: per-zone rows (stale ones marked, deleted apart), filters narrow the lists', () => {
  const v = buildStatusView(inputs());
  assert.equal(
    v.states.rows.map((r) => [r.project, r.zone, r.counts, r.stale]),
    [
      ['a', 'z1', { reporting: 1, silent: 1 }, false],
      ['a', 'z2', { blocked: 1, exempt: 1 }, false],
      ['b', 'z1', { noncompliant: 1 }, true],
    ],
  );
  assert.is(v.states.deleted, 1);
  assert.equal(v.coverage, { now: 0.3333, reporting: 1, expected: 3, history: v.coverage.history });
  assert.equal(
    v.needingAction.hosts.map((h) => h.name),
    ['web-2', 'db-1', 'legacy-1'],
  );
  const narrowed = (filters: StatusInputs['filters']) =>
    buildStatusView(inputs({ filters })).needingAction.hosts.map((h) => h.name);
  assert.equal(narrowed({ state: 'silent' }), ['web-2']);
  assert.equal(narrowed({ project: 'b' }), ['db-1']);
  assert.equal(narrowed({ zone: 'z2' }), ['legacy-1']);
  assert.equal(narrowed({ q: 'LEG' }), ['legacy-1']);
  assert.equal(
    buildStatusView(inputs({ filters: { state: 'silent' } })).exempt.hosts.length,
    1,
    'state narrows only needing action',
  );
  assert.equal(buildStatusView(inputs()).configuration.live[0], { version: 'none', hosts: 3, current: false });
});

t('the page escapes whatever the documents hold, and its stylesheet matches the policy hash', () => {
  const evil = '<script>alert(1)</script>';
  const i = inputs();
  i.fleet!.needingAction.hosts[0]!.name = evil;
  i.fleet!.needingAction.hosts[0]!.reason = '"><img src=x onerror=alert(2)>';
  i.alerts = {
    open: 1,
    shown: [
      {
        dedupKey: 'k',
        kind: evil,
        severity: 'critical',
        host: null,
        reason: '&',
        since: T.toISOString(),
        notified: false,
      },
    ],
  };
  const page = renderStatusPage(buildStatusView({ ...i, filters: { q: '"><b>' } }));
  assert.not.ok(page.includes('<script'), 'no script element');
  assert.not.ok(/<img|<b>/.test(page), 'no injected element');
  assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(page.includes('value="&quot;&gt;&lt;b&gt;"'), 'the filter value is escaped in its attribute');
  const css = /<style>([\s\S]*?)<\/style>/.exec(page)![1]!;
  const hash = createHash('sha256').update(css).digest('base64');
  assert.ok(CONTENT_SECURITY_POLICY.includes(`'sha256-${hash}'`), 'the browser will apply the stylesheet');
  assert.match(CONTENT_SECURITY_POLICY, /default-src 'none'/);
  assert.not.match(CONTENT_SECURITY_POLICY, /script-src/);
});

t('the coverage chart: one vertex per run with a figure, none without', () => {
  const history = ['0.5', '0.75', null, '1'].map((c, i) => ({
    runId: `r${i}`,
    at: new Date(T.getTime() + i * 60_000).toISOString(),
    status: 'succeeded',
    coverage: c === null ? null : Number(c),
    reporting: 1,
    expected: 2,
  }));
  const svg = coverageChart(history).value;
  const points = /<polyline points="([^"]+)"/.exec(svg)![1]!.split(' ');
  assert.is(points.length, 3);
  assert.is(points[2], '708.0,10.0', 'the latest run at 100 % is the top right corner');
  assert.is((svg.match(/<circle/g) ?? []).length, 3);
  assert.match(coverageChart([]).value, /No coverage figure yet/);
});

t('evidence: RFC 4180 fields, formulas defused, every format parses', () => {
  assert.is(csvField('plain'), 'plain');
  assert.is(csvField('a,b'), '"a,b"');
  assert.is(csvField('say "hi"'), '"say ""hi"""');
  assert.is(csvField('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
  assert.is(csvField(true), 'true');
  const r = {
    runId: 'run-9',
    startedAt: T.toISOString(),
    finishedAt: T.toISOString(),
    status: 'succeeded',
    coverage: 1,
    counts: {},
    projects: {},
  };
  const rows = [
    evidenceRow(host('reporting', { lastLogAt: T }), r),
    evidenceRow(host('exempt', { reason: 'opt-out-label', name: 'a<b' }), r),
  ];
  assert.equal([rows[0]!.inScope, rows[1]!.inScope, rows[1]!.reason], [true, false, 'opt-out-label']);
  assert.is(rows[0]!.lastLogAt, T.toISOString());
  const meta = { run: r, generatedAt: T, project: null };
  const write = (format: 'csv' | 'json' | 'html') => {
    const w = EVIDENCE_WRITERS[format];
    return w.begin(meta) + rows.map((row, i) => w.row(row, i === 0)).join('') + w.end({ inScope: 1, exempt: 1 });
  };
  const csv = write('csv').trimEnd().split('\r\n');
  assert.is(csv.length, 3);
  assert.match(csv[0]!, /^audit_run_id,audit_run_finished_at,instance_id,/);
  assert.ok(csv.slice(1).every((line) => line.startsWith('run-9,2026-11-27T12:00:00.000Z,')));
  const json = JSON.parse(write('json'));
  assert.equal([json.run.runId, json.hosts.length, json.counts], ['run-9', 2, { inScope: 1, exempt: 1 }]);
  const page = write('html');
  assert.ok(page.includes('a&lt;b') && !page.includes('a<b'));
});

t('the page groups quiet hosts by cause, and says when the heartbeat pipeline is behind', () => {
  const a = summarizeProject('a', 'run-3', T, [
    host('silent', { project: 'a', zone: 'z1', name: 'crash-1', reason: 'logs-stopped', cause: 'osqueryd-crash-loop' }),
    host('silent', { project: 'a', zone: 'z1', name: 'crash-2', reason: 'logs-stopped', cause: 'osqueryd-crash-loop' }),
    host('silent', { project: 'a', zone: 'z1', name: 'mute', reason: 'never-reported' }),
    host('reporting', { project: 'a', zone: 'z2', name: 'held', cause: 'pipeline-behind' }),
    host('reporting', { project: 'a', zone: 'z2', name: 'fine' }),
  ]);
  assert.equal(a.needingAction.causes, { 'osqueryd-crash-loop': 2, unknown: 1, 'pipeline-behind': 1 });
  assert.is(a.needingAction.hosts.find((h) => h.name === 'crash-1')?.cause, 'osqueryd-crash-loop');
  const fleet = mergeFleetStatus(
    run('run-3', '2026-11-27T12:15:00Z', { silent: 3, reporting: 2 }, { a: { status: 'succeeded' } }),
    [a],
    [],
    T,
  );
  const view = buildStatusView({ ...inputs(), fleet });
  assert.equal(view.needingAction.causes, { 'osqueryd-crash-loop': 2, unknown: 1, 'pipeline-behind': 1 });
  const page = renderStatusPage(view);
  assert.match(page, /id="silent-causes"/);
  assert.match(page, /The heartbeat pipeline is behind/);
  assert.match(page, /osqueryd-crash-loop<\/span> 2/);
  assert.not.match(page, /id="backlogs"/, 'no pipeline records read: no backlog listed');
  // The new causes are grouped like the others.
  const b = summarizeProject('b', 'run-3', T, [
    host('silent', { project: 'b', zone: 'z1', name: 'hb', reason: 'logs-stopped', cause: 'heartbeat-denylisted' }),
    host('silent', { project: 'b', zone: 'z1', name: 'uw', reason: 'logs-stopped', cause: 'osqueryd-unwatched' }),
  ]);
  assert.equal(b.needingAction.causes, { 'heartbeat-denylisted': 1, 'osqueryd-unwatched': 1 });
});

t('the page shows each log subscription behind and its measured lag', () => {
  const since = new Date('2026-11-27T12:00:00Z');
  const episode = { dedupKey: 'k', since };
  const pipeline = [
    { subscription: 'siem-sub', role: 'siem' as const, openIncidents: ['c'], episode, lag: null },
    { subscription: 'keeps-up', role: 'heartbeat' as const, openIncidents: [], episode: null },
    {
      subscription: 'hb-push',
      role: 'heartbeat' as const,
      openIncidents: ['a'],
      episode,
      lag: { oldestUnackedSeconds: 840, oldestUnackedAt: since, undeliveredMessages: null, undeliveredAt: null },
    },
  ];
  const view = buildStatusView({ ...inputs(), pipeline });
  assert.equal(view.backlogs, [
    { subscription: 'hb-push', role: 'heartbeat', since: since.toISOString(), lag: 'oldest unacked message 14 min' },
    { subscription: 'siem-sub', role: 'siem', since: since.toISOString(), lag: null },
  ]);
  const page = renderStatusPage(view);
  assert.match(page, /<code>hb-push<\/code> is behind\s+since 2026-11-27T12:00:00.000Z: oldest unacked message 14 min/);
  assert.match(page, /<code>siem-sub<\/code> is behind\s+since [^:]+:00:00.000Z: lag not measured/);
});

t("the page lists the queries that ship most bytes and the fleet's projected monthly log cost", () => {
  const MiB = 1024 * 1024;
  const q = (configVersion: string, query: string, hosts: number, perHostDay: number | null): QueryVolume => ({
    configVersion,
    query,
    hosts,
    shippedBytesPerHostDay: perHostDay,
    shippedLinesPerHostDay: null,
    outputBytesPerHostDay: null,
    shippedBytesPerDay: perHostDay === null ? null : perHostDay * hosts,
  });
  const volumes = versionVolumes([
    q('v1', 'pack_users', 1000, 1 * MiB),
    q('v1', 'pack_procs', 1000, 3 * MiB),
    q('v1', 'pack_silent', 1000, null),
    q('v2', 'pack_procs', 10, 8 * MiB),
    ...Array.from({ length: 12 }, (_, i) => q('v2', `pack_${String(i).padStart(2, '0')}`, 10, 1024)),
  ]);
  const logs = logCostStatus(volumes, DEFAULT_PRICES);
  const perDay = 4000 * MiB + 80 * MiB + 12 * 10 * 1024;
  assert.is(logs.bytesPerDay, perDay);
  assert.is(logs.usdPerMonth, monthlyLogCost(perDay, DEFAULT_PRICES, true).usd, 'the free tier once, for the fleet');
  assert.ok(logs.usdPerMonth > 0 && logs.usdPerMonth === logs.pubsubUsdPerMonth + logs.siemUsdPerMonth);
  assert.is(logs.topQueries.length, 10, 'at most ten, those the shipper counted');
  assert.equal(
    logs.topQueries.slice(0, 3).map((r) => [r.query, r.configVersion, r.shippedBytesPerDay]),
    [
      ['pack_procs', 'v1', 3000 * MiB],
      ['pack_users', 'v1', 1000 * MiB],
      ['pack_procs', 'v2', 80 * MiB],
    ],
  );
  assert.is(logs.topQueries[0]!.usdPerMonth, monthlyLogCost(3000 * MiB, DEFAULT_PRICES).usd);

  const osqueryCost = { ...osqueryCostStatus('run-2', T, { cpu: [], memory: [] }, []), logs };
  const page = renderStatusPage(buildStatusView({ ...inputs(), osqueryCost }));
  assert.match(page, /<span id="log-bytes-per-day">4\.0 GiB<\/span>/);
  assert.match(page, new RegExp(`<strong id="log-usd-per-month">\\$${logs.usdPerMonth.toFixed(2)}</strong>`));
  const rows = [...page.matchAll(/<tr data-query="([^"]+)">\s*<td><code>[^<]*<\/code><\/td>\s*<td><code>([^<]*)/g)];
  assert.equal(
    rows.slice(0, 3).map((m) => [m[1], m[2]]),
    [
      ['pack_procs', 'v1'],
      ['pack_users', 'v1'],
      ['pack_procs', 'v2'],
    ],
  );
  // A status/osquery written before the logs were measured: no section, no error.
  const before = renderStatusPage(buildStatusView({ ...inputs(), osqueryCost: { ...osqueryCost, logs: undefined } }));
  assert.not.match(before, /id="log-cost"/);
});

t('audit coverage: the rolling cycle from the latest run, audit ages oldest first, the rest counted', () => {
  const at = (minutesAgo: number) => new Date(T.getTime() - minutesAgo * 60_000).toISOString();
  const rolling = {
    targets: 1000,
    selected: 192,
    readsPerTick: 576,
    cycleTicks: 11,
    cycleMinutes: 165,
    neverAudited: 40,
    oldestAuditAgeMinutes: 150,
  };
  // The adapter hands them oldest first; the view orders them itself, and a bad time leads (unknown age).
  const oldest = [at(30), at(150), 'not-a-time', at(90)].map((a, i) => ({ project: `p${i}`, at: a }));
  const view = buildStatusView({
    ...inputs(),
    audit: { latestRun: { runId: 'run-9', rolling }, tickMinutes: 15, oldest, snapshots: 960 },
  });
  assert.equal(view.audit?.cycle, {
    mode: 'rolling',
    tickMinutes: 15,
    cycleTicks: 11,
    cycleMinutes: 165,
    selected: 192,
    targets: 1000,
    neverAudited: 40,
  });
  assert.equal(
    view.audit?.projects.map((p) => [p.project, p.ageMinutes]),
    [
      ['p2', null],
      ['p1', 150],
      ['p3', 90],
      ['p0', 30],
    ],
  );
  assert.is(view.audit?.more, 956);
  const page = renderStatusPage(view);
  assert.match(page, /id="audit-coverage"/);
  const cycle = /192 of 1,000 projects a tick; every project within\s+11\s+ticks \(2 h 45 min\); 40 never audited/;
  assert.match(page, cycle);
  assert.ok(page.indexOf('>p1<') < page.indexOf('>p3<'), 'oldest first on the page');
  assert.match(page, /And 956 more projects/);

  // A full pass: every tick; the list is bounded however many snapshots the adapter is given.
  const many = Array.from({ length: AUDIT_AGES_SHOWN + 5 }, (_, i) => ({ project: `q${i}`, at: at(i) }));
  const full = buildStatusView({
    ...inputs(),
    audit: { latestRun: { runId: 'run-9', rolling: null }, tickMinutes: 15, oldest: many, snapshots: 100 },
  });
  assert.equal(full.audit?.cycle, { mode: 'every-tick', tickMinutes: 15 });
  assert.is(full.audit?.projects.length, AUDIT_AGES_SHOWN);
  assert.is(full.audit?.projects[0]?.project, `q${AUDIT_AGES_SHOWN + 4}`);
  assert.is(full.audit?.more, 100 - AUDIT_AGES_SHOWN);
  assert.match(renderStatusPage(full), /Every project is audited each tick \(every 15 min\)/);

  // Before any audit: no section.
  const none = buildStatusView({ ...inputs(), audit: { latestRun: null, tickMinutes: 15, oldest: [], snapshots: 0 } });
  assert.is(none.audit, null);
  assert.not.match(renderStatusPage(none), /audit-coverage/);
});

t.run();
