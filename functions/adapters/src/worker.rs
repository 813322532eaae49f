//! What both workers need around a job: an identity for leases, a scratch
//! directory that cleans itself up, and the heartbeat that reports progress
//! and keeps the lease alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use uuid::Uuid;

use crate::Deps;

/// Runs `handle` on each record of an SQS batch and reports the ones that
/// failed as batch item failures: SQS redelivers only those, and one bad
/// record never sends its neighbours back to the queue.
pub async fn each_record<F, Fut>(event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        // Boxed so each handler's (deep) future type stays out of the caller's.
        if let Err(e) = Box::pin(handle(record)).await {
            tracing::error!(message_id = %id, error = format!("{e:#}"), "record failed; SQS will redeliver it");
            response.add_failure(id);
        }
    }
    response
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
