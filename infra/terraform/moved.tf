# Where each resource of a deployment made before the function manifest now lives: every per-function
# resource moved into one for_each block keyed by entry point (and the target roles into the target-roles
# module, keyed the same way), so `terraform plan` on such a deployment creates and destroys nothing.
# test/unit/terraform-moves.test.ts checks every old address (of 9f964a8) lands on exactly one new one.
# Keep these blocks as long as a deployment older than the manifest may still be applied.

# Deployments made before log_heartbeat_delivery existed had no count on logHeartbeat's resources: the
# first step of their chain.
moved {
  from = google_cloudfunctions2_function.log_heartbeat
  to   = google_cloudfunctions2_function.log_heartbeat[0]
}
moved {
  from = google_pubsub_subscription.log_heartbeat_push
  to   = google_pubsub_subscription.log_heartbeat_push[0]
}
moved {
  from = google_cloud_run_v2_service_iam_member.log_heartbeat_invoker
  to   = google_cloud_run_v2_service_iam_member.log_heartbeat_invoker[0]
}

# --- Functions, their triggers and invokers (functions.tf, status.tf) ------------------------------

moved {
  from = google_cloudfunctions2_function.vm_lifecycle
  to   = google_cloudfunctions2_function.function["vmLifecycle"]
}
moved {
  from = google_cloudfunctions2_function.fleet_audit
  to   = google_cloudfunctions2_function.function["fleetAudit"]
}
moved {
  from = google_cloudfunctions2_function.fleet_audit_shard
  to   = google_cloudfunctions2_function.function["fleetAuditShard"]
}
moved {
  from = google_cloudfunctions2_function.log_heartbeat[0]
  to   = google_cloudfunctions2_function.function["logHeartbeat"]
}
moved {
  from = google_cloudfunctions2_function.log_heartbeat_drain[0]
  to   = google_cloudfunctions2_function.function["logHeartbeatDrain"]
}
moved {
  from = google_cloudfunctions2_function.monitoring_alert
  to   = google_cloudfunctions2_function.function["monitoringAlert"]
}
moved {
  from = google_cloudfunctions2_function.fleet_status
  to   = google_cloudfunctions2_function.function["fleetStatus"]
}
moved {
  from = google_pubsub_subscription.log_heartbeat_push[0]
  to   = google_pubsub_subscription.filtered_push["logHeartbeat"]
}
moved {
  from = google_cloud_run_v2_service_iam_member.vm_lifecycle_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["vmLifecycle"]
}
moved {
  from = google_cloud_run_v2_service_iam_member.fleet_audit_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["fleetAudit"]
}
moved {
  from = google_cloud_run_v2_service_iam_member.fleet_audit_shard_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["fleetAuditShard"]
}
moved {
  from = google_cloud_run_v2_service_iam_member.log_heartbeat_invoker[0]
  to   = google_cloud_run_v2_service_iam_member.invoker["logHeartbeat"]
}
moved {
  from = google_cloud_run_v2_service_iam_member.log_heartbeat_drain_invoker[0]
  to   = google_cloud_run_v2_service_iam_member.invoker["logHeartbeatDrain"]
}
moved {
  from = google_cloud_run_v2_service_iam_member.monitoring_alert_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["monitoringAlert"]
}

# --- Service accounts and their grants (iam.tf, status.tf) ------------------------------------------

moved {
  from = google_service_account.vm_lifecycle
  to   = google_service_account.function["vmLifecycle"]
}
moved {
  from = google_service_account.fleet_audit
  to   = google_service_account.function["fleetAudit"]
}
moved {
  from = google_service_account.fleet_audit_shard
  to   = google_service_account.function["fleetAuditShard"]
}
moved {
  from = google_service_account.log_heartbeat
  to   = google_service_account.function["logHeartbeat"]
}
moved {
  from = google_service_account.log_heartbeat_drain
  to   = google_service_account.function["logHeartbeatDrain"]
}
moved {
  from = google_service_account.monitoring_alert
  to   = google_service_account.function["monitoringAlert"]
}
moved {
  from = google_service_account.fleet_status
  to   = google_service_account.function["fleetStatus"]
}
moved {
  from = google_project_iam_member.vm_lifecycle_firestore
  to   = google_project_iam_member.function_firestore["vmLifecycle"]
}
moved {
  from = google_project_iam_member.fleet_audit_firestore
  to   = google_project_iam_member.function_firestore["fleetAudit"]
}
moved {
  from = google_project_iam_member.fleet_audit_shard_firestore
  to   = google_project_iam_member.function_firestore["fleetAuditShard"]
}
moved {
  from = google_project_iam_member.log_heartbeat_firestore
  to   = google_project_iam_member.function_firestore["logHeartbeat"]
}
moved {
  from = google_project_iam_member.log_heartbeat_drain_firestore[0]
  to   = google_project_iam_member.function_firestore["logHeartbeatDrain"]
}
moved {
  from = google_project_iam_member.monitoring_alert_firestore
  to   = google_project_iam_member.function_firestore["monitoringAlert"]
}
moved {
  from = google_project_iam_member.fleet_status_firestore
  to   = google_project_iam_member.function_firestore["fleetStatus"]
}
moved {
  from = google_pubsub_topic_iam_member.vm_lifecycle_alerts
  to   = google_pubsub_topic_iam_member.function_publishes["vmLifecycle/ALERT_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.fleet_audit_audit_shards
  to   = google_pubsub_topic_iam_member.function_publishes["fleetAudit/AUDIT_SHARD_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.fleet_audit_dead_letter
  to   = google_pubsub_topic_iam_member.function_publishes["fleetAudit/DEAD_LETTER_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.fleet_audit_shard_alerts
  to   = google_pubsub_topic_iam_member.function_publishes["fleetAuditShard/ALERT_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.fleet_audit_shard_dead_letter
  to   = google_pubsub_topic_iam_member.function_publishes["fleetAuditShard/DEAD_LETTER_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.log_heartbeat_alerts
  to   = google_pubsub_topic_iam_member.function_publishes["logHeartbeat/ALERT_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.log_heartbeat_dead_letter
  to   = google_pubsub_topic_iam_member.function_publishes["logHeartbeat/DEAD_LETTER_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.log_heartbeat_drain_alerts[0]
  to   = google_pubsub_topic_iam_member.function_publishes["logHeartbeatDrain/ALERT_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.log_heartbeat_drain_dead_letter[0]
  to   = google_pubsub_topic_iam_member.function_publishes["logHeartbeatDrain/DEAD_LETTER_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.monitoring_alert_alerts
  to   = google_pubsub_topic_iam_member.function_publishes["monitoringAlert/ALERT_TOPIC"]
}
moved {
  from = google_pubsub_topic_iam_member.monitoring_alert_dead_letter
  to   = google_pubsub_topic_iam_member.function_publishes["monitoringAlert/DEAD_LETTER_TOPIC"]
}
moved {
  from = google_pubsub_subscription_iam_member.log_heartbeat_drain_subscriber[0]
  to   = google_pubsub_subscription_iam_member.function_pulls["logHeartbeatDrain/LOG_HEARTBEAT_SUBSCRIPTION"]
}

# --- Custom roles in the targets, whole resources with their instances (target-roles module) ------

moved {
  from = google_project_iam_custom_role.vm_lifecycle
  to   = module.target_roles["vmLifecycle"].google_project_iam_custom_role.target
}
moved {
  from = google_project_iam_member.vm_lifecycle_target
  to   = module.target_roles["vmLifecycle"].google_project_iam_member.target
}
moved {
  from = google_organization_iam_custom_role.vm_lifecycle_parent
  to   = module.target_roles["vmLifecycle"].google_organization_iam_custom_role.parent
}
moved {
  from = google_folder_iam_member.vm_lifecycle_parent
  to   = module.target_roles["vmLifecycle"].google_folder_iam_member.parent
}
moved {
  from = google_organization_iam_member.vm_lifecycle_parent
  to   = module.target_roles["vmLifecycle"].google_organization_iam_member.parent
}
moved {
  from = google_project_iam_custom_role.fleet_audit
  to   = module.target_roles["fleetAudit"].google_project_iam_custom_role.target
}
moved {
  from = google_project_iam_member.fleet_audit_target
  to   = module.target_roles["fleetAudit"].google_project_iam_member.target
}
moved {
  from = google_organization_iam_custom_role.fleet_audit_parent
  to   = module.target_roles["fleetAudit"].google_organization_iam_custom_role.parent
}
moved {
  from = google_folder_iam_member.fleet_audit_parent
  to   = module.target_roles["fleetAudit"].google_folder_iam_member.parent
}
moved {
  from = google_organization_iam_member.fleet_audit_parent
  to   = module.target_roles["fleetAudit"].google_organization_iam_member.parent
}
moved {
  from = google_project_iam_custom_role.fleet_audit_shard
  to   = module.target_roles["fleetAuditShard"].google_project_iam_custom_role.target
}
moved {
  from = google_project_iam_member.fleet_audit_shard_target
  to   = module.target_roles["fleetAuditShard"].google_project_iam_member.target
}
moved {
  from = google_organization_iam_custom_role.fleet_audit_shard_parent
  to   = module.target_roles["fleetAuditShard"].google_organization_iam_custom_role.parent
}
moved {
  from = google_folder_iam_member.fleet_audit_shard_parent
  to   = module.target_roles["fleetAuditShard"].google_folder_iam_member.parent
}
moved {
  from = google_organization_iam_member.fleet_audit_shard_parent
  to   = module.target_roles["fleetAuditShard"].google_organization_iam_member.parent
}
moved {
  from = google_project_iam_custom_role.publisher
  to   = module.target_roles["publisher"].google_project_iam_custom_role.target
}
moved {
  from = google_project_iam_member.publisher_target
  to   = module.target_roles["publisher"].google_project_iam_member.target
}
moved {
  from = google_organization_iam_custom_role.publisher_parent
  to   = module.target_roles["publisher"].google_organization_iam_custom_role.parent
}
moved {
  from = google_folder_iam_member.publisher_parent
  to   = module.target_roles["publisher"].google_folder_iam_member.parent
}
moved {
  from = google_organization_iam_member.publisher_parent
  to   = module.target_roles["publisher"].google_organization_iam_member.parent
}
