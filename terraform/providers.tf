provider "aws" {
  region = var.region
  default_tags {
    tags = {
      "provision:plan" = var.plan_name
      "managed-by"     = "provision"
    }
  }
}
