//! Ports: what the logic needs from the outside world, as small traits. The
//! adapters crate implements them on S3, SQS and Postgres.

use std::future::Future;
use std::time::Duration;

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

    fn presign_get(
        &self,
        key: &str,
        download_filename: &str,
        expires: Duration,
    ) -> impl Future<Output = Result<PresignedRequest, StoreError>> + Send;

    fn head(&self, key: &str) -> impl Future<Output = Result<ObjectMeta, StoreError>> + Send;
}

pub trait JobQueue: Send + Sync {
    /// Sends one message body to the named queue.
    fn send(
        &self,
        queue: &str,
        body: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
