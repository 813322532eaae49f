//! The HTTP API (lambda_http). It never touches file bytes: it creates jobs,
//! hands out presigned S3 URLs and reports job status.
//!
//! [`App`] takes its job store, bucket and queue as ports
//! (`xlport_core::ports`): the function binary gives it Postgres, S3 and SQS
//! ([`App::from_deps`]); the tests in `tests/` give it the in-memory ports
//! and call [`App::handle`] in-process, with no service running. One module
//! per resource under `routes/`, all of them in [`ROUTES`]. The JSON shapes
//! are the contract's (`xlport_contract`), built from core's models in
//! `views`; [`openapi`] describes them and the routes (docs/openapi.json).

pub mod error;
pub mod openapi;
mod page;
mod routes;
mod views;

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use xlport_adapters::{Config, Deployed, Deps};
use xlport_core::Datasets;
use xlport_core::apikey::bearer_token;
use xlport_core::job::Caller;
use xlport_core::ports::{JobStore, Ports};

pub use error::ApiError;
pub use routes::imports::{PartPlan, part_plan};

/// `body` as a JSON response with `status`; a 500 if it cannot be written
/// as JSON (a fault of xlport's own).
pub fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    // Through a `Value`, whose objects keep their keys sorted: the bytes are
    // those the API sent when it built its JSON by hand.
    let text = match serde_json::to_value(body) {
        Ok(value) => value.to_string(),
        Err(e) => return ApiError::Internal(format!("writing a response: {e}")).into_response(),
    };
    let mut resp = Response::new(Body::Text(text));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Who may call a route, and how a request with another method on its path
/// is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the browser page, which asks for the key itself. Another
    /// method on its path is a 405 listing `GET`, without a key.
    Page,
    /// Anyone, so that load balancers and scripts need no key; another
    /// method on its path is a 405, without a key.
    Open,
    /// A known API key (`Authorization: Bearer <key>`); another method on
    /// its path is a 405, once the key is known.
    Key,
}

/// What a route does: one handler each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Page,
    Health,
    Datasets,
    ListJobs,
    GetJob,
    CreateExport,
    CreateImport,
    UploadParts,
    CompleteUpload,
    AbortUpload,
}

impl Op {
    /// Who may call the route.
    pub fn access(self) -> Access {
        match self {
            Op::Page => Access::Page,
            Op::Health => Access::Open,
            _ => Access::Key,
        }
    }
}

/// A route: its method, its path (`{id}` stands for one segment, as in
/// OpenAPI) and its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub op: Op,
}

/// Every route the API serves, the one list dispatch goes by; the tests
/// hold docs/openapi.json and docs/api.md's route table to it.
pub const ROUTES: &[Route] = &[
    Route::new("GET", "/", Op::Page),
    Route::new("GET", "/health", Op::Health),
    Route::new("GET", "/datasets", Op::Datasets),
    Route::new("GET", "/jobs", Op::ListJobs),
    Route::new("GET", "/jobs/{id}", Op::GetJob),
    Route::new("POST", "/exports", Op::CreateExport),
    Route::new("POST", "/imports", Op::CreateImport),
    Route::new("POST", "/imports/{id}/parts", Op::UploadParts),
    Route::new("POST", "/imports/{id}/complete", Op::CompleteUpload),
    Route::new("POST", "/imports/{id}/abort", Op::AbortUpload),
];

impl Route {
    const fn new(method: &'static str, path: &'static str, op: Op) -> Route {
        Route { method, path, op }
    }

    /// Whether `segments` (a request's path split at `/`, empty ones left
    /// out) are this route's path; then its `{id}` segment, if it has one.
    fn matches<'a>(&self, segments: &[&'a str]) -> Option<Option<&'a str>> {
        let mut id = None;
        let mut count = 0;
        for (n, want) in self.path.split('/').filter(|s| !s.is_empty()).enumerate() {
            let got = segments.get(n)?;
            if want.starts_with('{') {
                id = Some(*got);
            } else if want != *got {
                return None;
            }
            count = n + 1;
        }
        (count == segments.len()).then_some(id)
    }
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
            jobs: deps.jobs,
            objects: deps.objects,
            queue: deps.queue,
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

    /// Finds the request's route in [`ROUTES`] and asks for the key where
    /// the route's [`Access`] wants one.
    async fn route(&self, method: &Method, path: &str, req: Request) -> ApiResult {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let on_path: Vec<(&Route, Option<&str>)> = ROUTES
            .iter()
            .filter_map(|r| r.matches(&segments).map(|id| (r, id)))
            .collect();
        let has = |access: Access| on_path.iter().any(|(r, _)| r.op.access() == access);
        let not_allowed = || {
            let mut allow: Vec<&str> = on_path.iter().map(|(r, _)| r.method).collect();
            allow.dedup();
            ApiError::MethodNotAllowed {
                method: method.to_string(),
                allow: allow.join(", "),
            }
        };
        let found = on_path
            .iter()
            .find(|(r, _)| r.method == method.as_str())
            .copied();
        match found {
            Some((route, id)) if route.op.access() != Access::Key => {
                return self.serve(route.op, None, id, &req).await;
            }
            None if has(Access::Open) || has(Access::Page) => return Err(not_allowed()),
            _ => {}
        }
        let caller = self.authenticate(&req).await?;
        match found {
            Some((route, id)) => self.serve(route.op, Some(caller), id, &req).await,
            None if has(Access::Key) => Err(not_allowed()),
            None => Err(ApiError::NotFound(format!("route {method} {path}"))),
        }
    }

    /// Runs `op`'s handler on the path's `{id}`, for `caller`: known for
    /// every route whose access is [`Access::Key`] (a 401 if not).
    async fn serve(
        &self,
        op: Op,
        caller: Option<Caller>,
        id: Option<&str>,
        req: &Request,
    ) -> ApiResult {
        let caller = caller.ok_or(ApiError::Unauthorized);
        let owner = || {
            caller
                .as_ref()
                .map(|c| c.key)
                .map_err(|_| ApiError::Unauthorized)
        };
        let id = id.unwrap_or_default();
        match op {
            // The browser page asks for the API key itself.
            Op::Page => Ok(page::response(&self.config)),
            Op::Health => Ok(self.health().await),
            Op::Datasets => Ok(self.datasets(&caller?.access)),
            Op::ListJobs => self.list_jobs(owner()?).await,
            Op::GetJob => self.get_job(owner()?, id).await,
            Op::CreateExport => self.create_export(&caller?, req).await,
            Op::CreateImport => self.create_import(&caller?, req).await,
            Op::UploadParts => self.upload_parts(owner()?, id, req).await,
            Op::CompleteUpload => self.complete_upload(owner()?, id, req).await,
            Op::AbortUpload => self.abort_upload(owner()?, id).await,
        }
    }

    async fn authenticate(&self, req: &Request) -> Result<Caller, ApiError> {
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
