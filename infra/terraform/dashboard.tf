# Cloud Monitoring dashboard "osquery fleet": coverage per audit run, the 10 VMs where osqueryd uses
# the most CPU, resident memory and disk IO (the Ops Agent's process metrics, one series per VM, ranked
# with pickTimeSeriesFilter), the orchestrator functions' errors and latency, and the log volume per
# configuration version (metrics.tf: log_volume). The dashboard is
# written as an HCL object (local.fleet_dashboard) so test/terraform.test.ts can read it as data.

# Coverage as a metric: fleetAuditShard logs "audit run closed" once per run with coveragePercent
# (shared/usecases/status.ts: RUN_CLOSED_MESSAGE); this log-based metric extracts it. Runs without an
# in-scope host log no figure.
resource "google_logging_metric" "fleet_coverage" {
  project     = var.project_id
  name        = "${var.name_prefix}-fleet-coverage"
  description = "Coverage of each closed audit run, in percent: reporting / (in scope and not stopped)."
  filter      = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.function_names.fleetAuditShard}\" AND jsonPayload.message=\"audit run closed\" AND jsonPayload.coveragePercent>=0"

  value_extractor = "EXTRACT(jsonPayload.coveragePercent)"
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "%"
    display_name = "osquery fleet coverage"
  }
  bucket_options {
    linear_buckets {
      num_finite_buckets = 100
      width              = 1
      offset             = 0
    }
  }

  depends_on = [google_project_service.orchestrator]
}

locals {
  # Ops Agent process metrics of osqueryd (watchdog and worker), summed per VM; the 10 highest series.
  osqueryd_filter = "resource.type=\"gce_instance\" metric.label.command=\"osqueryd\""
  top_10          = { rankingMethod = "METHOD_MEAN", numTimeSeries = 10, direction = "TOP" }
  # The orchestrator's Cloud Run services (a 2nd gen function's service carries its name).
  function_services = join(", ", [for n in values(local.function_names) : "\"${n}\""])
  functions_filter  = "resource.type=\"cloud_run_revision\" resource.label.service_name=one_of(${local.function_services})"

  fleet_dashboard = {
    displayName = "osquery fleet (${var.name_prefix})"
    gridLayout = {
      columns = 2
      widgets = [
        {
          title = "Coverage per audit run (%): reporting / in scope and not stopped"
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.fleet_coverage.name}\" resource.type=\"cloud_run_revision\""
                  aggregation = {
                    alignmentPeriod    = "900s"
                    perSeriesAligner   = "ALIGN_SUM"
                    crossSeriesReducer = "REDUCE_MEAN"
                  }
                }
              }
            }]
            yAxis = { label = "%", scale = "LINEAR" }
          }
        },
        {
          title = "Where to look"
          text = {
            format  = "MARKDOWN"
            content = "**Status page** (coverage, hosts needing action, exempt hosts, evidence CSV): ${google_cloudfunctions2_function.function["fleetStatus"].service_config[0].uri} (Terraform output `status_page_url`). The charts below rank VMs by osqueryd's own use: the watchdog limits are 10% of a CPU and 350 MB."
          }
        },
        {
          title = "Top 10 VMs by osqueryd CPU (µs of CPU per s; 10,000 = 1% of a core)"
          xyChart = {
            dataSets = [{
              plotType       = "LINE"
              legendTemplate = "$${resource.labels.project_id} $${resource.labels.zone} $${resource.labels.instance_id}"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"agent.googleapis.com/processes/cpu_time\" ${local.osqueryd_filter}"
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = "ALIGN_RATE"
                    crossSeriesReducer = "REDUCE_SUM"
                    groupByFields      = local.per_vm_group_by
                  }
                  pickTimeSeriesFilter = local.top_10
                }
              }
            }]
            yAxis = { label = "µs/s", scale = "LINEAR" }
          }
        },
        {
          title = "Top 10 VMs by osqueryd resident memory"
          xyChart = {
            dataSets = [{
              plotType       = "LINE"
              legendTemplate = "$${resource.labels.project_id} $${resource.labels.zone} $${resource.labels.instance_id}"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"agent.googleapis.com/processes/rss_usage\" ${local.osqueryd_filter}"
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = "ALIGN_MEAN"
                    crossSeriesReducer = "REDUCE_SUM"
                    groupByFields      = local.per_vm_group_by
                  }
                  pickTimeSeriesFilter = local.top_10
                }
              }
            }]
            yAxis = { label = "bytes", scale = "LINEAR" }
          }
        },
        {
          title = "Top 10 VMs by osqueryd disk reads"
          xyChart = {
            dataSets = [{
              plotType       = "LINE"
              legendTemplate = "$${resource.labels.project_id} $${resource.labels.zone} $${resource.labels.instance_id}"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"agent.googleapis.com/processes/disk/read_bytes_count\" ${local.osqueryd_filter}"
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = "ALIGN_RATE"
                    crossSeriesReducer = "REDUCE_SUM"
                    groupByFields      = local.per_vm_group_by
                  }
                  pickTimeSeriesFilter = local.top_10
                }
              }
            }]
            yAxis = { label = "bytes/s", scale = "LINEAR" }
          }
        },
        {
          title = "Top 10 VMs by osqueryd disk writes"
          xyChart = {
            dataSets = [{
              plotType       = "LINE"
              legendTemplate = "$${resource.labels.project_id} $${resource.labels.zone} $${resource.labels.instance_id}"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"agent.googleapis.com/processes/disk/write_bytes_count\" ${local.osqueryd_filter}"
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = "ALIGN_RATE"
                    crossSeriesReducer = "REDUCE_SUM"
                    groupByFields      = local.per_vm_group_by
                  }
                  pickTimeSeriesFilter = local.top_10
                }
              }
            }]
            yAxis = { label = "bytes/s", scale = "LINEAR" }
          }
        },
        {
          title = "Orchestrator functions: non-2xx responses per second"
          xyChart = {
            dataSets = [{
              plotType       = "STACKED_BAR"
              legendTemplate = "$${resource.labels.service_name} $${metric.labels.response_code_class}"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"run.googleapis.com/request_count\" ${local.functions_filter} metric.label.response_code_class=one_of(\"4xx\", \"5xx\")"
                  aggregation = {
                    alignmentPeriod    = "300s"
                    perSeriesAligner   = "ALIGN_RATE"
                    crossSeriesReducer = "REDUCE_SUM"
                    groupByFields      = ["resource.label.service_name", "metric.label.response_code_class"]
                  }
                }
              }
            }]
            yAxis = { label = "responses/s", scale = "LINEAR" }
          }
        },
        {
          title = "Orchestrator functions: request latency, 99th and 50th percentile"
          xyChart = {
            dataSets = [
              {
                plotType       = "LINE"
                legendTemplate = "p99 $${resource.labels.service_name}"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"run.googleapis.com/request_latencies\" ${local.functions_filter}"
                    aggregation = {
                      alignmentPeriod    = "300s"
                      perSeriesAligner   = "ALIGN_DELTA"
                      crossSeriesReducer = "REDUCE_PERCENTILE_99"
                      groupByFields      = ["resource.label.service_name"]
                    }
                  }
                }
              },
              {
                plotType       = "LINE"
                legendTemplate = "p50 $${resource.labels.service_name}"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"run.googleapis.com/request_latencies\" ${local.functions_filter}"
                    aggregation = {
                      alignmentPeriod    = "300s"
                      perSeriesAligner   = "ALIGN_DELTA"
                      crossSeriesReducer = "REDUCE_PERCENTILE_50"
                      groupByFields      = ["resource.label.service_name"]
                    }
                  }
                }
              },
            ]
            yAxis = { label = "ms", scale = "LOG10" }
          }
        },
        {
          title = "Log volume per configuration version (bytes shipped a day, the shipper's count)"
          xyChart = {
            dataSets = [{
              plotType       = "STACKED_AREA"
              legendTemplate = "$${metric.labels.config_version}"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.log_volume.name}\" resource.type=\"cloud_run_revision\""
                  aggregation = {
                    alignmentPeriod    = "900s"
                    perSeriesAligner   = "ALIGN_SUM"
                    crossSeriesReducer = "REDUCE_MEAN"
                    groupByFields      = ["metric.label.config_version"]
                  }
                }
              }
            }]
            yAxis = { label = "bytes/day", scale = "LINEAR" }
          }
        },
      ]
    }
  }
}

resource "google_monitoring_dashboard" "fleet" {
  project        = var.project_id
  dashboard_json = jsonencode(local.fleet_dashboard)

  depends_on = [google_project_service.orchestrator]
}

output "monitoring_dashboard" {
  description = "The Cloud Monitoring dashboard: coverage, top 10 VMs by osqueryd CPU, memory and disk IO, function errors and latency, log volume."
  value       = "https://console.cloud.google.com/monitoring/dashboards/builder/${element(split("/", google_monitoring_dashboard.fleet.id), 3)}?project=${var.project_id}"
}
