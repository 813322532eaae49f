# Two work queues, each with its own dead-letter queue.
#
#   imports: S3 ObjectCreated events for imports/* -> import worker
#   exports: messages the api function sends        -> export worker
#
# A message that fails max_receive_count times moves to the DLQ (and the DLQ
# depth alarm fires). Visibility is derived from the consumer's timeout so the
# ">= 6 x function timeout" rule holds for any tfvars, not just the defaults.

locals {
  dlq_retention_seconds = 1209600 # 14 days, the SQS maximum
}

# --- imports --------------------------------------------------------------------

resource "aws_sqs_queue" "imports_dlq" {
  name                      = "${var.name_prefix}-imports-dlq"
  message_retention_seconds = local.dlq_retention_seconds
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "imports" {
  name                       = "${var.name_prefix}-imports"
  visibility_timeout_seconds = var.queue_visibility_timeout_multiplier * var.import_worker_timeout_seconds
  message_retention_seconds  = var.queue_message_retention_seconds
  # SSE-SQS works with S3 event notifications (SSE-KMS with the AWS managed key would not).
  sqs_managed_sse_enabled = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.imports_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# S3 may send this bucket's events to the imports queue, and nothing else may.
resource "aws_sqs_queue_policy" "imports" {
  queue_url = aws_sqs_queue.imports.id
  policy    = data.aws_iam_policy_document.imports_queue.json
}

data "aws_iam_policy_document" "imports_queue" {
  statement {
    sid = "S3BucketNotifications"
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.imports.arn]
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.files.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# --- exports --------------------------------------------------------------------

resource "aws_sqs_queue" "exports_dlq" {
  name                      = "${var.name_prefix}-exports-dlq"
  message_retention_seconds = local.dlq_retention_seconds
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "exports" {
  name                       = "${var.name_prefix}-exports"
  visibility_timeout_seconds = var.queue_visibility_timeout_multiplier * var.export_worker_timeout_seconds
  message_retention_seconds  = var.queue_message_retention_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.exports_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}
