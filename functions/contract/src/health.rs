//! `GET /health` (docs/api.md): each dependency's state, without a key.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::names::HealthStatus;

/// The answer of `GET /health`: 200 when `ok`, 503 when `degraded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when every check is.
    pub status: HealthStatus,
    /// One check per dependency.
    pub checks: HealthChecks,
    /// The api's version (its crate's).
    pub version: String,
}

/// One `Check` per dependency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthChecks {
    /// The job store.
    pub postgres: Check,
    /// The bucket.
    pub s3: Check,
    /// The imports queue.
    pub sqs_imports: Check,
    /// The exports queue.
    pub sqs_exports: Check,
}

impl HealthChecks {
    /// Whether every dependency answered.
    pub fn all_ok(&self) -> bool {
        [
            &self.postgres,
            &self.s3,
            &self.sqs_imports,
            &self.sqs_exports,
        ]
        .iter()
        .all(|c| c.ok)
    }
}

/// Whether a dependency answered within 3 s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// Whether it answered.
    pub ok: bool,
    /// When not ok: `unreachable` or `timed out after 3 s`, never the
    /// dependency's own words (they go to the log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
