output "nodes" {
  description = "Every node by name: instance id, role, public and private IP."
  value = {
    for name, instance in aws_instance.node : name => {
      id         = instance.id
      role       = local.nodes[name]
      public_ip  = instance.public_ip
      private_ip = instance.private_ip
    }
  }
}

output "node_names" {
  description = "Node names, control plane first."
  value       = concat(["control-plane"], [for i in range(1, var.worker_count + 1) : "worker-${i}"])
}
