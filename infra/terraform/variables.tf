# Settings of the deployment. The function settings mirror shared/config.ts (same names in lower case,
# same defaults); test/terraform.test.ts checks that every setting the code reads is passed through.

# --- Where ---------------------------------------------------------------------------------------

variable "project_id" {
  description = "The orchestrator project: functions, Firestore, Pub/Sub topics, the configuration bucket, alert policies."
  type        = string
}

variable "region" {
  description = "Region of the functions, the scheduler job and (by default) the bucket and Firestore."
  type        = string
  default     = "us-central1"
}

variable "target_projects" {
  description = "What the orchestrator covers (TARGET_PROJECTS): project ids, and folders (folders/N) or organisations (organizations/N), each meaning its active projects, subfolders included, resolved at every audit. Each project gets custom roles for the functions and the publisher; each folder or organisation gets them from organization_id, bound on it."
  type        = list(string)

  validation {
    condition     = length(var.target_projects) > 0
    error_message = "List at least one target project, folder or organisation."
  }

  validation {
    condition     = alltrue([for t in var.target_projects : can(regex("^((folders|organizations)/[1-9][0-9]{0,19}|([-a-z0-9.]+:)?[a-z0-9][-a-z0-9]*[a-z0-9])$", t))])
    error_message = "Each target is a project id, folders/N or organizations/N."
  }
}

variable "organization_id" {
  description = "Numeric id of the organisation. Needed when target_projects names a folder or organisation (the custom roles granted there are defined in the organisation) or enrollment_sink is \"organization\"."
  type        = string
  default     = null

  validation {
    condition     = var.organization_id == null || can(regex("^[1-9][0-9]{0,19}$", var.organization_id))
    error_message = "The organisation's numeric id, e.g. 123456789012."
  }
}

variable "enrollment_sink" {
  description = "How VMs outside the orchestrator project reach vmLifecycle within seconds (sink.tf): \"organization\" (one sink on organization_id, every project below), \"folder\" (one sink on each target folder), \"projects\" (one sink in each listed target project: no folder or organisation access needed), or \"none\" (the audit finds them, every audit_schedule)."
  type        = string
  default     = "projects"

  validation {
    condition     = contains(["organization", "folder", "projects", "none"], var.enrollment_sink)
    error_message = "One of organization, folder, projects, none."
  }
}

variable "name_prefix" {
  description = "Prefix of function, service account and custom role names (keep it short: service account ids are at most 30 characters)."
  type        = string
  default     = "osq"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,7}$", var.name_prefix))
    error_message = "2 to 8 lower-case letters and digits, starting with a letter."
  }
}

variable "labels" {
  description = "Labels put on the resources that take them."
  type        = map(string)
  default     = {}
}

variable "enable_target_apis" {
  description = "Enable the Compute Engine and OS Config APIs in every target project (OS Config cannot manage VMs without its API)."
  type        = bool
  default     = true
}

variable "add_targets_to_metrics_scope" {
  description = "Add every target project to the orchestrator project's metrics scope, so the osqueryd alert policies see the target VMs."
  type        = bool
  default     = true
}

# --- Firestore -----------------------------------------------------------------------------------

variable "firestore_database" {
  description = "Firestore database id (FIRESTORE_DATABASE)."
  type        = string
  default     = "(default)"
}

variable "firestore_location" {
  description = "Firestore location (a region such as us-central1 or a multi-region such as nam5). Null: the region."
  type        = string
  default     = null
}

# --- Pub/Sub -------------------------------------------------------------------------------------

variable "log_topic" {
  description = "Topic the log shipper on every VM publishes osquery results to (LOG_TOPIC); logHeartbeat reads it."
  type        = string
  default     = "osquery-logs"
}

variable "create_log_topic" {
  description = "Create the log topic (true) or use an existing one (false), e.g. one the SIEM already owns."
  type        = bool
  default     = true
}

variable "log_topic_project" {
  description = "Project of the log topic (LOG_TOPIC_PROJECT). Null: the orchestrator project."
  type        = string
  default     = null
}

variable "alert_topic" {
  description = "Topic alert messages go to (ALERT_TOPIC, docs/contracts.md)."
  type        = string
  default     = "osquery-alerts"
}

variable "incident_topic" {
  description = "Topic Cloud Monitoring's notification channel publishes incidents to (INCIDENT_TOPIC); monitoringAlert reads it."
  type        = string
  default     = "osquery-incidents"
}

variable "audit_tick_topic" {
  description = "Topic Cloud Scheduler publishes the audit tick to (AUDIT_TICK_TOPIC); fleetAudit reads it."
  type        = string
  default     = "osquery-audit-tick"
}

variable "audit_shard_topic" {
  description = "Topic fleetAudit fans out to, one message per target project (AUDIT_SHARD_TOPIC); fleetAuditShard reads it."
  type        = string
  default     = "osquery-audit-shards"
}

variable "compute_audit_log_topic" {
  description = "Topic the enrollment sink publishes Compute's instance insert and delete audit entries to; its push subscription delivers them to vmLifecycle."
  type        = string
  default     = "osquery-compute-audit-log"
}

variable "dead_letter_topic" {
  description = "Topic malformed messages are republished to (DEAD_LETTER_TOPIC)."
  type        = string
  default     = "osquery-dead-letter"
}

# --- Audit schedule and thresholds ---------------------------------------------------------------

variable "audit_schedule" {
  description = "Cron schedule of the fleet audit (Cloud Scheduler)."
  type        = string
  default     = "*/15 * * * *"
}

variable "audit_schedule_time_zone" {
  description = "Time zone of the audit schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "grace_period_minutes" {
  description = "Minutes a host may stay pending before it is judged (GRACE_PERIOD_MINUTES)."
  type        = number
  default     = 30
}

variable "silence_threshold_minutes" {
  description = "Minutes without logs before a compliant host is silent (SILENCE_THRESHOLD_MINUTES). Null: 3 heartbeat intervals plus splay."
  type        = number
  default     = null
}

variable "siem_subscription" {
  description = "The SIEM's own subscription on the log topic (an id in the log topic's project): Cloud Monitoring watches its backlog like the heartbeat's, as pipeline.backlog alerts (SIEM_SUBSCRIPTION). Null: only the heartbeat subscription is watched."
  type        = string
  default     = null
}

variable "silent_storm_share" {
  description = "More than this share (0-1] of a project's in-scope hosts going silent in one audit is one fleet.silent alert, the host alerts held back until it clears (SILENT_STORM_SHARE)."
  type        = number
  default     = 0.2
}

variable "log_backlog_age_seconds" {
  description = "A log subscription whose oldest unacked message is older than this (seconds, for 5 minutes) raises pipeline.backlog."
  type        = number
  default     = 600
}

variable "log_backlog_messages" {
  description = "A log subscription with more undelivered messages than this (for 5 minutes) raises pipeline.backlog."
  type        = number
  default     = 100000
}

variable "drift_grace_minutes" {
  description = "Minutes osqueryd may run another configuration or release than OS Config applied before host.drifted (DRIFT_GRACE_MINUTES)."
  type        = number
  default     = 15
}

variable "heartbeat_interval_seconds" {
  description = "osquery's heartbeat query interval (HEARTBEAT_INTERVAL_SECONDS); the silence threshold derives from it."
  type        = number
  default     = 300
}

variable "heartbeat_splay_percent" {
  description = "osquery's schedule splay in percent (HEARTBEAT_SPLAY_PERCENT)."
  type        = number
  default     = 10
}

variable "heartbeat_token_audience" {
  description = "The audience of the instance identity token heartbeats carry (HEARTBEAT_TOKEN_AUDIENCE), rendered into the OS policy. Null: the log topic's full name, projects/P/topics/T."
  type        = string
  default     = null
}

variable "heartbeat_token_certs_url" {
  description = "Google's certificates logHeartbeat checks identity tokens against (HEARTBEAT_TOKEN_CERTS_URL)."
  type        = string
  default     = "https://www.googleapis.com/oauth2/v1/certs"
}

variable "heartbeat_unsigned" {
  description = "A heartbeat without an identity token: accept (a sign of life, counted) while the refresher rolls out, reject once every host sends one (HEARTBEAT_UNSIGNED)."
  type        = string
  default     = "accept"
  validation {
    condition     = contains(["accept", "reject"], var.heartbeat_unsigned)
    error_message = "heartbeat_unsigned is accept or reject."
  }
}

variable "heartbeat_write_window_seconds" {
  description = "logHeartbeat writes a host's lastLogAt at most once per this many seconds (HEARTBEAT_WRITE_WINDOW_SECONDS)."
  type        = number
  default     = 60
}

variable "osqueryd_cpu_consecutive" {
  description = "host.performance fires after this many consecutive heartbeats above osqueryd_cpu_percent (OSQUERYD_CPU_CONSECUTIVE)."
  type        = number
  default     = 2
}

variable "query_expensive_p95_ms" {
  description = "query.expensive: a query's CPU ms per execution at p95 across hosts above this (QUERY_EXPENSIVE_P95_MS)."
  type        = number
  default     = 2000
}

variable "log_bytes_per_host_day" {
  description = "logs.overBudget: a configuration version's shipped log bytes per host and day above this (LOG_BYTES_PER_HOST_DAY; null: no budget)."
  type        = number
  default     = null
}

variable "log_bytes_per_query_host_day" {
  description = "Optional: any one query's shipped log bytes per host and day above this puts its version over budget (LOG_BYTES_PER_QUERY_HOST_DAY)."
  type        = number
  default     = null
}

variable "query_stats_write_window_seconds" {
  description = "logHeartbeat writes each queryStats document at most once per this many seconds per instance (QUERY_STATS_WRITE_WINDOW_SECONDS)."
  type        = number
  default     = 300
}

# --- Scope and policy ----------------------------------------------------------------------------

variable "opt_out_label" {
  description = "VMs carrying this label (key=value) are out of scope (OPT_OUT_LABEL)."
  type        = string
  default     = "osquery-exempt=true"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,62}=[a-z0-9_-]{0,63}$", var.opt_out_label))
    error_message = "Expected key=value with Compute label characters."
  }
}

variable "remediate_osconfig_metadata" {
  description = "Set enable-osconfig=TRUE on in-scope VMs where nothing sets it (REMEDIATE_OSCONFIG_METADATA)."
  type        = bool
  default     = false
}

variable "assignment_id" {
  description = "Id of the orchestrator's OS policy assignment in each zone (ASSIGNMENT_ID)."
  type        = string
  default     = "osquery"
}

variable "rollout_disruption_percent" {
  description = "OS Config rollout disruption budget, percent of a zone's VMs (ROLLOUT_DISRUPTION_PERCENT)."
  type        = number
  default     = 10
}

variable "rollout_min_wait_seconds" {
  description = "OS Config rollout minimum wait per VM (ROLLOUT_MIN_WAIT_SECONDS)."
  type        = number
  default     = 60
}

variable "rollout_evidence_max_age_minutes" {
  description = "The rollout controller decides only if every project of the stages reached had a successful audit within this many minutes; longer holds the rollout and raises rollout.stalled (ROLLOUT_EVIDENCE_MAX_AGE_MINUTES)."
  type        = number
  default     = 30
}

variable "osconfig_reads_per_minute" {
  description = "OS Config reads allowed per minute per function instance (OSCONFIG_READS_PER_MINUTE)."
  type        = number
  default     = 60
}

variable "osconfig_writes_per_minute" {
  description = "OS Config writes allowed per minute per function instance (OSCONFIG_WRITES_PER_MINUTE)."
  type        = number
  default     = 50
}

variable "api_budget_osconfig_reads" {
  description = "OS Config reads a minute every instance together may make: the global API budget (API_BUDGET_OSCONFIG_READS, docs/quotas.md); 0 turns it off."
  type        = number
  default     = 48
}

variable "api_budget_osconfig_writes" {
  description = "OS Config writes a minute every instance together may make (API_BUDGET_OSCONFIG_WRITES); 0 turns it off."
  type        = number
  default     = 48
}

variable "api_budget_service_usage" {
  description = "Service Usage reads a minute every instance together may make (API_BUDGET_SERVICE_USAGE); 0 turns it off."
  type        = number
  default     = 192
}

variable "api_budget_resource_manager" {
  description = "Resource Manager list calls a minute every instance together may make (API_BUDGET_RESOURCE_MANAGER); 0 turns it off."
  type        = number
  default     = 480
}

variable "api_budget_window_seconds" {
  description = "The budget's window (API_BUDGET_WINDOW_SECONDS): Google counts per minute; leave at 60."
  type        = number
  default     = 60
}

variable "api_budget_max_wait_seconds" {
  description = "A call waits at most this long for the budget, else its event is redelivered later (API_BUDGET_MAX_WAIT_SECONDS)."
  type        = number
  default     = 300
}

variable "service_usage_cache_hours" {
  description = "How long a project's API enablement (Service Usage) is trusted before the audit reads it again (SERVICE_USAGE_CACHE_HOURS)."
  type        = number
  default     = 24
}

variable "audit_tick_minutes" {
  description = "Minutes between audit ticks, as audit_schedule runs them: the rolling audit plans each tick's OS Config reads with it (AUDIT_TICK_MINUTES)."
  type        = number
  default     = 15
}

variable "audit_max_projects_per_run" {
  description = "Projects one audit run covers at most; more are audited over several ticks (AUDIT_MAX_PROJECTS_PER_RUN)."
  type        = number
  default     = 500
}

variable "osquery_version" {
  description = "osquery version whose schema the linter uses (OSQUERY_VERSION)."
  type        = string
  default     = "5.23.1"
}

variable "log_level" {
  description = "Log level of the functions (LOG_LEVEL, read by shared/log.ts): debug, info, warn, error, silent."
  type        = string
  default     = "info"
}

# --- Configuration bucket and VMs ----------------------------------------------------------------

variable "config_bucket" {
  description = "Name of the bucket created for published configuration files (CONFIG_BUCKET); globally unique."
  type        = string
}

variable "bucket_location" {
  description = "Location of the configuration bucket. Null: the region."
  type        = string
  default     = null
}

variable "vm_service_accounts" {
  description = "Emails of the service accounts the target VMs run as: they read the configuration bucket (OS Config agent) and publish to the log topic (shipper)."
  type        = list(string)
  default     = []
}

# --- Functions -----------------------------------------------------------------------------------

variable "function_source_bucket" {
  description = "Bucket holding the function source zip (created before the first apply; Cloud Build uploads to it)."
  type        = string
}

variable "function_source_object" {
  description = "Object name of the function source zip in function_source_bucket (content-addressed; a new name redeploys)."
  type        = string
}

variable "max_instances" {
  description = "Maximum instances of each function."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= 1
    error_message = "At least 1."
  }
}

variable "audit_shard_max_instances" {
  description = "Maximum instances of fleetAuditShard. Each instance paces itself to osconfig_reads_per_minute / osconfig_writes_per_minute; together they stay within the global API budget (api_budget_*)."
  type        = number
  default     = 2

  validation {
    condition     = var.audit_shard_max_instances >= 1
    error_message = "At least 1."
  }
}

variable "log_heartbeat_concurrency" {
  description = "Concurrent requests per logHeartbeat instance (the log topic is the busiest trigger)."
  type        = number
  default     = 16
}

variable "log_heartbeat_delivery" {
  description = "How the log topic's heartbeat lines reach the code: \"push\" (a filtered push subscription invokes logHeartbeat once per message) or \"pull\" (a filtered pull subscription that logHeartbeatDrain drains on a Cloud Scheduler tick every minute: one invocation a minute for the whole fleet)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "pull"], var.log_heartbeat_delivery)
    error_message = "log_heartbeat_delivery must be \"push\" or \"pull\"."
  }
}

variable "log_drain_budget_seconds" {
  description = "Pull delivery: seconds a drain keeps pulling and processing before it releases the rest for the next tick (LOG_DRAIN_BUDGET_SECONDS); logHeartbeatDrain's timeout is this plus 60."
  type        = number
  default     = 45

  validation {
    condition     = var.log_drain_budget_seconds >= 5 && var.log_drain_budget_seconds <= 480 && floor(var.log_drain_budget_seconds) == var.log_drain_budget_seconds
    error_message = "log_drain_budget_seconds must be a whole number from 5 to 480."
  }
}

variable "log_drain_tick_topic" {
  description = "Pull delivery: topic Cloud Scheduler publishes the drain tick to every minute (LOG_DRAIN_TICK_TOPIC); logHeartbeatDrain reads it."
  type        = string
  default     = "osquery-log-drain-tick"
}

# --- Monitoring ----------------------------------------------------------------------------------

variable "osqueryd_cpu_percent" {
  description = "Alert (host.performance) when osqueryd on a VM uses more than this percentage of one CPU: for 5 minutes in Cloud Monitoring, over osqueryd_cpu_consecutive heartbeats from osquery itself (OSQUERYD_CPU_PERCENT)."
  type        = number
  default     = 10
}

variable "osqueryd_memory_mb" {
  description = "Alert (host.performance) when osqueryd's resident memory on a VM exceeds this many MiB: for 5 minutes in Cloud Monitoring, on any heartbeat from osquery itself (OSQUERYD_MEMORY_MB). Below the watchdog's 350, so the alert comes before the kill."
  type        = number
  default     = 300
}

variable "function_errors_threshold" {
  description = "Alert when a function answers more than this many non-2xx responses in 5 minutes, for 10 minutes."
  type        = number
  default     = 5
}

# --- Status page (status.tf) ---------------------------------------------------------------------

variable "status_page_viewers" {
  description = "Who may open the fleet status page: IAM members such as group:secops@example.com, user:EMAIL, serviceAccount:EMAIL or domain:example.com. Never public."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.status_page_viewers : can(regex("^(user|group|serviceAccount|domain):[^\\s:]+$", m))])
    error_message = "Each viewer is user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN: the status page is never public."
  }
}

variable "status_page_iap" {
  description = "Put the status page behind Identity-Aware Proxy: an external HTTPS load balancer on status_page_domain (the function then takes load-balancer traffic only)."
  type        = bool
  default     = false
}

variable "status_page_domain" {
  description = "With status_page_iap: the domain the load balancer's managed certificate is issued for (point its A record at the output status_page_ip)."
  type        = string
  default     = null
}

variable "status_page_max_instances" {
  description = "Maximum instances of fleetStatus (a handful of people read it)."
  type        = number
  default     = 3

  validation {
    condition     = var.status_page_max_instances >= 1
    error_message = "At least 1."
  }
}
