// The status page in a real browser: headless Chromium (Debian's chromium package) loads the page that
// the Functions Framework serves on the local stack, as Cloud Functions would serve it.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clearFirestore, startStack, type Stack } from './helpers/stack.js';
import { STATUS_FLEET_ENV, buildStatusFleet, type Fleet } from './helpers/status-fleet.js';
import { launchChromium, requireChromium, type Browser, type Page } from './helpers/chromium.js';
import { A, B, Z1, Z2, at } from './helpers/status-fleet.js';
import { publish } from '../shared/usecases/publish.js';
import { runAuditShard } from '../shared/usecases/audit.js';
import { createRun } from '../shared/adapters/audits.js';
import { parsePlan } from '../shared/domain/rollout-plan.js';
import { planText } from './helpers/rollout-plan.js';
import { DEFAULT_BUNDLE_DIR } from '../shared/osquery/bundle.js';

const OUTPUT = path.resolve(import.meta.dirname, 'output'); // git-ignored
const t = suite<{ stack: Stack; fleet: Fleet; browser: Browser; page: Page }>('fleet status page in Chromium');

t.before(async (ctx) => {
  // Before anything starts: a missing browser is named at once (uvu does not print a hook's error itself).
  try {
    requireChromium();
  } catch (error) {
    console.error(`\n  ${(error as Error).message}\n`);
    throw error;
  }
  ctx.stack = await startStack(STATUS_FLEET_ENV);
  try {
    await clearFirestore();
    ctx.fleet = await buildStatusFleet(ctx.stack);
    ctx.browser = await launchChromium();
    ctx.page = await ctx.browser.newPage();
  } catch (error) {
    // uvu does not print a hook's error (its `after` still closes what started).
    console.error(`\n  setting up the page test failed: ${(error as Error).stack}\n`);
    throw error;
  }
});
t.after(async (ctx) => {
  await ctx.browser?.close();
  await ctx.stack?.close();
});

t('the page shows the coverage figure, its chart and a silent host, with no console error', async (ctx) => {
  const { page, stack, fleet } = ctx;
  await page.goto(stack.functions.urls.fleetStatus);
  assert.is(await page.evaluate<string>(`document.title`), 'osquery fleet status');
  assert.is(await page.evaluate<string>(`document.querySelector('#coverage').textContent.trim()`), '50.0%');
  // The stylesheet applied: the Content-Security-Policy's hash matches what the browser received.
  assert.is(await page.evaluate<string>(`getComputedStyle(document.querySelector('#coverage')).fontSize`), '40px');
  const points = await page.evaluate<string>(
    `document.querySelector('#coverage-chart polyline').getAttribute('points')`,
  );
  assert.is(points.split(' ').length, 2, 'one vertex per audit run');
  const silent = await page.evaluate<{ name: string; reason: string; id: string } | null>(
    `(() => {
    const row = document.querySelector('#needing-action tr[data-state="silent"]');
    return row && { name: row.querySelector('.host').textContent, ` +
      `reason: row.cells[4].textContent, id: row.dataset.instanceId };
  })()`,
  );
  assert.equal(silent, { name: 'quiet', reason: 'never-reported', id: fleet.ids.quiet });
  const alerts = await page.evaluate<string[]>(
    `[...document.querySelectorAll('#alerts tr[data-kind]')].map((r) => r.dataset.kind).sort()`,
  );
  assert.equal(alerts, ['host.blocked', 'host.noncompliant', 'host.silent', 'query.denylisted', 'query.expensive']);
  const exempt = await page.evaluate<string[]>(
    `[...document.querySelectorAll('#exempt tr[data-state] .host')].map((c) => c.textContent)`,
  );
  assert.equal(exempt, ['gke-pool-1', 'bastion', 'win-1']);
  assert.match(
    await page.evaluate<string>(`document.querySelector('#rollout-stages').textContent`),
    /No staged rollout/,
    'the first version went everywhere at once',
  );
  // Where osqueryd costs most: the hosts by CPU from their heartbeats, the queries by cost from the snapshots.
  const byCpu = await page.evaluate<string[][]>(
    `[...document.querySelectorAll('#osqueryd-cpu tr[data-instance-id]')]` +
      `.map((r) => [r.querySelector('.host').textContent.trim(), r.cells[2].textContent])`,
  );
  assert.equal(byCpu, [
    ['r1', '14.0'],
    ['r2', '2.0'],
    ['r3', '0.5'],
  ]);
  const queries = await page.evaluate<string[][]>(
    `[...document.querySelectorAll('#expensive-queries tr[data-query]')]` +
      `.map((r) => [r.dataset.query, r.dataset.class, r.cells[7].textContent])`,
  );
  assert.equal(queries, [
    ['pack_fim_file_hashes', 'considerable', '-'],
    ['pack_network_listening_ports', 'minimal', '-'],
    ['pack_users_logged_in', 'minimal', '1'],
  ]);
  // Audit coverage: two projects fit one tick (every tick), each project's audit age, oldest first.
  const audit = await page.evaluate<{ cycle: string; rows: string[][]; shown: boolean }>(
    `(() => {
    const s = document.querySelector('#audit-coverage');
    return { cycle: s.querySelector('#audit-cycle').textContent.trim(), shown: s.offsetHeight > 0, ` +
      `rows: [...s.querySelectorAll('#audit-ages tr')].slice(1).map((r) => [r.cells[0].textContent, ` +
      `r.cells[2].textContent]) };
  })()`,
  );
  assert.ok(audit.shown, 'the section is rendered');
  assert.is(audit.cycle, 'Every project is audited each tick (every 15 min).');
  assert.equal(
    audit.rows,
    [A, B].sort().map((p) => [p, at(45).toISOString()]),
  );
  mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot(path.join(OUTPUT, 'status-page.png'));
  assert.equal(page.errors, [], 'no console errors, exceptions, failed loads or policy violations');
});

t('the filter form narrows the list on the server; the evidence link serves the CSV', async ({ page, stack }) => {
  await page.goto(stack.functions.urls.fleetStatus);
  // As a person would: pick a state and submit the form (a GET with the filters in the query string).
  const loaded = page.evaluate<void>(`new Promise((resolve) => {
    document.querySelector('select[name=state]').value = 'blocked';
    document.querySelector('form.filters').submit();
    resolve();
  })`);
  await loaded;
  for (let i = 0; i < 50 && !(await page.evaluate<string>('location.search')).includes('state='); i++)
    await new Promise((r) => setTimeout(r, 100));
  await page.evaluate<boolean>(
    `new Promise((r) => document.readyState === 'complete' ? r(true) : addEventListener('load', () => r(true)))`,
  );
  assert.match(await page.evaluate<string>('location.search'), /state=blocked/);
  const rows = await page.evaluate<string[]>(
    `[...document.querySelectorAll('#needing-action tr[data-state]')]` +
      `.map((r) => r.dataset.state + ' ' + r.querySelector('.host').textContent)`,
  );
  assert.equal(rows, ['blocked agentless']);
  assert.is(
    await page.evaluate<string>(`document.querySelector('select[name=state]').value`),
    'blocked',
    'the form keeps the filter',
  );
  const href = await page.evaluate<string>(`document.querySelector('#evidence-link').href`);
  const csv = await (await fetch(href)).text();
  assert.is(csv.trimEnd().split('\r\n').length, 11, 'a header and 10 VMs');
  assert.equal(page.errors, []);
});

t(
  'the rollout section: each stage with its zones and hosts, the gates against their thresholds, the next action',
  async ({ page, stack }) => {
    // A second version, staged: the canary is stat-a's first zone; the audit run's close evaluates it.
    const plan = parsePlan(
      planText([
        { name: 'canary', select: { zones: [`${A}/${Z1}`] }, bakeMinutes: 30 },
        { name: 'all', select: { percent: 100 }, bakeMinutes: 30 },
      ]),
      'page test plan',
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
    cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
    const pack = JSON.parse(readFileSync(path.join(dir, 'packs/users.conf'), 'utf8'));
    pack.queries.sudoers.interval = 7200;
    writeFileSync(path.join(dir, 'packs/users.conf'), JSON.stringify(pack));
    const report = await publish({ projects: [A, B], plan, bundleDir: dir, now: at(46) });
    assert.is(report.rollout.mode, 'staged');
    assert.equal([...report.rollout.stages[1]!.zones].sort(), [`${B}/${Z1}`, `${A}/${Z2}`].sort());
    await stack.control('POST', '/agents/run', { at: at(50).toISOString() });
    await createRun('run-3', [A, B], at(50));
    for (const project of [A, B]) await runAuditShard({ runId: 'run-3', project }, at(50));

    await page.goto(stack.functions.urls.fleetStatus);
    const section = await page.evaluate<{
      version: string;
      status: string;
      stages: string[][];
      gates: string[][];
      next: string;
    }>(
      `(() => {
    const s = document.querySelector('#rollout-stages');
    const cells = (r) => [...r.cells].map((c) => c.textContent.trim().replace(/\\s+/g, ' '));
    return {
      version: s.dataset.version,
      status: s.dataset.status,
      stages: [...s.querySelectorAll('tr[data-stage]')]` +
        `.map((r) => [r.dataset.stage, r.dataset.state, ...cells(r).slice(2, 6)]),
      gates: [...s.querySelectorAll('tr[data-gate]')]` +
        `.map((r) => [r.dataset.gate, r.dataset.passed, ...cells(r).slice(1, 3)]),
      next: s.querySelector('#rollout-next').textContent.trim().replace(/\\s+/g, ' '),
    };
  })()`,
    );
    assert.is(section.version, report.configVersion);
    assert.is(section.status, 'running');
    // stat-a/us-east1-b: r1, r2, quiet on the target; the other zones wait on the baseline (failing, r3; the
    // stopped VM and the exempt ones are not targeted).
    assert.equal(section.stages, [
      ['canary', 'current', `${A}/${Z1}`, '3', '0', '3'],
      ['all', 'waiting', report.rollout.stages[1]!.zones.join(', '), '0', '2', '2'],
    ]);
    assert.equal(section.gates, [
      ['noncompliant', 'true', '0%', '5%'],
      ['silent', 'true', '0%', '5%'],
      ['incidents', 'true', '0%', '5%'],
      ['osquerydCpu', 'true', '0%', '5%'],
      ['osquerydMemory', 'true', '0%', '5%'],
      ['denylistedQueries', 'true', '0 queries', '0 queries'],
      ['logVolume', 'true', '0% over baseline', '50% over baseline'],
    ]);
    assert.match(section.next, /^Next: hold \(stage canary bakes 26 min more\)$/);
    assert.equal(page.errors, []);
  },
);

t.run();
