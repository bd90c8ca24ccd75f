import { pubsubHandler } from './pubsub-handler.js';
import { recordLogMessage } from '../shared/usecases/heartbeat.js';

/** Pub/Sub, the log topic the shipper on every VM writes osquery results to (data: JSON lines). */
export const logHeartbeat = pubsubHandler('logHeartbeat', null, (_raw, message) => recordLogMessage(message));
