// logHeartbeat's pull delivery: a scheduled drain of the filtered log subscription. Push delivery costs
// one invocation per heartbeat line; a drain reads every host's lines of the last minute in one
// invocation, through the same recordLogMessage (same coalescing, same batched host writes, with the engine of
// logHeartbeatDrain's instance).
import { ConfigError } from '../config.js';
import { asHandlerError, isNotFound, isPermissionDenied, PermanentError } from '../errors.js';
import { log } from '../log.js';
import { mapLimit } from '../rate.js';
import { acknowledge, pullMessages, release, type PulledMessage } from '../adapters/pubsub.js';
import { recordLogMessage, type HeartbeatEngine, type HeartbeatOutcome } from './heartbeat.js';

export interface DrainOptions {
  /** projects/P/subscriptions/S. */
  subscription: string;
  /** No pull starts, and no pulled message is processed, after this many ms; the rest is released. */
  budgetMs: number;
  /** Messages asked for per pull. */
  maxMessages?: number;
  /** Messages processed at once: about one batched host read and commit (heartbeat/batcher.ts MAX_BATCH). */
  concurrency?: number;
  /** How long a pull waits for a first message before the subscription counts as empty. */
  pullWaitMs?: number;
  /** The clock the budget is kept with. */
  clock?: () => number;
  /** The time a message is recorded at (recordLogMessage's `now`): now, but simulated time in the benchmark. */
  recordedAt?: () => Date;
}

export interface DrainResult {
  pulled: number;
  /** Recorded, or malformed / unknown / without identity (logged with the reason): never delivered again. */
  acked: number;
  /** Failed transiently or for an unknown cause, or left when the budget ran out: released for redelivery. */
  nacked: number;
  /** Pulls that returned messages. */
  batches: number;
  /** Of the nacked, those that were pulled and not processed because the budget ran out. */
  leftover: number;
  outcomes: Partial<Record<HeartbeatOutcome | 'failed' | 'permanent-failure', number>>;
}

type Verdict = 'ack' | 'failed' | 'leftover';

/**
 * Pulls the subscription until it is empty or the budget is spent, records every message with
 * recordLogMessage, acknowledges what is done (recorded, or refused with a logged reason) and releases
 * what failed transiently or for an unknown cause (asHandlerError), or was not reached. recordLogMessage
 * is idempotent per line, so a message redelivered after a lost acknowledgement changes nothing.
 * queryStats follow push delivery's rule: the buffer is written once its window ends (one write per query
 * per window, whatever the tick rate).
 */
export async function drainLogSubscription(engine: HeartbeatEngine, options: DrainOptions): Promise<DrainResult> {
  const { subscription, budgetMs, maxMessages = 1000, concurrency = 160, pullWaitMs = 2000 } = options;
  const clock = options.clock ?? Date.now;
  const recordedAt = options.recordedAt ?? (() => new Date());
  const deadline = clock() + budgetMs;
  const result: DrainResult = {
    pulled: 0,
    acked: 0,
    nacked: 0,
    batches: 0,
    leftover: 0,
    outcomes: {},
  };
  const count = (outcome: keyof DrainResult['outcomes']) =>
    (result.outcomes[outcome] = (result.outcomes[outcome] ?? 0) + 1);
  let configError: ConfigError | null = null;
  let emptied = false;
  let outage = false;

  for (let remaining = deadline - clock(); remaining > 0; remaining = deadline - clock()) {
    let pulled: PulledMessage[];
    try {
      pulled = await pullMessages(subscription, maxMessages, Math.min(pullWaitMs, remaining));
    } catch (error) {
      // A subscription that is not there, or not ours to read, is a wrong setting: fail loudly.
      if (isNotFound(error) || isPermissionDenied(error))
        throw new ConfigError(
          `LOG_HEARTBEAT_SUBSCRIPTION: cannot pull ${subscription}: ` +
            (error instanceof Error ? error.message : String(error)),
        );
      throw error;
    }
    if (pulled.length === 0) {
      emptied = true;
      break;
    }
    result.batches += 1;
    result.pulled += pulled.length;

    const verdicts = await mapLimit(pulled, concurrency, async ({ message }): Promise<Verdict> => {
      if (configError || clock() >= deadline) return 'leftover';
      try {
        const recorded = await recordLogMessage(engine, message, recordedAt());
        count(recorded.outcome);
        if (recorded.outcome === 'no-lines')
          // Counted and reported, never dropped silently (the other refusals log in recordLogMessage).
          log.warn(
            { messageId: message.messageId, malformed: recorded.malformed, attributes: message.attributes },
            'logHeartbeatDrain: message without a readable log line, acknowledged',
          );
        return 'ack';
      } catch (error) {
        const mapped = asHandlerError(error);
        if (mapped instanceof PermanentError) {
          count('permanent-failure');
          log.error(
            { messageId: message.messageId, reason: mapped.message },
            'logHeartbeatDrain: permanent failure, acknowledged',
          );
          return 'ack';
        }
        if (mapped instanceof ConfigError) configError = mapped;
        count('failed');
        log.warn(
          { messageId: message.messageId, reason: mapped.message },
          'logHeartbeatDrain: transient failure, released for redelivery',
        );
        return 'failed';
      }
    });

    const done = pulled.filter((_, i) => verdicts[i] === 'ack').map((m) => m.ackId);
    const again = pulled.filter((_, i) => verdicts[i] !== 'ack').map((m) => m.ackId);
    await acknowledge(subscription, done);
    result.acked += done.length;
    if (again.length > 0) {
      try {
        await release(subscription, again);
      } catch (error) {
        // They come back when their ack deadline expires instead.
        log.warn({ err: error, messages: again.length }, 'logHeartbeatDrain: releasing messages failed');
      }
    }
    result.nacked += again.length;
    result.leftover += verdicts.filter((v) => v === 'leftover').length;
    if (configError) throw configError;
    // Nothing in the batch went through: an outage, not a bad message. The next tick tries again.
    if (done.length === 0) {
      outage = true;
      break;
    }
  }
  if (!emptied && !outage)
    // Lines wait for the next tick; a drain that keeps ending this way has a fleet too large for one
    // drain a minute, and hosts would turn silent once the backlog is older than the threshold.
    log.error(
      { pulled: result.pulled, leftover: result.leftover, budgetMs },
      'logHeartbeatDrain: the budget ended before the subscription was empty (backlog); ' +
        'if this repeats, use push delivery (log_heartbeat_delivery = "push") or a longer LOG_DRAIN_BUDGET_SECONDS',
    );

  if (result.outcomes.failed)
    log.warn(
      { failed: result.outcomes.failed, nacked: result.nacked },
      'logHeartbeatDrain: messages failed and were released',
    );
  return result;
}
