// The gates judge hosts by what they really run (docs/osquery-upgrade.md), on the local stack: hosts OS Config
// calls compliant with the target whose own lines (the config_version decoration) still name the baseline
// hold the stage, "not yet running the target" beside the gates; once osqueryd restarts onto it, it promotes.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { publish } from '../shared/usecases/publish.js';
import { DEFAULT_BUNDLE_DIR } from '../shared/osquery/bundle.js';
import { CANARY, P, PLAN, Timeline, baselineThenTarget, record, rolloutSuite } from './helpers/rollout.js';

const t = rolloutSuite('rollout gates: hosts count on the target by their own lines');

/** The bundle with one query's interval changed: another configuration version. */
function variant(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  const pack = path.join(dir, 'packs/users.conf');
  const json = JSON.parse(readFileSync(pack, 'utf8'));
  json.queries.sudoers.interval = 5400;
  writeFileSync(pack, JSON.stringify(json, null, 2));
  return dir;
}

const canaryVms = (timeline: Timeline) =>
  [...timeline.stack.sim.world.vms.values()].filter((vm) => `${vm.project}/${vm.zone}` === CANARY);

t('the gates do not promote while canary hosts OS Config calls compliant still run the baseline', async ({ stack }) => {
  let target = '';
  const timeline = new Timeline(stack, () => target);
  await baselineThenTarget(timeline);
  // osqueryd on the canary VMs is not restarted: OS Config applies the target, osqueryd keeps the baseline.
  for (const vm of canaryVms(timeline)) vm.faults.osquerydNotRestarted = true;
  const report = await publish({
    projects: [P],
    plan: PLAN,
    bundleDir: variant(),
    now: timeline.at(),
  });
  target = report.configVersion;
  for (let i = 0; i < 8; i++) await timeline.run();
  const held = await record(target);
  assert.is(held.status, 'running');
  assert.is(held.stage, 0, 'never promoted past the canary, however long it baked');
  assert.is(held.evaluation!.stages[0]!.onTarget, 2, 'OS Config calls both canary hosts on the target');
  assert.is(held.evaluation!.stages[0]!.notRunning, 2);
  assert.match(held.evaluation!.next.reason, /2 not yet running the target by their own lines/);
  // osqueryd restarts at last: its lines name the target, the canary is promoted.
  for (const vm of canaryVms(timeline)) vm.faults.osquerydNotRestarted = false;
  for (let i = 0; i < 8 && (await record(target)).stage === 0; i++) await timeline.run();
  assert.ok((await record(target)).stage > 0, 'promoted once the hosts run the target');
});

t.run();
