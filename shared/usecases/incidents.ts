// monitoringAlert: Cloud Monitoring incidents about a VM (osqueryd CPU, memory) on its host document
// and as host.performance alerts.
import { z } from 'zod';
import { log } from '../log.js';
import { isInstanceId, isProjectId, isZone } from '../domain/ids.js';
import { incidentKey, withIncident, withoutIncident, type OpenIncident } from '../domain/incident.js';
import { closeEpisode, openEpisode } from '../adapters/alerts.js';
import { getHost, updateOpenIncidents } from '../adapters/hosts.js';
import { recordBacklogIncident } from '../adapters/pipeline.js';
import { backlogMeasure, lagText, withMeasure } from '../domain/pipeline.js';
import { config } from '../config.js';
import { deliverAlerts } from './alerts.js';

// Every field is bounded before anything is written: an incident that is not what Cloud Monitoring
// sends (an id with a slash, an instance id that is not one, a date ten thousand years out, a
// twenty-kilobyte policy name) is malformed as a whole, logged and acknowledged, and writes nothing.
const epochSeconds = z
  .union([
    z.number(),
    z
      .string()
      .regex(/^\d{1,12}$/)
      .transform(Number),
  ])
  .pipe(z.number().min(0).max(4_102_444_800, 'expected a time before 2100'))
  .nullish();
const text = (max: number) => z.string().max(max);
const labels = z
  .object({
    instance_id: z.string().refine(isInstanceId, 'expected a Compute instance id').optional(),
    project_id: z.string().refine(isProjectId, 'expected a project id').optional(),
    zone: z.string().refine(isZone, 'expected a zone').optional(),
  })
  .catchall(text(1024));

export const notificationSchema = z
  .object({
    version: text(32),
    incident: z
      .object({
        // Monitoring's incident ids are dotted base-36 (e.g. 0.m5gzlkz0ubq1); they name an alerts/ document.
        incident_id: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'expected an incident id'),
        // Optional so the console's test notification (version "test", no state) parses.
        state: z
          .string()
          .transform((s) => s.toLowerCase())
          .pipe(z.enum(['open', 'closed']))
          .optional(),
        started_at: epochSeconds,
        ended_at: epochSeconds,
        url: z
          .string()
          .max(2048)
          .regex(/^https:\/\//, 'expected an https URL')
          .optional(),
        resource: z
          .object({ type: text(256).optional(), labels: labels.optional() })
          .passthrough()
          .nullish(),
        resource_name: text(1024).nullish(),
        metric: z
          .object({ type: text(512).optional(), displayName: text(1024).optional() })
          .passthrough()
          .nullish(),
        policy_name: text(1024).nullish(),
        condition_name: text(1024).nullish(),
        observed_value: z.union([text(64), z.number()]).nullish(),
        threshold_value: z.union([text(64), z.number()]).nullish(),
        summary: text(4096).nullish(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();

export type Notification = z.infer<typeof notificationSchema>;
export type IncidentOutcome = 'test-notification' | 'opened' | 'closed' | 'duplicate' | 'no-incident';

/** Monitoring's resource type of a Pub/Sub subscription's metrics (the log subscriptions' backlog policies). */
const SUBSCRIPTION_RESOURCE = 'pubsub_subscription';
const SUBSCRIPTION_ID = /^(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/;

/**
 * An incident on a log subscription's backlog: kept on pipeline/{subscription}, one pipeline.backlog
 * episode per subscription while any of its incidents (age, count) is open.
 */
async function handleBacklogIncident(
  incident: NonNullable<Notification['incident']> & { state: 'open' | 'closed' },
  subscription: string,
  now: Date,
): Promise<IncidentOutcome> {
  const seconds = incident.state === 'open' ? incident.started_at : incident.ended_at;
  const at = seconds ? new Date(seconds * 1000) : now;
  const role = subscription === config().SIEM_SUBSCRIPTION ? 'siem' : 'heartbeat';
  const observed = incident.observed_value == null ? null : String(incident.observed_value);
  const details = {
    subscription,
    role,
    metric: incident.metric?.type ?? null,
    observed,
    threshold: incident.threshold_value == null ? null : String(incident.threshold_value),
    url: incident.url ?? null,
  };
  // The measured lag (validated: a notification is data), kept on pipeline/{subscription} and said in the alert.
  const measure = backlogMeasure(incident.metric?.type, incident.observed_value);
  const lag = measure ? lagText(withMeasure(null, measure, at)) : null;
  const reason =
    `${role === 'siem' ? "the SIEM's" : 'the heartbeat'} subscription ${subscription} is behind` +
    (incident.condition_name ? ` (${incident.condition_name})` : '') +
    (lag ? `: ${lag}` : '');
  const keys = await recordBacklogIncident(
    { subscription, role, incidentId: incident.incident_id, state: incident.state, at, measure },
    { reason, details: { ...details, lag } },
  );
  await deliverAlerts(keys);
  log.info({ subscription, role, state: incident.state, lag, keys }, 'monitoringAlert: log subscription backlog');
  return keys.length > 0 ? (incident.state === 'open' ? 'opened' : 'closed') : 'duplicate';
}

export async function handleIncident(notification: Notification, now = new Date()): Promise<IncidentOutcome> {
  if (notification.version === 'test') {
    log.info({}, "monitoringAlert: the console's test notification arrived; the channel works");
    return 'test-notification';
  }
  const incident = notification.incident;
  if (!incident?.state) {
    log.warn(
      { version: notification.version },
      'monitoringAlert: notification without an incident state; nothing to record',
    );
    return 'no-incident';
  }
  if (incident.resource?.type === SUBSCRIPTION_RESOURCE) {
    const subscription = String(incident.resource.labels?.subscription_id ?? '');
    if (SUBSCRIPTION_ID.test(subscription))
      return handleBacklogIncident({ ...incident, state: incident.state }, subscription, now);
    log.warn({ incidentId: incident.incident_id }, 'monitoringAlert: subscription incident without a subscription id');
    return 'no-incident';
  }
  const instanceId = incident.resource?.labels?.instance_id ?? null;
  const key = incidentKey(instanceId, incident.incident_id);

  if (incident.state === 'open') {
    const host = instanceId ? await getHost(instanceId) : null;
    const started = incident.started_at ? new Date(incident.started_at * 1000) : now;
    const reason =
      [incident.policy_name, incident.condition_name].filter(Boolean).join(': ') ||
      incident.summary ||
      'monitoring incident';
    const alertHost = instanceId
      ? {
          instanceId,
          name: host?.name ?? instanceId,
          project: host?.project ?? incident.resource?.labels?.project_id ?? '',
          zone: host?.zone ?? incident.resource?.labels?.zone ?? '',
        }
      : null;
    const opened = await openEpisode({
      dedupKey: key,
      kind: 'host.performance',
      severity: 'warning',
      source: 'monitoring',
      host: alertHost,
      reason,
      since: started,
      at: started,
    });
    if (host && instanceId) {
      const record: OpenIncident = {
        incidentId: incident.incident_id,
        policy: incident.policy_name ?? null,
        condition: incident.condition_name ?? null,
        metric: incident.metric?.type ?? null,
        observed: incident.observed_value == null ? null : String(incident.observed_value),
        threshold: incident.threshold_value == null ? null : String(incident.threshold_value),
        startedAt: incident.started_at ? new Date(incident.started_at * 1000) : null,
        url: incident.url ?? null,
      };
      await updateOpenIncidents(instanceId, (list) => withIncident(list, record));
    } else if (!instanceId) {
      log.info(
        { incidentId: incident.incident_id, resource: incident.resource_name ?? incident.resource?.type },
        'monitoringAlert: incident without a VM instance; forwarded without a host',
      );
    }
    await deliverAlerts([key]);
    return opened ? 'opened' : 'duplicate';
  }

  const ended = incident.ended_at ? new Date(incident.ended_at * 1000) : now;
  const closed = await closeEpisode(key, ended);
  if (instanceId && (await getHost(instanceId)))
    await updateOpenIncidents(instanceId, (list) => withoutIncident(list, incident.incident_id));
  await deliverAlerts([key]);
  return closed ? 'closed' : 'duplicate';
}
