variable "name" {
  description = "Name prefix of every resource (the plan name)."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; the public subnet takes its first /24."
  type        = string
  validation {
    condition     = can(cidrsubnet(var.vpc_cidr, 8, 0))
    error_message = "vpc_cidr must be a CIDR block of /16 to /24 size, such as 10.42.0.0/16."
  }
}

variable "availability_zone" {
  description = "Availability zone of the public subnet (pinned, so the subnet never moves)."
  type        = string
}
