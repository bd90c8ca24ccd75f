// osquery itself through the rollout (docs/osquery-upgrade.md): the bundle names the osquery version, the
// version enters the content address, the policy pins the package (apt and yum, upgrades and downgrades),
// the configuration version is stamped on every line by a load decorator; the simulated agent installs,
// upgrades and downgrades releases as the policy's scripts say.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_BUNDLE_DIR, loadBundle, type Bundle } from '../../shared/osquery/bundle.js';
import { renderBundle } from '../../shared/osquery/render.js';
import { buildOsqueryAssignment, pinnedOsquery, pinnedVersionOf, policyConfigOf } from '../../shared/domain/policy.js';
import { OSQUERY_VERSION_FILE, osqueryVersionOfBundle } from '../../shared/osquery/version.js';
import { decorationsFromFiles } from '../../infra/local/simulator/osqueryd.js';
import { defaultReleases, installPinned } from '../../infra/local/simulator/releases.js';

const t = suite<{ bundle: Bundle }>('osquery upgrade: pinned package, version in the content address');
const settings = { logTopic: 'osquery-logs', logTopicProject: 'sec-logs' };
const policySettings = {
  optOutLabel: { key: 'osquery-exempt', value: 'true' },
  disruptionPercent: 10,
  minWaitSeconds: 60,
};
t.before(async (ctx) => {
  ctx.bundle = await loadBundle(DEFAULT_BUNDLE_DIR);
});
const withVersion = (bundle: Bundle, version: string): Bundle => ({
  dir: bundle.dir,
  files: new Map([...bundle.files, [OSQUERY_VERSION_FILE, `${version}\n`]]),
});

t('the bundle names its osquery version; a new release is a new configuration version', ({ bundle }) => {
  assert.is(osqueryVersionOfBundle(bundle.files), '5.23.1');
  const a = renderBundle(bundle, settings);
  const b = renderBundle(withVersion(bundle, '5.24.0'), settings);
  assert.is(a.osqueryVersion, '5.23.1');
  assert.is(b.osqueryVersion, '5.24.0');
  assert.is.not(b.configVersion, a.configVersion, 'the osquery version enters the content address');
  assert.is(renderBundle(withVersion(bundle, '5.23.1'), settings).configVersion, a.configVersion);
  assert.throws(() => renderBundle(withVersion(bundle, 'latest'), settings), /osquery.version: expected/);
});

t('a load decorator stamps every line with the configuration version it belongs to', ({ bundle }) => {
  const r = renderBundle(bundle, settings);
  const conf = r.files.find((f) => f.source === 'osquery.conf')!;
  assert.not.match(conf.content, /CONFIG_VERSION/, 'the placeholder is filled in');
  assert.equal(decorationsFromFiles({ '/etc/osquery/osquery.conf': conf.content }).config_version, r.configVersion);
  // The version is still the hash of the bundle: rendering twice gives the same, and the decorator with it.
  assert.is(renderBundle(bundle, settings).files.find((f) => f.source === 'osquery.conf')!.content, conf.content);
});

t('the policy pins the package: apt with downgrades allowed, yum installing or downgrading', ({ bundle }) => {
  const rendered = renderBundle(withVersion(bundle, '5.24.0'), settings);
  const generations = Object.fromEntries(rendered.files.map((f) => [f.source, '7']));
  const a = buildOsqueryAssignment(policySettings, policyConfigOf(rendered, 'b', generations));
  const [apt, yum] = a.osPolicies![0]!.resourceGroups!.map((g) =>
    g.resources!.find((r) => r.id === 'install-osquery')!,
  );
  assert.is(apt!.pkg, undefined, "OS Config's pkg resource cannot pin a version: an exec does");
  assert.match(String(apt!.exec!.validate!.script), /dpkg-query -W -f='\$\{Version\}' osquery.*= "5\.24\.0-1\.linux"/);
  assert.match(String(apt!.exec!.validate!.script), /exit 100\nexit 101$/);
  assert.match(String(apt!.exec!.enforce!.script), /apt-get install .*--allow-downgrades .*osquery=5\.24\.0-1\.linux/);
  assert.match(
    String(yum!.exec!.validate!.script),
    /rpm -q --qf '%\{VERSION\}-%\{RELEASE\}' osquery.*"5\.24\.0-1\.linux"/,
  );
  assert.match(String(yum!.exec!.enforce!.script), /yum -y -q downgrade osquery-5\.24\.0-1\.linux\.x86_64/);
  assert.match(String(yum!.exec!.enforce!.script), /yum -y -q install osquery-5\.24\.0-1\.linux\.x86_64/);
  for (const r of [apt!, yum!]) {
    assert.is(pinnedVersionOf(r), '5.24.0');
    for (const script of [r.exec!.validate!.script, r.exec!.enforce!.script]) assert.ok(String(script).length <= 1024);
  }
  assert.is(pinnedVersionOf(pinnedOsquery('5.22.1', 'yum')), '5.22.1');
  assert.match(String(a.osPolicies![0]!.description), /osquery 5\.24\.0/);
});

t('the simulated package manager installs, upgrades and downgrades what the repository has', () => {
  const releases = defaultReleases();
  releases.set('5.24.0', {});
  const installed: Record<string, string> = {};
  assert.equal(installPinned(releases, installed, '5.23.1'), { from: null, to: '5.23.1' });
  assert.equal(installPinned(releases, installed, '5.24.0'), { from: '5.23.1', to: '5.24.0' });
  assert.equal(installPinned(releases, installed, '5.23.1'), { from: '5.24.0', to: '5.23.1' }, 'a downgrade');
  assert.is(installed.osquery, '5.23.1-1.linux');
  assert.equal(installPinned(releases, installed, '9.9.9'), {
    error: "E: Version '9.9.9-1.linux' for 'osquery' was not found",
  });
  assert.is(installed.osquery, '5.23.1-1.linux', 'a failed install changes nothing');
});

t.run();
