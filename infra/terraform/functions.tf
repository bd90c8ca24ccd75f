# The entry points of functions/index.ts (contracts.md), 2nd gen, one service account each; logHeartbeat
# or logHeartbeatDrain, as var.log_heartbeat_delivery says.
# Every trigger retries (the code throws only for transient faults and acknowledges bad input), every
# function takes internal traffic only (Eventarc and Pub/Sub pushes are internal), nobody else may
# invoke them: the trigger service account holds roles/run.invoker on each service, and only that.

locals {
  audit_log_event_type = "google.cloud.audit.log.v1.written"
  pubsub_event_type    = "google.cloud.pubsub.topic.v1.messagePublished"

  # One Eventarc trigger matches one methodName exactly; vmLifecycle accepts every prefix (v1., beta.,
  # none: managed instance groups). The function's own trigger takes the first; google_eventarc_trigger
  # below routes the other eight to the same service.
  vm_lifecycle_primary_method = "v1.compute.instances.insert"
  vm_lifecycle_other_methods = [
    "beta.compute.instances.insert",
    "compute.instances.insert",
    "v1.compute.instances.bulkInsert",
    "beta.compute.instances.bulkInsert",
    "compute.instances.bulkInsert",
    "v1.compute.instances.delete",
    "beta.compute.instances.delete",
    "compute.instances.delete",
  ]

  function_source = {
    bucket = var.function_source_bucket
    object = var.function_source_object
  }

  # Memory: each function gets the smallest Cloud Functions size of at least twice its peak resident
  # memory at work, measured by `npm run bench` on Node 22 (the larger of two runs): coldstart.<function>
  # peakRssMb, a fresh instance and its first event on its heaviest path; for fleetAuditShard, whose
  # work grows with the project, plus the audit's rssGrowthMb for a 10,000-VM project.
  # test/terraform.test.ts checks the rule; re-measure when the code or its dependencies change.
  function_peak_mb = {
    vmLifecycle     = 209
    fleetAudit      = 149
    fleetAuditShard = 489
    logHeartbeat    = 147
    # Ending a silent episode through a drain tick (one run: 147.2 MB; a drain holds up to 1,000 pulled
    # messages of ~1 KB at once, well inside the margin).
    logHeartbeatDrain = 150
    monitoringAlert   = 148
    fleetStatus       = 123
  }
  function_memory = {
    vmLifecycle       = "512Mi"
    fleetAudit        = "512Mi"
    fleetAuditShard   = "1024Mi"
    logHeartbeat      = "512Mi"
    logHeartbeatDrain = "512Mi"
    monitoringAlert   = "512Mi"
    fleetStatus       = "256Mi"
  }
}

# --- vmLifecycle: Compute Engine audit logs ------------------------------------------------------

resource "google_cloudfunctions2_function" "vm_lifecycle" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.vmLifecycle
  description = "Enrolls a new VM or retires a deleted one (Compute Engine audit logs)."
  labels      = var.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = "vmLifecycle"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }

  service_config {
    max_instance_count             = var.max_instances
    min_instance_count             = 0
    available_memory               = local.function_memory.vmLifecycle
    timeout_seconds                = 300
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.vm_lifecycle.email
    environment_variables          = local.function_environment
  }

  event_trigger {
    # Audit logs of VMs in every region: a regional trigger would only see its own region.
    trigger_region        = "global"
    event_type            = local.audit_log_event_type
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
    event_filters {
      attribute = "serviceName"
      value     = "compute.googleapis.com"
    }
    event_filters {
      attribute = "methodName"
      value     = local.vm_lifecycle_primary_method
    }
  }

  depends_on = [google_project_service.orchestrator, google_project_iam_member.build_builder, google_storage_bucket_iam_member.build_source, google_project_iam_member.trigger_event_receiver]
}

# The other eight method names. Eventarc redelivers failed events (Pub/Sub transport, exponential
# backoff 10-600 s, 24 h) unless retry_policy { max_attempts = 1 } is set; it is not.
resource "google_eventarc_trigger" "vm_lifecycle" {
  for_each = toset(local.vm_lifecycle_other_methods)

  project         = var.project_id
  location        = "global"
  name            = "${local.function_names.vmLifecycle}-${replace(lower(each.value), ".", "-")}"
  service_account = google_service_account.trigger.email
  labels          = var.labels

  matching_criteria {
    attribute = "type"
    value     = local.audit_log_event_type
  }
  matching_criteria {
    attribute = "serviceName"
    value     = "compute.googleapis.com"
  }
  matching_criteria {
    attribute = "methodName"
    value     = each.value
  }

  destination {
    cloud_run_service {
      # A 2nd gen function's Cloud Run service carries the function's name.
      service = google_cloudfunctions2_function.vm_lifecycle.name
      region  = var.region
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.vm_lifecycle_invoker, google_project_iam_member.trigger_event_receiver]
}

# --- fleetAudit: the Cloud Scheduler tick --------------------------------------------------------

resource "google_cloudfunctions2_function" "fleet_audit" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.fleetAudit
  description = "Starts an audit run: one shard message per target project."
  labels      = var.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = "fleetAudit"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }

  service_config {
    max_instance_count             = var.max_instances
    min_instance_count             = 0
    available_memory               = local.function_memory.fleetAudit
    timeout_seconds                = 120
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.fleet_audit.email
    environment_variables          = local.function_environment
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = local.pubsub_event_type
    pubsub_topic          = google_pubsub_topic.audit_tick.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
  }

  depends_on = [google_project_service.orchestrator, google_project_iam_member.build_builder, google_storage_bucket_iam_member.build_source]
}

# --- fleetAuditShard: one message per target project ---------------------------------------------

resource "google_cloudfunctions2_function" "fleet_audit_shard" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.fleetAuditShard
  description = "Reconciles one target project: Compute inventory, OS Config reports and inventory, Firestore."
  labels      = var.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = "fleetAuditShard"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }

  service_config {
    # Each instance paces OS Config calls on its own: more instances, more calls per minute.
    max_instance_count             = var.audit_shard_max_instances
    min_instance_count             = 0
    available_memory               = local.function_memory.fleetAuditShard
    timeout_seconds                = 540
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.fleet_audit_shard.email
    environment_variables          = local.function_environment
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = local.pubsub_event_type
    pubsub_topic          = google_pubsub_topic.audit_shards.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
  }

  depends_on = [google_project_service.orchestrator, google_project_iam_member.build_builder, google_storage_bucket_iam_member.build_source]
}

# --- logHeartbeat: the osquery log topic ---------------------------------------------------------

resource "google_cloudfunctions2_function" "log_heartbeat" {
  count = local.log_heartbeat_push ? 1 : 0

  project     = var.project_id
  location    = var.region
  name        = local.function_names.logHeartbeat
  description = "Records when each host's osquery logs last arrived."
  labels      = var.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = "logHeartbeat"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }

  service_config {
    max_instance_count = var.max_instances
    min_instance_count = 0
    # The busiest trigger: several messages per instance at once (needs a whole CPU).
    max_instance_request_concurrency = var.log_heartbeat_concurrency
    available_cpu                    = "1"
    available_memory                 = local.function_memory.logHeartbeat
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.log_heartbeat.email
    environment_variables            = local.function_environment
  }

  # No event trigger: google_pubsub_subscription.log_heartbeat_push delivers the log topic, filtered.

  depends_on = [google_project_service.orchestrator, google_project_iam_member.build_builder, google_storage_bucket_iam_member.build_source]
}

# The log topic carries every osquery result line of the fleet (the SIEM reads them all on its own
# subscription); logHeartbeat needs only the heartbeats and the hourly osquery_schedule snapshots. An
# Eventarc Pub/Sub trigger makes its own subscription and cannot filter, so logHeartbeat is fed by this
# push subscription instead: the filter (local.log_heartbeat_filter, the code's LOG_HEARTBEAT_FILTER)
# on the shipper's osquery_name attribute makes Pub/Sub acknowledge the other lines without invoking the
# function. It posts to <function URL>/projects/P/topics/T (the Functions Framework takes the topic from
# the path and delivers a messagePublished CloudEvent) with an OIDC token of the trigger account, and
# retries with backoff as a trigger would. A subscription may attach to a topic of another project, so
# this also serves a log topic in log_topic_project. Pub/Sub cannot change a filter: a new one replaces
# the subscription (unacknowledged heartbeats of that moment are lost to logHeartbeat, not to the SIEM).
resource "google_pubsub_subscription" "log_heartbeat_push" {
  count = local.log_heartbeat_push ? 1 : 0

  project                    = var.project_id
  name                       = "${local.function_names.logHeartbeat}-push"
  topic                      = local.log_topic_id
  filter                     = local.log_heartbeat_filter
  ack_deadline_seconds       = 60
  message_retention_duration = "86400s"
  labels                     = var.labels

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.log_heartbeat[0].service_config[0].uri}/projects/${local.log_topic_project}/topics/${var.log_topic}"
    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = google_cloudfunctions2_function.log_heartbeat[0].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.log_heartbeat_invoker, google_service_account_iam_member.trigger_pubsub_token_creator]
}

# Deployments made before log_heartbeat_delivery existed keep their push path as it is.
moved {
  from = google_cloudfunctions2_function.log_heartbeat
  to   = google_cloudfunctions2_function.log_heartbeat[0]
}
moved {
  from = google_pubsub_subscription.log_heartbeat_push
  to   = google_pubsub_subscription.log_heartbeat_push[0]
}
moved {
  from = google_cloud_run_v2_service_iam_member.log_heartbeat_invoker
  to   = google_cloud_run_v2_service_iam_member.log_heartbeat_invoker[0]
}

# --- logHeartbeatDrain: pull delivery of the same lines (log_heartbeat_delivery = "pull") ---------

# Push delivery invokes logHeartbeat once per heartbeat line: a host's 13 lines an hour, whatever the
# batching inside. In pull mode the same filter sits on a pull subscription, and a drain a minute reads
# every host's lines of that minute in one invocation (shared/usecases/log-drain.ts). Pub/Sub filters
# here too, so other result lines never count against it. Unacknowledged lines are kept a day; the ack
# deadline covers one pulled batch's processing (seconds), not the drain's budget. Released (nacked)
# lines come back after the retry policy's backoff. Replacing the filter replaces the subscription, as
# for the push one.
resource "google_pubsub_subscription" "log_heartbeat_pull" {
  count = local.log_heartbeat_pull ? 1 : 0

  project                    = var.project_id
  name                       = "${local.function_names.logHeartbeat}-pull"
  topic                      = local.log_topic_id
  filter                     = local.log_heartbeat_filter
  ack_deadline_seconds       = 120
  message_retention_duration = "86400s"
  labels                     = var.labels

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_project_service.orchestrator]
}

resource "google_cloudfunctions2_function" "log_heartbeat_drain" {
  count = local.log_heartbeat_pull ? 1 : 0

  project     = var.project_id
  location    = var.region
  name        = local.function_names.logHeartbeatDrain
  description = "Drains the filtered log subscription every minute: when each host's osquery logs last arrived."
  labels      = var.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = "logHeartbeatDrain"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }

  service_config {
    max_instance_count = var.max_instances
    min_instance_count = 0
    # One drain per instance (the default concurrency): a drain keeps 160 messages in flight itself.
    available_cpu                  = "1"
    available_memory               = local.function_memory.logHeartbeatDrain
    timeout_seconds                = var.log_drain_budget_seconds + 60
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.log_heartbeat_drain.email
    environment_variables          = local.function_environment
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = local.pubsub_event_type
    pubsub_topic          = google_pubsub_topic.log_drain_tick[0].id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
  }

  depends_on = [google_project_service.orchestrator, google_project_iam_member.build_builder, google_storage_bucket_iam_member.build_source, google_pubsub_subscription_iam_member.log_heartbeat_drain_subscriber]
}

# --- monitoringAlert: Cloud Monitoring incidents -------------------------------------------------

resource "google_cloudfunctions2_function" "monitoring_alert" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.monitoringAlert
  description = "Attaches Cloud Monitoring incidents to hosts; raises and resolves alerts."
  labels      = var.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = "monitoringAlert"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }

  service_config {
    max_instance_count             = var.max_instances
    min_instance_count             = 0
    available_memory               = local.function_memory.monitoringAlert
    timeout_seconds                = 120
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.monitoring_alert.email
    environment_variables          = local.function_environment
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = local.pubsub_event_type
    pubsub_topic          = google_pubsub_topic.incidents.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
  }

  depends_on = [google_project_service.orchestrator, google_project_iam_member.build_builder, google_storage_bucket_iam_member.build_source]
}

# --- Invokers: the trigger account on each function's Cloud Run service, nothing wider ------------

resource "google_cloud_run_v2_service_iam_member" "vm_lifecycle_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.vm_lifecycle.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "fleet_audit_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fleet_audit.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "fleet_audit_shard_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fleet_audit_shard.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "log_heartbeat_invoker" {
  count = local.log_heartbeat_push ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.log_heartbeat[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "log_heartbeat_drain_invoker" {
  count = local.log_heartbeat_pull ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.log_heartbeat_drain[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "monitoring_alert_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.monitoring_alert.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}
