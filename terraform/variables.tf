variable "plan_name" {
  description = "Name of the provision plan; every resource is tagged provision:plan=<plan_name> so leaked resources can be found."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,62}$", var.plan_name))
    error_message = "plan_name must be lowercase letters, digits and '-', at most 63 characters."
  }
}

variable "region" {
  description = "AWS region to create the cluster in."
  type        = string
  default     = "us-east-1"
}

variable "vpc_cidr" {
  description = "CIDR block of the cluster's VPC."
  type        = string
  default     = "10.42.0.0/16"
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a CIDR block such as 10.42.0.0/16."
  }
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach SSH (22) and the Kubernetes API (6443). Never 0.0.0.0/0 unless allow_world_admin is set."
  type        = list(string)
  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "allowed_cidrs must list at least one CIDR block, such as 203.0.113.7/32."
  }
}

variable "allow_world_admin" {
  description = "Allow 0.0.0.0/0 in allowed_cidrs (SSH and 6443 open to the internet). Off by default."
  type        = bool
  default     = false
}

variable "worker_count" {
  description = "Number of K3s worker nodes."
  type        = number
  default     = 2
  validation {
    condition     = var.worker_count >= 0 && var.worker_count <= 50 && floor(var.worker_count) == var.worker_count
    error_message = "worker_count must be a whole number from 0 to 50."
  }
}

variable "instance_type" {
  description = "EC2 instance type of every node."
  type        = string
  default     = "t3.large"
}

variable "ami_id" {
  description = "AMI of every node (Ubuntu 24.04 or Debian 12 with cloud-init). Empty: the newest Ubuntu 24.04 amd64 image Canonical (owner 099720109477) publishes in the region, looked up by name."
  type        = string
  default     = ""
  validation {
    condition     = var.ami_id == "" || can(regex("^ami-[0-9a-f]+$", var.ami_id))
    error_message = "ami_id must be an AMI id (ami-...) or empty to use Canonical's Ubuntu 24.04."
  }
}

variable "root_volume_gb" {
  description = "Size of each node's encrypted root volume in GiB."
  type        = number
  default     = 40
  validation {
    condition     = var.root_volume_gb >= 8
    error_message = "root_volume_gb must be at least 8."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key (ed25519) installed for the admin user on every node."
  type        = string
  validation {
    condition     = can(regex("^ssh-ed25519 ", var.ssh_public_key))
    error_message = "ssh_public_key must be an ed25519 public key in OpenSSH format (ssh-ed25519 AAAA...)."
  }
}

variable "sandbox_container_node" {
  description = "Sandbox only: the nodes are containers sharing one machine's kernel and network (systemd-nspawn), so the user data leaves out what a container cannot do (package installs from the network, modprobe, sysctl). Always false on AWS."
  type        = bool
  default     = false
}
