// `drift.detection`: 5,000 hosts get a new configuration version at the same moment; 1% of them keep
// running the old one (osqueryd not restarted). Each host's simulated osqueryd writes its 5-minute heartbeat
// (splayed by 10%, at a random phase) with the config_version decoration it loaded; every line goes through
// logHeartbeat's own parser (parseLogLines) and drift decision (foldRunning) on a simulated clock. Measured:
// how many drifted hosts open host.drifted, how long after their first drifted line (p95), against the bound
// (the grace period plus one splayed heartbeat interval), false alerts on the others; and the naive baseline
// beside it, OS Config's compliance alone, which calls every one of them compliant.
// In process, no emulator: the decision and the lines are the production and simulator code; Pub/Sub and
// Firestore between them are measured by the heartbeat benchmarks.
import { parseLogLines } from '../../shared/domain/heartbeat.js';
import { DEFAULT_DRIFT_GRACE_MS, foldRunning, type RunningState } from '../../shared/domain/drift.js';
import { heartbeatLine, startWorker, FALLBACK_SCHEDULE } from '../../infra/local/simulator/osqueryd.js';

export const DRIFT_RECORD = 'drift.detection';

export interface DriftRecord {
  name: typeof DRIFT_RECORD;
  hosts: number;
  driftedHosts: number;
  detectedHosts: number;
  /** From a drifted host's first drifted line to its host.drifted, p95 and max (simulated ms). */
  p95DetectMs: number;
  maxDetectMs: number;
  /** The grace period plus one heartbeat interval with its splay. */
  boundMs: number;
  /** host.drifted on hosts that run the new version. */
  falseAlerts: number;
  /** The naive baseline: hosts OS Config's compliance would flag (none: every one reports the new version applied). */
  naiveDetectedHosts: number;
  /** Real time the simulated hour took. */
  wallMs: number;
}

const INTERVAL_MS = 300_000;
const SPLAY = 0.1;

/** Seeded (mulberry32): the same run every time. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function measureDriftDetection(hosts = 5_000, driftShare = 0.01, graceMs = DEFAULT_DRIFT_GRACE_MS): DriftRecord {
  const started = Date.now();
  const random = seeded(22);
  const t0 = Date.now() - 3 * 3_600_000;
  const OLD = 'v0000000000aa';
  const NEW = 'v0000000000bb';
  const drifted = new Set<number>();
  for (let i = 0; drifted.size < Math.round(hosts * driftShare); i++) drifted.add(Math.floor(random() * hosts));
  // What OS Config reports for every host: the new version applied (the stuck ones too: their files changed).
  const applied = { configVersion: NEW, osqueryVersion: '5.23.1-1.linux' };
  let naiveDetectedHosts = 0;
  const detectMs: number[] = [];
  let falseAlerts = 0;
  const horizon = t0 + graceMs + 4 * INTERVAL_MS;
  for (let h = 0; h < hosts; h++) {
    const host = { id: String(10_000_000 + h), name: `vm-${h}` };
    const identity = { instanceId: host.id, name: host.name, project: 'bench', zone: 'bench-zone' };
    // A copy: the fallback schedule itself is what a worker with an unreadable configuration runs (config_valid 0).
    const worker = startWorker([...FALLBACK_SCHEDULE], null, new Date(t0 - 3_600_000), {
      decorations: { config_version: drifted.has(h) ? OLD : NEW },
    });
    if (applied.configVersion !== NEW) naiveDetectedHosts += 1;
    let state: RunningState | null = null;
    let at = t0 + random() * INTERVAL_MS;
    let firstDrift: number | null = null;
    while (at <= horizon) {
      const line = heartbeatLine(host, worker, 48 << 20, new Date(at));
      const parsed = parseLogLines(JSON.stringify(line), at);
      const sample = parsed.telemetry.find((x) => x.kind === 'heartbeat');
      const evidence = sample?.kind === 'heartbeat' ? (sample.sample.running ?? null) : null;
      const { next, episodes } = foldRunning(state, evidence, applied, identity, graceMs);
      if (next) state = next;
      if (next?.drift && firstDrift === null) firstDrift = next.at.getTime();
      if (episodes.open) {
        if (drifted.has(h)) detectMs.push(next!.at.getTime() - firstDrift!);
        else falseAlerts += 1;
        break;
      }
      at += INTERVAL_MS * (1 + SPLAY * (2 * random() - 1));
    }
  }
  detectMs.sort((a, b) => a - b);
  const p95 = detectMs[Math.max(0, Math.ceil(detectMs.length * 0.95) - 1)] ?? 0;
  return {
    name: DRIFT_RECORD,
    hosts,
    driftedHosts: drifted.size,
    detectedHosts: detectMs.length,
    p95DetectMs: Math.round(p95),
    maxDetectMs: Math.round(detectMs.at(-1) ?? 0),
    boundMs: graceMs + INTERVAL_MS * (1 + SPLAY),
    falseAlerts,
    naiveDetectedHosts,
    wallMs: Date.now() - started,
  };
}
