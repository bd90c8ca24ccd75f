import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  assignmentSelects,
  buildOsqueryAssignment,
  SYSLOG_PIPE_WAIT_SECONDS,
  type PolicyConfig,
} from '../../shared/domain/policy.js';

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
  // Pinned even without a configuration (docs/osquery-upgrade.md): never "whatever release is newest".
  assert.match(String(groups[0]!.resources![1]!.exec?.enforce?.script), /osquery=5\.23\.1-1\.linux/);
  assert.match(String(groups[1]!.resources![1]!.exec?.enforce?.script), /osquery-5\.23\.1-1\.linux\.x86_64/);
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

const PIPE = '/var/osquery/syslog_pipe';
const configured = (syslogPipe?: string | null): PolicyConfig => ({
  configVersion: 'v123456789abc',
  files: [
    { source: 'osquery.flags', vmPath: '/etc/osquery/osquery.flags', permissions: '0644', content: '--x=1\n' },
    {
      source: 'rsyslog/60-osquery.conf',
      vmPath: '/etc/rsyslog.d/60-osquery.conf',
      permissions: '0644',
      content: `*.* action(type="ompipe" Pipe="${PIPE}")\n`,
    },
    { source: 'fluentd/osquery.conf', vmPath: '/etc/fluent/conf.d/osquery.conf', permissions: '0644', content: '#\n' },
    {
      source: 'fluentd/plugin/filter_osquery_shipped.rb',
      vmPath: '/etc/fluent/plugin/filter_osquery_shipped.rb',
      permissions: '0644',
      gcs: { bucket: 'cfg', object: 'bundles/v123456789abc/fluentd/plugin/filter_osquery_shipped.rb', generation: '7' },
    },
  ],
  ...(syslogPipe === undefined ? {} : { syslogPipe }),
});
const resourcesOf = (config: PolicyConfig, group = 0) =>
  buildOsqueryAssignment(settings, config).osPolicies![0]!.resourceGroups![group]!.resources!;

t('syslog on: rsyslog installed before its rule, restarted last, once per version, after the pipe exists', () => {
  for (const [group, manager] of [
    [0, 'apt'],
    [1, 'yum'],
  ] as const) {
    const resources = resourcesOf(configured(PIPE), group);
    const ids = resources.map((r) => r.id!);
    assert.equal(ids.slice(-7), [
      'host-identity',
      'install-rsyslog',
      'file-rsyslog-60-osquery-conf',
      'file-fluentd-osquery-conf',
      'file-fluentd-plugin-filter-osquery-shipped-rb',
      'shipper-running',
      'rsyslog-reads-pipe',
    ]);
    assert.is(resources.find((r) => r.id === 'install-rsyslog')!.pkg![manager]!.name, 'rsyslog');
    const exec = resources.find((r) => r.id === 'rsyslog-reads-pipe')!.exec!;
    const validate = String(exec.validate!.script);
    const enforce = String(exec.enforce!.script);
    // In the desired state as soon as the marker names the version: nothing else can bring a second restart.
    assert.is(
      validate,
      '[ "$(cat /var/lib/osquery-orchestrator/rsyslog.version 2>/dev/null)" = "v123456789abc" ] && exit 100\nexit 101',
    );
    assert.match(enforce, new RegExp(`while \\[ ! -p ${PIPE} \\] && \\[ \\$i -lt ${SYSLOG_PIPE_WAIT_SECONDS} \\]`));
    assert.match(enforce, new RegExp(`\\[ -p ${PIPE} \\] \\|\\| \\{ .*exit 1; \\}`));
    assert.match(
      enforce,
      /systemctl restart rsyslog && echo v123456789abc > \/var\/lib\/osquery-orchestrator\/rsyslog.version/,
    );
    assert.ok(
      enforce.indexOf('-p /var') < enforce.indexOf('systemctl restart rsyslog'),
      'restarted only after the pipe',
    );
    for (const r of resources)
      if (r.id !== 'rsyslog-reads-pipe')
        for (const script of [r.exec?.validate?.script, r.exec?.enforce?.script])
          assert.not.match(String(script ?? ''), /restart rsyslog/, `${r.id} never restarts rsyslog`);
  }
});

t("the shipper's filter plugin: placed read-only before the shipper restarts, once per version", () => {
  for (const group of [0, 1]) {
    const resources = resourcesOf(configured(PIPE), group);
    const ids = resources.map((r) => r.id!);
    const plugin = resources.find((r) => r.id === 'file-fluentd-plugin-filter-osquery-shipped-rb')!.file!;
    assert.is(plugin.path, '/etc/fluent/plugin/filter_osquery_shipped.rb');
    assert.is(plugin.permissions, '0644', 'code fluentd runs: not writable by its service user');
    assert.is(plugin.state, 'CONTENTS_MATCH');
    assert.is(plugin.file?.gcs?.generation, '7');
    assert.ok(ids.indexOf('host-identity') < ids.indexOf('file-fluentd-plugin-filter-osquery-shipped-rb'));
    assert.ok(ids.indexOf('file-fluentd-plugin-filter-osquery-shipped-rb') < ids.indexOf('shipper-running'));
    const restarts = resources.filter((r) =>
      [r.exec?.validate?.script, r.exec?.enforce?.script].some((s) => /restart fluentd/.test(String(s ?? ''))),
    );
    assert.equal(
      restarts.map((r) => r.id),
      ['shipper-running'],
      'one resource restarts the shipper',
    );
    const shipper = restarts[0]!.exec!;
    assert.match(
      String(shipper.validate!.script),
      /\[ "\$\(cat \/var\/lib\/osquery-orchestrator\/shipper.version 2>\/dev\/null\)" = "v123456789abc" \]/,
      'in the desired state once the marker names the version',
    );
    assert.match(
      String(shipper.enforce!.script),
      /systemctl restart fluentd && echo v123456789abc > \/var\/lib\/osquery-orchestrator\/shipper.version/,
    );
  }
});

t('syslog off (or a version recorded before it): rsyslog is never restarted', () => {
  for (const pipe of [null, undefined]) {
    const ids = resourcesOf(configured(pipe)).map((r) => r.id!);
    assert.not.ok(ids.includes('rsyslog-reads-pipe'), String(pipe));
    assert.is(ids.at(-1), 'shipper-running');
  }
  const noRule = { ...configured(null), files: configured(null).files.filter((f) => !f.source.startsWith('rsyslog/')) };
  assert.not.ok(
    resourcesOf(noRule).some((r) => r.id === 'install-rsyslog'),
    'no rule: rsyslog is not installed',
  );
});

t.run();
