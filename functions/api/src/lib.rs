//! The HTTP API (lambda_http). It never touches file bytes: it creates jobs,
//! hands out presigned S3 URLs and reports job status.
//!
//! [`App`] takes its job store, bucket and queue as ports
//! (`xlport_core::ports`): the function binary gives it Postgres, S3 and SQS
//! ([`App::from_deps`]); the tests in `tests/` give it the in-memory ports
//! and call [`App::handle`] in-process, with no service running. One module
//! per resource under `routes/`; the JSON shapes are in `views`.

pub mod error;
mod page;
mod routes;
mod views;

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use xlport_adapters::{Config, Deployed, Deps};
use xlport_core::Datasets;
use xlport_core::apikey::bearer_token;
use xlport_core::job::KeyId;
use xlport_core::ports::{JobStore, Ports};

pub use error::ApiError;
pub use routes::imports::{PartPlan, part_plan};

/// `value` as a JSON response with `status`.
pub fn json_response(status: u16, value: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(value.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The API over the ports `P` (a job store, a bucket and a queue).
pub struct App<P: Ports> {
    pub jobs: P::Jobs,
    pub objects: P::Objects,
    pub queue: P::Queue,
    pub config: Arc<Config>,
    pub datasets: Arc<Datasets>,
}

impl<P: Ports> Clone for App<P> {
    fn clone(&self) -> Self {
        App {
            jobs: self.jobs.clone(),
            objects: self.objects.clone(),
            queue: self.queue.clone(),
            config: self.config.clone(),
            datasets: self.datasets.clone(),
        }
    }
}

impl App<Deployed> {
    pub fn from_deps(deps: Deps) -> Self {
        App {
            jobs: deps.db,
            objects: deps.s3,
            queue: deps.sqs,
            config: deps.config,
            datasets: deps.datasets,
        }
    }
}

type ApiResult = Result<Response<Body>, ApiError>;

impl<P: Ports> App<P> {
    /// Entry point for every request; never fails, errors become JSON responses.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().trim_end_matches('/').to_string();
        let started = std::time::Instant::now();
        let mut resp = match self.route(&method, &path, req).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        page::common_headers(resp.headers_mut());
        tracing::info!(
            %method,
            path,
            status = resp.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        resp
    }

    async fn route(&self, method: &Method, path: &str, req: Request) -> ApiResult {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() && *method == Method::GET {
            // The browser page asks for the API key itself.
            return Ok(page::response(&self.config));
        }
        if segments.as_slice() == ["health"] {
            return match *method {
                Method::GET => Ok(self.health().await),
                _ => Err(ApiError::MethodNotAllowed(method.to_string())),
            };
        }
        let owner = self.authenticate(&req).await?;
        match (method.clone(), segments.as_slice()) {
            (Method::GET, ["datasets"]) => Ok(self.datasets()),
            (Method::GET, ["jobs"]) => self.list_jobs(owner).await,
            (Method::GET, ["jobs", id]) => self.get_job(owner, id).await,
            (Method::POST, ["imports"]) => self.create_import(owner, &req).await,
            (Method::POST, ["exports"]) => self.create_export(owner, &req).await,
            (Method::POST, ["imports", id, "parts"]) => self.upload_parts(owner, id, &req).await,
            (Method::POST, ["imports", id, "complete"]) => {
                self.complete_upload(owner, id, &req).await
            }
            (Method::POST, ["imports", id, "abort"]) => self.abort_upload(owner, id).await,
            (
                _,
                ["datasets"]
                | ["jobs"]
                | ["jobs", _]
                | ["imports"]
                | ["exports"]
                | ["imports", _, "parts" | "complete" | "abort"],
            ) => Err(ApiError::MethodNotAllowed(method.to_string())),
            _ => Err(ApiError::NotFound(format!("route {method} {path}"))),
        }
    }

    async fn authenticate(&self, req: &Request) -> Result<KeyId, ApiError> {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized)?;
        self.jobs
            .authenticate(token)
            .await
            .map_err(ApiError::job_store)?
            .ok_or(ApiError::Unauthorized)
    }
}

/// The request's body as JSON of type `T`; a 400 naming what is wrong.
fn parse_json<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.is_empty() {
        return Err(ApiError::BadRequest(
            "request body must be a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}
