// A host stuck on an old configuration, on the local stack (docs/osquery-upgrade.md): OS Config places the
// new files and reports the VM compliant, but osqueryd is not restarted, so its own lines (the config_version
// decoration) still name the old version. Past the grace period the host is drifted and host.drifted fires
// once; when osqueryd restarts onto the new version the episode resolves, once.
import * as assert from 'uvu/assert';
import { config } from '../shared/config.js';
import { publish } from '../shared/usecases/publish.js';
import { getHost } from '../shared/adapters/hosts.js';
import { clients } from '../shared/clients.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { writeEvidence } from '../shared/usecases/status.js';
import { EVIDENCE_WRITERS } from '../shared/views/evidence.js';
import { P, Timeline, baselineThenTarget, bundleVariant, rolloutSuite } from './helpers/rollout.js';

const t = rolloutSuite('drift: a host stuck on an old configuration');

async function runningOf(instanceId: string) {
  const data = (await clients.firestore().collection('hosts').doc(instanceId).get()).data();
  return data?.running as Record<string, unknown> | undefined;
}

t('a host whose osqueryd keeps an old configuration becomes drifted and alerts once', async ({ stack }) => {
  const alerts = await subscribe(config().ALERT_TOPIC, `drift-${Date.now()}`);
  let target = '';
  const timeline = new Timeline(stack, () => target);
  const baseline = await baselineThenTarget(timeline);
  const vms = [...stack.sim.world.vms.values()];
  const stuck = vms[3]!;
  stuck.faults.osquerydNotRestarted = true;
  const report = await publish({ projects: [P], allAtOnce: true, bundleDir: bundleVariant(5400), now: timeline.at() });
  target = report.configVersion;
  await drain(alerts);
  for (let i = 0; i < 4; i++) await timeline.run();

  const host = await getHost(stuck.id);
  assert.is(host?.configVersion, target, 'OS Config reports it compliant with the target');
  assert.is(host?.state, 'reporting', 'it still reports: drift is not a host state');
  const running = await runningOf(stuck.id);
  assert.is(running?.configVersion, baseline, "osqueryd's own lines name the old configuration");
  assert.is(running?.drift, `config-version:${baseline}!=${target}`);
  assert.ok(running?.driftedSince, 'drifted');
  for (const vm of vms.filter((v) => v !== stuck)) {
    const other = await runningOf(vm.id);
    assert.is(other?.configVersion, target, `${vm.name} runs the target`);
    assert.is(other?.driftedSince, null, `${vm.name} is not drifted`);
  }
  // The evidence shows, per VM, what OS Config applied beside what osqueryd itself says it runs.
  let text = '';
  await writeEvidence(EVIDENCE_WRITERS.json, async (chunk) => void (text += chunk));
  const rows = (JSON.parse(text) as { hosts: Array<Record<string, string | boolean>> }).hosts;
  const row = rows.find((r) => r.instanceId === stuck.id)!;
  assert.equal(
    [row.configVersion, row.runningConfigVersion, row.runningOsqueryVersion, row.configValid],
    [target, baseline, '5.23.1', 'true'],
  );
  assert.match(String(row.drift), /^config-version:/);
  assert.ok(Date.parse(String(row.runningProvedAt)) > 0, 'stamped with the time of the line that proved it');
  assert.is(rows.find((r) => r.instanceId === vms[0]!.id)!.runningConfigVersion, target);

  await timeline.run();
  const fired = (await drain(alerts))
    .map((m) => m.data as Record<string, unknown>)
    .filter((m) => m.kind === 'host.drifted');
  assert.equal(
    fired.map((m) => [m.status, (m.host as { instanceId: string }).instanceId, m.reason]),
    [['firing', stuck.id, `config-version:${baseline}!=${target}`]],
    'exactly one host.drifted, for the stuck host',
  );

  // osqueryd is restarted at last: it loads the target, the episode resolves once.
  stuck.faults.osquerydNotRestarted = false;
  await timeline.run();
  await timeline.run();
  assert.is((await runningOf(stuck.id))?.driftedSince, null);
  const after = (await drain(alerts))
    .map((m) => m.data as Record<string, unknown>)
    .filter((m) => m.kind === 'host.drifted');
  assert.equal(
    after.map((m) => m.status),
    ['resolved'],
  );
});

t.run();
