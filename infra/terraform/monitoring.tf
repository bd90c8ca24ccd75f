# Cloud Monitoring: incidents go to a Pub/Sub notification channel on the incidents topic, where
# monitoringAlert attaches them to hosts. The osqueryd policies keep one series per VM (grouped by
# the gce_instance labels), so every incident carries resource.labels.instance_id.
#
# Process metrics come from the Ops Agent on the VMs. The VMs live in the target projects: those are
# added to this project's metrics scope so its policies see them.

resource "google_monitoring_monitored_project" "targets" {
  for_each = var.add_targets_to_metrics_scope ? toset([for p in local.target_project_ids : p if p != var.project_id]) : toset([])

  metrics_scope = "locations/global/metricsScopes/${var.project_id}"
  name          = each.value

  depends_on = [google_project_service.orchestrator]
}

resource "google_monitoring_notification_channel" "incidents" {
  project      = var.project_id
  display_name = "osquery-orchestrator incidents (${var.incident_topic})"
  type         = "pubsub"
  labels = {
    topic = google_pubsub_topic.incidents.id
  }
  user_labels = var.labels

  depends_on = [google_project_service.orchestrator]
}

# The channel publishes as Monitoring's notification service agent, created with the project's
# first notification channel (hence depends_on).
resource "google_pubsub_topic_iam_member" "monitoring_incidents_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.incidents.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:service-${data.google_project.orchestrator.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"

  depends_on = [google_monitoring_notification_channel.incidents]
}

locals {
  # One series per VM: sums osqueryd's processes (watchdog + worker, user + system time) per instance.
  per_vm_group_by = ["resource.label.instance_id", "resource.label.project_id", "resource.label.zone"]
}

# osqueryd CPU per VM. cpu_time is cumulative microseconds; its rate is microseconds of CPU per
# second, so P % of one core is P * 10000.
resource "google_monitoring_alert_policy" "osqueryd_cpu" {
  project               = var.project_id
  display_name          = "osqueryd CPU above ${var.osqueryd_cpu_percent}% on a VM"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels           = merge(var.labels, { alert_kind = "host-performance" })

  conditions {
    display_name = "osqueryd CPU (% of one core) per VM"
    condition_threshold {
      filter          = "resource.type = \"gce_instance\" AND metric.type = \"agent.googleapis.com/processes/cpu_time\" AND metric.label.command = \"osqueryd\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.osqueryd_cpu_percent * 10000
      duration        = "900s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = local.per_vm_group_by
      }
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "osqueryd on this VM used more than ${var.osqueryd_cpu_percent}% of one CPU for 5 minutes (the watchdog limit is 10%). Look for an expensive scheduled query (osquery-health pack) before the watchdog starts killing workers."
  }
}

# osqueryd resident memory per VM (bytes).
resource "google_monitoring_alert_policy" "osqueryd_memory" {
  project               = var.project_id
  display_name          = "osqueryd memory above ${var.osqueryd_memory_mb} MiB on a VM"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels           = merge(var.labels, { alert_kind = "host-performance" })

  conditions {
    display_name = "osqueryd resident memory per VM"
    condition_threshold {
      filter          = "resource.type = \"gce_instance\" AND metric.type = \"agent.googleapis.com/processes/rss_usage\" AND metric.label.command = \"osqueryd\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.osqueryd_memory_mb * 1048576
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MEAN"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = local.per_vm_group_by
      }
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "osqueryd on this VM held more than ${var.osqueryd_memory_mb} MiB resident for 5 minutes (the watchdog kills it above 350 MB)."
  }
}

# The functions' failures: non-2xx answers of their Cloud Run services (a 500 is a transient fault
# being retried; 429 means no instance was free). One series per function. The status page is left
# out: its 4xx are people (a viewer without access, a bad filter); the dashboard shows its errors.
resource "google_monitoring_alert_policy" "function_errors" {
  project               = var.project_id
  display_name          = "osquery-orchestrator function errors"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels           = merge(var.labels, { alert_kind = "orchestrator-errors" })

  conditions {
    display_name = "non-2xx responses per function, per 5 minutes"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = one_of(\"4xx\", \"5xx\") AND resource.labels.service_name = one_of(${join(", ", [for k, n in local.function_names : "\"${n}\"" if local.manifest.functions[k].trigger.kind != "http"])})"
      comparison      = "COMPARISON_GT"
      threshold_value = var.function_errors_threshold
      duration        = "600s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "An osquery-orchestrator function answered more than ${var.function_errors_threshold} non-2xx responses per 5 minutes for 10 minutes. Read its logs (severity >= WARNING): transient faults are retried, so a steady rate means an API is failing or a permission is missing."
  }
}

# The log pipeline watches itself: the heartbeat subscription (logHeartbeat's push or logHeartbeatDrain's
# pull) and the SIEM's own, each one series per subscription, so every incident names its subscription
# (resource.labels.subscription_id). monitoringAlert keeps them on pipeline/{subscription} as one
# pipeline.backlog episode per subscription; while the heartbeat's is open the audit decides no silence.
locals {
  heartbeat_subscription_name = local.log_heartbeat_pull ? google_pubsub_subscription.log_heartbeat_pull[0].name : google_pubsub_subscription.filtered_push["logHeartbeat"].name
  watched_log_subscriptions   = compact([local.heartbeat_subscription_name, var.siem_subscription == null ? "" : var.siem_subscription])
  backlog_subscription_filter = join(" OR ", [for s in local.watched_log_subscriptions : "resource.label.subscription_id = \"${s}\""])
}

# One policy per metric (one condition each), so each incident names its condition.
resource "google_monitoring_alert_policy" "log_backlog_age" {
  project               = var.project_id
  display_name          = "osquery log subscription behind: oldest unacked message"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels           = merge(var.labels, { alert_kind = "pipeline-backlog" })

  conditions {
    display_name = "oldest unacked message older than ${var.log_backlog_age_seconds} s"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND (${local.backlog_subscription_filter})"
      comparison      = "COMPARISON_GT"
      threshold_value = var.log_backlog_age_seconds
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.subscription_id", "resource.label.project_id"]
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    content   = "A log subscription is behind: hosts look silent because their lines wait, not because they stopped. monitoringAlert raises pipeline.backlog; the audit decides no silence while the heartbeat subscription is behind (docs/heartbeat.md)."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "log_backlog_messages" {
  project               = var.project_id
  display_name          = "osquery log subscription behind: undelivered messages"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels           = merge(var.labels, { alert_kind = "pipeline-backlog" })

  conditions {
    display_name = "more than ${var.log_backlog_messages} undelivered messages"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND (${local.backlog_subscription_filter})"
      comparison      = "COMPARISON_GT"
      threshold_value = var.log_backlog_messages
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.subscription_id", "resource.label.project_id"]
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    content   = "A log subscription is behind (undelivered messages). See the oldest-unacked policy's note and docs/heartbeat.md."
    mime_type = "text/markdown"
  }
}
