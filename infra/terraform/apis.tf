# APIs of the orchestrator project. disable_on_destroy = false: other workloads may use them too.
locals {
  orchestrator_apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "osconfig.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
  ]
  # OS Config manages VMs only where its API is on; Compute is what the functions read. Enabled in the
  # listed target projects; under a target folder or organisation, a project without them is skipped.
  target_apis = ["compute.googleapis.com", "osconfig.googleapis.com"]
}

resource "google_project_service" "orchestrator" {
  for_each = toset(local.orchestrator_apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_project_service" "target" {
  for_each = var.enable_target_apis ? toset(flatten([for p in local.target_project_ids : [for s in local.target_apis : "${p}/${s}"]])) : toset([])

  project            = split("/", each.value)[0]
  service            = split("/", each.value)[1]
  disable_on_destroy = false
}
