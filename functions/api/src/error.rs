//! One error type for the whole API, each variant mapped to an HTTP status and
//! a JSON body ([`ErrorBody`], `{"error": "...", "code": "..."}`) a person can
//! act on. The
//! text of an internal error or of a dependency's outage is logged, never
//! returned: a client learns what happened and what to do, not the
//! database's or S3's own words.

use lambda_http::{Body, Response};
use xlport_contract::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API key: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A 404 whose text says it all (an unknown dataset, with the ones the
    /// key may use).
    #[error("{0}")]
    NotFoundSaying(String),
    /// The key may not do this (create jobs of a kind it is not allowed).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The path exists for other methods: `allow` lists them (the `Allow`
    /// header a 405 carries, RFC 9110 §15.5.6).
    #[error("method {method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: String },
    /// A dependency (the job store, the bucket, a queue) failed; the text,
    /// for the log, says which and how.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// A fault of xlport's own; the text is for the log.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::BadRequest(_) => 400,
            ApiError::NotFound(_) | ApiError::NotFoundSaying(_) => 404,
            ApiError::Forbidden(_) => 403,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::NotFound(_) | ApiError::NotFoundSaying(_) => ErrorCode::NotFound,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What the client is told: the error's text, except for
    /// [`ApiError::Internal`] and [`ApiError::Unavailable`], whose text is
    /// logged and replaced by what a person can do.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Unavailable(_) => {
                "a service xlport depends on is unavailable; try again in a minute".into()
            }
            ApiError::Internal(_) => {
                "xlport failed to handle the request; it was logged, try again".into()
            }
            other => other.to_string(),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        if matches!(self, ApiError::Internal(_) | ApiError::Unavailable(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = crate::json_response(
            self.status(),
            &ErrorBody {
                error: self.public_message(),
                code: self.code().as_str().to_string(),
            },
        );
        if matches!(self, ApiError::Unauthorized)
            && let Ok(v) = "Bearer".parse()
        {
            resp.headers_mut().insert("www-authenticate", v);
        }
        if let ApiError::MethodNotAllowed { allow, .. } = &self
            && let Ok(v) = allow.parse()
        {
            resp.headers_mut().insert("allow", v);
        }
        resp
    }
}

impl ApiError {
    /// A failure of the job store (any [`xlport_core::ports::JobStore`]):
    /// a write its schema refused is a 409 saying why (by constraint name,
    /// `JobStoreError::refusal`); anything else is its outage, for the log.
    pub fn job_store(e: impl xlport_core::ports::JobStoreError) -> Self {
        match e.refusal() {
            Some(why) => ApiError::Conflict(why.to_string()),
            None => ApiError::Unavailable(format!("the job store: {e}")),
        }
    }
}

/// A missing object is a 404 (a report or export removed by the bucket's
/// lifecycle rule); any other storage failure is the bucket's outage.
impl From<xlport_core::ports::StoreError> for ApiError {
    fn from(e: xlport_core::ports::StoreError) -> Self {
        match e {
            xlport_core::ports::StoreError::NotFound(what) => ApiError::NotFound(what),
            other => ApiError::Unavailable(format!("the bucket: {other}")),
        }
    }
}
