//! In-memory implementations of the ports, for tests that need no running
//! service: the api's routes and the workers' lifecycle run against these in
//! milliseconds. They keep the contracts of the real adapters (Postgres, S3,
//! SQS) that the callers rely on: a step changes a job only from its
//! [`Step::from`] states, a running job's steps act only for the lease
//! holder, progress never goes backwards, warnings are added once, a
//! multipart upload's object appears only when completed. Each can be made
//! "down" to test how callers take an outage.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    JobQueue, JobStore, ObjectMeta, ObjectStore, Ports, PresignedRequest, StoreError,
    StoredRejection, UploadedPart,
};
use crate::apikey;
use crate::job::{
    Access, Caller, Claim, ExpiredUpload, Job, JobKind, JobState, KeyId, NewJob, PartStatus,
    Stalled, UploadOutcome, bounded_error, bounded_warnings,
};
use crate::lifecycle::Step;

mod tables;

pub use tables::{MemorySession, MemoryTables};

/// The in-memory ports, as one [`Ports`].
#[derive(Debug, Clone, Copy)]
pub struct InMemory;

impl Ports for InMemory {
    type Jobs = MemoryJobStore;
    type Objects = MemoryObjectStore;
    type Queue = MemoryQueue;
    type Tables = MemoryTables;
}

/// What an in-memory port fails with: it was made [`MemoryJobStore::set_down`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("the in-memory store is down (a test's outage)")]
pub struct Down;

impl super::JobStoreError for Down {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock already failed; the data
    // is still what it was.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::milliseconds(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

struct StoredJob {
    owner: KeyId,
    job: Job,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
}

impl StoredJob {
    fn held_by(&self, worker: &str) -> bool {
        self.job.state == JobState::Running && self.lease_owner.as_deref() == Some(worker)
    }

    /// Moves the job by `step`, if it applies; stamps the change.
    fn take(&mut self, step: Step) -> bool {
        if !step.applies_to(self.job.state) {
            return false;
        }
        self.job.state = step.to();
        let now = Utc::now();
        self.job.updated_at = now;
        if self.job.state.is_terminal() {
            self.job.finished_at = Some(now);
            self.lease_owner = None;
            self.lease_until = None;
        }
        true
    }
}

#[derive(Default)]
struct Jobs {
    keys: HashMap<String, Caller>,
    jobs: HashMap<Uuid, StoredJob>,
    parts: HashMap<Uuid, Vec<PartStatus>>,
    /// An import's rejected rows by `ord` (the report's order).
    rejections: HashMap<Uuid, BTreeMap<i64, StoredRejection>>,
    /// An import's file header, for its report.
    source_headers: HashMap<Uuid, Vec<String>>,
}

/// The job store in memory. Clones share the same jobs.
#[derive(Clone, Default)]
pub struct MemoryJobStore {
    inner: Arc<Mutex<Jobs>>,
    down: Arc<AtomicBool>,
}

impl MemoryJobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call fails with [`Down`] while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Adds an API key whose plaintext is `plaintext`, with full access.
    pub fn add_key(&self, plaintext: &str) -> KeyId {
        self.add_key_with(plaintext, Access::full())
    }

    /// Adds an API key whose plaintext is `plaintext`, limited to `access`.
    pub fn add_key_with(&self, plaintext: &str, access: Access) -> KeyId {
        let key = KeyId(Uuid::new_v4());
        lock(&self.inner)
            .keys
            .insert(apikey::hash(plaintext), Caller { key, access });
        key
    }

    /// Records a part of an import, as the import's loader would.
    pub fn add_part(&self, job: Uuid, part: PartStatus) {
        lock(&self.inner).parts.entry(job).or_default().push(part);
    }

    /// Moves the job's last change `by` into the past, as if it had waited
    /// that long (its lease, if any, lapses as long ago).
    pub fn age(&self, id: Uuid, by: Duration) {
        if let Some(stored) = lock(&self.inner).jobs.get_mut(&id) {
            stored.job.updated_at -= chrono_duration(by);
            if let Some(until) = stored.lease_until.as_mut() {
                *until -= chrono_duration(by);
            }
        }
    }

    /// Makes the lease on a running job lapse, as when its worker died.
    pub fn expire_lease(&self, id: Uuid) {
        if let Some(stored) = lock(&self.inner).jobs.get_mut(&id) {
            stored.lease_until = Some(Utc::now() - chrono::Duration::seconds(1));
        }
    }

    fn up(&self) -> Result<MutexGuard<'_, Jobs>, Down> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Down);
        }
        Ok(lock(&self.inner))
    }
}

impl JobStore for MemoryJobStore {
    type Error = Down;

    async fn ping(&self) -> Result<(), Down> {
        self.up().map(|_| ())
    }

    async fn authenticate(&self, token: &str) -> Result<Option<Caller>, Down> {
        Ok(self.up()?.keys.get(&apikey::hash(token)).cloned())
    }

    async fn create_job(&self, new: NewJob) -> Result<Job, Down> {
        let owner = new.owner;
        let job = Job::new(new, Utc::now());
        self.up()?.jobs.insert(
            job.id,
            StoredJob {
                owner,
                job: job.clone(),
                lease_owner: None,
                lease_until: None,
            },
        );
        Ok(job)
    }

    async fn job(&self, id: Uuid) -> Result<Option<Job>, Down> {
        Ok(self.up()?.jobs.get(&id).map(|s| s.job.clone()))
    }

    async fn job_for_owner(&self, owner: KeyId, id: Uuid) -> Result<Option<Job>, Down> {
        Ok(self
            .up()?
            .jobs
            .get(&id)
            .filter(|s| s.owner == owner)
            .map(|s| s.job.clone()))
    }

    async fn list_jobs(&self, owner: KeyId, limit: i64) -> Result<Vec<Job>, Down> {
        let jobs = self.up()?;
        let mut mine: Vec<Job> = jobs
            .jobs
            .values()
            .filter(|s| s.owner == owner)
            .map(|s| s.job.clone())
            .collect();
        mine.sort_by_key(|j| std::cmp::Reverse(j.created_at));
        mine.truncate(usize::try_from(limit.max(0)).unwrap_or(usize::MAX));
        Ok(mine)
    }

    async fn job_parts(&self, id: Uuid) -> Result<Vec<PartStatus>, Down> {
        let mut parts = self.up()?.parts.get(&id).cloned().unwrap_or_default();
        parts.sort_by_key(|p| p.part_no);
        Ok(parts)
    }

    async fn touch_job(&self, id: Uuid) -> Result<(), Down> {
        if let Some(s) = self.up()?.jobs.get_mut(&id) {
            s.job.updated_at = Utc::now();
        }
        Ok(())
    }

    async fn cancel_upload(&self, id: Uuid, owner: KeyId) -> Result<bool, Down> {
        Ok(self
            .up()?
            .jobs
            .get_mut(&id)
            .filter(|s| s.owner == owner)
            .is_some_and(|s| s.take(Step::CancelUpload)))
    }

    async fn record_upload(
        &self,
        job: Uuid,
        key: &str,
        size: i64,
        etag: &str,
    ) -> Result<UploadOutcome, Down> {
        let mut jobs = self.up()?;
        let Some(stored) = jobs
            .jobs
            .get_mut(&job)
            .filter(|s| s.job.kind == JobKind::Import && s.job.object_key.as_deref() == Some(key))
        else {
            return Ok(UploadOutcome::UnknownKey);
        };
        if stored.take(Step::UploadArrived) {
            stored.job.object_size = Some(size);
            stored.job.etag = Some(etag.to_string());
            return Ok(UploadOutcome::Queued(stored.job.clone()));
        }
        Ok(UploadOutcome::AlreadyRecorded(stored.job.clone()))
    }

    async fn claim_job(&self, id: Uuid, worker: &str, lease: Duration) -> Result<Claim, Down> {
        let mut jobs = self.up()?;
        let Some(stored) = jobs.jobs.get_mut(&id) else {
            return Ok(Claim::Missing);
        };
        let now = Utc::now();
        let lapsed = stored.lease_until.is_none_or(|until| until < now);
        match stored.job.state {
            JobState::Running if !lapsed => return Ok(Claim::Busy),
            state if !Step::Claim.applies_to(state) => return Ok(Claim::NotClaimable(state)),
            _ => {}
        }
        stored.take(Step::Claim);
        stored.job.attempts += 1;
        stored.job.started_at.get_or_insert(now);
        stored.job.next_attempt_at = None;
        stored.lease_owner = Some(worker.to_string());
        stored.lease_until = Some(now + chrono_duration(lease));
        Ok(Claim::Claimed(Box::new(stored.job.clone())))
    }

    async fn heartbeat(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
        rows: i64,
        bytes: i64,
    ) -> Result<bool, Down> {
        let mut jobs = self.up()?;
        let Some(stored) = jobs.jobs.get_mut(&id).filter(|s| s.held_by(worker)) else {
            return Ok(false);
        };
        let now = Utc::now();
        stored.job.rows_done = stored.job.rows_done.max(rows);
        stored.job.bytes_done = stored.job.bytes_done.max(bytes);
        stored.lease_until = Some(now + chrono_duration(lease));
        stored.job.updated_at = now;
        Ok(true)
    }

    async fn set_upload(
        &self,
        id: Uuid,
        worker: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), Down> {
        if let Some(stored) = self.up()?.jobs.get_mut(&id).filter(|s| s.held_by(worker)) {
            stored.job.result_key = Some(key.to_string());
            stored.job.upload_id = Some(upload_id.to_string());
            stored.job.updated_at = Utc::now();
        }
        Ok(())
    }

    async fn succeed_job(
        &self,
        id: Uuid,
        worker: &str,
        rows: i64,
        bytes: i64,
        counts: &serde_json::Value,
    ) -> Result<bool, Down> {
        let mut jobs = self.up()?;
        let Some(stored) = jobs.jobs.get_mut(&id).filter(|s| s.held_by(worker)) else {
            return Ok(false);
        };
        stored.take(Step::Succeed);
        stored.job.rows_done = rows;
        stored.job.bytes_done = bytes;
        stored.job.counts = counts.clone();
        stored.job.upload_id = None;
        Ok(true)
    }

    async fn requeue_job(
        &self,
        id: Uuid,
        worker: &str,
        reason: &str,
        retry_in: Duration,
    ) -> Result<(), Down> {
        let mut jobs = self.up()?;
        let Some(stored) = jobs.jobs.get_mut(&id).filter(|s| s.held_by(worker)) else {
            return Ok(());
        };
        let reason = bounded_error(reason);
        stored.take(Step::Requeue);
        stored.lease_owner = None;
        stored.lease_until = None;
        stored.job.error = None;
        stored.job.next_attempt_at = Some(Utc::now() + chrono_duration(retry_in));
        let note = format!("attempt {} failed: {reason}", stored.job.attempts);
        stored.job.last_error = Some(reason);
        push_warnings(&mut stored.job, &[note]);
        Ok(())
    }

    async fn fail_job(&self, id: Uuid, reason: &str) -> Result<bool, Down> {
        self.end(id, Step::Fail, reason)
    }

    async fn expire_upload(&self, id: Uuid, reason: &str) -> Result<bool, Down> {
        self.end(id, Step::ExpireUpload, reason)
    }

    async fn stalled_jobs(
        &self,
        stall: Duration,
        upload_window: Duration,
        limit: i64,
    ) -> Result<Vec<Stalled>, Down> {
        let jobs = self.up()?;
        let now = Utc::now();
        let (stall, window) = (chrono_duration(stall), chrono_duration(upload_window));
        let mut stalled: Vec<(DateTime<Utc>, Stalled)> = jobs
            .jobs
            .values()
            .filter_map(|s| {
                let job = &s.job;
                let waiting_since = job
                    .next_attempt_at
                    .map_or(job.updated_at, |at| at.max(job.updated_at));
                let waits = match job.state {
                    JobState::Queued => waiting_since < now - stall,
                    JobState::Running => s.lease_until.is_some_and(|until| until < now - stall),
                    JobState::AwaitingUpload => {
                        job.kind == JobKind::Import
                            && job.updated_at < now - stall
                            && job.updated_at > now - window
                    }
                    _ => false,
                };
                waits.then(|| {
                    (
                        job.updated_at,
                        Stalled {
                            id: job.id,
                            kind: job.kind,
                            state: job.state,
                            object_key: job.object_key.clone(),
                            object_size: job.object_size,
                            etag: job.etag.clone(),
                            waiting_since,
                        },
                    )
                })
            })
            .collect();
        stalled.sort_by_key(|(at, _)| *at);
        Ok(stalled
            .into_iter()
            .take(usize::try_from(limit.max(0)).unwrap_or(usize::MAX))
            .map(|(_, s)| s)
            .collect())
    }

    async fn expired_uploads(
        &self,
        upload_window: Duration,
        limit: i64,
    ) -> Result<Vec<ExpiredUpload>, Down> {
        let jobs = self.up()?;
        let before = Utc::now() - chrono_duration(upload_window);
        let mut expired: Vec<&Job> = jobs
            .jobs
            .values()
            .map(|s| &s.job)
            .filter(|j| {
                j.kind == JobKind::Import
                    && Step::ExpireUpload.applies_to(j.state)
                    && j.updated_at < before
            })
            .collect();
        expired.sort_by_key(|j| j.updated_at);
        Ok(expired
            .into_iter()
            .take(usize::try_from(limit.max(0)).unwrap_or(usize::MAX))
            .map(|j| ExpiredUpload {
                id: j.id,
                object_key: j.object_key.clone(),
                upload_id: j.upload_id.clone(),
            })
            .collect())
    }

    async fn note_redrive(&self, id: Uuid, state: JobState, note: &str) -> Result<bool, Down> {
        let mut jobs = self.up()?;
        let Some(stored) = jobs.jobs.get_mut(&id).filter(|s| s.job.state == state) else {
            return Ok(false);
        };
        push_warnings(&mut stored.job, &bounded_warnings(&[note.to_string()]));
        stored.job.updated_at = Utc::now();
        Ok(true)
    }

    async fn add_warnings(&self, id: Uuid, warnings: &[String]) -> Result<(), Down> {
        if let Some(stored) = self.up()?.jobs.get_mut(&id) {
            push_warnings(&mut stored.job, &bounded_warnings(warnings));
            stored.job.updated_at = Utc::now();
        }
        Ok(())
    }
}

impl MemoryJobStore {
    fn end(&self, id: Uuid, step: Step, reason: &str) -> Result<bool, Down> {
        let mut jobs = self.up()?;
        let Some(stored) = jobs.jobs.get_mut(&id) else {
            return Ok(false);
        };
        if !stored.take(step) {
            return Ok(false);
        }
        stored.job.error = Some(reason.to_string());
        Ok(true)
    }
}

/// Appends each of `new` not already among the job's warnings.
fn push_warnings(job: &mut Job, new: &[String]) {
    if !job.warnings.is_array() {
        job.warnings = serde_json::json!([]);
    }
    let Some(list) = job.warnings.as_array_mut() else {
        return;
    };
    for w in new {
        let w = serde_json::Value::String(w.clone());
        if !list.contains(&w) {
            list.push(w);
        }
    }
}

/// A multipart upload's parts by number: (ETag, bytes).
type Parts = BTreeMap<i32, (String, Vec<u8>)>;

#[derive(Default)]
struct Bucket {
    objects: HashMap<String, (Vec<u8>, String)>,
    /// upload id -> (key, its parts).
    uploads: HashMap<String, (String, Parts)>,
}

/// The bucket in memory. Presigned URLs are `memory://` URLs that say what
/// they were signed for; nothing fetches them.
#[derive(Clone, Default)]
pub struct MemoryObjectStore {
    inner: Arc<Mutex<Bucket>>,
    down: Arc<AtomicBool>,
    next: Arc<AtomicU64>,
}

impl MemoryObjectStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call fails while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn etag(&self) -> String {
        format!("etag-{}", self.next.fetch_add(1, Ordering::SeqCst))
    }

    /// Puts an object, as a client's PUT would; returns its ETag.
    pub fn put(&self, key: &str, bytes: &[u8]) -> String {
        let etag = self.etag();
        lock(&self.inner)
            .objects
            .insert(key.to_string(), (bytes.to_vec(), etag.clone()));
        etag
    }

    /// The bytes at `key`, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.inner).objects.get(key).map(|(b, _)| b.clone())
    }

    /// Uploads one part of a multipart upload, as a client's PUT to a part
    /// URL would; returns its ETag, or `None` when the upload is gone.
    pub fn put_part(&self, upload_id: &str, part_number: i32, bytes: &[u8]) -> Option<String> {
        let etag = self.etag();
        let mut bucket = lock(&self.inner);
        let (_, parts) = bucket.uploads.get_mut(upload_id)?;
        parts.insert(part_number, (etag.clone(), bytes.to_vec()));
        Some(etag)
    }

    /// The multipart uploads in progress.
    pub fn uploads_in_progress(&self) -> usize {
        lock(&self.inner).uploads.len()
    }

    fn available(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Other(
                "the in-memory bucket is down (a test's outage)".into(),
            ));
        }
        Ok(())
    }

    fn up(&self) -> Result<MutexGuard<'_, Bucket>, StoreError> {
        self.available()?;
        Ok(lock(&self.inner))
    }
}

impl ObjectStore for MemoryObjectStore {
    async fn presign_put(
        &self,
        key: &str,
        content_length: u64,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        self.available()?;
        Ok(PresignedRequest {
            method: "PUT",
            url: format!("memory://bucket/{key}?expires={}", expires.as_secs()),
            headers: vec![
                ("content-length".into(), content_length.to_string()),
                ("if-none-match".into(), "*".into()),
            ],
        })
    }

    async fn presign_get(
        &self,
        key: &str,
        download_filename: &str,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        self.available()?;
        Ok(PresignedRequest {
            method: "GET",
            url: format!(
                "memory://bucket/{key}?filename={download_filename}&expires={}",
                expires.as_secs()
            ),
            headers: Vec::new(),
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        self.up()?
            .objects
            .get(key)
            .map(|(bytes, etag)| ObjectMeta {
                size: bytes.len() as u64,
                etag: etag.clone(),
            })
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.up()?.objects.remove(key);
        Ok(())
    }

    async fn create_multipart_upload(
        &self,
        key: &str,
        _content_type: &str,
        _content_disposition: Option<&str>,
    ) -> Result<String, StoreError> {
        let id = format!("upload-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.up()?
            .uploads
            .insert(id.clone(), (key.to_string(), BTreeMap::new()));
        Ok(id)
    }

    async fn presign_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        expires: Duration,
    ) -> Result<String, StoreError> {
        self.available()?;
        Ok(format!(
            "memory://bucket/{key}?uploadId={upload_id}&partNumber={part_number}&expires={}",
            expires.as_secs()
        ))
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<UploadedPart>, StoreError> {
        let bucket = self.up()?;
        let (_, parts) = bucket
            .uploads
            .get(upload_id)
            .filter(|(k, _)| k == key)
            .ok_or_else(|| StoreError::NotFound(format!("multipart upload of {key}")))?;
        Ok(parts
            .iter()
            .map(|(n, (etag, bytes))| UploadedPart {
                part_number: *n,
                etag: etag.clone(),
                size: bytes.len() as i64,
            })
            .collect())
    }

    async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<(), StoreError> {
        let mut bucket = self.up()?;
        let Some((_, uploaded)) = bucket.uploads.get(upload_id).filter(|(k, _)| k == key) else {
            return Err(StoreError::NotFound(format!("multipart upload of {key}")));
        };
        let mut body = Vec::new();
        let mut sorted = parts.to_vec();
        sorted.sort_by_key(|(n, _)| *n);
        for (n, etag) in &sorted {
            match uploaded.get(n) {
                Some((have, bytes)) if have == etag.trim_matches('"') => {
                    body.extend_from_slice(bytes)
                }
                _ => {
                    return Err(StoreError::Other(format!(
                        "InvalidPart: part {n} with that ETag was not uploaded"
                    )));
                }
            }
        }
        bucket.uploads.remove(upload_id);
        let etag = format!(
            "etag-{}-{}",
            self.next.fetch_add(1, Ordering::SeqCst),
            parts.len()
        );
        bucket.objects.insert(key.to_string(), (body, etag));
        Ok(())
    }

    async fn abort_multipart_upload(&self, _key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.up()?.uploads.remove(upload_id);
        Ok(())
    }

    async fn upload_part(
        &self,
        _key: &str,
        upload_id: &str,
        part_number: i32,
        body: bytes::Bytes,
    ) -> Result<String, StoreError> {
        self.available()?;
        self.put_part(upload_id, part_number, &body)
            .ok_or_else(|| StoreError::NotFound(format!("multipart upload {upload_id}")))
    }

    async fn download_to(
        &self,
        key: &str,
        if_match: Option<&str>,
        path: &std::path::Path,
        mut on_progress: impl FnMut(u64) + Send,
    ) -> Result<u64, StoreError> {
        let (bytes, etag) = self
            .up()?
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        if if_match.is_some_and(|e| e.trim_matches('"') != etag) {
            return Err(StoreError::Changed(key.to_string()));
        }
        std::fs::write(path, &bytes)
            .map_err(|e| StoreError::Other(format!("writing {}: {e}", path.display())))?;
        on_progress(bytes.len() as u64);
        Ok(bytes.len() as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.available()
    }
}

/// The queues in memory: what was sent, by queue URL.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    sent: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// Visibility changes asked for: (receipt handle, after).
    retries: Arc<Mutex<Vec<(String, Duration)>>>,
    down: Arc<AtomicBool>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call fails while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The bodies sent to `queue`, oldest first.
    pub fn sent(&self, queue: &str) -> Vec<String> {
        lock(&self.sent).get(queue).cloned().unwrap_or_default()
    }

    /// The visibility changes asked for ([`JobQueue::retry_in`]), oldest
    /// first: (receipt handle, after).
    pub fn retries(&self) -> Vec<(String, Duration)> {
        lock(&self.retries).clone()
    }

    fn available(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Other(
                "the in-memory queue is down (a test's outage)".into(),
            ));
        }
        Ok(())
    }
}

impl JobQueue for MemoryQueue {
    async fn send(&self, queue: &str, body: String) -> Result<(), StoreError> {
        self.available()?;
        lock(&self.sent)
            .entry(queue.to_string())
            .or_default()
            .push(body);
        Ok(())
    }

    async fn ping(&self, _queue: &str) -> Result<(), StoreError> {
        self.available()
    }

    async fn retry_in(&self, _source_arn: &str, receipt_handle: &str, after: Duration) {
        lock(&self.retries).push((receipt_handle.to_string(), after));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::NewJob;

    fn new_import(owner: KeyId, key: &str) -> NewJob {
        NewJob {
            id: Uuid::new_v4(),
            owner,
            kind: JobKind::Import,
            dataset: "user_purchase".into(),
            state: JobState::AwaitingUpload,
            format: None,
            options: serde_json::json!({}),
            filename: Some("a.csv".into()),
            object_key: Some(key.into()),
            declared_size: Some(3),
            upload_id: None,
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The in-memory ports never wait: one poll finishes them.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("an in-memory port waited"),
        }
    }

    #[test]
    fn a_job_goes_through_its_lifecycle_and_only_its_lease_holder_moves_it() {
        block_on(async {
            let store = MemoryJobStore::new();
            let owner = store.add_key("k");
            let job = store
                .create_job(new_import(owner, "imports/x/a.csv"))
                .await
                .unwrap();
            let lease = Duration::from_secs(60);
            assert!(matches!(
                store.claim_job(job.id, "w1", lease).await.unwrap(),
                Claim::NotClaimable(JobState::AwaitingUpload)
            ));
            assert!(matches!(
                store
                    .record_upload(job.id, "imports/x/a.csv", 3, "e")
                    .await
                    .unwrap(),
                UploadOutcome::Queued(_)
            ));
            assert!(matches!(
                store
                    .record_upload(job.id, "imports/x/a.csv", 3, "e")
                    .await
                    .unwrap(),
                UploadOutcome::AlreadyRecorded(_)
            ));
            assert!(matches!(
                store
                    .record_upload(job.id, "imports/x/b.csv", 3, "e")
                    .await
                    .unwrap(),
                UploadOutcome::UnknownKey
            ));
            assert!(matches!(
                store.claim_job(job.id, "w1", lease).await.unwrap(),
                Claim::Claimed(_)
            ));
            assert!(matches!(
                store.claim_job(job.id, "w2", lease).await.unwrap(),
                Claim::Busy
            ));
            assert!(!store.heartbeat(job.id, "w2", lease, 5, 5).await.unwrap());
            assert!(store.heartbeat(job.id, "w1", lease, 5, 5).await.unwrap());
            assert!(store.heartbeat(job.id, "w1", lease, 2, 2).await.unwrap());
            let seen = store.job(job.id).await.unwrap().unwrap();
            assert_eq!((seen.rows_done, seen.bytes_done), (5, 5), "never backwards");
            store
                .requeue_job(job.id, "w1", "a database error", Duration::from_secs(5))
                .await
                .unwrap();
            store
                .add_warnings(job.id, &["w".into(), "w".into()])
                .await
                .unwrap();
            let seen = store.job(job.id).await.unwrap().unwrap();
            assert_eq!(seen.state, JobState::Queued);
            assert_eq!(
                seen.warnings,
                serde_json::json!(["attempt 1 failed: a database error", "w"])
            );
            // A worker whose lease lapsed is taken over, and loses its say.
            store.claim_job(job.id, "w1", lease).await.unwrap();
            store.expire_lease(job.id);
            assert!(matches!(
                store.claim_job(job.id, "w2", lease).await.unwrap(),
                Claim::Claimed(j) if j.attempts == 3
            ));
            assert!(
                !store
                    .succeed_job(job.id, "w1", 1, 1, &serde_json::json!({}))
                    .await
                    .unwrap()
            );
            assert!(
                store
                    .succeed_job(job.id, "w2", 1, 1, &serde_json::json!({}))
                    .await
                    .unwrap()
            );
            assert!(
                !store.fail_job(job.id, "late").await.unwrap(),
                "finished is final"
            );
            let done = store.job(job.id).await.unwrap().unwrap();
            assert_eq!(done.state, JobState::Succeeded);
            assert!(done.finished_at.is_some());
        });
    }

    #[test]
    fn a_multipart_object_appears_only_when_completed_with_the_right_etags() {
        block_on(async {
            let bucket = MemoryObjectStore::new();
            let id = bucket
                .create_multipart_upload("k", "text/csv", None)
                .await
                .unwrap();
            let e1 = bucket.put_part(&id, 1, b"ab").unwrap();
            let e2 = bucket.put_part(&id, 2, b"cd").unwrap();
            assert!(matches!(
                bucket.head("k").await,
                Err(StoreError::NotFound(_))
            ));
            assert_eq!(bucket.list_parts("k", &id).await.unwrap().len(), 2);
            assert!(
                bucket
                    .complete_multipart_upload("k", &id, &[(1, e1.clone()), (2, "bad".into())])
                    .await
                    .is_err()
            );
            bucket
                .complete_multipart_upload("k", &id, &[(2, e2), (1, e1)])
                .await
                .unwrap();
            assert_eq!(bucket.get("k").unwrap(), b"abcd");
            assert!(matches!(
                bucket.list_parts("k", &id).await,
                Err(StoreError::NotFound(_))
            ));
        });
    }
}
