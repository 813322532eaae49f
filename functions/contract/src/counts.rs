//! What a job counted: the counters of an import (per part and summed for
//! the job), an import's and an export's `counts` when they have succeeded,
//! and [`JobCounts`], the `counts` of any job. docs/api.md, "The job".

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The row counters of an import: of one part (`parts[].counts`), and summed
/// over its parts for the job. A counter missing from the JSON is 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ImportCounts {
    /// Data rows read from the file (blank rows are not counted).
    pub rows_read: u64,
    /// Rows added to the table.
    pub inserted: u64,
    /// Rows that replaced one with the same key (`upsert`).
    pub updated: u64,
    /// Valid rows left out by the `skip` policy.
    pub skipped: u64,
    /// Rows refused, each listed in the error report.
    pub rejected: u64,
    /// `rejected` by reason (`invalid_date`, `duplicate_key`...; the
    /// reasons are `xlport_core::cells::Reason`).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Rows imported whose cpf fails its check digits (flagged, not refused).
    pub invalid_cpf: u64,
    /// Rows imported with a cnpj that fails its check digits.
    pub invalid_cnpj: u64,
}

impl ImportCounts {
    /// Adds `other`'s counters to these (a part's to the job's).
    pub fn add(&mut self, other: &ImportCounts) {
        self.rows_read += other.rows_read;
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.skipped += other.skipped;
        self.rejected += other.rejected;
        for (k, v) in &other.rejected_by_reason {
            *self.rejected_by_reason.entry(k.clone()).or_default() += v;
        }
        self.invalid_cpf += other.invalid_cpf;
        self.invalid_cnpj += other.invalid_cnpj;
    }

    /// Counts one row rejected for `reason` (its name is the key of
    /// `rejected_by_reason`).
    pub fn reject(&mut self, reason: impl std::fmt::Display) {
        self.rejected += 1;
        *self
            .rejected_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
    }

    /// The counters in `v`; zeros when `v` holds none (a job not yet begun).
    pub fn from_json(v: &Value) -> Self {
        ImportCounts::deserialize(v).unwrap_or_default()
    }

    /// The counters as stored in a job's or a part's `counts`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Deserializes a field that may be present and `null`: `Some(None)`, not
/// `None`, so that what is written back keeps the `null`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The `counts` of an import that has succeeded, as the import worker
/// writes them (functions/import-worker): the summed `ImportCounts` and
/// what was read. Fields this version does not name are kept in `extra`
/// (so the API passes a newer worker's on unchanged).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportSummary {
    /// The summed row counters.
    #[serde(flatten)]
    pub counts: ImportCounts,
    /// Validated and counted, nothing written to the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// The file's format, for people: `xlsx`, `csv (delimiter ';')`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The text encoding read: `utf-8`, `windows-1252`... (`n/a` for workbooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The (first) worksheet read; `null` for a text file.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub sheet: Option<Option<String>>,
    /// Every worksheet read, when the table ran on over continuation sheets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheets: Option<Vec<String>>,
    /// Milliseconds the worker took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The bucket key of the error report, when rows were rejected (clients
    /// use `error_report_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_report_key: Option<String>,
    /// Fields this version of the contract does not name.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extra: BTreeMap<String, Value>,
}

/// The `counts` of an export that has succeeded, as the export worker
/// writes them (functions/export-worker). Fields this version does not name
/// are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportCounts {
    /// Data rows written (headers not counted).
    pub rows: u64,
    /// Bytes of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Worksheets written (xlsx; 1 for csv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheets: Option<u64>,
    /// Milliseconds the worker took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Fields this version of the contract does not name.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extra: BTreeMap<String, Value>,
}

/// A job's `counts`: `{}` until it succeeds, then an import's or an
/// export's. Told apart by shape (`rows_read` is an import's, `rows` an
/// export's), never by failing: an object of neither shape is
/// `Other`, kept as it is.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum JobCounts {
    /// An import's (it has `rows_read`).
    Import(ImportSummary),
    /// An export's (it has `rows`).
    Export(ExportCounts),
    /// `{}` before the job has succeeded, or counts of neither shape.
    #[schema(value_type = Object)]
    Other(Map<String, Value>),
}

impl Default for JobCounts {
    fn default() -> Self {
        JobCounts::Other(Map::new())
    }
}

impl JobCounts {
    /// The counts an object holds (see [`JobCounts`]).
    pub fn from_map(map: Map<String, Value>) -> JobCounts {
        let value = Value::Object(map);
        if value.get("rows_read").is_some() {
            if let Ok(s) = ImportSummary::deserialize(&value) {
                return JobCounts::Import(s);
            }
        } else if value.get("rows").is_some()
            && let Ok(e) = ExportCounts::deserialize(&value)
        {
            return JobCounts::Export(e);
        }
        match value {
            Value::Object(map) => JobCounts::Other(map),
            _ => JobCounts::default(),
        }
    }

    /// An import's counters; zeros for anything else (an export, or an
    /// import that has not succeeded).
    pub fn import(&self) -> ImportCounts {
        match self {
            JobCounts::Import(s) => s.counts.clone(),
            _ => ImportCounts::default(),
        }
    }

    /// Whether there is nothing counted yet (`{}`).
    pub fn is_empty(&self) -> bool {
        matches!(self, JobCounts::Other(m) if m.is_empty())
    }
}

impl<'de> Deserialize<'de> for JobCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(JobCounts::from_map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: Value) -> (JobCounts, Value) {
        let counts: JobCounts = serde_json::from_value(v).unwrap_or_default();
        let back = serde_json::to_value(&counts).unwrap_or_default();
        (counts, back)
    }

    #[test]
    fn what_the_workers_write_reads_back_unchanged() {
        let import = json!({"rows_read": 3, "inserted": 2, "updated": 0, "skipped": 0, "rejected": 1,
            "rejected_by_reason": {"invalid_date": 1}, "invalid_cpf": 1, "invalid_cnpj": 0,
            "dry_run": false, "format": "csv (delimiter ';')", "encoding": "utf-8", "sheet": null,
            "duration_ms": 5, "error_report_key": "reports/x/errors.xlsx", "from_a_newer_worker": [1]});
        let (counts, back) = round_trip(import.clone());
        assert_eq!(back, import);
        let JobCounts::Import(s) = counts else {
            panic!("an import's counts: {counts:?}");
        };
        assert_eq!((s.counts.rejected, s.sheet), (1, Some(None)));
        assert_eq!(s.extra["from_a_newer_worker"], json!([1]));

        let workbook = json!({"rows_read": 0, "inserted": 0, "updated": 0, "skipped": 0, "rejected": 0,
            "rejected_by_reason": {}, "invalid_cpf": 0, "invalid_cnpj": 0, "dry_run": true,
            "format": "xlsx", "encoding": "n/a", "sheet": "Plan1", "sheets": ["Plan1", "Plan2"], "duration_ms": 1});
        assert_eq!(round_trip(workbook.clone()).1, workbook);

        let export = json!({"rows": 3, "bytes": 100, "sheets": 1, "duration_ms": 12});
        let (counts, back) = round_trip(export.clone());
        assert!(matches!(
            counts,
            JobCounts::Export(ExportCounts { rows: 3, .. })
        ));
        assert_eq!(back, export);
    }

    #[test]
    fn nothing_counted_and_odd_shapes_pass_through() {
        let (counts, back) = round_trip(json!({}));
        assert!(counts.is_empty());
        assert_eq!(back, json!({}));
        for odd in [
            json!({"rows_read": "x"}),
            json!({"rows": -1}),
            json!({"rejected": 2}),
        ] {
            let (counts, back) = round_trip(odd.clone());
            assert!(matches!(counts, JobCounts::Other(_)), "{odd}");
            assert_eq!(back, odd);
        }
        assert!(serde_json::from_value::<JobCounts>(json!([1])).is_err());
    }

    #[test]
    fn part_counters_add_up_and_reject_by_reason() {
        let mut total = ImportCounts::default();
        let mut part = ImportCounts {
            rows_read: 2,
            inserted: 1,
            ..ImportCounts::default()
        };
        part.reject("invalid_date");
        total.add(&part);
        total.add(&part);
        assert_eq!((total.rows_read, total.rejected), (4, 2));
        assert_eq!(total.rejected_by_reason["invalid_date"], 2);
        assert_eq!(ImportCounts::from_json(&total.to_json()), total);
        assert_eq!(ImportCounts::from_json(&json!({})), ImportCounts::default());
    }
}
