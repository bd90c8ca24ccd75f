// A storm across the fleet (issue 23): many small projects each lose a few hosts in one audit run, too few in
// any project for its own storm. The shards hold their host.silent episodes; the run's close sees the fleet's
// share and sends one fleet.silent (hosts held, visible on the hosts) or, with no storm, the host alerts once.
import * as assert from 'uvu/assert';
import type { Firestore } from '@google-cloud/firestore';
import { stackSuite } from './helpers/stack.js';
import { drain, subscribe } from './helpers/pubsub.js';
import { runAuditShard } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { createRun, getRun } from '../shared/adapters/audits.js';
import { getHost } from '../shared/adapters/hosts.js';
import { closeOpenRuns } from '../shared/usecases/audit.js';
import { closeAuditRun } from '../shared/usecases/run-close.js';
import { clients } from '../shared/clients.js';
import { config } from '../shared/config.js';
import type { AlertMessage } from '../shared/domain/alerts.js';

const PROJECTS = Array.from({ length: 20 }, (_, i) => `storm-${String(i).padStart(2, '0')}`);
const VMS = 5;
const ZONE = 'us-central1-a';
const MIN = 60_000;
const t = stackSuite(
  'a storm across the fleet',
  {
    TARGET_PROJECTS: PROJECTS.join(','),
    CONFIG_BUCKET: 'cfg-fleet-storm',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
  },
  async (stack) => {
    for (const project of PROJECTS) {
      await stack.control('POST', '/projects', { id: project, metadata: { 'enable-osconfig': 'TRUE' } });
      for (let v = 0; v < VMS; v++) stack.sim.world.addVm({ project, zone: ZONE, name: `vm-${v}`, os: 'debian-12' });
    }
    await publish({ projects: PROJECTS });
    await stack.control('POST', '/agents/run');
  },
);

const base = Math.floor(Date.now() / MIN) * MIN - 180 * MIN;
const at = (m: number) => new Date(base + m * MIN);

/** lastLogAt set as logHeartbeat would have (the setup, not what is tested). */
async function linesAt(db: Firestore, ids: string[], when: Date): Promise<void> {
  const batch = db.batch();
  for (const id of ids) batch.update(db.collection('hosts').doc(id), { lastLogAt: when });
  await batch.commit();
}

/** One audit run over every project, each shard delivered in turn; the last closes it. */
async function run(runId: string, now: Date): Promise<void> {
  await createRun(runId, PROJECTS, now);
  for (const project of PROJECTS) assert.is(await runAuditShard({ runId, project }, now), 'done');
  assert.not.equal((await getRun(runId))?.status, 'running', 'the last shard closed the run');
}

const hostsOf = async (db: Firestore, project: string) =>
  (await db.collection('hosts').where('project', '==', project).select().get()).docs.map((d) => d.id).sort();

/** Every project's hosts reporting (runs r0, r1), then `silentPer(i)` hosts of project i quiet since at(1). */
async function fleetWith(db: Firestore, silentPer: (i: number) => number): Promise<string[]> {
  await run('r0', at(0));
  const ids = new Map<string, string[]>();
  for (const project of PROJECTS) ids.set(project, await hostsOf(db, project));
  const all = [...ids.values()].flat();
  assert.is(all.length, PROJECTS.length * VMS);
  await linesAt(db, all, at(1));
  await run('r1', at(2));
  const quiet = PROJECTS.flatMap((p, i) => ids.get(p)!.slice(0, silentPer(i)));
  await linesAt(
    db,
    all.filter((id) => !quiet.includes(id)),
    at(20),
  );
  return quiet;
}

const messages = async (sub: Awaited<ReturnType<typeof subscribe>>) =>
  (await drain(sub)).map((m) => m.data as AlertMessage).map((m) => [m.kind, m.status]);

t(
  '20 projects of 5 hosts, 2 silent in each: one fleet.silent, host alerts held; cleared, they owe nothing',
  async () => {
    const db = clients.firestore();
    const alerts = await subscribe(config().ALERT_TOPIC, 'fleet-storm-alerts');
    const quiet = await fleetWith(db, () => 2);
    await drain(alerts);

    await run('r2', at(25));
    assert.equal(await messages(alerts), [['fleet.silent', 'firing']], 'one alert, no host.silent');
    const storm = (await db.collection('alerts').where('kind', '==', 'fleet.silent').get()).docs.map((d) => d.data());
    assert.equal(
      storm.map((s) => [s.details.scope, s.details.share, s.details.silentHosts, s.details.hosts, s.details.projects]),
      [['fleet', 0.4, 40, 100, 20]],
    );
    assert.match(storm[0]!.reason, /^40 of 100 hosts \(40%\) in 20 projects went silent at once; common cause /);
    // Held and visible: the hosts are silent, each with its episode recorded and not sent.
    for (const id of quiet) assert.is((await getHost(id))?.state, 'silent');
    const held = (await db.collection('alerts').where('kind', '==', 'host.silent').get()).docs;
    assert.is(held.length, 40);
    assert.ok(held.every((d) => d.get('held') === true && d.get('heldRun') === 'r2' && !d.get('firing.sentAt')));

    // The next run, every host back: the storm resolves, the held episodes are settled (they never fired).
    await linesAt(db, quiet, at(28));
    await run('r3', at(30));
    assert.equal(await messages(alerts), [['fleet.silent', 'resolved']]);
    for (const id of quiet) assert.is((await getHost(id))?.state, 'reporting');
    const settled = (await db.collection('alerts').where('kind', '==', 'host.silent').get()).docs;
    assert.ok(
      settled.every((d) => d.get('held') === false && d.get('resolved') && !d.get('firing.sentAt')),
      'released, resolved, never fired',
    );
    assert.is((await db.collection('alerts').where('owed', '==', true).get()).size, 0, 'nothing owed');
  },
);

t('one silent host in the fleet: its host.silent is sent at the close, once however often closed', async () => {
  const db = clients.firestore();
  const alerts = await subscribe(config().ALERT_TOPIC, 'fleet-storm-alerts');
  const quiet = await fleetWith(db, (i) => (i === 3 ? 1 : 0));
  await drain(alerts);

  await createRun('r2', PROJECTS, at(25));
  for (const project of PROJECTS.slice(0, -1)) await runAuditShard({ runId: 'r2', project }, at(25));
  assert.is((await getHost(quiet[0]!))?.state, 'silent');
  assert.equal(await messages(alerts), [], 'held until the run closes');
  await runAuditShard({ runId: 'r2', project: PROJECTS.at(-1)! }, at(25));
  assert.equal(await messages(alerts), [['host.silent', 'firing']]);

  // The closing shard redelivered, the close done again, the next tick's look at open runs: no second.
  assert.is(await runAuditShard({ runId: 'r2', project: PROJECTS.at(-1)! }, at(25)), 'duplicate');
  await closeAuditRun('r2', at(26));
  await closeOpenRuns(at(27));
  assert.equal(await messages(alerts), []);
  const episode = (await db.collection('alerts').where('kind', '==', 'host.silent').get()).docs;
  assert.equal(
    episode.map((d) => [d.get('held'), Boolean(d.get('firing.sentAt'))]),
    [[false, true]],
  );
  assert.is((await db.collection('alerts').where('kind', '==', 'fleet.silent').get()).size, 0);
});

t.run();
