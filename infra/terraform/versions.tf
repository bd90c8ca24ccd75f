terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }

  # State lives in a Cloud Storage bucket created before the first apply (infra/terraform/README.md: Deploy).
  # terraform init -backend-config="bucket=STATE_BUCKET" -backend-config="prefix=osquery-orchestrator"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_project" "orchestrator" {
  project_id = var.project_id
}
