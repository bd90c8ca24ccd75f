# One service account per function, bound only to what that function calls (shared/permissions.ts:
# FUNCTION_PERMISSIONS). test/terraform.test.ts compares every binding below with that file.
#
#   target perms  -> a custom role in every listed target project, bound there; and, when target_projects
#                    names folders or organisations, one organisation-level custom role with the target
#                    and parent perms, bound on each of them (every project below inherits it)
#   firestore     -> roles/datastore.user in the orchestrator project
#   publishes     -> roles/pubsub.publisher on each topic it publishes to (never project-wide)
#
# Plus: one trigger service account (Eventarc and Pub/Sub deliveries invoke the functions' Cloud Run
# services as it), the publisher service account (`osq-orch publish` in Cloud Build) and the build
# service account Cloud Functions builds the source with.

# --- Service accounts ----------------------------------------------------------------------------

resource "google_service_account" "vm_lifecycle" {
  project      = var.project_id
  account_id   = local.function_names.vmLifecycle
  display_name = "osquery-orchestrator vmLifecycle"
  description  = "Runs vmLifecycle: enrolls new VMs and retires deleted ones."
}

resource "google_service_account" "fleet_audit" {
  project      = var.project_id
  account_id   = local.function_names.fleetAudit
  display_name = "osquery-orchestrator fleetAudit"
  description  = "Runs fleetAudit: starts an audit run, one shard message per target project."
}

resource "google_service_account" "fleet_audit_shard" {
  project      = var.project_id
  account_id   = local.function_names.fleetAuditShard
  display_name = "osquery-orchestrator fleetAuditShard"
  description  = "Runs fleetAuditShard: reconciles one target project."
}

resource "google_service_account" "log_heartbeat" {
  project      = var.project_id
  account_id   = local.function_names.logHeartbeat
  display_name = "osquery-orchestrator logHeartbeat"
  description  = "Runs logHeartbeat: records when each host's logs last arrived."
}

# Made in both delivery modes (an identity without bindings in push mode), so switching modes never
# recreates it; its bindings follow the mode.
resource "google_service_account" "log_heartbeat_drain" {
  project      = var.project_id
  account_id   = local.function_names.logHeartbeatDrain
  display_name = "osquery-orchestrator logHeartbeatDrain"
  description  = "Runs logHeartbeatDrain: drains the filtered log subscription (pull delivery)."
}

resource "google_service_account" "monitoring_alert" {
  project      = var.project_id
  account_id   = local.function_names.monitoringAlert
  display_name = "osquery-orchestrator monitoringAlert"
  description  = "Runs monitoringAlert: attaches Cloud Monitoring incidents to hosts."
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-trigger"
  display_name = "osquery-orchestrator triggers"
  description  = "Identity of the Eventarc and Pub/Sub deliveries: may invoke the five functions, nothing else."
}

resource "google_service_account" "publisher" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-publisher"
  display_name = "osquery-orchestrator publisher"
  description  = "Runs `osq-orch publish` in Cloud Build (shared/permissions.ts: PUBLISHER_PERMISSIONS)."
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "osquery-orchestrator function builds"
  description  = "Cloud Functions builds the function source as this account."
}

# --- vmLifecycle ---------------------------------------------------------------------------------

resource "google_project_iam_custom_role" "vm_lifecycle" {
  for_each = toset(local.target_project_ids)

  project     = each.value
  role_id     = "${local.role_prefix}VmLifecycle"
  title       = "osquery-orchestrator vmLifecycle"
  description = "What vmLifecycle calls in a target project (shared/permissions.ts)."
  permissions = [
    "compute.instances.get",
    "compute.instances.list",
    "compute.projects.get",
    "compute.zoneOperations.get",
    "compute.instances.setLabels",
    "compute.instances.setMetadata",
    "osconfig.osPolicyAssignments.get",
    "osconfig.osPolicyAssignments.create",
  ]
}

resource "google_project_iam_member" "vm_lifecycle_target" {
  for_each = toset(local.target_project_ids)

  project = each.value
  role    = google_project_iam_custom_role.vm_lifecycle[each.value].name
  member  = "serviceAccount:${google_service_account.vm_lifecycle.email}"
}

resource "google_project_iam_member" "vm_lifecycle_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.vm_lifecycle.email}"
}

# A VM blocked at enrollment (no service account, osconfig off) opens a host.blocked alert at once.
resource "google_pubsub_topic_iam_member" "vm_lifecycle_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.vm_lifecycle.email}"
}

# --- fleetAudit ----------------------------------------------------------------------------------
# It resolves the targets (folders and organisations to their projects, projects without the Compute or
# OS Config API skipped) and fans out.

resource "google_project_iam_custom_role" "fleet_audit" {
  for_each = toset(local.target_project_ids)

  project     = each.value
  role_id     = "${local.role_prefix}FleetAudit"
  title       = "osquery-orchestrator fleetAudit"
  description = "What fleetAudit calls in a target project (shared/permissions.ts)."
  permissions = [
    "serviceusage.services.get",
  ]
}

resource "google_project_iam_member" "fleet_audit_target" {
  for_each = toset(local.target_project_ids)

  project = each.value
  role    = google_project_iam_custom_role.fleet_audit[each.value].name
  member  = "serviceAccount:${google_service_account.fleet_audit.email}"
}

resource "google_project_iam_member" "fleet_audit_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.fleet_audit.email}"
}

resource "google_pubsub_topic_iam_member" "fleet_audit_audit_shards" {
  project = var.project_id
  topic   = google_pubsub_topic.audit_shards.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.fleet_audit.email}"
}

resource "google_pubsub_topic_iam_member" "fleet_audit_dead_letter" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.fleet_audit.email}"
}

# --- fleetAuditShard -----------------------------------------------------------------------------

resource "google_project_iam_custom_role" "fleet_audit_shard" {
  for_each = toset(local.target_project_ids)

  project     = each.value
  role_id     = "${local.role_prefix}FleetAuditShard"
  title       = "osquery-orchestrator fleetAuditShard"
  description = "What fleetAuditShard calls in a target project (shared/permissions.ts)."
  permissions = [
    "compute.instances.get",
    "compute.instances.list",
    "compute.projects.get",
    "compute.zoneOperations.get",
    "compute.instances.setLabels",
    "compute.instances.setMetadata",
    "osconfig.osPolicyAssignments.get",
    "osconfig.osPolicyAssignments.create",
    "osconfig.osPolicyAssignments.update",
    "osconfig.osPolicyAssignmentReports.list",
    "osconfig.inventories.list",
  ]
}

resource "google_project_iam_member" "fleet_audit_shard_target" {
  for_each = toset(local.target_project_ids)

  project = each.value
  role    = google_project_iam_custom_role.fleet_audit_shard[each.value].name
  member  = "serviceAccount:${google_service_account.fleet_audit_shard.email}"
}

resource "google_project_iam_member" "fleet_audit_shard_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.fleet_audit_shard.email}"
}

resource "google_pubsub_topic_iam_member" "fleet_audit_shard_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.fleet_audit_shard.email}"
}

resource "google_pubsub_topic_iam_member" "fleet_audit_shard_dead_letter" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.fleet_audit_shard.email}"
}

# --- logHeartbeat --------------------------------------------------------------------------------

resource "google_project_iam_member" "log_heartbeat_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.log_heartbeat.email}"
}

resource "google_pubsub_topic_iam_member" "log_heartbeat_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.log_heartbeat.email}"
}

resource "google_pubsub_topic_iam_member" "log_heartbeat_dead_letter" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.log_heartbeat.email}"
}

# --- logHeartbeatDrain (pull delivery) -----------------------------------------------------------

resource "google_project_iam_member" "log_heartbeat_drain_firestore" {
  count = local.log_heartbeat_pull ? 1 : 0

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.log_heartbeat_drain.email}"
}

resource "google_pubsub_topic_iam_member" "log_heartbeat_drain_alerts" {
  count = local.log_heartbeat_pull ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.log_heartbeat_drain.email}"
}

resource "google_pubsub_topic_iam_member" "log_heartbeat_drain_dead_letter" {
  count = local.log_heartbeat_pull ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.log_heartbeat_drain.email}"
}

# Pull, acknowledge and release on its own subscription, nothing else.
resource "google_pubsub_subscription_iam_member" "log_heartbeat_drain_subscriber" {
  count = local.log_heartbeat_pull ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.log_heartbeat_pull[0].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.log_heartbeat_drain.email}"
}

# --- monitoringAlert -----------------------------------------------------------------------------

resource "google_project_iam_member" "monitoring_alert_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.monitoring_alert.email}"
}

resource "google_pubsub_topic_iam_member" "monitoring_alert_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.monitoring_alert.email}"
}

resource "google_pubsub_topic_iam_member" "monitoring_alert_dead_letter" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.monitoring_alert.email}"
}

# --- Trigger identity ----------------------------------------------------------------------------
# Invoker on each function's Cloud Run service only (functions.tf), and the event receiver role
# Eventarc requires of a trigger's service account (it holds no data access).

resource "google_project_iam_member" "trigger_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

# Pub/Sub signs push requests (the Pub/Sub triggers' and logHeartbeat's filtered log subscription's) with
# an OIDC token of the trigger account; its service agent needs to mint those tokens for that one account.
resource "google_service_account_iam_member" "trigger_pubsub_token_creator" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.orchestrator.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# --- Publisher (Cloud Build: osq-orch publish) ---------------------------------------------------

resource "google_project_iam_custom_role" "publisher" {
  for_each = toset(local.target_project_ids)

  project     = each.value
  role_id     = "${local.role_prefix}Publisher"
  title       = "osquery-orchestrator publisher"
  description = "What osq-orch publish calls in a target project (shared/permissions.ts)."
  permissions = [
    "compute.instances.list",
    "compute.projects.get",
    "osconfig.osPolicyAssignments.get",
    "osconfig.osPolicyAssignments.create",
    "osconfig.osPolicyAssignments.update",
    "serviceusage.services.get",
  ]
}

resource "google_project_iam_member" "publisher_target" {
  for_each = toset(local.target_project_ids)

  project = each.value
  role    = google_project_iam_custom_role.publisher[each.value].name
  member  = "serviceAccount:${google_service_account.publisher.email}"
}

# Upload (create-only) and read configuration objects; granted on the configuration bucket only.
resource "google_project_iam_custom_role" "publisher_bucket" {
  project     = var.project_id
  role_id     = "${local.role_prefix}PublisherBucket"
  title       = "osquery-orchestrator publisher (configuration bucket)"
  description = "Create and read configuration objects (shared/permissions.ts)."
  permissions = [
    "storage.objects.create",
    "storage.objects.get",
  ]
}

resource "google_storage_bucket_iam_member" "publisher_config_bucket" {
  bucket = google_storage_bucket.config.name
  role   = google_project_iam_custom_role.publisher_bucket.name
  member = "serviceAccount:${google_service_account.publisher.email}"
}

resource "google_project_iam_member" "publisher_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.publisher.email}"
}

# A Cloud Build run as a user-chosen service account must be able to write its own build logs.
resource "google_project_iam_member" "publisher_build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.publisher.email}"
}

# --- Target folders and organisations --------------------------------------------------------------
# A folder or organisation in target_projects: each account that works in target projects holds one
# organisation-level custom role on it, with its target permissions (inherited by every project below,
# present and future) plus what resolving the target takes (resourcemanager.projects.list,
# resourcemanager.folders.list). Custom roles cannot be defined on a folder: they live in organization_id.

resource "google_organization_iam_custom_role" "vm_lifecycle_parent" {
  count = local.has_target_parents ? 1 : 0

  org_id      = var.organization_id
  role_id     = "${local.role_prefix}VmLifecycleParent"
  title       = "osquery-orchestrator vmLifecycle (target folders and organisations)"
  description = "What vmLifecycle calls under a target folder or organisation (shared/permissions.ts)."
  permissions = [
    "compute.instances.get",
    "compute.instances.list",
    "compute.projects.get",
    "compute.zoneOperations.get",
    "compute.instances.setLabels",
    "compute.instances.setMetadata",
    "osconfig.osPolicyAssignments.get",
    "osconfig.osPolicyAssignments.create",
  ]

  lifecycle {
    precondition {
      condition     = var.organization_id != null
      error_message = "target_projects names a folder or organisation: set organization_id (the custom roles granted there live in the organisation)."
    }
  }
}

resource "google_folder_iam_member" "vm_lifecycle_parent" {
  for_each = toset(local.target_folders)

  folder = each.value
  role   = google_organization_iam_custom_role.vm_lifecycle_parent[0].name
  member = "serviceAccount:${google_service_account.vm_lifecycle.email}"
}

resource "google_organization_iam_member" "vm_lifecycle_parent" {
  for_each = toset(local.target_organizations)

  org_id = each.value
  role   = google_organization_iam_custom_role.vm_lifecycle_parent[0].name
  member = "serviceAccount:${google_service_account.vm_lifecycle.email}"
}

resource "google_organization_iam_custom_role" "fleet_audit_parent" {
  count = local.has_target_parents ? 1 : 0

  org_id      = var.organization_id
  role_id     = "${local.role_prefix}FleetAuditParent"
  title       = "osquery-orchestrator fleetAudit (target folders and organisations)"
  description = "What fleetAudit calls under a target folder or organisation (shared/permissions.ts)."
  permissions = [
    "serviceusage.services.get",
    "resourcemanager.projects.list",
    "resourcemanager.folders.list",
  ]

  lifecycle {
    precondition {
      condition     = var.organization_id != null
      error_message = "target_projects names a folder or organisation: set organization_id (the custom roles granted there live in the organisation)."
    }
  }
}

resource "google_folder_iam_member" "fleet_audit_parent" {
  for_each = toset(local.target_folders)

  folder = each.value
  role   = google_organization_iam_custom_role.fleet_audit_parent[0].name
  member = "serviceAccount:${google_service_account.fleet_audit.email}"
}

resource "google_organization_iam_member" "fleet_audit_parent" {
  for_each = toset(local.target_organizations)

  org_id = each.value
  role   = google_organization_iam_custom_role.fleet_audit_parent[0].name
  member = "serviceAccount:${google_service_account.fleet_audit.email}"
}

resource "google_organization_iam_custom_role" "fleet_audit_shard_parent" {
  count = local.has_target_parents ? 1 : 0

  org_id      = var.organization_id
  role_id     = "${local.role_prefix}FleetAuditShardParent"
  title       = "osquery-orchestrator fleetAuditShard (target folders and organisations)"
  description = "What fleetAuditShard calls under a target folder or organisation (shared/permissions.ts)."
  permissions = [
    "compute.instances.get",
    "compute.instances.list",
    "compute.projects.get",
    "compute.zoneOperations.get",
    "compute.instances.setLabels",
    "compute.instances.setMetadata",
    "osconfig.osPolicyAssignments.get",
    "osconfig.osPolicyAssignments.create",
    "osconfig.osPolicyAssignments.update",
    "osconfig.osPolicyAssignmentReports.list",
    "osconfig.inventories.list",
  ]

  lifecycle {
    precondition {
      condition     = var.organization_id != null
      error_message = "target_projects names a folder or organisation: set organization_id (the custom roles granted there live in the organisation)."
    }
  }
}

resource "google_folder_iam_member" "fleet_audit_shard_parent" {
  for_each = toset(local.target_folders)

  folder = each.value
  role   = google_organization_iam_custom_role.fleet_audit_shard_parent[0].name
  member = "serviceAccount:${google_service_account.fleet_audit_shard.email}"
}

resource "google_organization_iam_member" "fleet_audit_shard_parent" {
  for_each = toset(local.target_organizations)

  org_id = each.value
  role   = google_organization_iam_custom_role.fleet_audit_shard_parent[0].name
  member = "serviceAccount:${google_service_account.fleet_audit_shard.email}"
}

resource "google_organization_iam_custom_role" "publisher_parent" {
  count = local.has_target_parents ? 1 : 0

  org_id      = var.organization_id
  role_id     = "${local.role_prefix}PublisherParent"
  title       = "osquery-orchestrator osq-orch publish (target folders and organisations)"
  description = "What osq-orch publish calls under a target folder or organisation (shared/permissions.ts)."
  permissions = [
    "compute.instances.list",
    "compute.projects.get",
    "osconfig.osPolicyAssignments.get",
    "osconfig.osPolicyAssignments.create",
    "osconfig.osPolicyAssignments.update",
    "serviceusage.services.get",
    "resourcemanager.projects.list",
    "resourcemanager.folders.list",
  ]

  lifecycle {
    precondition {
      condition     = var.organization_id != null
      error_message = "target_projects names a folder or organisation: set organization_id (the custom roles granted there live in the organisation)."
    }
  }
}

resource "google_folder_iam_member" "publisher_parent" {
  for_each = toset(local.target_folders)

  folder = each.value
  role   = google_organization_iam_custom_role.publisher_parent[0].name
  member = "serviceAccount:${google_service_account.publisher.email}"
}

resource "google_organization_iam_member" "publisher_parent" {
  for_each = toset(local.target_organizations)

  org_id = each.value
  role   = google_organization_iam_custom_role.publisher_parent[0].name
  member = "serviceAccount:${google_service_account.publisher.email}"
}

# --- Function builds -----------------------------------------------------------------------------
# The role Google documents for a custom Cloud Functions build service account (logs, Artifact
# Registry image, build source). Set explicitly so builds do not depend on the default compute account.

resource "google_project_iam_member" "build_builder" {
  project = var.project_id
  role    = "roles/cloudbuild.builds.builder"
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_source" {
  bucket = var.function_source_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# --- The VMs -------------------------------------------------------------------------------------
# The OS Config agent downloads the configuration files (pinned by generation) as the VM's service
# account; the shipper publishes to the log topic as the same account.

resource "google_storage_bucket_iam_member" "vm_config_reader" {
  for_each = toset(var.vm_service_accounts)

  bucket = google_storage_bucket.config.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${each.value}"
}

resource "google_pubsub_topic_iam_member" "vm_log_publisher" {
  for_each = toset(var.vm_service_accounts)

  project = local.log_topic_project
  topic   = local.log_topic_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${each.value}"
}

# The shipper's Pub/Sub plugin looks the topic up before publishing (pubsub.topics.get, README).
resource "google_pubsub_topic_iam_member" "vm_log_viewer" {
  for_each = toset(var.vm_service_accounts)

  project = local.log_topic_project
  topic   = local.log_topic_id
  role    = "roles/pubsub.viewer"
  member  = "serviceAccount:${each.value}"
}
