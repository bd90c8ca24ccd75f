// osq-orch as a user runs it: a subprocess, its output and exit code.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_BUNDLE_DIR } from '../shared/osquery/bundle.js';
import { bundledSchemaPath } from '../shared/osquery/schema.js';
import { PINNED_OSQUERY_VERSION } from '../shared/osquery/version.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SCHEMA = bundledSchemaPath(PINNED_OSQUERY_VERSION)!;
const t = suite('osq-orch CLI');

/** Async, so a simulator in this process keeps answering while the CLI runs. */
function runAsync(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/osq-orch.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/osq-orch.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

t('lint passes the default bundle (exit 0)', () => {
  const r = run(['lint', '--schema', SCHEMA]);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /queries, [\d.]+ executions per host per hour, 0 errors/);
});

t('lint fails a broken bundle (exit 1), one line per finding with file, pack, query and reason', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bad-bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'packs/users.conf'),
    JSON.stringify({ queries: { broken: { query: 'SELECT nope FROM users', interval: 3600 } } }),
  );
  const r = run(['lint', dir, '--schema', SCHEMA]);
  assert.is(r.status, 1);
  assert.match(r.stdout, /^error broken packs\/users.conf pack=users query=broken: SQLite: no such column: nope$/m);
  assert.match(r.stdout, /1 errors \(1 broken, 0 policy\)/);
});

t('lint --policy off checks a community configuration for breakage alone; lint-policy.json does the same', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'community-'));
  writeFileSync(path.join(dir, 'osquery.flags'), '--disable_audit=false\n--audit_allow_config=true\n');
  writeFileSync(
    path.join(dir, 'osquery.conf'),
    JSON.stringify({
      schedule: {
        process_events: { query: 'SELECT pid, path FROM process_events', interval: 10 },
        socket_events: { query: 'SELECT pid FROM socket_events', interval: 3600 },
      },
    }),
  );
  const on = run(['lint', dir, '--schema', SCHEMA]);
  assert.is(on.status, 1);
  assert.match(on.stdout, /^error policy osquery.conf query=process_events: interval 10 s is shorter/m);
  assert.match(on.stdout, /^error policy osquery.conf: projected 361 query executions/m);
  assert.match(on.stdout, /^error broken osquery.conf query=socket_events: .*--audit_allow_sockets=true/m);
  const off = run(['lint', dir, '--schema', SCHEMA, '--policy', 'off']);
  assert.is(off.status, 1, 'socket_events is still broken');
  assert.not.match(off.stdout, /policy osquery/);
  assert.match(off.stdout, /1 errors \(1 broken, 0 policy\), 0 warnings; policy off/);
  writeFileSync(
    path.join(dir, 'osquery.flags'),
    '--disable_audit=false\n--audit_allow_config=true\n--audit_allow_sockets\n',
  );
  assert.is(run(['lint', dir, '--schema', SCHEMA, '--policy', 'off']).status, 0);
  writeFileSync(path.join(dir, 'lint-policy.json'), JSON.stringify({ policy: 'off' }));
  const viaFile = run(['lint', dir, '--schema', SCHEMA]);
  assert.is(viaFile.status, 0, viaFile.stdout);
  assert.match(viaFile.stdout, /0 errors .*; policy off/);
  assert.is(run(['lint', dir, '--schema', SCHEMA, '--policy', 'on']).status, 1, '--policy wins over the file');
  const bad = run(['lint', dir, '--schema', SCHEMA, '--policy', 'of']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--policy must be one of on, warn, off/);
});

t("lint without --schema uses the pinned version's schema kept in the repository (no network needed)", () => {
  const r = run(['lint'], { OSQUERY_SCHEMA: '', OSQUERY_VERSION: '' });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /0 errors/);
});

t('lint with a schema that cannot be read exits 2 with the reason', () => {
  const r = run(['lint', '--schema', '/nonexistent/schema.json']);
  assert.is(r.status, 2);
  assert.match(r.stderr, /ENOENT/);
});

t("render prints the zone's assignment as JSON", () => {
  const r = run(['render', '--zone', 'us-east1-b', '--project', 'acme'], { CONFIG_BUCKET: 'cfg', LOG_TOPIC: 'logs' });
  assert.is(r.status, 0, r.stderr);
  const assignment = JSON.parse(r.stdout);
  assert.is(assignment.name, 'projects/acme/locations/us-east1-b/osPolicyAssignments/osquery');
  assert.match(assignment.osPolicies[0].id, /^osquery-v[0-9a-f]{12}$/);
  assert.match(r.stderr, /is not published/);
});

t('audit: progress, a summary table, and --dry-run writes nothing', async () => {
  const { startSimulator } = await import('../infra/local/simulator/server.js');
  const { clearFirestore } = await import('./helpers/stack.js');
  const { clients } = await import('../shared/clients.js');
  await clearFirestore();
  const sim = await startSimulator();
  try {
    sim.world.setProjectMetadata('cli-p', { 'enable-osconfig': 'TRUE' });
    sim.world.addVm({ project: 'cli-p', zone: 'z-a', name: 'ok', os: 'debian-12' });
    sim.world.addVm({ project: 'cli-p', zone: 'z-a', name: 'win', os: 'windows-2022' });
    sim.world.addVm({ project: 'cli-p', zone: 'z-a', name: 'nosa', os: 'debian-12', serviceAccount: null });
    const env = { GOOGLE_API_ENDPOINT: sim.url, OSCONFIG_WRITES_PER_MINUTE: '6000' };
    const dry = await runAsync(['audit', '--project', 'cli-p', '--dry-run'], env);
    assert.is(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /cli-p: 3 VMs, 3 host changes \(dry run: not written\)/);
    assert.match(dry.stdout, /^scheduled audit: every project each tick \(1 projects fit the API budget\)$/m);
    assert.match(dry.stdout, /cli-p: 3 VMs.*; audit age never audited$/m);
    assert.match(dry.stdout, /^blocked\s+1$/m);
    assert.match(dry.stdout, /^exempt\s+1$/m);
    assert.match(dry.stdout, /blocked\s+cli-p\/z-a\/nosa\s+no-service-account/);
    assert.is((await clients.firestore().collection('hosts').get()).size, 0, 'dry run wrote nothing');
    assert.is(sim.world.assignments.size, 0, 'dry run fixed nothing');
    const real = await runAsync(['audit', '--project', 'cli-p'], env);
    assert.is(real.status, 0, real.stderr);
    assert.match(real.stderr, /cli-p inventory/);
    assert.is((await clients.firestore().collection('hosts').get()).size, 3);
  } finally {
    await sim.close();
  }
});

t(
  'publish starts a staged rollout and says so; rollout status shows it; ' +
    'pause needs --reason; a bad plan publishes nothing',
  async () => {
    const { startSimulator } = await import('../infra/local/simulator/server.js');
    const { clearFirestore } = await import('./helpers/stack.js');
    const { getRollout, readCurrent } = await import('../shared/adapters/rollouts.js');
    await clearFirestore();
    const sim = await startSimulator();
    try {
      sim.world.setProjectMetadata('cli-r', { 'enable-osconfig': 'TRUE' });
      for (const zone of ['us-east1-b', 'us-east1-c', 'us-east1-d'])
        sim.world.addVm({ project: 'cli-r', zone, name: `vm-${zone}`, os: 'debian-12' });
      const env = {
        GOOGLE_API_ENDPOINT: sim.url,
        OSCONFIG_WRITES_PER_MINUTE: '6000',
        CONFIG_BUCKET: 'cli-cfg',
        USER: 'cli-user',
      };
      const first = await runAsync(['publish', '--project', 'cli-r', '--schema', SCHEMA], env);
      assert.is(first.status, 0, first.stderr);
      assert.match(first.stdout, /all-at-once: nothing was published before/);

      const dir = mkdtempSync(path.join(tmpdir(), 'cli-bundle-'));
      cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
      const pack = JSON.parse(readFileSync(path.join(dir, 'packs/users.conf'), 'utf8'));
      pack.queries.sudoers.interval = 7200;
      writeFileSync(path.join(dir, 'packs/users.conf'), JSON.stringify(pack));
      const badPlan = path.join(dir, 'bad-plan.json');
      writeFileSync(
        badPlan,
        JSON.stringify({ stages: [], gates: {}, observe: { minPercent: 50, minHosts: 0 }, extra: 1 }),
      );
      const refused = await runAsync(['publish', '--project', 'cli-r', '--bundle', dir, '--plan', badPlan], env);
      assert.is(refused.status, 1);
      assert.match(refused.stderr, /is invalid:$/m);
      assert.match(refused.stderr, /^ {2}\(plan\): Unrecognized key: "extra"$/m);
      assert.match(refused.stderr, /stages: stages is empty/);
      assert.match(refused.stderr, /publish refused: fix the rollout plan first \(nothing was published\)/);
      const before = await readCurrent();
      assert.is(before.rollout, null, 'nothing recorded');

      const staged = await runAsync(
        ['publish', '--project', 'cli-r', '--bundle', dir, '--reason', 'new sudoers interval'],
        env,
      );
      assert.is(staged.status, 0, staged.stderr);
      assert.match(staged.stdout, /staged rollout \(baseline v[0-9a-f]{12}\)/);
      assert.match(staged.stdout, /-> 10%\s+1 zones, 1 hosts, bake 30 min/);
      assert.match(staged.stdout, /canary\s+skipped: no in-scope VM carries osquery-ring=canary/);
      const target = (await readCurrent()).rollout!;

      const status = await runAsync(['rollout', 'status'], env);
      assert.is(status.status, 0, status.stderr);
      assert.match(
        status.stdout,
        new RegExp(`rollout of ${target}: running \\(staged\\), baseline ${before.configVersion}`),
      );
      assert.match(status.stdout, /^ {2}10%\s+current\s+1 zones/m);
      assert.match(status.stdout, /^ {2}ok {3}noncompliant\s+0% \(threshold 5%\)$/m);
      assert.match(status.stdout, /^next: hold \(waiting for an audit of cli-r after the stage started\)$/m);
      assert.match(status.stdout, /started\s+10%\s+by cli-user: new sudoers interval/);

      const noReason = await runAsync(['rollout', 'pause'], env);
      assert.is(noReason.status, 2);
      assert.match(noReason.stderr, /say why with --reason/);
      const paused = await runAsync(['rollout', 'pause', '--reason', 'change freeze', '--by', 'alice'], env);
      assert.is(paused.status, 0, paused.stderr);
      assert.match(paused.stdout, /pause: rollout of v[0-9a-f]{12} is paused at stage 10%/);
      const history = (await getRollout(target))!.staged!.history.at(-1)!;
      assert.equal([history.action, history.by, history.reason], ['paused', 'alice', 'change freeze']);
    } finally {
      await sim.close();
    }
  },
);

/** An environment with no Google access: no emulators, no simulator, no credentials, no gcloud config. */
const EMPTY_HOME = mkdtempSync(path.join(tmpdir(), 'no-home-'));
t.after(() => rmSync(EMPTY_HOME, { recursive: true, force: true }));

function offlineEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: EMPTY_HOME, ...extra };
  for (const key of [
    'FIRESTORE_EMULATOR_HOST',
    'PUBSUB_EMULATOR_HOST',
    'GOOGLE_API_ENDPOINT',
    'GOOGLE_CLOUD_PROJECT',
    'GOOGLE_APPLICATION_CREDENTIALS',
    'CLOUDSDK_CONFIG',
    'TARGET_PROJECTS',
  ])
    if (!(key in extra)) delete env[key];
  return env;
}

const runIn = (args: string[], env: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/osq-orch.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env,
  });

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const { freePort } = await import('../infra/local/emulators.js');
  return freePort();
}

t('queries and hosts --top: the tables of osquery cost from Firestore, most expensive first', async () => {
  const { clearFirestore } = await import('./helpers/stack.js');
  const { clients } = await import('../shared/clients.js');
  const { writeQueryStats } = await import('../shared/adapters/telemetry.js');
  const { costBucket, windowOf, queryStatsId } = await import('../shared/domain/telemetry/query-stats.js');
  await clearFirestore();
  const db = clients.firestore();
  const now = Date.now();
  const w = `windows.${windowOf(now)}`;
  // Two hosts' hour of two queries of v-cli, as logHeartbeat writes them; one of another version.
  const stats = (version: string, query: string, ms: number, denylisted = 0) => ({
    id: queryStatsId(version, query),
    configVersion: version,
    query,
    interval: 3600,
    increments: {
      [`${w}.snapshots`]: 2,
      [`${w}.measured`]: 2,
      [`${w}.user.b${costBucket(ms)}`]: 2,
      [`${w}.system.b0`]: 2,
      [`${w}.executions`]: 2,
      [`${w}.outputBytes`]: 4096,
      [`${w}.spanMs`]: 2 * 3_600_000,
      [`${w}.denylisted`]: denylisted,
    },
  });
  await writeQueryStats([
    stats('v-cli', 'pack_cheap', 12),
    stats('v-cli', 'pack_heavy', 4500, 1),
    stats('v-old', 'x', 9),
  ]);
  const host = (id: string, name: string, cpuPercent: number, rssBytes: number) =>
    db
      .collection('hosts')
      .doc(id)
      .set({
        instanceId: id,
        name,
        project: 'p',
        zone: 'z',
        inScope: true,
        configVersion: 'v-cli',
        osqueryd: { cpuPercent, rssBytes, at: new Date(now - 60_000), episode: null },
      });
  await Promise.all([host('1', 'calm', 0.4, 300e6), host('2', 'hot', 23.5, 40e6), host('3', 'mid', 4, 80e6)]);

  const q = await runAsync(['queries', '--version', 'v-cli']);
  assert.is(q.status, 0, q.stderr);
  const rows = q.stdout.split('\n').filter((l) => /^pack_/.test(l));
  assert.equal(
    rows.map((l) => l.split(/\s{2,}/)[0]),
    ['pack_heavy', 'pack_cheap'],
  );
  assert.match(rows[0]!, /\bexcessive$/);
  assert.match(rows[1]!, /\bminimal$/);
  assert.not.match(q.stdout, /^x\b/m, 'another version is not listed');
  // Log volume beside the CPU: nothing shipped counted here, so no figure, and the fleet's total at $0.
  assert.match(q.stdout, /shipped\/host\/day\s+logs \$\/month\s+class$/m);
  assert.match(q.stdout, /^projected monthly log cost of these queries: \$0\.00 /m);

  const cpu = await runAsync(['hosts', '--top', 'cpu', '--n', '2']);
  assert.is(cpu.status, 0, cpu.stderr);
  assert.equal(
    cpu.stdout
      .split('\n')
      .filter((l) => l.startsWith('p/z/'))
      .map((l) => l.split(/\s{2,}/).slice(0, 2)),
    [
      ['p/z/hot', '23.5'],
      ['p/z/mid', '4.0'],
    ],
  );
  const memory = await runAsync(['hosts', '--top', 'memory']);
  assert.match(
    memory.stdout.split('\n').find((l) => l.startsWith('p/z/'))!,
    /^p\/z\/calm/,
  );
  assertOneLineFailure(await runAsync(['hosts', '--top', 'disk']), /--top must be cpu or memory/);
  assertOneLineFailure(await runAsync(['queries', '--hours', '0']), /--hours must be a positive number/);
});

t('render --zone Z --project P works offline: no credentials, no Firestore; says so in one line', () => {
  for (const extra of [{}, { GOOGLE_CLOUD_PROJECT: 'orchestrator' }] as Array<Record<string, string>>) {
    const r = runIn(['render', '--zone', 'Z', '--project', 'P'], offlineEnv(extra));
    assert.is(r.status, 0, r.stderr);
    assert.is(JSON.parse(r.stdout).name, 'projects/P/locations/Z/osPolicyAssignments/osquery');
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
    const generations = r.stderr.split('\n').filter((l) => /published generations/.test(l));
    assert.is(generations.length, 1, r.stderr);
    assert.match(generations[0]!, /no Google credentials/);
  }
});

t(
  'render with the Firestore emulator unreachable: renders at once, one line says why there are no generations',
  async () => {
    const host = `127.0.0.1:${await closedPort()}`;
    const r = runIn(
      ['render', '--zone', 'Z'],
      offlineEnv({ FIRESTORE_EMULATOR_HOST: host, GOOGLE_CLOUD_PROJECT: 'o' }),
    );
    assert.is(r.status, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).osPolicies);
    assert.match(
      r.stderr,
      new RegExp(`no published generations: cannot reach the Firestore emulator at http://${host}/`),
    );
  },
);

/** One line on stderr starting with osq-orch, no stack trace, a non-zero exit. */
function assertOneLineFailure(r: { status: number | null; stdout: string; stderr: string }, reason: RegExp) {
  assert.ok(r.status !== 0 && r.status !== null, `exit ${r.status}: ${r.stdout}${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^osq-orch\b/);
  assert.match(lines[0]!, reason);
}

t('every failure is one line on stderr and a non-zero exit: settings, arguments, unknown command', () => {
  const env = offlineEnv({ GOOGLE_CLOUD_PROJECT: 'o' });
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['frobnicate'], env, /unknown command 'frobnicate'/],
    [['render'], env, /--zone is required/],
    [['render', '--zone', 'z', '--colour', 'red'], env, /Unknown option '--colour'/],
    [['lint', '--budget', 'lots'], env, /--budget must be a positive number/],
    [['lint', 'a', 'b'], env, /one bundle directory/],
    [['audit', '--dry-run'], env, /no project: pass --project or set TARGET_PROJECTS/],
    [['publish'], env, /no project: pass --project or set TARGET_PROJECTS/],
    [
      ['render', '--zone', 'z'],
      { ...env, OSCONFIG_WRITES_PER_MINUTE: '0', HEARTBEAT_WRITE_WINDOW_SECONDS: 'soon' },
      /invalid configuration: .*HEARTBEAT_WRITE_WINDOW_SECONDS.*OSCONFIG_WRITES_PER_MINUTE|OSCONFIG_WRITES_PER_MINUTE.*HEARTBEAT_WRITE_WINDOW_SECONDS/,
    ],
  ];
  for (const [args, e, reason] of cases) assertOneLineFailure(runIn(args, e), reason);
});

t('every failure is one line: no credentials, Firestore or the APIs unreachable', async () => {
  const closed = await closedPort();
  assertOneLineFailure(runIn(['audit', '--project', 'p'], offlineEnv()), /no Google credentials/);
  assertOneLineFailure(
    runIn(['publish', '--project', 'p'], offlineEnv({ GOOGLE_CLOUD_PROJECT: 'o', CONFIG_BUCKET: 'cfg' })),
    /no Google credentials/,
  );
  assertOneLineFailure(
    runIn(['audit', '--project', 'p'], offlineEnv({ FIRESTORE_EMULATOR_HOST: `127.0.0.1:${closed}` })),
    /cannot reach the Firestore emulator/,
  );
  assertOneLineFailure(
    runIn(
      ['publish', '--project', 'p'],
      offlineEnv({
        GOOGLE_CLOUD_PROJECT: 'o',
        CONFIG_BUCKET: 'cfg',
        FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST!,
        GOOGLE_API_ENDPOINT: `http://127.0.0.1:${closed}`,
      }),
    ),
    /cannot reach the API endpoint at http:\/\/127\.0\.0\.1:\d+ \(GOOGLE_API_ENDPOINT\)/,
  );
});

t('npx osq-orch help runs the CLI from the repository, with nothing built', () => {
  const cache = mkdtempSync(path.join(tmpdir(), 'npm-cache-'));
  const r = spawnSync('npx', ['osq-orch', 'help'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: {
      ...process.env,
      // The launcher's `#!/usr/bin/env node` finds this Node; npm's cache stays out of the user's.
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}`,
      npm_config_cache: cache,
      npm_config_offline: 'true',
      npm_config_update_notifier: 'false',
    },
  });
  rmSync(cache, { recursive: true, force: true });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^osq-orch <command> \[options\]/);
  // npm exec links the root package into its cache and runs its bin, which must exist unbuilt.
  const bin = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> })
    .bin['osq-orch']!;
  assert.not.match(bin, /^dist\//, 'the bin is not a build output');
});

t.run();
