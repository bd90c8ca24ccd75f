// The rollout guard against an operator in a hurry and a race (issue 20), on the local stack: an audit that
// read the world before a decision, a missing record, publish --all-at-once of a version under way or
// halted, a version republished after its object was deleted, a gate that must count only what it judges,
// a project whose audits keep failing, a domain-scoped project id. Each failed on 4797a44.
import * as assert from 'uvu/assert';
import { captureLogs, type Stack } from './helpers/stack.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { clients } from '../shared/clients.js';
import { config, renderSettings, resetConfig } from '../shared/config.js';
import { publish } from '../shared/usecases/publish.js';
import { runAuditShard } from '../shared/usecases/audit.js';
import { runCommand } from '../shared/usecases/rollout.js';
import { beginAudit } from '../shared/usecases/audit/context.js';
import { readWorld } from '../shared/usecases/audit/read.js';
import { heal } from '../shared/usecases/audit/heal.js';
import { decideHosts } from '../shared/domain/audit.js';
import { createRun, getProjectResult } from '../shared/adapters/audits.js';
import { getRollout, readCurrent, recordHostCounts } from '../shared/adapters/rollouts.js';
import { loadBundle } from '../shared/osquery/bundle.js';
import { renderBundle } from '../shared/osquery/render.js';
import {
  CANARY,
  P,
  PLAN,
  Timeline,
  baselineThenTarget,
  bundleVariant,
  record,
  rolloutSuite,
  startTarget,
  zoneVersions,
} from './helpers/rollout.js';

const t = rolloutSuite('rollout guard: races, missing records, an operator in a hurry');

const who = { by: 'carol', reason: 'customer report' };

t('an audit that read the world before a rollback does not move the canary back to the target', async ({ stack }) => {
  let target = '';
  const timeline = new Timeline(stack, () => target);
  const baseline = await baselineThenTarget(timeline);
  target = (await startTarget(timeline, 7200)).configVersion;
  assert.is(zoneVersions(stack).get(CANARY), target);

  // The audit reads the world while the canary runs the target...
  const audit = beginAudit(P, { now: timeline.at(), cause: 'test' });
  const world = await readWorld(audit);
  assert.is(world.versionOfZone(CANARY), target, 'read before the decision');
  // ...the canary's zone record is not SUCCEEDED yet, so heal checks the zone...
  assert.is.not(world.zoneRollouts[CANARY]?.rolloutState, 'SUCCEEDED');
  const plans = decideHosts(world, audit);
  // ...an operator rolls back meanwhile...
  await runCommand('rollback', who, { now: timeline.at() });
  assert.is(zoneVersions(stack).get(CANARY), baseline, 'the rollback moved the canary');
  // ...and the audit's heal, from what it read, must not undo it.
  await heal(world, plans, audit);
  assert.is(zoneVersions(stack).get(CANARY), baseline, 'the newer decision wins');
  for (const [zone, version] of zoneVersions(stack)) assert.is(version, baseline, zone);
});

t(
  'a missing rollouts/{current} strips nothing: the zones are refused loudly, the hosts recorded',
  async ({ stack }) => {
    const timeline = new Timeline(stack, () => '');
    const baseline = await baselineThenTarget(timeline);
    const before = zoneVersions(stack);
    assert.is(before.size, 10);
    await clients.firestore().collection('rollouts').doc(baseline).delete();

    const runId = `missing-${timeline.t0}`;
    await createRun(runId, [P], timeline.at(3));
    const { result, logs } = await captureLogs(() => runAuditShard({ runId, project: P }, timeline.at(3)));
    assert.is(result, 'done', 'the project audit succeeds');
    assert.is((await getProjectResult(runId, P))?.status, 'succeeded');
    assert.equal(zoneVersions(stack), before, 'every zone keeps its configuration');
    assert.ok(
      logs.some((l) => l.severity === 'ERROR' && l.message.includes(`rollouts/${baseline} is missing`)),
      'said loudly',
    );
  },
);

t('publish --all-at-once of the version under way completes it: every zone gets it now', async ({ stack }) => {
  let target = '';
  const timeline = new Timeline(stack, () => target);
  await baselineThenTarget(timeline);
  const dir = bundleVariant(7200);
  target = (await publish({ projects: [P], plan: PLAN, bundleDir: dir, now: timeline.at() })).configVersion;
  assert.is((await record(target)).status, 'running');
  const report = await publish({
    projects: [P],
    plan: PLAN,
    bundleDir: dir,
    allAtOnce: true,
    now: timeline.at(),
    actor: { by: 'dave', reason: 'incident: needed everywhere' },
  });
  assert.is(report.rollout.status, 'completed');
  const r = await record(target);
  assert.is(r.status, 'completed');
  assert.is(r.history.at(-1)?.action, 'published-all-at-once');
  assert.equal(await readCurrent().then((c) => [c.configVersion, c.rollout]), [target, null]);
  for (const [zone, version] of zoneVersions(stack)) assert.is(version, target, zone);
});

t('publish --all-at-once of the halted version ends its halt: one resolved rollout.halted', async ({ stack }) => {
  const alerts = await subscribe(config().ALERT_TOPIC, `guard-halt-${Date.now()}`);
  let target = '';
  const timeline = new Timeline(stack, () => target);
  await baselineThenTarget(timeline);
  const dir = bundleVariant(5400);
  target = renderBundle(await loadBundle(dir), renderSettings()).configVersion;
  await stack.control('PUT', `/versions/${target}/bad`, { policyFailing: true });
  await publish({ projects: [P], plan: PLAN, bundleDir: dir, now: timeline.at() });
  for (let i = 0; i < 12 && (await record(target)).status === 'running'; i++) await timeline.run();
  const halted = await record(target);
  assert.is(halted.status, 'halted');
  await drain(alerts);

  await publish({
    projects: [P],
    plan: PLAN,
    bundleDir: dir,
    allAtOnce: true,
    now: timeline.at(),
    actor: { by: 'dave', reason: 'the failure is expected on this fleet' },
  });
  assert.is((await record(target)).status, 'completed');
  const episode = (await clients.firestore().collection('alerts').doc(halted.halt!.dedupKey).get()).data();
  assert.ok(episode?.resolved, 'the halt episode is resolved');
  const sent = (await drain(alerts)).map((m) => m.data as { kind: string; status: string });
  assert.equal(
    sent.filter((m) => m.kind === 'rollout.halted').map((m) => m.status),
    ['resolved'],
  );
});

t(
  'a version republished after its object was deleted pins the new generation, in its record and every zone',
  async ({ stack }) => {
    const first = await publish({ projects: [P], plan: PLAN });
    const recorded = (await getRollout(first.configVersion))!;
    const stored = recorded.files.filter((f) => f.object);
    assert.ok(stored.length > 0, 'the bundle has files in Cloud Storage');
    // Someone deletes one object of the published version.
    const gone = stored[0]!;
    stack.sim.world.objects.delete(`${recorded.bucket}/${gone.object}`);

    const again = await publish({ projects: [P], plan: PLAN, actor: { by: 'erin', reason: 'object deleted' } });
    assert.is(again.configVersion, first.configVersion);
    assert.is(again.uploaded, 1, 'the missing object is uploaded again');
    const repaired = (await getRollout(first.configVersion))!;
    const now = repaired.files.find((f) => f.source === gone.source)!;
    assert.is.not(now.generation, gone.generation, 'the record pins the new generation');
    for (const a of stack.sim.world.assignments.values()) {
      const pins = JSON.stringify(a.body);
      assert.ok(pins.includes(`"generation":"${now.generation}"`), `${a.project}/${a.zone} pins the new generation`);
    }
  },
);

t('the incidents gate counts only what it judges: other episodes never make it hold', async ({ stack }) => {
  let target = '';
  const timeline = new Timeline(stack, () => target);
  await baselineThenTarget(timeline);
  target = (await startTarget(timeline, 7200)).configVersion;
  // A busy fleet: more than a listing's worth of host.performance episodes the gate does not judge
  // (osqueryd's own, and Cloud Monitoring's on hosts of another project), all begun after the canary started.
  const db = clients.firestore();
  for (let chunk = 0; chunk < 3; chunk++) {
    const batch = db.batch();
    for (let i = 0; i < 400; i++) {
      const n = chunk * 400 + i;
      batch.set(db.collection('alerts').doc(`host.performance:other-${n}`), {
        dedupKey: `host.performance:other-${n}`,
        kind: 'host.performance',
        severity: 'warning',
        source: n % 2 ? 'osquery' : 'monitoring',
        host: { instanceId: `9${n}`, name: `other-${n}`, project: 'other-project', zone: 'us-central1-a' },
        reason: 'busy',
        since: timeline.at(3),
        firing: { at: timeline.at(3), sentAt: timeline.at(3) },
        resolved: null,
        owed: false,
      });
    }
    await batch.commit();
  }
  for (let i = 0; i < 8 && (await record(target)).stage === 0; i++) await timeline.run();
  const r = await record(target);
  const incidents = r.evaluation!.gates.find((g) => g.gate === 'incidents')!;
  assert.is(incidents.capped, false, 'not a lower bound');
  assert.is(incidents.count, 0);
  assert.ok(r.stage > 0 || r.status === 'completed', `promoted past the canary (${r.evaluation!.next.reason})`);
});

t(
  'a project whose audits keep failing holds the rollout, says why, and raises rollout.stalled once',
  async ({ stack }) => {
    const alerts = await subscribe(config().ALERT_TOPIC, `guard-stall-${Date.now()}`);
    let target = '';
    const timeline = new Timeline(stack, () => target);
    await baselineThenTarget(timeline);
    target = (await startTarget(timeline, 7200)).configVersion;
    await timeline.run(); // audited once after the stage started
    await drain(alerts);
    // Audits ten minutes apart; a bound of 15 minutes ends before the canary's 30-minute bake does.
    process.env.ROLLOUT_EVIDENCE_MAX_AGE_MINUTES = '15';
    resetConfig();
    await stack.control('POST', '/faults', { deniedProjects: [P] });
    try {
      for (let i = 0; i < 5; i++) await timeline.run();
    } finally {
      delete process.env.ROLLOUT_EVIDENCE_MAX_AGE_MINUTES;
      resetConfig();
    }
    const held = await record(target);
    assert.is(held.stage, 0, 'not promoted on the old snapshot');
    assert.is(held.evaluation!.next.action, 'hold');
    assert.match(held.evaluation!.next.reason, new RegExp(`${P}: last audited \\d+ min ago; its audit fails: `));
    assert.ok(held.stall, 'the stall is recorded on the rollout');
    const stalled = (await drain(alerts)).map((m) => m.data as { kind: string; status: string });
    assert.equal(
      stalled.filter((m) => m.kind === 'rollout.stalled').map((m) => m.status),
      ['firing'],
      'one rollout.stalled, however many runs hold',
    );

    await stack.control('POST', '/faults', { deniedProjects: [] });
    await timeline.run();
    assert.is((await record(target)).stall, null);
    const resolved = (await drain(alerts)).map((m) => m.data as { kind: string; status: string });
    assert.equal(
      resolved.filter((m) => m.kind === 'rollout.stalled').map((m) => m.status),
      ['resolved'],
    );
  },
);

t('host counts of a domain-scoped project are kept under its whole id', async ({ stack }: { stack: Stack }) => {
  void stack;
  const first = await publish({ projects: [P], plan: PLAN });
  await recordHostCounts(first.configVersion, 'example.com:acme', { reporting: 3 });
  const r = await getRollout(first.configVersion);
  assert.equal(r?.hostCounts?.['example.com:acme'], { reporting: 3 });
});

t.run();
