// Progressive rollout, a bad version per gate: halted in the canary (the first stage that observes it), every
// zone back on the baseline, exactly one rollout.halted, no zone outside the canary ever had the target.
import * as assert from 'uvu/assert';
import type { Stack } from './helpers/stack.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { clients } from '../shared/clients.js';
import { config, renderSettings } from '../shared/config.js';
import { publish } from '../shared/usecases/publish.js';
import { controlRollout } from '../shared/usecases/rollout.js';
import { handleIncident } from '../shared/usecases/incidents.js';
import { readCurrent } from '../shared/adapters/rollouts.js';
import { getHost } from '../shared/adapters/hosts.js';
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

const t = rolloutSuite('progressive rollout: a bad version per gate');

type BadCase = {
  gate: string;
  /** Make the target bad on the simulator, before its first tick. */
  before?: (stack: Stack, target: string) => Promise<void>;
  /** Between the agents and the audit of each tick: telemetry documents, incidents. */
  during?: (stack: Stack, target: string, at: Date) => Promise<void>;
};

/** Hosts whose VM runs `version` now (by the OS policy osqueryd was restarted for). */
const vmsOn = (stack: Stack, version: string) =>
  [...stack.sim.world.vms.values()].filter((vm) => runningVersion(vm) === version);

async function writeOsqueryd(
  stack: Stack,
  version: string,
  at: Date,
  sample: { cpuPercent: number; rssBytes: number },
) {
  const db = clients.firestore();
  for (const vm of vmsOn(stack, version))
    if (await getHost(vm.id))
      await db
        .collection('hosts')
        .doc(vm.id)
        .update({ osqueryd: { ...sample, at } });
}

const BAD: BadCase[] = [
  {
    gate: 'noncompliant',
    before: (stack, v) => stack.control('PUT', `/versions/${v}/bad`, { policyFailing: true }),
  },
  { gate: 'silent', before: (stack, v) => stack.control('PUT', `/versions/${v}/bad`, { logsStopped: true }) },
  {
    gate: 'incidents',
    during: async (stack, v, at) => {
      for (const vm of vmsOn(stack, v))
        await handleIncident(
          {
            version: '1.2',
            incident: {
              incident_id: `inc-${vm.id}`,
              state: 'open',
              started_at: Math.floor(at.getTime() / 1000),
              resource: { type: 'gce_instance', labels: { instance_id: vm.id, project_id: P, zone: vm.zone } },
              policy_name: 'osqueryd cpu',
              summary: 'CPU above 90% for 5 minutes',
            },
          },
          at,
        );
    },
  },
  {
    gate: 'osquerydCpu',
    during: (stack, v, at) => writeOsqueryd(stack, v, at, { cpuPercent: 85, rssBytes: 60 * 1024 * 1024 }),
  },
  {
    gate: 'osquerydMemory',
    during: (stack, v, at) => writeOsqueryd(stack, v, at, { cpuPercent: 1, rssBytes: 900 * 1024 * 1024 }),
  },
  {
    gate: 'denylistedQueries',
    during: async (stack, v, at) => {
      if (vmsOn(stack, v).length === 0) return;
      await clients
        .firestore()
        .collection('queryStats')
        .doc(`${v}~pack_users_sudoers`)
        .set(
          { configVersion: v, query: 'pack_users_sudoers', windows: { [windowOf(at)]: { denylisted: 2 } } },
          { merge: true },
        );
    },
  },
];

for (const bad of BAD)
  t(
    `a bad version (gate ${bad.gate}) halts in the canary: every zone back on the baseline, one rollout.halted`,
    async ({ stack }) => {
      const alerts = await subscribe(config().ALERT_TOPIC, `rollout-${bad.gate.toLowerCase()}-${Date.now()}`);
      let target = '';
      const timeline = new Timeline(stack, () => target);
      const baseline = await baselineThenTarget(timeline);
      await drain(alerts);
      // The version is known before it is published (its content decides it): the simulator is told first.
      const dir = bundleVariant(5400);
      target = renderBundle(await loadBundle(dir), renderSettings()).configVersion;
      await bad.before?.(stack, target);
      const report = await publish({ projects: [P], plan: PLAN, bundleDir: dir, now: timeline.at() });
      assert.is(report.configVersion, target);

      for (let i = 0; i < 12; i++) {
        await timeline.run((at) => bad.during?.(stack, target, at) ?? Promise.resolve());
        if ((await record(target)).status !== 'running') break;
      }
      const r = await record(target);
      assert.is(r.status, 'halted', `halted (${r.evaluation?.next.reason})`);
      assert.is(r.halt!.stage, 'canary', 'halted in the first stage');
      assert.is(r.halt!.gate, bad.gate);
      assert.ok(r.halt!.value > r.halt!.threshold, `${r.halt!.value} above ${r.halt!.threshold}`);
      if (bad.gate === 'denylistedQueries') assert.equal(r.halt!.queries, ['pack_users_sudoers']);
      else assert.ok(r.halt!.hosts.length > 0 && r.halt!.hosts.every((h) => `${h.project}/${h.zone}` === CANARY));
      assert.equal([...timeline.exposed.keys()], [CANARY], 'no zone outside the canary ever had the target');
      for (const [zone, version] of zoneVersions(stack)) assert.is(version, baseline, `${zone} back on the baseline`);
      const current = await readCurrent();
      assert.is(current.configVersion, baseline);

      // More ticks (and a redelivered one) change nothing and send nothing more.
      await timeline.run();
      await controlRollout(`tick-${timeline.t0}-${timeline.tick}`, timeline.at());
      const messages = (await drain(alerts)).map((m) => m.data as Record<string, unknown>);
      const halted = messages.filter((m) => m.kind === 'rollout.halted');
      assert.is(halted.length, 1, 'exactly one rollout.halted');
      assert.is(halted[0]!.severity, 'critical');
      assert.is(halted[0]!.status, 'firing');
      assert.is(halted[0]!.version, target);
      assert.is(halted[0]!.stage, 'canary');
      assert.is(halted[0]!.gate, bad.gate);
      assert.is(halted[0]!.value, r.halt!.value);
      assert.is(halted[0]!.threshold, r.halt!.threshold);
      assert.is((await record(target)).revision, r.revision, 'nothing decided after the halt');
      // The agents apply the baseline again: the hosts report it.
      await timeline.run();
      for (const vm of stack.sim.world.vms.values()) assert.is(runningVersion(vm), baseline, vm.name);

      if (bad.gate !== 'noncompliant') return;
      // A fixed version published next replaces the halted rollout: the halt's alert resolves, once.
      const fixed = await publish({ projects: [P], plan: PLAN, bundleDir: bundleVariant(5500), now: timeline.at() });
      assert.is(fixed.rollout.mode, 'staged');
      assert.is((await record(target)).status, 'superseded');
      const after = (await drain(alerts)).map((m) => m.data as Record<string, unknown>);
      assert.equal(
        after.filter((m) => m.kind === 'rollout.halted').map((m) => [m.status, m.version]),
        [['resolved', target]],
      );
    },
  );

t.run();
