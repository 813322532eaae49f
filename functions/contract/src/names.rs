//! The closed sets of names the API speaks: job kinds and states, conflict
//! policies, export formats, CSV dialects, column types, error codes. Each
//! set is written once, in a [`names!`] invocation below: the serde names,
//! [`as_str`](JobState::as_str), `NAMES`, `ALL`, parsing and the OpenAPI
//! `enum` all come from that one list.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A name that is not one of its set's (`what` says which set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// The set: `job state`, `conflict_policy`...
    pub what: &'static str,
    /// The name as given.
    pub name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} `{}`", self.what, self.name)
    }
}

impl std::error::Error for UnknownName {}

/// `names` as people read a choice: `a`, `a or b`, `a, b or c`.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [only] => (*only).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// One set of names: a `Copy` enum whose variants carry their wire name
/// once (`Variant = "name"`), with `ALL`, `NAMES`, `as_str`, `parse`,
/// `Display`, `FromStr` and its OpenAPI schema (a string `enum` of `NAMES`,
/// described by the enum's doc comment) derived from it.
macro_rules! names {
    (
        $(#[doc = $doc:literal])*
        $what:literal
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[doc = $doc])*
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let doc: Vec<&str> = vec![$($doc.trim()),*];
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(doc.join("\n")))
                    .enum_values(Some($name::NAMES))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// Every wire name, in the order of `ALL`.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The wire name (what serde reads and writes).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value called `name`, if any.
            pub fn parse(name: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|v| v.as_str() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s).ok_or_else(|| UnknownName {
                    what: $what,
                    name: s.to_string(),
                })
            }
        }
    };
}

names! {
    /// What a job does: an import (a file into a dataset's table) or an
    /// export (a dataset's table into a file). docs/api.md, "The job".
    "job kind"
    pub enum JobKind {
        /// A file into a dataset's table.
        Import = "import",
        /// A dataset's table into a file.
        Export = "export",
    }
}

names! {
    /// Where a job stands. The transitions between these are
    /// `xlport_core::lifecycle`'s; docs/api.md, "The job".
    "job state"
    pub enum JobState {
        /// An import whose file has not reached the bucket yet.
        AwaitingUpload = "awaiting_upload",
        /// Ready for a worker; the message is on its queue.
        Queued = "queued",
        /// A worker holds the job's lease.
        Running = "running",
        /// Done: `counts` and the links say what came of it.
        Succeeded = "succeeded",
        /// Given up: `error` says why and what to do.
        Failed = "failed",
        /// An import aborted while it awaited its upload.
        Cancelled = "cancelled",
    }
}

impl JobState {
    /// Succeeded, failed or cancelled: nothing more will happen to the job.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// The transitions a job may take, the graph every step of
    /// `xlport_core::lifecycle` stays inside (tested there). `Running ->
    /// Running` is a worker taking over a job whose previous worker died (its
    /// lease ran out); `Running -> Queued` hands a job back for a retry. Only
    /// an import still waiting for its file can be cancelled.
    pub const fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (AwaitingUpload, Queued | Failed | Cancelled)
                | (Queued, Running | Failed)
                | (Running, Running | Queued | Succeeded | Failed)
        )
    }
}

names! {
    /// What an import does with a row whose key is already in the table or
    /// earlier in the file (`conflict_policy` of `POST /imports`; docs/api.md,
    /// and docs/spec/user_purchase.md, "File-level rules"). The default is
    /// `upsert`.
    "conflict_policy"
    #[derive(Default)]
    pub enum ConflictPolicy {
        /// The last accepted occurrence wins; existing rows are updated.
        #[default]
        Upsert = "upsert",
        /// Existing rows (and earlier occurrences in the file) are kept.
        Skip = "skip",
        /// Later duplicates, and rows whose key already exists, are rejected.
        Reject = "reject",
    }
}

names! {
    /// The file an export writes (`format` of `POST /exports`); the
    /// default is `xlsx`. docs/api.md.
    "format"
    #[derive(Default)]
    pub enum ExportFormat {
        /// Office Open XML workbook (ECMA-376), split over sheets of at most
        /// 1,048,575 data rows.
        #[default]
        Xlsx = "xlsx",
        /// UTF-8 CSV with a BOM, in one of the `CsvDialectName`s.
        Csv = "csv",
    }
}

impl ExportFormat {
    /// The file name extension, without the dot (the wire name).
    pub const fn extension(self) -> &'static str {
        self.as_str()
    }

    /// The `Content-Type` the file is stored (and downloaded) with.
    pub const fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

names! {
    /// How a CSV export writes its cells (`csv.dialect` of `POST /exports`);
    /// the default is `rfc4180`. What each one does is
    /// `xlport_core::export::CSV_DIALECTS`.
    "CSV dialect"
    #[derive(Default)]
    pub enum CsvDialectName {
        /// `,` between fields, `.` as decimal mark, ISO dates, LF (RFC 4180
        /// but for the line ends).
        #[default]
        Rfc4180 = "rfc4180",
        /// `;` between fields, `,` as decimal mark, DD/MM/YYYY dates, CRLF:
        /// Excel and LibreOffice in Brazilian Portuguese.
        ExcelBr = "excel-br",
    }
}

names! {
    /// The type of a dataset's column (`type` in `datasets.toml` and in
    /// `GET /datasets`): docs/spec/datasets.md, "Column types". The cell rules
    /// of the user_purchase types are docs/spec/user_purchase.md, "Cell rules";
    /// each type's rule is a module of `xlport_core::cells`.
    "column type"
    pub enum ColumnType {
        /// Brazilian individual taxpayer number: 11 digits, two mod-11 check digits.
        Cpf = "cpf",
        /// Brazilian company number: 14 characters, classic (digits) or alphanumeric.
        Cnpj = "cnpj",
        /// `0`/`1`, `true`/`false` or an Excel boolean.
        Boolean = "boolean",
        /// A calendar date: `YYYY-MM-DD` or `DD/MM/YYYY` text, or a date cell.
        Date = "date",
        /// A decimal number within the column's precision and scale.
        Decimal = "decimal",
        /// Any text, at most `max_length` characters when declared.
        Text = "text",
        /// A whole number within its Postgres type (`smallint`, `integer`,
        /// `bigint`): a numeric cell, or digits with thousands separators in
        /// groups of three.
        Integer = "integer",
        /// A binary floating-point number (`real`, `double precision`): a
        /// numeric cell, or dot or Brazilian notation, exponents allowed.
        Float = "float",
        /// A date and time (`timestamp`, `timestamptz`): ISO 8601 or
        /// `DD/MM/YYYY HH:MM[:SS]` text, or a date-time cell; without an
        /// offset, in the dataset's `timezone`.
        Timestamp = "timestamp",
        /// A UUID in its 36-character form, any case, optional braces.
        Uuid = "uuid",
        /// One of the column's `labels`, matched case- and
        /// accent-insensitively, stored as declared.
        Enum = "enum",
        /// Text that parses as JSON (`json`, `jsonb`).
        Json = "json",
    }
}

impl ColumnType {
    /// Length of a tax document once separators are removed.
    pub const fn document_len(self) -> Option<usize> {
        match self {
            ColumnType::Cpf => Some(11),
            ColumnType::Cnpj => Some(14),
            _ => None,
        }
    }
}

names! {
    /// The `code` of an `ErrorBody`, one per HTTP status the API
    /// answers errors with (docs/api.md, the table at the top).
    "error code"
    pub enum ErrorCode {
        /// 400: unknown format, filter or policy; malformed JSON; unknown
        /// field.
        BadRequest = "bad_request",
        /// 401: missing or unknown key.
        Unauthorized = "unauthorized",
        /// 403: the key may not create jobs of this kind (import, export).
        Forbidden = "forbidden",
        /// 404: unknown job or route, a dataset that does not exist or the
        /// key may not use, or an object the bucket no longer has.
        NotFound = "not_found",
        /// 405: the route exists for other methods.
        MethodNotAllowed = "method_not_allowed",
        /// 409: the upload can no longer change; a write Postgres refused.
        Conflict = "conflict",
        /// 413: declared size over the upload limit.
        PayloadTooLarge = "payload_too_large",
        /// 500: a fault of xlport's own (its text is logged, not returned).
        Internal = "internal",
        /// 503: Postgres, S3 or SQS is down.
        Unavailable = "unavailable",
    }
}

names! {
    /// The overall state `GET /health` reports: `ok` (200) when every
    /// dependency answered, `degraded` (503) otherwise.
    "health status"
    pub enum HealthStatus {
        /// Every dependency answered.
        Ok = "ok",
        /// At least one did not.
        Degraded = "degraded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's names, `as_str`, `NAMES` and `parse` agree for every value.
    #[test]
    fn every_set_reads_and_writes_its_one_list_of_names() {
        fn check<T>(all: &[T], names: &[&str])
        where
            T: Copy + PartialEq + fmt::Debug + Serialize + serde::de::DeserializeOwned,
            T: std::str::FromStr + fmt::Display,
        {
            assert_eq!(all.len(), names.len());
            for (v, name) in all.iter().zip(names) {
                assert_eq!(serde_json::to_value(v).ok(), Some((*name).into()));
                assert_eq!(serde_json::from_value::<T>((*name).into()).ok(), Some(*v));
                assert_eq!(v.to_string(), *name);
                assert!(name.parse::<T>().ok() == Some(*v));
            }
            assert!("nope".parse::<T>().is_err());
        }
        check(&JobKind::ALL, &JobKind::NAMES);
        check(&JobState::ALL, &JobState::NAMES);
        check(&ConflictPolicy::ALL, &ConflictPolicy::NAMES);
        check(&ExportFormat::ALL, &ExportFormat::NAMES);
        check(&CsvDialectName::ALL, &CsvDialectName::NAMES);
        check(&ColumnType::ALL, &ColumnType::NAMES);
        check(&ErrorCode::ALL, &ErrorCode::NAMES);
        check(&HealthStatus::ALL, &HealthStatus::NAMES);
    }

    #[test]
    fn choices_read_as_a_sentence() {
        assert_eq!(one_of(&ConflictPolicy::NAMES), "upsert, skip or reject");
        assert_eq!(one_of(&ExportFormat::NAMES), "xlsx or csv");
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(
            "x".parse::<JobState>().map_err(|e| e.to_string()),
            Err("unknown job state `x`".into())
        );
    }
}
