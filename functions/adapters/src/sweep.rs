//! Stalled jobs are noticed and sent again (issue #19).
//!
//! A job can wait for a worker that never comes: an S3 event lost on the
//! way, a message handed to a poller that died (a restarted local stack), an
//! invocation the local runtime lost, a worker that died after its message
//! was deleted. A sweep finds jobs that have waited longer than a bound and
//! re-drives them: an import whose object is in the bucket gets its S3 event
//! again, a queued export its message; a running job whose lease lapsed is
//! sent again too (the claim takes lapsed leases over). Each re-drive is
//! said in the job's warnings. Re-driving is safe: claims are atomic and
//! every message is idempotent.
//!
//! An import whose file has not arrived when its upload URLs have expired
//! (`XLPORT_UPLOAD_URL_TTL_SECS` after they were last handed out, plus a
//! minute for a PUT still in flight) is failed with a reason, and its
//! multipart upload aborted, so nothing waits forever and no parts are left
//! in the bucket (issue #15).
//!
//! Run by `xlport-admin sweep` (on AWS: a schedule, see infra/) and every few
//! seconds by the local event-source mapping.

use std::time::Duration;

use uuid::Uuid;
use xlport_core::JobKind;
use xlport_core::job::Stalled;
use xlport_core::message::{ExportRequested, object_created_notification};
use xlport_core::ports::{JobQueue, JobStore, ObjectStore, Ports, StoreError};

use crate::Deps;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    /// Jobs sent again.
    pub redriven: Vec<Uuid>,
    /// Imports still awaiting an upload that has not arrived.
    pub awaiting_upload: usize,
    /// Imports failed because their upload URLs expired with no file.
    pub expired: Vec<Uuid>,
}

/// At most this many jobs are looked at per sweep, oldest first.
const BATCH: i64 = 100;

/// Re-drives every job that has waited for a worker longer than `stall`.
pub async fn sweep<P: Ports>(deps: &Deps<P>, stall: Duration) -> anyhow::Result<Swept> {
    let stalled = deps
        .jobs
        .stalled_jobs(stall, upload_window(&deps.config), BATCH)
        .await?;
    let mut swept = Swept::default();
    expire_uploads(deps, &mut swept).await?;
    for job in stalled {
        match redrive(deps, &job).await {
            Ok(true) => {
                let note = format!(
                    "no worker had taken the job since {}; it was sent to the workers again",
                    job.waiting_since.format("%Y-%m-%dT%H:%M:%SZ")
                );
                tracing::warn!(job_id = %job.id, state = %job.state, "stalled job re-driven");
                // updated_at moves on, so the next sweep waits a whole bound again.
                deps.jobs.note_redrive(job.id, job.state, &note).await?;
                swept.redriven.push(job.id);
            }
            Ok(false) => swept.awaiting_upload += 1,
            Err(e) => {
                tracing::warn!(job_id = %job.id, error = format!("{e:#}"), "could not re-drive a stalled job")
            }
        }
    }
    Ok(swept)
}

/// How long after its last upload URLs were handed out a file can still
/// arrive, in seconds: their lifetime, plus a minute for a PUT that started
/// just before they expired.
fn upload_window(config: &crate::Config) -> Duration {
    config.upload_url_ttl + Duration::from_secs(60)
}

/// Fails the imports whose upload URLs expired before their file arrived,
/// and aborts their multipart uploads. One whose file is in the bucket after
/// all (its event was lost) is sent to the workers instead.
async fn expire_uploads<P: Ports>(deps: &Deps<P>, swept: &mut Swept) -> anyhow::Result<()> {
    let unfinished = deps
        .jobs
        .expired_uploads(upload_window(&deps.config), BATCH)
        .await?;
    for job in unfinished {
        let Some(key) = &job.object_key else {
            continue;
        };
        match deps.objects.head(key).await {
            Ok(meta) => {
                send_object_event(deps, key, meta.size, &meta.etag).await?;
                swept.redriven.push(job.id);
                continue;
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(job_id = %job.id, error = %e, "could not look for an expired upload");
                continue;
            }
        }
        if let Some(upload_id) = &job.upload_id
            && let Err(e) = deps.objects.abort_multipart_upload(key, upload_id).await
        {
            tracing::warn!(job_id = %job.id, error = %e, "could not abort an expired multipart upload");
        }
        let reason = format!(
            "the file did not arrive while its upload URLs were valid ({} s after they were \
             handed out); nothing was imported: start a new import",
            deps.config.upload_url_ttl.as_secs()
        );
        // Only while it still awaits its upload: a file that arrived since
        // the query above is imported, not failed.
        if deps.jobs.expire_upload(job.id, &reason).await? {
            tracing::warn!(job_id = %job.id, "upload expired");
            swept.expired.push(job.id);
        }
    }
    Ok(())
}

/// Sends the job's message again. `false`: an import whose object has not
/// arrived (nothing to do yet).
async fn redrive<P: Ports>(deps: &Deps<P>, job: &Stalled) -> anyhow::Result<bool> {
    if job.kind == JobKind::Export {
        let body = serde_json::to_string(&ExportRequested { job_id: job.id })?;
        deps.queue
            .send(&deps.config.exports_queue_url, body)
            .await?;
        return Ok(true);
    }
    let Some(key) = &job.object_key else {
        return Ok(false);
    };
    use xlport_core::JobState::{Queued, Running};
    let (size, etag) = match (job.state, job.object_size, &job.etag) {
        (Queued | Running, Some(size), Some(etag)) => (size.max(0) as u64, etag.clone()),
        // Awaiting its upload: only if the object is there.
        _ => match deps.objects.head(key).await {
            Ok(meta) => (meta.size, meta.etag),
            Err(StoreError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        },
    };
    send_object_event(deps, key, size, &etag).await?;
    Ok(true)
}

/// Sends the S3 `ObjectCreated` notification of `key` to the imports queue
/// again, as S3 would have.
async fn send_object_event<P: Ports>(
    deps: &Deps<P>,
    key: &str,
    size: u64,
    etag: &str,
) -> anyhow::Result<()> {
    let body = object_created_notification(&deps.config.bucket, key, size, etag);
    deps.queue
        .send(&deps.config.imports_queue_url, body)
        .await?;
    Ok(())
}

/// The sweep on the in-memory ports: what it re-drives, expires and leaves.
#[cfg(test)]
mod tests {
    use serde_json::json;
    use xlport_core::JobState;
    use xlport_core::message::{ImportNotification, parse_import_notification};
    use xlport_core::ports::memory::InMemory;

    use super::*;
    use crate::testing::{self, export_job, import_job, job};

    const STALL: Duration = Duration::from_secs(60);

    fn sent_keys(deps: &Deps<InMemory>) -> Vec<String> {
        deps.queue
            .sent(&deps.config.imports_queue_url)
            .iter()
            .filter_map(|body| match parse_import_notification(body) {
                Ok(ImportNotification::Objects(objects)) => {
                    Some(objects.into_iter().map(|o| o.key).collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[tokio::test]
    async fn a_queued_export_nobody_took_is_sent_again_and_says_so() {
        let deps = testing::deps(&[]);
        let fresh = export_job(&deps, "user_purchase", "csv", json!({})).await;
        let old = export_job(&deps, "user_purchase", "csv", json!({})).await;
        deps.jobs.age(old, Duration::from_secs(3600));
        let swept = sweep(&deps, STALL).await.unwrap();
        assert_eq!(swept.redriven, [old]);
        let sent = deps.queue.sent(&deps.config.exports_queue_url);
        assert_eq!(sent, [json!({ "job_id": old }).to_string()]);
        let noted = job(&deps, old).await;
        assert!(
            noted.warnings[0]
                .as_str()
                .unwrap()
                .contains("it was sent to the workers again"),
            "{}",
            noted.warnings
        );
        // Its wait starts over: the next sweep leaves it alone, and the fresh one too.
        assert!(sweep(&deps, STALL).await.unwrap().redriven.is_empty());
        assert_eq!(job(&deps, fresh).await.warnings, json!([]));
    }

    #[tokio::test]
    async fn a_running_job_whose_lease_lapsed_is_sent_again() {
        let deps = testing::deps(&[]);
        let id = export_job(&deps, "user_purchase", "xlsx", json!({})).await;
        deps.jobs
            .claim_job(id, "dead", Duration::from_secs(30))
            .await
            .unwrap();
        assert!(
            sweep(&deps, STALL).await.unwrap().redriven.is_empty(),
            "lease still live"
        );
        deps.jobs.age(id, Duration::from_secs(3600));
        assert_eq!(sweep(&deps, STALL).await.unwrap().redriven, [id]);
    }

    #[tokio::test]
    async fn an_upload_that_arrived_with_its_event_lost_gets_its_event_again() {
        let deps = testing::deps(&[]);
        let (arrived, key) = import_job(&deps, "user_purchase", "a.csv", 3, json!({})).await;
        deps.objects.put(&key, b"abc");
        let (waiting, _) = import_job(&deps, "user_purchase", "w.csv", 3, json!({})).await;
        deps.jobs.age(arrived, Duration::from_secs(120));
        deps.jobs.age(waiting, Duration::from_secs(120));
        let swept = sweep(&deps, STALL).await.unwrap();
        assert_eq!(swept.redriven, [arrived]);
        assert_eq!(swept.awaiting_upload, 1, "the other may still come");
        assert_eq!(sent_keys(&deps), [key]);
        assert_eq!(job(&deps, waiting).await.state, JobState::AwaitingUpload);
    }

    #[tokio::test]
    async fn an_upload_whose_urls_expired_fails_and_frees_its_parts() {
        let deps = testing::deps(&[("XLPORT_UPLOAD_URL_TTL_SECS", "60")]);
        let id = uuid::Uuid::new_v4();
        let key = xlport_core::job::keys::import(id, "big.csv");
        let upload = deps
            .objects
            .create_multipart_upload(&key, "text/csv", None)
            .await
            .unwrap();
        deps.objects.put_part(&upload, 1, b"part one");
        deps.jobs
            .create_job(xlport_core::job::NewJob {
                id,
                owner: xlport_core::job::KeyId(uuid::Uuid::nil()),
                kind: JobKind::Import,
                dataset: "user_purchase".into(),
                state: JobState::AwaitingUpload,
                format: None,
                options: json!({}),
                filename: Some("big.csv".into()),
                object_key: Some(key.clone()),
                declared_size: Some(6 << 20),
                upload_id: Some(upload.clone()),
            })
            .await
            .unwrap();
        deps.jobs.age(id, Duration::from_secs(121));
        let swept = sweep(&deps, STALL).await.unwrap();
        assert_eq!(swept.expired, [id]);
        let failed = job(&deps, id).await;
        assert_eq!(failed.state, JobState::Failed);
        assert!(
            failed
                .error
                .unwrap()
                .contains("did not arrive while its upload URLs were valid")
        );
        assert_eq!(deps.objects.uploads_in_progress(), 0, "its parts are gone");
        assert!(
            sweep(&deps, STALL).await.unwrap().expired.is_empty(),
            "once"
        );
    }
}
