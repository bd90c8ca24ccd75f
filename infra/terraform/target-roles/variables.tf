variable "member" {
  description = "Who holds the roles: serviceAccount:EMAIL."
  type        = string
}

variable "caller" {
  description = "What calls with these permissions, as the roles' descriptions say (an entry point, osq-orch publish)."
  type        = string
}

variable "title" {
  description = "The project role's title after \"osquery-orchestrator \"."
  type        = string
}

variable "role_id" {
  description = "The custom role id in each target project; the organisation's is this plus Parent."
  type        = string
}

variable "permissions" {
  description = "What it calls in every target project (the manifest's target permissions)."
  type        = list(string)
}

variable "parent_permissions" {
  description = "Besides those, under a target folder or organisation (listing what is below it)."
  type        = list(string)
}

variable "target_project_ids" {
  description = "The projects target_projects lists."
  type        = list(string)
}

variable "target_folders" {
  description = "The folders target_projects lists (folders/N)."
  type        = list(string)
}

variable "target_organizations" {
  description = "The organisations target_projects lists (their numeric ids)."
  type        = list(string)
}

variable "organization_id" {
  description = "Where the organisation-level roles are defined; needed when there are target folders or organisations."
  type        = string
  default     = null
}
