import { perInstance } from './instance.js';
import { pubsubHandler } from './pubsub-handler.js';
import { identityOf } from '../shared/domain/heartbeat.js';
import { addLogContext } from '../shared/log.js';
import { HeartbeatEngine, recordLogMessage } from '../shared/usecases/heartbeat.js';

/** This instance's heartbeat engine: its memory of each host is what spares their further lines a write. */
export const logHeartbeatEngine = perInstance(() => new HeartbeatEngine());

/**
 * Pub/Sub, the log topic the shipper on every VM writes osquery results to (data: JSON lines). One
 * invocation per message of the busiest topic: its done line is debug, not info.
 */
export const logHeartbeat = pubsubHandler(
  'logHeartbeat',
  null,
  (_raw, message) => {
    const instanceId = identityOf(message.attributes)?.instanceId;
    if (instanceId) addLogContext({ instanceId });
    return recordLogMessage(logHeartbeatEngine.get(), message);
  },
  { doneLevel: 'debug' },
);
