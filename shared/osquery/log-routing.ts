// How osquery log lines are routed on the log topic (docs/heartbeat.md: Host identity). The shipper
// publishes one Pub/Sub message per line with the query name as the attribute `osquery_name`; the
// subscription that feeds logHeartbeat lets through only the lines it reads, so the fleet's other
// results (the SIEM's business, on its own unfiltered subscription) never invoke a function.

/** Message attribute carrying the line's osquery query name (fluentd/osquery.conf copies `name`). */
export const QUERY_NAME_ATTRIBUTE = 'osquery_name';

/** The bundle's 5-minute heartbeat (osquery.conf `schedule.heartbeat`). */
export const HEARTBEAT_QUERY = 'heartbeat';

/** The hourly cost snapshot: query `osquery_schedule` of pack `osquery-health`, as osquery names pack queries. */
export const SCHEDULE_QUERY = 'pack_osquery-health_osquery_schedule';

/**
 * The syslog query: pack `syslog`'s `syslog_events` (packs/syslog.conf). Its lines go to the SIEM, never to
 * logHeartbeat (one line per syslog message); its cost in the hourly osquery_schedule snapshot is how the
 * orchestrator sees syslog results logged on a host (shared/domain/syslog.ts).
 */
export const SYSLOG_QUERY = 'pack_syslog_syslog_events';

/**
 * The filter of the log subscription that feeds logHeartbeat, in Pub/Sub's filter syntax. Terraform
 * (through the function manifest, functions/manifest.ts, for the push and the pull subscription) and the
 * local stack use this exact string; test/unit/terraform.test.ts checks Terraform's.
 *
 * `NOT attributes:osquery_name` lets through lines from shippers that predate the attribute (VMs still
 * on an older configuration version during a rollout): without it their heartbeats would be dropped
 * and they would turn silent. Pub/Sub allows 256 bytes and no change after creation (a new filter
 * replaces the subscription).
 */
export const LOG_HEARTBEAT_FILTER =
  `NOT attributes:${QUERY_NAME_ATTRIBUTE}` +
  ` OR attributes.${QUERY_NAME_ATTRIBUTE} = "${HEARTBEAT_QUERY}"` +
  ` OR attributes.${QUERY_NAME_ATTRIBUTE} = "${SCHEDULE_QUERY}"`;
