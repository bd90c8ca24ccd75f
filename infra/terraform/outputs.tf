output "function_names" {
  description = "Function (and Cloud Run service) name per entry point; null for the one the delivery leaves out."
  value = {
    for name in keys(local.manifest.functions) : name => try(google_cloudfunctions2_function.function[name].name, null)
  }
}

output "topics" {
  description = "Pub/Sub topics by setting name."
  value = {
    LOG_TOPIC            = local.log_topic_id
    ALERT_TOPIC          = google_pubsub_topic.alerts.id
    INCIDENT_TOPIC       = google_pubsub_topic.incidents.id
    AUDIT_TICK_TOPIC     = google_pubsub_topic.audit_tick.id
    AUDIT_SHARD_TOPIC    = google_pubsub_topic.audit_shards.id
    DEAD_LETTER_TOPIC    = google_pubsub_topic.dead_letter.id
    LOG_DRAIN_TICK_TOPIC = one(google_pubsub_topic.log_drain_tick[*].id)
  }
}

output "subscriptions" {
  description = "Pull subscriptions for alert consumers and dead-letter inspection."
  value = {
    alerts      = google_pubsub_subscription.alerts_consumer.id
    dead_letter = google_pubsub_subscription.dead_letter_inspect.id
    # Pull delivery: the filtered log subscription logHeartbeatDrain drains (null in push mode).
    log_heartbeat = one(google_pubsub_subscription.log_heartbeat_pull[*].id)
  }
}

output "enrollment_sinks" {
  description = "The log sinks routing Compute audit entries to vmLifecycle (enrollment_sink), with their writer identities."
  value = merge(
    { for s in google_logging_organization_sink.compute_audit_log : "organizations/${s.org_id}" => s.writer_identity },
    { for k, s in google_logging_folder_sink.compute_audit_log : k => s.writer_identity },
    { for k, s in google_logging_project_sink.compute_audit_log : "projects/${k}" => s.writer_identity },
  )
}

output "config_bucket" {
  description = "The configuration bucket (CONFIG_BUCKET)."
  value       = google_storage_bucket.config.name
}

output "publish_env_object" {
  description = "gs:// URL of the settings file osq-orch publish reads in Cloud Build."
  value       = "gs://${google_storage_bucket.config.name}/${google_storage_bucket_object.publish_env.name}"
}

output "service_accounts" {
  description = "Service account emails: each function's (by entry point), the trigger, publisher and build accounts."
  value = merge({ for name, account in google_service_account.function : name => account.email }, {
    trigger   = google_service_account.trigger.email
    publisher = google_service_account.publisher.email
    build     = google_service_account.build.email
  })
}

output "notification_channel" {
  description = "The Pub/Sub notification channel; attach it to other alert policies to route their incidents to monitoringAlert."
  value       = google_monitoring_notification_channel.incidents.id
}

output "function_environment" {
  description = "The environment every function runs with."
  value       = local.function_environment
}
