import { pubsubHandler } from './pubsub-handler.js';
import { handleIncident, notificationSchema } from '../shared/usecases/incidents.js';

/** Pub/Sub, Cloud Monitoring's notification channel: incidents about VMs -> hosts and host.performance alerts. */
export const monitoringAlert = pubsubHandler('monitoringAlert', notificationSchema, (notification) =>
  handleIncident(notification),
);
