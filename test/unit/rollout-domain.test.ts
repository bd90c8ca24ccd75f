// The progressive rollout's pure parts: the plan (validation, stages resolved to zones), which version a
// zone gets, the gates and the next action, and the decisions.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PlanInvalid, parsePlan, resolveStages, type FleetZone } from '../../shared/domain/rollout-plan.js';
import {
  RolloutRefused,
  decide,
  evaluateRollout,
  newRollout,
  planOfZones,
  type RolloutEvidence,
  type StagedRollout,
} from '../../shared/domain/rollout.js';
import { planText } from '../helpers/rollout-plan.js';

const t = suite('rollout (pure)');
const MIN = 60_000;
const T0 = new Date('2026-11-28T08:00:00Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * MIN);

const PLAN = parsePlan(
  planText([
    { name: 'canary', select: { label: 'osquery-ring=canary' }, bakeMinutes: 30 },
    { name: '25%', select: { percent: 25 }, bakeMinutes: 30 },
    { name: '100%', select: { percent: 100 }, bakeMinutes: 30 },
  ]),
  'plan',
);
const fleet: FleetZone[] = Array.from({ length: 8 }, (_, i) => ({
  project: 'p',
  zone: `us-east1-${'bcdfghjk'[i]}`,
  hosts: 10,
  labels: new Set(i === 3 ? ['osquery-ring=canary'] : []),
}));

t('plan: every problem named with its stage and field', () => {
  const problems = (text: string) => {
    try {
      parsePlan(text, 'rollout.json');
    } catch (error) {
      assert.instance(error, PlanInvalid);
      return (error as PlanInvalid).problems;
    }
    throw new Error('the plan was not refused');
  };
  assert.equal(
    problems(
      planText([
        { name: 'a', select: { percent: 50 }, bakeMinutes: 5, bake: 5 },
        { name: 'b', select: { percent: 40 }, bakeMinutes: 5 },
      ]),
    ),
    [
      'stages[0] (a): Unrecognized key: "bake"',
      'stages[1] (b).select.percent: percent 40 does not grow (an earlier stage already reaches 50%)',
      'stages[1] (b).select: the last stage must reach every zone: select {"percent": 100}',
    ],
  );
  const empty = [
    { name: 'a', select: {}, bakeMinutes: 5 },
    { name: 'all', select: { percent: 100 }, bakeMinutes: 5 },
  ];
  assert.equal(problems(planText(empty)), [
    'stages[0] (a).select: select exactly one of zones, projects, label or percent (an empty stage selects nothing)',
  ]);
  assert.match(
    problems(
      planText([{ name: 'a', select: { percent: 100 }, bakeMinutes: 5 }], {
        observe: { minPercent: 101, minHosts: 0 },
      }),
    )[0]!,
    /^observe\.minPercent: minPercent: a percentage from 0 to 100$/,
  );
  assert.equal(problems('{'), [`not JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2)`]);
});

t('stages: a zone belongs to the first stage that selects it; percentages are cumulative and deterministic', () => {
  const r = resolveStages(PLAN, 'v1', fleet);
  assert.equal(
    r.stages.map((s) => [s.name, s.zones.length, s.hosts]),
    [
      ['canary', 1, 10],
      ['25%', 1, 10],
      ['100%', 6, 60],
    ],
  );
  assert.equal(r.stages[0]!.zones, ['p/us-east1-f']);
  assert.is(new Set(r.stages.flatMap((s) => s.zones)).size, 8, 'every zone once');
  assert.equal(resolveStages(PLAN, 'v1', fleet), r, 'the same publish picks the same zones');
  assert.not.equal(
    resolveStages(PLAN, 'v2', fleet).stages[1]!.zones,
    r.stages[1]!.zones,
    'another version, another pick',
  );
  const noCanary = resolveStages(
    PLAN,
    'v1',
    fleet.map((z) => ({ ...z, labels: new Set<string>() })),
  );
  assert.equal(noCanary.skipped, [
    { name: 'canary', reason: 'no in-scope VM carries osquery-ring=canary in a zone not already taken' },
  ]);
});

function rollout(): StagedRollout {
  const { stages, skipped } = resolveStages(PLAN, 'v2', fleet);
  return newRollout({
    version: 'v2',
    baseline: 'v1',
    stages,
    skipped,
    observe: PLAN.observe,
    actor: { by: 'alice', reason: 'new queries' },
    now: T0,
  });
}

/** Evidence: each zone's hosts on `version` in `state` (an audit at `auditAt`), and hosts in trouble. */
function evidence(
  r: StagedRollout,
  auditAt: Date,
  onTarget: (zone: string) => boolean,
  trouble: Partial<RolloutEvidence> = {},
): RolloutEvidence {
  const zones: Record<string, Record<string, number>> = {};
  const zoneVersions: Record<string, Record<string, Record<string, number>>> = {};
  for (const z of fleet) {
    zones[z.zone] = { reporting: 10 };
    zoneVersions[z.zone] = { [onTarget(`p/${z.zone}`) ? r.configVersion : 'v1']: { reporting: 10 } };
  }
  return {
    snapshots: { p: { at: auditAt.toISOString(), zones, zoneVersions } },
    noncompliant: [],
    silent: [],
    incidents: [],
    cpu: [],
    memory: [],
    denylisted: [],
    capped: [],
    ...trouble,
  };
}

t('which version a zone gets: the target in the stages reached while running or paused, else current', () => {
  const r = rollout();
  const of = planOfZones('v1', r);
  assert.is(of(r.stages[0]!.zones[0]!), 'v2');
  assert.is(of(r.stages[1]!.zones[0]!), 'v1', 'a stage not reached');
  assert.is(of('p/asia-east1-a'), 'v1', 'a zone new since the rollout started');
  const halted = { ...r, status: 'halted' as const };
  assert.is(planOfZones('v1', halted)(r.stages[0]!.zones[0]!), 'v1', 'a halted rollout: every zone on current');
});

t('the next action: hold for an audit after the stage started, for the bake; promote; complete', () => {
  let r = rollout();
  const reached = (k: string) => r.stages.slice(0, r.stage + 1).some((s) => s.zones.includes(k));
  assert.match(evaluateRollout(r, evidence(r, at(-5), reached), at(10)).next.reason, /waiting for an audit of p/);
  const baking = evaluateRollout(r, evidence(r, at(10), reached), at(10));
  assert.equal(baking.next, { action: 'hold', reason: 'stage canary bakes 20 min more' });
  assert.ok(baking.gates.every((g) => g.passed));
  const ready = evaluateRollout(r, evidence(r, at(31), reached), at(31));
  assert.is(ready.next.action, 'promote');
  r = decide(r, { kind: 'promote' }, { by: 'controller', reason: '' }, at(31));
  assert.is(r.stage, 1);
  assert.is(r.revision, 2);
  assert.equal(r.stages[1]!.startedAt, at(31));
  r = decide(r, { kind: 'promote' }, { by: 'controller', reason: '' }, at(62));
  const last = evaluateRollout(r, evidence(r, at(93), reached), at(93));
  assert.is(last.next.action, 'complete');
  const done = decide(r, { kind: 'complete' }, { by: 'controller', reason: '' }, at(93));
  assert.is(done.status, 'completed');
  assert.equal(
    done.history.map((h) => [h.action, h.stage]),
    [
      ['started', 'canary'],
      ['promoted', '25%'],
      ['promoted', '100%'],
      ['completed', '100%'],
    ],
  );
});

t('while the heartbeat pipeline is behind, the silent gate holds instead of halting; other gates still halt', () => {
  const r = rollout();
  const zone = r.stages[0]!.zones[0]!.split('/')[1]!;
  const inCanary = (k: string) => k === r.stages[0]!.zones[0];
  const silent = [{ instanceId: '1', name: 'h1', project: 'p', zone, at: at(5) }];
  const halted = evaluateRollout(r, evidence(r, at(40), inCanary, { silent }), at(40));
  assert.is(halted.next.action, 'halt');
  const behind = evaluateRollout(r, evidence(r, at(40), inCanary, { silent, pipelineBehind: true }), at(40));
  assert.equal(behind.next, {
    action: 'hold',
    reason: 'the heartbeat pipeline is behind (pipeline.backlog): the silent gate waits',
  });
  const clean = evaluateRollout(r, evidence(r, at(40), inCanary, { pipelineBehind: true }), at(40));
  assert.is(clean.next.action, 'hold', 'no promotion on evidence the pipeline has not delivered');
  const noncompliant = evaluateRollout(
    r,
    evidence(r, at(40), inCanary, { noncompliant: silent, pipelineBehind: true }),
    at(40),
  );
  assert.is(noncompliant.next.action, 'halt');
});

t('a gate halts at once; trouble from before the stage started is not the target', () => {
  const r = rollout();
  const zone = r.stages[0]!.zones[0]!.split('/')[1]!;
  const host = (n: number, minutes: number) => ({
    instanceId: `${n}`,
    name: `h${n}`,
    project: 'p',
    zone,
    at: at(minutes),
  });
  const inCanary = (k: string) => k === r.stages[0]!.zones[0];
  const before = evaluateRollout(r, evidence(r, at(10), inCanary, { noncompliant: [host(1, -60)] }), at(10));
  assert.ok(before.gates.find((g) => g.gate === 'noncompliant')!.passed, 'noncompliant since before the rollout');
  const bad = evaluateRollout(r, evidence(r, at(10), inCanary, { noncompliant: [host(1, 5)] }), at(10));
  const gate = bad.gates.find((g) => g.gate === 'noncompliant')!;
  assert.equal([gate.value, gate.threshold, gate.passed, gate.count], [10, 5, false, 1]);
  assert.is(bad.next.action, 'halt');
  const denied = evaluateRollout(
    r,
    evidence(r, at(10), inCanary, { denylisted: [{ query: 'pack_x_y', windows: { h2026112808: 1 } }] }),
    at(10),
  );
  assert.equal(denied.gates.find((g) => g.gate === 'denylistedQueries')!.queries, ['pack_x_y']);
  assert.is(denied.next.action, 'halt');
  const halted = decide(r, { kind: 'halt', gate, dedupKey: 'k' }, { by: 'controller', reason: '' }, at(10));
  assert.equal(
    [halted.status, halted.halt!.gate, halted.halt!.value, halted.halt!.stage],
    ['halted', 'noncompliant', 10, 'canary'],
  );
  assert.throws(
    () => decide(halted, { kind: 'halt', gate, dedupKey: 'k' }, { by: 'controller', reason: '' }, at(11)),
    (e: unknown) => e instanceof RolloutRefused,
  );
  assert.throws(() => decide(halted, { kind: 'promote' }, { by: 'bob', reason: 'x' }, at(11)), /resume it first/);
  const resumed = decide(halted, { kind: 'resume' }, { by: 'bob', reason: 'fixed upstream' }, at(20));
  assert.equal([resumed.status, resumed.resumedAt], ['running', at(20)]);
});

// --- The guard judges what is true now (issue 20: each failed on 4797a44) ------------------------------------

const canaryHost = (
  r: StagedRollout,
  n: number,
  minutes: number,
  extra: Partial<RolloutEvidence['incidents'][0]> = {},
) => ({
  instanceId: `${n}`,
  name: `h${n}`,
  project: 'p',
  zone: r.stages[0]!.zones[0]!.split('/')[1]!,
  at: at(minutes),
  ...extra,
});
const halt = (r: StagedRollout, minutes: number) => {
  const failing = evaluateRollout(
    r,
    evidence(r, at(minutes), () => true, { noncompliant: [canaryHost(r, 9, 1)] }),
    at(minutes),
  );
  const gate = failing.gates.find((g) => !g.passed)!;
  return decide(r, { kind: 'halt', gate, dedupKey: 'k' }, { by: 'controller', reason: '' }, at(minutes));
};
const gateOf = (e: ReturnType<typeof evaluateRollout>, name: string) => e.gates.find((g) => g.gate === name)!;

t('a resume does not hide a host still failing on the target since before it', () => {
  const r = rollout();
  const inCanary = (k: string) => k === r.stages[0]!.zones[0];
  const resumed = decide(halt(r, 10), { kind: 'resume' }, { by: 'bob', reason: 'looks transient' }, at(20));
  // Noncompliant since minute 5: after its zone got the target, before the resume, and still so.
  const e = evaluateRollout(
    resumed,
    evidence(resumed, at(25), inCanary, { noncompliant: [canaryHost(r, 1, 5)] }),
    at(25),
  );
  assert.is(gateOf(e, 'noncompliant').count, 1, 'the host still failing counts');
  assert.is(e.next.action, 'halt');
  const before = evaluateRollout(
    resumed,
    evidence(resumed, at(25), inCanary, { noncompliant: [canaryHost(r, 1, -30)] }),
    at(25),
  );
  assert.is(gateOf(before, 'noncompliant').count, 0, 'noncompliant since before the rollout: not the target');
});

t('an incident still open counts after a resume; one over before the resume does not', () => {
  const r = rollout();
  const inCanary = (k: string) => k === r.stages[0]!.zones[0];
  const resumed = decide(halt(r, 10), { kind: 'resume' }, { by: 'bob', reason: 'looks transient' }, at(20));
  const judge = (incident: ReturnType<typeof canaryHost>) =>
    gateOf(
      evaluateRollout(resumed, evidence(resumed, at(25), inCanary, { incidents: [incident] }), at(25)),
      'incidents',
    );
  assert.is(judge(canaryHost(r, 1, 5, { open: true })).count, 1, 'open since minute 5');
  assert.is(judge(canaryHost(r, 1, 5, { open: false })).count, 0, 'over before the resume');
  assert.is(judge(canaryHost(r, 1, 22, { open: false })).count, 1, 'begun since the resume');
  assert.is(judge(canaryHost(r, 1, -5, { open: true })).count, 0, 'open since before its zone got the target');
});

t('the denylist gate reads what is denylisted now, not an hour long past', () => {
  const r = rollout();
  const inCanary = (k: string) => k === r.stages[0]!.zones[0];
  // Denylisted in the rollout's first hour only (the denylist has expired since): at 11:20 it is not now.
  const past = evaluateRollout(
    r,
    evidence(r, at(199), inCanary, { denylisted: [{ query: 'pack_x_y', windows: { h2026112808: 2 } }] }),
    at(200),
  );
  assert.equal(gateOf(past, 'denylistedQueries').queries, []);
  const now = evaluateRollout(
    r,
    evidence(r, at(199), inCanary, { denylisted: [{ query: 'pack_x_y', windows: { h2026112810: 1 } }] }),
    at(200),
  );
  assert.equal(gateOf(now, 'denylistedQueries').queries, ['pack_x_y'], 'in the last complete hour: now');
});

t('stale evidence holds: a project whose audits keep failing is not promoted on an old snapshot', () => {
  const r = rollout();
  const inCanary = (k: string) => k === r.stages[0]!.zones[0];
  // Audited at minute 31 (after the stage started), failing in every run since; the bake is long over.
  const stale = evaluateRollout(
    r,
    { ...evidence(r, at(31), inCanary), failures: { p: '7 PERMISSION_DENIED: compute.instances.list' } },
    at(75),
  );
  assert.is(stale.next.action, 'hold');
  assert.match(stale.next.reason, /p: last audited 44 min ago; its audit fails: 7 PERMISSION_DENIED/);
  assert.equal(stale.stale, ['p']);
  // Within the bound (30 minutes by default), the same snapshot is fresh enough.
  assert.is(evaluateRollout(r, evidence(r, at(31), inCanary), at(50)).next.action, 'promote');
});

t.run();
