//! The body of every error answer (docs/api.md, the table at the top).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"error": "<what to fix>", "code": "<code>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// For people: what happened and what to do. A 500's or 503's says only
    /// what to do; the cause is logged. Read as empty when missing (an
    /// error of something between the client and the API).
    #[serde(default)]
    #[schema(required = true)]
    pub error: String,
    /// One of `ErrorCode`'s names. A string, not the enum, so a client
    /// keeps a code a newer API adds; read as empty when missing.
    #[serde(default)]
    #[schema(required = true, value_type = crate::ErrorCode)]
    pub code: String,
}
