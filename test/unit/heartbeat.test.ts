import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DEFAULT_SILENCE_THRESHOLD_MS,
  identityOf,
  logsFresh,
  parseLogLines,
  planHeartbeat,
  planHeartbeatWrite,
} from '../../shared/domain/heartbeat.js';
import { episodeKey, owedMessages } from '../../shared/domain/alerts.js';
import { episodesFor, type Host, type HostState } from '../../shared/domain/host.js';

const t = suite('heartbeat and alert episodes (pure)');
const now = Date.parse('2026-11-27T12:00:00Z');
const s = (ms: number) => Math.floor(ms / 1000);
const MIN = 60_000;

t("identity comes only from the shipper's attributes", () => {
  assert.equal(identityOf({ gce_instance_id: '123', gce_project_id: 'p', gce_zone: 'z' }), {
    instanceId: '123',
    project: 'p',
    zone: 'z',
  });
  assert.is(identityOf({ hostname: 'web-1' }), null);
  assert.is(identityOf({ gce_instance_id: 'web-1' }), null, 'a name is not an instance id');
});

t('many lines, numbers or numeric strings, out of order; malformed lines next to good ones', () => {
  const lines = [
    JSON.stringify({ name: 'a', unixTime: s(now - 60_000) }),
    JSON.stringify({ name: 'b', unixTime: String(s(now - 10_000)) }),
    '{"broken": ',
    JSON.stringify({ name: 'c', unixTime: s(now - 120_000) }),
    JSON.stringify({ name: 'd', calendarTime: 'Fri Nov 27 11:59:55 2026 UTC' }),
    JSON.stringify({ name: 'no time' }),
    JSON.stringify({ name: 'future', unixTime: s(now + 3_600_000) }),
    '42',
  ].join('\n');
  const parsed = parseLogLines(lines, now);
  assert.equal(parsed, {
    newest: now - 5_000,
    lines: 4,
    malformed: 4,
    telemetry: [],
    rejected: { 'line-malformed': 3, 'line-time-in-future': 1 },
    heartbeats: [],
  });
  assert.equal(parseLogLines(JSON.stringify([{ unixTime: s(now) }, { unixTime: s(now - 1000) }]), now), {
    newest: now,
    lines: 2,
    malformed: 0,
    telemetry: [],
    rejected: {},
    heartbeats: [],
  });
  assert.equal(parseLogLines('', now), {
    newest: null,
    lines: 0,
    malformed: 0,
    telemetry: [],
    rejected: {},
    heartbeats: [],
  });
});

const host = (state: string, lastLogAt: number | null) => ({
  state,
  lastLogAt: lastLogAt === null ? null : new Date(lastLogAt),
});
const WINDOW = 60_000;
const SILENCE = 15 * 60_000;

t('lastLogAt never moves backwards and is written once per window', () => {
  assert.equal(
    planHeartbeat(host('reporting', now - 1000), now - 5000, null, now, WINDOW, SILENCE),
    { write: false, endsSilence: false },
    'older line',
  );
  assert.equal(
    planHeartbeat(host('reporting', now - 1000), now - 1000, null, now, WINDOW, SILENCE),
    { write: false, endsSilence: false },
    'duplicate',
  );
  assert.equal(
    planHeartbeat(host('reporting', now - 90_000), now, now - 30_000, now, WINDOW, SILENCE),
    { write: false, endsSilence: false },
    'written 30 s ago',
  );
  assert.equal(planHeartbeat(host('reporting', now - 90_000), now, now - 61_000, now, WINDOW, SILENCE), {
    write: true,
    endsSilence: false,
  });
  assert.equal(
    planHeartbeat(host('compliant', null), now, null, now, WINDOW, SILENCE),
    { write: true, endsSilence: false },
    'the first line',
  );
  assert.equal(
    planHeartbeat(null, now, null, now, WINDOW, SILENCE),
    { write: false, endsSilence: false },
    'unknown host',
  );
});

t('the line that ends a silent episode is written at once', () => {
  assert.equal(planHeartbeat(host('silent', now - 3_600_000), now, now - 1000, now, WINDOW, SILENCE), {
    write: true,
    endsSilence: true,
  });
});

t('an old backlog line moves lastLogAt forward but ends no silent episode; a fresh one does', () => {
  const silent = host('silent', now - 3 * 3_600_000);
  assert.equal(
    planHeartbeat(silent, now - 2 * 3_600_000, null, now, MIN, SILENCE),
    { write: true, endsSilence: false },
    'a line from two hours ago: the host is not reporting now',
  );
  assert.equal(
    planHeartbeat(silent, now - 2 * 3_600_000, now - 10_000, now, MIN, SILENCE),
    { write: false, endsSilence: false },
    'and it waits for the write window like any line',
  );
  assert.equal(planHeartbeat(silent, now - SILENCE, now - 10_000, now, MIN, SILENCE), {
    write: true,
    endsSilence: true,
  });
  assert.equal(
    planHeartbeat(host('silent', null), now - SILENCE - 1, null, now, MIN, SILENCE),
    { write: true, endsSilence: false },
    'never reported, then a backlog: still silent',
  );
});

t("a line ends silence exactly when it is fresh by the audit's rule (logsFresh, used by reconcile too)", () => {
  for (const age of [SILENCE - 1, SILENCE, SILENCE + 1]) {
    const line = now - age;
    assert.is(logsFresh(line, now, SILENCE), age <= SILENCE);
    const ends = planHeartbeat(host('silent', line - MIN), line, null, now, MIN, SILENCE).endsSilence;
    assert.is(ends, logsFresh(line, now, SILENCE), `${age} ms old`);
  }
});

t('planHeartbeatWrite: a silent host with a backlog line writes lastLogAt and stays silent', () => {
  const base: Host = {
    instanceId: '9',
    name: 'web',
    project: 'p',
    zone: 'z',
    state: 'silent',
    reason: 'logs-stopped',
    stateSince: new Date(now - 3_600_000),
    inScope: true,
    lastLogAt: new Date(now - 3 * 3_600_000),
    osqueryVersion: null,
    configVersion: null,
    updatedAt: new Date(now - 3_600_000),
  };
  const pending = { newest: now - 2 * 3_600_000, samples: [], snapshots: [] };
  const old = planHeartbeatWrite(
    { ...base, osqueryd: null, querySchedule: null },
    pending,
    null,
    new Date(now),
    MIN,
    'c',
  );
  assert.equal(old, {
    write: 'update',
    fields: { lastLogAt: new Date(now - 2 * 3_600_000), updatedAt: new Date(now) },
    change: null,
    episodes: {},
    stats: [],
  });
  const fresh = { ...pending, newest: now - MIN };
  const back = planHeartbeatWrite(
    { ...base, osqueryd: null, querySchedule: null },
    fresh,
    null,
    new Date(now),
    MIN,
    'c',
  );
  assert.is(back.write === 'update' && back.change?.host.state, 'reporting');
  assert.is(DEFAULT_SILENCE_THRESHOLD_MS, 16.5 * MIN);
});

const H = (state: HostState, since: string, reason: string | null = null): Host => ({
  instanceId: '9',
  name: 'web',
  project: 'p',
  zone: 'z',
  state,
  reason,
  stateSince: new Date(since),
  inScope: true,
  lastLogAt: null,
  osqueryVersion: null,
  configVersion: null,
  updatedAt: new Date(since),
});

t('entering an alerting state opens an episode dated by the state; leaving it closes that one', () => {
  const before = H('reporting', '2026-11-27T10:00:00Z');
  const silent = H('silent', '2026-11-27T11:00:00Z', 'logs-stopped');
  const open = episodesFor(before, silent, {
    from: 'reporting',
    to: 'silent',
    reason: 'logs-stopped',
    at: silent.stateSince,
    cause: 'audit',
  });
  assert.equal(open.open?.dedupKey, episodeKey('host.silent', '9', '2026-11-27T11:00:00Z'));
  assert.is(open.open?.severity, 'critical');
  assert.is(open.close, undefined);
  const back = H('reporting', '2026-11-27T11:30:00Z');
  const close = episodesFor(silent, back, {
    from: 'silent',
    to: 'reporting',
    reason: null,
    at: back.stateSince,
    cause: 'logHeartbeat',
  });
  assert.equal(close.close, {
    kind: 'host.silent',
    instanceId: '9',
    previousSince: silent.stateSince,
    at: back.stateSince,
  });
  assert.is(close.open, undefined);
  const worse = episodesFor(H('blocked', '2026-11-27T09:00:00Z', 'x'), H('noncompliant', '2026-11-27T12:00:00Z', 'y'), {
    from: 'blocked',
    to: 'noncompliant',
    reason: 'y',
    at: new Date('2026-11-27T12:00:00Z'),
    cause: 'c',
  });
  assert.ok(worse.open && worse.close, 'blocked -> noncompliant closes one and opens another');
  assert.equal(episodesFor(before, before, null), {}, 'no transition, no episode');
  assert.equal(
    episodesFor(H('pending', '2026-11-27T09:00:00Z'), H('stopped', '2026-11-27T12:00:00Z'), {
      from: 'pending',
      to: 'stopped',
      reason: null,
      at: new Date(),
      cause: 'c',
    }),
    {},
    'stopped never alerts',
  );
});

t('what an episode owes: nothing without a firing record; a firing before its resolution', () => {
  const sent = new Date();
  assert.equal(owedMessages({ resolved: { sentAt: null } }), { firing: false, resolved: false }, 'never fired');
  assert.equal(owedMessages({ kind: 'host.silent', firing: { sentAt: null }, resolved: null }), {
    firing: true,
    resolved: false,
  });
  assert.equal(owedMessages({ kind: 'host.silent', firing: { sentAt: null }, resolved: {} }), {
    firing: true,
    resolved: true,
  });
  assert.equal(owedMessages({ kind: 'host.silent', firing: { sentAt: sent }, resolved: {} }), {
    firing: false,
    resolved: true,
  });
  assert.equal(
    owedMessages({ kind: 'host.silent', firing: { sentAt: sent }, resolved: { sentAt: sent } }),
    { firing: false, resolved: false },
    'closed twice: the resolution already sent is not owed again',
  );
});

t.run();
