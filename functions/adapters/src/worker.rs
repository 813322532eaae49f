//! What both workers need around a job: an identity for leases, a scratch
//! directory that cleans itself up, and the heartbeat that reports progress
//! and keeps the lease alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use uuid::Uuid;
use xlport_core::job::retry_backoff;

use crate::Deps;

/// Runs `handle` on each record of an SQS batch and reports the ones that
/// failed as batch item failures: SQS redelivers only those, and one bad
/// record never sends its neighbours back to the queue.
///
/// A failed record comes back after a backoff, not after the queue's
/// visibility timeout: its visibility is shortened (SQS
/// `ChangeMessageVisibility`) to the [`RetryAfter`] its error carries, or
/// else to [`retry_backoff`] of its receive count (issue #19).
pub async fn each_record<F, Fut>(deps: &Deps, event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receipt = record.receipt_handle.clone();
        let source = record.event_source_arn.clone();
        let receives: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        // Boxed so each handler's (deep) future type stays out of the caller's.
        if let Err(e) = Box::pin(handle(record)).await {
            let retry_in = if let Some(r) = e.downcast_ref::<RetryAfter>() {
                r.after
            } else if e.downcast_ref::<DeadLetter>().is_some() {
                // Received again at once, so the queue moves it to its DLQ
                // after maxReceiveCount receives, not hours later.
                Duration::ZERO
            } else {
                retry_backoff(receives)
            };
            tracing::error!(message_id = %id, error = format!("{e:#}"), retry_in_secs = retry_in.as_secs(), "record failed; SQS will redeliver it");
            if let (Some(receipt), Some(arn)) = (receipt, source) {
                deps.sqs
                    .retry_in(&deps.config, &arn, &receipt, retry_in)
                    .await;
            }
            response.add_failure(id);
        }
    }
    response
}

/// A message no retry can fix (not a message xlport sends, or one for an
/// import that failed): it is made visible again at once, so the queue's
/// redrive policy moves it to the dead-letter queue after maxReceiveCount
/// receives, where operators find it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeadLetter(pub String);

/// A failure to try again after `after` (the job was handed back to the queue).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct RetryAfter {
    pub reason: String,
    pub after: Duration,
}

/// Hands a job back to the queue after a transient failure of its attempt:
/// records why (for people, see [`transient_reason`]) and when the next
/// attempt is due ([`retry_backoff`] of the attempts so far), and returns the
/// error for [`each_record`], which makes the message visible then.
pub async fn requeue(
    deps: &Deps,
    job: &xlport_core::job::Job,
    worker: &str,
    error: anyhow::Error,
) -> anyhow::Error {
    let after = retry_backoff(u32::try_from(job.attempts).unwrap_or(1));
    let reason = transient_reason(&error);
    if let Err(e) = deps.db.requeue_job(job.id, worker, &reason, after).await {
        return anyhow::anyhow!(e).context(format!("requeueing after: {error:#}"));
    }
    anyhow::anyhow!(RetryAfter {
        reason: format!("attempt {} failed: {error:#}", job.attempts),
        after,
    })
}

/// What a person is told of a transient failure: its kind, never the
/// internal text (which is logged).
pub fn transient_reason(error: &anyhow::Error) -> String {
    let kind = if error.chain().any(|e| {
        e.downcast_ref::<sqlx::Error>().is_some()
            || e.downcast_ref::<crate::postgres::DbError>().is_some()
    }) {
        "a database error"
    } else if error
        .chain()
        .any(|e| e.downcast_ref::<xlport_core::ports::StoreError>().is_some())
    {
        "an object storage (S3) error"
    } else {
        "an unexpected error in the worker"
    };
    format!("{kind}; it will be retried")
}

/// Attempts a job gets before a failure that might be transient fails it.
pub const MAX_ATTEMPTS: i32 = 3;

/// An error no retry can fix (a bad file, a request the job cannot carry
/// out): the job fails with this reason at once.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Permanent(pub String);

/// Whether a job whose attempt number `attempt` ended in `error` should be
/// marked failed now rather than handed back to the queue.
pub fn gives_up(error: &anyhow::Error, attempt: i32) -> bool {
    error.downcast_ref::<Permanent>().is_some() || attempt >= MAX_ATTEMPTS
}

/// A lease owner name unique to this attempt.
pub fn worker_id(kind: &str) -> String {
    format!("{kind}/{}/{}", std::process::id(), Uuid::new_v4().simple())
}

/// A directory under the temp dir, removed however the job ends.
pub struct ScratchDir(pub std::path::PathBuf);

impl ScratchDir {
    pub fn create(deps: &Deps, kind: &str) -> std::io::Result<Self> {
        let dir = deps
            .config
            .tmp_dir
            .join(format!("xlport-{kind}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove scratch dir");
        }
    }
}

/// Progress a worker publishes; the heartbeat writes it about once a second.
#[derive(Clone, Default)]
pub struct Progress {
    pub rows: Arc<AtomicU64>,
    pub bytes: Arc<AtomicU64>,
}

/// Stops the heartbeat when dropped, so a job future that is dropped (a
/// panic, a cancelled invocation) stops renewing a lease it no longer uses.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    pub fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reports progress and renews the lease about once a second until the
/// returned guard is dropped.
pub fn spawn_heartbeat(deps: &Deps, job: Uuid, worker: &str, progress: Progress) -> Heartbeat {
    let (deps, worker) = (deps.clone(), worker.to_string());
    Heartbeat(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let rows = progress.rows.load(Ordering::Relaxed) as i64;
            let bytes = progress.bytes.load(Ordering::Relaxed) as i64;
            match deps
                .db
                .heartbeat(job, &worker, deps.config.job_lease, rows, bytes)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(job_id = %job, "lost the job's lease");
                    return;
                }
                Err(e) => tracing::warn!(job_id = %job, error = %e, "progress update failed"),
            }
        }
    }))
}
