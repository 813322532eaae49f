//! The bodies clients send (docs/api.md, "Routes"). Each refuses fields it
//! does not know (a 400 naming the field), so a typo is not silently
//! ignored. The names of policies, formats and dialects are strings here,
//! checked by the api against [`crate::names`] so that an unknown one gets
//! a 400 that lists the known ones; the OpenAPI document shows their enums.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /imports`: a file about to be uploaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// A dataset of `GET /datasets`.
    pub dataset: String,
    /// The file's name (at most 255 bytes, no control characters); the
    /// worker reads the format from the bytes, not from the name.
    pub filename: String,
    /// The file's size in bytes (> 0, at most `XLPORT_MAX_UPLOAD_BYTES`):
    /// the upload URL is signed for exactly this size.
    #[serde(deserialize_with = "crate::integral::u64")]
    pub size: u64,
    /// `upsert` (the default), `skip` or `reject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::ConflictPolicy>)]
    pub conflict_policy: Option<String>,
    /// Validate and count everything, write nothing to the table.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /exports`: a dataset to write into a file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// A dataset of `GET /datasets`.
    pub dataset: String,
    /// `xlsx` (the default) or `csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::ExportFormat>)]
    pub format: Option<String>,
    /// Which rows: `{"private": true, "data_ultima_compra": {"from":
    /// "2020-01-01", "to": "2020-12-31"}}`; the dataset's `filterable`
    /// columns and validity flags, a date range may leave out either end.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Option<Object>)]
    pub filter: Value,
    /// CSV options, for a `csv` export only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvRequest>,
}

/// The `csv` of an `ExportRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvRequest {
    /// `rfc4180` (the default) or `excel-br`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::CsvDialectName>)]
    pub dialect: Option<String>,
}

/// `POST /imports/{id}/parts`: the parts to sign URLs for; no body (or no
/// `part_numbers`) asks for every part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartsRequest {
    /// 1-based part numbers, each once.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::integral::option_vec_i32"
    )]
    pub part_numbers: Option<Vec<i32>>,
}

/// `POST /imports/{id}/complete`: every part of the multipart upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Each uploaded part once, in any order.
    pub parts: Vec<PartEtag>,
}

/// An uploaded part: its number and the `ETag` S3 answered its PUT with
/// (quoted or not).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartEtag {
    /// 1-based.
    #[serde(deserialize_with = "crate::integral::i32")]
    pub part_number: i32,
    /// As S3 answered the part's PUT.
    pub etag: String,
}
