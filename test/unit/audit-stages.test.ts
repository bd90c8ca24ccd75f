// The audit's pure stages and the pure rules moved out of adapters and config (no emulator, no simulator).
import { NEXT_STEPS } from '../../shared/domain/silence-cause.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decideHost,
  decideHosts,
  fixesOf,
  hostsAfter,
  runTotals,
  tallyHosts,
  withoutFailedFixes,
  zonesToCheck,
  type AuditBasis,
  type HostPlan,
  type Observations,
  type Sight,
} from '../../shared/domain/audit.js';
import { assignmentStep, rolloutChanged, rolloutStateName, zoneRolloutOf } from '../../shared/domain/assignment.js';
import { planHeartbeatWrite, silenceThresholdMs } from '../../shared/domain/heartbeat.js';
import { alertMessage, type Episode } from '../../shared/domain/alerts.js';
import { withIncident, withoutIncident, type OpenIncident } from '../../shared/domain/incident.js';
import { observedKey, type PolicyReport } from '../../shared/domain/reconcile.js';
import { policyIdFor } from '../../shared/domain/policy.js';
import type { Host, HostState } from '../../shared/domain/host.js';
import type { Vm } from '../../shared/domain/vm.js';
import { instanceOfInventory, instanceOfReport } from '../../shared/adapters/osconfig.js';

const t = suite('audit stages (pure)');
const MIN = 60_000;
const now = new Date('2026-11-27T12:00:00Z');
const ago = (minutes: number) => new Date(now.getTime() - minutes * MIN);
const audit: AuditBasis = {
  project: 'p',
  now,
  cause: 'fleetAudit run-1',
  settings: {
    optOutLabel: { key: 'osquery-exempt', value: 'true' },
    gracePeriodMs: 30 * MIN,
    silenceThresholdMs: 17 * MIN,
    remediateOsConfig: false,
  },
};
const vm = (instanceId: string, over: Partial<Vm> = {}): Vm => ({
  instanceId,
  name: `vm-${instanceId}`,
  project: 'p',
  zone: 'z1',
  status: 'RUNNING',
  labels: {},
  labelFingerprint: '',
  metadata: { 'enable-osconfig': 'TRUE' },
  metadataFingerprint: '',
  serviceAccounts: ['sa@p'],
  os: 'debian',
  createdAt: ago(120),
  ...over,
});
const host = (instanceId: string, state: HostState, over: Partial<Host> = {}): Host => ({
  instanceId,
  name: `vm-${instanceId}`,
  project: 'p',
  zone: 'z1',
  state,
  reason: null,
  stateSince: ago(60),
  inScope: state !== 'exempt' && state !== 'deleted',
  lastLogAt: null,
  osqueryVersion: null,
  configVersion: null,
  updatedAt: ago(60),
  ...over,
});
const compliant: PolicyReport = {
  osPolicyId: 'osquery-vabc',
  complianceState: 'COMPLIANT',
  complianceStateReason: null,
  failedResource: null,
  updateTime: now,
};
const noObservations = (): Observations => ({
  reports: new Map(),
  osqueryVersions: new Map(),
  zonesWithReports: new Set(),
});

t('decideHosts: every VM listed and every host recorded, VMs first; vanished, discovered and unchanged hosts', () => {
  const observations = noObservations();
  observations.reports.set(observedKey('z1', '1'), compliant);
  observations.osqueryVersions.set(observedKey('z1', '1'), '5.23.1');
  const reporting = host('1', 'reporting', {
    lastLogAt: ago(1),
    osqueryVersion: '5.23.1',
    configVersion: 'vabc',
  });
  const plans = decideHosts(
    {
      vms: [vm('1'), vm('2', { labels: { 'goog-gke-node': '' } }), vm('3', { createdAt: ago(5) })],
      hosts: new Map([
        ['gone', { host: host('gone', 'reporting') }],
        ['1', { host: reporting }],
      ]),
      observations,
      projectMetadata: {},
    },
    audit,
  );
  assert.equal(
    plans.map((p) => p.instanceId),
    ['1', '2', '3', 'gone'],
  );
  const [unchanged, gke, fresh, gone] = plans;
  assert.is(unchanged!.change, null, 'reporting with fresh logs: nothing to write');
  assert.is(unchanged!.host, reporting);
  assert.equal([gke!.change?.host.state, gke!.change?.host.reason], ['exempt', 'gke-node']);
  assert.equal(gke!.fixes, [], 'a labelled GKE node is not selected by the policy: no label fix');
  assert.equal(
    [fresh!.change?.host.state, fresh!.change?.transition?.cause],
    ['pending', 'fleetAudit run-1 (discovered)'],
  );
  assert.equal([gone!.change?.host.state, gone!.change?.host.reason], ['deleted', 'vm-not-found']);
  assert.is(gone!.sighting.vm, null);
});

t('decideHost: the same decision on the document read again after a race', () => {
  const sighting = { vm: vm('1'), report: compliant, osqueryVersion: '5.23.1', projectMetadata: {} };
  const first = decideHost(sighting, host('1', 'compliant', { stateSince: ago(5) }), audit);
  assert.equal([first?.change?.host.state, first?.change?.transition], ['compliant', null], 'versions recorded');
  // A heartbeat landed meanwhile: the host is reporting with a fresh line; nothing left to change.
  const raced = host('1', 'reporting', { lastLogAt: ago(1), osqueryVersion: '5.23.1', configVersion: 'vabc' });
  assert.is(decideHost(sighting, raced, audit)?.change, null);
  // A deleted host stays deleted, whatever a listing read before the delete shows.
  assert.is(decideHost(sighting, host('1', 'deleted'), audit), null);
  // A VM gone before it was ever recorded leaves nothing.
  assert.is(decideHost({ ...sighting, vm: null }, null, audit), null);
});

t("decideHosts: osquery's own evidence and the backlog's measured reach decide a silence's cause", () => {
  const read = (id: string, extra: Partial<Host> = {}) =>
    host(id, 'reporting', { lastLogAt: ago(30), osqueryVersion: '5.23.1', configVersion: 'vabc', ...extra });
  const sight = (hosts: Sight['hosts'], more: Partial<Sight> = {}): Sight => ({
    vms: [...hosts.keys()].map((id) => vm(id)),
    hosts,
    observations: {
      reports: new Map([...hosts.keys()].map((id) => [observedKey('z1', id), compliant])),
      osqueryVersions: new Map(),
      zonesWithReports: new Set(['z1']),
    },
    projectMetadata: {},
    ...more,
  });
  const outcome = (plans: HostPlan[]) =>
    plans.map((p) => [p.instanceId, p.change?.host.state, p.change?.host.cause, p.change?.episodes.open?.details]);
  const evidence = sight(
    new Map([
      ['1', { host: read('1'), denylisted: { at: ago(40), queries: ['heartbeat', 'pack_x'] } }],
      ['2', { host: read('2'), watcher: false }],
      ['3', { host: read('3'), denylisted: { at: ago(40), queries: ['pack_x'] } }],
    ]),
  );
  assert.equal(outcome(decideHosts(evidence, audit)), [
    [
      '1',
      'silent',
      'heartbeat-denylisted',
      { cause: 'heartbeat-denylisted', nextStep: NEXT_STEPS['heartbeat-denylisted'], denylisted: ['pack_x'] },
    ],
    ['2', 'silent', 'osqueryd-unwatched', { cause: 'osqueryd-unwatched', nextStep: NEXT_STEPS['osqueryd-unwatched'] }],
    ['3', 'silent', 'unknown', { cause: 'unknown', nextStep: NEXT_STEPS.unknown, denylisted: ['pack_x'] }],
  ]);
  // Behind: the backlog reaches back to 20 minutes ago; a host quiet since long before is silent all the same.
  const behind = sight(
    new Map([
      ['1', { host: read('1') }],
      ['2', { host: read('2', { lastLogAt: ago(50) }) }],
    ]),
    {
      pipelineBehind: true,
      backlog: { deliveredBefore: ago(20) },
    },
  );
  assert.equal(
    decideHosts(behind, audit).map((p) => [p.instanceId, p.change?.host.state, p.change?.host.cause]),
    [
      ['1', 'reporting', 'pipeline-behind'],
      ['2', 'silent', 'unknown'],
    ],
  );
  const unmeasured = decideHosts({ ...behind, backlog: { deliveredBefore: null } }, audit);
  assert.equal(
    unmeasured.map((p) => p.change?.host.cause),
    ['pipeline-behind', 'pipeline-behind'],
    'no measured age: every host held, as before',
  );
});

t('a planned change carries the alert episodes it opens or closes (the adapter writes them, decides nothing)', () => {
  const sighting = { vm: vm('1'), report: compliant, osqueryVersion: '5.23.1', projectMetadata: {} };
  const quiet = host('1', 'reporting', { lastLogAt: ago(30), osqueryVersion: '5.23.1', configVersion: 'vabc' });
  const silent = decideHost(sighting, quiet, audit)?.change;
  assert.equal([silent?.host.state, silent?.episodes.close], ['silent', undefined]);
  assert.equal(silent?.episodes.open, {
    kind: 'host.silent',
    severity: 'critical',
    dedupKey: `host.silent:1:${now.getTime()}`,
    host: { instanceId: '1', name: 'vm-1', project: 'p', zone: 'z1' },
    reason: 'logs-stopped',
    since: now,
    // No evidence about the host but its lines: the cause is unknown, and the alert says what to check.
    details: { cause: 'unknown', nextStep: NEXT_STEPS.unknown },
  });
  const back = host('1', 'silent', {
    stateSince: ago(10),
    lastLogAt: ago(1),
    osqueryVersion: '5.23.1',
    configVersion: 'vabc',
  });
  assert.equal(decideHost(sighting, back, audit)?.change?.episodes, {
    close: { kind: 'host.silent', instanceId: '1', previousSince: ago(10), at: now },
  });
});

t('fixes: what the plans ask for, per VM; a failed fix leaves its host unchanged for the next audit', () => {
  const remediating = { ...audit, settings: { ...audit.settings, remediateOsConfig: true } };
  const plans = decideHosts(
    {
      vms: [vm('1', { metadata: {} }), vm('2', { metadata: { 'cluster-name': 'c' } }), vm('3', { createdAt: ago(5) })],
      hosts: new Map(),
      observations: noObservations(),
      projectMetadata: {},
    },
    remediating,
  );
  assert.equal(fixesOf(plans), [
    { instanceId: '1', name: 'vm-1', zone: 'z1', action: 'remediate-osconfig' },
    { instanceId: '2', name: 'vm-2', zone: 'z1', action: 'label-exempt' },
  ]);
  const kept = withoutFailedFixes(plans, new Set(['2']));
  assert.equal(
    kept.map((p) => p.change?.host.state ?? null),
    ['pending', null, 'pending'],
  );
  assert.equal([...hostsAfter(kept).keys()], ['1', '3'], 'a host never written and not recorded is not there');
  assert.ok(plans[1]!.change, 'the plans given are not changed');
});

t('hostsAfter: the change where there is one, else the document as read', () => {
  const read = host('1', 'reporting');
  const changed = host('2', 'silent');
  const after = hostsAfter([
    {
      instanceId: '1',
      sighting: { vm: null, report: null, osqueryVersion: null, projectMetadata: {} },
      host: read,
      fixes: [],
      change: null,
    },
    {
      instanceId: '2',
      sighting: { vm: null, report: null, osqueryVersion: null, projectMetadata: {} },
      host: host('2', 'reporting'),
      fixes: [],
      change: { host: changed, transition: null, episodes: {} },
    },
  ]);
  assert.equal([after.get('1'), after.get('2')], [read, changed]);
});

t('zonesToCheck: every zone with in-scope VMs, less those known rolled out (or reporting, unpublished)', () => {
  const inScope = [{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z1' }, { zone: 'z3' }];
  const published = {
    policyConfig: { configVersion: 'vabc' },
    zones: {
      'p/z1': { rolloutState: 'SUCCEEDED' },
      'p/z2': { rolloutState: 'IN_PROGRESS' },
      'other/z3': { rolloutState: 'SUCCEEDED' },
    },
  };
  assert.equal(zonesToCheck('p', inScope, published, new Set(['z2', 'z3'])), ['z2', 'z3']);
  assert.equal(zonesToCheck('p', inScope, null, new Set(['z2'])), ['z1', 'z3'], 'nothing published');
  assert.equal(zonesToCheck('p', [], published, new Set()), []);
});

t('tallyHosts: per state, per state on the version, and the hosts needing action', () => {
  const tally = tallyHosts(
    [
      host('1', 'reporting', { configVersion: 'v1' }),
      host('2', 'reporting', { configVersion: 'v0' }),
      host('3', 'silent', { configVersion: 'v1', reason: 'logs-stopped' }),
      host('4', 'blocked', { reason: 'no-service-account' }),
      host('5', 'exempt'),
    ],
    'v1',
  );
  assert.equal(tally.counts, { reporting: 2, silent: 1, blocked: 1, exempt: 1 });
  assert.equal(tally.onVersion, { reporting: 1, silent: 1 });
  assert.equal(
    tally.needingAction.map((h) => [h.instanceId, h.state, h.reason]),
    [
      ['3', 'silent', 'logs-stopped'],
      ['4', 'blocked', 'no-service-account'],
    ],
  );
  assert.equal(tallyHosts([host('1', 'reporting')], null).onVersion, {}, 'nothing published: nothing on a version');
});

t('runTotals: none while a project runs; then summed, with coverage and the run status', () => {
  const done = { status: 'succeeded', counts: { reporting: 3, silent: 1, exempt: 2 }, apiCalls: 5, hostWrites: 4 };
  assert.is(runTotals([done, { status: 'running' }]), null);
  assert.equal(
    runTotals([done, { status: 'succeeded', counts: { reporting: 1, stopped: 2 }, apiCalls: 2, hostWrites: 1 }]),
    {
      status: 'succeeded',
      counts: { reporting: 4, silent: 1, exempt: 2, stopped: 2 },
      coverage: 0.8,
      apiCalls: 7,
      hostWrites: 5,
    },
  );
  const failed = { status: 'failed', counts: {}, apiCalls: 0, hostWrites: 0 };
  assert.is(runTotals([done, failed])?.status, 'partial');
  assert.is(runTotals([failed, failed])?.status, 'failed');
});

t("assignments: a zone's step, its rollout record, and when the record is written again", () => {
  const policy = { configVersion: 'vabc' } as Parameters<typeof assignmentStep>[1];
  assert.is(assignmentStep(null, policy), 'create');
  assert.is(assignmentStep({ osPolicies: [{ id: policyIdFor('vold') }] }, policy), 'update');
  assert.is(assignmentStep({ osPolicies: [{ id: policyIdFor('vabc') }] }, policy), 'none');
  assert.is(assignmentStep({ osPolicies: [{ id: 'osquery' }] }, null), 'none', 'nothing published: the base policy');
  assert.equal(
    [rolloutStateName(4), rolloutStateName('IN_PROGRESS'), rolloutStateName(undefined), rolloutStateName(9)],
    ['SUCCEEDED', 'IN_PROGRESS', 'ROLLOUT_STATE_UNSPECIFIED', '9'],
  );
  const rollout = zoneRolloutOf('p', 'z1', 'projects/p/locations/z1/osPolicyAssignments/osquery', {
    revisionId: 'r2',
    rolloutState: 1,
  });
  assert.equal(rollout, {
    project: 'p',
    zone: 'z1',
    assignment: 'projects/p/locations/z1/osPolicyAssignments/osquery',
    revisionId: 'r2',
    rolloutState: 'IN_PROGRESS',
  });
  assert.ok(rolloutChanged(undefined, rollout));
  assert.not.ok(rolloutChanged({ ...rollout }, rollout));
  assert.ok(rolloutChanged({ ...rollout, rolloutState: 'SUCCEEDED' }, rollout));
  assert.ok(rolloutChanged({ ...rollout, revisionId: 'r1' }, rollout));
});

t('silence threshold: the setting, else three heartbeat intervals plus splay', () => {
  assert.is(silenceThresholdMs({ minutes: 15, heartbeatIntervalSeconds: 300, splayPercent: 10 }), 15 * MIN);
  assert.is(
    silenceThresholdMs({ heartbeatIntervalSeconds: 300, splayPercent: 10 }),
    16.5 * MIN,
    'the documented default',
  );
  assert.is(silenceThresholdMs({ heartbeatIntervalSeconds: 60, splayPercent: 0 }), 3 * MIN);
});

t('planHeartbeatWrite: nothing, lastLogAt alone, or a silent host back to reporting with its line', () => {
  const newest = ago(1).getTime();
  const pending = { newest, samples: [], snapshots: [] };
  const hb = (h: Host) => ({ ...h, osqueryd: null, querySchedule: null });
  assert.equal(planHeartbeatWrite(hb(host('1', 'reporting', { lastLogAt: ago(0.5) })), pending, null, now, MIN, 'c'), {
    write: 'nothing',
  });
  assert.equal(planHeartbeatWrite(hb(host('1', 'reporting', { lastLogAt: ago(5) })), pending, null, now, MIN, 'c'), {
    write: 'update',
    fields: { lastLogAt: new Date(newest), updatedAt: now },
    change: null,
    episodes: {},
    stats: [],
  });
  const back = planHeartbeatWrite(
    hb(host('1', 'silent', { lastLogAt: ago(30), reason: 'logs-stopped' })),
    pending,
    null,
    now,
    MIN,
    'c',
  );
  assert.is(back.write, 'update');
  if (back.write !== 'update' || !back.change) return assert.unreachable('a state change');
  assert.equal(
    [back.change.host.state, back.change.host.reason, back.change.host.lastLogAt, back.change.transition?.from],
    ['reporting', null, new Date(newest), 'silent'],
  );
});

t("alertMessage: an episode's firing and resolved messages (docs/contracts.md)", () => {
  const episode: Episode = {
    dedupKey: 'host.silent:1:1700000000000',
    kind: 'host.silent',
    severity: 'critical',
    host: { instanceId: '1', name: 'web', project: 'p', zone: 'z1' },
    reason: 'logs-stopped',
    since: ago(60),
    firing: { at: ago(60), sentAt: null },
    resolved: { at: ago(2), sentAt: null },
  };
  assert.equal(alertMessage(episode, 'firing'), {
    kind: 'host.silent',
    status: 'firing',
    severity: 'critical',
    host: episode.host,
    reason: 'logs-stopped',
    since: ago(60).toISOString(),
    at: ago(60).toISOString(),
    dedupKey: episode.dedupKey,
  });
  assert.is(alertMessage(episode, 'resolved').at, ago(2).toISOString());
});

t('open incidents on a host: added once, removed by id', () => {
  const incident = (incidentId: string): OpenIncident => ({
    incidentId,
    policy: 'osqueryd CPU',
    condition: null,
    metric: null,
    observed: null,
    threshold: null,
    startedAt: null,
    url: null,
  });
  const one = withIncident([], incident('a'));
  assert.is(withIncident(one, incident('a')), one, 'opened again: the same list');
  assert.equal(
    withIncident(one, incident('b')).map((i) => i.incidentId),
    ['a', 'b'],
  );
  assert.equal(withoutIncident(withIncident(one, incident('b')), 'a'), [incident('b')]);
});

t("OS Config names: a report's and an inventory's instance", () => {
  assert.is(instanceOfReport('projects/p/locations/z1/instances/123/osPolicyAssignments/osquery/report'), '123');
  assert.is(instanceOfInventory('projects/p/locations/z1/instances/web/inventory'), 'web');
  assert.is(instanceOfInventory('projects/p/locations/z1/instances/123/osPolicyAssignments/osquery/report'), null);
  assert.is(instanceOfReport('projects/p/locations/z1/instances/123/inventory'), null);
  assert.is(instanceOfReport(null), null);
});

t.run();
