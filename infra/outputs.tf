output "api_url" {
  description = "Base URL of the API (no trailing slash): $API/health, $API/ for the web page."
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "bucket_name" {
  description = "The files bucket (imports/, exports/, reports/)."
  value       = aws_s3_bucket.files.id
}

output "imports_queue_url" {
  description = "Queue of S3 upload events for the import worker."
  value       = aws_sqs_queue.imports.url
}

output "exports_queue_url" {
  description = "Queue of export jobs for the export worker."
  value       = aws_sqs_queue.exports.url
}

output "imports_dlq_url" {
  description = "Dead-letter queue of the imports queue."
  value       = aws_sqs_queue.imports_dlq.url
}

output "exports_dlq_url" {
  description = "Dead-letter queue of the exports queue."
  value       = aws_sqs_queue.exports_dlq.url
}

output "function_names" {
  description = "Lambda function names, for `aws lambda invoke` and the logs."
  value = {
    api           = aws_lambda_function.api.function_name
    import_worker = aws_lambda_function.import_worker.function_name
    export_worker = aws_lambda_function.export_worker.function_name
    migrate       = aws_lambda_function.migrate.function_name
  }
}

output "migrate_function_name" {
  description = "Invoke with {\"command\":\"migrate\"} or {\"command\":\"create-key\",\"name\":\"...\"}."
  value       = aws_lambda_function.migrate.function_name
}

output "database_endpoint" {
  description = "Postgres host:port (reachable from inside the VPC only)."
  value       = aws_db_instance.main.endpoint
}

output "database_secret_arn" {
  description = "Secrets Manager secret with the database user's name and password (managed and rotated by RDS)."
  value       = aws_db_instance.main.master_user_secret[0].secret_arn
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "region" {
  description = "Region of the stack."
  value       = var.region
}
