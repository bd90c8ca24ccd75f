import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkPrerequisites, decideScope, isGkeNode } from '../../shared/domain/scope.js';
import { osFamilyFromLicenses, type Vm } from '../../shared/domain/vm.js';

const t = suite('scope and prerequisites (pure)');
const settings = { optOutLabel: { key: 'osquery-exempt', value: 'true' } };
const vm = (over: Partial<Vm> = {}): Vm => ({
  instanceId: '1',
  name: 'n',
  project: 'p',
  zone: 'z',
  status: 'RUNNING',
  labels: {},
  labelFingerprint: '',
  metadata: {},
  metadataFingerprint: '',
  serviceAccounts: ['sa@p.iam.gserviceaccount.com'],
  os: 'debian',
  ...over,
});

t('GKE node by label or by metadata', () => {
  assert.ok(isGkeNode(vm({ labels: { 'goog-gke-node': '' } })));
  assert.ok(isGkeNode(vm({ metadata: { 'kube-env': 'x' } })));
  assert.ok(isGkeNode(vm({ metadata: { 'cluster-name': 'c' } })));
  assert.not.ok(
    isGkeNode(vm({ metadata: { 'created-by': 'projects/1/zones/z/instanceGroupManagers/web' } })),
    'a plain MIG VM is no GKE node',
  );
});

t('decideScope: exemptions and their reasons, in order', () => {
  assert.equal(decideScope(vm({ labels: { 'goog-gke-node': '' }, os: 'cos' }), settings), {
    inScope: false,
    reason: 'gke-node',
  });
  assert.equal(decideScope(vm({ labels: { 'osquery-exempt': 'true' } }), settings), {
    inScope: false,
    reason: 'opt-out-label',
  });
  assert.equal(decideScope(vm({ labels: { 'osquery-exempt': 'false' } }), settings), { inScope: true });
  assert.equal(decideScope(vm({ os: 'windows' }), settings), { inScope: false, reason: 'unsupported-os:windows' });
  assert.equal(decideScope(vm({ os: 'cos' }), settings), { inScope: false, reason: 'unsupported-os:cos' });
  for (const os of ['debian', 'ubuntu', 'rhel', 'rocky', 'centos', 'almalinux', 'unknown'] as const)
    assert.equal(decideScope(vm({ os }), settings), { inScope: true }, os);
});

t('decideScope: the opt-out label is a setting', () => {
  const custom = { optOutLabel: { key: 'compliance-skip', value: 'yes' } };
  assert.equal(decideScope(vm({ labels: { 'compliance-skip': 'yes' } }), custom), {
    inScope: false,
    reason: 'opt-out-label',
  });
  assert.equal(decideScope(vm({ labels: { 'osquery-exempt': 'true' } }), custom), { inScope: true });
});

t('checkPrerequisites: instance metadata wins over project metadata', () => {
  assert.equal(checkPrerequisites(vm(), { 'enable-osconfig': 'TRUE' }), { ok: true });
  assert.equal(checkPrerequisites(vm({ metadata: { 'enable-osconfig': 'FALSE' } }), { 'enable-osconfig': 'TRUE' }), {
    ok: false,
    reason: 'osconfig-disabled',
    remediable: false,
  });
  assert.equal(checkPrerequisites(vm({ metadata: { 'enable-osconfig': 'true' } }), { 'enable-osconfig': 'false' }), {
    ok: true,
  });
  assert.equal(checkPrerequisites(vm(), {}), { ok: false, reason: 'osconfig-disabled', remediable: true });
  assert.equal(checkPrerequisites(vm(), { 'enable-osconfig': 'FALSE' }), {
    ok: false,
    reason: 'osconfig-disabled',
    remediable: false,
  });
});

t('checkPrerequisites: a service account is required', () => {
  assert.equal(checkPrerequisites(vm({ serviceAccounts: [] }), { 'enable-osconfig': 'TRUE' }), {
    ok: false,
    reason: 'no-service-account',
    remediable: false,
  });
});

t('OS family from boot disk licenses', () => {
  const base = 'https://www.googleapis.com/compute/v1/projects';
  assert.is(osFamilyFromLicenses([`${base}/debian-cloud/global/licenses/debian-12-bookworm`]), 'debian');
  assert.is(osFamilyFromLicenses([`${base}/ubuntu-os-cloud/global/licenses/ubuntu-2204-lts`]), 'ubuntu');
  assert.is(osFamilyFromLicenses([`${base}/rhel-cloud/global/licenses/rhel-9-server`]), 'rhel');
  assert.is(osFamilyFromLicenses([`${base}/rocky-linux-cloud/global/licenses/rocky-linux-9`]), 'rocky');
  assert.is(osFamilyFromLicenses([`${base}/windows-cloud/global/licenses/windows-server-2022-dc`]), 'windows');
  assert.is(osFamilyFromLicenses([`${base}/cos-cloud/global/licenses/cos`]), 'cos');
  assert.is(osFamilyFromLicenses([]), 'unknown');
});

t.run();
