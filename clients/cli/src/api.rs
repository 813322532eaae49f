//! The xlport HTTP API, as the CLI uses it. Only the public API: the CLI
//! never talks to Postgres, and reaches S3 only through presigned URLs.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::error::{CliError, CliResult};

#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str, http: reqwest::Client) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
        }
    }

    /// `path` is relative to the API (`/jobs/…`), as the API's own links are.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> CliResult<Value> {
        let url = format!("{}{path}", self.base);
        let mut last = None;
        // Reads are retried on connection errors and 5xx answers; writes only
        // when the request cannot have reached the API (a refused connection).
        let attempts = if method == Method::GET { 4 } else { 2 };
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300 << attempt)).await;
            }
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(60));
            if let Some(b) = &body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.map_err(|e| CliError::Unreachable {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?;
                    if status.is_server_error() && method == Method::GET && attempt + 1 < attempts {
                        last = Some(api_error(status, &text));
                        continue;
                    }
                    if !status.is_success() {
                        return Err(api_error(status, &text));
                    }
                    return serde_json::from_str(&text).map_err(|e| CliError::Api {
                        status: status.as_u16(),
                        code: "bad_response".into(),
                        message: format!("the API at {url} answered with something that is not JSON ({e}): is XLPORT_API the xlport API?"),
                    });
                }
                Err(e) => {
                    let retry = e.is_connect() || (method == Method::GET && e.is_timeout());
                    last = Some(CliError::Unreachable {
                        url: url.clone(),
                        reason: error_chain(&e),
                    });
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| CliError::Unreachable {
            url,
            reason: "no answer".into(),
        }))
    }

    pub async fn datasets(&self) -> CliResult<Value> {
        self.call(Method::GET, "/datasets", None).await
    }

    pub async fn jobs(&self) -> CliResult<Value> {
        self.call(Method::GET, "/jobs", None).await
    }

    pub async fn job(&self, id: &str) -> CliResult<Value> {
        self.call(Method::GET, &format!("/jobs/{id}"), None).await
    }

    pub async fn create_export(&self, body: Value) -> CliResult<Value> {
        self.call(Method::POST, "/exports", Some(body)).await
    }

    pub async fn create_import(&self, body: Value) -> CliResult<Value> {
        self.call(Method::POST, "/imports", Some(body)).await
    }

    /// Fresh part URLs (all parts, or those listed) and the parts S3 has.
    pub async fn upload_parts(&self, id: &str, numbers: Option<&[i32]>) -> CliResult<Value> {
        let body = numbers.map(|n| json!({ "part_numbers": n }));
        self.call(Method::POST, &format!("/imports/{id}/parts"), body)
            .await
    }

    pub async fn complete_upload(&self, id: &str, parts: &[(i32, String)]) -> CliResult<Value> {
        let parts: Vec<Value> = parts
            .iter()
            .map(|(n, etag)| json!({"part_number": n, "etag": etag}))
            .collect();
        self.call(
            Method::POST,
            &format!("/imports/{id}/complete"),
            Some(json!({ "parts": parts })),
        )
        .await
    }

    pub async fn abort_upload(&self, id: &str) -> CliResult<Value> {
        self.call(Method::POST, &format!("/imports/{id}/abort"), None)
            .await
    }
}

/// The API's `{"error", "code"}` body, or what there was of it.
fn api_error(status: StatusCode, body: &str) -> CliError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut message = field("error").unwrap_or_else(|| {
        let snippet: String = body.chars().take(200).collect();
        format!(
            "the API answered {status}{}",
            if snippet.is_empty() {
                String::new()
            } else {
                format!(": {snippet}")
            }
        )
    });
    if status == StatusCode::UNAUTHORIZED {
        message.push_str(" (set XLPORT_TOKEN or pass --token)");
    }
    CliError::Api {
        status: status.as_u16(),
        code: field("code").unwrap_or_else(|| "http_error".into()),
        message,
    }
}

/// An error with its causes, which reqwest keeps in `source()`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
