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

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;
use xlport_core::lifecycle::Step;
use xlport_core::message::{ExportRequested, object_created_notification};
use xlport_core::ports::{JobQueue, JobStore, ObjectStore, StoreError};

use crate::Deps;

/// A job that has waited longer than the bound.
#[derive(Debug, Clone, FromRow)]
struct Stalled {
    id: Uuid,
    kind: String,
    state: String,
    object_key: Option<String>,
    object_size: Option<i64>,
    etag: Option<String>,
    waiting_since: DateTime<Utc>,
}

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

/// An import awaiting an upload whose URLs have expired.
#[derive(Debug, Clone, FromRow)]
struct Unfinished {
    id: Uuid,
    object_key: Option<String>,
    upload_id: Option<String>,
}

/// At most this many jobs are looked at per sweep, oldest first.
const BATCH: i64 = 100;

/// Re-drives every job that has waited for a worker longer than `stall`.
pub async fn sweep(deps: &Deps, stall: Duration) -> anyhow::Result<Swept> {
    let stalled: Vec<Stalled> = sqlx::query_as(
        "select id, kind, state, object_key, object_size, etag, \
                coalesce(greatest(updated_at, next_attempt_at), updated_at) as waiting_since \
         from jobs \
         where (state = 'queued' and coalesce(greatest(updated_at, next_attempt_at), updated_at) \
                    < now() - make_interval(secs => $1)) \
            or (state = 'running' and lease_until < now() - make_interval(secs => $1)) \
            or (state = 'awaiting_upload' and kind = 'import' \
                and updated_at < now() - make_interval(secs => $1) \
                and updated_at > now() - make_interval(secs => $3)) \
         order by updated_at limit $2",
    )
    .bind(stall.as_secs_f64())
    .bind(BATCH)
    .bind(upload_window_secs(&deps.config))
    .fetch_all(&deps.jobs.pool)
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
                sqlx::query(
                    "update jobs set warnings = warnings || jsonb_build_array($2::text), updated_at = now() \
                     where id = $1 and state = $3",
                )
                .bind(job.id)
                .bind(note)
                .bind(&job.state)
                .execute(&deps.jobs.pool)
                .await?;
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
fn upload_window_secs(config: &crate::Config) -> f64 {
    config.upload_url_ttl.as_secs_f64() + 60.0
}

/// Fails the imports whose upload URLs expired before their file arrived,
/// and aborts their multipart uploads. One whose file is in the bucket after
/// all (its event was lost) is sent to the workers instead.
async fn expire_uploads(deps: &Deps, swept: &mut Swept) -> anyhow::Result<()> {
    let ttl = upload_window_secs(&deps.config);
    let unfinished: Vec<Unfinished> = sqlx::query_as(
        "select id, object_key, upload_id from jobs \
         where state = any($3) and kind = 'import' \
           and updated_at < now() - make_interval(secs => $1) \
         order by updated_at limit $2",
    )
    .bind(ttl)
    .bind(BATCH)
    .bind(Step::ExpireUpload.from_names())
    .fetch_all(&deps.jobs.pool)
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
async fn redrive(deps: &Deps, job: &Stalled) -> anyhow::Result<bool> {
    if job.kind == "export" {
        let body = serde_json::to_string(&ExportRequested { job_id: job.id })?;
        deps.queue
            .send(&deps.config.exports_queue_url, body)
            .await?;
        return Ok(true);
    }
    let Some(key) = &job.object_key else {
        return Ok(false);
    };
    let (size, etag) = match (job.state.as_str(), job.object_size, &job.etag) {
        ("queued" | "running", Some(size), Some(etag)) => (size.max(0) as u64, etag.clone()),
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
async fn send_object_event(deps: &Deps, key: &str, size: u64, etag: &str) -> anyhow::Result<()> {
    let body = object_created_notification(&deps.config.bucket, key, size, etag);
    deps.queue
        .send(&deps.config.imports_queue_url, body)
        .await?;
    Ok(())
}
