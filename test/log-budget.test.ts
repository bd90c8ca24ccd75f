// The log budget on the stack: a version whose hosts ship more than LOG_BYTES_PER_HOST_DAY (measured the real
// way: the shipper's counts on osquery_schedule snapshots through logHeartbeat into queryStats) gets one
// logs.overBudget at the audit run's close, nothing more on redelivery or re-evaluation, and one resolved
// once it ships within budget (here: nothing shipped in the hours summarized), against the emulators; the
// status page's log figures (status/osquery.logs) written at the same close.
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { enableOsConfig, stackSuite, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { auditProject } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { HeartbeatEngine, recordLogMessage } from '../shared/usecases/heartbeat.js';
import { evaluateQueryCosts } from '../shared/usecases/telemetry.js';
import { getHost } from '../shared/adapters/hosts.js';
import { getOsqueryStatus, openLogBudgets } from '../shared/adapters/telemetry.js';
import { config } from '../shared/config.js';
import { SCHEDULE_QUERY } from '../shared/osquery/log-routing.js';
import type { AlertMessage } from '../shared/domain/alerts.js';

const P = 'budget';
const Z = 'us-central1-f';
const MIN = 60_000;
const KiB = 1024;
let alerts: Subscription;

const t = stackSuite(
  'the log budget on the stack',
  {
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-budget',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    LOG_BYTES_PER_HOST_DAY: String(1024 * KiB),
  },
  async (stack) => {
    await enableOsConfig(stack, P);
    alerts = await subscribe(config().ALERT_TOPIC, 'test-log-budget-alerts');
    await drain(alerts);
  },
);

async function recordedHost(stack: Stack, name: string) {
  const vm = await createVm(stack, { project: P, zone: Z, name, os: 'debian-12' });
  await stack.control('POST', '/agents/run');
  await auditProject(P);
  const host = await getHost(vm.id);
  assert.ok(host?.configVersion, `${name} recorded with a configuration version`);
  return host!;
}

/** An osquery_schedule snapshot as the shipper stamps it: its cumulative counts per query since `since`. */
const snapshot = (at: number, since: number, shipped: Record<string, number>) =>
  JSON.stringify({
    name: SCHEDULE_QUERY,
    hostIdentifier: 'h',
    calendarTime: new Date(at).toUTCString(),
    unixTime: Math.floor(at / 1000),
    epoch: 0,
    counter: 0,
    numerics: false,
    action: 'snapshot',
    snapshot: Object.keys(shipped).map((name) => ({
      name,
      interval: '3600',
      executions: '1',
      denylisted: '0',
      output_size: '1000',
      wall_time_ms: '10',
      user_time: '10',
      system_time: '0',
      worker_pid: '500',
      worker_start_time: String(since),
    })),
    shipped: {
      since,
      queries: Object.fromEntries(Object.entries(shipped).map(([q, bytes]) => [q, { lines: bytes / 512, bytes }])),
    },
  });

const budgetAlerts = async () =>
  (await drain(alerts)).map((m) => m.data as AlertMessage).filter((m) => m.kind === 'logs.overBudget');

t('the budget alert fires once and resolves', async ({ stack }) => {
  await publish({ projects: [P] });
  const host = await recordedHost(stack, 'chatty');
  const version = host.configVersion!;
  const t1 = Date.now() - 70 * MIN;
  const t2 = t1 + 60 * MIN;
  const since = Math.floor(t1 / 1000) - 3600;
  // Over the hour between the snapshots the host ships 100 KiB of pack_chatty and 10 KiB of pack_quiet:
  // 2,640 KiB a day against a budget of 1,024 KiB.
  const lines = [
    snapshot(t1, since, { pack_chatty: 50 * KiB, pack_quiet: 5 * KiB }),
    snapshot(t2, since, { pack_chatty: 150 * KiB, pack_quiet: 15 * KiB }),
  ];
  const message = {
    data: Buffer.from(lines.join('\n')),
    attributes: { gce_instance_id: host.instanceId, gce_project_id: P, gce_zone: Z },
    messageId: 'budget-1',
    publishTime: new Date(),
  };
  const now = new Date(t2 + 10_000);
  let engine = new HeartbeatEngine();
  await recordLogMessage(engine, message, now);
  await engine.stats.flush();

  await evaluateQueryCosts('run-1', now);
  // Redelivered, then re-evaluated by another run: nothing more.
  engine = new HeartbeatEngine();
  await recordLogMessage(engine, message, new Date(now.getTime() + MIN));
  await engine.stats.flush();
  await evaluateQueryCosts('run-2', new Date(now.getTime() + 2 * MIN));
  const fired = await budgetAlerts();
  assert.equal(
    fired.map((m) => [m.status, m.configVersion, m.value, m.threshold, m.unit, m.host]),
    [['firing', version, 2640 * KiB, 1024 * KiB, 'bytes/host/day', null]],
  );
  assert.match(fired[0]!.reason!, /ships 2,640 KiB per host a day \(budget 1,024 KiB\)/);
  assert.equal([...(await openLogBudgets()).keys()], [version], 'the open episode is kept');
  // The status page's figures, written at the same run's close: the queries by bytes, the fleet's month.
  const logs = (await getOsqueryStatus())!.logs!;
  assert.equal(
    logs.topQueries.map((q) => [q.query, q.hosts, q.shippedBytesPerHostDay]),
    [
      ['pack_chatty', 1, 2400 * KiB],
      ['pack_quiet', 1, 240 * KiB],
    ],
  );
  assert.is(logs.bytesPerDay, 2640 * KiB);
  assert.ok(logs.usdPerMonth > 0, 'the SIEM is paid from the first byte');

  // Hours later nothing has shipped in the hours summarized: within budget, one resolved, then nothing.
  const later = new Date(now.getTime() + 3 * 3_600_000);
  await evaluateQueryCosts('run-3', later);
  await evaluateQueryCosts('run-4', new Date(later.getTime() + MIN));
  const resolved = await budgetAlerts();
  assert.equal(
    resolved.map((m) => [m.status, m.dedupKey]),
    [['resolved', fired[0]!.dedupKey]],
  );
  assert.is((await openLogBudgets()).size, 0, 'the record goes with the episode');
});

t.run();
