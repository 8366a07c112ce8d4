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
