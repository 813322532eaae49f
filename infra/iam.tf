# One role per function, each allowed exactly what its function does:
#
#   function        S3                                          SQS                    Secrets
#   api             PutObject, AbortMultipartUpload,            SendMessage: exports   DB secret
#                   ListMultipartUploadParts on imports/*       GetQueueAttributes:
#                   (presigned PUT and multipart, completing    imports, exports
#                   and aborting uploads);                      (/health)
#                   GetObject on exports/*, reports/*
#                   (presigned downloads); ListBucket (/health)
#   import-worker   GetObject on imports/*;                     consume: imports       DB secret
#                   PutObject, AbortMultipartUpload on reports/*
#   export-worker   PutObject, AbortMultipartUpload,            consume: exports       DB secret
#                   ListMultipartUploadParts on exports/*
#   migrate         GetObject on imports/* (the sweep's         send: imports,         DB secret
#                   HeadObject of a stalled upload)             exports (re-drive)
#
# A presigned URL carries the signer's permissions, so the api role's S3
# grants are exactly what clients can do with the URLs it hands out.
#
# Every role also gets the AWS managed AWSLambdaVPCAccessExecutionRole: the
# network-interface actions a VPC function needs only work on Resource "*",
# and the managed policy is kept current by AWS. It also grants writing logs.
# CreateMultipartUpload, UploadPart and CompleteMultipartUpload are
# authorised by s3:PutObject; HeadObject by s3:GetObject.

locals {
  vpc_access_policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
  # What the SQS event source mapping does with the function's role.
  sqs_consumer_actions = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
  ]
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# --- api --------------------------------------------------------------------------

resource "aws_iam_role" "api" {
  name               = "${var.name_prefix}-api"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy_attachment" "api_vpc" {
  role       = aws_iam_role.api.name
  policy_arn = local.vpc_access_policy_arn
}

resource "aws_iam_role_policy" "api" {
  name   = "xlport-api"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

data "aws_iam_policy_document" "api" {
  statement {
    sid = "PresignUploads"
    actions = [
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.files.arn}/imports/*"]
  }

  statement {
    sid     = "PresignDownloads"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.files.arn}/exports/*",
      "${aws_s3_bucket.files.arn}/reports/*",
    ]
  }

  statement {
    sid       = "HealthHeadBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.files.arn]
  }

  statement {
    sid       = "EnqueueExports"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.exports.arn]
  }

  statement {
    sid       = "HealthImportsQueue"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.imports.arn]
  }

  statement {
    sid       = "DatabasePassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.main.master_user_secret[0].secret_arn]
  }
}

# --- import worker ------------------------------------------------------------------

resource "aws_iam_role" "import_worker" {
  name               = "${var.name_prefix}-import-worker"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy_attachment" "import_worker_vpc" {
  role       = aws_iam_role.import_worker.name
  policy_arn = local.vpc_access_policy_arn
}

resource "aws_iam_role_policy" "import_worker" {
  name   = "xlport-import-worker"
  role   = aws_iam_role.import_worker.id
  policy = data.aws_iam_policy_document.import_worker.json
}

data "aws_iam_policy_document" "import_worker" {
  statement {
    sid       = "ReadUploads"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.files.arn}/imports/*"]
  }

  statement {
    sid       = "WriteErrorReports"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.files.arn}/reports/*"]
  }

  statement {
    sid       = "ConsumeImportsQueue"
    actions   = local.sqs_consumer_actions
    resources = [aws_sqs_queue.imports.arn]
  }

  statement {
    sid       = "DatabasePassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.main.master_user_secret[0].secret_arn]
  }
}

# --- export worker ------------------------------------------------------------------

resource "aws_iam_role" "export_worker" {
  name               = "${var.name_prefix}-export-worker"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy_attachment" "export_worker_vpc" {
  role       = aws_iam_role.export_worker.name
  policy_arn = local.vpc_access_policy_arn
}

resource "aws_iam_role_policy" "export_worker" {
  name   = "xlport-export-worker"
  role   = aws_iam_role.export_worker.id
  policy = data.aws_iam_policy_document.export_worker.json
}

data "aws_iam_policy_document" "export_worker" {
  statement {
    sid = "WriteExports"
    actions = [
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.files.arn}/exports/*"]
  }

  statement {
    sid       = "ConsumeExportsQueue"
    actions   = local.sqs_consumer_actions
    resources = [aws_sqs_queue.exports.arn]
  }

  statement {
    sid       = "DatabasePassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.main.master_user_secret[0].secret_arn]
  }
}

# --- migrate (xlport-admin) -----------------------------------------------------------

resource "aws_iam_role" "migrate" {
  name               = "${var.name_prefix}-migrate"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy_attachment" "migrate_vpc" {
  role       = aws_iam_role.migrate.name
  policy_arn = local.vpc_access_policy_arn
}

resource "aws_iam_role_policy" "migrate" {
  name   = "xlport-migrate"
  role   = aws_iam_role.migrate.id
  policy = data.aws_iam_policy_document.migrate.json
}

data "aws_iam_policy_document" "migrate" {
  statement {
    sid       = "DatabasePassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.main.master_user_secret[0].secret_arn]
  }

  # The sweep (sweep.tf): is a stalled import's object there (HeadObject),
  # and send its event, or an export's message, again.
  statement {
    sid       = "SweepSeesUploads"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.files.arn}/imports/*"]
  }

  statement {
    sid       = "SweepRedrives"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.imports.arn, aws_sqs_queue.exports.arn]
  }
}
