import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  observedFor,
  observedKey,
  reconcileHost,
  reduceReport,
  type PolicyReport,
  type ReconcileInput,
} from '../../shared/domain/reconcile.js';
import type { Host, HostState } from '../../shared/domain/host.js';
import type { Vm } from '../../shared/domain/vm.js';

const t = suite('reconcileHost (pure)');
const MIN = 60_000;
const settings = {
  optOutLabel: { key: 'osquery-exempt', value: 'true' },
  gracePeriodMs: 30 * MIN,
  silenceThresholdMs: 17 * MIN,
  remediateOsConfig: false,
};
const now = new Date('2026-11-27T12:00:00Z');
const ago = (minutes: number) => new Date(now.getTime() - minutes * MIN);
const vm = (over: Partial<Vm> = {}): Vm => ({
  instanceId: '1',
  name: 'web',
  project: 'p',
  zone: 'z',
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
const host = (state: HostState, stateSince: Date, over: Partial<Host> = {}): Host => ({
  instanceId: '1',
  name: 'web',
  project: 'p',
  zone: 'z',
  state,
  reason: null,
  stateSince,
  inScope: true,
  lastLogAt: null,
  osqueryVersion: null,
  configVersion: null,
  updatedAt: stateSince,
  ...over,
});
const report = (complianceState: string, over: Partial<PolicyReport> = {}): PolicyReport => ({
  osPolicyId: 'osquery-vabc',
  complianceState,
  complianceStateReason: null,
  failedResource: null,
  updateTime: now,
  ...over,
});
const decide = (over: Partial<ReconcileInput>) =>
  reconcileHost(
    { vm: vm(), report: null, osqueryVersion: null, host: null, projectMetadata: {}, now, ...over },
    settings,
  );
const stateOf = (over: Partial<ReconcileInput>) => {
  const d = decide(over);
  return d ? [d.state, d.reason] : null;
};

t('vanished VMs: deleted once; never-seen ones record nothing', () => {
  assert.equal(stateOf({ vm: null, host: host('reporting', ago(5)) }), ['deleted', 'vm-not-found']);
  assert.is(decide({ vm: null, host: null }), null);
  assert.equal(stateOf({ vm: null, host: host('deleted', ago(5)) }), null);
});

t('a deleted host stays deleted, even when a listing read before the delete still shows its VM', () => {
  const report: PolicyReport = {
    osPolicyId: 'osquery-vabc',
    complianceState: 'COMPLIANT',
    complianceStateReason: null,
    failedResource: null,
    updateTime: now,
  };
  assert.is(decide({ host: host('deleted', ago(1)), report }), null);
  assert.is(decide({ host: host('deleted', ago(1)) }), null);
});

t('exempt before anything else, with the label action when the policy would still select it', () => {
  assert.equal(stateOf({ vm: vm({ labels: { 'goog-gke-node': '' }, os: 'cos' }) }), ['exempt', 'gke-node']);
  assert.equal(decide({ vm: vm({ metadata: { 'kube-env': 'x' }, os: 'ubuntu' }) })!.actions, ['label-exempt']);
});

t('not running -> stopped, whatever the report says', () => {
  assert.equal(stateOf({ vm: vm({ status: 'TERMINATED' }), report: report('COMPLIANT') }), [
    'stopped',
    'vm-terminated',
  ]);
  assert.equal(stateOf({ report: report('UNKNOWN', { complianceStateReason: 'vm-not-running' }) }), [
    'stopped',
    'vm-not-running',
  ]);
});

t('prerequisites -> blocked, or pending with a remediation when allowed', () => {
  assert.equal(stateOf({ vm: vm({ serviceAccounts: [] }) }), ['blocked', 'no-service-account']);
  assert.equal(stateOf({ vm: vm({ metadata: {} }) }), ['blocked', 'osconfig-disabled']);
  const remediated = reconcileHost(
    { vm: vm({ metadata: {} }), report: null, osqueryVersion: null, host: null, projectMetadata: {}, now },
    { ...settings, remediateOsConfig: true },
  );
  assert.equal([remediated?.state, remediated?.actions], ['pending', ['remediate-osconfig']]);
});

t('no agent: pending within the grace period, blocked after', () => {
  const r = report('UNKNOWN', { complianceStateReason: 'no-agent-detected' });
  assert.equal(stateOf({ report: r, host: host('pending', ago(5)) }), ['pending', 'awaiting-agent']);
  assert.equal(stateOf({ report: r, host: host('pending', ago(31)) }), ['blocked', 'no-agent-detected']);
  assert.equal(
    stateOf({ report: r, vm: vm({ createdAt: ago(2) }) }),
    ['pending', 'awaiting-agent'],
    'a fresh discovered VM gets its grace',
  );
  assert.equal(
    stateOf({ report: r, vm: vm({ createdAt: ago(300) }) }),
    ['blocked', 'no-agent-detected'],
    'an old discovered VM does not',
  );
});

t(
  'failing policy: pending, then noncompliant naming the failed resource; a once-healthy host gets a fresh grace',
  () => {
    const r = report('NON_COMPLIANT', {
      complianceStateReason: 'resource-execution-errors',
      failedResource: 'install-osquery',
    });
    assert.equal(stateOf({ report: r, host: host('pending', ago(10)) }), ['pending', 'policy-applying']);
    assert.equal(stateOf({ report: r, host: host('pending', ago(45)) }), [
      'noncompliant',
      'resource-execution-errors:install-osquery',
    ]);
    assert.equal(stateOf({ report: r, host: host('reporting', ago(500), { lastLogAt: ago(1) }) }), [
      'pending',
      'policy-applying',
    ]);
    assert.equal(
      stateOf({
        report: r,
        host: host('noncompliant', ago(500), { reason: 'resource-execution-errors:install-osquery' }),
      }),
      ['noncompliant', 'resource-execution-errors:install-osquery'],
    );
    assert.equal(
      stateOf({ report: report('UNKNOWN', { complianceStateReason: 'task-timeout' }), host: host('pending', ago(45)) }),
      ['noncompliant', 'task-timeout'],
    );
  },
);

t('no report: pending (awaiting-report) in the grace period, then noncompliant', () => {
  assert.equal(stateOf({ host: host('pending', ago(1)) }), ['pending', 'awaiting-report']);
  assert.equal(stateOf({ host: host('pending', ago(40)) }), ['noncompliant', 'no-report']);
});

t('compliant: versions from report and inventory; logs decide reporting or silent', () => {
  const d = decide({ report: report('COMPLIANT'), osqueryVersion: '5.23.1', host: host('pending', ago(3)) });
  assert.equal([d?.state, d?.reason, d?.configVersion, d?.osqueryVersion], ['compliant', null, 'vabc', '5.23.1']);
  assert.equal(stateOf({ report: report('COMPLIANT'), host: host('compliant', ago(5), { lastLogAt: ago(2) }) }), [
    'reporting',
    null,
  ]);
  assert.equal(stateOf({ report: report('COMPLIANT'), host: host('reporting', ago(60), { lastLogAt: ago(18) }) }), [
    'silent',
    'logs-stopped',
  ]);
  assert.equal(stateOf({ report: report('COMPLIANT'), host: host('compliant', ago(18)) }), [
    'silent',
    'never-reported',
  ]);
  assert.equal(stateOf({ report: report('COMPLIANT'), host: host('compliant', ago(10)) }), ['compliant', null]);
  assert.equal(
    stateOf({ report: report('COMPLIANT'), host: host('silent', ago(1), { reason: 'never-reported' }) }),
    ['silent', 'never-reported'],
    'stays silent until a first line',
  );
  assert.equal(
    stateOf({
      report: report('COMPLIANT'),
      host: host('silent', ago(60), { reason: 'logs-stopped', lastLogAt: ago(1) }),
    }),
    ['reporting', null],
    'logs again -> reporting',
  );
});

t('reduceReport picks the osquery policy and its first failing resource', () => {
  const r = reduceReport({
    updateTime: '2026-11-27T11:00:00Z',
    osPolicyCompliances: [
      { osPolicyId: 'other', complianceState: 'COMPLIANT' },
      {
        osPolicyId: 'osquery-v1',
        complianceState: 'NON_COMPLIANT',
        complianceStateReason: 'resource-execution-errors',
        osPolicyResourceCompliances: [
          { osPolicyResourceId: 'osquery-repository', complianceState: 'COMPLIANT' },
          { osPolicyResourceId: 'install-osquery', complianceState: 'NON_COMPLIANT' },
        ],
      },
    ],
  });
  assert.equal(r, {
    osPolicyId: 'osquery-v1',
    complianceState: 'NON_COMPLIANT',
    complianceStateReason: 'resource-execution-errors',
    failedResource: 'install-osquery',
    updateTime: new Date('2026-11-27T11:00:00Z'),
  });
  assert.is(reduceReport({ osPolicyCompliances: [{ osPolicyId: 'other' }] }), null);
});

t('observations match a VM by id, or by name within its own zone only', () => {
  const observed = new Map([
    [observedKey('us-a', '11'), 'by id in us-a'],
    [observedKey('us-a', 'twin'), 'by name in us-a'],
  ]);
  assert.is(observedFor({ instanceId: '11', name: 'twin', zone: 'us-a' }, observed), 'by id in us-a');
  assert.is(observedFor({ instanceId: '12', name: 'twin', zone: 'us-a' }, observed), 'by name in us-a');
  assert.is(observedFor({ instanceId: '13', name: 'twin', zone: 'us-b' }, observed), undefined, 'another zone');
  assert.is(observedFor({ instanceId: '11', name: 'web', zone: 'us-b' }, observed), undefined, 'an id is per zone');
});

t.run();
