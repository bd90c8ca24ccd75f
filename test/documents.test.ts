// Stored documents that do not match their definition (docs/contracts.md), against the Firestore emulator:
// each read reports the document with its path and the field, never casts it, and each caller does what it
// decided: the audit leaves the host as it is and counts it, the batch reads set it apart, the page shows
// the rest, the evidence report leaves the host out and counts it.
import * as assert from 'uvu/assert';
import { type Stack, captureLogs, stackSuite } from './helpers/stack.js';
import { createVm } from './helpers/fleet.js';
import { auditProject, runAuditShard } from '../shared/usecases/audit.js';
import { publish } from '../shared/usecases/publish.js';
import { loadStatusView, writeEvidence } from '../shared/usecases/status.js';
import { getHost, listProjectHosts, readHosts } from '../shared/adapters/hosts.js';
import { createRun, getProjectResult } from '../shared/adapters/audits.js';
import { hostsInState, osquerydAbove } from '../shared/adapters/rollout-evidence.js';
import { DocumentInvalid } from '../shared/documents/document.js';
import { clients } from '../shared/clients.js';
import { EVIDENCE_WRITERS } from '../shared/views/evidence.js';

const P = 'docs';
const Z = 'us-central1-a';
const MIN = 60_000;
const t = stackSuite(
  'stored documents that do not match their definition',
  {
    TARGET_PROJECTS: P,
    CONFIG_BUCKET: 'cfg-docs',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
  },
  async (stack) => {
    await stack.control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
  },
);

const later = (minutes: number) => new Date(Date.now() + minutes * MIN);
const hostRef = (id: string) => clients.firestore().collection('hosts').doc(id);

/** Three audited hosts, the middle one's stateSince then overwritten by another tool with a string. */
async function fleetWithOneBroken(stack: Stack) {
  await publish({ projects: [P] });
  const vm = (name: string) => createVm(stack, { project: P, zone: Z, name, os: 'debian-12' });
  const [good, broken, other] = [await vm('a'), await vm('b'), await vm('c')];
  await stack.control('POST', '/agents/run');
  await auditProject(P, { now: later(1) });
  await hostRef(broken.id).update({ stateSince: 'yesterday' });
  return { good, broken, other, brokenAt: (await hostRef(broken.id).get()).updateTime!.toMillis() };
}

t('reads name the document and the field; reads of many set it apart and go on', async ({ stack }) => {
  const { good, broken } = await fleetWithOneBroken(stack);
  try {
    await getHost(broken.id);
    assert.unreachable('a host that does not match is not read');
  } catch (error) {
    assert.instance(error, DocumentInvalid);
    assert.is((error as DocumentInvalid).message, `hosts/${broken.id}: stateSince: expected a timestamp`);
  }
  const listed = await listProjectHosts(P);
  assert.is(listed.hosts.size, 2, 'the others are read');
  assert.equal([...listed.invalid.keys()], [broken.id]);
  assert.equal(listed.invalid.get(broken.id)!.problems, ['stateSince: expected a timestamp']);
  const read = await readHosts([good.id, broken.id]);
  assert.equal([...read.hosts.keys()], [good.id]);
  assert.is(read.invalid.get(broken.id)?.path, `hosts/${broken.id}`);
  // The rollout gates' listings: what they read is their projection's fields (the controller holds on `invalid`).
  const version = (await getHost(good.id))!.configVersion!;
  await hostRef(good.id).update({ state: 'noncompliant', osqueryd: { cpuPercent: 50, rssBytes: 1, at: new Date() } });
  await hostRef(broken.id).update({ state: 'noncompliant', configVersion: version });
  const noncompliant = await hostsInState(version, 'noncompliant');
  assert.equal(
    [noncompliant.sightings.map((s) => s.instanceId), noncompliant.invalid.map((i) => i.message)],
    [[good.id], [`hosts/${broken.id}: stateSince: expected a timestamp`]],
  );
  const cpu = await osquerydAbove(version, 'cpuPercent', 10);
  assert.equal([cpu.sightings.map((s) => [s.instanceId, s.value]), cpu.invalid], [[[good.id, 50]], []]);
});

t(
  'the audit leaves a host it cannot read as it is, decides the others, and counts it on the run',
  async ({ stack }) => {
    const { good, broken, other, brokenAt } = await fleetWithOneBroken(stack);
    // Both readable VMs stop: the audit has something to write for them.
    for (const vm of [good, other]) await stack.control('PATCH', `/vms/${vm.id}`, { status: 'TERMINATED' });
    await stack.control('PATCH', `/vms/${broken.id}`, { status: 'TERMINATED' });
    const runId = 'docs-run';
    await createRun(runId, [P], later(2));
    const { result, logs } = await captureLogs(() => runAuditShard({ runId, project: P }, later(2)));
    assert.is(result, 'done', 'the project is audited, not failed');
    for (const vm of [good, other]) assert.is((await getHost(vm.id))?.state, 'stopped', `${vm.name} decided`);
    assert.is((await hostRef(broken.id).get()).updateTime!.toMillis(), brokenAt, 'left as it is: never written');
    const reported = logs.filter((l) => l.document === `hosts/${broken.id}`);
    assert.equal(
      reported.map((l) => [l.severity, l.problems, l.message]),
      [
        [
          'WARNING',
          ['stateSince: expected a timestamp'],
          'stored document does not match its definition (docs/contracts.md): the audit leaves it as it is',
        ],
      ],
    );
    const recorded = await getProjectResult(runId, P);
    assert.equal([recorded?.invalidHosts, recorded?.counts], [1, { stopped: 2 }]);
    const reconciled = logs.find((l) => l.message === 'audit: project reconciled');
    assert.is(reconciled?.invalidHosts, 1);
  },
);

t('the status page shows what it can; the evidence report leaves the host out and counts it', async ({ stack }) => {
  const { broken } = await fleetWithOneBroken(stack);
  await clients.firestore().collection('status').doc('fleet').set({ run: 'not a run' });
  const { result, logs } = await captureLogs(() => loadStatusView({}));
  assert.is(result.view.run, null, 'status/fleet shown as absent');
  assert.ok(result.view.configuration, 'the rest is shown');
  assert.ok(logs.some((l) => l.document === 'status/fleet' && /shows it as absent/.test(l.message)));
  let csv = '';
  const evidence = await captureLogs(() => writeEvidence(EVIDENCE_WRITERS.csv, async (c) => void (csv += c)));
  assert.equal([evidence.result.inScope, evidence.result.invalid], [2, 1]);
  assert.not.ok(csv.includes(broken.id), 'not a row');
  assert.ok(evidence.logs.some((l) => l.document === `hosts/${broken.id}` && /evidence report/.test(l.message)));
});

t.run();
