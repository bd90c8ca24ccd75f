// Publishing a bundle: Cloud Storage, rollouts/{version}, every zone's assignment; agents apply it.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { type Stack, stackSuite } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { publish } from '../shared/usecases/publish.js';
import { DEFAULT_BUNDLE_DIR, loadBundle } from '../shared/osquery/bundle.js';
import { renderBundle } from '../shared/osquery/render.js';
import { currentVersion, getRollout } from '../shared/adapters/rollouts.js';
import { getHost } from '../shared/adapters/hosts.js';
import { configVersionOfPolicy } from '../shared/domain/policy.js';
import { loadSchema, bundledSchemaPath } from '../shared/osquery/schema.js';
import { PINNED_OSQUERY_VERSION } from '../shared/osquery/version.js';
import { usageSince, usageSnapshot } from '../shared/metrics.js';
import type { SimAssignment, SimVm } from '../infra/local/simulator/world.js';

const SCHEMA = bundledSchemaPath(PINNED_OSQUERY_VERSION)!;
const t = stackSuite(
  'publish',
  {
    TARGET_PROJECTS: 'pa,pb',
    CONFIG_BUCKET: 'osquery-config-test',
    LOG_TOPIC: 'osquery-logs',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
  },
  async (stack) => {
    for (const id of ['pa', 'pb'])
      await stack.control('POST', '/projects', { id, metadata: { 'enable-osconfig': 'TRUE' } });
    const w = stack.sim.world;
    w.addVm({ project: 'pa', zone: 'us-central1-a', name: 'a1', os: 'debian-12' });
    w.addVm({ project: 'pa', zone: 'us-central1-b', name: 'b1', os: 'rhel-9' });
    w.addVm({ project: 'pa', zone: 'us-central1-c', name: 'gke', os: 'cos', labels: { 'goog-gke-node': '' } });
    w.addVm({ project: 'pb', zone: 'europe-west1-b', name: 'c1', os: 'ubuntu-2204' });
  },
);

const assignments = (stack: Stack) => [...stack.sim.world.assignments.values()] as SimAssignment[];
const policyId = (a: SimAssignment) => (a.body.osPolicies as Array<{ id: string }>)[0]!.id;
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

function bundleCopy(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  return dir;
}

t(
  'first publish: files uploaded, version recorded and current, one assignment per zone with in-scope VMs',
  async ({ stack }) => {
    const report = await publish({ schema: await loadSchema(SCHEMA) });
    const rendered = renderBundle(await loadBundle(), {
      logTopic: 'osquery-logs',
      logTopicProject: process.env.GOOGLE_CLOUD_PROJECT!,
    });
    assert.is(report.configVersion, rendered.configVersion);
    assert.is(report.uploaded, rendered.files.filter((f) => f.viaStorage).length);
    assert.equal(report.zones.created.sort(), ['pa/us-central1-a', 'pa/us-central1-b', 'pb/europe-west1-b']);
    assert.equal(report.failedProjects, {});
    assert.is(await currentVersion(), report.configVersion);
    const rollout = await getRollout(report.configVersion);
    assert.equal(Object.keys(rollout!.zones).sort(), ['pa/us-central1-a', 'pa/us-central1-b', 'pb/europe-west1-b']);
    for (const a of assignments(stack)) assert.is(configVersionOfPolicy(policyId(a)), report.configVersion);
    // Every stored object is the rendered file, byte for byte.
    for (const f of rollout!.files.filter((file) => file.object)) {
      const stored = stack.sim.world.objects.get(`osquery-config-test/${f.object}`)!.at(-1)!;
      assert.is(stored.generation, f.generation);
      assert.is(sha(stored.data), f.sha256);
    }
  },
);

t('the agents place every file exactly as rendered and restart for the version', async ({ stack }) => {
  const report = await publish();
  await stack.control('POST', '/agents/run');
  const rendered = renderBundle(await loadBundle(), {
    logTopic: 'osquery-logs',
    logTopicProject: process.env.GOOGLE_CLOUD_PROJECT!,
  });
  const vms = [...stack.sim.world.vms.values()] as SimVm[];
  for (const vm of vms.filter((v) => v.os !== 'cos')) {
    for (const f of rendered.files) assert.is(vm.files[f.vmPath], f.sha256, `${vm.name} ${f.vmPath}`);
    assert.is(vm.applied['osqueryd-running'], `osquery-${report.configVersion}`);
    assert.is(vm.installed.osquery, '5.23.1-1.linux', 'pinned: the packaging release suffix');
  }
  const reports = [...stack.sim.world.reports.values()] as Array<{
    osPolicyCompliances: Array<{ complianceState: string; osPolicyId: string }>;
  }>;
  assert.is(reports.length, 3);
  for (const r of reports)
    assert.equal(
      r.osPolicyCompliances.map((c) => [c.osPolicyId, c.complianceState]),
      [[`osquery-${report.configVersion}`, 'COMPLIANT']],
    );
});

t('publishing the same bundle twice changes nothing', async ({ stack }) => {
  await publish();
  const revisions = assignments(stack).map((a) => a.revisionId);
  const objects = stack.sim.world.objects.size;
  const before = usageSnapshot();
  const again = await publish();
  const spent = usageSince(before);
  assert.equal(
    [again.uploaded, again.recorded, again.zones.created.length, again.zones.updated.length, again.osConfigWrites],
    [0, false, 0, 0, 0],
  );
  assert.is(again.zones.unchanged.length, 3);
  assert.is(spent.firestoreWrites, 0);
  assert.is(
    spent.apiCalls['storage.objects.insert'] ?? 0,
    again.reused,
    'each upload attempt was refused by ifGenerationMatch=0',
  );
  assert.equal(
    assignments(stack).map((a) => a.revisionId),
    revisions,
  );
  assert.is(stack.sim.world.objects.size, objects);
});

t(
  "a changed bundle published all at once: new version, each zone updated once, the old version's objects kept",
  async ({ stack }) => {
    const first = await publish();
    const dir = bundleCopy();
    const packPath = path.join(dir, 'packs/users.conf');
    const pack = JSON.parse(readFileSync(packPath, 'utf8'));
    pack.queries.sudoers.interval = 7200;
    writeFileSync(packPath, JSON.stringify(pack, null, 2));
    const second = await publish({ bundleDir: dir, schema: await loadSchema(SCHEMA), allAtOnce: true });
    assert.is.not(second.configVersion, first.configVersion);
    assert.is(second.rollout.mode, 'all-at-once');
    assert.match(second.rollout.note ?? '', /no canary, no gates, no automatic rollback/);
    assert.is(second.zones.updated.length, 3);
    assert.is(second.osConfigWrites, 3);
    assert.is(await currentVersion(), second.configVersion);
    for (const a of assignments(stack)) assert.is(configVersionOfPolicy(policyId(a)), second.configVersion);
    const firstRollout = await getRollout(first.configVersion);
    for (const f of firstRollout!.files.filter((file) => file.object))
      assert.ok(stack.sim.world.objects.get(`osquery-config-test/${f.object}`), 'old objects stay for rollback');
  },
);

t('a bundle with lint errors is refused before anything is uploaded', async ({ stack }) => {
  const dir = bundleCopy();
  writeFileSync(path.join(dir, 'osquery.flags'), '--watchdog_utilization_limit=130\n');
  try {
    await publish({ bundleDir: dir, schema: await loadSchema(SCHEMA) });
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /error broken osquery.flags: watchdog_utilization_limit 130 is above 100/);
  }
  assert.is(stack.sim.world.objects.size, 0);
  assert.is(await currentVersion(), null);
});

t(
  "publish lints with the thresholds of the bundle's lint-policy.json, never with the policy off",
  async ({ stack }) => {
    const dir = bundleCopy();
    const packPath = path.join(dir, 'packs/users.conf');
    const pack = JSON.parse(readFileSync(packPath, 'utf8'));
    pack.queries.sudoers.interval = 240;
    writeFileSync(packPath, JSON.stringify(pack, null, 2));
    const schema = await loadSchema(SCHEMA);
    try {
      await publish({ bundleDir: dir, schema });
      assert.unreachable();
    } catch (error) {
      assert.match((error as Error).message, /error policy packs\/users.conf pack=users query=sudoers: interval 240 s/);
    }
    assert.is(stack.sim.world.objects.size, 0);
    writeFileSync(path.join(dir, 'lint-policy.json'), JSON.stringify({ policy: 'off' }));
    try {
      await publish({ bundleDir: dir, schema });
      assert.unreachable('a policy file cannot turn the performance policy off for the fleet');
    } catch (error) {
      assert.match((error as Error).message, /error policy packs\/users.conf pack=users query=sudoers: interval 240 s/);
    }
    writeFileSync(path.join(dir, 'lint-policy.json'), JSON.stringify({ minIntervalSeconds: 240 }));
    const report = await publish({ bundleDir: dir, schema });
    assert.is(await currentVersion(), report.configVersion);
    const rollout = await getRollout(report.configVersion);
    assert.not.ok(
      rollout!.files.some((f) => f.source === 'lint-policy.json'),
      'the policy file stays in the repository, never on a VM',
    );
  },
);

t('a project that answers 403 fails alone', async ({ stack }) => {
  await stack.control('POST', '/faults', { deniedProjects: ['pb'] });
  const report = await publish();
  assert.equal(Object.keys(report.failedProjects), ['pb']);
  assert.equal(report.zones.created.sort(), ['pa/us-central1-a', 'pa/us-central1-b']);
});

t("vmLifecycle creates a new zone's assignment at the current version", async ({ stack }) => {
  const report = await publish();
  const vm = await createVm(stack, { project: 'pa', zone: 'asia-east1-a', name: 'new-zone-vm', os: 'debian-12' });
  assert.is((await getHost(vm.id))?.state, 'pending');
  const created = assignments(stack).find((a) => a.zone === 'asia-east1-a')!;
  assert.is(configVersionOfPolicy(policyId(created)), report.configVersion);
});

t.run();
