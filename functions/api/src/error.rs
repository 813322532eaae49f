//! One error type for the whole API, each variant mapped to an HTTP status and
//! a JSON body `{"error": "...", "code": "..."}` a person can act on.

use lambda_http::{Body, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API key: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::BadRequest(_) => 400,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn into_response(self) -> Response<Body> {
        if matches!(self, ApiError::Internal(_) | ApiError::Unavailable(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = crate::json_response(
            self.status(),
            &json!({ "error": self.to_string(), "code": self.code() }),
        );
        if matches!(self, ApiError::Unauthorized)
            && let Ok(v) = "Bearer".parse()
        {
            resp.headers_mut().insert("www-authenticate", v);
        }
        resp
    }
}

impl From<xlport_adapters::postgres::DbError> for ApiError {
    fn from(e: xlport_adapters::postgres::DbError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<xlport_core::ports::StoreError> for ApiError {
    fn from(e: xlport_core::ports::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
