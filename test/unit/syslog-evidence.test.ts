// Evidence of syslog ingestion per host (pure): the syslog query's output_size in the hourly osquery_schedule
// snapshots says when its results were logged; the status snapshot counts hosts by it; the evidence report
// has it per host.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  SYSLOG_SEEN_WITHIN_MS,
  foldSyslogEvidence,
  syslogStatus,
  type SyslogEvidence,
} from '../../shared/domain/syslog.js';
import { planHeartbeatWrite, type HeartbeatHost } from '../../shared/domain/heartbeat.js';
import type { ScheduleSnapshot } from '../../shared/domain/telemetry/log-lines.js';
import { summarizeProject, mergeFleetStatus } from '../../shared/domain/status.js';
import { planObservation, type Host } from '../../shared/domain/host.js';
import { evidenceRow } from '../../shared/domain/evidence.js';
import { SYSLOG_QUERY } from '../../shared/osquery/log-routing.js';

const t = suite('syslog evidence');
const H = 3600_000;
const T0 = Date.parse('2026-11-27T12:00:00Z');
const worker = { pid: 100, startTime: T0 / 1000 - 600 };

/** A snapshot at `at` with the syslog query's cumulative output (undefined: the version does not schedule it). */
const snapshot = (at: number, syslogBytes?: number, w = worker): ScheduleSnapshot => ({
  at,
  worker: w,
  queries: {
    heartbeat: {
      executions: 12,
      outputBytes: 5000,
      userMs: 50,
      systemMs: 20,
      wallMs: 90,
      denylisted: false,
      interval: 300,
    },
    ...(syslogBytes === undefined
      ? {}
      : {
          [SYSLOG_QUERY]: {
            executions: 12,
            outputBytes: syslogBytes,
            userMs: 10,
            systemMs: 5,
            wallMs: 20,
            denylisted: false,
            interval: 300,
          },
        }),
  },
});

t('a snapshot whose syslog output grew says results were seen; one that did not, only that it is scheduled', () => {
  // The worker started 10 minutes before the first snapshot: its counters cover that span.
  const first = foldSyslogEvidence(null, null, [snapshot(T0, 800)])!;
  assert.equal(first, { scheduledAt: new Date(T0), seenAt: new Date(T0) });
  const baseline = {
    at: new Date(T0),
    worker,
    queries: { [SYSLOG_QUERY]: { executions: 12, outputBytes: 800, userMs: 10, systemMs: 5, wallMs: 20 } },
  };
  const same = foldSyslogEvidence(first, baseline, [snapshot(T0 + H, 800)])!;
  assert.equal(same, { scheduledAt: new Date(T0 + H), seenAt: new Date(T0) }, 'nothing new in that hour');
  const grew = foldSyslogEvidence(same, baseline, [snapshot(T0 + H, 950)])!;
  assert.equal(grew.seenAt, new Date(T0 + H));
  assert.is(foldSyslogEvidence(grew, { ...baseline, at: new Date(T0 + H) }, [snapshot(T0 + H, 950)]), null, 'stale');
  assert.is(foldSyslogEvidence(null, null, [snapshot(T0)]), null, 'a version without the syslog query: nothing');
  // A first snapshot of a worker that has run for weeks does not say when its rows were logged.
  const old = foldSyslogEvidence(null, null, [snapshot(T0, 800, { pid: 5, startTime: T0 / 1000 - 30 * 86400 })])!;
  assert.equal(old, { scheduledAt: new Date(T0), seenAt: null });
  // A restart: counted from the new worker's start.
  const restarted = foldSyslogEvidence(old, baseline, [
    snapshot(T0 + H, 40, { pid: 200, startTime: T0 / 1000 + 1800 }),
  ])!;
  assert.equal(restarted.seenAt, new Date(T0 + H));
  // A worker that started within the snapshot's second: its counters cover less than a second, which is known.
  const fresh = foldSyslogEvidence(null, null, [snapshot(T0, 120, { pid: 300, startTime: T0 / 1000 })])!;
  assert.equal(fresh, { scheduledAt: new Date(T0), seenAt: new Date(T0) });
});

t('arriving within the last hour (as hourly snapshots say it), missing when on and none, off otherwise', () => {
  const e: SyslogEvidence = { scheduledAt: new Date(T0), seenAt: new Date(T0) };
  assert.is(syslogStatus(e, new Date(T0 + SYSLOG_SEEN_WITHIN_MS)), 'arriving');
  assert.is(syslogStatus(e, new Date(T0 + SYSLOG_SEEN_WITHIN_MS + 1)), 'missing');
  assert.is(syslogStatus({ scheduledAt: new Date(T0), seenAt: null }, new Date(T0)), 'missing');
  assert.is(syslogStatus(null, new Date(T0)), 'off');
  assert.is(syslogStatus(e, new Date(T0 + 4 * H)), 'off', 'its snapshots stopped listing the query');
});

const host = (name: string, state: Host['state'], syslog?: SyslogEvidence): Host => ({
  instanceId: `${name.length}00${name.charCodeAt(0)}`,
  name,
  project: 'p',
  zone: 'z',
  state,
  reason: null,
  stateSince: new Date(T0 - 86400_000),
  inScope: state !== 'exempt' && state !== 'deleted',
  lastLogAt: new Date(T0),
  osqueryVersion: '5.23.1',
  configVersion: 'v1',
  updatedAt: new Date(T0),
  ...(syslog ? { syslog } : {}),
});

t("logHeartbeat writes it with the schedule baseline; the audit's writes never carry it back", () => {
  const h: HeartbeatHost = { ...host('web', 'reporting'), osqueryd: null, querySchedule: null };
  const planned = planHeartbeatWrite(
    h,
    { newest: T0, samples: [], snapshots: [snapshot(T0, 500)] },
    null,
    new Date(T0),
    0,
    'test',
  );
  assert.ok(planned.write === 'update');
  if (planned.write === 'update')
    assert.equal(planned.fields.syslog, { scheduledAt: new Date(T0), seenAt: new Date(T0) });
  // The audit's change keeps the evidence on the host it summarises (its writers leave the field out).
  const evidence = { scheduledAt: new Date(T0), seenAt: new Date(T0) };
  const change = planObservation(
    host('web', 'compliant', evidence),
    host('web', 'compliant'),
    { state: 'reporting', reason: null },
    new Date(T0),
    'audit',
  );
  assert.equal(change?.host.syslog, evidence);
  assert.not.ok(
    'syslog' in
      planObservation(null, host('new', 'pending'), { state: 'pending', reason: null }, new Date(T0), 'x')!.host,
  );
});

t('the status snapshot counts the hosts expected to report and lists the missing ones; the report has a column', () => {
  const now = new Date(T0 + 10 * 60_000);
  const seen = { scheduledAt: new Date(T0), seenAt: new Date(T0) };
  const never = { scheduledAt: new Date(T0), seenAt: null };
  const hosts = [
    host('a', 'reporting', seen),
    host('b', 'reporting', never),
    host('c', 'noncompliant', never),
    host('d', 'reporting'),
    host('e', 'exempt', never),
    host('f', 'stopped', never),
  ];
  const s = summarizeProject('p', 'run-1', now, hosts);
  assert.equal(s.syslog?.counts, { arriving: 1, missing: 2, off: 1 });
  assert.equal(
    s.syslog?.missing.map((m) => m.name),
    ['b', 'c'],
  );
  const fleet = mergeFleetStatus(
    {
      runId: 'run-1',
      startedAt: now.toISOString(),
      finishedAt: now.toISOString(),
      status: 'succeeded',
      coverage: null,
      counts: {},
      projects: { p: { status: 'succeeded' } },
    },
    [s],
    [],
    now,
  );
  assert.equal(fleet.syslog?.counts, { arriving: 1, missing: 2, off: 1 });
  const rows = hosts.map((x) => evidenceRow(x, null, now));
  assert.equal(
    rows.map((r) => [r.name, r.syslog, r.syslogSeenAt]),
    [
      ['a', 'arriving', new Date(T0).toISOString()],
      ['b', 'missing', ''],
      ['c', 'missing', ''],
      ['d', 'off', ''],
      ['e', '', ''],
      ['f', 'missing', ''],
    ],
  );
});

t.run();
