// The simulated osqueryd (infra/local/simulator/osqueryd.ts): the schedule from the placed bundle, lines
// that the telemetry decisions read as intended (CPU%, restarts, per-version costs, denylisting), and
// the control calls that set them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadBundle } from '../../shared/osquery/bundle.js';
import { renderBundle } from '../../shared/osquery/render.js';
import { HEARTBEAT_QUERY, QUERY_NAME_ATTRIBUTE, SCHEDULE_QUERY } from '../../shared/osquery/log-routing.js';
import { scheduleSnapshotOf, workerSampleOf, type WorkerSample } from '../../shared/domain/telemetry/log-lines.js';
import { cpuStep, decideOsqueryd, type OsquerydState } from '../../shared/domain/telemetry/osqueryd.js';
import { scheduleStep, type ScheduleBaseline } from '../../shared/domain/telemetry/query-cost.js';
import { statsIncrements, summarizeQuery, type QueryStatsDoc } from '../../shared/domain/telemetry/query-stats.js';
import {
  DEFAULT_CPU_PERCENT,
  FALLBACK_SCHEDULE,
  newOsqueryd,
  resolveCosts,
  restartWorker,
  runRound,
  scheduleFromFiles,
  startWorker,
  typicalRows,
  type CostProfile,
  type ShippedLine,
  type SimOsqueryd,
} from '../../infra/local/simulator/osqueryd.js';
import { startSimulator, type Simulator } from '../../infra/local/simulator/server.js';
import { policyIdFor } from '../../shared/domain/policy.js';

const t = suite<{ files: Record<string, string>; version: string }>('simulated osqueryd');

t.before(async (ctx) => {
  const rendered = renderBundle(await loadBundle(), { logTopic: 'osquery-logs', logTopicProject: 'p' });
  ctx.files = Object.fromEntries(
    rendered.files.filter((f) => f.vmPath.startsWith('/etc/osquery/')).map((f) => [f.vmPath, f.content]),
  );
  ctx.version = rendered.configVersion;
});

const T0 = Date.parse('2026-11-27T12:00:00Z');
const host = { id: '4242', name: 'web-1' };

/** Runs `rounds` rounds of `step` real seconds each from T0; returns the lines of each round. */
function rounds(os: SimOsqueryd, profiles: Map<string, CostProfile>, n: number, step = 10, from = T0) {
  const out: ShippedLine[][] = [];
  for (let i = 1; i <= n; i++) {
    const w = os.worker!;
    out.push(runRound(host, w, resolveCosts(profiles, w.configVersion, os), new Date(from + i * step * 1000)));
  }
  return out;
}

const samplesOf = (lines: ShippedLine[][]) =>
  lines
    .flat()
    .map((l) => workerSampleOf(l.line))
    .filter((s): s is WorkerSample => s !== null);

t(
  'the schedule is the placed bundle: osquery.conf and its packs, pack queries named as osquery names them',
  ({ files }) => {
    const schedule = scheduleFromFiles(files);
    assert.is(schedule.length, 28, 'as osq-orch lint counts them');
    const by = Object.fromEntries(schedule.map((q) => [q.name, q]));
    const never = { denylist: false };
    assert.equal(by[HEARTBEAT_QUERY], {
      name: HEARTBEAT_QUERY,
      interval: 300,
      snapshot: true,
      removed: false,
      ...never,
    });
    assert.equal(by[SCHEDULE_QUERY], { name: SCHEDULE_QUERY, interval: 3600, snapshot: true, removed: true, ...never });
    assert.is(by.pack_users_last?.denylist, undefined, 'denylistable, as osquery defaults');
    assert.equal(by.pack_users_last?.removed, false, 'last logs additions only (its pack says removed: false)');
    assert.ok(by.pack_network_listening_ports);
    assert.equal(scheduleFromFiles({}), FALLBACK_SCHEDULE);
  },
);

t(
  'one round per heartbeat interval: every round a heartbeat, the schedule snapshot and each hourly query once an hour',
  ({ files, version }) => {
    const os = newOsqueryd();
    os.worker = startWorker(scheduleFromFiles(files), version, new Date(T0));
    const out = rounds(os, new Map(), 24);
    const names = out.map((r) => r.map((l) => l.attributes[QUERY_NAME_ATTRIBUTE]));
    assert.ok(
      names.every((r) => r.filter((n) => n === HEARTBEAT_QUERY).length === 1),
      'a heartbeat every round',
    );
    assert.is(names.flat().filter((n) => n === SCHEDULE_QUERY).length, 2, 'the schedule snapshot twice in two hours');
    const results = out.flat().filter((l) => l.attributes.log_type === 'result');
    assert.ok(results.length >= 14, `other queries' results flow too (${results.length})`);
    for (const l of out.flat())
      assert.is(l.attributes[QUERY_NAME_ATTRIBUTE], l.line.name, 'the attribute is the line name');
    const snap = scheduleSnapshotOf(out.flat().find((l) => l.line.name === SCHEDULE_QUERY)!.line)!;
    assert.equal(snap.worker, { pid: os.worker!.pid, startTime: os.worker!.startTime });
    assert.is(snap.queries[HEARTBEAT_QUERY]!.executions, names.findIndex((r) => r.includes(SCHEDULE_QUERY)) + 1);
    assert.is(Object.keys(snap.queries).length, 28);
  },
);

t(
  'worker CPU% between heartbeats is the configured cost; an expensive host fires host.performance',
  ({ files, version }) => {
    const os = newOsqueryd();
    os.worker = startWorker(scheduleFromFiles(files), version, new Date(T0));
    const normal = samplesOf(rounds(os, new Map(), 3));
    for (let i = 1; i < normal.length; i++) {
      const step = cpuStep(normal[i - 1]!, normal[i]!);
      assert.is(step.kind, 'interval');
      if (step.kind === 'interval')
        assert.ok(Math.abs(step.cpuPercent - DEFAULT_CPU_PERCENT) <= 0.2, `${step.cpuPercent}%`);
    }
    assert.ok(normal[1]!.rssBytes > 40 * 1024 * 1024 && normal[1]!.rssBytes < 60 * 1024 * 1024, 'tens of MiB');
    os.cpuPercent = 35;
    const hot = samplesOf(rounds(os, new Map(), 3, 10, T0 + 30_000));
    let state: OsquerydState | null = null;
    const fired: string[] = [];
    for (const s of [normal[normal.length - 1]!, ...hot]) {
      const d = decideOsqueryd(state, s);
      if (d.fire) fired.push(d.fire.reason);
      state = d.next ?? state;
    }
    assert.is(fired.length, 1);
    assert.match(fired[0]!, /osqueryd CPU 35% of a core on 2 consecutive heartbeats/);
  },
);

t(
  'result lines as osquery logs them: every row on a first run, then one line per changed row',
  ({ files, version }) => {
    const schedule = scheduleFromFiles(files);
    const count = (lines: ShippedLine[][], query: string, action?: string) =>
      lines.flat().filter((l) => l.line.name === query && (!action || l.line.action === action)).length;
    const kernel = 'pack_system_kernel_modules';
    const outbound = 'pack_network_outbound_connections';
    const last = 'pack_users_last';

    // A new host: the first run of a differential query logs every row it returns as added.
    const fresh = newOsqueryd();
    fresh.worker = startWorker(schedule, version, new Date(T0));
    const firstHour = rounds(fresh, new Map(), 12);
    assert.is(count(firstHour, kernel, 'added'), typicalRows(kernel).rows);
    assert.is(count(firstHour, outbound, 'added'), typicalRows(outbound).rows);
    assert.ok(firstHour.flat().every((l) => l.line.action !== 'added' || typeof l.line.columns === 'object'));

    // A host that has run the schedule before: only changes, removals among them, none for `last` (removed: false).
    const steady = newOsqueryd();
    steady.worker = startWorker(schedule, version, new Date(T0), { storedResults: 'all' });
    const day = rounds(steady, new Map(), 12 * 24);
    const perHour = (q: string) => count(day, q) / 24;
    assert.ok(perHour(kernel) < 1, `kernel_modules barely changes (${perHour(kernel)}/h)`);
    const churn = typicalRows(outbound).churnPerHour;
    assert.ok(Math.abs(perHour(outbound) - churn) < churn / 2, `outbound ~${churn}/h, got ${perHour(outbound)}`);
    assert.ok(count(day, outbound, 'removed') > 0 && count(day, outbound, 'added') > 0);
    assert.ok(count(day, last, 'added') > 0);
    assert.is(count(day, last, 'removed'), 0, 'last does not log removals');
    // A snapshot query logs one line per run with all its rows.
    const packages = day.flat().filter((l) => l.line.name === 'pack_packages_deb_packages');
    assert.is(packages.length, 1, 'a daily snapshot, once a day');
    assert.is((packages[0]!.line.snapshot as unknown[]).length, typicalRows('pack_packages_deb_packages').rows);

    // A worker restarted by the watchdog keeps the host's stored results: no second full dump.
    restartWorker(steady, new Date(T0 + 24 * 3600_000));
    const afterRestart = rounds(steady, new Map(), 12, 10, T0 + 24 * 3600_000);
    assert.ok(count(afterRestart, kernel) < typicalRows(kernel).rows);
  },
);

t(
  'a restart resets the counters with a new pid; a denylisted query stops running and is reported',
  ({ files, version }) => {
    const os = newOsqueryd();
    os.worker = startWorker(scheduleFromFiles(files), version, new Date(T0));
    // Two hours: the last schedule snapshot comes after every hourly query's first run (splay spreads them).
    const before = rounds(os, new Map(), 24);
    const old = { pid: os.worker.pid };
    const killed = 'pack_users_authorized_keys';
    restartWorker(os, new Date(T0 + 250_000), killed);
    assert.ok(os.worker!.pid > old.pid, 'a new worker process');
    const after = rounds(os, new Map(), 12, 10, T0 + 250_000);
    const lastBefore = samplesOf(before).pop()!;
    const firstAfter = samplesOf(after)[0]!;
    assert.is(cpuStep(lastBefore, firstAfter).kind, 'restart');
    assert.ok(firstAfter.userMs + firstAfter.systemMs < lastBefore.userMs + lastBefore.systemMs, 'counters from zero');
    const snapBefore = scheduleSnapshotOf(before.flat().findLast((l) => l.line.name === SCHEDULE_QUERY)!.line)!;
    const snapAfter = scheduleSnapshotOf(after.flat().find((l) => l.line.name === SCHEDULE_QUERY)!.line)!;
    const step = scheduleStep(scheduleStep(null, snapBefore).next, snapAfter);
    assert.is(step.kind, 'restart');
    const d = step.deltas.find((x) => x.query === killed)!;
    assert.equal([d.denylisted, d.executions], [true, 0], 'denylisted: it did not run again');
    assert.ok(!after.flat().some((l) => l.line.name === killed), 'no result line from a denylisted query');
    assert.ok(snapBefore.queries[killed]!.executions >= 1 && !snapBefore.queries[killed]!.denylisted);
    assert.equal(step.next?.denylisted, [killed], 'the host keeps what is denylisted');
  },
);

t(
  'the watchdog never denylists a query that says denylist: false; an unwatched worker says watcher -1',
  ({ files }) => {
    const os = newOsqueryd();
    os.worker = startWorker(scheduleFromFiles(files), null, new Date(T0));
    restartWorker(os, new Date(T0 + 1000), HEARTBEAT_QUERY);
    const watched = rounds(os, new Map(), 1, 10, T0 + 1000).flat();
    const beat = watched.find((l) => l.line.name === HEARTBEAT_QUERY);
    assert.ok(beat, 'the bundle says denylist: false: the heartbeat runs on');
    assert.is(workerSampleOf(beat!.line)?.running?.watcher, true);
    // A bundle without it: the watchdog's kill denylists the heartbeat, and it stops.
    const denylistable = scheduleFromFiles(files).map(({ denylist: _d, ...q }) => q);
    os.worker = startWorker(denylistable, null, new Date(T0));
    restartWorker(os, new Date(T0 + 1000), HEARTBEAT_QUERY);
    assert.not.ok(
      rounds(os, new Map(), 3, 10, T0 + 1000)
        .flat()
        .some((l) => l.line.name === HEARTBEAT_QUERY),
    );
    os.worker = startWorker(scheduleFromFiles(files), null, new Date(T0));
    os.worker.unwatched = true;
    const unwatched = rounds(os, new Map(), 1)
      .flat()
      .find((l) => l.line.name === HEARTBEAT_QUERY)!;
    assert.is((unwatched.line.snapshot as Array<Record<string, string>>)[0]!.watcher, '-1');
    assert.is(workerSampleOf(unwatched.line)?.running?.watcher, false);
  },
);

t('per-version cost profiles: one version makes a query excessive, another stays minimal', ({ files }) => {
  const profiles = new Map<string, CostProfile>([
    [
      'vbad',
      {
        cpuPercent: 12,
        queries: {
          pack_system_crontab: { userMs: 3_000, systemMs: 1_500 },
          pack_packages_deb_packages: { denylisted: true },
        },
      },
    ],
  ]);
  const docs = new Map<string, QueryStatsDoc>();
  for (const version of ['vgood', 'vbad'])
    for (let h = 0; h < 6; h++) {
      const os = newOsqueryd();
      os.worker = startWorker(scheduleFromFiles(files), version, new Date(T0));
      let baseline: ScheduleBaseline | null = null;
      for (const l of rounds(os, profiles, 36, 100).flat()) {
        const snap = scheduleSnapshotOf(l.line);
        if (!snap) continue;
        const step = scheduleStep(baseline, snap);
        baseline = step.next ?? baseline;
        for (const inc of statsIncrements(step, version)) {
          const doc = docs.get(inc.id) ?? {
            configVersion: version,
            query: inc.query,
            interval: inc.interval,
            windows: {},
          };
          for (const [path, n] of Object.entries(inc.increments)) {
            const parts = path.split('.');
            let node = doc as unknown as Record<string, unknown>;
            for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
            node[parts.at(-1)!] = ((node[parts.at(-1)!] as number) ?? 0) + n;
          }
          docs.set(inc.id, doc);
        }
      }
    }
  const now = T0 + 36 * 100_000 + 3_600_000;
  const summary = (id: string) => summarizeQuery(docs.get(id)!, now, 2);
  assert.is(summary('vbad~pack_system_crontab').class, 'excessive');
  assert.is(summary('vgood~pack_system_crontab').class, 'minimal');
  assert.ok(summary('vbad~pack_packages_deb_packages').denylistedHosts > 0);
  assert.is(summary('vgood~pack_packages_deb_packages').denylistedHosts, 0);
  assert.ok(summary(`vgood~${HEARTBEAT_QUERY}`).executionsPerHour > 0);
});

t('control calls: cost profiles, an expensive osqueryd, a restart, a denylisted query', async ({ files, version }) => {
  const sim: Simulator = await startSimulator({ agentIntervalMs: 0 });
  try {
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${sim.url}/control${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      return { status: res.status, json: (await res.json()) as any };
    };
    const vm = (await call('POST', '/vms', { project: 'p', zone: 'z', name: 'hot-1' })).json as { id: string };
    assert.is(
      (await call('POST', `/vms/${vm.id}/osqueryd/restart`)).status,
      409,
      'no osqueryd before the policy applied',
    );
    // As the OS policy would leave it: files placed, osqueryd restarted for the version.
    const simVm = sim.world.vms.get(vm.id)!;
    simVm.osqueryFiles = { ...files };
    simVm.applied['osqueryd-running'] = policyIdFor(version);
    assert.equal(
      (await call('PUT', `/osquery/profiles/${version}`, { cpuPercent: 2, queries: { heartbeat: { userMs: 7 } } }))
        .status,
      200,
    );
    assert.equal((await call('GET', '/osquery/profiles')).json, {
      [version]: { cpuPercent: 2, queries: { heartbeat: { userMs: 7 } } },
    });
    assert.is((await call('PUT', '/osquery/profiles/x', { cpuPercent: -1 })).status, 400);
    let view = (await call('GET', `/vms/${vm.id}/osqueryd`)).json;
    assert.equal([view.configVersion, view.cpuPercent, view.worker], [version, 2, null]);
    view = (await call('PATCH', `/vms/${vm.id}/osqueryd`, { cpuPercent: 40 })).json;
    assert.is(view.cpuPercent, 40, 'the host override wins over the version');
    view = (await call('POST', `/vms/${vm.id}/osqueryd/restart`)).json;
    const pid = view.worker.pid as number;
    assert.is(view.worker.queries[HEARTBEAT_QUERY].executions, 0);
    view = (await call('POST', `/vms/${vm.id}/osqueryd/denylist`, { query: 'pack_system_crontab' })).json;
    assert.is(view.worker.queries.pack_system_crontab.denylisted, true);
    assert.ok(view.worker.pid > pid, 'the watchdog restarted the worker');
    assert.is((await call('POST', `/vms/${vm.id}/osqueryd/denylist`, { query: 'nope' })).status, 404);
    view = (await call('POST', `/vms/${vm.id}/osqueryd/denylist`, { query: 'pack_system_crontab', denylisted: false }))
      .json;
    assert.is(view.worker.queries.pack_system_crontab.denylisted, false);
    view = (await call('PATCH', `/vms/${vm.id}/osqueryd`, { cpuPercent: null })).json;
    assert.is(view.cpuPercent, 2);
    assert.equal((await call('DELETE', `/osquery/profiles/${version}`)).json, { deleted: true });
    await call('POST', '/reset');
    assert.equal((await call('GET', '/osquery/profiles')).json, {});
  } finally {
    await sim.close();
  }
});

t.run();
