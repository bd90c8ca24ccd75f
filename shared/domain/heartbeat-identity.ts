// Whose line is it (pure): a heartbeat carries the VM's instance identity token, which Google signs with the
// VM's own project, zone and instance id. Any VM can publish a line naming any host (attributes are free
// text), but only the host itself can get a token naming it: a heartbeat is a sign of life for the host
// it names only when its token's claims are that host (docs/heartbeat.md: Whose line is it).
import type { AlertHost, EpisodeChange } from './alerts.js';
import { episodeKey } from './alerts.js';

/** The host a line names (shared/domain/heartbeat.ts identityOf: the shipper's attributes). */
export interface NamedHost {
  instanceId: string;
  project: string | null;
  zone: string | null;
}

/** The JSON field of a heartbeat line that carries the token (the shipper adds it; never an attribute). */
export const IDENTITY_TOKEN_FIELD = 'identity_token';

/**
 * A full-format instance identity token is about 1 KB (three base64url parts, RS256 over a 2048-bit key).
 * Anything longer is not one: not parsed, not verified, not kept.
 */
export const MAX_TOKEN_CHARS = 4096;

/** Seconds of clock difference allowed at both ends of a token's life (google-auth-library's own). */
export const TOKEN_CLOCK_SKEW_S = 300;

/**
 * An open host.spoofed episode resolves at the first verified heartbeat of the host that comes this long
 * after the last forged line naming it: an hour is the longest a token lives, so whatever sent them has
 * stopped (or lost the token it used). Sooner, a forger still at it beside the genuine host would open and
 * close an episode every few minutes.
 */
export const SPOOF_QUIET_MS = 60 * 60_000;

/** The claims google-auth-library returns once the signature is Google's (the token's payload). */
export interface TokenClaims {
  aud?: unknown;
  exp?: unknown;
  iat?: unknown;
  google?: { compute_engine?: Record<string, unknown> } | unknown;
}

/** The VM the token was issued to, from its google.compute_engine claims. */
export interface TokenSender {
  instanceId: string;
  project: string;
  zone: string;
  name: string | null;
}

/** Why a token does not make its line a sign of life for the host the line names. */
export type TokenProblem =
  /** Not three base64url parts, or over MAX_TOKEN_CHARS, or not a string. */
  | 'token-malformed'
  /** Not signed by a key in Google's certificates (or a bad signature). */
  | 'token-signature'
  /** Expired (or not yet valid) at the line's time. */
  | 'token-expired'
  /** Issued for another audience. */
  | 'token-audience'
  /** Without google.compute_engine claims (format=full): not a VM's token. */
  | 'token-not-compute'
  /** Issued to another VM than the one the line names. */
  | 'instance-mismatch'
  | 'project-mismatch'
  | 'zone-mismatch';

/** What the signature check (google-auth-library) found: the claims it vouches for, or why not. */
export type SignatureCheck =
  | { ok: true; claims: TokenClaims }
  /** `expired`: the signature is Google's but the library judged the token stale now (a late delivery). */
  | { ok: false; problem: 'token-malformed' | 'token-signature'; claims?: undefined }
  | { ok: false; problem: 'token-expired'; claims: TokenClaims };

export type TokenVerdict =
  { ok: true; sender: TokenSender } | { ok: false; problem: TokenProblem; sender: TokenSender | null };

const text = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : v == null ? null : String(v));

/** The google.compute_engine claims, or null when the token has none. */
export function senderOf(claims: TokenClaims): TokenSender | null {
  const google = claims.google;
  const ce =
    typeof google === 'object' && google !== null
      ? (google as { compute_engine?: Record<string, unknown> }).compute_engine
      : undefined;
  if (!ce || typeof ce !== 'object') return null;
  const instanceId = text(ce.instance_id);
  const project = text(ce.project_id);
  const zone = text(ce.zone);
  if (!instanceId || !project || !zone) return null;
  return { instanceId, project, zone, name: text(ce.instance_name) };
}

/** Cheap shape check before any cryptography: three base64url parts, within MAX_TOKEN_CHARS. */
export function tokenShapeOk(token: unknown): token is string {
  return typeof token === 'string' && token.length <= MAX_TOKEN_CHARS && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
}

/**
 * Pure: whether a heartbeat line whose token passed (or failed) the signature check proves the host the line
 * names. Judged at the line's time, not at delivery: a heartbeat delivered late from a backlog carries the
 * token it was sent with (expired by now) and is still the host's own line. The audience and every
 * google.compute_engine claim the line names (instance id, project, zone) must match.
 */
export function judgeToken(
  check: SignatureCheck,
  expected: { audience: string; identity: NamedHost },
  lineAtMs: number,
): TokenVerdict {
  if (!check.ok && check.problem !== 'token-expired') return { ok: false, problem: check.problem, sender: null };
  const claims = check.claims!;
  const sender = senderOf(claims);
  if (claims.aud !== expected.audience) return { ok: false, problem: 'token-audience', sender };
  const exp = Number(claims.exp);
  const iat = Number(claims.iat);
  const at = lineAtMs / 1000;
  if (!Number.isFinite(exp) || !Number.isFinite(iat) || at > exp + TOKEN_CLOCK_SKEW_S || at < iat - TOKEN_CLOCK_SKEW_S)
    return { ok: false, problem: 'token-expired', sender };
  if (!sender) return { ok: false, problem: 'token-not-compute', sender: null };
  const { identity } = expected;
  if (sender.instanceId !== identity.instanceId) return { ok: false, problem: 'instance-mismatch', sender };
  if (identity.project !== null && sender.project !== identity.project)
    return { ok: false, problem: 'project-mismatch', sender };
  if (identity.zone !== null && sender.zone !== identity.zone) return { ok: false, problem: 'zone-mismatch', sender };
  return { ok: true, sender };
}

/** How a message's heartbeats came out: what logHeartbeat does with its lines. */
export type HeartbeatProof =
  /** Every heartbeat's token is the named host's: its lines count. */
  | { kind: 'verified'; at: number }
  /** Heartbeats without a token: counted; a sign of life only while HEARTBEAT_UNSIGNED is accept. */
  | { kind: 'unsigned'; count: number; at: number }
  /** A token that does not prove the named host: the message is not a sign of life, the host is told. */
  | { kind: 'spoofed'; at: number; problem: TokenProblem; sender: TokenSender | null }
  /** No heartbeat in the message (a schedule snapshot, an older shipper's line). */
  | { kind: 'none' };

/** What a message's lines give the host they name: whether they are a sign of life, and its telemetry. */
export interface LineUse {
  /** The lines move lastLogAt (and may end a silent episode). */
  signOfLife: boolean;
  /** Their telemetry (worker samples, schedule snapshots) is kept for the host. */
  telemetry: boolean;
}

/**
 * Pure: the unsigned policy. A forged heartbeat gives the named host nothing, not even its telemetry (the
 * forger's worker would pass for the host's). Unsigned heartbeats count while `accept` (the rollout of the
 * refresher) and give nothing with `reject`. Lines that are not heartbeats carry no token (log volume): with
 * `reject` they keep their telemetry (query costs) but only a verified heartbeat proves the host alive.
 */
export function useOfLines(proof: HeartbeatProof, unsigned: 'accept' | 'reject'): LineUse {
  switch (proof.kind) {
    case 'verified':
      return { signOfLife: true, telemetry: true };
    case 'spoofed':
      return { signOfLife: false, telemetry: false };
    case 'unsigned':
      return unsigned === 'accept' ? { signOfLife: true, telemetry: true } : { signOfLife: false, telemetry: false };
    case 'none':
      return { signOfLife: unsigned === 'accept', telemetry: true };
  }
}

/** hosts/{id}.spoofed: the host.spoofed episode of a host, open (resolvedAt null) or the last one resolved. */
export interface SpoofedState {
  /** The first forged line's time: the episode's start. */
  since: Date;
  /** The newest forged line's time. */
  lastAt: Date;
  reason: TokenProblem;
  /** The VM the token was issued to, when its signature was Google's (null: unknown). */
  sender: TokenSender | null;
  /** Forged lines recorded in the episode (coalesced: at most one write per window). */
  lines: number;
  /** When a verified heartbeat closed it (null: open). */
  resolvedAt: Date | null;
}

/** What a forged heartbeat writes to the host it names, with the episode it opens. */
export interface SpoofWrite {
  spoofed: SpoofedState;
  episodes: EpisodeChange;
}

/**
 * Pure: a forged heartbeat (at `lineAt`) naming this host. The first opens a host.spoofed episode; later ones
 * move its lastAt forward; a line not newer than what was recorded (a redelivery) changes nothing, so it
 * never sends a second alert. A line older than the resolution of the last episode does not open another.
 */
export function planSpoof(
  host: AlertHost & { spoofed?: SpoofedState | null },
  report: { at: number; problem: TokenProblem; sender: TokenSender | null },
): SpoofWrite | null {
  const current = host.spoofed ?? null;
  const at = new Date(report.at);
  if (current && current.resolvedAt === null) {
    if (report.at <= current.lastAt.getTime()) return null;
    return { spoofed: { ...current, lastAt: at, lines: current.lines + 1 }, episodes: {} };
  }
  if (current?.resolvedAt && report.at <= current.resolvedAt.getTime()) return null;
  if (current && report.at <= current.lastAt.getTime()) return null;
  const alertHost = { instanceId: host.instanceId, name: host.name, project: host.project, zone: host.zone };
  return {
    spoofed: { since: at, lastAt: at, reason: report.problem, sender: report.sender, lines: 1, resolvedAt: null },
    episodes: {
      open: {
        kind: 'host.spoofed',
        severity: 'critical',
        dedupKey: episodeKey('host.spoofed', host.instanceId, at),
        host: alertHost,
        reason: report.problem,
        since: at,
        details: { sender: report.sender },
      },
    },
  };
}

/**
 * Pure: a verified heartbeat (at `verifiedAt`) of a host whose host.spoofed episode is open resolves it when
 * it comes SPOOF_QUIET_MS after the last forged line; null otherwise.
 */
export function planSpoofResolution(
  spoofed: SpoofedState | null,
  instanceId: string,
  verifiedAt: number | null | undefined,
  now: Date,
): SpoofWrite | null {
  if (!spoofed || spoofed.resolvedAt !== null || !verifiedAt) return null;
  if (verifiedAt - spoofed.lastAt.getTime() < SPOOF_QUIET_MS) return null;
  return {
    spoofed: { ...spoofed, resolvedAt: now },
    episodes: { close: { kind: 'host.spoofed', instanceId, previousSince: spoofed.since, at: now } },
  };
}
