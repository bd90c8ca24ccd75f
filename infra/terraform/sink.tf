# Enrollment within seconds in every target project. An Eventarc audit-log trigger sees its own project
# only, so the other projects' Compute audit entries (instance insert, bulkInsert, delete) are routed by a
# log sink, as Cloud Custodian's audit mode wires it: a non-intercepting organisation or folder sink with
# include_children (or, without folder or organisation access, one sink in each listed target project)
# -> a topic its writer identity may publish to -> a push subscription -> vmLifecycle. vmLifecycle tells
# the sink's Pub/Sub message from Eventarc's CloudEvent by the CloudEvent type and parses the LogEntry
# inside with the same code (shared/domain/audit-event.ts); an entry arriving both ways (the orchestrator
# project, under an organisation or folder sink) changes nothing the second time.
#
# var.enrollment_sink chooses:
#   organization  one sink on organization_id                     (logging.sinks.create on the organisation)
#   folder        one sink on each folder named in target_projects (logging.sinks.create on each folder)
#   projects      one sink in each listed target project but the orchestrator's (Eventarc covers that one)
#   none          no sink: VMs outside the orchestrator project wait for the next audit

locals {
  # Exactly the method names vmLifecycle acts on (LIFECYCLE_METHODS, shared/domain/audit-event.ts) and the
  # Eventarc triggers' (functions.tf): test/terraform.test.ts compares all three.
  compute_audit_log_filter = "logName:\"cloudaudit.googleapis.com%2Factivity\" AND protoPayload.serviceName=\"compute.googleapis.com\" AND protoPayload.methodName=(\"v1.compute.instances.insert\" OR \"beta.compute.instances.insert\" OR \"compute.instances.insert\" OR \"v1.compute.instances.bulkInsert\" OR \"beta.compute.instances.bulkInsert\" OR \"compute.instances.bulkInsert\" OR \"v1.compute.instances.delete\" OR \"beta.compute.instances.delete\" OR \"compute.instances.delete\")"

  enrollment_sink_on       = var.enrollment_sink != "none"
  enrollment_sink_folders  = var.enrollment_sink == "folder" ? toset(local.target_folders) : toset([])
  enrollment_sink_projects = var.enrollment_sink == "projects" ? toset([for p in local.target_project_ids : p if p != var.project_id]) : toset([])
  enrollment_sink_name     = "${var.name_prefix}-compute-audit-log"
}

# A day of entries: a vmLifecycle outage shorter than that loses no enrollment (the audit catches the rest).
resource "google_pubsub_topic" "compute_audit_log" {
  count = local.enrollment_sink_on ? 1 : 0

  project                    = var.project_id
  name                       = var.compute_audit_log_topic
  message_retention_duration = "86400s"
  labels                     = var.labels

  depends_on = [google_project_service.orchestrator]
}

resource "google_logging_organization_sink" "compute_audit_log" {
  count = var.enrollment_sink == "organization" ? 1 : 0

  name             = local.enrollment_sink_name
  description      = "Compute instance insert, bulkInsert and delete audit entries of every project, for osquery-orchestrator's vmLifecycle."
  org_id           = var.organization_id
  destination      = "pubsub.googleapis.com/${google_pubsub_topic.compute_audit_log[0].id}"
  filter           = local.compute_audit_log_filter
  include_children = true
  # Non-intercepting: the entries still reach every project's own buckets and sinks.
  intercept_children = false

  lifecycle {
    precondition {
      condition     = var.organization_id != null
      error_message = "enrollment_sink = \"organization\" needs organization_id."
    }
  }
}

resource "google_logging_folder_sink" "compute_audit_log" {
  for_each = local.enrollment_sink_folders

  name               = local.enrollment_sink_name
  description        = "Compute instance insert, bulkInsert and delete audit entries of every project in the folder, for osquery-orchestrator's vmLifecycle."
  folder             = each.value
  destination        = "pubsub.googleapis.com/${google_pubsub_topic.compute_audit_log[0].id}"
  filter             = local.compute_audit_log_filter
  include_children   = true
  intercept_children = false
}

resource "google_logging_project_sink" "compute_audit_log" {
  for_each = local.enrollment_sink_projects

  project                = each.value
  name                   = local.enrollment_sink_name
  description            = "Compute instance insert, bulkInsert and delete audit entries, for osquery-orchestrator's vmLifecycle."
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.compute_audit_log[0].id}"
  filter                 = local.compute_audit_log_filter
  unique_writer_identity = true
}

# Each sink's writer identity may publish to the topic, and to nothing else.
resource "google_pubsub_topic_iam_member" "compute_audit_log_organization_writer" {
  count = var.enrollment_sink == "organization" ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.compute_audit_log[0].name
  role    = "roles/pubsub.publisher"
  member  = google_logging_organization_sink.compute_audit_log[0].writer_identity
}

resource "google_pubsub_topic_iam_member" "compute_audit_log_folder_writer" {
  for_each = google_logging_folder_sink.compute_audit_log

  project = var.project_id
  topic   = google_pubsub_topic.compute_audit_log[0].name
  role    = "roles/pubsub.publisher"
  member  = each.value.writer_identity
}

resource "google_pubsub_topic_iam_member" "compute_audit_log_project_writer" {
  for_each = google_logging_project_sink.compute_audit_log

  project = var.project_id
  topic   = google_pubsub_topic.compute_audit_log[0].name
  role    = "roles/pubsub.publisher"
  member  = each.value.writer_identity
}

# vmLifecycle's second way in: a push to <function URL>/projects/P/topics/T, which the Functions
# Framework turns into a messagePublished CloudEvent, with an OIDC token of the trigger account, retried
# with backoff as a trigger would (the function throws only for transient faults).
resource "google_pubsub_subscription" "vm_lifecycle_push" {
  count = local.enrollment_sink_on ? 1 : 0

  project                    = var.project_id
  name                       = "${local.function_names.vmLifecycle}-push"
  topic                      = google_pubsub_topic.compute_audit_log[0].id
  ack_deadline_seconds       = 300
  message_retention_duration = "86400s"
  labels                     = var.labels

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.function["vmLifecycle"].service_config[0].uri}/projects/${var.project_id}/topics/${var.compute_audit_log_topic}"
    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = google_cloudfunctions2_function.function["vmLifecycle"].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker, google_service_account_iam_member.trigger_pubsub_token_creator]
}
