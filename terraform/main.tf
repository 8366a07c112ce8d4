# Without an AMI from the plan: Canonical's newest Ubuntu 24.04 LTS (noble) amd64 server image in
# the region, found the way Canonical documents (its owner id and the image name pattern). The id
# and name used are outputs (`ami`), so the run records which one the nodes booted.
data "aws_ami" "ubuntu" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["099720109477"]
  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  ami_id = var.ami_id != "" ? var.ami_id : data.aws_ami.ubuntu[0].id
}

module "network" {
  source            = "./modules/network"
  name              = var.plan_name
  vpc_cidr          = var.vpc_cidr
  availability_zone = "${var.region}a"
}

module "security" {
  source            = "./modules/security"
  name              = var.plan_name
  vpc_id            = module.network.vpc_id
  allowed_cidrs     = var.allowed_cidrs
  allow_world_admin = var.allow_world_admin
}

resource "aws_key_pair" "admin" {
  key_name   = "${var.plan_name}-admin"
  public_key = var.ssh_public_key
}

module "instances" {
  source             = "./modules/instances"
  name               = var.plan_name
  subnet_id          = module.network.subnet_id
  security_group_ids = [module.security.node_security_group_id]
  key_name           = aws_key_pair.admin.key_name
  ami_id             = local.ami_id
  instance_type      = var.instance_type
  worker_count       = var.worker_count
  root_volume_gb     = var.root_volume_gb

  sandbox_container_node = var.sandbox_container_node
}
