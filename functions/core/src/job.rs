//! The job model: its kinds and states, the stored job, what a new job
//! starts with, and where its objects live. Which step moves a job from
//! which state to which is [`crate::lifecycle`]'s; [`JobState::can_become`]
//! is the graph those steps must stay inside (tested there).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kinds and states of a job are the API's names
/// ([`xlport_contract::names`]), with the graph of transitions
/// ([`JobState::can_become`]).
pub use xlport_contract::{JobKind, JobState};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("job cannot go from {from} to {to}")]
pub struct InvalidTransition {
    pub from: JobState,
    pub to: JobState,
}

pub fn transition(from: JobState, to: JobState) -> Result<JobState, InvalidTransition> {
    if from.can_become(to) {
        Ok(to)
    } else {
        Err(InvalidTransition { from, to })
    }
}

/// A job as stored: what was asked, where it stands, what it produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub kind: JobKind,
    pub dataset: String,
    pub state: JobState,
    pub format: Option<String>,
    pub options: serde_json::Value,
    pub filename: Option<String>,
    pub object_key: Option<String>,
    pub declared_size: Option<i64>,
    pub object_size: Option<i64>,
    pub etag: Option<String>,
    pub upload_id: Option<String>,
    pub rows_done: i64,
    pub bytes_done: i64,
    pub parts_done: i32,
    pub parts_total: Option<i32>,
    pub counts: serde_json::Value,
    pub warnings: serde_json::Value,
    pub error: Option<String>,
    pub result_key: Option<String>,
    pub attempts: i32,
    /// Why the last attempt failed, when the job was handed back for a retry
    /// (bounded, for people: no internals).
    pub last_error: Option<String>,
    /// When the next attempt is due, after a transient failure.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// The job `new` describes, as created at `at`: nothing done yet, no
    /// counts, no warnings.
    pub fn new(new: NewJob, at: DateTime<Utc>) -> Job {
        Job {
            id: new.id,
            kind: new.kind,
            dataset: new.dataset,
            state: new.state,
            format: new.format,
            options: new.options,
            filename: new.filename,
            object_key: new.object_key,
            declared_size: new.declared_size,
            object_size: None,
            etag: None,
            upload_id: new.upload_id,
            rows_done: 0,
            bytes_done: 0,
            parts_done: 0,
            parts_total: None,
            counts: serde_json::json!({}),
            warnings: serde_json::json!([]),
            error: None,
            result_key: None,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            created_at: at,
            updated_at: at,
            started_at: None,
            finished_at: None,
        }
    }
}

/// The longest an error text kept on a job may be, in characters.
pub const MAX_ERROR_CHARS: usize = 500;

/// `text` cut to [`MAX_ERROR_CHARS`] characters: what a job keeps and shows
/// of an error.
pub fn bounded_error(text: &str) -> String {
    clip(text, MAX_ERROR_CHARS)
}

/// The most warnings one call adds to a job (a file's unknown columns and
/// the like), so a job's view stays small whatever the file holds (issue #15).
pub const MAX_WARNINGS: usize = 20;

/// `warnings` as a job keeps them: the first [`MAX_WARNINGS`], each cut by
/// [`bounded_error`].
pub fn bounded_warnings(warnings: &[String]) -> Vec<String> {
    warnings
        .iter()
        .take(MAX_WARNINGS)
        .map(|w| bounded_error(w))
        .collect()
}

/// `text` as stored or echoed: at most `max_chars` characters, the last one
/// `…` when it was cut. Every string xlport echoes from input is bounded.
pub fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().nth(max_chars).is_none() {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Identity of an API key (a caller), resolved from a bearer token: the
/// owner of the jobs it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub Uuid);

/// What an API key may do (docs/spec/datasets.md, "Access"): the datasets
/// it may use, and which kinds of job it may create. A dataset a key may
/// not use is, for that key, a dataset that does not exist (a 404).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The datasets it may use, by name; `None`: every one.
    pub datasets: Option<Vec<String>>,
    pub import: bool,
    pub export: bool,
}

impl Access {
    /// Every dataset, both kinds: what a key has unless it was limited.
    pub fn full() -> Self {
        Access {
            datasets: None,
            import: true,
            export: true,
        }
    }

    /// An access from what an operator typed (`xlport-admin create-key
    /// --datasets orders,products --can import`): `datasets` a comma list of
    /// dataset names, each one of `known` (`None`: every dataset); `can` a
    /// comma list of `import` and `export` (`None`: both). The error names
    /// what is wrong and what would be accepted.
    pub fn parse<'k>(
        datasets: Option<&str>,
        can: Option<&str>,
        known: impl Iterator<Item = &'k str> + Clone,
    ) -> Result<Self, String> {
        let datasets = match datasets {
            None => None,
            Some(list) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    return Err("--datasets names no dataset".into());
                }
                let unknown: Vec<&str> = names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !known.clone().any(|k| k == *n))
                    .collect();
                if !unknown.is_empty() {
                    let known: Vec<&str> = known.collect();
                    return Err(format!(
                        "unknown dataset(s) {}; known datasets: {}",
                        unknown.join(", "),
                        known.join(", ")
                    ));
                }
                Some(names)
            }
        };
        let (mut import, mut export) = (can.is_none(), can.is_none());
        for word in can.unwrap_or_default().split(',').map(str::trim) {
            match word {
                "import" => import = true,
                "export" => export = true,
                "" => {}
                other => {
                    return Err(format!(
                        "--can `{}`: use import, export or import,export",
                        clip(other, 40)
                    ));
                }
            }
        }
        if !import && !export {
            return Err("--can names neither import nor export".into());
        }
        Ok(Access {
            datasets,
            import,
            export,
        })
    }

    /// Whether the key may see `dataset` at all.
    pub fn may_use(&self, dataset: &str) -> bool {
        self.datasets
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == dataset))
    }

    /// Whether the key may create jobs of `kind`.
    pub fn may_create(&self, kind: JobKind) -> bool {
        match kind {
            JobKind::Import => self.import,
            JobKind::Export => self.export,
        }
    }
}

/// A caller the API knows: its key, and what that key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key: KeyId,
    pub access: Access,
}

/// What a new job starts with.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub owner: KeyId,
    pub kind: JobKind,
    pub dataset: String,
    pub state: JobState,
    pub format: Option<String>,
    pub options: serde_json::Value,
    pub filename: Option<String>,
    pub object_key: Option<String>,
    pub declared_size: Option<i64>,
    pub upload_id: Option<String>,
}

impl NewJob {
    /// An import of `filename` into `dataset`, awaiting its upload at
    /// [`keys::import`]`(id, filename)`, of `declared_size` bytes; `upload_id`
    /// when the client uploads it in parts (S3 multipart upload).
    pub fn import(
        id: Uuid,
        owner: KeyId,
        dataset: &str,
        filename: &str,
        declared_size: Option<i64>,
        options: serde_json::Value,
        upload_id: Option<String>,
    ) -> NewJob {
        NewJob {
            id,
            owner,
            kind: JobKind::Import,
            dataset: dataset.to_string(),
            state: JobState::AwaitingUpload,
            format: None,
            options,
            filename: Some(filename.to_string()),
            object_key: Some(keys::import(id, filename)),
            declared_size,
            upload_id,
        }
    }

    /// An export of `dataset` in `format` (`xlsx`, `csv`), queued, downloaded
    /// as `filename` (the worker names it after the dataset when `None`).
    pub fn export(
        id: Uuid,
        owner: KeyId,
        dataset: &str,
        format: &str,
        filename: Option<String>,
        options: serde_json::Value,
    ) -> NewJob {
        NewJob {
            id,
            owner,
            kind: JobKind::Export,
            dataset: dataset.to_string(),
            state: JobState::Queued,
            format: Some(format.to_string()),
            options,
            filename,
            object_key: None,
            declared_size: None,
            upload_id: None,
        }
    }
}

/// What happened when an uploaded object was matched to its job.
#[derive(Debug, Clone)]
pub enum UploadOutcome {
    /// The job moved from awaiting_upload to queued.
    Queued(Job),
    /// The job had already moved on (the same object recorded before, or
    /// the import ended first): a redelivery, or a late upload.
    AlreadyRecorded(Job),
    /// No import job has this key.
    UnknownKey,
}

/// A job that has waited for a worker longer than the sweep's bound (see
/// [`crate::ports::JobStore::stalled_jobs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    pub id: Uuid,
    pub kind: JobKind,
    pub state: JobState,
    pub object_key: Option<String>,
    pub object_size: Option<i64>,
    pub etag: Option<String>,
    /// Since when it waits: its last change, or its next attempt's due time
    /// when that is later.
    pub waiting_since: DateTime<Utc>,
}

/// An import still awaiting its upload after its upload URLs expired (see
/// [`crate::ports::JobStore::expired_uploads`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredUpload {
    pub id: Uuid,
    pub object_key: Option<String>,
    /// Its multipart upload, for the sweep to abort.
    pub upload_id: Option<String>,
}

/// The result of a worker trying to take a job.
#[derive(Debug)]
pub enum Claim {
    /// The job is this worker's until its lease runs out.
    Claimed(Box<Job>),
    /// Another worker holds a live lease: try again later.
    Busy,
    /// Finished, cancelled or not yet uploaded: nothing to do. Never a
    /// queued job, nor a running one whose lease lapsed.
    NotClaimable(JobState),
    Missing,
}

/// One committed (or failed) part of an import, as stored; `GET /jobs/{id}`
/// lists it under `parts` as the contract's `PartView`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartStatus {
    pub part_no: i32,
    pub state: String,
    /// Workbooks only: the sheets of the part's first and last rows.
    pub first_sheet: Option<String>,
    pub first_row: Option<i64>,
    pub last_sheet: Option<String>,
    pub last_row: Option<i64>,
    pub rows_read: i32,
    pub inserted: i32,
    pub updated: i32,
    pub rejected: i32,
    pub counts: serde_json::Value,
    pub error: Option<String>,
}

/// Where a job's object lives. Keys are built here and only here.
pub mod keys {
    use uuid::Uuid;

    pub fn import(job: Uuid, filename: &str) -> String {
        format!("imports/{job}/{}", sanitize_filename(filename))
    }

    pub fn export(job: Uuid, filename: &str) -> String {
        format!("exports/{job}/{}", sanitize_filename(filename))
    }

    pub fn error_report(job: Uuid) -> String {
        format!("reports/{job}/errors.xlsx")
    }

    /// The job an uploaded object belongs to, when its key is one xlport made.
    pub fn import_job_of(key: &str) -> Option<Uuid> {
        let rest = key.strip_prefix("imports/")?;
        let (id, name) = rest.split_once('/')?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        Uuid::parse_str(id).ok()
    }

    /// Keeps letters, digits, `.`, `-`, `_` (spaces become `_`); drops path
    /// parts and leading dots so a name can never escape its prefix.
    pub fn sanitize_filename(name: &str) -> String {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let mut out: String = base
            .chars()
            .filter_map(|c| match c {
                c if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') => Some(c),
                c if c.is_whitespace() => Some('_'),
                c if c.is_alphanumeric() => Some(ascii_fold(c)),
                _ => None,
            })
            .collect();
        while out.starts_with('.') {
            out.remove(0);
        }
        out.truncate(120);
        if out.is_empty() {
            "upload".to_string()
        } else {
            out
        }
    }

    fn ascii_fold(c: char) -> char {
        let folded = crate::dataset::normalize_header(&c.to_string());
        folded
            .chars()
            .next()
            .filter(char::is_ascii_alphanumeric)
            .unwrap_or('_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_is_read_from_what_an_operator_typed() {
        let known = ["user_purchase", "orders"];
        let parse = |d, c| Access::parse(d, c, known.iter().copied());
        assert_eq!(parse(None, None), Ok(Access::full()));
        let limited = parse(Some("orders, user_purchase"), Some("import")).unwrap();
        assert_eq!(
            limited.datasets.as_deref(),
            Some(&["orders".to_string(), "user_purchase".to_string()][..])
        );
        assert!(limited.may_use("orders") && !limited.may_use("products"));
        assert!(limited.may_create(JobKind::Import) && !limited.may_create(JobKind::Export));
        assert_eq!(
            parse(Some("orders,nope"), None),
            Err("unknown dataset(s) nope; known datasets: user_purchase, orders".into())
        );
        assert_eq!(
            parse(Some(" , "), None),
            Err("--datasets names no dataset".into())
        );
        assert_eq!(
            parse(None, Some("delete")),
            Err("--can `delete`: use import, export or import,export".into())
        );
        assert_eq!(
            parse(None, Some("")),
            Err("--can names neither import nor export".into())
        );
        let both = parse(None, Some("export,import")).unwrap();
        assert!(both.may_create(JobKind::Import) && both.may_create(JobKind::Export));
    }

    #[test]
    fn happy_paths_are_allowed() {
        use JobState::*;
        for path in [
            &[AwaitingUpload, Queued, Running, Succeeded][..],
            &[Queued, Running, Failed],
            &[Queued, Running, Running, Succeeded],
            &[AwaitingUpload, Cancelled],
        ] {
            for w in path.windows(2) {
                assert!(w[0].can_become(w[1]), "{} -> {}", w[0], w[1]);
            }
        }
    }

    #[test]
    fn terminal_states_are_final() {
        for from in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in JobState::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn no_skipping_the_queue() {
        assert_eq!(
            transition(JobState::AwaitingUpload, JobState::Running),
            Err(InvalidTransition {
                from: JobState::AwaitingUpload,
                to: JobState::Running
            })
        );
    }

    #[test]
    fn state_names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        assert!("done".parse::<JobState>().is_err());
    }

    #[test]
    fn object_keys() {
        let id = Uuid::nil();
        assert_eq!(
            keys::import(id, "../../etc/pass wd.xlsx"),
            format!("imports/{id}/pass_wd.xlsx")
        );
        assert_eq!(keys::sanitize_filename("..hidden"), "hidden");
        assert_eq!(
            keys::sanitize_filename("Relatório 2026.xlsx"),
            "Relatorio_2026.xlsx"
        );
        assert_eq!(keys::sanitize_filename("///"), "upload");
        assert_eq!(keys::import_job_of(&keys::import(id, "a.csv")), Some(id));
        assert_eq!(keys::import_job_of("imports/not-a-uuid/a.csv"), None);
        assert_eq!(keys::import_job_of(&format!("imports/{id}/x/y")), None);
        assert_eq!(keys::import_job_of(&format!("exports/{id}/a.csv")), None);
    }
}
