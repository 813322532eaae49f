//! What the workers' in-process tests share: deps on the in-memory ports,
//! jobs as the api would create them, and the SQS events that start them.
//! No service runs; the end-to-end tests in `tests/` do the same on the real
//! stack.

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_core::job::{Job, KeyId, NewJob};
use xlport_core::message::object_created_notification;
use xlport_core::ports::JobStore;
use xlport_core::ports::memory::InMemory;

use crate::{Config, Deps};

/// Deps on the in-memory ports with the local default settings and `vars`
/// on top (`XLPORT_IMPORT_PART_ROWS=2`, say).
pub fn deps(vars: &[(&str, &str)]) -> Deps<InMemory> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config =
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("the test's settings parse");
    Deps::in_memory(config).expect("the built-in datasets load")
}

/// An import of `filename` into `dataset` awaiting its upload, as `POST
/// /imports` creates it; its `options` are the request's (`conflict_policy`,
/// `dry_run`). Returns the job and its object's key.
pub async fn import_job(
    deps: &Deps<InMemory>,
    dataset: &str,
    filename: &str,
    size: usize,
    options: Value,
) -> (Uuid, String) {
    let id = Uuid::new_v4();
    let new = NewJob::import(
        id,
        KeyId(Uuid::nil()),
        dataset,
        filename,
        Some(size as i64),
        options,
        None,
    );
    let key = new.object_key.clone().unwrap_or_default();
    deps.jobs
        .create_job(new)
        .await
        .expect("the in-memory store is up");
    (id, key)
}

/// A queued export of `dataset` as `POST /exports` creates it.
pub async fn export_job(
    deps: &Deps<InMemory>,
    dataset: &str,
    format: &str,
    options: Value,
) -> Uuid {
    let id = Uuid::new_v4();
    let new = NewJob::export(id, KeyId(Uuid::nil()), dataset, format, None, options);
    deps.jobs
        .create_job(new)
        .await
        .expect("the in-memory store is up");
    id
}

/// An SQS event of one record with `body`, received `receives` times from
/// the queue `queue`, with a receipt handle (`receipt-<message id>`).
pub fn sqs_event(body: &str, queue: &str, receives: u32) -> SqsEvent {
    let id = Uuid::new_v4();
    serde_json::from_value(json!({"Records": [{
        "messageId": id.to_string(),
        "receiptHandle": format!("receipt-{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": receives.to_string()},
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:000000000000:{queue}"),
    }]}))
    .expect("an SQS event")
}

/// The S3 `ObjectCreated` notification of `key` (in the deps' bucket) on
/// the imports queue, as S3 sends it.
pub fn object_created(deps: &Deps<InMemory>, key: &str, size: usize, etag: &str) -> SqsEvent {
    let body = object_created_notification(&deps.config.bucket, key, size as u64, etag);
    sqs_event(&body, "xlport-imports", 1)
}

/// The `ExportRequested` message of `job` on the exports queue.
pub fn export_requested(job: Uuid) -> SqsEvent {
    sqs_event(&json!({ "job_id": job }).to_string(), "xlport-exports", 1)
}

/// The job as stored now.
pub async fn job(deps: &Deps<InMemory>, id: Uuid) -> Job {
    deps.jobs
        .job(id)
        .await
        .expect("the in-memory store is up")
        .expect("the job exists")
}
