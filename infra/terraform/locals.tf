locals {
  # The function manifest (functions/manifest.ts), as `npm run manifest` writes it: every function's entry
  # point, trigger, memory, timeout, instances, service account and grants. Everything per function here
  # is one block with for_each over it (functions.tf, iam.tf).
  manifest = jsondecode(file("${path.module}/functions.json"))

  # The functions this deployment runs: all but the heartbeat delivery it does not use. Their service
  # accounts exist in both deliveries; their grants follow the delivery, but for logHeartbeat's.
  deployed_functions = {
    for name, f in local.manifest.functions :
    name => f if f.delivery == null || f.delivery == var.log_heartbeat_delivery
  }
  granted_functions = {
    for name, f in local.manifest.functions :
    name => f if contains(keys(local.deployed_functions), name) || f.grantsInBothDeliveries
  }

  # The variables the manifest names (functions.json holds the names, Terraform the values).
  function_variables = {
    max_instances             = var.max_instances
    audit_shard_max_instances = var.audit_shard_max_instances
    status_page_max_instances = var.status_page_max_instances
    log_heartbeat_concurrency = var.log_heartbeat_concurrency
    log_drain_budget_seconds  = var.log_drain_budget_seconds
  }

  log_topic_project = coalesce(var.log_topic_project, var.project_id)
  log_topic_id      = var.create_log_topic ? google_pubsub_topic.logs[0].id : "projects/${local.log_topic_project}/topics/${var.log_topic}"

  # The topics and subscriptions the manifest names, by the setting that names them to the code.
  topics = {
    LOG_TOPIC = { id = local.log_topic_id, name = var.log_topic, project = local.log_topic_project }
    ALERT_TOPIC = {
      id = google_pubsub_topic.alerts.id, name = google_pubsub_topic.alerts.name, project = var.project_id
    }
    INCIDENT_TOPIC = {
      id = google_pubsub_topic.incidents.id, name = google_pubsub_topic.incidents.name, project = var.project_id
    }
    AUDIT_TICK_TOPIC = {
      id = google_pubsub_topic.audit_tick.id, name = google_pubsub_topic.audit_tick.name, project = var.project_id
    }
    AUDIT_SHARD_TOPIC = {
      id = google_pubsub_topic.audit_shards.id, name = google_pubsub_topic.audit_shards.name, project = var.project_id
    }
    DEAD_LETTER_TOPIC = {
      id = google_pubsub_topic.dead_letter.id, name = google_pubsub_topic.dead_letter.name, project = var.project_id
    }
    LOG_DRAIN_TICK_TOPIC = {
      id      = one(google_pubsub_topic.log_drain_tick[*].id)
      name    = one(google_pubsub_topic.log_drain_tick[*].name)
      project = var.project_id
    }
  }
  subscriptions = {
    LOG_HEARTBEAT_SUBSCRIPTION = one(google_pubsub_subscription.log_heartbeat_pull[*].name)
  }

  # The lines logHeartbeat reads (heartbeats, osquery_schedule snapshots, and lines of shippers that
  # predate the osquery_name attribute): LOG_HEARTBEAT_FILTER of shared/osquery/log-routing.ts, through
  # the manifest.
  # log_heartbeat_delivery: push deploys logHeartbeat and its push subscription; pull deploys
  # logHeartbeatDrain, a pull subscription with the same filter and the drain tick.
  log_heartbeat_push   = var.log_heartbeat_delivery == "push"
  log_heartbeat_pull   = var.log_heartbeat_delivery == "pull"
  log_heartbeat_filter = local.manifest.functions.logHeartbeat.trigger.filter

  # TARGET_PROJECTS may name folders and organisations besides projects (shared/domain/targets.ts):
  # projects get project-level custom roles and APIs; folders and organisations get organisation-level
  # roles bound on them, inherited by every project below (iam.tf).
  target_project_ids   = [for t in var.target_projects : t if !can(regex("^(folders|organizations)/", t))]
  target_folders       = [for t in var.target_projects : t if startswith(t, "folders/")]
  target_organizations = [for t in var.target_projects : trimprefix(t, "organizations/") if startswith(t, "organizations/")]
  has_target_parents   = length(local.target_folders) + length(local.target_organizations) > 0

  firestore_location = coalesce(var.firestore_location, var.region)
  bucket_location    = upper(coalesce(var.bucket_location, var.region))
  role_prefix        = "${var.name_prefix}Orch"

  # <prefix>-<entry point in kebab case> (8 + 20 characters at most: within the 30 of a service account id).
  function_names = { for name, f in local.manifest.functions : name => "${var.name_prefix}-${f.resourceName}" }

  # Every setting the functions read (shared/config.ts, plus LOG_LEVEL from shared/log.ts). Left out:
  # GOOGLE_API_ENDPOINT (local simulator only) and OSQUERY_SCHEMA (osq-orch only). GOOGLE_CLOUD_PROJECT
  # is passed explicitly: the nodejs22 runtime does not set it, and the log trace field names the project.
  # An empty value means "unset" (parseConfig drops empty strings) and is not passed at all.
  function_settings = {
    GOOGLE_CLOUD_PROJECT             = var.project_id
    OPT_OUT_LABEL                    = var.opt_out_label
    REMEDIATE_OSCONFIG_METADATA      = tostring(var.remediate_osconfig_metadata)
    ASSIGNMENT_ID                    = var.assignment_id
    ROLLOUT_DISRUPTION_PERCENT       = tostring(var.rollout_disruption_percent)
    ROLLOUT_MIN_WAIT_SECONDS         = tostring(var.rollout_min_wait_seconds)
    FIRESTORE_DATABASE               = google_firestore_database.main.name
    TARGET_PROJECTS                  = join(",", var.target_projects)
    LOG_TOPIC                        = var.log_topic
    LOG_TOPIC_PROJECT                = local.log_topic_project
    CONFIG_BUCKET                    = google_storage_bucket.config.name
    OSQUERY_VERSION                  = var.osquery_version
    ALERT_TOPIC                      = google_pubsub_topic.alerts.name
    INCIDENT_TOPIC                   = google_pubsub_topic.incidents.name
    HEARTBEAT_WRITE_WINDOW_SECONDS   = tostring(var.heartbeat_write_window_seconds)
    HEARTBEAT_TOKEN_AUDIENCE         = var.heartbeat_token_audience == null ? "" : var.heartbeat_token_audience
    HEARTBEAT_TOKEN_CERTS_URL        = var.heartbeat_token_certs_url
    HEARTBEAT_UNSIGNED               = var.heartbeat_unsigned
    OSQUERYD_CPU_PERCENT             = tostring(var.osqueryd_cpu_percent)
    OSQUERYD_CPU_CONSECUTIVE         = tostring(var.osqueryd_cpu_consecutive)
    OSQUERYD_MEMORY_MB               = tostring(var.osqueryd_memory_mb)
    QUERY_EXPENSIVE_P95_MS           = tostring(var.query_expensive_p95_ms)
    QUERY_STATS_WRITE_WINDOW_SECONDS = tostring(var.query_stats_write_window_seconds)
    LOG_BYTES_PER_HOST_DAY           = var.log_bytes_per_host_day == null ? "" : tostring(var.log_bytes_per_host_day)
    LOG_BYTES_PER_QUERY_HOST_DAY     = var.log_bytes_per_query_host_day == null ? "" : tostring(var.log_bytes_per_query_host_day)
    DEAD_LETTER_TOPIC                = google_pubsub_topic.dead_letter.name
    LOG_HEARTBEAT_SUBSCRIPTION       = local.log_heartbeat_pull ? google_pubsub_subscription.log_heartbeat_pull[0].id : ""
    LOG_DRAIN_BUDGET_SECONDS         = tostring(var.log_drain_budget_seconds)
    LOG_DRAIN_TICK_TOPIC             = var.log_drain_tick_topic
    AUDIT_TICK_TOPIC                 = google_pubsub_topic.audit_tick.name
    AUDIT_SHARD_TOPIC                = google_pubsub_topic.audit_shards.name
    GRACE_PERIOD_MINUTES             = tostring(var.grace_period_minutes)
    HEARTBEAT_INTERVAL_SECONDS       = tostring(var.heartbeat_interval_seconds)
    HEARTBEAT_SPLAY_PERCENT          = tostring(var.heartbeat_splay_percent)
    SILENCE_THRESHOLD_MINUTES        = var.silence_threshold_minutes == null ? "" : tostring(var.silence_threshold_minutes)
    SIEM_SUBSCRIPTION                = var.siem_subscription == null ? "" : var.siem_subscription
    SILENT_STORM_SHARE               = tostring(var.silent_storm_share)
    DRIFT_GRACE_MINUTES              = tostring(var.drift_grace_minutes)
    OSCONFIG_READS_PER_MINUTE        = tostring(var.osconfig_reads_per_minute)
    OSCONFIG_WRITES_PER_MINUTE       = tostring(var.osconfig_writes_per_minute)
    ROLLOUT_EVIDENCE_MAX_AGE_MINUTES = tostring(var.rollout_evidence_max_age_minutes)
    API_BUDGET_OSCONFIG_READS        = tostring(var.api_budget_osconfig_reads)
    API_BUDGET_OSCONFIG_WRITES       = tostring(var.api_budget_osconfig_writes)
    API_BUDGET_SERVICE_USAGE         = tostring(var.api_budget_service_usage)
    API_BUDGET_RESOURCE_MANAGER      = tostring(var.api_budget_resource_manager)
    API_BUDGET_WINDOW_SECONDS        = tostring(var.api_budget_window_seconds)
    API_BUDGET_MAX_WAIT_SECONDS      = tostring(var.api_budget_max_wait_seconds)
    SERVICE_USAGE_CACHE_HOURS        = tostring(var.service_usage_cache_hours)
    AUDIT_TICK_MINUTES               = tostring(var.audit_tick_minutes)
    AUDIT_MAX_PROJECTS_PER_RUN       = tostring(var.audit_max_projects_per_run)
    LOG_LEVEL                        = var.log_level
  }
  function_environment = { for k, v in local.function_settings : k => v if v != "" }

  # What `osq-orch publish` reads in Cloud Build: the same settings (storage.tf writes them to the
  # bucket as a shell-sourceable file).
  publish_environment = local.function_environment
}
