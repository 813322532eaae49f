# Stalled jobs (issue #19). A job can wait for a worker that never comes: an
# S3 event or SQS message lost on the way, a worker that died after its
# message was deleted. Every minute the xlport-admin function runs
# {"command":"sweep"}, which sends again every job that has waited longer
# than XLPORT_STALL_SECS (an import's S3 event, an export's message) and
# notes it in the job's warnings. Re-driving is safe: claims are atomic and
# every message is idempotent.

resource "aws_cloudwatch_event_rule" "sweep" {
  name                = "${var.name_prefix}-sweep"
  description         = "xlport: re-drive jobs that waited for a worker too long"
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "sweep" {
  rule  = aws_cloudwatch_event_rule.sweep.name
  arn   = aws_lambda_function.migrate.arn
  input = jsonencode({ command = "sweep" })
}

resource "aws_lambda_permission" "sweep_from_schedule" {
  statement_id  = "AllowSweepSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.migrate.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep.arn
}
