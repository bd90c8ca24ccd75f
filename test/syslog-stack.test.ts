// Syslog ingestion on the local stack: messages logged on a simulated VM go through rsyslog into osqueryd's
// pipe, come out as the syslog_events query's results of that VM on the log topic, and reach the SIEM's
// (unfiltered) subscription, never logHeartbeat; a VM whose rsyslog started before the pipe existed
// ingests nothing until the OS policy restarts rsyslog (once per version); the hosts' evidence (the status
// snapshot, the evidence report) says whose syslog results arrive.
import * as assert from 'uvu/assert';
import type { Subscription } from '@google-cloud/pubsub';
import { enableOsConfig, newHeartbeatInstances, stackSuite, waitFor, type Stack } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { bundleVariant } from './helpers/rollout.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { publish } from '../shared/usecases/publish.js';
import { auditProject, runAuditShard } from '../shared/usecases/audit.js';
import { createRun } from '../shared/adapters/audits.js';
import { loadStatusView, writeEvidence } from '../shared/usecases/status.js';
import { EVIDENCE_WRITERS } from '../shared/views/evidence.js';
import { getHost } from '../shared/adapters/hosts.js';
import { config } from '../shared/config.js';
import { SYSLOG_QUERY, QUERY_NAME_ATTRIBUTE } from '../shared/osquery/log-routing.js';
import { syslogStatus } from '../shared/domain/syslog.js';

const P = 'syslog-prod';
const Z = 'us-central1-a';
let siem: Subscription;

const t = stackSuite(
  'syslog ingestion on the stack',
  {
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-syslog',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    HEARTBEAT_WRITE_WINDOW_SECONDS: '0',
  },
  async (stack) => {
    await enableOsConfig(stack, P);
    await newHeartbeatInstances();
    // The SIEM's own subscription on the log topic: no filter, every line.
    siem = await subscribe(config().LOG_TOPIC, 'test-syslog-siem');
    await drain(siem);
  },
);

type SyslogView = {
  rsyslog: { running: boolean; pipe: string | null; restarts: number; marker: string | null };
  pipes: string[];
  connected: boolean;
  dropped: number;
  ingested: number;
};
const syslogOf = (stack: Stack, id: string) => stack.control<SyslogView>('GET', `/vms/${id}/syslog`);
const log = (stack: Stack, id: string, ...messages: string[]) =>
  stack.control<SyslogView & { accepted: number }>('POST', `/vms/${id}/syslog`, {
    messages: messages.map((message) => ({ message, tag: 'sshd', facility: 'auth', severity: '5' })),
  });

/** One log round; waits until the relay answered every message it published (forwarded or filtered). */
async function ship(stack: Stack): Promise<number> {
  const before = { ...stack.functions.logRelay.counts };
  const { messages } = await stack.control<{ messages: number }>('POST', '/logs/ship');
  await waitFor(
    `the relay to answer ${messages} messages`,
    () => ({ ...stack.functions.logRelay.counts }),
    (c) => c.forwarded - before.forwarded + (c.filtered - before.filtered) >= messages,
    30_000,
  );
  return messages;
}

const syslogLines = (lines: Array<{ data: unknown; attributes: Record<string, string> }>, id: string) =>
  lines.filter((l) => l.attributes[QUERY_NAME_ATTRIBUTE] === SYSLOG_QUERY && l.attributes.gce_instance_id === id);

t(
  'messages logged on a VM reach the SIEM as syslog_events results of that VM, never logHeartbeat',
  async ({ stack }) => {
    const report = await publish({ projects: [P] });
    const vm = await createVm(stack, { project: P, zone: Z, name: 'web-1', os: 'debian-12' });
    assert.is((await syslogOf(stack, vm.id)).rsyslog.running, false, "Debian 12's image has no rsyslog");
    await stack.control('POST', '/agents/run');
    const s = await syslogOf(stack, vm.id);
    assert.equal(s.pipes, ['/var/osquery/syslog_pipe'], 'osqueryd created its pipe');
    assert.equal(s.rsyslog, {
      running: true,
      pipe: '/var/osquery/syslog_pipe',
      restarts: 1,
      marker: report.configVersion,
    });
    const logged = await log(stack, vm.id, 'Accepted publickey for alice', 'Failed password for root');
    assert.is(logged.accepted, 2);

    const before = { ...stack.functions.logRelay.counts };
    await ship(stack);
    const lines = syslogLines(await drain(siem), vm.id);
    assert.equal(
      lines.map((l) => (l.data as { columns: { message: string } }).columns.message),
      ['Accepted publickey for alice', 'Failed password for root'],
    );
    for (const l of lines) {
      const data = l.data as { name: string; action: string; columns: Record<string, string> };
      assert.is(data.name, SYSLOG_QUERY);
      assert.is(data.action, 'added');
      assert.equal(
        [data.columns.tag, data.columns.facility, data.columns.severity, data.columns.host],
        ['sshd', 'auth', '5', 'web-1'],
      );
      assert.equal([l.attributes.gce_project_id, l.attributes.gce_zone, l.attributes.log_type], [P, Z, 'result']);
    }
    // The relay acknowledged them for logHeartbeat's subscription (filtered): they never invoke it.
    assert.ok(stack.functions.logRelay.counts.filtered - before.filtered >= 2, 'the syslog lines were filtered');
    // Read once: the next round has no syslog line.
    await ship(stack);
    assert.equal(syslogLines(await drain(siem), vm.id), []);
  },
);

t(
  "rsyslog started before the pipe existed ingests nothing until the policy's restart, which runs once per version",
  async ({ stack }) => {
    const first = await publish({ projects: [P] });
    // Ubuntu's image starts rsyslog at boot, long before osqueryd exists: its ompipe action has no pipe.
    const vm = await createVm(stack, { project: P, zone: Z, name: 'app-1', os: 'ubuntu-2204' });
    assert.equal((await syslogOf(stack, vm.id)).rsyslog, { running: true, pipe: null, restarts: 0, marker: null });
    // The policy's rsyslog restart does not happen yet (the resource fails on this VM).
    await stack.control('PATCH', `/vms/${vm.id}`, { policyFailure: 'rsyslog-reads-pipe' });
    await stack.control('POST', '/agents/run');
    let s = await syslogOf(stack, vm.id);
    assert.equal(s.pipes, ['/var/osquery/syslog_pipe'], 'osqueryd created the pipe');
    assert.equal([s.rsyslog.pipe, s.connected], [null, false], 'rsyslog still has no pipe open');
    assert.is((await log(stack, vm.id, 'lost: rsyslog has no pipe')).accepted, 0);
    await ship(stack);
    assert.equal(syslogLines(await drain(siem), vm.id), [], 'nothing ingested');

    // The restart runs: from now on the VM's messages arrive.
    await stack.control('PATCH', `/vms/${vm.id}`, { policyFailure: null });
    await stack.control('POST', '/agents/run');
    s = await syslogOf(stack, vm.id);
    assert.equal(s.rsyslog, {
      running: true,
      pipe: '/var/osquery/syslog_pipe',
      restarts: 1,
      marker: first.configVersion,
    });
    assert.is((await log(stack, vm.id, 'after the restart')).accepted, 1);
    await ship(stack);
    assert.equal(
      syslogLines(await drain(siem), vm.id).map((l) => (l.data as { columns: { message: string } }).columns.message),
      ['after the restart'],
    );

    // More check-ins restart nothing; a new version restarts rsyslog once more.
    for (let i = 0; i < 3; i++) await stack.control('POST', '/agents/run');
    assert.is((await syslogOf(stack, vm.id)).rsyslog.restarts, 1, 'never again for the same version');
    const second = await publish({ projects: [P], bundleDir: bundleVariant(5400) });
    for (let i = 0; i < 2; i++) await stack.control('POST', '/agents/run');
    s = await syslogOf(stack, vm.id);
    assert.equal([s.rsyslog.restarts, s.rsyslog.marker], [2, second.configVersion], 'once for the new version');
  },
);

t(
  'evidence per host: syslog results seen within the last hour (status snapshot, evidence report)',
  async ({ stack }) => {
    await publish({ projects: [P] });
    const busy = await createVm(stack, { project: P, zone: Z, name: 'busy-1', os: 'debian-12' });
    const quiet = await createVm(stack, { project: P, zone: Z, name: 'quiet-1', os: 'ubuntu-2204' });
    await stack.control('PATCH', `/vms/${quiet.id}`, { policyFailure: 'rsyslog-reads-pipe' });
    await stack.control('POST', '/agents/run');
    await auditProject(P);
    // Thirteen rounds (65 minutes of osquery time): an hourly osquery_schedule snapshot comes after the syslog
    // query's first rows, whatever the splay of its first run.
    for (let i = 0; i < 13; i++) {
      await log(stack, busy.id, `cron job ${i} ran`);
      await log(stack, quiet.id, `lost ${i}`);
      await ship(stack);
    }
    await drain(siem);
    const busyHost = await waitFor(
      'busy-1 syslog evidence',
      () => getHost(busy.id),
      (h) => Boolean(h?.syslog?.seenAt),
    );
    assert.is(syslogStatus(busyHost!.syslog, new Date()), 'arriving');
    const quietHost = (await getHost(quiet.id))!;
    assert.ok(quietHost.syslog?.scheduledAt, 'its version ingests syslog');
    assert.is(quietHost.syslog?.seenAt ?? null, null);
    assert.is(syslogStatus(quietHost.syslog, new Date()), 'missing');

    // The status page: the audit run's snapshot counts them, and lists the host whose results are missing.
    await createRun('syslog-run-1', [P], new Date());
    await runAuditShard({ runId: 'syslog-run-1', project: P });
    const { view } = await loadStatusView({});
    assert.equal(view.syslog?.counts, { arriving: 1, missing: 1 });
    assert.equal(
      view.syslog?.missing.map((h) => [h.name, h.seenAt]),
      [['quiet-1', null]],
    );

    // The evidence report: one column says it per host, with when results were last seen.
    let csv = '';
    await writeEvidence(EVIDENCE_WRITERS.csv, async (chunk) => void (csv += chunk), { project: P });
    const [header, ...rows] = csv
      .trim()
      .split('\r\n')
      .map((r) => r.split(','));
    const col = (name: string) => header!.indexOf(name);
    const row = (name: string) => rows.find((r) => r[col('name')] === name)!;
    assert.is(row('busy-1')[col('syslog')], 'arriving');
    assert.ok(row('busy-1')[col('syslog_seen_at')]);
    assert.is(row('quiet-1')[col('syslog')], 'missing');
    assert.is(row('quiet-1')[col('syslog_seen_at')], '');
  },
);

t.run();
