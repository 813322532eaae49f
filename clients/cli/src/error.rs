//! What can go wrong in the CLI, and the exit code each maps to.

use serde_json::{Value, json};

/// Exit codes, as `xlport --help` documents them.
pub mod exit {
    /// Done: the job succeeded (with no rejected rows, for an import).
    pub const DONE: i32 = 0;
    /// The job failed or was cancelled, or a transfer failed for good.
    pub const FAILED: i32 = 1;
    /// Usage or configuration: bad arguments, a file that cannot be read,
    /// an API that cannot be reached or refuses the key, a request it rejects.
    pub const USAGE: i32 = 2;
    /// Done, but the import rejected some rows (see the error report).
    pub const REJECTED_ROWS: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or configuration the user has to fix.
    #[error("{0}")]
    Usage(String),
    /// The API could not be reached at all.
    #[error("cannot reach the xlport API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The API answered with an error.
    #[error("{message} (HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// A transfer to or from S3 failed after its retries.
    #[error("{0}")]
    Transfer(String),
    /// A local file could not be written.
    #[error("{0}")]
    Io(String),
    /// Ctrl-C. Jobs already started go on without the CLI.
    #[error("interrupted{0}")]
    Interrupted(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Unreachable { .. } => exit::USAGE,
            // The request itself was wrong (bad key, unknown dataset or job,
            // a file over the size limit): the user fixes it and runs again.
            CliError::Api { status, .. } if (400..500).contains(status) => exit::USAGE,
            CliError::Api { .. }
            | CliError::Transfer(_)
            | CliError::Io(_)
            | CliError::Interrupted(_) => exit::FAILED,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::Unreachable { .. } => "unreachable",
            CliError::Api { code, .. } => code,
            CliError::Transfer(_) => "transfer_failed",
            CliError::Io(_) => "io",
            CliError::Interrupted(_) => "interrupted",
        }
    }

    /// The single JSON object `--json` prints for an error.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "error": self.to_string(),
            "code": self.code(),
            "exit_code": self.exit_code(),
        });
        if let CliError::Api { status, .. } = self {
            v["status"] = json!(status);
        }
        v
    }
}

pub type CliResult<T> = Result<T, CliError>;
