# Every knob of the deployment. Defaults are a small, cheap, working stack;
# terraform.tfvars.example shows the ones people usually change.

# --- Where and what -----------------------------------------------------------

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, queues, roles, database). One prefix per stack."
  type        = string
  default     = "xlport"

  validation {
    # Short and lower-case: it ends up in the bucket name, IAM role names (64
    # chars) and RDS identifiers, which allow only [a-z0-9-].
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "name_prefix must be 2-20 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "architecture" {
  description = "Lambda architecture; must match how scripts/build-release built the zips (arm64 by default, x86_64 with --x86-64)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "build_dir" {
  description = "Directory holding cargo lambda's output, <bin>/bootstrap.zip per function. Relative paths are relative to infra/."
  type        = string
  default     = "../target/lambda"
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket even when it still holds objects."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of every log group (functions, API access log, Postgres log)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (confirm the subscription mail). Null: no subscription, the topic still exists."
  type        = string
  default     = null
}

# --- Network ------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the stack's VPC. Only private subnets are carved from it."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR block."
  }
}

variable "az_count" {
  description = "Number of availability zones (one private subnet each). RDS needs at least two."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4."
  }
}

# --- Storage ------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the bucket. Null: <name_prefix>-<account id>-<region>, which is globally unique."
  type        = string
  default     = null
}

variable "cors_allowed_origins" {
  description = "Origins allowed to PUT parts to and GET from the bucket besides the API's own (which serves the web page and is always allowed)."
  type        = list(string)
  default     = []
}

variable "imports_expiration_days" {
  description = "Days after which uploaded files under imports/ are deleted. The rows are in Postgres by then."
  type        = number
  default     = 7

  validation {
    condition     = var.imports_expiration_days >= 1
    error_message = "imports_expiration_days must be at least 1."
  }
}

variable "exports_expiration_days" {
  description = "Days after which generated workbooks under exports/ are deleted; ask for a new export after that."
  type        = number
  default     = 7

  validation {
    condition     = var.exports_expiration_days >= 1
    error_message = "exports_expiration_days must be at least 1."
  }
}

variable "reports_expiration_days" {
  description = "Days after which error reports under reports/ are deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.reports_expiration_days >= 1
    error_message = "reports_expiration_days must be at least 1."
  }
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which S3 aborts multipart uploads nobody completed (abandoned browser uploads, crashed exports); their parts are billed until then."
  type        = number
  default     = 1

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1
    error_message = "abort_incomplete_multipart_days must be at least 1."
  }
}

# --- Queues -------------------------------------------------------------------

variable "queue_visibility_timeout_multiplier" {
  description = "Each queue's visibility timeout is this many times its worker's timeout. AWS recommends at least 6 so a message is not redelivered while retries of the same batch are still running."
  type        = number
  default     = 6

  validation {
    # 48 x 900 s (the longest Lambda timeout) = 43200 s, the SQS maximum.
    condition     = var.queue_visibility_timeout_multiplier >= 6 && var.queue_visibility_timeout_multiplier <= 48
    error_message = "queue_visibility_timeout_multiplier must be between 6 and 48."
  }
}

variable "max_receive_count" {
  description = "Receives of a message before SQS moves it to the dead-letter queue. Redelivery is normal (a retried import resumes after its last committed part), so not 1."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 2 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 2 and 1000."
  }
}

variable "queue_message_retention_seconds" {
  description = "How long the imports and exports queues keep a message. The DLQs keep theirs 14 days, the SQS maximum, which must be longer: a message keeps its original enqueue time when it moves to the DLQ."
  type        = number
  default     = 345600 # 4 days

  validation {
    condition     = var.queue_message_retention_seconds >= 3600 && var.queue_message_retention_seconds < 1209600
    error_message = "queue_message_retention_seconds must be at least 3600 and less than 1209600 (the DLQ retention)."
  }
}

# --- Functions ----------------------------------------------------------------

variable "api_memory_mb" {
  description = "Memory of the api function. It only talks to Postgres and signs URLs."
  type        = number
  default     = 512

  validation {
    condition     = var.api_memory_mb >= 128 && var.api_memory_mb <= 10240
    error_message = "api_memory_mb must be between 128 and 10240."
  }
}

variable "api_timeout_seconds" {
  description = "Timeout of the api function. The HTTP API gives up after 30 s anyway."
  type        = number
  default     = 29

  validation {
    condition     = var.api_timeout_seconds >= 1 && var.api_timeout_seconds <= 30
    error_message = "api_timeout_seconds must be between 1 and 30."
  }
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the api function; -1 means none (shares the account pool). Setting it caps the Postgres connections the API can open (this x db_max_connections_per_instance)."
  type        = number
  default     = -1

  validation {
    condition     = var.api_reserved_concurrency >= -1
    error_message = "api_reserved_concurrency must be -1 (unreserved) or a count."
  }
}

variable "import_worker_memory_mb" {
  description = "Memory of the import worker. 1769 MB is one full vCPU, which parsing and COPY use."
  type        = number
  default     = 1769

  validation {
    condition     = var.import_worker_memory_mb >= 128 && var.import_worker_memory_mb <= 10240
    error_message = "import_worker_memory_mb must be between 128 and 10240."
  }
}

variable "import_worker_timeout_seconds" {
  description = "Timeout of the import worker. A longer import continues on the next delivery, after its last committed part."
  type        = number
  default     = 900

  validation {
    condition     = var.import_worker_timeout_seconds >= 1 && var.import_worker_timeout_seconds <= 900
    error_message = "import_worker_timeout_seconds must be between 1 and 900."
  }
}

variable "import_worker_reserved_concurrency" {
  description = "Reserved concurrency of the import worker; -1 means none. If set, keep it >= import_worker_max_concurrency or the mapping gets throttled."
  type        = number
  default     = -1

  validation {
    condition     = var.import_worker_reserved_concurrency >= -1
    error_message = "import_worker_reserved_concurrency must be -1 (unreserved) or a count."
  }
}

variable "import_worker_max_concurrency" {
  description = "Most import worker instances the SQS mapping runs at once (the mapping's maximum concurrency). Bounds the load on Postgres."
  type        = number
  default     = 5

  validation {
    condition     = var.import_worker_max_concurrency >= 2 && var.import_worker_max_concurrency <= 1000
    error_message = "import_worker_max_concurrency must be between 2 and 1000 (the SQS mapping's limits)."
  }
}

variable "import_worker_batch_size" {
  description = "Messages per import worker invocation. One file can take minutes, so 1 keeps each job's time budget its own."
  type        = number
  default     = 1

  validation {
    condition     = var.import_worker_batch_size >= 1 && var.import_worker_batch_size <= 10
    error_message = "import_worker_batch_size must be between 1 and 10."
  }
}

variable "import_ephemeral_storage_mb" {
  description = "/tmp size of the import worker, for spooling uploads that cannot be read with ranged GETs."
  type        = number
  default     = 2048

  validation {
    condition     = var.import_ephemeral_storage_mb >= 512 && var.import_ephemeral_storage_mb <= 10240
    error_message = "import_ephemeral_storage_mb must be between 512 and 10240."
  }
}

variable "export_worker_memory_mb" {
  description = "Memory of the export worker. Constant-memory xlsx writing needs little RAM; memory buys CPU for zip compression (1769 MB = 1 vCPU)."
  type        = number
  default     = 1769

  validation {
    condition     = var.export_worker_memory_mb >= 128 && var.export_worker_memory_mb <= 10240
    error_message = "export_worker_memory_mb must be between 128 and 10240."
  }
}

variable "export_worker_timeout_seconds" {
  description = "Timeout of the export worker. About 12-20 s per million rows at one vCPU, so 900 s leaves a wide margin."
  type        = number
  default     = 900

  validation {
    condition     = var.export_worker_timeout_seconds >= 1 && var.export_worker_timeout_seconds <= 900
    error_message = "export_worker_timeout_seconds must be between 1 and 900."
  }
}

variable "export_worker_reserved_concurrency" {
  description = "Reserved concurrency of the export worker; -1 means none. If set, keep it >= export_worker_max_concurrency."
  type        = number
  default     = -1

  validation {
    condition     = var.export_worker_reserved_concurrency >= -1
    error_message = "export_worker_reserved_concurrency must be -1 (unreserved) or a count."
  }
}

variable "export_worker_max_concurrency" {
  description = "Most export worker instances the SQS mapping runs at once. Bounds the load on Postgres."
  type        = number
  default     = 5

  validation {
    condition     = var.export_worker_max_concurrency >= 2 && var.export_worker_max_concurrency <= 1000
    error_message = "export_worker_max_concurrency must be between 2 and 1000 (the SQS mapping's limits)."
  }
}

variable "export_worker_batch_size" {
  description = "Messages per export worker invocation."
  type        = number
  default     = 1

  validation {
    condition     = var.export_worker_batch_size >= 1 && var.export_worker_batch_size <= 10
    error_message = "export_worker_batch_size must be between 1 and 10."
  }
}

variable "export_ephemeral_storage_mb" {
  description = "/tmp size of the export worker. The xlsx writer keeps about 300 MB of temporary data per million rows, so 2048 MB is roughly 6 million rows."
  type        = number
  default     = 2048

  validation {
    condition     = var.export_ephemeral_storage_mb >= 512 && var.export_ephemeral_storage_mb <= 10240
    error_message = "export_ephemeral_storage_mb must be between 512 and 10240."
  }
}

variable "migrate_memory_mb" {
  description = "Memory of the migrate function."
  type        = number
  default     = 256

  validation {
    condition     = var.migrate_memory_mb >= 128 && var.migrate_memory_mb <= 10240
    error_message = "migrate_memory_mb must be between 128 and 10240."
  }
}

variable "migrate_timeout_seconds" {
  description = "Timeout of the migrate function (one run of all pending migrations)."
  type        = number
  default     = 300

  validation {
    condition     = var.migrate_timeout_seconds >= 1 && var.migrate_timeout_seconds <= 900
    error_message = "migrate_timeout_seconds must be between 1 and 900."
  }
}

variable "rust_log" {
  description = "RUST_LOG filter of every function."
  type        = string
  default     = "info"
}

# --- Application limits (passed to the functions as XLPORT_* variables) ------

variable "upload_url_ttl_secs" {
  description = "Lifetime of presigned upload (PUT and part) URLs. A URL also dies when the function's role session does, which can be sooner."
  type        = number
  default     = 3600

  validation {
    condition     = var.upload_url_ttl_secs >= 60 && var.upload_url_ttl_secs <= 604800
    error_message = "upload_url_ttl_secs must be between 60 and 604800 (SigV4's 7 days)."
  }
}

variable "download_url_ttl_secs" {
  description = "Lifetime of presigned download URLs for exports and error reports."
  type        = number
  default     = 900

  validation {
    condition     = var.download_url_ttl_secs >= 60 && var.download_url_ttl_secs <= 604800
    error_message = "download_url_ttl_secs must be between 60 and 604800 (SigV4's 7 days)."
  }
}

variable "max_upload_bytes" {
  description = "Largest file a client may declare for an import."
  type        = number
  default     = 5368709120 # 5 GiB
}

variable "xlsx_compression_level" {
  description = "Zip level of exported workbooks, 0-9. 3 is what Excel uses; 6 is ~smaller and much slower."
  type        = number
  default     = 3

  validation {
    condition     = var.xlsx_compression_level >= 0 && var.xlsx_compression_level <= 9
    error_message = "xlsx_compression_level must be between 0 and 9."
  }
}

variable "import_part_rows" {
  description = "Rows per committed part of an import (the unit a retried import resumes from)."
  type        = number
  default     = 10000
}

variable "job_lease_secs" {
  description = "How long a worker's claim on a job lasts before another delivery may take it over."
  type        = number
  default     = 120
}

variable "db_max_connections_per_instance" {
  description = "Postgres pool size of each function instance. Total connections are at most this x (API concurrency + both workers' maximum concurrency) + 1 for migrate; keep that under the instance's max_connections (about 80 on db.t4g.micro)."
  type        = number
  default     = 2

  validation {
    condition     = var.db_max_connections_per_instance >= 2 && var.db_max_connections_per_instance <= 20
    error_message = "db_max_connections_per_instance must be between 2 and 20: a dry-run import holds one connection for its rolled-back merge and takes a second for each part's record."
  }
}

# --- HTTP API -----------------------------------------------------------------

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second the HTTP API lets through."
  type        = number
  default     = 50
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests the HTTP API lets through."
  type        = number
  default     = 100
}

# --- Postgres -----------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class. db.t4g.micro is the cheapest Graviton class; COPY of a million rows takes a few seconds even there."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_engine_version" {
  description = "PostgreSQL major version (RDS picks the newest minor and upgrades minors automatically)."
  type        = string
  default     = "17"
}

variable "db_allocated_storage_gb" {
  description = "Initial gp3 storage of the database."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage_gb >= 20
    error_message = "db_allocated_storage_gb must be at least 20 (the gp3 minimum on RDS)."
  }
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling of the database."
  type        = number
  default     = 100
}

variable "db_name" {
  description = "Database name."
  type        = string
  default     = "xlport"
}

variable "db_username" {
  description = "Master user name. Its password is generated and kept in Secrets Manager by RDS, never by Terraform."
  type        = string
  default     = "xlport"
}

variable "db_multi_az" {
  description = "Run a standby in a second AZ (doubles the instance cost)."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 0 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 0 and 35."
  }
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database. Set false (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

variable "db_skip_final_snapshot" {
  description = "Delete the database on destroy without a final snapshot."
  type        = bool
  default     = false
}

# --- Migrations ---------------------------------------------------------------

variable "run_migrations_on_apply" {
  description = "Invoke <name_prefix>-migrate with {\"command\":\"migrate\"} during apply, whenever its code changes. The migrations are compiled into xlport-admin, so new migrations mean new code."
  type        = bool
  default     = true
}

# --- Alarms -------------------------------------------------------------------

variable "queue_age_alarm_seconds" {
  description = "Alarm when the oldest message of the imports or exports queue is older than this (jobs are stuck or workers failing)."
  type        = number
  default     = 3600
}
