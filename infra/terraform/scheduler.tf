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
