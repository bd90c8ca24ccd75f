// Whose line is it (shared/domain/heartbeat-identity.ts): a heartbeat proves the host it names only with that
// host's instance identity token; the unsigned policy; the host.spoofed episode; and the signature check
// itself (google-auth-library against certificates served as Google's v1 endpoint serves them).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OAuth2Client } from 'google-auth-library';
import {
  judgeToken,
  planSpoof,
  planSpoofResolution,
  SPOOF_QUIET_MS,
  tokenShapeOk,
  useOfLines,
  type SignatureCheck,
  type SpoofedState,
  type TokenClaims,
} from '../../shared/domain/heartbeat-identity.js';
import { parseLogLines, planHeartbeatWrite, type HeartbeatHost } from '../../shared/domain/heartbeat.js';
import { checkSignature } from '../../shared/adapters/identity-tokens.js';
import { buildOsqueryAssignment } from '../../shared/domain/policy.js';
import { MAX_TOKEN_AUDIENCE } from '../../shared/config.js';
import { IdentityTokens } from '../../infra/local/simulator/identity-tokens.js';
import { World } from '../../infra/local/simulator/world.js';

const t = suite('heartbeat identity: whose line is it');
const AUD = 'projects/orch/topics/osquery-logs';
const T0 = Date.parse('2026-12-07T05:00:00Z');
const S = (ms: number) => Math.floor(ms / 1000);
const IDENTITY = { instanceId: '1234567890123', project: 'p', zone: 'us-central1-a' };
const HOST = { ...IDENTITY, name: 'vm-1' };

const claims = (over: Partial<Record<string, unknown>> = {}, ce: Record<string, unknown> = {}): TokenClaims => ({
  aud: AUD,
  iat: S(T0),
  exp: S(T0) + 3600,
  google: {
    compute_engine: {
      project_id: 'p',
      project_number: 42,
      zone: 'us-central1-a',
      instance_id: '1234567890123',
      instance_name: 'vm-1',
      ...ce,
    },
  },
  ...over,
});
const good = (c: TokenClaims): SignatureCheck => ({ ok: true, claims: c });
const judge = (check: SignatureCheck, at = T0 + 60_000) => judgeToken(check, { audience: AUD, identity: IDENTITY }, at);

t('a token whose claims are the named host, for the audience, within its life: verified', () => {
  const v = judge(good(claims()));
  assert.equal(v, {
    ok: true,
    sender: { instanceId: '1234567890123', project: 'p', zone: 'us-central1-a', name: 'vm-1' },
  });
});

t("another VM's token naming this host: instance, project or zone mismatch, with the real sender", () => {
  const other = judge(good(claims({}, { instance_id: '999', instance_name: 'attacker' })));
  assert.equal([other.ok, !other.ok && other.problem], [false, 'instance-mismatch']);
  assert.is(other.sender?.instanceId, '999');
  assert.is(other.sender?.name, 'attacker');
  const project = judge(good(claims({}, { project_id: 'q' })));
  assert.is(!project.ok && project.problem, 'project-mismatch');
  const zone = judge(good(claims({}, { zone: 'europe-west1-b' })));
  assert.is(!zone.ok && zone.problem, 'zone-mismatch');
});

t('audience, expiry at the line time, missing compute claims, bad signature', () => {
  const aud = judge(good(claims({ aud: 'https://example.com' })));
  assert.is(!aud.ok && aud.problem, 'token-audience');
  // An hour and more after it was issued: expired, whatever the library said.
  const late = judge(good(claims()), T0 + 3600_000 + 301_000);
  assert.is(!late.ok && late.problem, 'token-expired');
  const early = judge(good(claims()), T0 - 301_000);
  assert.is(!early.ok && early.problem, 'token-expired');
  // A late delivery: the library calls the token expired now, but at the line's time it was valid.
  const backlog = judge({ ok: false, problem: 'token-expired', claims: claims() }, T0 + 30 * 60_000);
  assert.ok(backlog.ok);
  const noCompute = judge(good(claims({ google: undefined })));
  assert.is(!noCompute.ok && noCompute.problem, 'token-not-compute');
  const sig = judge({ ok: false, problem: 'token-signature' });
  assert.equal(sig, { ok: false, problem: 'token-signature', sender: null });
});

t('the shape check refuses what is not a token before any cryptography', () => {
  assert.ok(tokenShapeOk('aaa.bbb.c-_'));
  for (const bad of [42, null, '', 'a.b', 'a.b.c.d', 'a.b.c=', `a.b.${'c'.repeat(5000)}`])
    assert.not.ok(tokenShapeOk(bad));
});

t('the unsigned policy: accept counts unsigned lines, reject does not; a forged line never counts', () => {
  const spoofed = { kind: 'spoofed', at: T0, problem: 'instance-mismatch', sender: null } as const;
  for (const policy of ['accept', 'reject'] as const) {
    assert.equal(useOfLines({ kind: 'verified', at: T0 }, policy), { signOfLife: true, telemetry: true });
    assert.equal(useOfLines(spoofed, policy), { signOfLife: false, telemetry: false });
  }
  assert.equal(useOfLines({ kind: 'unsigned', count: 1, at: T0 }, 'accept'), { signOfLife: true, telemetry: true });
  assert.equal(useOfLines({ kind: 'unsigned', count: 1, at: T0 }, 'reject'), { signOfLife: false, telemetry: false });
  // A schedule snapshot carries no token: its telemetry counts, its time only while unsigned lines do.
  assert.equal(useOfLines({ kind: 'none' }, 'accept'), { signOfLife: true, telemetry: true });
  assert.equal(useOfLines({ kind: 'none' }, 'reject'), { signOfLife: false, telemetry: true });
});

t("the parser finds each heartbeat's token; other lines' are ignored", () => {
  const lines = [
    { name: 'heartbeat', unixTime: S(T0), identity_token: 'a.b.c', snapshot: [] },
    { name: 'heartbeat', unixTime: S(T0) + 1, snapshot: [] },
    { name: 'pack_x', unixTime: S(T0), identity_token: 'x.y.z' },
  ];
  const parsed = parseLogLines(lines.map((l) => JSON.stringify(l)).join('\n'), T0);
  assert.equal(parsed.heartbeats, [
    { at: T0, token: 'a.b.c' },
    { at: T0 + 1000, token: null },
  ]);
});

const report = (at: number) => ({ at, problem: 'instance-mismatch' as const, sender: null });

t('planSpoof: the first forged line opens one host.spoofed episode; a redelivery changes nothing', () => {
  const first = planSpoof({ ...HOST, spoofed: null }, report(T0))!;
  assert.is(first.episodes.open?.kind, 'host.spoofed');
  assert.is(first.episodes.open?.dedupKey, `host.spoofed:${IDENTITY.instanceId}:${T0}`);
  assert.is(first.episodes.open?.severity, 'critical');
  const open = first.spoofed;
  assert.is(planSpoof({ ...HOST, spoofed: open }, report(T0)), null, 'the same line again');
  const later = planSpoof({ ...HOST, spoofed: open }, report(T0 + 300_000))!;
  assert.equal(later.episodes, {}, 'a later forged line opens nothing');
  assert.equal(
    [later.spoofed.lastAt.getTime(), later.spoofed.lines, later.spoofed.since.getTime()],
    [T0 + 300_000, 2, T0],
  );
  const resolved: SpoofedState = { ...open, resolvedAt: new Date(T0 + 2 * 3600_000) };
  assert.is(planSpoof({ ...HOST, spoofed: resolved }, report(T0 + 60_000)), null, 'older than the resolution');
  assert.ok(planSpoof({ ...HOST, spoofed: resolved }, report(T0 + 3 * 3600_000))?.episodes.open, 'a new episode');
});

t('planSpoofResolution: a verified heartbeat an hour after the last forged line resolves the episode', () => {
  const open = planSpoof({ ...HOST, spoofed: null }, report(T0))!.spoofed;
  const now = new Date(T0 + SPOOF_QUIET_MS);
  assert.is(planSpoofResolution(open, IDENTITY.instanceId, T0 + SPOOF_QUIET_MS - 1, now), null);
  assert.is(planSpoofResolution(open, IDENTITY.instanceId, null, now), null, 'unsigned lines resolve nothing');
  const done = planSpoofResolution(open, IDENTITY.instanceId, T0 + SPOOF_QUIET_MS, now)!;
  assert.equal(done.episodes.close, {
    kind: 'host.spoofed',
    instanceId: IDENTITY.instanceId,
    previousSince: open.since,
    at: now,
  });
  assert.equal(done.spoofed.resolvedAt, now);
  assert.is(planSpoofResolution(done.spoofed, IDENTITY.instanceId, T0 + 2 * SPOOF_QUIET_MS, now), null, 'once');
});

const host = (over: Partial<HeartbeatHost> = {}): HeartbeatHost => ({
  ...HOST,
  state: 'reporting',
  reason: null,
  stateSince: new Date(T0 - 3600_000),
  lastLogAt: new Date(T0 - 60_000),
  osqueryVersion: '5.23.1',
  configVersion: 'v1',
  inScope: true,
  updatedAt: new Date(T0 - 60_000),
  osqueryd: null,
  querySchedule: null,
  ...over,
});

t('a heartbeat write counts unsigned heartbeats and resolves a quiet spoofed episode', () => {
  const now = new Date(T0);
  const pending = { newest: T0, samples: [], snapshots: [], unsigned: { count: 3, lastAt: T0 } };
  const counted = planHeartbeatWrite(
    host({ unsignedHeartbeats: { count: 2, lastAt: new Date(T0 - 1) } }),
    pending,
    null,
    now,
    60_000,
    'test',
  );
  assert.is(counted.write, 'update');
  assert.equal(counted.write === 'update' && counted.fields.unsignedHeartbeats, { count: 5, lastAt: new Date(T0) });
  // The same unsigned line again (a redelivery): nothing to write.
  const again = host({ lastLogAt: new Date(T0), unsignedHeartbeats: { count: 5, lastAt: new Date(T0) } });
  assert.is(planHeartbeatWrite(again, pending, null, now, 60_000, 'test').write, 'nothing');
  // No sign of life (newest 0): lastLogAt stays, the count is still written.
  const rejected = planHeartbeatWrite(host(), { ...pending, newest: 0 }, null, now, 60_000, 'test');
  assert.ok(rejected.write === 'update' && rejected.fields.lastLogAt === undefined);
  assert.ok(rejected.write === 'update' && rejected.fields.unsignedHeartbeats?.count === 3);
  const spoofed = planSpoof({ ...HOST, spoofed: null }, report(T0 - SPOOF_QUIET_MS))!.spoofed;
  const resolved = planHeartbeatWrite(
    host({ spoofed }),
    { newest: T0, samples: [], snapshots: [], verifiedAt: T0 },
    null,
    now,
    60_000,
    'test',
  );
  assert.ok(resolved.write === 'update' && resolved.spoof?.close?.kind === 'host.spoofed');
  const stillOpen = planHeartbeatWrite(
    host({ spoofed }),
    { newest: T0, samples: [], snapshots: [] },
    null,
    now,
    60_000,
    'test',
  );
  assert.ok(stillOpen.write === 'update' && !stillOpen.spoof, 'an unsigned line resolves nothing');
});

t("the OS policy's token refresher: the audience in it, every script within OS Config's 1,024 characters", () => {
  const audience = `projects/${'p'.repeat(30)}/topics/${'t'.repeat(MAX_TOKEN_AUDIENCE - 47)}`;
  const settings = { optOutLabel: { key: 'osquery-exempt', value: 'true' }, disruptionPercent: 10, minWaitSeconds: 60 };
  const assignment = buildOsqueryAssignment(
    { ...settings, tokenAudience: audience },
    { configVersion: 'v1', files: [] },
  );
  const resources = assignment.osPolicies![0]!.resourceGroups!.flatMap((g) => g.resources!);
  const token = resources.filter((r) => r.id === 'identity-token');
  assert.is(token.length, 2, 'one per OS family');
  assert.ok(String(token[0]!.exec!.enforce!.script).includes(encodeURIComponent(audience)));
  for (const r of resources)
    for (const script of [r.exec?.validate?.script, r.exec?.enforce?.script])
      if (script) assert.ok(String(script).length <= 1024, `${r.id}: ${String(script).length} characters`);
  const unsigned = buildOsqueryAssignment(settings, { configVersion: 'v1', files: [] });
  assert.not.ok(JSON.stringify(unsigned).includes('identity-token'), 'no audience: no refresher');
});

t(
  "the simulator's tokens pass google-auth-library's check against its v1 certificates; a forged one does not",
  async () => {
    const world = new World();
    const vm = world.addVm({ project: 'p', zone: 'us-central1-a', name: 'vm-1', os: 'debian-12' });
    const tokens = new IdentityTokens(world);
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600' });
      res.end(JSON.stringify(tokens.certs()));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/v1/certs`;
      const client = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: url } });
      const now = new Date();
      const token = tokens.tokenFor(vm, AUD, now);
      assert.is(tokens.tokenFor(vm, AUD, new Date(now.getTime() + 60_000)), token, 'kept until its refresh');
      const check = await checkSignature(token, client);
      assert.ok(check.ok);
      const verdict = judgeToken(
        check,
        { audience: AUD, identity: { instanceId: vm.id, project: 'p', zone: 'us-central1-a' } },
        now.getTime(),
      );
      assert.ok(verdict.ok, JSON.stringify(verdict));
      // Its payload swapped for another VM's claims under the same signature: refused.
      const [h, , sig] = token.split('.');
      const forgedPayload = Buffer.from(
        JSON.stringify({ ...claims(), iat: S(now.getTime()), exp: S(now.getTime()) + 3600 }),
      ).toString('base64url');
      assert.equal(await checkSignature(`${h}.${forgedPayload}.${sig}`, client), {
        ok: false,
        problem: 'token-signature',
      });
      // Issued two hours ago (a late delivery): the signature holds, the claims come back for the line's time.
      const old = tokens.mint(vm, AUD, S(now.getTime()) - 7200);
      const stale = await checkSignature(old, client);
      assert.is(stale.ok, false);
      assert.is(!stale.ok && stale.problem, 'token-expired');
      assert.ok(
        judgeToken(
          stale,
          { audience: AUD, identity: { instanceId: vm.id, project: 'p', zone: 'us-central1-a' } },
          now.getTime() - 7000_000,
        ).ok,
      );
    } finally {
      server.close();
    }
  },
);

t.run();
