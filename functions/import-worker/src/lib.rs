//! The import worker: receives S3 object-created notifications through the
//! `imports` queue, matches each object to its job and processes it.
//! Failures are reported per record (SQS partial batch response), so one bad
//! message never sends its neighbours back to the queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use xlport_adapters::Deps;
use xlport_adapters::postgres::UploadOutcome;
use xlport_core::job::keys;
use xlport_core::message::{ImportNotification, ObjectCreated, parse_import_notification};

/// Handles one SQS batch and reports the records to retry.
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
    match parse_import_notification(body)? {
        ImportNotification::TestEvent => {
            tracing::info!("ignoring s3:TestEvent");
            Ok(())
        }
        ImportNotification::Objects(objects) => {
            for object in objects {
                handle_object(deps, &object).await?;
            }
            Ok(())
        }
    }
}

async fn handle_object(deps: &Deps, object: &ObjectCreated) -> anyhow::Result<()> {
    if object.bucket != deps.config.bucket {
        tracing::warn!(bucket = %object.bucket, key = %object.key, "object in a bucket this deployment does not own; ignored");
        return Ok(());
    }
    let Some(job_id) = keys::import_job_of(&object.key) else {
        tracing::warn!(key = %object.key, "key is not an xlport import; ignored");
        return Ok(());
    };
    let size = i64::try_from(object.size)?;
    match deps
        .db
        .record_upload(job_id, &object.key, size, &object.etag)
        .await?
    {
        UploadOutcome::UnknownKey => {
            tracing::warn!(%job_id, key = %object.key, "no import job waits for this object; ignored");
        }
        UploadOutcome::AlreadyRecorded(job) => {
            tracing::info!(%job_id, state = %job.state, etag = %object.etag, "object already recorded (redelivery)");
        }
        UploadOutcome::Queued(job) => {
            tracing::info!(
                %job_id,
                bucket = %object.bucket,
                key = %object.key,
                size = object.size,
                etag = %object.etag,
                "import object received"
            );
            if let Some(declared) = job.declared_size
                && declared != size
            {
                let reason = format!(
                    "the uploaded file is {size} bytes but the import was created for {declared} bytes; \
                     create a new import with the file's real size"
                );
                deps.db.fail_job(job_id, &reason).await?;
            }
        }
    }
    Ok(())
}
