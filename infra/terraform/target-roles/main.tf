# What one identity (a function's service account, or the publisher's) calls in the target projects: a
# custom role with exactly those permissions in every listed target project, bound there; and, when
# target_projects names folders or organisations, one organisation-level custom role with the same
# permissions plus what resolving a target takes (parent_permissions), bound on each of them (every
# project below inherits it, present and future). Custom roles cannot be defined on a folder: they live
# in organization_id.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

locals {
  has_target_parents = length(var.target_folders) + length(var.target_organizations) > 0
}

resource "google_project_iam_custom_role" "target" {
  for_each = toset(var.target_project_ids)

  project     = each.value
  role_id     = var.role_id
  title       = "osquery-orchestrator ${var.title}"
  description = "What ${var.caller} calls in a target project (functions/manifest.ts)."
  permissions = var.permissions
}

resource "google_project_iam_member" "target" {
  for_each = toset(var.target_project_ids)

  project = each.value
  role    = google_project_iam_custom_role.target[each.value].name
  member  = var.member
}

resource "google_organization_iam_custom_role" "parent" {
  count = local.has_target_parents ? 1 : 0

  org_id      = var.organization_id
  role_id     = "${var.role_id}Parent"
  title       = "osquery-orchestrator ${var.caller} (target folders and organisations)"
  description = "What ${var.caller} calls under a target folder or organisation (functions/manifest.ts)."
  permissions = concat(var.permissions, var.parent_permissions)

  lifecycle {
    precondition {
      condition     = var.organization_id != null
      error_message = "target_projects names a folder or organisation: set organization_id (the custom roles granted there live in the organisation)."
    }
  }
}

resource "google_folder_iam_member" "parent" {
  for_each = toset(var.target_folders)

  folder = each.value
  role   = google_organization_iam_custom_role.parent[0].name
  member = var.member
}

resource "google_organization_iam_member" "parent" {
  for_each = toset(var.target_organizations)

  org_id = each.value
  role   = google_organization_iam_custom_role.parent[0].name
  member = var.member
}
