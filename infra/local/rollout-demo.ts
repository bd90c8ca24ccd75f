// The progressive rollout on the local stack (`npm start`): a good version walks through every stage of
// infra/local/rollout.json (one minute of bake each), then a bad one (its OS policy fails on every VM that
// applies it, as the simulator is told) is halted in the canary and rolled back; then an osquery release
// whose osqueryd crashes at start is halted in the canary and the canary downgraded back; then one host's
// osqueryd keeps an old configuration and becomes drifted (docs/osquery-upgrade.md). Every decision the
// controller makes at the close of an audit run is printed as it lands in Firestore.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Simulator } from './simulator/server.js';

export const LOCAL_PLAN = path.join(import.meta.dirname, 'rollout.json');

/** The bundle with one query's interval changed: another configuration version. */
function bundleVariant(interval: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'demo-bundle-'));
  cpSync(path.resolve(import.meta.dirname, '../../shared/osquery/bundle'), dir, { recursive: true });
  const packPath = path.join(dir, 'packs/users.conf');
  const pack = JSON.parse(readFileSync(packPath, 'utf8'));
  pack.queries.sudoers.interval = interval;
  writeFileSync(packPath, JSON.stringify(pack, null, 2));
  return dir;
}

/** An osquery release whose osqueryd crashes at start: halted in the canary, the canary downgraded back. */
async function osqueryUpgradeStory(
  sim: Simulator,
  say: (line: string) => void,
  until: (version: string, done: (status: string) => boolean, minutes: number) => Promise<string>,
) {
  const { publish } = await import('../../shared/usecases/publish.js');
  const release = '5.24.0';
  sim.world.releases.set(release, { crashesAtStart: true });
  const dir = bundleVariant(5400);
  writeFileSync(path.join(dir, 'osquery.version'), `${release}\n`);
  const report = await publish({
    bundleDir: dir,
    planFile: LOCAL_PLAN,
    actor: { by: 'demo', reason: `rollout demo: upgrade osquery to ${release}` },
  });
  say(
    `osquery upgrade demo: ${report.configVersion} pins osquery ${release} (its osqueryd crashes at start, as the ` +
      `simulator is told); canary ${report.rollout.stages[0]?.zones.join(' ')}`,
  );
  const end = await until(report.configVersion, (s) => s !== 'running', 10);
  await new Promise((r) => setTimeout(r, 30_000));
  const canary = new Set(report.rollout.stages[0]?.zones ?? []);
  const vms = [...sim.world.vms.values()].filter((vm) => canary.has(`${vm.project}/${vm.zone}`));
  say(
    `osquery upgrade demo: ${report.configVersion} ${end}; the canary's VMs run osquery ` +
      vms.map((vm) => `${vm.name} ${vm.installed.osquery ?? 'none'}`).join(', ') +
      " (downgraded by the baseline's pinned policy)",
  );
}

/** One host's osqueryd is not restarted when its files change: its own lines keep the old version; drifted. */
async function driftStory(sim: Simulator, say: (line: string) => void) {
  const { publish } = await import('../../shared/usecases/publish.js');
  const vm = [...sim.world.vms.values()].find((v) => v.osqueryd.worker && v.status === 'RUNNING');
  if (!vm) return;
  vm.faults.osquerydNotRestarted = true;
  const report = await publish({
    bundleDir: bundleVariant(6000),
    allAtOnce: true,
    actor: { by: 'demo', reason: 'drift demo: a version everywhere at once' },
  });
  say(
    `drift demo: ${report.configVersion} published everywhere; ${vm.name}'s osqueryd is not restarted, so its lines ` +
      'keep naming the old configuration: host.drifted after DRIFT_GRACE_MINUTES (hosts/ID.running shows it)',
  );
  await new Promise((r) => setTimeout(r, 4 * 60_000));
  vm.faults.osquerydNotRestarted = false;
  say(`drift demo: ${vm.name}'s osqueryd restarts onto ${report.configVersion}; host.drifted resolves`);
}

export async function rolloutDemo(sim: Simulator, say: (line: string) => void, stopped: () => boolean) {
  const { clients } = await import('../../shared/clients.js');
  const { renderSettings } = await import('../../shared/config.js');
  const { publish } = await import('../../shared/usecases/publish.js');
  const { loadBundle } = await import('../../shared/osquery/bundle.js');
  const { renderBundle } = await import('../../shared/osquery/render.js');
  const { getRollout } = await import('../../shared/adapters/rollouts.js');

  // Every change of a rollout record: its status and stage, the controller's next action, a halt.
  const last = new Map<string, string>();
  const stop = clients
    .firestore()
    .collection('rollouts')
    .onSnapshot((snapshot) => {
      for (const change of snapshot.docChanges()) {
        const r = change.doc.data();
        if (!r.mode || r.mode !== 'staged') continue;
        const stage = r.stages?.[r.stage];
        const next = r.evaluation?.next;
        const line =
          `rollout ${change.doc.id}: ${r.status}, stage ${stage?.name ?? '-'} (${r.stage + 1}/${r.stages.length}, ` +
          `${stage?.zones?.length ?? 0} zone(s))` +
          (next && r.status === 'running' ? `; next: ${next.action} (${next.reason})` : '');
        if (last.get(change.doc.id) === line) continue;
        last.set(change.doc.id, line);
        say(line);
        if (r.status === 'halted' && r.halt)
          say(
            `rollout ${change.doc.id}: HALTED in stage ${r.halt.stage}: gate ${r.halt.gate} ${r.halt.value}` +
              `${r.halt.unit === '%' ? '%' : ` ${r.halt.unit}`} above ${r.halt.threshold}; every zone back on ` +
              `${r.baseline} (hosts: ${(r.halt.hosts as Array<{ name: string }>).map((h) => h.name).join(', ')})`,
          );
      }
    });

  const until = async (version: string, done: (status: string) => boolean, minutes: number) => {
    for (const deadline = Date.now() + minutes * 60_000; Date.now() < deadline && !stopped();) {
      const status = (await getRollout(version))?.staged?.status;
      if (status && done(status)) return status;
      await new Promise((r) => setTimeout(r, 2000));
    }
    return (await getRollout(version))?.staged?.status ?? 'none';
  };

  try {
    const good = await publish({
      bundleDir: bundleVariant(7200),
      planFile: LOCAL_PLAN,
      actor: { by: 'demo', reason: 'rollout demo: a good version' },
    });
    say(
      `rollout demo: published ${good.configVersion} (good) by ${path.relative(process.cwd(), LOCAL_PLAN)}: ` +
        good.rollout.stages.map((s) => `${s.name} ${s.zones.join(' ')}`).join(' | ') +
        (good.rollout.skipped.length ? `; skipped ${good.rollout.skipped.map((s) => s.name).join(', ')}` : ''),
    );
    const goodEnd = await until(good.configVersion, (s) => s !== 'running', 15);
    say(`rollout demo: ${good.configVersion} ${goodEnd}`);
    if (goodEnd !== 'completed' || stopped()) return;

    const dir = bundleVariant(5400);
    const bad = renderBundle(await loadBundle(dir), renderSettings()).configVersion;
    sim.world.badVersions.set(bad, { policyFailing: true });
    say(
      `rollout demo: ${bad} is bad (osqueryd does not start with it: the OS policy fails on every VM that applies it)`,
    );
    const report = await publish({
      bundleDir: dir,
      planFile: LOCAL_PLAN,
      actor: { by: 'demo', reason: 'rollout demo: a bad version' },
    });
    say(`rollout demo: published ${bad} (bad); canary ${report.rollout.stages[0]?.zones.join(' ')}`);
    const badEnd = await until(bad, (s) => s !== 'running', 10);
    say(`rollout demo: ${bad} ${badEnd}; \`osq-orch rollout status\` shows it, the status page too`);
    if (stopped()) return;
    await osqueryUpgradeStory(sim, say, until);
    if (stopped()) return;
    await driftStory(sim, say);
  } finally {
    stop();
  }
}
