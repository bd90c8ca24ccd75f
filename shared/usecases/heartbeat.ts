// logHeartbeat: when each host's osquery logs last arrived, and what osquery says about its own cost
// (hosts/{id}.osqueryd and host.performance from the heartbeat, queryStats from osquery_schedule).
// The engine an instance keeps between messages lives in ./heartbeat/: the host write coalescer (its
// memory of each host), the batcher (one read and one commit for the hosts written together) and the
// query statistics buffer. The entry point builds one engine per instance and passes it in.
import { config, heartbeatTokenAudience } from '../config.js';
import { log } from '../log.js';
import { identityOf, parseLogLines } from '../domain/heartbeat.js';
import { reject as rejectValue, type Rejections } from '../domain/trust.js';
import { useOfLines } from '../domain/heartbeat-identity.js';
import { checkSignature } from '../adapters/identity-tokens.js';
import type { PubSubMessage } from '../adapters/pubsub.js';
import * as hosts from '../adapters/hosts.js';
import { writeQueryStats } from '../adapters/telemetry.js';
import { deliverAlerts } from './alerts.js';
import { HeartbeatBatcher, type HeartbeatStore } from './heartbeat/batcher.js';
import { HostWriteCoalescer, type HostWriteOutcome } from './heartbeat/host-write-coalescer.js';
import { QueryStatsBuffer, type WriteQueryStats } from './heartbeat/query-stats-buffer.js';
import { HeartbeatIdentity, type IdentityIo } from './heartbeat/identity.js';

/** `spoofed`: a heartbeat whose identity token is not the named host's (never a sign of life). */
export type HeartbeatOutcome = HostWriteOutcome | 'no-identity' | 'no-lines' | 'spoofed';

/** Where the engine reads and writes: Firestore and the alert topic, unless a test gives it others. */
export type HeartbeatIo = HeartbeatStore & { writeQueryStats: WriteQueryStats } & Partial<IdentityIo>;

const GOOGLE_CLOUD: HeartbeatIo = {
  readHosts: (instanceIds) => hosts.readHosts(instanceIds),
  writeHeartbeats: (writes) => hosts.writeHeartbeats(writes),
  recordHeartbeat: (instanceId, plan) => hosts.recordHeartbeat(instanceId, plan),
  deliverAlerts,
  writeQueryStats: (increments) => writeQueryStats(increments),
  checkSignature: (token) => checkSignature(token),
  recordSpoof: (instanceId, plan) => hosts.recordSpoof(instanceId, plan),
};

/**
 * What one instance keeps from message to message. Building it touches no client (they are made on first
 * use); a new engine is a new instance's: it remembers nothing.
 */
export class HeartbeatEngine {
  readonly stats: QueryStatsBuffer;
  readonly batcher: HeartbeatBatcher;
  readonly hosts: HostWriteCoalescer;
  readonly identity: HeartbeatIdentity;

  constructor(io: HeartbeatIo = GOOGLE_CLOUD) {
    this.stats = new QueryStatsBuffer(io.writeQueryStats);
    this.batcher = new HeartbeatBatcher(io);
    this.hosts = new HostWriteCoalescer(this.batcher, this.stats);
    this.identity = new HeartbeatIdentity({
      checkSignature: io.checkSignature ?? GOOGLE_CLOUD.checkSignature!,
      recordSpoof: io.recordSpoof ?? GOOGLE_CLOUD.recordSpoof!,
      deliverAlerts: io.deliverAlerts,
    });
  }
}

export interface HeartbeatResult {
  outcome: HeartbeatOutcome;
  lines: number;
  malformed: number;
  instanceId: string | null;
}

/** One log message, handled with this instance's engine: whose lines they are, and their host written or coalesced. */
export async function recordLogMessage(
  engine: HeartbeatEngine,
  message: PubSubMessage,
  now = new Date(),
): Promise<HeartbeatResult> {
  const identity = identityOf(message.attributes);
  const parsed = parseLogLines(message.data.toString('utf8'), now.getTime());
  const base = { lines: parsed.lines, malformed: parsed.malformed, instanceId: identity?.instanceId ?? null };
  if (!identity) {
    // Counted and reported, never dropped silently: a shipper without the identity contract.
    log.warn(
      { lines: parsed.lines, attributes: message.attributes, messageId: message.messageId, rejected: parsed.rejected },
      'logHeartbeat: log lines without host identity attributes',
    );
    return { ...base, outcome: 'no-identity' };
  }
  const rejected: Rejections = { ...parsed.rejected };
  if (parsed.newest === null) {
    warnRejected(identity, message, parsed, rejected);
    return { ...base, outcome: 'no-lines' };
  }

  const windowMs = config().HEARTBEAT_WRITE_WINDOW_SECONDS * 1000;
  // Whose line is it: a heartbeat proves the host it names only with that host's identity token.
  const proof = await engine.identity.prove(identity, parsed.heartbeats, heartbeatTokenAudience);
  if (proof.kind === 'spoofed') {
    warnRejected(identity, message, parsed, rejected);
    await engine.identity.recordSpoof(identity, proof, now, windowMs, message.messageId);
    return { ...base, outcome: 'spoofed' };
  }
  const use = useOfLines(proof, config().HEARTBEAT_UNSIGNED);
  if (proof.kind === 'unsigned') engine.identity.logUnsigned(identity, use.signOfLife);
  const overflow = engine.hosts.take(
    identity.instanceId,
    // 0: no sign of life; the lines' telemetry, and the count of unsigned heartbeats, are still written.
    use.signOfLife ? parsed.newest : 0,
    use.telemetry ? parsed.telemetry : [],
    proof.kind === 'verified'
      ? { verifiedAt: proof.at }
      : proof.kind === 'unsigned'
        ? { unsigned: { count: proof.count, lastAt: proof.at } }
        : {},
  );
  if (overflow > 0) rejectValue(rejected, 'telemetry-overflow', overflow);
  warnRejected(identity, message, parsed, rejected);
  const cause = `logHeartbeat ${message.messageId ?? ''}`.trim();
  const { outcome, own } = await engine.hosts.write(identity.instanceId, windowMs, now, cause);
  if (outcome === 'unknown-host' && own)
    log.warn(
      { instanceId: identity.instanceId, project: identity.project, zone: identity.zone, lines: parsed.lines },
      'logHeartbeat: log lines from an unknown host',
    );
  return { ...base, outcome };
}

/** One line per message that carried something not trusted: the host, and how many of each reason. */
function warnRejected(
  identity: { instanceId: string; project: string | null; zone: string | null },
  message: PubSubMessage,
  parsed: { lines: number; malformed: number },
  rejected: Rejections,
): void {
  if (Object.keys(rejected).length === 0) return;
  log.warn(
    { ...identity, messageId: message.messageId, lines: parsed.lines, malformed: parsed.malformed, rejected },
    'logHeartbeat: lines or values from the VM not trusted, not recorded',
  );
}
