// osquery itself through the rollout, on the local stack (docs/osquery-upgrade.md): the bundle's
// osquery.version pins the package; a good release walks every stage and every VM ends up running it
// (osqueryd reporting the new version); a release whose osqueryd crashes at start is halted in the canary
// and the canary zone is back on the previous release: the package downgraded, osqueryd reporting again.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { renderSettings } from '../shared/config.js';
import { publish } from '../shared/usecases/publish.js';
import { getHost } from '../shared/adapters/hosts.js';
import { DEFAULT_BUNDLE_DIR, loadBundle } from '../shared/osquery/bundle.js';
import { renderBundle } from '../shared/osquery/render.js';
import { OSQUERY_VERSION_FILE } from '../shared/osquery/version.js';
import {
  CANARY,
  P,
  PLAN,
  Timeline,
  baselineThenTarget,
  record,
  rolloutSuite,
  zoneVersions,
} from './helpers/rollout.js';

const t = rolloutSuite('osquery upgrade through the rollout');

/** The bundle with another osquery release pinned (and nothing else changed). */
function releaseBundle(version: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  writeFileSync(path.join(dir, OSQUERY_VERSION_FILE), `${version}\n`);
  return dir;
}

const canaryVms = (timeline: Timeline) =>
  [...timeline.stack.sim.world.vms.values()].filter((vm) => `${vm.project}/${vm.zone}` === CANARY);

t('a good osquery release walks every stage; every VM ends up running it', async ({ stack }) => {
  stack.sim.world.releases.set('5.24.0', {});
  let target = '';
  const timeline = new Timeline(stack, () => target);
  await baselineThenTarget(timeline);
  for (const vm of stack.sim.world.vms.values()) assert.is(vm.installed.osquery, '5.23.1-1.linux', vm.name);
  const report = await publish({ projects: [P], plan: PLAN, bundleDir: releaseBundle('5.24.0'), now: timeline.at() });
  target = report.configVersion;
  assert.is(report.rollout.mode, 'staged', 'a new osquery release is a new version: staged like any other');
  for (let i = 0; i < 30 && (await record(target)).status === 'running'; i++) await timeline.run();
  assert.is((await record(target)).status, 'completed');
  await timeline.run();
  for (const vm of stack.sim.world.vms.values()) {
    assert.is(vm.installed.osquery, '5.24.0-1.linux', vm.name);
    assert.is(vm.osqueryd.worker?.osqueryVersion, '5.24.0', `${vm.name}: osqueryd runs the new release`);
  }
});

t(
  'a crashing osquery release is halted in the canary; the canary is downgraded back and reports',
  async ({ stack }) => {
    stack.sim.world.releases.set('5.24.0', { crashesAtStart: true });
    let target = '';
    const timeline = new Timeline(stack, () => target);
    const baseline = await baselineThenTarget(timeline);
    const dir = releaseBundle('5.24.0');
    target = renderBundle(await loadBundle(dir), renderSettings()).configVersion;
    await publish({ projects: [P], plan: PLAN, bundleDir: dir, now: timeline.at() });
    let sawCrash = false;
    for (let i = 0; i < 12 && (await record(target)).status === 'running'; i++) {
      await timeline.run();
      sawCrash ||= canaryVms(timeline).every((vm) => vm.installed.osquery === '5.24.0-1.linux' && !vm.osqueryd.worker);
    }
    assert.ok(sawCrash, 'the canary VMs installed the release and osqueryd did not stay up');
    const r = await record(target);
    assert.is(r.status, 'halted', `halted (${r.evaluation?.next.reason})`);
    assert.is(r.halt!.stage, 'canary');
    assert.equal([...timeline.exposed.keys()], [CANARY], 'no zone outside the canary ever had the release');
    for (const [zone, version] of zoneVersions(stack)) assert.is(version, baseline, `${zone} back on the baseline`);
    // The agents apply the baseline's policy: the package is downgraded (apt --allow-downgrades), osqueryd reports.
    await timeline.run();
    await timeline.run();
    for (const vm of canaryVms(timeline)) {
      assert.is(vm.installed.osquery, '5.23.1-1.linux', `${vm.name}: downgraded`);
      assert.is(vm.osqueryd.worker?.osqueryVersion, '5.23.1', `${vm.name}: osqueryd runs the previous release`);
      const host = await getHost(vm.id);
      assert.is(host?.state, 'reporting', `${vm.name} reports again`);
      assert.ok(
        host!.lastLogAt!.getTime() >= Math.floor(timeline.at().getTime() / 1000) * 1000,
        `${vm.name}: fresh line`,
      );
    }
  },
);

t.run();
