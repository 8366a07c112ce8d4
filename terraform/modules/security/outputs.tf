output "node_security_group_id" {
  description = "ID of the security group every node uses."
  value       = aws_security_group.nodes.id
}
