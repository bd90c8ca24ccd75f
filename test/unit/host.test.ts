import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  hostRetiredByName,
  planEnrollment,
  planRetirement,
  sameIdentity,
  type Host,
  type HostState,
} from '../../shared/domain/host.js';

const t = suite('host changes (pure)');
const identity = { instanceId: '7', name: 'web', project: 'p', zone: 'z' };
const t0 = new Date('2026-11-01T00:00:00Z');
const t1 = new Date('2026-11-01T01:00:00Z');
const host = (state: HostState, reason: string | null = null): Host => ({
  ...identity,
  state,
  reason,
  stateSince: t0,
  inScope: state !== 'exempt' && state !== 'deleted',
  lastLogAt: null,
  osqueryVersion: '5.23.1',
  configVersion: 'abc',
  updatedAt: t0,
});

t('a new host is created with a first transition', () => {
  const change = planEnrollment(null, identity, { state: 'pending', reason: 'policy-targeted' }, t1, 'c');
  assert.equal(change?.host, {
    ...identity,
    state: 'pending',
    reason: 'policy-targeted',
    stateSince: t1,
    inScope: true,
    lastLogAt: null,
    osqueryVersion: null,
    configVersion: null,
    updatedAt: t1,
  });
  assert.equal(change?.transition, { from: null, to: 'pending', reason: 'policy-targeted', at: t1, cause: 'c' });
});

t('the same decision again writes nothing', () => {
  assert.is(
    planEnrollment(
      host('pending', 'policy-targeted'),
      identity,
      { state: 'pending', reason: 'policy-targeted' },
      t1,
      'c',
    ),
    null,
  );
});

t('blocked -> pending moves the state with a transition', () => {
  const change = planEnrollment(
    host('blocked', 'osconfig-disabled'),
    identity,
    { state: 'pending', reason: 'policy-targeted' },
    t1,
    'c',
  );
  assert.equal(change?.transition, { from: 'blocked', to: 'pending', reason: 'policy-targeted', at: t1, cause: 'c' });
  assert.equal(change?.host.stateSince, t1);
});

t('a changed reason in the same state updates the reason without a transition', () => {
  const change = planEnrollment(
    host('blocked', 'osconfig-disabled'),
    identity,
    { state: 'blocked', reason: 'no-service-account' },
    t1,
    'c',
  );
  assert.is(change?.transition, null);
  assert.equal([change?.host.reason, change?.host.stateSince], ['no-service-account', t0]);
});

t('states the audit owns are never undone by a redelivered insert', () => {
  for (const state of ['compliant', 'reporting', 'silent', 'noncompliant', 'stopped', 'deleted'] as const) {
    assert.is(
      planEnrollment(host(state), identity, { state: 'pending', reason: 'policy-targeted' }, t1, 'c'),
      null,
      state,
    );
  }
});

t('retirement keeps what was known and leaves scope; twice is a no-op', () => {
  const change = planRetirement(host('reporting'), t1, 'c');
  assert.equal(
    [change?.host.state, change?.host.inScope, change?.host.osqueryVersion, change?.transition?.from],
    ['deleted', false, '5.23.1', 'reporting'],
  );
  assert.is(planRetirement(change!.host, t1, 'c'), null);
});

t('retirement keeps the recorded identity', () => {
  const change = planRetirement(host('compliant'), t1, 'c');
  assert.equal(
    [change?.host.instanceId, change?.host.name, change?.host.project, change?.host.zone],
    ['7', 'web', 'p', 'z'],
  );
});

t('retiring a VM never recorded leaves no tombstone', () => {
  assert.is(planRetirement(null, t1, 'c'), null);
});

t('identity: project, zone and name all match', () => {
  assert.ok(sameIdentity(host('compliant'), { project: 'p', zone: 'z', name: 'web' }));
  assert.not.ok(sameIdentity(host('compliant'), { project: 'q', zone: 'z', name: 'web' }));
  assert.not.ok(sameIdentity(host('compliant'), { project: 'p', zone: 'y', name: 'web' }));
  assert.not.ok(sameIdentity(host('compliant'), { project: 'p', zone: 'z', name: 'web-2' }));
});

t('a delete entry without an id retires by name only where nothing else can match', () => {
  const gone = { vmNamed: null, hostVmExists: false };
  assert.equal(hostRetiredByName(['7'], gone), { instanceId: '7' });
  const refused = (ids: string[], evidence?: Parameters<typeof hostRetiredByName>[1]) => {
    const verdict = hostRetiredByName(ids, evidence);
    return verdict.instanceId === null ? verdict.reason : `retires ${verdict.instanceId}`;
  };
  assert.is(refused([], gone), 'no live host has that name');
  assert.is(refused(['7', '8'], gone), '2 live hosts have that name');
  assert.is(refused(['7']), 'Compute was not asked');
  assert.is(refused(['7'], { vmNamed: '7', hostVmExists: true }), "the host's VM still exists under that name");
  assert.is(refused(['7'], { vmNamed: '9', hostVmExists: false }), 'the name is in use by another VM now (instance 9)');
  assert.is(refused(['7'], { vmNamed: null, hostVmExists: true }), "the host's VM still exists under another name");
});

t.run();
