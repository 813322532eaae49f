# Alarms go to one SNS topic; subscribe an address with var.alarm_email or
# attach anything else to the topic (chat, paging) outside this stack.
#
#   - a dead-letter queue holds a message: a job failed max_receive_count times
#   - a work queue's oldest message is old: workers are stuck or failing
#   - a function reports errors or is throttled

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
}

resource "aws_sns_topic" "alarms" {
  # Not encrypted with the AWS managed SNS key on purpose: CloudWatch alarms
  # cannot publish to a topic encrypted with it.
  name = "${var.name_prefix}-alarms"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = {
    imports = aws_sqs_queue.imports_dlq.name
    exports = aws_sqs_queue.exports_dlq.name
  }

  alarm_name        = "${each.value}-not-empty"
  alarm_description = "A ${each.key} job message failed ${var.max_receive_count} times and is in ${each.value}. Look at the worker's logs, fix, then redrive the DLQ."
  namespace         = "AWS/SQS"
  metric_name       = "ApproximateNumberOfMessagesVisible"
  dimensions = {
    QueueName = each.value
  }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "queue_age" {
  for_each = {
    imports = aws_sqs_queue.imports.name
    exports = aws_sqs_queue.exports.name
  }

  alarm_name        = "${each.value}-oldest-message-age"
  alarm_description = "The oldest message in ${each.value} has waited more than ${var.queue_age_alarm_seconds} s."
  namespace         = "AWS/SQS"
  metric_name       = "ApproximateAgeOfOldestMessage"
  dimensions = {
    QueueName = each.value
  }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.queue_age_alarm_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = {
    api           = aws_lambda_function.api.function_name
    import-worker = aws_lambda_function.import_worker.function_name
    export-worker = aws_lambda_function.export_worker.function_name
    migrate       = aws_lambda_function.migrate.function_name
  }

  alarm_name          = "${each.value}-errors"
  alarm_description   = "${each.value} returned errors (crashes, timeouts, failed invocations; not batch items it reported as failed)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = {
    api           = aws_lambda_function.api.function_name
    import-worker = aws_lambda_function.import_worker.function_name
    export-worker = aws_lambda_function.export_worker.function_name
    migrate       = aws_lambda_function.migrate.function_name
  }

  alarm_name          = "${each.value}-throttles"
  alarm_description   = "${each.value} was throttled: raise its reserved concurrency or the account's limit."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
