//! The xlport HTTP API, as the CLI uses it. Only the public API: the CLI
//! never talks to Postgres, and reaches S3 only through presigned URLs. The
//! bodies and answers are the contract's types (`xlport_contract`,
//! docs/openapi.json).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use xlport_contract::{
    CompleteRequest, DatasetView, ErrorBody, ExportRequest, ImportCreated, ImportRequest, JobView,
    PartEtag, PartsAnswer, PartsRequest,
};

use crate::error::{CliError, CliResult};

/// An answer of the API twice: as it came, for `--json` (which prints it
/// whole, with any field this CLI does not know), and read into the
/// contract's type, for everything the CLI does with it.
pub struct Answer<T> {
    pub raw: Value,
    pub typed: T,
}

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
    /// The answer is read into `T`; `what` names it in the error when it is
    /// not one.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        what: &str,
    ) -> CliResult<Answer<T>> {
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
            if let Some(b) = body {
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
                    let raw: Value = serde_json::from_str(&text).map_err(|e| CliError::Api {
                        status: status.as_u16(),
                        code: "bad_response".into(),
                        message: format!("the API at {url} answered with something that is not JSON ({e}): is XLPORT_API the xlport API?"),
                    })?;
                    let typed = T::deserialize(&raw).map_err(|e| CliError::Api {
                        status: status.as_u16(),
                        code: "bad_response".into(),
                        message: format!(
                            "the API's answer is not {what} ({e}): is the CLI older than the API?"
                        ),
                    })?;
                    return Ok(Answer { raw, typed });
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

    pub async fn datasets(&self) -> CliResult<Answer<Vec<DatasetView>>> {
        self.call(Method::GET, "/datasets", None::<&()>, "a list of datasets")
            .await
    }

    pub async fn jobs(&self) -> CliResult<Answer<Vec<JobView>>> {
        self.call(Method::GET, "/jobs", None::<&()>, "a list of jobs")
            .await
    }

    pub async fn job(&self, id: &str) -> CliResult<Answer<JobView>> {
        self.call(Method::GET, &format!("/jobs/{id}"), None::<&()>, "a job")
            .await
    }

    pub async fn create_export(&self, body: &ExportRequest) -> CliResult<Answer<JobView>> {
        self.call(Method::POST, "/exports", Some(body), "a job")
            .await
    }

    pub async fn create_import(&self, body: &ImportRequest) -> CliResult<Answer<ImportCreated>> {
        self.call(
            Method::POST,
            "/imports",
            Some(body),
            "an import and its upload plan",
        )
        .await
    }

    /// Fresh part URLs (all parts, or those listed) and the parts S3 has.
    pub async fn upload_parts(&self, id: &str, numbers: Option<&[i32]>) -> CliResult<PartsAnswer> {
        let body = numbers.map(|n| PartsRequest {
            part_numbers: Some(n.to_vec()),
        });
        let path = format!("/imports/{id}/parts");
        let answer = self
            .call(Method::POST, &path, body.as_ref(), "a list of part URLs")
            .await?;
        Ok(answer.typed)
    }

    pub async fn complete_upload(&self, id: &str, parts: &[(i32, String)]) -> CliResult<JobView> {
        let body = CompleteRequest {
            parts: parts
                .iter()
                .map(|(n, etag)| PartEtag {
                    part_number: *n,
                    etag: etag.clone(),
                })
                .collect(),
        };
        let path = format!("/imports/{id}/complete");
        let answer = self.call(Method::POST, &path, Some(&body), "a job").await?;
        Ok(answer.typed)
    }

    pub async fn abort_upload(&self, id: &str) -> CliResult<Answer<JobView>> {
        self.call(
            Method::POST,
            &format!("/imports/{id}/abort"),
            None::<&()>,
            "a job",
        )
        .await
    }
}

/// The API's `{"error", "code"}` body ([`ErrorBody`]), or what there was of it.
fn api_error(status: StatusCode, body: &str) -> CliError {
    let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
    let field =
        |k: fn(&ErrorBody) -> &String| parsed.as_ref().map(k).filter(|v| !v.is_empty()).cloned();
    let mut message = field(|b| &b.error).unwrap_or_else(|| {
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
        code: field(|b| &b.code).unwrap_or_else(|| "http_error".into()),
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
