// What osqueryd really runs (shared/domain/drift.ts): the evidence in a heartbeat line, the drift decided
// from it against what OS Config applied, one host.drifted episode after the grace period, closed on a match.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { driftOf, foldRunning, runningOf, type RunningState } from '../../shared/domain/drift.js';
import { workerSampleOf } from '../../shared/domain/telemetry/log-lines.js';

const t = suite('drift: what osqueryd really runs');
const HOST = { instanceId: '1234567890123', name: 'vm-1', project: 'p', zone: 'us-central1-a' };
const MIN = 60_000;
const T0 = Date.parse('2026-12-07T05:00:00Z');
const OLD = 'v0123456789ab';
const NEW = 'vba9876543210';

const line = (configVersion: string | null, at: number, row: Record<string, string> = {}) => ({
  name: 'heartbeat',
  unixTime: Math.floor(at / 1000),
  decorations: { hostname: 'vm-1', ...(configVersion ? { config_version: configVersion } : {}) },
  snapshot: [
    {
      heartbeat_at: String(Math.floor(at / 1000)),
      osquery_version: '5.23.1',
      config_hash: 'abc',
      config_valid: '1',
      watcher: '812',
      pid: '813',
      start_time: String(Math.floor(T0 / 1000) - 60),
      user_time: '10',
      system_time: '5',
      resident_size: '1000',
      ...row,
    },
  ],
});

t('the heartbeat line carries osquery_info and the config_version decoration; forged values are not trusted', () => {
  const sample = workerSampleOf(line(NEW, T0));
  assert.equal(sample?.running, {
    osqueryVersion: '5.23.1',
    configVersion: NEW,
    configValid: true,
    startTime: Math.floor(T0 / 1000) - 60,
    watcher: true,
    at: T0,
  });
  const forged = runningOf(
    { decorations: { config_version: '<script>' } },
    { osquery_version: 'x', watcher: '-1' },
    T0,
  );
  assert.is(forged.configVersion, null);
  assert.is(forged.osqueryVersion, null);
  assert.is(forged.watcher, false, 'watcher -1: no watchdog');
});

t('drift: another configuration, another release than installed, or an invalid configuration', () => {
  const ev = (over: Partial<ReturnType<typeof runningOf>>) => ({
    ...runningOf(line(NEW, T0), line(NEW, T0).snapshot[0]!, T0),
    ...over,
  });
  assert.is(driftOf(ev({}), { configVersion: NEW, osqueryVersion: '5.23.1-1.linux' }), null);
  assert.is(
    driftOf(ev({ configVersion: OLD }), { configVersion: NEW, osqueryVersion: null }),
    `config-version:${OLD}!=${NEW}`,
  );
  assert.is(
    driftOf(ev({}), { configVersion: NEW, osqueryVersion: '5.24.0-1.linux' }),
    'osquery-version:5.23.1!=5.24.0',
  );
  assert.is(driftOf(ev({ configValid: false }), { configVersion: NEW, osqueryVersion: null }), 'config-invalid');
  assert.is(
    driftOf(ev({ configVersion: null }), { configVersion: NEW, osqueryVersion: null }),
    null,
    'unknown: no drift',
  );
});

t('one host.drifted episode once the drift outlasts the grace period, closed when what runs matches again', () => {
  const applied = { configVersion: NEW, osqueryVersion: '5.23.1-1.linux' };
  let state: RunningState | null = null;
  const opened: number[] = [];
  const closed: number[] = [];
  const step = (version: string, minute: number) => {
    const sample = workerSampleOf(line(version, T0 + minute * MIN))!;
    const { next, episodes } = foldRunning(state, sample.running!, applied, HOST, 15 * MIN);
    if (next) state = next;
    if (episodes.open) opened.push(minute);
    if (episodes.close) closed.push(minute);
    return episodes;
  };
  step(OLD, 0);
  assert.is(state!.drift, `config-version:${OLD}!=${NEW}`);
  assert.is(state!.driftSince?.getTime(), T0);
  step(OLD, 5);
  step(OLD, 10);
  assert.equal(opened, [], 'within the grace period: nothing');
  const e = step(OLD, 15);
  assert.equal(opened, [15]);
  assert.is(e.open!.dedupKey, `host.drifted:${HOST.instanceId}:${T0}`);
  assert.is(e.open!.since.getTime(), T0, 'the episode dates from the first drifted line');
  step(OLD, 20);
  step(OLD, 25);
  assert.equal(opened, [15], 'one episode however long it lasts');
  // An older line delivered late changes nothing.
  assert.is(foldRunning(state, workerSampleOf(line(NEW, T0))!.running!, applied, HOST).next, null);
  step(NEW, 30);
  assert.equal(closed, [30]);
  assert.is(state!.driftSince, null);
  assert.is(state!.driftedSince, null);
  step(NEW, 35);
  assert.equal([opened, closed], [[15], [30]]);
});

t.run();
