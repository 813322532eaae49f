# Migrations on deploy. Postgres is only reachable from inside the VPC, so
# they run where the other functions run: `xlport-admin`, deployed as the
# function <name_prefix>-migrate, is invoked by Terraform during apply with
# {"command":"migrate"}. The migrations are compiled into the binary, so the
# invocation is repeated whenever the zip changes. If the function returns an
# error the apply fails, before anyone relies on the new schema.
#
# The same function creates API keys ({"command":"create-key","name":"..."};
# the key comes back in the response, see README.md). It needs the Rust side
# to run xlport-admin as a Lambda handler when AWS_LAMBDA_RUNTIME_API is set;
# until then, set run_migrations_on_apply = false.

resource "aws_cloudwatch_log_group" "migrate" {
  name              = "/aws/lambda/${var.name_prefix}-migrate"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "migrate" {
  function_name = "${var.name_prefix}-migrate"
  description   = "xlport-admin: {\"command\":\"migrate\"} applies migrations; {\"command\":\"create-key\",\"name\":...} makes an API key"
  role          = aws_iam_role.migrate.arn

  architectures    = [var.architecture]
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  filename         = "${var.build_dir}/xlport-admin/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.build_dir}/xlport-admin/bootstrap.zip")

  memory_size = var.migrate_memory_mb
  timeout     = var.migrate_timeout_seconds

  environment {
    variables = local.function_environment
  }

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.functions.id]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.migrate.name
  }

  depends_on = [
    aws_iam_role_policy_attachment.migrate_vpc,
    aws_iam_role_policy.migrate,
  ]
}

resource "aws_lambda_invocation" "migrate" {
  count = var.run_migrations_on_apply ? 1 : 0

  function_name = aws_lambda_function.migrate.function_name
  input         = jsonencode({ command = "migrate" })

  # CREATE_ONLY (the default) plus triggers: invoke on first apply and again
  # whenever the code, and so the set of migrations, changes.
  triggers = {
    code = aws_lambda_function.migrate.source_code_hash
  }

  # Everything the function needs on the way to Postgres must exist first;
  # none of it is referenced above, so Terraform would not know otherwise.
  depends_on = [
    aws_vpc_security_group_egress_rule.functions_to_database,
    aws_vpc_security_group_egress_rule.functions_to_endpoints,
    aws_vpc_security_group_ingress_rule.database_from_functions,
    aws_vpc_security_group_ingress_rule.endpoints_from_functions,
    aws_vpc_endpoint.secretsmanager,
    aws_route_table_association.private,
  ]
}
