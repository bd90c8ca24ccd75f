// Why a host went quiet, the pipeline's backlog episodes and storms: the pure decisions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CRASH_LOOP_RESTARTS,
  NEXT_STEPS,
  SILENCE_CAUSES,
  silenceCause,
  type SilenceEvidence,
} from '../../shared/domain/silence-cause.js';
import { heartbeatBehind, planBacklogIncident, type PipelineRecord } from '../../shared/domain/pipeline.js';
import { commonCause, decideStorm, holdSilentAlerts, STORM_MIN_HOSTS } from '../../shared/domain/storm.js';
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

test.run();
