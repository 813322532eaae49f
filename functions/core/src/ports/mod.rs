//! Ports: what the api and the workers need from the outside world, as
//! small traits. The adapters crate implements them on Postgres, S3 and SQS;
//! [`memory`] implements them in memory, for tests that need no service.

pub mod memory;
pub mod tables;

pub use tables::{
    ImportSession, ImportTarget, LoadSpec, ReportShape, RowSource, StoredRejection, TableError,
};

use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use crate::job::{
    Caller, Claim, ExpiredUpload, Job, KeyId, NewJob, PartStatus, Stalled, UploadOutcome,
};

/// What a storage call failed with, in terms the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object not found: {0}")]
    NotFound(String),
    /// The object is no longer the version that was checked: a read with
    /// `If-Match` on the recorded ETag was refused (HTTP 412, RFC 9110 §13.1.1).
    #[error("object changed since it was checked: {0}")]
    Changed(String),
    #[error("{0}")]
    Other(String),
}

/// An object as the bucket reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// The ETag without surrounding quotes.
    pub etag: String,
}

/// A presigned request the client sends straight to object storage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PresignedRequest {
    pub method: &'static str,
    pub url: String,
    /// Headers the client must send as signed.
    pub headers: Vec<(String, String)>,
}

/// A part already in a multipart upload (S3 `ListParts`), as
/// `POST /imports/{id}/parts` lists it.
pub use xlport_contract::UploadedPart;

/// The bucket: presigned requests for clients, and the calls the api and
/// the workers make themselves. Keys are built by [`crate::job::keys`].
pub trait ObjectStore: Send + Sync {
    /// A single-use PUT of exactly `content_length` bytes to `key`, valid
    /// for `expires`: the length and `If-None-Match: *` are signed headers
    /// (`headers` says what to send), so S3 refuses a body of another size
    /// (403) and a second PUT once the object exists (412, S3 conditional
    /// writes). Issue #15.
    fn presign_put(
        &self,
        key: &str,
        content_length: u64,
        expires: Duration,
    ) -> impl Future<Output = Result<PresignedRequest, StoreError>> + Send;

    /// A GET of `key` that downloads as `download_filename`
    /// (`response-content-disposition`), valid for `expires`.
    fn presign_get(
        &self,
        key: &str,
        download_filename: &str,
        expires: Duration,
    ) -> impl Future<Output = Result<PresignedRequest, StoreError>> + Send;

    /// Size and ETag of `key`; [`StoreError::NotFound`] when absent.
    fn head(&self, key: &str) -> impl Future<Output = Result<ObjectMeta, StoreError>> + Send;

    /// Deletes `key` (`DeleteObject`; deleting a missing key succeeds).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts a multipart upload to `key` (`CreateMultipartUpload`) and
    /// returns its upload id.
    fn create_multipart_upload(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: Option<&str>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// A presigned `UploadPart` URL for part `part_number` (1 to 10,000).
    fn presign_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        expires: Duration,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// The parts already uploaded (`ListParts`, every page), in part order;
    /// [`StoreError::NotFound`] when the upload is gone (completed or aborted).
    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Vec<UploadedPart>, StoreError>> + Send;

    /// Completes a multipart upload from its (part number, ETag) list
    /// (`CompleteMultipartUpload`); the object appears at `key` only now.
    fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Aborts a multipart upload and frees its parts
    /// (`AbortMultipartUpload`); an upload already gone is not an error.
    fn abort_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Uploads part `part_number` of a multipart upload the worker writes
    /// itself (`UploadPart`) and returns the part's ETag without quotes.
    /// Every part but the last must be at least 5 MiB (S3 multipart limits).
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: bytes::Bytes,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Streams the object at `key` into the file at `path` (created or
    /// truncated) and returns its size in bytes; `on_progress` sees the
    /// bytes written so far. Memory stays at one chunk whatever the size.
    ///
    /// `if_match`: the ETag (without quotes) of the version that was
    /// checked; a key that now holds another version is
    /// [`StoreError::Changed`] (`GetObject` `If-Match`, HTTP 412), so a job
    /// reads exactly the bytes whose size and ETag it recorded (issue #15).
    /// A missing key is [`StoreError::NotFound`]; anything else, a failed
    /// local write included, is [`StoreError::Other`].
    fn download_to(
        &self,
        key: &str,
        if_match: Option<&str>,
        path: &std::path::Path,
        on_progress: impl FnMut(u64) + Send,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Checks the bucket answers (for `/health`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The three ports an app or a worker runs on, named once:
/// [`memory::InMemory`] in tests, `xlport_adapters::Deployed` (Postgres, S3,
/// SQS) in the functions.
pub trait Ports: Send + Sync + 'static {
    type Jobs: JobStore + Clone + 'static;
    type Objects: ObjectStore + Clone + 'static;
    type Queue: JobQueue + Clone + 'static;
    /// The dataset tables: what exports read and imports write.
    type Tables: RowSource + ImportTarget + Clone + 'static;
}

/// The work queues.
pub trait JobQueue: Send + Sync {
    /// Sends one message body to the queue at `queue` (its URL).
    fn send(
        &self,
        queue: &str,
        body: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Checks the queue at `queue` answers (for `/health`).
    fn ping(&self, queue: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes a received message visible again `after` from now
    /// (`ChangeMessageVisibility`, at most 12 hours: SQS limits), so a
    /// failed record comes back after a backoff rather than the queue's
    /// whole visibility timeout. `source_arn` is the queue the record came
    /// from (the event's `eventSourceARN`). Best effort: a failure is
    /// logged, and the message then returns after the visibility timeout.
    fn retry_in(
        &self,
        source_arn: &str,
        receipt_handle: &str,
        after: Duration,
    ) -> impl Future<Output = ()> + Send;
}

/// What a job store fails with, told apart the way the api needs.
pub trait JobStoreError: std::error::Error + Send + Sync + 'static {
    /// A write the store refused because it breaks a rule of its schema (a
    /// constraint, by name), in words a client can act on; `None` for an
    /// outage or a fault of xlport's own.
    fn refusal(&self) -> Option<&'static str> {
        None
    }
}

/// The job store: API keys, jobs and their parts. Every state change is a
/// [`crate::lifecycle::Step`] and happens only from that step's `from`
/// states; the methods of a running job (`heartbeat`, `set_upload`,
/// `succeed_job`, `requeue_job`) act only for the worker holding its lease.
pub trait JobStore: Send + Sync {
    /// What the store fails with (a connection lost, a stored row that no
    /// longer parses).
    type Error: JobStoreError;

    /// Checks the store answers (for `/health`).
    fn ping(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The caller whose key's plaintext is `token`, with what the key may
    /// do; `None` when the key is unknown or revoked.
    fn authenticate(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<Caller>, Self::Error>> + Send;

    fn create_job(&self, new: NewJob) -> impl Future<Output = Result<Job, Self::Error>> + Send;

    fn job(&self, id: Uuid) -> impl Future<Output = Result<Option<Job>, Self::Error>> + Send;

    /// A job, as its owner sees it: someone else's job does not exist.
    fn job_for_owner(
        &self,
        owner: KeyId,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Job>, Self::Error>> + Send;

    /// The owner's newest `limit` jobs, newest first.
    fn list_jobs(
        &self,
        owner: KeyId,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Job>, Self::Error>> + Send;

    /// An import's parts, in part order.
    fn job_parts(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Vec<PartStatus>, Self::Error>> + Send;

    /// Marks activity on a job (`updated_at = now`), e.g. new part URLs for
    /// an upload in progress, so the sweep does not expire it.
    fn touch_job(&self, id: Uuid) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// [`crate::lifecycle::Step::CancelUpload`]. False if the import had
    /// moved on (or is not the owner's).
    fn cancel_upload(
        &self,
        id: Uuid,
        owner: KeyId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// [`crate::lifecycle::Step::UploadArrived`]: records the object an S3
    /// event reported for import `job` and queues the job. Atomic and
    /// idempotent: the same object twice queues once.
    fn record_upload(
        &self,
        job: Uuid,
        key: &str,
        size: i64,
        etag: &str,
    ) -> impl Future<Output = Result<UploadOutcome, Self::Error>> + Send;

    /// [`crate::lifecycle::Step::Claim`]: atomically takes a queued job, or
    /// a running one whose worker's lease lapsed; exactly one worker wins,
    /// and the job's `attempts` counts this one.
    fn claim_job(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, Self::Error>> + Send;

    /// Records progress (never backwards) and renews the lease. False when
    /// the job is no longer this worker's.
    fn heartbeat(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
        rows: i64,
        bytes: i64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Remembers the multipart upload a worker writes to, so whoever takes
    /// over after a crash can abort it.
    fn set_upload(
        &self,
        id: Uuid,
        worker: &str,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// [`crate::lifecycle::Step::Succeed`]. False when the job is no longer
    /// this worker's.
    fn succeed_job(
        &self,
        id: Uuid,
        worker: &str,
        rows: i64,
        bytes: i64,
        counts: &serde_json::Value,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// [`crate::lifecycle::Step::Requeue`]: hands the job back after a
    /// transient failure, says why (bounded) and when the next attempt is
    /// due, and adds "attempt N failed: …" to its warnings.
    fn requeue_job(
        &self,
        id: Uuid,
        worker: &str,
        reason: &str,
        retry_in: Duration,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// [`crate::lifecycle::Step::Fail`], with a reason a person can act on.
    /// False if the job had already ended.
    fn fail_job(
        &self,
        id: Uuid,
        reason: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// [`crate::lifecycle::Step::ExpireUpload`]. False if the file arrived
    /// (or the import ended) meanwhile.
    fn expire_upload(
        &self,
        id: Uuid,
        reason: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The jobs, oldest change first and at most `limit`, that wait for a
    /// worker that may never come (issue #19): queued longer than `stall`
    /// (counted from their next attempt's due time, if later), running with
    /// a lease lapsed longer than `stall` ago, and imports awaiting their
    /// upload for longer than `stall` but less than `upload_window` (their
    /// file may have arrived with its event lost).
    fn stalled_jobs(
        &self,
        stall: Duration,
        upload_window: Duration,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Stalled>, Self::Error>> + Send;

    /// The imports, oldest change first and at most `limit`, still in a
    /// [`crate::lifecycle::Step::ExpireUpload`] from-state with no change
    /// for `upload_window`: their upload URLs have expired.
    fn expired_uploads(
        &self,
        upload_window: Duration,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ExpiredUpload>, Self::Error>> + Send;

    /// Says in the job's warnings that the sweep sent it again, and marks
    /// the change (`updated_at`), so the next sweep waits a whole bound:
    /// only while the job is still in `state`. False if it moved on.
    fn note_redrive(
        &self,
        id: Uuid,
        state: crate::JobState,
        note: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Adds warnings to the job's, each once and bounded
    /// ([`crate::job::MAX_WARNINGS`] per call, [`crate::job::MAX_ERROR_CHARS`]
    /// each): a retried attempt that says the same adds nothing, and what
    /// the lifecycle noted (failed attempts, re-drives) stays.
    fn add_warnings(
        &self,
        id: Uuid,
        warnings: &[String],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
