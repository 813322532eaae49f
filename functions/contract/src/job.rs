//! A job as the API shows it: `GET /jobs`, `GET /jobs/{id}` and the answers
//! of the routes that create or change one. docs/api.md, "The job".

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::counts::{ImportCounts, JobCounts};
use crate::names::{ExportFormat, JobKind, JobState};
use crate::options::JobOptions;

/// A job. Every field is always there (`null` when unknown) except the
/// links and `parts`, which only `GET /jobs/{id}` adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// The job's id (also in `status_url`).
    pub id: Uuid,
    /// Import or export.
    pub kind: JobKind,
    /// The dataset's name.
    pub dataset: String,
    /// Where it stands; `succeeded`, `failed` and `cancelled` are final.
    pub state: JobState,
    /// An export's file format; `null` for an import (whose format the
    /// worker reads from the file: `counts.format`).
    #[schema(required = true)]
    pub format: Option<ExportFormat>,
    /// What was asked for.
    pub options: JobOptions,
    /// An import's file name as uploaded; an export's file name.
    #[schema(required = true)]
    pub filename: Option<String>,
    /// How far it has come (the workers' heartbeats update it).
    pub progress: Progress,
    /// `{}` until the job succeeds.
    pub counts: JobCounts,
    /// For people: columns ignored, duplicate headers, earlier attempts that
    /// failed... (at most 20 per step, each at most 500 characters).
    pub warnings: Vec<String>,
    /// Why the job failed, and what to do.
    #[schema(required = true)]
    pub error: Option<String>,
    /// The import's uploaded file.
    pub object: ObjectView,
    /// Attempts a worker has started.
    pub attempts: i32,
    /// After a transient failure: why, for people.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// After a transient failure: when the next attempt is due.
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When a queued job began waiting for a worker, once it has waited more
    /// than 10 s (the sweep sends stalled jobs again).
    #[schema(required = true)]
    pub waiting_for_worker_since: Option<DateTime<Utc>>,
    /// When the job was created (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// When the job last changed.
    pub updated_at: DateTime<Utc>,
    /// When a worker first took it.
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// `/jobs/{id}`, relative to the API.
    pub status_url: String,
    /// An import's parts (`GET /jobs/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<PartView>>,
    /// A succeeded export's file, a presigned GET that downloads it under
    /// its name (`GET /jobs/{id}` only; valid `XLPORT_DOWNLOAD_URL_TTL_SECS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// A succeeded import's report of rejected rows (xlsx), when rows were
    /// rejected (`GET /jobs/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_report_url: Option<String>,
}

/// How far a job has come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Rows read (import) or written (export) so far.
    pub rows: i64,
    /// Bytes of the file read (import) so far.
    pub bytes: i64,
    /// An import's parts committed.
    pub parts_done: i32,
    /// An import's parts in all, once known.
    #[schema(required = true)]
    pub parts_total: Option<i32>,
}

/// An import's file in the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ObjectView {
    /// The bucket key (`imports/{id}/{name}`).
    #[schema(required = true)]
    pub key: Option<String>,
    /// Bytes, as `POST /imports` declared.
    #[schema(required = true)]
    pub declared_size: Option<i64>,
    /// Bytes, as S3 reported the file that arrived.
    #[schema(required = true)]
    pub size: Option<i64>,
    /// The ETag of the file that arrived; the worker reads that version only.
    #[schema(required = true)]
    pub etag: Option<String>,
}

/// One part of an import: a block of up to 10,000 data rows committed (or
/// failed) together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartView {
    /// 1-based.
    pub part_no: i32,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// Workbooks only: the sheet of the part's first row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sheet: Option<String>,
    /// The sheet row (or line) of the part's first row.
    #[schema(required = true)]
    pub first_row: Option<i64>,
    /// Workbooks only: the sheet of the part's last row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sheet: Option<String>,
    /// The sheet row (or line) of the part's last row.
    #[schema(required = true)]
    pub last_row: Option<i64>,
    /// Data rows read.
    pub rows_read: i32,
    /// Rows added to the table.
    pub inserted: i32,
    /// Rows that replaced one with the same key.
    pub updated: i32,
    /// Rows refused.
    pub rejected: i32,
    /// The part's counters (`{}` stored reads as zeros).
    pub counts: ImportCounts,
    /// Why the part failed.
    #[schema(required = true)]
    pub error: Option<String>,
}
