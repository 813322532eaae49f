//! A job's `options`: what was asked for when it was created, as the API
//! stores it and the workers read it. docs/api.md, "The job".

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::names::{ConflictPolicy, CsvDialectName};

/// An import's options (from `POST /imports`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportOptions {
    /// What to do with a row whose key is already there (`upsert` when a
    /// stored job does not say).
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
    /// Validate and count everything, write nothing to the table.
    #[serde(default)]
    pub dry_run: bool,
}

/// An export's options (from `POST /exports`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportOptions {
    /// The filter as it was asked for and validated (`null` for none): the
    /// dataset's `filterable` columns and validity flags, each `true`/`false`
    /// or, for a date, `{"from"?: "YYYY-MM-DD", "to"?: "YYYY-MM-DD"}`.
    #[schema(value_type = Object, nullable)]
    #[serde(default)]
    pub filter: Value,
    /// The CSV options; only on a `csv` export that asked for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvOptions>,
}

/// The CSV options of an export, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CsvOptions {
    /// How the cells are written.
    pub dialect: CsvDialectName,
}

/// A job's `options`, told apart by shape (`conflict_policy` is an
/// import's, `filter` an export's), never by failing: an object of neither
/// shape (a job written by hand) is `Other`, kept as it is.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum JobOptions {
    /// An import's (it has `conflict_policy`).
    Import(ImportOptions),
    /// An export's (it has `filter`).
    Export(ExportOptions),
    /// Options of neither shape.
    #[schema(value_type = Object)]
    Other(Map<String, Value>),
}

impl JobOptions {
    /// The options an object holds (see [`JobOptions`]).
    pub fn from_map(map: Map<String, Value>) -> JobOptions {
        let value = Value::Object(map);
        if value.get("conflict_policy").is_some() {
            if let Ok(o) = ImportOptions::deserialize(&value) {
                return JobOptions::Import(o);
            }
        } else if value.get("filter").is_some()
            && let Ok(o) = ExportOptions::deserialize(&value)
        {
            return JobOptions::Export(o);
        }
        match value {
            Value::Object(map) => JobOptions::Other(map),
            _ => JobOptions::Other(Map::new()),
        }
    }

    /// The options as stored on a job (`xlport_core::job::Job::options`).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for JobOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(JobOptions::from_map)
    }
}

impl From<ImportOptions> for JobOptions {
    fn from(o: ImportOptions) -> Self {
        JobOptions::Import(o)
    }
}

impl From<ExportOptions> for JobOptions {
    fn from(o: ExportOptions) -> Self {
        JobOptions::Export(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_read_back_as_the_api_stores_them() {
        for (stored, import) in [
            (json!({"conflict_policy": "skip", "dry_run": true}), true),
            (json!({"filter": null}), false),
            (
                json!({"filter": {"private": true}, "csv": {"dialect": "excel-br"}}),
                false,
            ),
        ] {
            let options: JobOptions =
                serde_json::from_value(stored.clone()).unwrap_or(JobOptions::Other(Map::new()));
            assert_eq!(matches!(options, JobOptions::Import(_)), import, "{stored}");
            assert!(!matches!(options, JobOptions::Other(_)), "{stored}");
            assert_eq!(options.to_json(), stored);
        }
        for odd in [
            json!({}),
            json!({"csv": {"dialect": "excel-br"}}),
            json!({"conflict_policy": "y"}),
        ] {
            let options: JobOptions = serde_json::from_value(odd.clone())
                .unwrap_or(JobOptions::Import(ImportOptions::default()));
            assert!(matches!(options, JobOptions::Other(_)), "{odd}");
            assert_eq!(options.to_json(), odd);
        }
    }
}
