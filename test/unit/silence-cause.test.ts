// Why a host went quiet, the pipeline's backlog episodes and storms: the pure decisions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CRASH_LOOP_RESTARTS,
  DENYLIST_MS,
  diagnosis,
  NEXT_STEPS,
  SILENCE_CAUSES,
  silenceCause,
  type SilenceEvidence,
} from '../../shared/domain/silence-cause.js';
import {
  backlogExcuses,
  backlogMeasure,
  heartbeatBacklog,
  heartbeatBehind,
  lagText,
  planBacklogIncident,
  type PipelineRecord,
} from '../../shared/domain/pipeline.js';
import { denylistedOf, MAX_DENYLISTED_KEPT } from '../../shared/domain/telemetry/query-cost.js';
import type { QueryCounters } from '../../shared/domain/telemetry/log-lines.js';
import {
  commonCause,
  decideStorm,
  holdSilentAlerts,
  silenceTally,
  STORM_MIN_HOSTS,
} from '../../shared/domain/storm.js';
import { decideFleetStorm, runSilence } from '../../shared/domain/fleet-storm.js';
import { runTotals } from '../../shared/domain/audit.js';
import { planObservation, type Host } from '../../shared/domain/host.js';
import { owedMessages } from '../../shared/domain/alerts.js';
import { reconcileHost, type ReconcileSettings } from '../../shared/domain/reconcile.js';
import type { HostPlan } from '../../shared/domain/audit.js';
import type { Vm } from '../../shared/domain/vm.js';

const MIN = 60_000;
const now = new Date('2026-12-07T05:00:00Z');
const ago = (m: number) => new Date(now.getTime() - m * MIN);
const quiet: SilenceEvidence = {
  state: 'silent',
  vmStatus: 'RUNNING',
  report: { complianceStateReason: null, failedResource: null, updateTime: ago(5) },
  linesFresh: false,
  workerRestarts: 0,
  pipelineBehind: false,
  now,
};

test('a host whose lines are fresh has no cause; every cause has a next step', () => {
  assert.is(silenceCause({ ...quiet, state: 'reporting', linesFresh: true }), null);
  assert.is(silenceCause({ ...quiet, state: 'compliant', linesFresh: null }), null, 'never reported: not quiet yet');
  for (const c of SILENCE_CAUSES) assert.ok(NEXT_STEPS[c].length > 20 && NEXT_STEPS[c].length < 120, c);
});

test('each cause from its evidence', () => {
  assert.is(silenceCause({ ...quiet, vmStatus: null, state: 'deleted' }), 'vm-deleted');
  assert.is(silenceCause({ ...quiet, vmStatus: 'SUSPENDED', state: 'stopped' }), 'vm-stopped');
  const noAgent = { complianceStateReason: 'no-agent-detected', failedResource: null, updateTime: ago(1) };
  assert.is(silenceCause({ ...quiet, state: 'pending', report: noAgent }), 'agent-gone');
  assert.is(silenceCause({ ...quiet, report: { ...quiet.report!, updateTime: ago(90) } }), 'agent-gone', 'stale');
  const shipper = { ...quiet.report!, failedResource: 'shipper-running' };
  assert.is(silenceCause({ ...quiet, state: 'noncompliant', report: shipper }), 'shipper-down');
  assert.is(silenceCause({ ...quiet, workerRestarts: CRASH_LOOP_RESTARTS }), 'osqueryd-crash-loop');
  assert.is(silenceCause({ ...quiet, workerRestarts: 1 }), 'unknown', 'one restart is not a loop');
  const failing = { ...quiet.report!, failedResource: 'install-osquery' };
  assert.is(silenceCause({ ...quiet, report: failing }), 'policy-failing');
  assert.is(silenceCause({ ...quiet, state: 'reporting', pipelineBehind: true }), 'pipeline-behind');
  assert.is(silenceCause(quiet), 'unknown');
});

test("the host's own evidence wins over the pipeline's backlog; the VM's status wins over all", () => {
  const all = {
    ...quiet,
    pipelineBehind: true,
    workerRestarts: 5,
    report: { complianceStateReason: null, failedResource: 'shipper-running', updateTime: ago(1) },
  };
  assert.is(silenceCause(all), 'shipper-down');
  assert.is(silenceCause({ ...all, report: { ...all.report, failedResource: null } }), 'osqueryd-crash-loop');
  assert.is(silenceCause({ ...all, vmStatus: 'TERMINATED', state: 'stopped' }), 'vm-stopped');
});

test("osqueryd's watchdog before the silence: the heartbeat denylisted, the watcher missing", () => {
  const denylisted = (queries: string[], minutesAgo = 30) => ({ at: ago(minutesAgo), queries });
  assert.is(silenceCause({ ...quiet, denylisted: denylisted(['heartbeat']) }), 'heartbeat-denylisted');
  assert.is(silenceCause({ ...quiet, denylisted: denylisted(['pack_x']) }), 'unknown', 'another query: no cause');
  const expired = denylisted(['heartbeat'], DENYLIST_MS / 60_000);
  assert.is(silenceCause({ ...quiet, denylisted: expired }), 'unknown', 'a day-old snapshot: the denylisting expired');
  assert.is(silenceCause({ ...quiet, watcher: false }), 'osqueryd-unwatched');
  assert.is(silenceCause({ ...quiet, watcher: true }), 'unknown');
  assert.is(silenceCause({ ...quiet, watcher: null }), 'unknown', 'not reported: no evidence');
  // Order: the crash loop (the watcher gave up) wins; a denylisted heartbeat beats another failing resource,
  // which beats a missing watcher; all beat the pipeline's backlog.
  const both = { ...quiet, denylisted: denylisted(['heartbeat']), watcher: false, pipelineBehind: true };
  assert.is(silenceCause({ ...both, workerRestarts: CRASH_LOOP_RESTARTS }), 'osqueryd-crash-loop');
  assert.is(silenceCause(both), 'heartbeat-denylisted');
  const failing = { ...quiet.report!, failedResource: 'install-osquery' };
  assert.is(silenceCause({ ...both, denylisted: null, report: failing }), 'policy-failing');
  assert.is(silenceCause({ ...both, denylisted: null }), 'osqueryd-unwatched');
  assert.is(silenceCause({ ...both, denylisted: null, watcher: true }), 'pipeline-behind');
});

test('other denylisted queries support a crash loop or an unexplained silence in the alert', () => {
  assert.equal(diagnosis('osqueryd-crash-loop', ['heartbeat', 'pack_x']), {
    cause: 'osqueryd-crash-loop',
    nextStep: NEXT_STEPS['osqueryd-crash-loop'],
    denylisted: ['pack_x'],
  });
  assert.equal(diagnosis('unknown', ['pack_x']).denylisted, ['pack_x']);
  assert.equal(diagnosis('vm-stopped', ['pack_x']), { cause: 'vm-stopped', nextStep: NEXT_STEPS['vm-stopped'] });
  assert.equal(diagnosis('heartbeat-denylisted', ['heartbeat']), {
    cause: 'heartbeat-denylisted',
    nextStep: NEXT_STEPS['heartbeat-denylisted'],
  });
  const change = planObservation(
    host,
    host,
    { state: 'silent', reason: 'logs-stopped', cause: 'unknown', denylisted: ['pack_x'] },
    now,
    'x',
  );
  assert.equal(change?.episodes.open?.details, {
    cause: 'unknown',
    nextStep: NEXT_STEPS.unknown,
    denylisted: ['pack_x'],
  });
  assert.is('denylisted' in change!.host, false, 'evidence for the alert, not stored on the host');
});

test('the denylisted queries a host keeps: the heartbeat first, bounded', () => {
  const c = (denylisted: boolean): QueryCounters => ({
    executions: 1,
    outputBytes: 0,
    userMs: 0,
    systemMs: 0,
    wallMs: 0,
    denylisted,
    interval: 3600,
  });
  const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`q${String(i).padStart(2, '0')}`, c(true)]));
  const kept = denylistedOf({ ...many, heartbeat: c(true), ok: c(false) });
  assert.is(kept.length, MAX_DENYLISTED_KEPT);
  assert.equal(kept.slice(0, 3), ['heartbeat', 'q00', 'q01']);
  assert.equal(denylistedOf({ ok: c(false) }), []);
});

const settings = {
  optOutLabel: { key: 'osquery-exempt', value: 'true' },
  gracePeriodMs: 30 * MIN,
  silenceThresholdMs: 15 * MIN,
  remediateOsConfig: false,
} as ReconcileSettings;
const host: Host = {
  instanceId: '1001',
  name: 'web',
  project: 'p',
  zone: 'us-east1-b',
  state: 'reporting',
  reason: null,
  stateSince: ago(120),
  inScope: true,
  lastLogAt: ago(30),
  osqueryVersion: null,
  configVersion: null,
  updatedAt: ago(30),
};

test('while the heartbeat path is behind, a reporting host is not judged silent; a silent one stays silent', () => {
  const vm: Vm = {
    instanceId: '1001',
    name: 'web',
    project: 'p',
    zone: 'us-east1-b',
    status: 'RUNNING',
    labels: {},
    labelFingerprint: '',
    metadata: { 'enable-osconfig': 'TRUE' },
    metadataFingerprint: '',
    serviceAccounts: ['sa@p'],
    os: 'debian',
    createdAt: ago(200),
  };
  const report = {
    osPolicyId: 'osquery-v1',
    complianceState: 'COMPLIANT',
    complianceStateReason: null,
    failedResource: null,
    updateTime: ago(1),
  };
  const input = { vm, report, osqueryVersion: null, host, projectMetadata: {}, now };
  assert.is(reconcileHost(input, settings)?.state, 'silent');
  assert.is(reconcileHost({ ...input, pipelineBehind: true }, settings)?.state, 'reporting');
  const silent = { ...host, state: 'silent' as const, reason: 'logs-stopped' };
  assert.is(reconcileHost({ ...input, host: silent, pipelineBehind: true }, settings)?.state, 'silent');
  // Measured: the backlog reaches back 10 minutes (everything before 12 minutes ago was delivered); a host
  // quiet for 30 minutes stopped a whole threshold before that: silent, backlog or not.
  const backlog = { deliveredBefore: ago(12) };
  assert.is(reconcileHost({ ...input, pipelineBehind: true, backlog }, settings)?.state, 'silent');
  const recent = { ...host, lastLogAt: ago(20) };
  assert.is(reconcileHost({ ...input, host: recent, pipelineBehind: true, backlog }, settings)?.state, 'reporting');
});

test('host.silent carries the cause and its next step; a host reporting again loses its cause', () => {
  const change = planObservation(
    host,
    host,
    { state: 'silent', reason: 'logs-stopped', cause: 'shipper-down' },
    now,
    'x',
  );
  assert.equal(change?.episodes.open?.details, { cause: 'shipper-down', nextStep: NEXT_STEPS['shipper-down'] });
  assert.is(change?.host.cause, 'shipper-down');
  const back = planObservation(change!.host, host, { state: 'reporting', reason: null }, now, 'logHeartbeat');
  assert.is(back?.host.cause, null);
  assert.is(planObservation(change!.host, host, { state: 'silent', reason: 'logs-stopped' }, now, 'x'), null, 'kept');
});

const incident = (incidentId: string, state: 'open' | 'closed', minute: number) => ({
  subscription: 'hb-push',
  role: 'heartbeat' as const,
  incidentId,
  state,
  at: ago(60 - minute),
});

test('pipeline.backlog: one episode per subscription while any incident is open; redeliveries change nothing', () => {
  const a = planBacklogIncident(null, incident('age', 'open', 0))!;
  assert.ok(a.open);
  assert.is(planBacklogIncident(a.next, incident('age', 'open', 0)), null, 'redelivered');
  const b = planBacklogIncident(a.next, incident('count', 'open', 1))!;
  assert.equal([b.open, b.close], [null, null], 'a second condition: the same episode');
  assert.ok(heartbeatBehind([b.next]));
  const c = planBacklogIncident(b.next, incident('age', 'closed', 5))!;
  assert.equal([c.close, c.next.episode?.dedupKey], [null, a.open!.dedupKey]);
  const d = planBacklogIncident(c.next, incident('count', 'closed', 6))!;
  assert.equal(d.close, { dedupKey: a.open!.dedupKey, at: ago(54) });
  assert.not.ok(heartbeatBehind([d.next]));
  assert.is(planBacklogIncident(d.next, incident('count', 'closed', 6)), null, 'redelivered close');
  const siem: PipelineRecord = { ...b.next, role: 'siem' };
  assert.not.ok(heartbeatBehind([siem]), "the SIEM's backlog holds no silence");
});

test('the measured lag: observed values validated, kept while the episode is open, said in words', () => {
  const AGE = 'pubsub.googleapis.com/subscription/oldest_unacked_message_age';
  const COUNT = 'pubsub.googleapis.com/subscription/num_undelivered_messages';
  assert.equal(backlogMeasure(AGE, '840'), { metric: 'oldest-unacked-age', value: 840 });
  assert.equal(backlogMeasure(COUNT, 1.5e5), { metric: 'undelivered-messages', value: 150000 });
  for (const bad of ['-1', 'NaN', '1e400', 'x', '', null, `${32 * 86_400}`])
    assert.is(backlogMeasure(AGE, bad), null, String(bad));
  assert.is(backlogMeasure('compute.googleapis.com/instance/cpu/utilization', '1'), null, 'not a backlog metric');
  const a = planBacklogIncident(null, { ...incident('age', 'open', 0), measure: backlogMeasure(AGE, '840') })!;
  assert.equal(a.next.lag, {
    oldestUnackedSeconds: 840,
    oldestUnackedAt: ago(60),
    undeliveredMessages: null,
    undeliveredAt: null,
  });
  const b = planBacklogIncident(a.next, { ...incident('count', 'open', 1), measure: backlogMeasure(COUNT, '2000') })!;
  assert.equal([b.next.lag?.oldestUnackedSeconds, b.next.lag?.undeliveredMessages], [840, 2000]);
  assert.is(lagText(b.next.lag), 'oldest unacked message 14 min, 2,000 undelivered messages');
  const c = planBacklogIncident(b.next, incident('age', 'closed', 5))!;
  assert.is(c.next.lag?.oldestUnackedSeconds, 840, 'kept while the episode is open');
  const d = planBacklogIncident(c.next, incident('count', 'closed', 6))!;
  assert.is(d.next.lag, null, 'cleared with the episode');
  const again = planBacklogIncident(d.next, incident('age2', 'open', 10))!;
  assert.is(again.next.lag, null, "a new episode never inherits the last one's lag");
});

test('what a backlog excuses: judged as of the moment every line was delivered', () => {
  const threshold = 15 * MIN;
  const record = (lag: PipelineRecord['lag'], role: PipelineRecord['role'] = 'heartbeat'): PipelineRecord => ({
    subscription: 's',
    role,
    openIncidents: ['i'],
    episode: { dedupKey: 'k', since: ago(30) },
    lag,
  });
  const measured = (seconds: number, minutesAgo: number) => ({
    oldestUnackedSeconds: seconds,
    oldestUnackedAt: ago(minutesAgo),
    undeliveredMessages: null,
    undeliveredAt: null,
  });
  assert.is(heartbeatBacklog([]), null);
  assert.is(heartbeatBacklog([record(measured(600, 20), 'siem')]), null, "the SIEM's holds nothing");
  assert.equal(heartbeatBacklog([record(null)]), { deliveredBefore: null }, 'behind, not measured: all held');
  // 10 minutes old 20 minutes ago: everything published 30 minutes ago or earlier was delivered.
  const hold = heartbeatBacklog([record(measured(600, 20))])!;
  assert.equal(hold, { deliveredBefore: ago(30) });
  assert.equal(heartbeatBacklog([record(measured(600, 20)), record(null)]), { deliveredBefore: null });
  assert.equal(heartbeatBacklog([record(measured(600, 20)), record(measured(1800, 20))]), {
    deliveredBefore: ago(50),
  });
  assert.ok(backlogExcuses(ago(40), hold, threshold), 'a line 10 minutes before then: its next ones may wait');
  assert.ok(backlogExcuses(ago(45), hold, threshold), 'exactly a threshold before');
  assert.not.ok(backlogExcuses(ago(46), hold, threshold), 'quiet a whole threshold before the backlog: silent');
  assert.ok(backlogExcuses(ago(90), { deliveredBefore: null }, threshold), 'no measured age: held as before');
  assert.ok(backlogExcuses(null, hold, threshold), 'never sent a line: held');
});

function plans(n: number, silentNow: number, silentBefore = 0): HostPlan[] {
  return Array.from({ length: n }, (_, i) => {
    const h = { ...host, instanceId: String(2000 + i) };
    const before = i < silentBefore ? { ...h, state: 'silent' as const, cause: 'unknown' as const } : h;
    const change =
      i >= silentBefore && i < silentBefore + silentNow
        ? planObservation(before, h, { state: 'silent', reason: 'logs-stopped', cause: 'pipeline-behind' }, now, 'x')
        : null;
    return { instanceId: h.instanceId, sighting: {} as never, host: before, fixes: [], change };
  });
}

test('a storm: more than the share silent in one audit is one fleet.silent, host alerts held', () => {
  const storm = decideStorm('p', plans(100, 30), null, 0.2, now);
  assert.equal(storm.open && [storm.open.share, storm.open.silentHosts, storm.open.hosts, storm.open.cause], [
    0.3,
    30,
    100,
    'pipeline-behind',
  ]);
  assert.ok(storm.hold);
  const held = holdSilentAlerts(plans(100, 30));
  assert.ok(held.filter((p) => p.change).every((p) => p.change!.episodes.open?.held));
  assert.equal(owedMessages({ kind: 'host.silent', held: true, firing: { sentAt: null } }), {
    firing: false,
    resolved: false,
  });
  assert.is(decideStorm('p', plans(100, 10), null, 0.2, now).open, null, 'within the share');
  assert.is(decideStorm('p', plans(10, STORM_MIN_HOSTS - 1), null, 0.2, now).open, null, 'too few hosts');
});

test('a storm lasts while silent hosts are over the share, and closes when they are back within it', () => {
  const open = { dedupKey: 'fleet.silent:p:1', since: ago(30) };
  assert.equal(decideStorm('p', plans(100, 0, 25), open, 0.2, now), { open: null, close: null, hold: true });
  assert.equal(decideStorm('p', plans(100, 0, 5), open, 0.2, now), { open: null, close: open, hold: false });
  assert.is(commonCause([{ cause: 'vm-stopped' }, { cause: 'unknown' }, { cause: 'vm-stopped' }]), 'vm-stopped');
});

test("a project's silence for its run: newly silent, silent, in scope, the common causes (at most 5)", () => {
  assert.equal(silenceTally(plans(5, 2, 1), false), {
    newlySilent: 2,
    silent: 3,
    inScope: 5,
    causes: { 'pipeline-behind': 2 },
    projectStorm: false,
  });
  const held = holdSilentAlerts(plans(5, 2), 'run-1');
  assert.equal(
    held.flatMap((p) =>
      p.change?.episodes.open ? [[p.change.episodes.open.held, p.change.episodes.open.heldRun]] : [],
    ),
    [
      [true, 'run-1'],
      [true, 'run-1'],
    ],
  );
});

test("the fleet's storm: 20 projects of 5 hosts, 2 silent in each, is one fleet.silent; hosts held", () => {
  const tallies = Array.from({ length: 20 }, () => silenceTally(plans(5, 2), false));
  assert.is(decideStorm('p', plans(5, 2), null, 0.2, now).open, null, 'below STORM_MIN_HOSTS in each project');
  const silence = runTotals(tallies.map((silence) => ({ status: 'succeeded', silence })))!.silence!;
  assert.equal(silence, { newlySilent: 40, silent: 40, inScope: 100, causes: { 'pipeline-behind': 40 }, projects: 20 });
  const storm = decideFleetStorm(silence, null, 0.2, ago(5));
  assert.equal(storm.open, {
    dedupKey: `fleet.silent:fleet:${ago(5).getTime()}`,
    since: ago(5),
    share: 0.4,
    silentHosts: 40,
    hosts: 100,
    projects: 20,
    cause: 'pipeline-behind',
  });
  assert.is(storm.release, 'none', 'the host alerts stay held');
  // Every closer of the run names the same episode (its key comes from the run's start).
  assert.equal(decideFleetStorm(silence, null, 0.2, ago(5)).open?.dedupKey, storm.open!.dedupKey);
});

test("the fleet's storm lasts while over the share, clears back within it; no storm releases the run", () => {
  const open = { dedupKey: 'fleet.silent:fleet:1', since: ago(30) };
  const silence = (newlySilent: number, silent: number, inScope = 100) =>
    runSilence([{ newlySilent, silent, inScope, causes: {}, projectStorm: false }]);
  assert.equal(decideFleetStorm(silence(0, 25), open, 0.2, now), { open: null, close: null, release: 'none' });
  assert.equal(decideFleetStorm(silence(0, 20), open, 0.2, now), { open: null, close: open, release: 'all' });
  assert.equal(decideFleetStorm(silence(1, 1), null, 0.2, now), { open: null, close: null, release: 'run' });
  assert.is(decideFleetStorm(silence(20, 20), null, 0.2, now).open, null, 'exactly the share is within it');
  assert.is(decideFleetStorm(silence(4, 4, 10), null, 0.2, now).open, null, 'fewer than STORM_MIN_HOSTS');
  assert.is(decideFleetStorm(silence(0, 0, 0), null, 0.2, now).release, 'run', 'no hosts: nothing to decide');
  assert.equal(decideFleetStorm(silence(21, 21), null, 0.2, now).open?.cause, 'unknown', 'no cause recorded');
});

test("a project's own storm is left out of the fleet's silent counts (its fleet.silent names them)", () => {
  const stormy = { newlySilent: 30, silent: 30, inScope: 100, causes: { 'vm-stopped': 30 }, projectStorm: true };
  const calm = { newlySilent: 1, silent: 1, inScope: 100, causes: { unknown: 1 }, projectStorm: false };
  assert.equal(runSilence([stormy, calm]), {
    newlySilent: 1,
    silent: 1,
    inScope: 200,
    causes: { unknown: 1 },
    projects: 2,
  });
  assert.is(decideFleetStorm(runSilence([stormy, calm]), null, 0.2, now).release, 'run');
  assert.not.ok('silence' in runTotals([{ status: 'succeeded', counts: {} }])!, 'no result carried one');
});

test.run();
