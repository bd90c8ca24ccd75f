# fleetStatus: the fleet status page (functions/fleet-status.ts), an HTTP function. Private: Cloud Run
# checks every caller's identity before the function runs, and only the members of
# var.status_page_viewers hold roles/run.invoker on its service. With var.status_page_iap the page sits
# behind Identity-Aware Proxy instead (an external HTTPS load balancer on var.status_page_domain): IAP
# checks the viewers, only IAP's service agent may invoke, and the function takes no traffic that did
# not come through the load balancer. Nothing here ever grants a public member: the viewers variable
# accepts user, group, service account and domain members only.

# The function itself, its service account (read-only Firestore) and its settings are the manifest's
# fleetStatus entry (functions.tf, iam.tf); its ingress lets browsers in (local.function_ingress).

# --- Who may open it -----------------------------------------------------------------------------

# Without IAP: each viewer invokes the service with their own identity (gcloud run services proxy, or
# an identity token). A request without the invoker role is refused (403) before it reaches the code.
resource "google_cloud_run_v2_service_iam_member" "fleet_status_viewers" {
  for_each = var.status_page_iap ? toset([]) : toset(var.status_page_viewers)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.function["fleetStatus"].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}

# With IAP: IAP checks the viewers (below) and invokes the service as its service agent.
resource "google_cloud_run_v2_service_iam_member" "fleet_status_iap" {
  count = var.status_page_iap ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.function["fleetStatus"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:service-${data.google_project.orchestrator.number}@gcp-sa-iap.iam.gserviceaccount.com"

  depends_on = [google_project_service.iap]
}

resource "google_iap_web_backend_service_iam_member" "fleet_status_viewers" {
  for_each = var.status_page_iap ? toset(var.status_page_viewers) : toset([])

  project             = var.project_id
  web_backend_service = google_compute_backend_service.fleet_status[0].name
  role                = "roles/iap.httpsResourceAccessor"
  member              = each.value
}

# --- IAP: an external HTTPS load balancer in front of the function (var.status_page_iap) ---------

resource "google_project_service" "iap" {
  count = var.status_page_iap ? 1 : 0

  project            = var.project_id
  service            = "iap.googleapis.com"
  disable_on_destroy = false
}

resource "google_compute_region_network_endpoint_group" "fleet_status" {
  count = var.status_page_iap ? 1 : 0

  project               = var.project_id
  region                = var.region
  name                  = local.function_names.fleetStatus
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    # A 2nd gen function is served by the Cloud Run service of the same name.
    service = google_cloudfunctions2_function.function["fleetStatus"].service_config[0].service
  }
}

resource "google_compute_backend_service" "fleet_status" {
  count = var.status_page_iap ? 1 : 0

  project               = var.project_id
  name                  = local.function_names.fleetStatus
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"

  backend {
    group = google_compute_region_network_endpoint_group.fleet_status[0].id
  }

  # Google-managed OAuth client: no client id or secret to keep.
  iap {
    enabled = true
  }

  log_config {
    enable = true
  }

  depends_on = [google_project_service.iap]
}

resource "google_compute_url_map" "fleet_status" {
  count = var.status_page_iap ? 1 : 0

  project         = var.project_id
  name            = local.function_names.fleetStatus
  default_service = google_compute_backend_service.fleet_status[0].id
}

resource "google_compute_managed_ssl_certificate" "fleet_status" {
  count = var.status_page_iap ? 1 : 0

  project = var.project_id
  name    = local.function_names.fleetStatus
  managed {
    domains = [var.status_page_domain]
  }

  lifecycle {
    precondition {
      condition     = var.status_page_domain != null
      error_message = "status_page_iap needs status_page_domain: the load balancer's certificate is issued for it."
    }
  }
}

resource "google_compute_target_https_proxy" "fleet_status" {
  count = var.status_page_iap ? 1 : 0

  project          = var.project_id
  name             = local.function_names.fleetStatus
  url_map          = google_compute_url_map.fleet_status[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.fleet_status[0].id]
}

resource "google_compute_global_address" "fleet_status" {
  count = var.status_page_iap ? 1 : 0

  project = var.project_id
  name    = local.function_names.fleetStatus
}

resource "google_compute_global_forwarding_rule" "fleet_status" {
  count = var.status_page_iap ? 1 : 0

  project               = var.project_id
  name                  = local.function_names.fleetStatus
  target                = google_compute_target_https_proxy.fleet_status[0].id
  ip_address            = google_compute_global_address.fleet_status[0].id
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  labels                = var.labels
}

output "status_page_url" {
  description = "The fleet status page (without IAP: open it through `gcloud run services proxy`, README)."
  value       = var.status_page_iap ? "https://${var.status_page_domain}/" : google_cloudfunctions2_function.function["fleetStatus"].service_config[0].uri
}

output "status_page_ip" {
  description = "With IAP: the load balancer's address; point status_page_domain's A record at it."
  value       = var.status_page_iap ? google_compute_global_address.fleet_status[0].address : null
}
