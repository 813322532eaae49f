//! The ports on the dataset tables: what an export reads ([`RowSource`]) and
//! what an import writes ([`ImportTarget`]). Postgres implements both in the
//! adapters crate (`COPY ... TO STDOUT`, and COPY into staging then a merge
//! per conflict policy); [`super::memory::MemoryTables`] implements them on
//! maps, so both workers' pipelines run in tests with no service.

use std::future::Future;

use bytes::Bytes;
use uuid::Uuid;

use crate::Dataset;
use crate::export::Condition;
use crate::import::{ConflictPolicy, ImportCounts, Part, RejectedRow};

/// What a table port fails with, told apart the way a worker needs.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The statement failed on the data itself (Postgres SQLSTATE class 22,
    /// "data exception": a value out of range, a bad date): every retry
    /// would fail the same way, so the job fails now.
    #[error("{0}")]
    Data(String),
    /// The job is no longer this worker's: cancelled, or its lease lapsed
    /// and another worker took it over. The part was not recorded.
    #[error("the job was cancelled or taken over by another worker")]
    LeaseLost,
    /// An outage or a fault (connection lost, a statement refused): worth
    /// another attempt.
    #[error("{0}")]
    Unavailable(String),
}

/// Rows of a dataset's table, for exports.
pub trait RowSource: Send + Sync {
    /// Streams the rows of `dataset` that meet every one of `conditions`, in
    /// key order, as Postgres COPY text (`stored_columns` order, one row a
    /// line, `\N` for null; PostgreSQL docs, "COPY", Text Format) into `out`
    /// in chunks of about `chunk_bytes` (a chunk may end mid-row). Returns
    /// the bytes sent. A closed `out` ends the stream early without error:
    /// the reader stopped and its own error says why.
    fn copy_out(
        &self,
        dataset: &Dataset,
        conditions: &[Condition],
        chunk_bytes: usize,
        out: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> impl Future<Output = Result<u64, TableError>> + Send;
}

/// What an import's loader needs to start: whose job, on what, from where.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub job: Uuid,
    /// The lease holder: a part is recorded only while it still holds the job.
    pub worker: String,
    pub dataset: Dataset,
    pub policy: ConflictPolicy,
    /// Load every part, record its counts and rejections, and roll the
    /// table's changes back at the end (see [`ImportSession::finish`]).
    pub dry_run: bool,
    /// The job's totals after the parts already committed (a resumed
    /// import), which each part adds to.
    pub totals: ImportCounts,
    /// The uploaded object's size in bytes: the job's `bytes_done` once a
    /// part is loaded.
    pub object_size: i64,
}

/// A rejected row as stored, for the error report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRejection {
    /// The row's position among the file's data rows: orders the report.
    pub ord: i64,
    pub sheet: Option<String>,
    pub row_number: i64,
    pub reason: String,
    pub message: String,
    /// [`crate::report::StoredCell`]s by field index, as JSON.
    pub cells: serde_json::Value,
    pub failed_field: Option<i32>,
    pub record: Option<String>,
}

impl StoredRejection {
    /// A rejected row as the store keeps it: the same fields, with the
    /// cells as JSON.
    pub fn of(row: &RejectedRow) -> Self {
        StoredRejection {
            ord: i64::try_from(row.ord).unwrap_or(i64::MAX),
            sheet: row.sheet.clone(),
            row_number: i64::try_from(row.row_number).unwrap_or(i64::MAX),
            reason: row.reason.as_str().to_string(),
            message: row.message.clone(),
            cells: serde_json::to_value(&row.cells).unwrap_or_default(),
            failed_field: row.failed_field.and_then(|f| i32::try_from(f).ok()),
            record: row.record.clone(),
        }
    }
}

/// What the error report needs to know before its first row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportShape {
    /// The file's header by field index (see `decode::FileInfo::header`).
    pub header: Vec<String>,
    /// The most fields any rejected row holds.
    pub max_fields: usize,
    /// Whether any rejected row keeps only its record.
    pub has_records: bool,
}

/// Where an import's parts land: the dataset's table, with each part's
/// counts and rejected rows recorded in the same transaction, so a retried
/// import resumes after the last committed part and ends as one clean run
/// would (spec "Import", docs/spec/user_purchase.md).
pub trait ImportTarget: Send + Sync {
    /// One import's loading, part by part.
    type Session<'a>: ImportSession + 'a
    where
        Self: 'a;

    /// Starts loading: a dry run holds one transaction on the table open
    /// until [`ImportSession::finish`].
    fn begin(
        &self,
        spec: LoadSpec,
    ) -> impl Future<Output = Result<Self::Session<'_>, TableError>> + Send;

    /// Records the file's header (bounded by the decoder) for the report.
    fn set_source_header(
        &self,
        job: Uuid,
        header: &[String],
    ) -> impl Future<Output = Result<(), TableError>> + Send;

    /// Forgets the parts, rejections and counts of an attempt that wrote
    /// nothing durable (a dry run), so the retry starts from the top. Only
    /// for `worker`, the lease holder.
    fn reset_progress(
        &self,
        job: Uuid,
        worker: &str,
    ) -> impl Future<Output = Result<(), TableError>> + Send;

    /// The report's layout: the file's header and the widest rejected row.
    fn report_shape(
        &self,
        job: Uuid,
    ) -> impl Future<Output = Result<ReportShape, TableError>> + Send;

    /// Rejected rows of a job in file order, a page of at most `limit`
    /// after position `after_ord` (-1 for the first page): the report pages
    /// through them so memory stays flat.
    fn rejections_page(
        &self,
        job: Uuid,
        after_ord: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StoredRejection>, TableError>> + Send;
}

/// One import's loading (see [`ImportTarget::begin`]).
pub trait ImportSession: Send {
    /// Merges `part` into the table per the conflict policy and records, in
    /// one transaction: the part's counts, its rejected rows (those the
    /// decoder rejected and the duplicates the policy rejects), and the
    /// job's new totals and progress. Returns the part's final counts.
    /// [`TableError::LeaseLost`] when the job is no longer this worker's
    /// (nothing of the part is then recorded).
    fn load_part(
        &mut self,
        part: Part,
    ) -> impl Future<Output = Result<ImportCounts, TableError>> + Send;

    /// The job's totals so far (those of [`LoadSpec::totals`] plus every
    /// part loaded).
    fn totals(&self) -> &ImportCounts;

    /// Ends loading: a dry run's changes to the table are rolled back here
    /// (its counts and rejections stay recorded).
    fn finish(self) -> impl Future<Output = Result<(), TableError>> + Send;
}
