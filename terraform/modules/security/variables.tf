variable "name" {
  description = "Name prefix of every resource (the plan name)."
  type        = string
}

variable "vpc_id" {
  description = "VPC the security group belongs to."
  type        = string
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach SSH (22) and the Kubernetes API (6443)."
  type        = list(string)
}

variable "allow_world_admin" {
  description = "Whether 0.0.0.0/0 may appear in allowed_cidrs."
  type        = bool
  default     = false
}
