# The orchestrator's own state as metrics, for a team that queries with PromQL (Managed Service for
# Prometheus reads every Cloud Monitoring metric: infra/prometheus, infra/grafana) as much as for Cloud
# Monitoring. Log-based metrics on lines fleetAuditShard already logs, so they cost no code and no call:
# - coverage per run: dashboard.tf (fleet_coverage);
# - hosts per state: the same "audit run closed" line (shared/usecases/status.ts publishRunStatus) carries
#   `counts`, the run's hosts per state; one distribution per state, read as the value of each run. A
#   state no host is in is absent from `counts`: that run writes no point for it;
# - rollout stage and status: at each audit run's close the controller (shared/usecases/rollout.ts
#   controlRollout) logs "rollout: holding", "rollout: promoted" or "rollout: completed" while a staged
#   rollout runs, and "rollout of VERSION halted in stage ...: ..." when a gate fails, each with the
#   version and the stage; one counter labelled with the decision, the stage and the version.
# - log volume per configuration version: at each audit run's close (shared/usecases/telemetry.ts
#   evaluateQueryCosts) one "log volume of a version" line per version carries shippedBytesPerDay, the bytes
#   its hosts ship a day by the log shipper's count. A new line, because the figure exists nowhere else: Cloud
#   Monitoring's topic/byte_cost has no version nor query, and a custom metric would need a Monitoring client
#   and role in the functions.

locals {
  # shared/domain/host.ts HOST_STATES (test/terraform.test.ts compares the two).
  host_states = ["exempt", "pending", "blocked", "noncompliant", "compliant", "reporting", "silent", "stopped", "deleted"]
  # The lines fleetAuditShard logs at the close of an audit run.
  audit_shard_logs = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.function_names.fleetAuditShard}\""
}

resource "google_logging_metric" "fleet_hosts" {
  for_each = toset(local.host_states)

  project     = var.project_id
  name        = "${var.name_prefix}-fleet-hosts-${each.key}"
  description = "Hosts in state ${each.key} at each closed audit run."
  filter      = "${local.audit_shard_logs} AND jsonPayload.message=\"audit run closed\" AND jsonPayload.counts.${each.key}>=0"

  value_extractor = "EXTRACT(jsonPayload.counts.${each.key})"
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "osquery fleet hosts ${each.key}"
  }
  # Read as _sum / _count (exact); the buckets only bound a histogram_quantile.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 24
      growth_factor      = 2
      scale              = 1
    }
  }

  depends_on = [google_project_service.orchestrator]
}

resource "google_logging_metric" "rollout_decisions" {
  project     = var.project_id
  name        = "${var.name_prefix}-rollout-decisions"
  description = "The staged rollout controller's decisions at each audit run's close (holding, promoted, completed, halted), by stage and configuration version."
  filter      = "${local.audit_shard_logs} AND jsonPayload.message=~\"^rollout(: (holding|promoted|completed)$| of [^ ]+ halted in stage )\""

  label_extractors = {
    decision = "REGEXP_EXTRACT(jsonPayload.message, \"^rollout(?:: | of [^ ]+ )(holding|promoted|completed|halted)\")"
    stage    = "EXTRACT(jsonPayload.stage)"
    version  = "EXTRACT(jsonPayload.version)"
  }
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "osquery rollout decisions"
    labels {
      key         = "decision"
      description = "holding, promoted, completed or halted"
    }
    labels {
      key         = "stage"
      description = "The stage evaluated (promoted: the stage entered)"
    }
    labels {
      key         = "version"
      description = "The configuration version rolled out"
    }
  }

  depends_on = [google_project_service.orchestrator]
}

resource "google_logging_metric" "log_volume" {
  project     = var.project_id
  name        = "${var.name_prefix}-log-volume"
  description = "Log bytes a configuration version's hosts ship a day (the shipper's count), at each audit run's close."
  filter      = "${local.audit_shard_logs} AND jsonPayload.message=\"log volume of a version\" AND jsonPayload.shippedBytesPerDay>=0"

  value_extractor = "EXTRACT(jsonPayload.shippedBytesPerDay)"
  label_extractors = {
    config_version = "EXTRACT(jsonPayload.configVersion)"
  }
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "By"
    display_name = "osquery log volume per version"
    labels {
      key         = "config_version"
      description = "The configuration version"
    }
  }
  # Read as _sum / _count (exact); the buckets only bound a histogram_quantile.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 2
      scale              = 1024
    }
  }

  depends_on = [google_project_service.orchestrator]
}
