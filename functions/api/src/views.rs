//! Core's models as the contract's views (`xlport_contract`): what the CLI,
//! the browser page and curl users read (docs/api.md, docs/openapi.json).

use serde_json::Value;
use xlport_contract::{
    ColumnView, DatasetView, ExportFormat, FlagView, JobCounts, JobOptions, JobView, ObjectView,
    PartView, Progress,
};
use xlport_core::job::{Job, PartStatus, keys};
use xlport_core::ports::{JobStore, ObjectStore, Ports};
use xlport_core::{Dataset, JobKind, JobState};

use crate::{ApiError, App};

pub fn dataset(d: &Dataset) -> DatasetView {
    DatasetView {
        name: d.name.clone(),
        title: d.title.clone(),
        key: d.key.clone(),
        columns: d
            .columns
            .iter()
            .map(|c| ColumnView {
                name: c.name.clone(),
                header: c.header.clone(),
                aliases: c.aliases.clone(),
                kind: c.kind,
                nullable: c.nullable,
                filterable: c.filterable,
            })
            .collect(),
        flags: d
            .validity_columns()
            .map(|(_, name, header)| FlagView {
                name: name.to_string(),
                header: header.to_string(),
            })
            .collect(),
    }
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

/// A stored JSON object (a job's `options` or `counts`) as the contract's
/// type `T`, which reads any object; anything else is a fault of xlport's.
fn stored<T: serde::de::DeserializeOwned>(job: &Job, what: &str, v: &Value) -> Result<T, ApiError> {
    T::deserialize(v).map_err(|e| ApiError::Internal(format!("job {}: its {what}: {e}", job.id)))
}

/// Warnings as stored: strings (a value of another kind, which xlport does
/// not write, is shown as its JSON text).
fn warnings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_string))
        .collect()
}

fn part(p: PartStatus) -> PartView {
    PartView {
        part_no: p.part_no,
        state: p.state,
        first_sheet: p.first_sheet,
        first_row: p.first_row,
        last_sheet: p.last_sheet,
        last_row: p.last_row,
        rows_read: p.rows_read,
        inserted: p.inserted,
        updated: p.updated,
        rejected: p.rejected,
        counts: xlport_contract::ImportCounts::from_json(&p.counts),
        error: p.error,
    }
}

/// A job as the API returns it. `with_links` presigns download links, which
/// costs a signature each, so lists leave them out.
pub async fn job<P: Ports>(job: &Job, app: &App<P>, with_links: bool) -> Result<JobView, ApiError> {
    let format = match job.format.as_deref() {
        None => None,
        Some(name) => Some(ExportFormat::parse(name).ok_or_else(|| {
            ApiError::Internal(format!("job {}: unknown format {name:?}", job.id))
        })?),
    };
    let mut v = JobView {
        id: job.id,
        kind: job.kind,
        dataset: job.dataset.clone(),
        state: job.state,
        format,
        options: stored::<JobOptions>(job, "options", &job.options)?,
        filename: job.filename.clone(),
        progress: Progress {
            rows: job.rows_done,
            bytes: job.bytes_done,
            parts_done: job.parts_done,
            parts_total: job.parts_total,
        },
        counts: stored::<JobCounts>(job, "counts", &job.counts)?,
        warnings: warnings(&job.warnings),
        error: job.error.clone(),
        object: ObjectView {
            key: job.object_key.clone(),
            declared_size: job.declared_size,
            size: job.object_size,
            etag: job.etag.clone(),
        },
        attempts: job.attempts,
        // After a transient failure: why (for people) and when the next
        // attempt is due.
        last_error: job.last_error.clone(),
        next_attempt_at: job.next_attempt_at,
        waiting_for_worker_since: waiting_for_worker_since(job),
        created_at: job.created_at,
        updated_at: job.updated_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        status_url: format!("/jobs/{}", job.id),
        parts: None,
        download_url: None,
        error_report_url: None,
    };
    if with_links && job.kind == JobKind::Import {
        let parts = app
            .jobs
            .job_parts(job.id)
            .await
            .map_err(ApiError::job_store)?;
        v.parts = Some(parts.into_iter().map(part).collect());
    }
    if !with_links || job.state != JobState::Succeeded {
        return Ok(v);
    }
    let ttl = app.config.download_url_ttl;
    match job.kind {
        JobKind::Export => {
            if let (Some(key), Some(name)) = (&job.result_key, &job.filename) {
                v.download_url = Some(app.objects.presign_get(key, name, ttl).await?.url);
            }
        }
        JobKind::Import => {
            if v.counts.import().rejected > 0 {
                let name = format!("{}-errors.xlsx", job.id);
                v.error_report_url = Some(
                    app.objects
                        .presign_get(&keys::error_report(job.id), &name, ttl)
                        .await?
                        .url,
                );
            }
        }
    }
    Ok(v)
}
