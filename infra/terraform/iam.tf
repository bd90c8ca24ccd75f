# One service account per function, bound only to what that function calls: the grants of its manifest
# entry (functions/manifest.ts, through functions.json), one block each for all functions.
#
#   target perms  -> a custom role in every listed target project, bound there; and, when target_projects
#                    names folders or organisations, one organisation-level custom role with the target
#                    and parent perms, bound on each of them (every project below inherits it): the
#                    target-roles module, also for the publisher
#   firestore     -> roles/datastore.user (writes) or roles/datastore.viewer (reads) in the orchestrator project
#   publishes     -> roles/pubsub.publisher on each topic it publishes to (never project-wide)
#   subscribes    -> roles/pubsub.subscriber on each subscription it pulls from
#
# Plus: one trigger service account (Eventarc and Pub/Sub deliveries invoke the functions' Cloud Run
# services as it), the publisher service account (`osq-orch publish` in Cloud Build) and the build
# service account Cloud Functions builds the source with.

locals {
  # Every (function, topic) and (function, subscription) grant, keyed "function/SETTING".
  function_publishes = merge([
    for name, f in local.granted_functions :
    { for topic in f.permissions.publishes : "${name}/${topic}" => { function = name, topic = topic } }
  ]...)
  function_pulls = merge([
    for name, f in local.granted_functions :
    { for sub in f.permissions.subscribes : "${name}/${sub}" => { function = name, subscription = sub } }
  ]...)
  firestore_roles = { write = "roles/datastore.user", read = "roles/datastore.viewer" }

  # Who holds custom roles in the targets: role ids osqOrch<Name>, osqOrch<Name>Parent.
  target_role_holders = merge(
    {
      for name, f in local.granted_functions : name => {
        member  = "serviceAccount:${google_service_account.function[name].email}"
        caller  = name
        title   = name
        role_id = "${local.role_prefix}${title(name)}"
        target  = f.permissions.target
        parent  = f.permissions.parent
      } if length(f.permissions.target) > 0
    },
    {
      publisher = {
        member  = "serviceAccount:${google_service_account.publisher.email}"
        caller  = "osq-orch publish"
        title   = "publisher"
        role_id = "${local.role_prefix}Publisher"
        target  = local.manifest.publisher.target
        parent  = local.manifest.publisher.parent
      }
    },
  )
}

# --- Service accounts ----------------------------------------------------------------------------

# Made for every function of the manifest whatever the delivery, so switching log_heartbeat_delivery
# never recreates one; its grants follow the delivery (local.granted_functions).
resource "google_service_account" "function" {
  for_each = local.manifest.functions

  project      = var.project_id
  account_id   = local.function_names[each.key]
  display_name = "osquery-orchestrator ${each.key}"
  description  = each.value.accountDescription
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
  description  = "Runs `osq-orch publish` in Cloud Build (functions/manifest.ts: PUBLISHER_PERMISSIONS)."
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "osquery-orchestrator function builds"
  description  = "Cloud Functions builds the function source as this account."
}

# --- What each function calls ----------------------------------------------------------------------

# In the target projects, and under target folders and organisations: one custom role each, for every
# function whose manifest entry calls something there, and for the publisher.
module "target_roles" {
  source   = "./target-roles"
  for_each = local.target_role_holders

  member               = each.value.member
  caller               = each.value.caller
  title                = each.value.title
  role_id              = each.value.role_id
  permissions          = each.value.target
  parent_permissions   = each.value.parent
  target_project_ids   = local.target_project_ids
  target_folders       = local.target_folders
  target_organizations = local.target_organizations
  organization_id      = var.organization_id
}

# Firestore in the orchestrator project: read and write, or (the status page) read only.
resource "google_project_iam_member" "function_firestore" {
  for_each = { for name, f in local.granted_functions : name => f if f.permissions.firestore != "none" }

  project = var.project_id
  role    = local.firestore_roles[each.value.permissions.firestore]
  member  = "serviceAccount:${google_service_account.function[each.key].email}"
}

# Publisher on each topic the code publishes to (alerts: e.g. a VM blocked at enrollment alerts at once;
# the audit's fan-out; dead letters), never project-wide.
resource "google_pubsub_topic_iam_member" "function_publishes" {
  for_each = local.function_publishes

  project = var.project_id
  topic   = local.topics[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

# Pull, acknowledge and release on its own subscription, nothing else.
resource "google_pubsub_subscription_iam_member" "function_pulls" {
  for_each = local.function_pulls

  project      = var.project_id
  subscription = local.subscriptions[each.value.subscription]
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.function[each.value.function].email}"
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

# Upload (create-only) and read configuration objects; granted on the configuration bucket only.
resource "google_project_iam_custom_role" "publisher_bucket" {
  project     = var.project_id
  role_id     = "${local.role_prefix}PublisherBucket"
  title       = "osquery-orchestrator publisher (configuration bucket)"
  description = "Create and read configuration objects (functions/manifest.ts)."
  permissions = local.manifest.publisher.bucket
}

resource "google_storage_bucket_iam_member" "publisher_config_bucket" {
  bucket = google_storage_bucket.config.name
  role   = google_project_iam_custom_role.publisher_bucket.name
  member = "serviceAccount:${google_service_account.publisher.email}"
}

resource "google_project_iam_member" "publisher_firestore" {
  project = var.project_id
  role    = local.firestore_roles[local.manifest.publisher.firestore]
  member  = "serviceAccount:${google_service_account.publisher.email}"
}

# A Cloud Build run as a user-chosen service account must be able to write its own build logs.
resource "google_project_iam_member" "publisher_build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.publisher.email}"
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

# The shipper's Pub/Sub plugin looks the topic up before publishing (pubsub.topics.get, docs/osquery-bundle.md).
resource "google_pubsub_topic_iam_member" "vm_log_viewer" {
  for_each = toset(var.vm_service_accounts)

  project = local.log_topic_project
  topic   = local.log_topic_id
  role    = "roles/pubsub.viewer"
  member  = "serviceAccount:${each.value}"
}
