# Firestore in native mode: hosts/{instanceId} (+ transitions), audits/{runId}, rollouts/{version},
# config/current (docs/contracts.md).
resource "google_firestore_database" "main" {
  project     = var.project_id
  name        = var.firestore_database
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  # Host history is the product: never delete the database with the stack.
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.orchestrator]
}

# shared/adapters/hosts.ts findLiveHostIds: hosts where project == P and zone == Z and name == N.
# (hosts where project == P alone and transitions ordered by `at` use automatic single-field indexes.)
resource "google_firestore_index" "hosts_project_zone_name" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "hosts"

  fields {
    field_path = "project"
    order      = "ASCENDING"
  }
  fields {
    field_path = "zone"
    order      = "ASCENDING"
  }
  fields {
    field_path = "name"
    order      = "ASCENDING"
  }
}

# No TTL policy: the code keeps no transient documents (nothing writes an expiry field such as
# expireAt). Host transitions, audit runs and rollouts are history and are kept. Add a
# google_firestore_field with ttl_config here when a collection gains an expiry field.

# The status page (shared/adapters/status.ts). Open alerts: alerts where resolved == null, newest first.
resource "google_firestore_index" "alerts_open" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "alerts"

  fields {
    field_path = "resolved"
    order      = "ASCENDING"
  }
  fields {
    field_path = "since"
    order      = "DESCENDING"
  }
}

# The evidence report of one project, paged by document id: its in-scope hosts, then its exempt ones.
resource "google_firestore_index" "hosts_project_in_scope" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "hosts"

  fields {
    field_path = "project"
    order      = "ASCENDING"
  }
  fields {
    field_path = "inScope"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "hosts_project_state" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "hosts"

  fields {
    field_path = "project"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
}

# The progressive rollout's gates (shared/adapters/rollout-evidence.ts): hosts in trouble on the target
# version (by state, by osqueryd CPU and memory).
resource "google_firestore_index" "hosts_version_state" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "hosts"

  fields {
    field_path = "configVersion"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "hosts_version_osqueryd_cpu" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "hosts"

  fields {
    field_path = "configVersion"
    order      = "ASCENDING"
  }
  fields {
    field_path = "osqueryd.cpuPercent"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "hosts_version_osqueryd_memory" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "hosts"

  fields {
    field_path = "configVersion"
    order      = "ASCENDING"
  }
  fields {
    field_path = "osqueryd.rssBytes"
    order      = "ASCENDING"
  }
}

# Cloud Monitoring incidents on hosts of the zones a rollout reached: those still open, and those begun since
# a zone first got the target.
resource "google_firestore_index" "alerts_monitoring_zone_open" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "alerts"

  fields {
    field_path = "kind"
    order      = "ASCENDING"
  }
  fields {
    field_path = "source"
    order      = "ASCENDING"
  }
  fields {
    field_path = "host.zone"
    order      = "ASCENDING"
  }
  fields {
    field_path = "resolved"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "alerts_monitoring_zone_since" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "alerts"

  fields {
    field_path = "kind"
    order      = "ASCENDING"
  }
  fields {
    field_path = "source"
    order      = "ASCENDING"
  }
  fields {
    field_path = "host.zone"
    order      = "ASCENDING"
  }
  fields {
    field_path = "since"
    order      = "ASCENDING"
  }
}

# The hosts where osqueryd costs most (shared/adapters/telemetry.ts topHostsByCost): in-scope hosts by the
# osqueryd field's CPU or memory, highest first.
resource "google_firestore_index" "hosts_in_scope_osqueryd_cpu" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "hosts"

  fields {
    field_path = "inScope"
    order      = "ASCENDING"
  }
  fields {
    field_path = "osqueryd.cpuPercent"
    order      = "DESCENDING"
  }
}

resource "google_firestore_index" "hosts_in_scope_osqueryd_rss" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "hosts"

  fields {
    field_path = "inScope"
    order      = "ASCENDING"
  }
  fields {
    field_path = "osqueryd.rssBytes"
    order      = "DESCENDING"
  }
}

# The status snapshots (status/fleet and status/fleet/projects/{project}) are read by id, and the projects'
# queried by `at` alone (the page's audit ages: `at` keeps its index). Their maps and lists need no index:
# each index entry costs a write, and a document may have at most 40,000.
locals {
  status_unindexed_fields = {
    status   = ["run", "projects", "configVersions", "osqueryVersions", "needingAction", "exempt", "syslog", "history"]
    projects = ["counts", "zones", "zoneVersions", "configVersions", "osqueryVersions", "needingAction", "exempt", "syslog"]
    # A host's schedule baseline (a map per query) and queryStats' hourly windows (counters and histogram
    # buckets): read by id, never queried; indexed they would cost an index entry per counter.
    hosts      = ["querySchedule"]
    queryStats = ["windows", "alerts"]
  }
}

resource "google_firestore_field" "status_unindexed" {
  for_each = toset(flatten([for collection, fields in local.status_unindexed_fields : [for f in fields : "${collection}/${f}"]]))

  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = split("/", each.value)[0]
  field      = split("/", each.value)[1]

  # An empty index configuration: no single-field index on the field or its subfields.
  index_config {}
}

# A project's open fleet.silent storm (shared/adapters/storms.ts openStorm).
resource "google_firestore_index" "alerts_storms" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "alerts"

  fields {
    field_path = "kind"
    order      = "ASCENDING"
  }
  fields {
    field_path = "details.project"
    order      = "ASCENDING"
  }
  fields {
    field_path = "resolved"
    order      = "ASCENDING"
  }
}

# The fleet's open fleet.silent storm (shared/adapters/storms.ts openFleetStorm).
resource "google_firestore_index" "alerts_fleet_storm" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "alerts"

  fields {
    field_path = "kind"
    order      = "ASCENDING"
  }
  fields {
    field_path = "details.scope"
    order      = "ASCENDING"
  }
  fields {
    field_path = "resolved"
    order      = "ASCENDING"
  }
}

# The host.silent alerts held for an audit run's close, released by it (releaseRunHeld).
resource "google_firestore_index" "alerts_held_run" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "alerts"

  fields {
    field_path = "held"
    order      = "ASCENDING"
  }
  fields {
    field_path = "heldRun"
    order      = "ASCENDING"
  }
}

# The host.silent alerts a storm held back in a project, released when it clears (releaseHeld).
resource "google_firestore_index" "alerts_held" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "alerts"

  fields {
    field_path = "held"
    order      = "ASCENDING"
  }
  fields {
    field_path = "host.project"
    order      = "ASCENDING"
  }
}
