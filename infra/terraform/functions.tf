# The functions of the manifest (functions/manifest.ts, read from functions.json: locals.tf), 2nd gen,
# one block for all: each with its own service account (iam.tf), logHeartbeat or logHeartbeatDrain as
# var.log_heartbeat_delivery says. Every trigger retries (the code throws only for transient faults and
# acknowledges bad input); every event-driven function takes internal traffic only (Eventarc and Pub/Sub
# pushes are internal) and nobody else may invoke it: the trigger service account holds roles/run.invoker
# on each service, and only that. The status page (HTTP) takes browsers: status.tf says who may open it.

locals {
  # One Eventarc trigger matches one methodName exactly; vmLifecycle accepts every prefix (v1., beta.,
  # none: managed instance groups). The function's own trigger takes the first method of its manifest
  # entry; google_eventarc_trigger below routes the others to the same service.
  vm_lifecycle_methods       = local.manifest.functions.vmLifecycle.trigger.methods
  vm_lifecycle_other_methods = slice(local.vm_lifecycle_methods, 1, length(local.vm_lifecycle_methods))

  function_source = {
    bucket = var.function_source_bucket
    object = var.function_source_object
  }

  # Ingress by who calls: Google's deliveries only, or browsers (directly, the IAM check at Cloud Run's
  # front door; or, with IAP, only through the load balancer).
  function_ingress = {
    internal = "ALLOW_INTERNAL_ONLY"
    browsers = var.status_page_iap ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_ALL"
  }

  # Each function's timeout: its seconds, after the budget a variable sets where the manifest says so.
  function_timeouts = {
    for name, f in local.manifest.functions :
    name => f.timeoutSeconds + (f.timeoutAfter == null ? 0 : local.function_variables[f.timeoutAfter])
  }
}

# Memory: functions.json's size, the smallest of at least twice the function's measured peak (the manifest
# records the `npm run bench` figures). Concurrency and CPU only where the manifest sets them.
resource "google_cloudfunctions2_function" "function" {
  for_each = local.deployed_functions

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = each.value.description
  labels      = var.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = each.key
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }

  service_config {
    max_instance_count               = local.function_variables[each.value.maxInstances]
    min_instance_count               = 0
    max_instance_request_concurrency = try(local.function_variables[each.value.concurrency], null)
    available_cpu                    = each.value.cpu
    available_memory                 = each.value.memory
    timeout_seconds                  = local.function_timeouts[each.key]
    ingress_settings                 = local.function_ingress[each.value.ingress]
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function[each.key].email
    environment_variables            = local.function_environment
  }

  # Eventarc's trigger, for audit-log and Pub/Sub functions; a filtered push subscription (below) or
  # browsers reach the others.
  dynamic "event_trigger" {
    for_each = contains(["auditLog", "pubsub"], each.value.trigger.kind) ? [each.value.trigger] : []
    content {
      # Audit logs of VMs in every region: a regional trigger would only see its own region.
      trigger_region        = event_trigger.value.kind == "auditLog" ? "global" : var.region
      event_type            = event_trigger.value.eventType
      pubsub_topic          = event_trigger.value.kind == "pubsub" ? local.topics[event_trigger.value.topic].id : null
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.trigger.email

      dynamic "event_filters" {
        for_each = event_trigger.value.eventFilters
        content {
          attribute = event_filters.key
          value     = event_filters.value
        }
      }
    }
  }

  depends_on = [
    google_project_service.orchestrator,
    google_project_iam_member.build_builder,
    google_storage_bucket_iam_member.build_source,
    google_project_iam_member.trigger_event_receiver,
    google_pubsub_subscription_iam_member.function_pulls,
  ]
}

# vmLifecycle's other method names. Eventarc redelivers failed events (Pub/Sub transport, exponential
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
    value     = local.manifest.functions.vmLifecycle.trigger.eventType
  }
  matching_criteria {
    attribute = "serviceName"
    value     = local.manifest.functions.vmLifecycle.trigger.eventFilters.serviceName
  }
  matching_criteria {
    attribute = "methodName"
    value     = each.value
  }

  destination {
    cloud_run_service {
      # A 2nd gen function's Cloud Run service carries the function's name.
      service = google_cloudfunctions2_function.function["vmLifecycle"].name
      region  = var.region
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker, google_project_iam_member.trigger_event_receiver]
}

# A filtered push trigger (logHeartbeat on the log topic). The log topic carries every osquery result
# line of the fleet (the SIEM reads them all on its own subscription); logHeartbeat needs only the
# heartbeats and the hourly osquery_schedule snapshots. An Eventarc Pub/Sub trigger makes its own
# subscription and cannot filter, so such a function is fed by this push subscription instead: the filter
# (the code's, through the manifest: LOG_HEARTBEAT_FILTER) on the shipper's osquery_name attribute makes
# Pub/Sub acknowledge the other lines without invoking the function. It posts to
# <function URL>/projects/P/topics/T (the Functions Framework takes the topic from the path and delivers a
# messagePublished CloudEvent) with an OIDC token of the trigger account, and retries with backoff as a
# trigger would; its ack deadline covers the function's timeout. A subscription may attach to a topic of
# another project, so this also serves a log topic in log_topic_project. Pub/Sub cannot change a filter: a
# new one replaces the subscription (unacknowledged heartbeats of that moment are lost to logHeartbeat,
# not to the SIEM).
resource "google_pubsub_subscription" "filtered_push" {
  for_each = { for name, f in local.deployed_functions : name => f if f.trigger.kind == "filteredPush" }

  project                    = var.project_id
  name                       = "${local.function_names[each.key]}-push"
  topic                      = local.topics[each.value.trigger.topic].id
  filter                     = each.value.trigger.filter
  ack_deadline_seconds       = min(600, local.function_timeouts[each.key])
  message_retention_duration = "86400s"
  labels                     = var.labels

  push_config {
    push_endpoint = join("/", [
      google_cloudfunctions2_function.function[each.key].service_config[0].uri,
      "projects", local.topics[each.value.trigger.topic].project, "topics", local.topics[each.value.trigger.topic].name,
    ])
    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.invoker,
    google_service_account_iam_member.trigger_pubsub_token_creator,
  ]
}

# --- Pull delivery of the heartbeat lines (log_heartbeat_delivery = "pull") ---------------------

# Push delivery invokes logHeartbeat once per heartbeat line: a host's 13 lines an hour, whatever the
# batching inside. In pull mode the same filter sits on a pull subscription, and a drain a minute
# (logHeartbeatDrain, triggered by the drain tick: scheduler.tf) reads every host's lines of that minute
# in one invocation (shared/usecases/log-drain.ts). Pub/Sub filters here too, so other result lines never
# count against it. Unacknowledged lines are kept a day; the ack deadline covers one pulled batch's
# processing (seconds), not the drain's budget. Released (nacked) lines come back after the retry
# policy's backoff. Replacing the filter replaces the subscription, as for the push one.
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

# --- Invokers: the trigger account on each event-driven function's Cloud Run service, nothing wider --

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = { for name, f in local.deployed_functions : name => f if f.trigger.kind != "http" }

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}
