// The simulated syslog path (infra/local/simulator/syslog.ts) with the bundle's own flags: rsyslog opens
// the pipe only when it starts, osqueryd reads at the rate limit and keeps its buffer bounded, the syslog
// query reads what arrived since its last run, and what that costs the worker shows in its heartbeat.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadBundle } from '../../shared/osquery/bundle.js';
import { renderBundle } from '../../shared/osquery/render.js';
import { SYSLOG_QUERY } from '../../shared/osquery/log-routing.js';
import { workerSampleOf, type WorkerSample } from '../../shared/domain/telemetry/log-lines.js';
import { cpuStep } from '../../shared/domain/telemetry/osqueryd.js';
import {
  DEFAULT_CPU_PERCENT,
  DEFAULT_RSS_BYTES,
  resolveCosts,
  runRound,
  scheduleFromFiles,
  startWorker,
  newOsqueryd,
  type ShippedLine,
} from '../../infra/local/simulator/osqueryd.js';
import {
  SYSLOG_COSTS,
  connected,
  logMessages,
  newSyslog,
  offerLoad,
  osquerydStarted,
  readRows,
  startRsyslog,
  syslogSettingsOf,
  type SyslogSettings,
} from '../../infra/local/simulator/syslog.js';

const t = suite<{ files: Record<string, string>; version: string; settings: SyslogSettings }>('simulated syslog');
const PIPE = '/var/osquery/syslog_pipe';
const T0 = Date.parse('2026-11-27T12:00:00Z');

t.before(async (ctx) => {
  const rendered = renderBundle(await loadBundle(), { logTopic: 'l', logTopicProject: 'p' });
  ctx.files = Object.fromEntries(rendered.files.map((f) => [f.vmPath, f.content]));
  ctx.version = rendered.configVersion;
  ctx.settings = syslogSettingsOf(ctx.files)!;
});

t("the bundle's flags as osqueryd reads them: its pipe, 250 lines a second, a 20-minute buffer", ({ settings }) => {
  assert.equal(settings, { pipe: PIPE, perSecond: 250, expirySeconds: 1200, maxSeconds: 1200 });
  assert.is(syslogSettingsOf({ '/etc/osquery/osquery.flags': '--enable_syslog=false\n' }), null);
  assert.is(
    syslogSettingsOf({ '/etc/osquery/osquery.flags': '--enable_syslog=true\n' })?.perSecond,
    500,
    'default 100',
  );
});

t('rsyslog that started before the pipe existed reads nothing until it restarts', ({ files, settings }) => {
  const syslog = newSyslog('ubuntu-2204');
  syslog.rules['/etc/rsyslog.d/60-osquery.conf'] = files['/etc/rsyslog.d/60-osquery.conf']!;
  assert.ok(syslog.rsyslog.running, 'started at boot');
  osquerydStarted(syslog, settings);
  assert.equal(syslog.pipes, [PIPE]);
  assert.not.ok(connected(syslog, settings));
  const at = new Date(T0);
  assert.is(logMessages(syslog, settings, 'h', [{ message: 'a' }], at), 0);
  assert.is(syslog.dropped, 1);
  startRsyslog(syslog);
  assert.ok(connected(syslog, settings));
  assert.is(logMessages(syslog, settings, 'h', [{ message: 'b' }], at), 1);
  assert.equal(
    readRows(syslog, 'h').map((r) => r.message),
    ['b'],
  );
  assert.equal(readRows(syslog, 'h'), [], 'read once');
  // A rule naming another pipe never connects.
  const other = newSyslog('debian-12');
  other.rules['/etc/rsyslog.d/x.conf'] = '*.* action(type="ompipe" Pipe="/tmp/elsewhere")\n';
  osquerydStarted(other, settings);
  startRsyslog(other);
  assert.not.ok(connected(other, settings));
});

t('the rate limit per second, and the buffer bounded by the expiry', ({ settings }) => {
  const syslog = newSyslog('debian-12');
  syslog.rules.r = `*.* action(type="ompipe" Pipe="${PIPE}")`;
  osquerydStarted(syslog, settings);
  startRsyslog(syslog);
  const burst = Array.from({ length: 400 }, (_, i) => ({ message: `m${i}` }));
  assert.is(logMessages(syslog, settings, 'h', burst, new Date(T0)), 250, 'one second: 250 lines at most');
  assert.is(logMessages(syslog, settings, 'h', burst.slice(0, 10), new Date(T0 + 500)), 0, 'the same second');
  assert.is(logMessages(syslog, settings, 'h', burst.slice(0, 10), new Date(T0 + 1000)), 10, 'the next second');
  assert.is(syslog.dropped, 150 + 10);
  // A steady 1,000 lines a second for 30 minutes unread: osqueryd keeps 20 minutes of what it ingested.
  syslog.buffer = [];
  syslog.linesPerSecond = 1000;
  syslog.loadTo = T0 / 1000;
  assert.is(offerLoad(syslog, settings, new Date(T0 + 1800_000)), 250 * 1800);
  const kept = syslog.buffer.reduce((n, b) => n + b.count, 0);
  assert.is(kept, 250 * 1200);
  assert.is(readRows(syslog, 'h').length, kept);
});

t(
  'a busy host: the syslog query reads 75,000 rows a run, its cost in CPU and memory within the gates',
  ({ files, version, settings }) => {
    const os = newOsqueryd();
    const worker = startWorker(scheduleFromFiles(files), version, new Date(T0));
    os.worker = worker;
    assert.ok(worker.schedule.find((q) => q.name === SYSLOG_QUERY)?.readsSyslog);
    const syslog = newSyslog('debian-12');
    syslog.rules.r = files['/etc/rsyslog.d/60-osquery.conf']!;
    osquerydStarted(syslog, settings);
    startRsyslog(syslog);
    syslog.linesPerSecond = 1000;
    syslog.loadTo = T0 / 1000;
    const costs = resolveCosts(new Map(), version, os);
    const rounds: ShippedLine[][] = [];
    for (let i = 1; i <= 4; i++) {
      const at = new Date(T0 + i * 300_000);
      offerLoad(syslog, settings, at);
      const ingested = syslog.unbilled;
      syslog.unbilled = 0;
      rounds.push(
        runRound({ id: '1', name: 'busy' }, worker, costs, at, Math.random, {
          ingested,
          read: () => readRows(syslog, 'busy'),
        }),
      );
    }
    const syslogLines = (r: ShippedLine[]) => r.filter((l) => l.attributes.osquery_name === SYSLOG_QUERY).length;
    assert.equal(rounds.map(syslogLines), [75_000, 75_000, 75_000, 75_000], 'five minutes at the rate limit a run');
    assert.is(syslog.dropped, 750 * 1200, 'the rest is dropped at the pipe');
    const samples = rounds
      .flat()
      .map((l) => workerSampleOf(l.line))
      .filter((s): s is WorkerSample => s !== null);
    const step = cpuStep(samples[1]!, samples[2]!);
    assert.is(step.kind, 'interval');
    const perLine = SYSLOG_COSTS.ingestMsPerLine + SYSLOG_COSTS.readMsPerLine;
    const expected = DEFAULT_CPU_PERCENT + (250 * perLine) / 10;
    if (step.kind === 'interval') assert.ok(Math.abs(step.cpuPercent - expected) < 0.3, `${step.cpuPercent}%`);
    const rss = samples.at(-1)!.rssBytes;
    assert.ok(Math.abs(rss - (DEFAULT_RSS_BYTES + 75_000 * SYSLOG_COSTS.rssBytesPerRow)) < 2 * 1024 * 1024, `${rss}`);
    assert.ok(expected < 25 && rss < 512 * 1024 * 1024, "within the canary's osquerydCpu and osquerydMemory gates");
  },
);

t.run();
