// The @google-cloud/os-config descriptor-spelling bug (gcp-facts.md), proven against the simulator.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OsConfigZonalServiceClient } from '@google-cloud/os-config';
import { PassThroughClient } from 'google-auth-library';
import { hasDescriptorSpellingBug, patchOsConfigDescriptors } from '../shared/osconfig-client-fix.js';
import { startSimulator, type Simulator } from '../infra/local/simulator/server.js';
import { buildOsqueryAssignment } from '../shared/domain/policy.js';
import { clients, resetClients } from '../shared/clients.js';
import { resetConfig } from '../shared/config.js';
import { usageSince, usageSnapshot } from '../shared/metrics.js';
import { createAssignment, getAssignment } from '../shared/adapters/osconfig.js';

const t = suite<{ sim: Simulator }>('os-config client descriptor fix');
t.before(async (ctx) => {
  ctx.sim = await startSimulator();
});
t.after(async (ctx) => ctx.sim.close());

const client = (sim: Simulator) =>
  new OsConfigZonalServiceClient({
    apiEndpoint: '127.0.0.1',
    port: sim.port,
    protocol: 'http',
    authClient: new PassThroughClient(),
    fallback: true,
  } as unknown as ConstructorParameters<typeof OsConfigZonalServiceClient>[0]);
const body = buildOsqueryAssignment({
  optOutLabel: { key: 'osquery-exempt', value: 'true' },
  disruptionPercent: 10,
  minWaitSeconds: 60,
});

t('the installed library still has the bug (when this fails, delete osconfig-client-fix.ts)', async ({ sim }) => {
  const raw = client(sim);
  assert.ok(hasDescriptorSpellingBug(raw), 'the library now spells its descriptors alike: remove the workaround');
  const [operation] = await raw.createOSPolicyAssignment({
    parent: 'projects/p/locations/z1',
    osPolicyAssignmentId: 'osquery',
    osPolicyAssignment: body,
  });
  assert.is(
    typeof (operation as { promise?: unknown }).promise,
    'undefined',
    'unpatched create returns a raw Operation',
  );
  const yielded: unknown[] = [];
  for await (const item of raw.listOSPolicyAssignmentsAsync({ parent: 'projects/p/locations/z1' })) yielded.push(item);
  assert.ok(
    yielded.some((y) => Array.isArray(y) && y[0] === 'osPolicyAssignments'),
    'unpatched list yields response fields',
  );
  await raw.close();
});

t('patched: create waits for the operation and list yields assignments', async ({ sim }) => {
  const fixed = patchOsConfigDescriptors(client(sim));
  assert.not.ok(hasDescriptorSpellingBug(fixed));
  const [operation] = await fixed.createOSPolicyAssignment({
    parent: 'projects/p/locations/z2',
    osPolicyAssignmentId: 'osquery',
    osPolicyAssignment: body,
  });
  const [assignment] = await operation.promise();
  assert.is(assignment.name, 'projects/p/locations/z2/osPolicyAssignments/osquery');
  assert.ok(assignment.revisionId, 'revision id decoded from the operation result');
  const names: string[] = [];
  for await (const a of fixed.listOSPolicyAssignmentsAsync({ parent: 'projects/p/locations/z2' }))
    names.push(String(a.name));
  assert.equal(names, ['projects/p/locations/z2/osPolicyAssignments/osquery']);
  await fixed.close();
});

t('the simulator stored the numeric enums the client sent by name', async ({ sim }) => {
  const stored = [...sim.world.assignments.values()].find((a) => a.zone === 'z2')!;
  const policy = (
    stored.body.osPolicies as Array<{
      mode: unknown;
      resourceGroups: Array<{ resources: Array<{ exec?: { validate: { interpreter: unknown } } }> }>;
    }>
  )[0]!;
  assert.is(policy.mode, 'ENFORCEMENT');
  // install-osquery is an exec since the package is pinned (docs/osquery-upgrade.md): its interpreter enum.
  assert.is(policy.resourceGroups[0]!.resources[1]!.exec?.validate.interpreter, 'SHELL');
});

t('the client shared/clients.ts loads on first use is patched, and its calls are counted', async ({ sim }) => {
  process.env.GOOGLE_API_ENDPOINT = sim.url;
  resetConfig();
  resetClients();
  assert.not.ok(hasDescriptorSpellingBug(await clients.osConfig()));
  const before = usageSnapshot();
  const { created, assignment } = await createAssignment('p', 'z3', 'osquery', body);
  assert.ok(created);
  assert.ok(assignment.revisionId, 'create waited for its operation');
  assert.is((await getAssignment('p', 'z3', 'osquery'))?.name, 'projects/p/locations/z3/osPolicyAssignments/osquery');
  const spent = usageSince(before).apiCalls;
  assert.is(spent['osconfig.createOsPolicyAssignment'], 1, JSON.stringify(spent));
  assert.is(spent['osconfig.getOsPolicyAssignment'], 1, JSON.stringify(spent));
  await (await clients.osConfig()).close();
});

t.run();
