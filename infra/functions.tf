# The three application functions, built by `scripts/build-release`
# (cargo lambda: target/lambda/<bin>/bootstrap.zip), and the SQS mappings that
# feed the two workers. The migrate function is in migrations.tf.
#
# All of them read the same environment (one typed Config in the adapters
# crate); see "Function environment" in README.md for the contract.

locals {
  function_environment = {
    XLPORT_PROFILE = "aws"
    RUST_LOG       = var.rust_log

    XLPORT_BUCKET            = aws_s3_bucket.files.id
    XLPORT_IMPORTS_QUEUE_URL = aws_sqs_queue.imports.url
    XLPORT_EXPORTS_QUEUE_URL = aws_sqs_queue.exports.url

    # The password is not here: the functions fetch it from this secret
    # (JSON {"username", "password"}, kept and rotated by RDS).
    XLPORT_DATABASE_SECRET_ARN = aws_db_instance.main.master_user_secret[0].secret_arn
    XLPORT_DATABASE_HOST       = aws_db_instance.main.address
    XLPORT_DATABASE_PORT       = aws_db_instance.main.port
    XLPORT_DATABASE_NAME       = var.db_name
    XLPORT_DATABASE_USER       = var.db_username
    # Encrypted, without verifying RDS's private CA (not in public root stores).
    XLPORT_DATABASE_SSLMODE   = "require"
    XLPORT_DB_MAX_CONNECTIONS = var.db_max_connections_per_instance

    XLPORT_UPLOAD_URL_TTL_SECS    = var.upload_url_ttl_secs
    XLPORT_DOWNLOAD_URL_TTL_SECS  = var.download_url_ttl_secs
    XLPORT_MAX_UPLOAD_BYTES       = var.max_upload_bytes
    XLPORT_TMP_DIR                = "/tmp"
    XLPORT_XLSX_COMPRESSION_LEVEL = var.xlsx_compression_level
    XLPORT_IMPORT_PART_ROWS       = var.import_part_rows
    XLPORT_JOB_LEASE_SECS         = var.job_lease_secs
    XLPORT_LOG_FORMAT             = "json"
  }
}

# Log groups are created here rather than by Lambda so they get a retention
# and are deleted with the stack.

resource "aws_cloudwatch_log_group" "api" {
  name              = "/aws/lambda/${var.name_prefix}-api"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "import_worker" {
  name              = "/aws/lambda/${var.name_prefix}-import-worker"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "export_worker" {
  name              = "/aws/lambda/${var.name_prefix}-export-worker"
  retention_in_days = var.log_retention_days
}

# --- api ------------------------------------------------------------------------

resource "aws_lambda_function" "api" {
  function_name = "${var.name_prefix}-api"
  description   = "xlport HTTP API: jobs, presigned upload and download URLs, the web page"
  role          = aws_iam_role.api.arn

  architectures    = [var.architecture]
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  filename         = "${var.build_dir}/api/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.build_dir}/api/bootstrap.zip")

  memory_size                    = var.api_memory_mb
  timeout                        = var.api_timeout_seconds
  reserved_concurrent_executions = var.api_reserved_concurrency

  environment {
    variables = local.function_environment
  }

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.functions.id]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.api.name
  }

  # The role must be able to create network interfaces before the function
  # is created in the VPC; the endpoints must exist before it first runs; and
  # new code goes live only after its migrations ran (when they run on apply).
  depends_on = [
    aws_iam_role_policy_attachment.api_vpc,
    aws_iam_role_policy.api,
    aws_vpc_endpoint.sqs,
    aws_vpc_endpoint.secretsmanager,
    aws_lambda_invocation.migrate,
  ]
}

# --- import worker ----------------------------------------------------------------

resource "aws_lambda_function" "import_worker" {
  function_name = "${var.name_prefix}-import-worker"
  description   = "xlport import worker: S3 upload event from SQS -> validated rows in Postgres + error report"
  role          = aws_iam_role.import_worker.arn

  architectures    = [var.architecture]
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  filename         = "${var.build_dir}/import-worker/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.build_dir}/import-worker/bootstrap.zip")

  memory_size                    = var.import_worker_memory_mb
  timeout                        = var.import_worker_timeout_seconds
  reserved_concurrent_executions = var.import_worker_reserved_concurrency

  ephemeral_storage {
    size = var.import_ephemeral_storage_mb
  }

  environment {
    variables = local.function_environment
  }

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.functions.id]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.import_worker.name
  }

  depends_on = [
    aws_iam_role_policy_attachment.import_worker_vpc,
    aws_iam_role_policy.import_worker,
    aws_vpc_endpoint.sqs,
    aws_vpc_endpoint.secretsmanager,
    aws_lambda_invocation.migrate,
  ]
}

resource "aws_lambda_event_source_mapping" "imports" {
  event_source_arn = aws_sqs_queue.imports.arn
  function_name    = aws_lambda_function.import_worker.arn

  batch_size                         = var.import_worker_batch_size
  maximum_batching_window_in_seconds = 0
  # The worker reports which messages of a batch failed; only those return
  # to the queue (and count towards the DLQ), not the whole batch.
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.import_worker_max_concurrency
  }
}

# --- export worker ----------------------------------------------------------------

resource "aws_lambda_function" "export_worker" {
  function_name = "${var.name_prefix}-export-worker"
  description   = "xlport export worker: job from SQS -> Postgres cursor -> xlsx streamed to S3 multipart"
  role          = aws_iam_role.export_worker.arn

  architectures    = [var.architecture]
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  filename         = "${var.build_dir}/export-worker/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.build_dir}/export-worker/bootstrap.zip")

  memory_size                    = var.export_worker_memory_mb
  timeout                        = var.export_worker_timeout_seconds
  reserved_concurrent_executions = var.export_worker_reserved_concurrency

  # rust_xlsxwriter's constant-memory mode keeps ~300 MB of temp data per
  # million rows in XLPORT_TMP_DIR.
  ephemeral_storage {
    size = var.export_ephemeral_storage_mb
  }

  environment {
    variables = local.function_environment
  }

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.functions.id]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.export_worker.name
  }

  depends_on = [
    aws_iam_role_policy_attachment.export_worker_vpc,
    aws_iam_role_policy.export_worker,
    aws_vpc_endpoint.sqs,
    aws_vpc_endpoint.secretsmanager,
    aws_lambda_invocation.migrate,
  ]
}

resource "aws_lambda_event_source_mapping" "exports" {
  event_source_arn = aws_sqs_queue.exports.arn
  function_name    = aws_lambda_function.export_worker.arn

  batch_size                         = var.export_worker_batch_size
  maximum_batching_window_in_seconds = 0
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.export_worker_max_concurrency
  }
}
