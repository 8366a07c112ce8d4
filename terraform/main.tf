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
  ami_id             = var.ami_id
  instance_type      = var.instance_type
  worker_count       = var.worker_count
  root_volume_gb     = var.root_volume_gb
}
