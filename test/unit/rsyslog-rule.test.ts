// The rsyslog rule the bundle ships (/etc/rsyslog.d/60-osquery.conf), checked by rsyslog itself:
// `rsyslogd -N1` (Debian's rsyslog package) validates a minimal configuration that includes it, as the VM's
// /etc/rsyslog.conf would. Without rsyslogd this test fails and says which package to install.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadBundle } from '../../shared/osquery/bundle.js';
import { renderBundle } from '../../shared/osquery/render.js';

const RSYSLOGD = process.env.RSYSLOGD_PATH ?? '/usr/sbin/rsyslogd';
const t = suite<{ dir: string; rule: string }>('rsyslog rule (rsyslogd -N1)');

t.before(async (ctx) => {
  if (!existsSync(RSYSLOGD)) {
    const message =
      `${RSYSLOGD} not found: the rsyslog rule test needs Debian's rsyslog package ` +
      '(`apt-get install -y rsyslog` as root, or with sudo; `./dev test` and .ci/run install it when they can)';
    // uvu does not print a hook's error itself.
    console.error(`\n  ${message}\n`);
    throw new Error(message);
  }
  ctx.dir = mkdtempSync(path.join(tmpdir(), 'rsyslog-'));
  const rendered = renderBundle(await loadBundle(), { logTopic: 'l', logTopicProject: 'p' });
  const rule = rendered.files.find((f) => f.vmPath === '/etc/rsyslog.d/60-osquery.conf');
  assert.ok(rule, 'the bundle places the rule');
  ctx.rule = rule!.content;
});
t.after((ctx) => {
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

/** rsyslogd's config check of a main configuration that includes `rule` (level 1: everything but starting). */
function validate(dir: string, rule: string, name: string) {
  const rulePath = path.join(dir, `${name}-60-osquery.conf`);
  const main = path.join(dir, `${name}-rsyslog.conf`);
  writeFileSync(rulePath, rule);
  writeFileSync(main, `global(workDirectory="${dir}")\ninclude(file="${rulePath}")\n`);
  const run = spawnSync(RSYSLOGD, ['-N1', '-f', main], { encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

t('rsyslogd accepts the shipped rule', ({ dir, rule }) => {
  const run = validate(dir, rule, 'shipped');
  assert.is(run.status, 0, run.output);
  assert.match(run.output, /End of config validation run/);
  assert.not.match(run.output, /error/i);
});

t('the check rejects a rule that would not load (it does validate)', ({ dir, rule }) => {
  const broken = rule.replace('template="OsqueryCsvFormat"', 'template="NoSuchTemplate"');
  assert.is.not(broken, rule, 'the rule names its template');
  const run = validate(dir, broken, 'broken');
  assert.is.not(run.status, 0);
  assert.match(run.output, /Could not find template/);
});

t.run();
