# Postgres on RDS, in the private subnets, reachable only from the functions'
# security group. RDS generates the master password and keeps it in Secrets
# Manager (manage_master_user_password), so it never appears in Terraform
# state, tfvars or the functions' environment: the functions get the secret's
# ARN and read the password at start.
#
# A single small instance rather than Aurora Serverless v2: it is the cheapest
# thing that is always on, and the workload (COPY in, cursor out) is
# sequential I/O that a t4g handles. See README.md for the costs.

resource "aws_db_subnet_group" "main" {
  name       = "${var.name_prefix}-db"
  subnet_ids = aws_subnet.private[*].id
}

# Exported Postgres logs go here; created up front so it gets a retention
# (RDS would otherwise create it with "never expire").
resource "aws_cloudwatch_log_group" "database" {
  name              = "/aws/rds/instance/${var.name_prefix}-db/postgresql"
  retention_in_days = var.log_retention_days
}

resource "aws_db_instance" "main" {
  identifier     = "${var.name_prefix}-db"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true

  db_name                     = var.db_name
  username                    = var.db_username
  manage_master_user_password = true

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az

  backup_retention_period    = var.db_backup_retention_days
  copy_tags_to_snapshot      = true
  auto_minor_version_upgrade = true
  deletion_protection        = var.db_deletion_protection
  skip_final_snapshot        = var.db_skip_final_snapshot
  final_snapshot_identifier  = "${var.name_prefix}-db-final"

  enabled_cloudwatch_logs_exports = ["postgresql"]

  depends_on = [aws_cloudwatch_log_group.database]
}
