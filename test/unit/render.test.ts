// Bundle -> version -> OS policy assignment (pure).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DEFAULT_BUNDLE_DIR,
  INLINE_LIMIT,
  loadBundle,
  objectNameOf,
  type Bundle,
} from '../../shared/osquery/bundle.js';
import { renderBundle } from '../../shared/osquery/render.js';
import { buildOsqueryAssignment, configVersionOfPolicy, policyConfigOf } from '../../shared/domain/policy.js';

const t = suite<{ bundle: Bundle }>('render');
const settings = { logTopic: 'osquery-logs', logTopicProject: 'sec-logs' };
const policySettings = {
  optOutLabel: { key: 'osquery-exempt', value: 'true' },
  disruptionPercent: 10,
  minWaitSeconds: 60,
};
t.before(async (ctx) => {
  ctx.bundle = await loadBundle(DEFAULT_BUNDLE_DIR);
});

const withFile = (bundle: Bundle, name: string, content: string): Bundle => ({
  dir: bundle.dir,
  files: new Map([...bundle.files, [name, content]]),
});

t('the version is a hash of the canonical contents: stable, and new when anything placed changes', ({ bundle }) => {
  const a = renderBundle(bundle, settings);
  assert.match(a.configVersion, /^v[0-9a-f]{12}$/);
  assert.is(renderBundle(bundle, settings).configVersion, a.configVersion);
  const reordered: Bundle = { dir: bundle.dir, files: new Map([...bundle.files].reverse()) };
  assert.is(renderBundle(reordered, settings).configVersion, a.configVersion, 'file order does not matter');
  const pack = bundle.files.get('packs/users.conf')!;
  assert.is.not(
    renderBundle(withFile(bundle, 'packs/users.conf', `${pack} `), settings).configVersion,
    a.configVersion,
  );
  assert.is.not(
    renderBundle(bundle, { ...settings, logTopic: 'other' }).configVersion,
    a.configVersion,
    'settings rendered into files count',
  );
  assert.is(
    renderBundle(withFile(bundle, 'NOTES.md', 'not placed'), settings).configVersion,
    a.configVersion,
    'files not placed on VMs do not count',
  );
});

t("the rendered version names the pipe osqueryd reads syslog from, or none (the linter's model)", ({ bundle }) => {
  assert.is(renderBundle(bundle, settings).syslogPipe, '/var/osquery/syslog_pipe');
  const flags = bundle.files.get('osquery.flags')!;
  const off = (text: string) => renderBundle(withFile(bundle, 'osquery.flags', text), settings).syslogPipe;
  assert.is(off(flags.replace(/^--enable_syslog=true$/m, '--enable_syslog=false')), null);
  assert.is(off(flags.replace(/^--disable_events=false$/m, '--disable_events=true')), null);
  assert.is(off(flags.replace(/^--syslog_pipe_path=.*$/m, '--syslog_pipe_path=/run/osq.pipe')), '/run/osq.pipe');
  const conf = JSON.parse(bundle.files.get('osquery.conf')!);
  const viaOptions = withFile(bundle, 'osquery.conf', JSON.stringify({ ...conf, options: { enable_syslog: false } }));
  assert.is(renderBundle(viaOptions, settings).syslogPipe, null, 'options win over the flagfile');
  const rendered = renderBundle(bundle, settings);
  const generations = Object.fromEntries(rendered.files.map((f) => [f.source, '7']));
  assert.is(policyConfigOf(rendered, 'b', generations).syslogPipe, '/var/osquery/syslog_pipe');
});

t("fluentd's filter plugins land in its plugin directory, read-only; other Ruby files are not placed", ({ bundle }) => {
  const rendered = renderBundle(bundle, settings);
  const plugin = rendered.files.find((f) => f.source === 'fluentd/plugin/filter_osquery_shipped.rb');
  assert.ok(plugin, 'the bundle ships the filter plugin');
  assert.is(plugin!.vmPath, '/etc/fluent/plugin/filter_osquery_shipped.rb');
  assert.is(plugin!.permissions, '0644');
  const extra = renderBundle(withFile(bundle, 'fluentd/plugin/filter_extra.rb', '# x\n'), settings);
  assert.is(
    extra.files.find((f) => f.source === 'fluentd/plugin/filter_extra.rb')?.vmPath,
    '/etc/fluent/plugin/filter_extra.rb',
  );
  assert.is.not(extra.configVersion, rendered.configVersion, 'a plugin change is a new version (the shipper restarts)');
  for (const stray of ['fluentd/plugin/notes.md', 'fluentd/plugin/sub/filter_x.rb', 'fluentd/filter_x.rb'])
    assert.not.ok(
      renderBundle(withFile(bundle, stray, 'x'), settings).files.some((f) => f.source === stray),
      `${stray} is not placed`,
    );
});

t('placeholders are substituted; unknown ones are errors', ({ bundle }) => {
  const fluentd = renderBundle(bundle, settings).files.find((f) => f.source === 'fluentd/osquery.conf')!;
  assert.match(fluentd.content, /topic osquery-logs/);
  assert.match(fluentd.content, /project sec-logs/);
  assert.not.match(fluentd.content, /\{\{/);
  assert.throws(
    () => renderBundle(withFile(bundle, 'osquery.flags', '--x={{NOPE}}'), settings),
    /unknown placeholder \{\{NOPE\}\}/,
  );
});

t('files over 1024 characters go through Cloud Storage, pinned by generation', ({ bundle }) => {
  const rendered = renderBundle(bundle, settings);
  for (const f of rendered.files) assert.is(f.viaStorage, f.content.length > INLINE_LIMIT, f.source);
  assert.ok(
    rendered.files.some((f) => f.viaStorage) && rendered.files.some((f) => !f.viaStorage),
    'the default bundle has both kinds',
  );
  const generations = Object.fromEntries(
    rendered.files.filter((f) => f.viaStorage).map((f, i) => [f.source, String(1000 + i)]),
  );
  const policy = policyConfigOf(rendered, 'cfg-bucket', generations);
  for (const f of policy.files) {
    const source = rendered.files.find((r) => r.source === f.source)!;
    if (source.viaStorage)
      assert.equal(f.gcs, {
        bucket: 'cfg-bucket',
        object: objectNameOf(rendered.configVersion, f.source),
        generation: generations[f.source],
      });
    else assert.is(f.content, source.content);
  }
  assert.throws(() => policyConfigOf(rendered, 'cfg-bucket', {}), /publish it first/);
});

t(
  'the assignment: repository -> package -> osquery files -> osqueryd -> identity -> ' +
    'shipper files -> shipper, per OS family',
  ({ bundle }) => {
    const rendered = renderBundle(bundle, settings);
    const generations = Object.fromEntries(rendered.files.map((f) => [f.source, '7']));
    const a = buildOsqueryAssignment(policySettings, policyConfigOf(rendered, 'b', generations));
    const policy = a.osPolicies![0]!;
    assert.is(configVersionOfPolicy(policy.id!), rendered.configVersion, 'the policy id names the version');
    for (const group of policy.resourceGroups!) {
      const ids = group.resources!.map((r) => r.id!);
      assert.equal(ids.slice(0, 2), ['osquery-repository', 'install-osquery']);
      const at = (id: string) => ids.indexOf(id);
      assert.ok(at('file-osquery-flags') > at('install-osquery'));
      assert.ok(at('file-osquery-conf') < at('osqueryd-running'));
      assert.ok(at('file-packs-users-conf') < at('osqueryd-running'));
      assert.ok(at('osqueryd-running') < at('host-identity'));
      assert.ok(at('host-identity') < at('install-rsyslog'), 'rsyslog (Debian 12 images lack it) before its rule');
      assert.ok(at('install-rsyslog') < at('file-rsyslog-60-osquery-conf'));
      assert.ok(at('file-fluentd-osquery-conf') < at('shipper-running'));
      assert.ok(at('host-identity') < at('file-fluentd-plugin-filter-osquery-shipped-rb'));
      assert.ok(at('file-fluentd-plugin-filter-osquery-shipped-rb') < at('shipper-running'), 'the plugin first');
      assert.ok(at('shipper-running') < at('rsyslog-reads-pipe'));
      assert.is(ids.at(-1), 'rsyslog-reads-pipe', 'rsyslog restarts last, onto the pipe osqueryd created');
      assert.is(new Set(ids).size, ids.length, 'resource ids are unique');
      for (const r of group.resources!) {
        for (const script of [r.exec?.validate?.script, r.exec?.enforce?.script])
          assert.ok((script ?? '').length <= INLINE_LIMIT, `${r.id} script fits inline`);
        if (r.file) assert.ok((r.file.content ?? '').length <= INLINE_LIMIT, `${r.id} content fits inline`);
      }
      const osqueryd = group.resources!.find((r) => r.id === 'osqueryd-running')!;
      assert.match(
        String(osqueryd.exec!.validate!.script),
        new RegExp(rendered.configVersion),
        'restarts when the version changes',
      );
    }
    assert.is(
      buildOsqueryAssignment(policySettings).osPolicies![0]!.id,
      'osquery',
      'without a configuration: the base policy',
    );
  },
);

t.run();
