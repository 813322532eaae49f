//! The JSON shapes clients see. Kept in one place so the CLI, the browser page
//! and curl users read the same contract (see docs/api.md).

use serde_json::{Value, json};
use xlport_core::job::{Job, keys};
use xlport_core::ports::{JobStore, ObjectStore, Ports};
use xlport_core::{Dataset, JobKind, JobState};

use crate::{ApiError, App};

pub fn dataset(d: &Dataset) -> Value {
    json!({
        "name": d.name,
        "title": d.title,
        "key": d.key,
        "columns": d.columns.iter().map(|c| json!({
            "name": c.name,
            "header": c.header,
            "aliases": c.aliases,
            "type": c.kind,
            "nullable": c.nullable,
            "filterable": c.filterable,
        })).collect::<Vec<_>>(),
        "flags": d.validity_columns().map(|(_, name, header)| json!({"name": name, "header": header})).collect::<Vec<_>>(),
    })
}

/// When a queued job started waiting for a worker, once it has waited long
/// enough to say so (a sweep sends stalled jobs again; see
/// `xlport_adapters::sweep`).
fn waiting_for_worker_since(job: &Job) -> Option<chrono::DateTime<chrono::Utc>> {
    if job.state != JobState::Queued {
        return None;
    }
    let since = job
        .next_attempt_at
        .map_or(job.updated_at, |at| at.max(job.updated_at));
    (chrono::Utc::now() - since > chrono::Duration::seconds(10)).then_some(since)
}

/// A job as the API returns it. `with_links` presigns download links, which
/// costs a signature each, so lists leave them out.
pub async fn job<P: Ports>(job: &Job, app: &App<P>, with_links: bool) -> Result<Value, ApiError> {
    let mut v = json!({
        "id": job.id,
        "kind": job.kind,
        "dataset": job.dataset,
        "state": job.state,
        "format": job.format,
        "options": job.options,
        "filename": job.filename,
        "progress": {
            "rows": job.rows_done,
            "bytes": job.bytes_done,
            "parts_done": job.parts_done,
            "parts_total": job.parts_total,
        },
        "counts": job.counts,
        "warnings": job.warnings,
        "error": job.error,
        "object": {
            "key": job.object_key,
            "declared_size": job.declared_size,
            "size": job.object_size,
            "etag": job.etag,
        },
        "attempts": job.attempts,
        // After a transient failure: why (for people) and when the next
        // attempt is due.
        "last_error": job.last_error,
        "next_attempt_at": job.next_attempt_at,
        "waiting_for_worker_since": waiting_for_worker_since(job),
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "status_url": format!("/jobs/{}", job.id),
    });
    if with_links && job.kind == JobKind::Import {
        v["parts"] = serde_json::to_value(
            app.jobs
                .job_parts(job.id)
                .await
                .map_err(ApiError::job_store)?,
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    if !with_links || job.state != JobState::Succeeded {
        return Ok(v);
    }
    let ttl = app.config.download_url_ttl;
    match job.kind {
        JobKind::Export => {
            if let (Some(key), Some(name)) = (&job.result_key, &job.filename) {
                v["download_url"] = json!(app.objects.presign_get(key, name, ttl).await?.url);
            }
        }
        JobKind::Import => {
            let rejected = job
                .counts
                .get("rejected")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if rejected > 0 {
                let name = format!("{}-errors.xlsx", job.id);
                v["error_report_url"] = json!(
                    app.objects
                        .presign_get(&keys::error_report(job.id), &name, ttl)
                        .await?
                        .url
                );
            }
        }
    }
    Ok(v)
}
