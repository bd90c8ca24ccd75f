# Published configuration files (those over OS Config's 1024-character inline limit). OS policies pin
# objects by generation, so versions are kept; bundle objects are create-only (never overwritten).
resource "google_storage_bucket" "config" {
  project                     = var.project_id
  name                        = var.config_bucket
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  # A replaced or deleted object's old generation may still be pinned by an assignment: keep
  # noncurrent generations 90 days (and the 5 newest) before deleting them.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 90
      num_newer_versions         = 5
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.orchestrator]
}

# The settings `osq-orch publish` needs, as a shell-sourceable file (cloudbuild.yaml reads it; the
# publisher service account can read the bucket). Topic, bucket and project names only: no secrets.
resource "google_storage_bucket_object" "publish_env" {
  bucket       = google_storage_bucket.config.name
  name         = "deploy/publish.env"
  content_type = "text/plain"
  content      = join("", [for k in sort(keys(local.publish_environment)) : "${k}='${replace(local.publish_environment[k], "'", "'\\''")}'\n"])
}
