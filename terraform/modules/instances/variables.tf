variable "name" {
  description = "Name prefix of every resource (the plan name)."
  type        = string
}

variable "subnet_id" {
  description = "Subnet the nodes run in."
  type        = string
}

variable "security_group_ids" {
  description = "Security groups attached to every node."
  type        = list(string)
}

variable "key_name" {
  description = "EC2 key pair installed for the admin user."
  type        = string
}

variable "ami_id" {
  description = "AMI of every node."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of every node."
  type        = string
}

variable "worker_count" {
  description = "Number of worker nodes besides the one control plane."
  type        = number
  validation {
    condition     = var.worker_count >= 0 && floor(var.worker_count) == var.worker_count
    error_message = "worker_count must be a whole number, 0 or more."
  }
}

variable "root_volume_gb" {
  description = "Size of each node's encrypted root volume in GiB."
  type        = number
}

variable "sandbox_container_node" {
  description = "Sandbox only: leave out of the user data what a container node cannot do (package installs from the network, modprobe, sysctl)."
  type        = bool
  default     = false
}
