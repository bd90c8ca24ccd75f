# Topics. message_retention_duration is the topic's own retention: it lets a subscription created
# later, or one rewound with seek, replay what was published before. Push subscriptions of the
# function triggers are created by Cloud Functions (Eventarc) itself, except logHeartbeat's filtered
# one on the log topic (functions.tf; or, with log_heartbeat_delivery = "pull", the filtered pull
# subscription logHeartbeatDrain drains).

# Where the shipper on every VM publishes osquery results. High volume and already consumed by the
# SIEM's own subscription: one hour is enough to rewind logHeartbeat after an incident.
resource "google_pubsub_topic" "logs" {
  count = var.create_log_topic ? 1 : 0

  project                    = local.log_topic_project
  name                       = var.log_topic
  message_retention_duration = "3600s"
  labels                     = var.labels

  depends_on = [google_project_service.orchestrator]
}

# Alert messages (docs/contracts.md). Consumers (pager, SIEM) that attach late or lose messages can seek
# back a week.
resource "google_pubsub_topic" "alerts" {
  project                    = var.project_id
  name                       = var.alert_topic
  message_retention_duration = "604800s"
  labels                     = var.labels

  depends_on = [google_project_service.orchestrator]
}

# Cloud Scheduler's tick: a tick older than the next one (15 minutes by default) is worthless.
resource "google_pubsub_topic" "audit_tick" {
  project                    = var.project_id
  name                       = var.audit_tick_topic
  message_retention_duration = "600s"
  labels                     = var.labels

  depends_on = [google_project_service.orchestrator]
}

# Pull delivery: Cloud Scheduler's drain tick, every minute. A tick older than the next is worthless
# (10 minutes is the shortest retention Pub/Sub takes).
resource "google_pubsub_topic" "log_drain_tick" {
  count = local.log_heartbeat_pull ? 1 : 0

  project                    = var.project_id
  name                       = var.log_drain_tick_topic
  message_retention_duration = "600s"
  labels                     = var.labels

  depends_on = [google_project_service.orchestrator]
}

# One message per target project and run: useful for a day at most (a later run supersedes it).
resource "google_pubsub_topic" "audit_shards" {
  project                    = var.project_id
  name                       = var.audit_shard_topic
  message_retention_duration = "86400s"
  labels                     = var.labels

  depends_on = [google_project_service.orchestrator]
}

# Cloud Monitoring incidents (few): a week, to replay them after fixing monitoringAlert.
resource "google_pubsub_topic" "incidents" {
  project                    = var.project_id
  name                       = var.incident_topic
  message_retention_duration = "604800s"
  labels                     = var.labels

  depends_on = [google_project_service.orchestrator]
}

# Malformed messages the functions acknowledged: kept the maximum (31 days) for investigation.
resource "google_pubsub_topic" "dead_letter" {
  project                    = var.project_id
  name                       = var.dead_letter_topic
  message_retention_duration = "2678400s"
  labels                     = var.labels

  depends_on = [google_project_service.orchestrator]
}

# Pull subscription for alert consumers. Unacknowledged alerts are kept 7 days (the subscription
# maximum); it never expires for lack of activity.
resource "google_pubsub_subscription" "alerts_consumer" {
  project                    = var.project_id
  name                       = "${var.alert_topic}-consumer"
  topic                      = google_pubsub_topic.alerts.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}

# Pull subscription to inspect dead letters (gcloud pubsub subscriptions pull ...).
resource "google_pubsub_subscription" "dead_letter_inspect" {
  project                    = var.project_id
  name                       = "${var.dead_letter_topic}-inspect"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}
