// What happens when an audit run closes, written in one place and in order. Every shard of the run calls
// it after recording its project; it acts only once the run is closed, and each step is idempotent per run,
// so a redelivered shard, two shards closing the run at once, or a retry after a step failed (it rethrows,
// and the shard is redelivered) never does a step twice:
//   1. the fleet status snapshot (status/fleet): once per run, kept in its history;
//   2. the fleet's silence storm: the host.silent alerts the shards held, kept by one fleet.silent or delivered
//      now (a repeat opens nothing new and releases nothing twice: shared/usecases/storm.ts);
//   3. osquery's cost (query alerts, status/osquery): once per run, unless a newer run already closed;
//   4. the rollout controller: once per run (the rollout's evaluation names the run it was made at).
import type { PublishOutcome } from '../adapters/status.js';
import { getOsqueryStatus } from '../adapters/telemetry.js';
import { controlRollout, type Controlled } from './rollout.js';
import { publishRunStatus } from './status.js';
import { settleFleetStorm } from './storm.js';
import { evaluateQueryCosts } from './telemetry.js';

export interface RunClose {
  status: PublishOutcome;
  /** osquery's cost was evaluated at this call (false: not closed, done before, or a newer run's). */
  queryCosts: boolean;
  rollout: Controlled | null;
}

export async function closeAuditRun(runId: string, now = new Date()): Promise<RunClose> {
  const status = await publishRunStatus(runId, now);
  const closed = status.published || status.reason === 'already';
  if (!closed) return { status, queryCosts: false, rollout: null };
  // Before anything slower: the host alerts of the run wait for this.
  await settleFleetStorm(runId, now);
  // A redelivery after the evaluation failed evaluates again; an older run closing late does not overwrite.
  const queryCosts = status.published ? status.latest : (await getOsqueryStatus())?.runId !== runId;
  if (queryCosts) await evaluateQueryCosts(runId, now);
  // Every project was just audited: the controller's gates read fresh host states.
  const rollout = await controlRollout(runId, now);
  return { status, queryCosts, rollout };
}
