import { perInstance } from './instance.js';
import { pubsubHandler } from './pubsub-handler.js';
import { config, logHeartbeatSubscription } from '../shared/config.js';
import { HeartbeatEngine } from '../shared/usecases/heartbeat.js';
import { drainLogSubscription } from '../shared/usecases/log-drain.js';

/** This instance's heartbeat engine, kept from tick to tick like logHeartbeat's (its own: another function). */
export const logHeartbeatDrainEngine = perInstance(() => new HeartbeatEngine());

/**
 * Pub/Sub, the drain tick Cloud Scheduler publishes every minute (pull delivery of the log topic): one
 * invocation drains every host's heartbeat and osquery_schedule lines since the last tick, through
 * logHeartbeat's own use case. The tick's content does not matter. A wrong subscription setting is a
 * ConfigError (rethrown: 5xx, the tick is retried), so no line is acknowledged unread.
 */
export const logHeartbeatDrain = pubsubHandler('logHeartbeatDrain', null, () =>
  drainLogSubscription(logHeartbeatDrainEngine.get(), {
    subscription: logHeartbeatSubscription(),
    budgetMs: config().LOG_DRAIN_BUDGET_SECONDS * 1000,
  }),
);
