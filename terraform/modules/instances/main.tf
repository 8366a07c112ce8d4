locals {
  # Keyed by node name so that adding a worker adds exactly one instance and touches no other.
  nodes = merge(
    { "control-plane" = "server" },
    { for i in range(1, var.worker_count + 1) : "worker-${i}" => "agent" },
  )
}

resource "aws_instance" "node" {
  #checkov:skip=CKV2_AWS_41:Nodes call no AWS API; an instance profile would only widen what a compromised node can do.
  #checkov:skip=CKV_AWS_126:Detailed CloudWatch monitoring is paid and redundant with the cluster's Prometheus node metrics.
  #checkov:skip=CKV_AWS_88:Public IPs are required to reach SSH/6443 from allowed_cidrs; ingress is restricted by the security group.
  for_each = local.nodes

  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = var.security_group_ids
  key_name               = var.key_name
  ebs_optimized          = true

  user_data = templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
    node_name      = each.key
    role           = each.value
    container_node = var.sandbox_container_node
  })

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    encrypted   = true
    volume_size = var.root_volume_gb
    volume_type = "gp3"
  }

  tags = {
    Name = "${var.name}-${each.key}"
    Node = each.key
    Role = each.value
  }
}
