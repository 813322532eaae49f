terraform {
  # Nothing here needs newer than 1.5. In particular, variable validations
  # only refer to their own variable (cross-variable validation is 1.9+), which
  # is why the SQS visibility timeout is derived from the worker timeout
  # rather than validated against it.
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 is the provider this configuration was validated with
      # (`terraform validate` against a local provider mirror).
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Project = "xlport"
        Stack   = var.name_prefix
      },
      var.tags,
    )
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
  # Local Zones and Wavelength zones have no RDS and few endpoints.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}
