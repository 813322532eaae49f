//! The HTTP API (lambda_http). It never touches file bytes: it creates jobs,
//! hands out presigned S3 URLs and reports job status.

pub mod error;
mod views;

use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_adapters::Deps;
use xlport_adapters::postgres::{KeyId, NewJob};
use xlport_core::apikey::bearer_token;
use xlport_core::export::{ExportFormat, parse_filter};
use xlport_core::job::keys;
use xlport_core::message::ExportRequested;
use xlport_core::ports::{JobQueue, ObjectStore};
use xlport_core::{JobKind, JobState};

pub use error::ApiError;

pub fn json_response(status: u16, value: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(value.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[derive(Clone)]
pub struct App {
    pub deps: Deps,
}

type ApiResult = Result<Response<Body>, ApiError>;

impl App {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    /// Entry point for every request; never fails, errors become JSON responses.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().trim_end_matches('/').to_string();
        let started = std::time::Instant::now();
        let resp = match self.route(&method, &path, req).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
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
            (_, ["datasets"] | ["jobs"] | ["jobs", _] | ["imports"] | ["exports"]) => {
                Err(ApiError::MethodNotAllowed(method.to_string()))
            }
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
        self.deps
            .db
            .authenticate(token)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .ok_or(ApiError::Unauthorized)
    }

    /// Reports each dependency; 503 when any is down, so load balancers and
    /// scripts can wait on it.
    async fn health(&self) -> Response<Body> {
        let timeout = Duration::from_secs(3);
        let (pg, s3, imports, exports) = tokio::join!(
            tokio::time::timeout(timeout, self.deps.db.ping()),
            tokio::time::timeout(timeout, self.deps.s3.ping()),
            tokio::time::timeout(
                timeout,
                self.deps.sqs.ping(&self.deps.config.imports_queue_url)
            ),
            tokio::time::timeout(
                timeout,
                self.deps.sqs.ping(&self.deps.config.exports_queue_url)
            ),
        );
        fn check<E: std::fmt::Display>(
            r: Result<Result<(), E>, tokio::time::error::Elapsed>,
        ) -> Value {
            match r {
                Ok(Ok(())) => json!({"ok": true}),
                Ok(Err(e)) => json!({"ok": false, "error": e.to_string()}),
                Err(_) => json!({"ok": false, "error": "timed out after 3 s"}),
            }
        }
        let checks = json!({
            "postgres": check(pg),
            "s3": check(s3),
            "sqs_imports": check(imports),
            "sqs_exports": check(exports),
        });
        let ok = checks
            .as_object()
            .is_some_and(|m| m.values().all(|v| v["ok"] == json!(true)));
        json_response(
            if ok { 200 } else { 503 },
            &json!({"status": if ok { "ok" } else { "degraded" }, "checks": checks, "version": env!("CARGO_PKG_VERSION")}),
        )
    }

    fn datasets(&self) -> Response<Body> {
        let list: Vec<Value> = self.deps.datasets.iter().map(views::dataset).collect();
        json_response(200, &json!(list))
    }

    async fn list_jobs(&self, owner: KeyId) -> ApiResult {
        let jobs = self.deps.db.list_jobs(owner, 50).await?;
        let mut out = Vec::with_capacity(jobs.len());
        for job in &jobs {
            out.push(views::job(job, &self.deps, false).await?);
        }
        Ok(json_response(200, &json!(out)))
    }

    async fn get_job(&self, owner: KeyId, id: &str) -> ApiResult {
        let not_found = || ApiError::NotFound(format!("job {id}"));
        let id = Uuid::parse_str(id).map_err(|_| not_found())?;
        let job = self
            .deps
            .db
            .job_for_owner(owner, id)
            .await?
            .ok_or_else(not_found)?;
        Ok(json_response(
            200,
            &views::job(&job, &self.deps, true).await?,
        ))
    }

    async fn create_import(&self, owner: KeyId, req: &Request) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct CreateImport {
            dataset: String,
            filename: String,
            size: u64,
            #[serde(default)]
            conflict_policy: Option<String>,
            #[serde(default)]
            dry_run: bool,
        }
        let body: CreateImport = parse_json(req)?;
        if self.deps.datasets.get(&body.dataset).is_none() {
            return Err(unknown_dataset(&self.deps, &body.dataset));
        }
        if body.filename.trim().is_empty() {
            return Err(ApiError::BadRequest("`filename` must not be empty".into()));
        }
        let max = self.deps.config.max_upload_bytes;
        if body.size > max {
            return Err(ApiError::PayloadTooLarge(format!(
                "file is {} bytes; the upload size limit is {max} bytes",
                body.size
            )));
        }
        if body.size == 0 {
            return Err(ApiError::BadRequest(
                "`size` must be the file's size in bytes (> 0)".into(),
            ));
        }
        let policy = body.conflict_policy.unwrap_or_else(|| "upsert".into());
        if !["upsert", "skip", "reject"].contains(&policy.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown conflict_policy `{policy}`: use upsert, skip or reject"
            )));
        }
        let id = Uuid::new_v4();
        let key = keys::import(id, &body.filename);
        let upload = self
            .deps
            .s3
            .presign_put(&key, self.deps.config.upload_url_ttl)
            .await?;
        let job = self
            .deps
            .db
            .create_job(NewJob {
                id,
                owner,
                kind: JobKind::Import,
                dataset: body.dataset,
                state: JobState::AwaitingUpload,
                format: None,
                options: json!({"conflict_policy": policy, "dry_run": body.dry_run}),
                filename: Some(body.filename),
                object_key: Some(key),
                declared_size: i64::try_from(body.size).ok(),
                upload_id: None,
            })
            .await?;
        let mut view = views::job(&job, &self.deps, false).await?;
        view["upload"] = json!({
            "method": upload.method,
            "url": upload.url,
            "headers": upload.headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<String, Value>>(),
            "expires_in": self.deps.config.upload_url_ttl.as_secs(),
        });
        Ok(json_response(201, &view))
    }
}

impl App {
    async fn create_export(&self, owner: KeyId, req: &Request) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct CreateExport {
            dataset: String,
            #[serde(default)]
            format: Option<String>,
            #[serde(default)]
            filter: Value,
        }
        let body: CreateExport = parse_json(req)?;
        let dataset = self
            .deps
            .datasets
            .get(&body.dataset)
            .ok_or_else(|| unknown_dataset(&self.deps, &body.dataset))?;
        let format = match body.format.as_deref().unwrap_or("xlsx") {
            "xlsx" => ExportFormat::Xlsx,
            "csv" => ExportFormat::Csv,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown format `{other}`: use xlsx or csv"
                )));
            }
        };
        parse_filter(dataset, &body.filter).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let id = Uuid::new_v4();
        let filename = format!(
            "{}-{}.{}",
            dataset.name,
            chrono::Utc::now().format("%Y%m%d-%H%M%S"),
            format.extension()
        );
        let job = self
            .deps
            .db
            .create_job(NewJob {
                id,
                owner,
                kind: JobKind::Export,
                dataset: dataset.name.clone(),
                state: JobState::Queued,
                format: Some(format.extension().to_string()),
                options: json!({ "filter": body.filter }),
                filename: Some(filename),
                object_key: None,
                declared_size: None,
                upload_id: None,
            })
            .await?;
        let message = serde_json::to_string(&ExportRequested { job_id: id })
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Err(e) = self
            .deps
            .sqs
            .send(&self.deps.config.exports_queue_url, message)
            .await
        {
            let reason = format!("could not queue the export: {e}");
            self.deps.db.fail_job(id, &reason).await?;
            return Err(ApiError::Unavailable(reason));
        }
        Ok(json_response(
            202,
            &views::job(&job, &self.deps, false).await?,
        ))
    }
}

fn unknown_dataset(deps: &Deps, name: &str) -> ApiError {
    let known: Vec<&str> = deps.datasets.names().collect();
    ApiError::BadRequest(format!(
        "unknown dataset `{name}`; known datasets: {}",
        known.join(", ")
    ))
}

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
