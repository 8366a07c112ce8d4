locals {
  opens_world = contains(var.allowed_cidrs, "0.0.0.0/0")
}

resource "aws_security_group" "nodes" {
  #checkov:skip=CKV_AWS_24:Port 22 is open only to var.allowed_cidrs; the precondition below refuses 0.0.0.0/0 unless allow_world_admin is set deliberately.
  #checkov:skip=CKV2_AWS_5:Attached to every node by the instances module (vpc_security_group_ids); checkov cannot follow module outputs.
  name        = "${var.name}-nodes"
  description = "K3s nodes: SSH and the Kubernetes API from allowed CIDRs, everything between nodes"
  vpc_id      = var.vpc_id

  ingress {
    description = "SSH from allowed CIDRs"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  ingress {
    description = "Kubernetes API from allowed CIDRs"
    from_port   = 6443
    to_port     = 6443
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  ingress {
    description = "All traffic between cluster nodes (flannel VXLAN, kubelet, etcd)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    self        = true
  }

  #checkov:skip=CKV_AWS_382:Nodes pull container images and packages from the internet; egress cannot be narrowed to known addresses.
  egress {
    description = "Outbound to the internet (image and package downloads)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = { Name = "${var.name}-nodes" }

  lifecycle {
    precondition {
      condition     = var.allow_world_admin || !local.opens_world
      error_message = "allowed_cidrs contains 0.0.0.0/0, which opens SSH and 6443 to the internet; list your own address (x.x.x.x/32) or set allow_world_admin = true deliberately."
    }
  }
}
