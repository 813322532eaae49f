# `terraform test` against a mocked AWS provider: Terraform itself evaluates
# the configuration (types, count/for_each, validations) and plans it, with no
# account and no network. It needs the provider's schema, so it runs only
# where the provider is installed (infra/check.sh finds a local mirror and
# skips this otherwise; test_wiring.py covers the wiring either way).
#
# The zips under tests/fixtures/lambda are placeholders: plan only hashes them.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_availability_zones" {
    defaults = {
      names = ["us-east-1a", "us-east-1b", "us-east-1c"]
    }
  }

  # Random strings would fail the provider's "valid JSON policy" checks.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  build_dir = "tests/fixtures/lambda"
}

run "defaults" {
  command = plan

  assert {
    condition     = aws_sqs_queue.imports.visibility_timeout_seconds >= 6 * aws_lambda_function.import_worker.timeout
    error_message = "imports queue visibility must be at least 6 x the import worker's timeout"
  }

  assert {
    condition     = aws_sqs_queue.exports.visibility_timeout_seconds >= 6 * aws_lambda_function.export_worker.timeout
    error_message = "exports queue visibility must be at least 6 x the export worker's timeout"
  }

  assert {
    condition = alltrue([
      for f in [aws_lambda_function.api, aws_lambda_function.import_worker, aws_lambda_function.export_worker, aws_lambda_function.migrate] :
      f.architectures == tolist(["arm64"]) && f.runtime == "provided.al2023" && f.handler == "bootstrap"
    ])
    error_message = "every function is arm64 / provided.al2023 / bootstrap by default"
  }

  assert {
    condition     = aws_lambda_function.export_worker.ephemeral_storage[0].size == 2048
    error_message = "the export worker gets 2048 MB of /tmp by default"
  }

  assert {
    condition = alltrue([
      for m in [aws_lambda_event_source_mapping.imports, aws_lambda_event_source_mapping.exports] :
      m.function_response_types == toset(["ReportBatchItemFailures"]) && m.scaling_config[0].maximum_concurrency >= 2
    ])
    error_message = "both mappings report batch item failures and cap concurrency"
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.files.block_public_acls &&
      aws_s3_bucket_public_access_block.files.block_public_policy &&
      aws_s3_bucket_public_access_block.files.ignore_public_acls &&
      aws_s3_bucket_public_access_block.files.restrict_public_buckets
    )
    error_message = "the bucket blocks all public access"
  }

  assert {
    condition     = aws_s3_bucket.files.bucket == "xlport-123456789012-us-east-1"
    error_message = "the default bucket name is <prefix>-<account>-<region>"
  }

  assert {
    condition     = length(aws_lambda_invocation.migrate) == 1
    error_message = "migrations run on apply by default"
  }

  assert {
    condition     = aws_db_instance.main.publicly_accessible == false && aws_db_instance.main.manage_master_user_password == true
    error_message = "Postgres is private and its password is managed by RDS"
  }

  assert {
    condition     = length(aws_subnet.private) == 2 && alltrue([for s in aws_subnet.private : s.map_public_ip_on_launch == false])
    error_message = "two private subnets"
  }
}

run "shorter_worker_timeouts_move_the_visibility_with_them" {
  command = plan

  variables {
    import_worker_timeout_seconds = 120
    export_worker_timeout_seconds = 300
  }

  assert {
    condition     = aws_sqs_queue.imports.visibility_timeout_seconds == 720
    error_message = "imports visibility follows the import worker's timeout"
  }

  assert {
    condition     = aws_sqs_queue.exports.visibility_timeout_seconds == 1800
    error_message = "exports visibility follows the export worker's timeout"
  }
}

run "x86_64_and_no_migrations_on_apply" {
  command = plan

  variables {
    architecture            = "x86_64"
    run_migrations_on_apply = false
  }

  assert {
    condition     = aws_lambda_function.api.architectures == tolist(["x86_64"])
    error_message = "architecture is a variable"
  }

  assert {
    condition     = length(aws_lambda_invocation.migrate) == 0
    error_message = "run_migrations_on_apply = false invokes nothing"
  }
}

run "visibility_multiplier_below_6_is_rejected" {
  command = plan

  variables {
    queue_visibility_timeout_multiplier = 5
  }

  expect_failures = [var.queue_visibility_timeout_multiplier]
}

run "unknown_architecture_is_rejected" {
  command = plan

  variables {
    architecture = "aarch64"
  }

  expect_failures = [var.architecture]
}
