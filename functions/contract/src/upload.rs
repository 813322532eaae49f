//! How an import's file goes to the bucket: the plan `POST /imports`
//! answers with (`upload`), and what `POST /imports/{id}/parts` answers.
//! docs/api.md, "Uploads".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::job::JobView;

/// The upload plan of a new import: one PUT below
/// `XLPORT_MULTIPART_THRESHOLD_BYTES` (64 MiB by default), a multipart
/// upload at or above it. Tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Upload {
    /// `"type": "single"`: one PUT.
    Single(SinglePut),
    /// `"type": "multipart"`: a PUT per part, then `complete_url`.
    Multipart(MultipartPlan),
}

/// One presigned PUT of the whole file, signed for exactly its declared
/// size (`Content-Length`) and for one PUT (`If-None-Match: *`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SinglePut {
    /// `PUT`.
    pub method: String,
    /// The presigned URL.
    pub url: String,
    /// Headers to send as signed (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// `POST` here to give the import up.
    pub abort_url: String,
    /// Seconds the URL is valid for.
    pub expires_in: u64,
}

/// A multipart upload: PUT bytes `(n-1)·part_size .. n·part_size` of the
/// file to part `n`'s URL, keep each answer's `ETag`, POST them all to
/// `complete_url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MultipartPlan {
    /// Bytes per part (the last may be shorter); at least 5 MiB.
    pub part_size: u64,
    /// Parts, at most 10,000.
    pub part_count: i32,
    /// A presigned URL per part.
    pub parts: Vec<PartUrl>,
    /// `POST` the parts' ETags here once all are uploaded.
    pub complete_url: String,
    /// `POST` here for fresh URLs and the parts S3 already has (to resume).
    pub more_parts_url: String,
    /// `POST` here to give the import up.
    pub abort_url: String,
    /// Seconds the URLs are valid for.
    pub expires_in: u64,
}

/// A presigned PUT URL of one part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartUrl {
    /// 1-based.
    pub part_number: i32,
    /// The presigned URL.
    pub url: String,
}

/// A part S3 already has (S3 `ListParts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadedPart {
    /// 1-based.
    pub part_number: i32,
    /// The part's ETag without surrounding quotes (the MD5 of its bytes).
    pub etag: String,
    /// Bytes.
    pub size: i64,
}

/// The answer of `POST /imports/{id}/parts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartsAnswer {
    /// Bytes per part.
    pub part_size: u64,
    /// Parts in all.
    pub part_count: i32,
    /// Fresh URLs of the parts asked for.
    pub parts: Vec<PartUrl>,
    /// The parts S3 has: a resumed upload sends the others.
    pub uploaded: Vec<UploadedPart>,
}

/// The answer of `POST /imports` (201): the job, `awaiting_upload`, and
/// its upload plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportCreated {
    /// The job (its fields inline).
    #[serde(flatten)]
    pub job: JobView,
    /// How to upload the file.
    pub upload: Upload,
}
