// Whose line is it: this instance's checks of the identity tokens heartbeats carry. A VM refreshes its token
// about every 30 minutes and sends it on each heartbeat, so the same token arrives again and again: its
// signature is checked once per instance (cached, bounded), and each line is judged against its claims by
// the domain's pure rule (cheap). Forged heartbeats are recorded on the host they name (host.spoofed).
import { log } from '../../log.js';
import {
  judgeToken,
  planSpoof,
  tokenShapeOk,
  type HeartbeatProof,
  type SignatureCheck,
  type SpoofWrite,
} from '../../domain/heartbeat-identity.js';
import type { HeartbeatHost, HeartbeatLine, HostIdentityAttributes } from '../../domain/heartbeat.js';

/** Tokens whose signature check an instance keeps: a token is about 1 KB, so a few MB at most. */
export const MAX_CACHED_TOKENS = 4096;
/** Hosts an instance remembers having logged an unsigned heartbeat for (one log line per host, not per line). */
const MAX_UNSIGNED_LOGGED = 10_000;

export interface IdentityIo {
  checkSignature: (token: string) => Promise<SignatureCheck>;
  recordSpoof: (
    instanceId: string,
    plan: (host: HeartbeatHost) => SpoofWrite | null,
  ) => Promise<{ alertKeys: string[] }>;
  deliverAlerts: (keys: Iterable<string>) => Promise<number>;
}

export class HeartbeatIdentity {
  /** Token -> its signature check (the promise: concurrent messages with one token share one check). */
  private readonly checks = new Map<string, Promise<SignatureCheck>>();
  /** Host -> when this instance last recorded a forged line naming it (at most one write per window). */
  private readonly spoofRecorded = new Map<string, number>();
  private readonly unsignedLogged = new Set<string>();

  constructor(private readonly io: IdentityIo) {}

  /** The signature check of a token, made once per token while it stays in the cache. */
  private check(token: string): Promise<SignatureCheck> {
    const known = this.checks.get(token);
    if (known) return known;
    if (this.checks.size >= MAX_CACHED_TOKENS) this.checks.delete(this.checks.keys().next().value!);
    const checking = this.io.checkSignature(token);
    this.checks.set(token, checking);
    // A failure to check (the certificates unreachable) is not a verdict: the next line checks again.
    checking.catch(() => this.checks.delete(token));
    return checking;
  }

  /** What a message's heartbeats prove about the host the message names. */
  async prove(
    identity: HostIdentityAttributes,
    heartbeats: readonly HeartbeatLine[],
    audience: () => string,
  ): Promise<HeartbeatProof> {
    if (heartbeats.length === 0) return { kind: 'none' };
    let unsigned = 0;
    let unsignedAt = 0;
    let verifiedAt = 0;
    for (const { at, token } of heartbeats) {
      if (token === null) {
        unsigned += 1;
        unsignedAt = Math.max(unsignedAt, at);
        continue;
      }
      if (!tokenShapeOk(token)) return { kind: 'spoofed', at, problem: 'token-malformed', sender: null };
      const verdict = judgeToken(await this.check(token), { audience: audience(), identity }, at);
      if (!verdict.ok) return { kind: 'spoofed', at, problem: verdict.problem, sender: verdict.sender };
      verifiedAt = Math.max(verifiedAt, at);
    }
    return unsigned > 0 ? { kind: 'unsigned', count: unsigned, at: unsignedAt } : { kind: 'verified', at: verifiedAt };
  }

  /**
   * A forged heartbeat naming the host: one WARNING line, and the host's record and its host.spoofed episode
   * (one transaction, coalesced to one per window per host; a redelivered line changes nothing).
   */
  async recordSpoof(
    identity: HostIdentityAttributes,
    proof: Extract<HeartbeatProof, { kind: 'spoofed' }>,
    now: Date,
    windowMs: number,
    messageId: string | null | undefined,
  ): Promise<void> {
    log.warn(
      { ...identity, messageId, reason: proof.problem, sender: proof.sender, lineAt: new Date(proof.at).toISOString() },
      "logHeartbeat: a heartbeat whose identity token is not the named host's: not a sign of life (host.spoofed)",
    );
    const recordedAt = this.spoofRecorded.get(identity.instanceId);
    if (recordedAt !== undefined && now.getTime() - recordedAt < windowMs) return;
    const { alertKeys } = await this.io.recordSpoof(identity.instanceId, (host) => planSpoof(host, proof));
    if (this.spoofRecorded.size >= MAX_CACHED_TOKENS) this.spoofRecorded.clear();
    this.spoofRecorded.set(identity.instanceId, now.getTime());
    await this.io.deliverAlerts(alertKeys);
  }

  /**
   * One log line per host an instance sees unsigned heartbeats from (the count is on the host): debug while
   * accepted (every host of the fleet during the token's rollout: never an INFO line per message), a warning
   * when they are refused (that host is not counted alive).
   */
  logUnsigned(identity: HostIdentityAttributes, accepted: boolean): void {
    if (this.unsignedLogged.has(identity.instanceId)) return;
    if (this.unsignedLogged.size >= MAX_UNSIGNED_LOGGED) this.unsignedLogged.clear();
    this.unsignedLogged.add(identity.instanceId);
    if (accepted)
      log.debug(
        { ...identity, accepted },
        'logHeartbeat: heartbeats without an identity token, accepted (HEARTBEAT_UNSIGNED=accept) and counted',
      );
    else
      log.warn(
        { ...identity, accepted },
        'logHeartbeat: heartbeats without an identity token, not a sign of life (HEARTBEAT_UNSIGNED=reject)',
      );
  }
}
