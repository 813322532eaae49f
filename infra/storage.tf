# The one bucket: imports/{job_id}/{filename} (uploads), exports/{job_id}/{filename}
# (generated workbooks), reports/{job_id}/errors.xlsx (rejected rows). It is
# private: clients only ever reach it through URLs the api function presigns.

locals {
  bucket_name = coalesce(var.bucket_name, "${var.name_prefix}-${data.aws_caller_identity.current.account_id}-${var.region}")
}

resource "aws_s3_bucket" "files" {
  bucket        = local.bucket_name
  force_destroy = var.force_destroy
}

# ACLs off: the bucket owner owns every object and only policies grant access.
resource "aws_s3_bucket_ownership_controls" "files" {
  bucket = aws_s3_bucket.files.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "files" {
  bucket = aws_s3_bucket.files.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# SSE-S3 rather than SSE-KMS: presigned PUTs and GETs then need no KMS
# permissions or extra headers, and there are no per-request KMS charges.
resource "aws_s3_bucket_server_side_encryption_configuration" "files" {
  bucket = aws_s3_bucket.files.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_policy" "files" {
  bucket = aws_s3_bucket.files.id
  policy = data.aws_iam_policy_document.bucket.json

  # S3 rejects a policy while the public access block is being changed.
  depends_on = [aws_s3_bucket_public_access_block.files]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid    = "DenyPlainHttp"
    effect = "Deny"
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.files.arn,
      "${aws_s3_bucket.files.arn}/*",
    ]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# The web page (served by the api function, so its origin is the API's URL)
# PUTs multipart parts straight to S3 and must read each part's ETag to
# complete the upload.
resource "aws_s3_bucket_cors_configuration" "files" {
  bucket = aws_s3_bucket.files.id

  cors_rule {
    allowed_origins = concat([aws_apigatewayv2_api.http.api_endpoint], var.cors_allowed_origins)
    allowed_methods = ["PUT", "GET", "HEAD"]
    allowed_headers = ["*"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3600
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "files" {
  bucket = aws_s3_bucket.files.id

  rule {
    id     = "expire-imports"
    status = "Enabled"
    filter {
      prefix = "imports/"
    }
    expiration {
      days = var.imports_expiration_days
    }
  }

  rule {
    id     = "expire-exports"
    status = "Enabled"
    filter {
      prefix = "exports/"
    }
    expiration {
      days = var.exports_expiration_days
    }
  }

  rule {
    id     = "expire-reports"
    status = "Enabled"
    filter {
      prefix = "reports/"
    }
    expiration {
      days = var.reports_expiration_days
    }
  }

  # Parts of abandoned multipart uploads are invisible in listings but billed.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }
}

# An upload landing under imports/ is what starts an import: S3 sends the
# event to the imports queue, whose mapping invokes the import worker.
# (S3 also sends one s3:TestEvent message when this is configured; the worker
# ignores it.) Exports get no notification: the api function enqueues them.
resource "aws_s3_bucket_notification" "files" {
  bucket = aws_s3_bucket.files.id

  queue {
    id            = "imports-to-queue"
    queue_arn     = aws_sqs_queue.imports.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "imports/"
  }

  # S3 checks it may send to the queue when the notification is saved.
  depends_on = [aws_sqs_queue_policy.imports]
}
