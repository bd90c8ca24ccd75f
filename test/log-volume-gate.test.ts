// Progressive rollout, a chatty version: its canary hosts ship five times the baseline's bytes of one query,
// the logVolume gate halts it in the canary with that query named, every zone goes back to the baseline and
// exactly one rollout.halted is sent. The shipped figures are written as logHeartbeat writes them (queryStats
// windows, shippedBytes over shippedSpanMs); how the simulator's shipped lines become those figures is
// test/unit/log-volume.test.ts and the logs.volume bench (the stack's hourly snapshots would need hours).
import * as assert from 'uvu/assert';
import type { Stack } from './helpers/stack.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { clients } from '../shared/clients.js';
import { config, renderSettings } from '../shared/config.js';
import { publish } from '../shared/usecases/publish.js';
import { controlRollout } from '../shared/usecases/rollout.js';
import { readCurrent } from '../shared/adapters/rollouts.js';
import { loadBundle } from '../shared/osquery/bundle.js';
import { renderBundle } from '../shared/osquery/render.js';
import { windowOf } from '../shared/domain/telemetry/query-stats.js';
import { runningVersion } from '../infra/local/simulator/logs.js';
import {
  CANARY,
  P,
  PLAN,
  Timeline,
  baselineThenTarget,
  bundleVariant,
  record,
  rolloutSuite,
  zoneVersions,
} from './helpers/rollout.js';

const t = rolloutSuite('progressive rollout: the logVolume gate');

const onVersion = (stack: Stack, version: string) =>
  [...stack.sim.world.vms.values()].some((vm) => runningVersion(vm) === version);

/** A query's shipped bytes per host and hour on a version, over four host-hours of the window of `at`. */
const shipped = (version: string, query: string, at: Date, bytesPerHostHour: number) =>
  clients
    .firestore()
    .collection('queryStats')
    .doc(`${version}~${query}`)
    .set(
      {
        configVersion: version,
        query,
        windows: { [windowOf(at)]: { snapshots: 4, shippedBytes: 4 * bytesPerHostHour, shippedSpanMs: 4 * 3_600_000 } },
      },
      { merge: true },
    );

t('a chatty version halts in the canary on logVolume, naming the query that grew', async ({ stack }) => {
  const alerts = await subscribe(config().ALERT_TOPIC, `rollout-logvolume-${Date.now()}`);
  let target = '';
  const timeline = new Timeline(stack, () => target);
  const baseline = await baselineThenTarget(timeline);
  await drain(alerts);
  const dir = bundleVariant(5400);
  target = renderBundle(await loadBundle(dir), renderSettings()).configVersion;
  const report = await publish({ projects: [P], plan: PLAN, bundleDir: dir, now: timeline.at() });
  assert.is(report.configVersion, target);

  for (let i = 0; i < 12; i++) {
    await timeline.run(async (at) => {
      if (!onVersion(stack, target)) return;
      // The baseline's hosts: 50 KB per host and hour; the target's: the same, but pack_users_last ships 5x.
      await shipped(baseline, 'pack_users_last', at, 20_000);
      await shipped(baseline, 'pack_net_outbound_connections', at, 30_000);
      await shipped(target, 'pack_users_last', at, 100_000);
      await shipped(target, 'pack_net_outbound_connections', at, 30_000);
    });
    if ((await record(target)).status !== 'running') break;
  }
  const r = await record(target);
  assert.is(r.status, 'halted', `halted (${r.evaluation?.next.reason})`);
  assert.is(r.halt!.stage, 'canary', 'halted in the first stage');
  assert.is(r.halt!.gate, 'logVolume');
  assert.is(r.halt!.value, 160, "log bytes per host 160% above the baseline's");
  assert.is(r.halt!.threshold, 50);
  assert.is(r.halt!.unit, '% over baseline');
  assert.equal(r.halt!.queries, ['pack_users_last'], 'the query that grew is named');
  assert.match(r.evaluation!.next.reason, /gate logVolume log bytes per host 160% above the baseline's/);
  assert.equal([...timeline.exposed.keys()], [CANARY], 'no zone outside the canary ever had the target');
  for (const [zone, version] of zoneVersions(stack)) assert.is(version, baseline, `${zone} back on the baseline`);
  assert.is((await readCurrent()).configVersion, baseline);

  // A redelivered tick decides nothing more and sends nothing more.
  await controlRollout(`tick-${timeline.t0}-${timeline.tick}`, timeline.at());
  const halted = (await drain(alerts))
    .map((m) => m.data as Record<string, unknown>)
    .filter((m) => m.kind === 'rollout.halted');
  assert.is(halted.length, 1, 'exactly one rollout.halted');
  assert.is(halted[0]!.gate, 'logVolume');
  assert.is(halted[0]!.value, 160);
  assert.is((await record(target)).revision, r.revision, 'nothing decided after the halt');
});

t.run();
