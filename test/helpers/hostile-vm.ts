// Issue 20's hostile VM on the local stack, for push and pull delivery alike: a staged rollout runs on a
// small fleet of simulated VMs while one of them, besides its own osqueryd lines, publishes malformed
// heartbeats and schedule snapshots to the log topic every round (any VM can publish any line). Each round
// runs the agents, one audit run (the rollout controller at its close) and a log round, at simulated
// times that lie in the past, ten minutes apart (test/helpers/rollout.ts does the same for the rollout).
import * as assert from 'uvu/assert';
import { stackSuite, waitFor, type Stack } from './stack.js';
import { PLAN, P, STEP, ZONES, bundleVariant, record } from './rollout.js';
import { createRun } from '../../shared/adapters/audits.js';
import { getHost } from '../../shared/adapters/hosts.js';
import { clients } from '../../shared/clients.js';
import { config } from '../../shared/config.js';
import { runAuditShard } from '../../shared/usecases/audit.js';
import { publish } from '../../shared/usecases/publish.js';
import { HEARTBEAT_QUERY, QUERY_NAME_ATTRIBUTE, SCHEDULE_QUERY } from '../../shared/osquery/log-routing.js';
import { shipsLogs } from '../../infra/local/simulator/logs.js';

/**
 * Four zones of two VMs, the first the canary ring. The hostile VM is a canary: were its forged lines to
 * cost it (or its neighbours) their lastLogAt, the silent gate would count it and halt the rollout.
 */
const FLEET_ZONES = ZONES.slice(0, 4);
const HOSTILE_NAME = 'vm-0-1';

export function hostileSuite(name: string, delivery: 'push' | 'pull') {
  return stackSuite(
    name,
    {
      TARGET_PROJECTS: P,
      CONFIG_BUCKET: 'osquery-config-hostile',
      LOG_TOPIC: 'osquery-logs',
      OSCONFIG_WRITES_PER_MINUTE: '6000',
      SILENCE_THRESHOLD_MINUTES: '15',
      HEARTBEAT_WRITE_WINDOW_SECONDS: '0',
      ...(delivery === 'pull' ? { LOG_HEARTBEAT_SUBSCRIPTION: 'osquery-logs-heartbeat-pull' } : {}),
    },
    async (stack) => {
      await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
      for (const [i, zone] of FLEET_ZONES.entries())
        for (const n of [1, 2])
          stack.sim.world.addVm({
            project: P,
            zone,
            name: `vm-${i}-${n}`,
            os: 'debian-12',
            labels: i === 0 ? { 'osquery-ring': 'canary' } : {},
          });
    },
  );
}

const s = (ms: number) => Math.floor(ms / 1000);

/** What the hostile VM publishes each round, one line a message as the shipper does: none of it is true. */
function hostileLines(at: number): Array<{ line: string; query: string }> {
  const heartbeat = (row: Record<string, string>, unixTime: unknown = s(at)) => ({
    line: JSON.stringify({
      name: HEARTBEAT_QUERY,
      unixTime,
      action: 'snapshot',
      snapshot: [
        {
          heartbeat_at: String(s(at)),
          pid: '4242',
          start_time: String(s(at) - 60),
          user_time: '10',
          system_time: '10',
          resident_size: '1000',
          ...row,
        },
      ],
    }),
    query: HEARTBEAT_QUERY,
  });
  const schedule = (names: string[]) => ({
    line: JSON.stringify({
      name: SCHEDULE_QUERY,
      unixTime: s(at),
      action: 'snapshot',
      snapshot: names.map((name) => ({ name, executions: '1', user_time: '1', interval: '3600' })),
    }),
    query: SCHEDULE_QUERY,
  });
  return [
    heartbeat({ heartbeat_at: '99999999999999999999' }),
    heartbeat({ heartbeat_at: '-1', pid: '0' }),
    heartbeat({ start_time: '99999999999999999999', user_time: '9'.repeat(400) }),
    heartbeat({}, '99999999999999999999'),
    schedule(['x'.repeat(2000), '__x__', 'pack_ok']),
    schedule(Array.from({ length: 1001 }, (_, i) => `pack_q${i}`)),
    { line: '{"not": "json"', query: HEARTBEAT_QUERY },
  ];
}

export interface HostileRun {
  /** Every VM but the hostile one: their lastLogAt after each round. */
  others: Array<{ id: string; name: string }>;
  hostile: { id: string; name: string };
  target: string;
}

/**
 * The scenario: a baseline (all at once) and two rounds, then a staged target, then `rounds` rounds during
 * which the hostile VM sends its lines with every log round. After each round every other host's lastLogAt
 * is that round's (a host whose lines were lost fails the round), and the rollout has not halted.
 */
export async function runHostileScenario(stack: Stack, delivery: 'push' | 'pull', rounds: number): Promise<HostileRun> {
  const t0 = Date.now() - 8 * 60 * 60_000;
  const at = (tick: number) => new Date(t0 + tick * STEP);
  const world = stack.sim.world;
  const vms = [...world.vms.values()].filter((vm) => vm.project === P);
  const hostile = vms.find((vm) => vm.name === HOSTILE_NAME)!;
  const others = vms.filter((vm) => vm !== hostile);
  const pubsub = await clients.pubsub();
  const logTopic = pubsub.topic(config().LOG_TOPIC);

  let sent = 0;
  const publishHostile = async (time: Date) => {
    const lines = hostileLines(time.getTime());
    await Promise.all(
      lines.map(({ line, query }) =>
        logTopic.publishMessage({
          data: Buffer.from(line),
          attributes: {
            gce_instance_id: hostile.id,
            gce_project_id: hostile.project,
            gce_zone: hostile.zone,
            log_type: 'snapshot',
            [QUERY_NAME_ATTRIBUTE]: query,
          },
        }),
      ),
    );
    return lines.length;
  };

  const round = async (tick: number, withHostile: boolean) => {
    const time = at(tick);
    await stack.control('POST', '/agents/run', { at: time.toISOString() });
    const runId = `hostile-${t0}-${tick}`;
    await createRun(runId, [P], time);
    await runAuditShard({ runId, project: P }, time);
    const shipping = others.filter((vm) => shipsLogs(vm));
    const relay = stack.functions.logRelay.counts;
    const before = relay.forwarded + relay.filtered;
    // The hostile lines go out with the fleet's, so they share its deliveries and batched host writes.
    const [shipped, hostileSent] = await Promise.all([
      stack.control<{ messages: number }>('POST', '/logs/ship', { at: time.toISOString() }),
      withHostile ? publishHostile(time) : Promise.resolve(0),
    ]);
    sent += hostileSent;
    if (delivery === 'pull') {
      const lines = shipped.messages + hostileSent;
      await waitFor(
        `the relay to pass ${lines} lines on`,
        () => relay.forwarded + relay.filtered - before,
        (n) => n >= lines,
        20_000,
      );
      await pubsub.topic(config().LOG_DRAIN_TICK_TOPIC).publishMessage({ json: { source: 'test' } });
    }
    const second = s(time.getTime()) * 1000;
    for (const vm of shipping)
      await waitFor(
        `${vm.name}'s lastLogAt to reach round ${tick} (${delivery})`,
        async () => (await getHost(vm.id))?.lastLogAt?.getTime() ?? 0,
        (t) => t >= second,
        20_000,
      );
  };

  await publish({ projects: [P], plan: PLAN, now: at(0) });
  await round(1, false);
  await round(2, false);
  const report = await publish({
    projects: [P],
    plan: PLAN,
    bundleDir: bundleVariant(7200),
    now: at(2),
    actor: { by: 'test', reason: 'a hostile VM sends malformed lines' },
  });
  assert.is(report.rollout.mode, 'staged');
  const target = report.configVersion;
  for (let tick = 3; tick < 3 + rounds; tick++) {
    await round(tick, true);
    const r = await record(target);
    assert.ok(
      r.status === 'running' || r.status === 'completed',
      `round ${tick}: ${r.status} ${JSON.stringify(r.halt)}`,
    );
    const silent = r.evaluation?.gates.find((g) => g.gate === 'silent');
    assert.equal([silent?.count, silent?.passed], [0, true], `round ${tick}: the silent gate`);
    assert.ok(
      r.evaluation!.gates.every((g) => g.passed && g.count === 0),
      JSON.stringify(r.evaluation!.gates),
    );
  }
  assert.ok(sent >= rounds * 7, `the hostile VM sent ${sent} lines`);
  return { others, hostile, target };
}
