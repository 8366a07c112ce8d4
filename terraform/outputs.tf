output "nodes" {
  description = "Every node by name: instance id, role, public and private IP."
  value       = module.instances.nodes
}

output "node_names" {
  description = "Node names, control plane first."
  value       = module.instances.node_names
}

output "vpc_id" {
  description = "The cluster VPC."
  value       = module.network.vpc_id
}

output "ami" {
  description = "The AMI every node runs: its id, and where it came from (the plan, or Canonical's Ubuntu 24.04 and the image's name)."
  value = {
    id     = local.ami_id
    source = var.ami_id != "" ? "plan" : "canonical:${data.aws_ami.ubuntu[0].name}"
  }
}
