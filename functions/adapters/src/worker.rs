//! What both workers do around a job: the SQS batch loop, the lifecycle
//! driver that claims a job, runs it and acts on the outcome as
//! [`xlport_core::lifecycle`] decides, an identity for leases, a scratch
//! directory that cleans itself up, and the heartbeat that reports progress
//! and keeps the lease alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use uuid::Uuid;
use xlport_core::job::Job;
use xlport_core::lifecycle::{
    AfterFailure, OnClaim, Permanent, after_failure, on_claim, retry_backoff,
};
use xlport_core::ports::{JobQueue, JobStore, Ports, TableError};

use crate::Deps;

/// Runs `handle` on each record of an SQS batch and reports the ones that
/// failed as batch item failures: SQS redelivers only those, and one bad
/// record never sends its neighbours back to the queue.
///
/// A failed record comes back after a backoff, not after the queue's
/// visibility timeout: its visibility is shortened (SQS
/// `ChangeMessageVisibility`) to the [`RetryAfter`] its error carries, or
/// else to [`retry_backoff`] of its receive count (issue #19).
pub async fn each_record<P, F, Fut>(
    deps: &Deps<P>,
    event: SqsEvent,
    mut handle: F,
) -> SqsBatchResponse
where
    P: Ports,
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
                deps.queue.retry_in(&arn, &receipt, retry_in).await;
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

impl DeadLetter {
    /// A record whose body is not `what` (a message xlport does not send):
    /// why, and the body's start (200 characters), for the operator.
    pub fn unreadable(what: &str, error: impl std::fmt::Display, body: &str) -> anyhow::Error {
        anyhow::anyhow!(DeadLetter(format!(
            "not {what} ({error}): {}",
            xlport_core::job::clip(body, 200)
        )))
    }
}

/// A worker function's `main`: telemetry, its deps from the environment
/// (built once per cold start), then every SQS batch the Lambda runtime
/// hands over through `handle`, whose answer is the batch's partial
/// response (`ReportBatchItemFailures`).
pub async fn serve_sqs<F>(handle: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Deps, SqsEvent) -> futures::future::BoxFuture<'static, SqsBatchResponse>,
{
    crate::telemetry::init();
    let deps = Deps::from_env().await?;
    let handle = &handle;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
            let batch = handle(deps.clone(), event.payload);
            async move { Ok::<_, lambda_runtime::Error>(batch.await) }
        },
    ))
    .await
}

/// A failure to try again after `after` (the job was handed back to the queue).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct RetryAfter {
    pub reason: String,
    pub after: Duration,
}

/// What a job's run reports when it finished: the job's final progress and
/// counts, which [`run_job`] records as it marks the job succeeded.
#[derive(Debug, Clone)]
pub struct Finished {
    pub rows: i64,
    pub bytes: i64,
    pub counts: serde_json::Value,
}

/// Claims job `id` for a worker of `what` ("import", "export") and carries
/// it through its lifecycle ([`xlport_core::lifecycle`]): `run` gets the
/// claimed job and the worker's lease name; its [`Finished`] marks the job
/// succeeded; its error fails the job ([`Permanent`], or the last attempt)
/// or hands it back to the queue with a backoff. The result is for
/// [`each_record`]: `Ok` acknowledges the message, [`RetryAfter`] brings it
/// back then, [`DeadLetter`] sends it on to the dead-letter queue.
pub async fn run_job<S, F, Fut>(
    store: &S,
    id: Uuid,
    what: &str,
    lease: Duration,
    run: F,
) -> anyhow::Result<()>
where
    S: JobStore,
    F: FnOnce(Job, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Finished>>,
{
    let worker = worker_id(what);
    let job = match on_claim(store.claim_job(id, &worker, lease).await?, what, lease) {
        OnClaim::Run(job) => *job,
        OnClaim::FailCrashLoop(job, reason) => {
            tracing::error!(job_id = %job.id, reason, "job failed");
            store.fail_job(job.id, &reason).await?;
            return Err(anyhow::anyhow!(DeadLetter(reason)));
        }
        OnClaim::Acknowledge(why) => {
            tracing::info!(job_id = %id, why, "nothing to do; message acknowledged");
            return Ok(());
        }
        OnClaim::DeadLetter(why) => return Err(anyhow::anyhow!(DeadLetter(why))),
        OnClaim::RetryAfter(after) => {
            return Err(anyhow::anyhow!(RetryAfter {
                reason: format!("the {what} {id} is running in another worker"),
                after,
            }));
        }
    };
    tracing::info!(job_id = %id, attempt = job.attempts, resume_after_part = job.parts_done, "{what} started");
    let attempt = job.attempts;
    // Boxed: a worker's job future is deep enough to trip rustc's layout
    // recursion limit.
    let error = match Box::pin(run(job, worker.clone())).await {
        Ok(done) => {
            if store
                .succeed_job(id, &worker, done.rows, done.bytes, &done.counts)
                .await?
            {
                return Ok(());
            }
            anyhow::anyhow!("the job was taken over or cancelled while it ran")
        }
        Err(e) => e,
    };
    match after_failure(is_permanent(&error), attempt) {
        AfterFailure::Fail => {
            let reason = format!("{error:#}");
            tracing::error!(job_id = %id, reason, "{what} failed");
            store.fail_job(id, &reason).await?;
            Err(anyhow::anyhow!(DeadLetter(format!(
                "the {what} {id} failed: {reason}"
            ))))
        }
        AfterFailure::Requeue { after } => {
            let reason = transient_reason(&error);
            if let Err(e) = store.requeue_job(id, &worker, &reason, after).await {
                return Err(anyhow::anyhow!(e).context(format!("requeueing after: {error:#}")));
            }
            Err(anyhow::anyhow!(RetryAfter {
                reason: format!("attempt {attempt} failed: {error:#}"),
                after,
            }))
        }
    }
}

/// Whether `error` is one no retry can fix.
pub fn is_permanent(error: &anyhow::Error) -> bool {
    error.downcast_ref::<Permanent>().is_some()
}

/// What a person is told of a transient failure: its kind, never the
/// internal text (which is logged).
pub fn transient_reason(error: &anyhow::Error) -> String {
    let kind = if error.chain().any(|e| {
        e.downcast_ref::<sqlx::Error>().is_some()
            || e.downcast_ref::<crate::postgres::DbError>().is_some()
            || matches!(
                e.downcast_ref::<TableError>(),
                Some(TableError::Unavailable(_) | TableError::LeaseLost)
            )
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

/// A lease owner name unique to this attempt.
pub fn worker_id(kind: &str) -> String {
    format!("{kind}/{}/{}", std::process::id(), Uuid::new_v4().simple())
}

/// A directory under the temp dir, removed however the job ends.
pub struct ScratchDir(pub std::path::PathBuf);

impl ScratchDir {
    pub fn create<P: Ports>(deps: &Deps<P>, kind: &str) -> std::io::Result<Self> {
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

/// Reports progress and renews the lease (`lease` long) about once a second
/// until the returned guard is dropped.
pub fn spawn_heartbeat<S>(
    store: &S,
    lease: Duration,
    job: Uuid,
    worker: &str,
    progress: Progress,
) -> Heartbeat
where
    S: JobStore + Clone + 'static,
{
    let (store, worker) = (store.clone(), worker.to_string());
    Heartbeat(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let rows = progress.rows.load(Ordering::Relaxed) as i64;
            let bytes = progress.bytes.load(Ordering::Relaxed) as i64;
            match store.heartbeat(job, &worker, lease, rows, bytes).await {
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

/// The lifecycle driver on the in-memory job store: claim, run, and each
/// outcome, as both workers go through it. No service runs.
#[cfg(test)]
mod tests {
    use serde_json::json;
    use xlport_core::job::{Claim, KeyId, NewJob};
    use xlport_core::lifecycle::MAX_ATTEMPTS;
    use xlport_core::ports::memory::MemoryJobStore;
    use xlport_core::{JobKind, JobState};

    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    async fn queued_export(store: &MemoryJobStore) -> Uuid {
        let job = store
            .create_job(NewJob {
                id: Uuid::new_v4(),
                owner: KeyId(Uuid::nil()),
                kind: JobKind::Export,
                dataset: "user_purchase".into(),
                state: JobState::Queued,
                format: Some("xlsx".into()),
                options: json!({}),
                filename: None,
                object_key: None,
                declared_size: None,
                upload_id: None,
            })
            .await
            .unwrap();
        job.id
    }

    fn finished() -> Finished {
        Finished {
            rows: 7,
            bytes: 700,
            counts: json!({"rows": 7}),
        }
    }

    async fn job(store: &MemoryJobStore, id: Uuid) -> Job {
        store.job(id).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_finished_run_succeeds_the_job_with_its_counts() {
        let store = MemoryJobStore::new();
        let id = queued_export(&store).await;
        run_job(&store, id, "export", LEASE, |job, worker| async move {
            assert_eq!(job.state, JobState::Running);
            assert_eq!(job.attempts, 1);
            assert!(worker.starts_with("export/"));
            Ok(finished())
        })
        .await
        .unwrap();
        let done = job(&store, id).await;
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!((done.rows_done, done.bytes_done), (7, 700));
        assert_eq!(done.counts, json!({"rows": 7}));
    }

    #[tokio::test]
    async fn a_permanent_failure_fails_the_job_and_dead_letters_its_message() {
        let store = MemoryJobStore::new();
        let id = queued_export(&store).await;
        let err = run_job(&store, id, "export", LEASE, |_, _| async {
            Err::<Finished, _>(anyhow::anyhow!(Permanent("the filter is wrong".into())))
        })
        .await
        .unwrap_err();
        assert!(err.downcast_ref::<DeadLetter>().is_some(), "{err:#}");
        let failed = job(&store, id).await;
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.error.as_deref(), Some("the filter is wrong"));
        // Its redelivery dead-letters again, and runs nothing.
        let err = run_job(&store, id, "export", LEASE, |_, _| async {
            panic!("a failed job never runs again")
        })
        .await
        .unwrap_err();
        assert!(err.downcast_ref::<DeadLetter>().is_some());
    }

    #[tokio::test]
    async fn a_transient_failure_requeues_with_a_backoff_until_the_last_attempt() {
        let store = MemoryJobStore::new();
        let id = queued_export(&store).await;
        for attempt in 1..MAX_ATTEMPTS {
            let err = run_job(&store, id, "export", LEASE, |_, _| async {
                Err::<Finished, _>(anyhow::anyhow!("connection reset by peer"))
            })
            .await
            .unwrap_err();
            let retry = err.downcast_ref::<RetryAfter>().expect("a retry");
            assert_eq!(retry.after, retry_backoff(attempt as u32));
            let queued = job(&store, id).await;
            assert_eq!(queued.state, JobState::Queued);
            assert_eq!(
                queued.last_error.as_deref(),
                Some("an unexpected error in the worker; it will be retried"),
                "internal text is logged, not stored"
            );
            assert!(queued.next_attempt_at.is_some());
        }
        let err = run_job(&store, id, "export", LEASE, |_, _| async {
            Err::<Finished, _>(anyhow::anyhow!("connection reset by peer"))
        })
        .await
        .unwrap_err();
        assert!(err.downcast_ref::<DeadLetter>().is_some(), "{err:#}");
        let failed = job(&store, id).await;
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.attempts, MAX_ATTEMPTS);
        // The history of attempts accumulates in the warnings.
        assert_eq!(
            failed.warnings,
            json!([
                "attempt 1 failed: an unexpected error in the worker; it will be retried",
                "attempt 2 failed: an unexpected error in the worker; it will be retried"
            ])
        );
    }

    #[tokio::test]
    async fn a_job_held_by_a_live_worker_comes_back_after_its_lease() {
        let store = MemoryJobStore::new();
        let id = queued_export(&store).await;
        store.claim_job(id, "other", LEASE).await.unwrap();
        let err = run_job(&store, id, "export", LEASE, |_, _| async {
            panic!("a busy job is not run twice")
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.downcast_ref::<RetryAfter>().expect("retry").after,
            LEASE
        );
        // Once that worker's lease lapses (it died), the job is taken over.
        store.expire_lease(id);
        run_job(&store, id, "export", LEASE, |job, _| async move {
            assert_eq!(job.attempts, 2);
            Ok(finished())
        })
        .await
        .unwrap();
        assert_eq!(job(&store, id).await.state, JobState::Succeeded);
    }

    #[tokio::test]
    async fn a_worker_that_lost_its_lease_mid_run_does_not_finish_the_job() {
        let store = MemoryJobStore::new();
        let id = queued_export(&store).await;
        let taken_over = store.clone();
        let err = run_job(&store, id, "export", LEASE, |_, _| async move {
            taken_over.expire_lease(id);
            let Claim::Claimed(_) = taken_over.claim_job(id, "new", LEASE).await.unwrap() else {
                panic!("the takeover");
            };
            Ok(finished())
        })
        .await
        .unwrap_err();
        assert!(err.downcast_ref::<RetryAfter>().is_some(), "{err:#}");
        let held = job(&store, id).await;
        assert_eq!(held.state, JobState::Running, "still the new worker's");
        assert_eq!(held.rows_done, 0);
    }

    #[tokio::test]
    async fn a_job_that_keeps_killing_its_worker_fails_instead_of_a_new_attempt() {
        let store = MemoryJobStore::new();
        let id = queued_export(&store).await;
        for _ in 0..MAX_ATTEMPTS {
            // Each attempt dies without a word: its lease lapses.
            store.claim_job(id, "doomed", LEASE).await.unwrap();
            store.expire_lease(id);
        }
        let err = run_job(&store, id, "export", LEASE, |_, _| async {
            panic!("no attempt after the crash loop")
        })
        .await
        .unwrap_err();
        assert!(err.downcast_ref::<DeadLetter>().is_some());
        let failed = job(&store, id).await;
        assert_eq!(failed.state, JobState::Failed);
        assert!(
            failed
                .error
                .unwrap()
                .starts_with("the export was started 3 times without finishing")
        );
    }

    #[tokio::test]
    async fn redeliveries_of_finished_or_missing_jobs_are_acknowledged_without_a_run() {
        let store = MemoryJobStore::new();
        let id = queued_export(&store).await;
        run_job(&store, id, "export", LEASE, |_, _| async { Ok(finished()) })
            .await
            .unwrap();
        for id in [id, Uuid::new_v4()] {
            run_job(&store, id, "export", LEASE, |_, _| async {
                panic!("nothing to run")
            })
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn the_heartbeat_reports_progress_and_stops_with_its_guard() {
        let store = MemoryJobStore::new();
        let id = queued_export(&store).await;
        store.claim_job(id, "w", LEASE).await.unwrap();
        let progress = Progress::default();
        progress.rows.store(42, Ordering::Relaxed);
        progress.bytes.store(4200, Ordering::Relaxed);
        let heartbeat = spawn_heartbeat(&store, LEASE, id, "w", progress.clone());
        // The first tick is immediate.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while job(&store, id).await.rows_done != 42 {
            assert!(std::time::Instant::now() < deadline, "no heartbeat");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(job(&store, id).await.bytes_done, 4200);
        drop(heartbeat);
        progress.rows.store(99, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(
            job(&store, id).await.rows_done,
            42,
            "a dropped guard stops the heartbeat"
        );
    }
}
