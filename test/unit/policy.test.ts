import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assignmentSelects, buildOsqueryAssignment } from '../../shared/domain/policy.js';

const t = suite('osquery OS policy assignment (pure)');
const settings = { optOutLabel: { key: 'osquery-exempt', value: 'true' }, disruptionPercent: 10, minWaitSeconds: 60 };
const a = buildOsqueryAssignment(settings);

t('one enforced policy: apt and yum groups, repository -> package -> service running', () => {
  assert.is(a.osPolicies?.length, 1);
  const policy = a.osPolicies![0]!;
  assert.is(policy.mode, 'ENFORCEMENT');
  assert.is(policy.allowNoResourceGroupMatch, true);
  const groups = policy.resourceGroups!;
  assert.equal(
    groups.map((g) => g.inventoryFilters!.map((f) => f.osShortName)),
    [
      ['debian', 'ubuntu'],
      ['rhel', 'rocky', 'centos', 'almalinux'],
    ],
  );
  for (const g of groups)
    assert.equal(
      g.resources!.map((r) => r.id),
      ['osquery-repository', 'install-osquery', 'osqueryd-running'],
    );
  assert.is(groups[0]!.resources![0]!.repository?.apt?.uri, 'https://pkg.osquery.io/deb');
  assert.is(groups[1]!.resources![0]!.repository?.yum?.baseUrl, 'https://pkg.osquery.io/rpm');
  assert.is(groups[0]!.resources![1]!.pkg?.apt?.name, 'osquery');
  assert.is(groups[1]!.resources![1]!.pkg?.yum?.name, 'osquery');
});

t('the service exec validates with 100/101 and enforces systemctl enable --now', () => {
  const exec = a.osPolicies![0]!.resourceGroups![0]!.resources![2]!.exec!;
  assert.match(String(exec.validate?.script), /is-active --quiet osqueryd && exit 100/);
  assert.match(String(exec.validate?.script), /exit 101/);
  assert.match(String(exec.enforce?.script), /systemctl enable --now osqueryd && exit 100/);
});

t('inline scripts stay within the 1024-character limit', () => {
  for (const g of a.osPolicies![0]!.resourceGroups!)
    for (const r of g.resources!) {
      for (const script of [r.exec?.validate?.script, r.exec?.enforce?.script])
        assert.ok((script ?? '').length <= 1024);
    }
});

t('instance filter excludes GKE nodes and the opt-out label; rollout budget from settings', () => {
  assert.equal(a.instanceFilter?.exclusionLabels, [
    { labels: { 'goog-gke-node': '' } },
    { labels: { 'osquery-exempt': 'true' } },
  ]);
  assert.equal(a.rollout, { disruptionBudget: { percent: 10 }, minWaitDuration: { seconds: 60 } });
  const custom = buildOsqueryAssignment({
    ...settings,
    optOutLabel: { key: 'skip', value: 'yes' },
    disruptionPercent: 25,
  });
  assert.equal(custom.instanceFilter?.exclusionLabels?.[1], { labels: { skip: 'yes' } });
  assert.equal(custom.rollout?.disruptionBudget, { percent: 25 });
});

t('assignmentSelects mirrors the instance filter', () => {
  assert.ok(assignmentSelects({ labels: {}, os: 'debian' }, settings));
  assert.ok(assignmentSelects({ labels: {}, os: 'unknown' }, settings), 'unknown OS may match the inventory filter');
  assert.not.ok(assignmentSelects({ labels: { 'goog-gke-node': '' }, os: 'ubuntu' }, settings));
  assert.not.ok(assignmentSelects({ labels: { 'osquery-exempt': 'true' }, os: 'debian' }, settings));
  assert.not.ok(assignmentSelects({ labels: {}, os: 'windows' }, settings));
  assert.not.ok(assignmentSelects({ labels: {}, os: 'cos' }, settings));
});

t.run();
