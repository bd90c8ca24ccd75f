# The fleet audit tick. The message body must not be empty: the Functions Framework does not convert
# an empty Pub/Sub message into a CloudEvent.
resource "google_cloud_scheduler_job" "audit_tick" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-audit-tick"
  description = "Starts a fleet audit (fleetAudit) on every tick."
  schedule    = var.audit_schedule
  time_zone   = var.audit_schedule_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.audit_tick.id
    data       = base64encode(jsonencode({ source = "cloud-scheduler", job = "${var.name_prefix}-audit-tick" }))
    attributes = { source = "cloud-scheduler" }
  }

  depends_on = [google_project_service.orchestrator]
}

# Pull delivery (log_heartbeat_delivery = "pull"): every minute, a tick that makes logHeartbeatDrain
# drain the filtered log subscription. A minute bounds how late lastLogAt can be, against a silence
# threshold of 16.5 minutes by default.
resource "google_cloud_scheduler_job" "log_drain_tick" {
  count = local.log_heartbeat_pull ? 1 : 0

  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-log-drain-tick"
  description = "Drains logHeartbeat's pull subscription (logHeartbeatDrain) on every tick."
  schedule    = "* * * * *"
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.log_drain_tick[0].id
    data       = base64encode(jsonencode({ source = "cloud-scheduler", job = "${var.name_prefix}-log-drain-tick" }))
    attributes = { source = "cloud-scheduler" }
  }

  depends_on = [google_project_service.orchestrator]
}
