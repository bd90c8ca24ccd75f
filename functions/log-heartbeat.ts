import { pubsubHandler } from './pubsub-handler.js';
import { identityOf } from '../shared/domain/heartbeat.js';
import { addLogContext } from '../shared/log.js';
import { recordLogMessage } from '../shared/usecases/heartbeat.js';

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
    return recordLogMessage(message);
  },
  { doneLevel: 'debug' },
);
