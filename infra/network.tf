# A VPC with private subnets only: no internet gateway, no NAT. The functions
# sit in it to reach Postgres, and reach the AWS services they call through VPC
# endpoints: S3 (gateway, free), SQS and Secrets Manager (interface). Anything
# else a function tried to call would time out, which is the point.

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, var.az_count)
}

resource "aws_vpc" "main" {
  cidr_block = var.vpc_cidr
  # Both are needed for the interface endpoints' private DNS names to resolve.
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name_prefix }
}

resource "aws_subnet" "private" {
  count = var.az_count

  vpc_id                  = aws_vpc.main.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false

  tags = { Name = "${var.name_prefix}-private-${local.azs[count.index]}" }
}

# One route table with only the local route (plus the S3 gateway endpoint's
# prefix-list route, which AWS adds).
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id

  tags = { Name = "${var.name_prefix}-private" }
}

resource "aws_route_table_association" "private" {
  count = var.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# The VPC's default security group allows all traffic between its members;
# taking it over with no rules means nothing uses it by accident.
resource "aws_default_security_group" "main" {
  vpc_id = aws_vpc.main.id
}

# --- Security groups ------------------------------------------------------------

resource "aws_security_group" "functions" {
  name        = "${var.name_prefix}-functions"
  description = "xlport Lambda functions: out to Postgres, the VPC endpoints and S3 only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name_prefix}-endpoints"
  description = "xlport interface endpoints (SQS, Secrets Manager): HTTPS from the functions"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "database" {
  name        = "${var.name_prefix}-database"
  description = "xlport Postgres: from the functions only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_egress_rule" "functions_to_database" {
  security_group_id            = aws_security_group.functions.id
  description                  = "Postgres"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_egress_rule" "functions_to_endpoints" {
  security_group_id            = aws_security_group.functions.id
  description                  = "SQS and Secrets Manager interface endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "functions_to_s3" {
  security_group_id = aws_security_group.functions.id
  description       = "S3 through the gateway endpoint (S3's public addresses, routed inside AWS)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_functions" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the functions"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.functions.id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_functions" {
  security_group_id            = aws_security_group.database.id
  description                  = "Postgres from the functions"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.functions.id
}

# --- VPC endpoints ----------------------------------------------------------------

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]
  # Only this stack's bucket is reachable from inside the VPC, whatever a
  # role would otherwise allow: a guard against copying data elsewhere.
  policy = data.aws_iam_policy_document.s3_endpoint.json

  tags = { Name = "${var.name_prefix}-s3" }
}

data "aws_iam_policy_document" "s3_endpoint" {
  statement {
    sid = "OnlyThisStacksBucket"
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
      "s3:ListBucket",
    ]
    resources = [
      aws_s3_bucket.files.arn,
      "${aws_s3_bucket.files.arn}/*",
    ]
  }
}

resource "aws_vpc_endpoint" "sqs" {
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${var.region}.sqs"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]

  tags = { Name = "${var.name_prefix}-sqs" }
}

# Without it the functions could not fetch the database password from the
# private subnets (there is no NAT).
resource "aws_vpc_endpoint" "secretsmanager" {
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${var.region}.secretsmanager"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]

  tags = { Name = "${var.name_prefix}-secretsmanager" }
}
