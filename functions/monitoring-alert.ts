import { pubsubHandler } from './pubsub-handler.js';
import { addLogContext } from '../shared/log.js';
import { handleIncident, notificationSchema } from '../shared/usecases/incidents.js';

/** Pub/Sub, Cloud Monitoring's notification channel: incidents about VMs -> hosts and host.performance alerts. */
export const monitoringAlert = pubsubHandler('monitoringAlert', notificationSchema, (notification) => {
  const instanceId = notification.incident?.resource?.labels?.instance_id;
  if (instanceId) addLogContext({ instanceId });
  return handleIncident(notification);
});
