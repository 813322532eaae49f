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
use xlport_core::export::{CsvDialect, ExportFormat, parse_filter};
use xlport_core::job::keys;
use xlport_core::message::ExportRequested;
use xlport_core::ports::{JobQueue, ObjectStore};
use xlport_core::{JobKind, JobState};

pub use error::ApiError;

mod page;

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
            return Ok(page::response(&self.deps.config));
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

    /// The caller's job `id` (of `kind`, when given): anything else, someone
    /// else's job included, is a 404.
    async fn owned_job(
        &self,
        owner: KeyId,
        id: &str,
        kind: Option<JobKind>,
    ) -> Result<xlport_core::job::Job, ApiError> {
        let what = kind.map_or("job", JobKind::as_str);
        let not_found = || ApiError::NotFound(format!("{what} {id}"));
        let id = Uuid::parse_str(id).map_err(|_| not_found())?;
        self.deps
            .db
            .job_for_owner(owner, id)
            .await?
            .filter(|j| kind.is_none_or(|k| j.kind == k))
            .ok_or_else(not_found)
    }

    async fn get_job(&self, owner: KeyId, id: &str) -> ApiResult {
        let job = self.owned_job(owner, id, None).await?;
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
        // S3 keys are at most 1,024 bytes; a name is a name, not a payload.
        if body.filename.len() > MAX_FILENAME_BYTES {
            return Err(ApiError::BadRequest(format!(
                "`filename` is {} bytes; at most {MAX_FILENAME_BYTES} are accepted",
                body.filename.len()
            )));
        }
        if body.filename.chars().any(char::is_control) {
            return Err(ApiError::BadRequest(
                "`filename` must not hold control characters (NUL, line breaks...)".into(),
            ));
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
                "unknown conflict_policy `{}`: use upsert, skip or reject",
                xlport_core::job::clip(&policy, 40)
            )));
        }
        let id = Uuid::new_v4();
        let key = keys::import(id, &body.filename);
        let config = &self.deps.config;
        let multipart = body.size >= config.multipart_threshold_bytes;
        let (upload, upload_id) = if multipart {
            let mp = self
                .deps
                .s3
                .start_multipart(&key, "application/octet-stream", None)
                .await?;
            let plan = part_plan(body.size, config.multipart_part_bytes);
            let urls = self.part_urls(&key, &mp.upload_id, 1..=plan.count).await?;
            (
                json!({
                    "type": "multipart",
                    "part_size": plan.size,
                    "part_count": plan.count,
                    "parts": urls,
                    "complete_url": format!("/imports/{id}/complete"),
                    "more_parts_url": format!("/imports/{id}/parts"),
                    "abort_url": format!("/imports/{id}/abort"),
                    "expires_in": config.upload_url_ttl.as_secs(),
                }),
                Some(mp.upload_id),
            )
        } else {
            let put = self
                .deps
                .s3
                .presign_put(&key, body.size, config.upload_url_ttl)
                .await?;
            (
                json!({
                    "type": "single",
                    "method": put.method,
                    "url": put.url,
                    "headers": put.headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<String, Value>>(),
                    "abort_url": format!("/imports/{id}/abort"),
                    "expires_in": config.upload_url_ttl.as_secs(),
                }),
                None,
            )
        };
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
                upload_id,
            })
            .await?;
        let mut view = views::job(&job, &self.deps, false).await?;
        view["upload"] = upload;
        Ok(json_response(201, &view))
    }
}

/// The longest filename an import takes, in bytes (S3 keys are at most 1,024).
const MAX_FILENAME_BYTES: usize = 255;

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
            /// CSV options: `{"dialect": "rfc4180" | "excel-br"}`.
            #[serde(default)]
            csv: Option<CsvOptions>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct CsvOptions {
            #[serde(default)]
            dialect: Option<String>,
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
                    "unknown format `{}`: use xlsx or csv",
                    xlport_core::job::clip(other, 40)
                )));
            }
        };
        parse_filter(dataset, &body.filter).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let dialect = match (&body.csv, format) {
            (None, _) => None,
            (Some(_), ExportFormat::Xlsx) => {
                return Err(ApiError::BadRequest(
                    "`csv` options are for `\"format\": \"csv\"` exports".into(),
                ));
            }
            (Some(csv), ExportFormat::Csv) => Some(
                CsvDialect::named(
                    csv.dialect
                        .as_deref()
                        .unwrap_or(CsvDialect::default_dialect().name),
                )
                .map_err(ApiError::BadRequest)?,
            ),
        };
        let mut options = json!({ "filter": body.filter });
        if let Some(dialect) = dialect {
            options["csv"] = json!({ "dialect": dialect.name });
        }
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
                options,
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

/// How a file of `size` bytes is cut into parts: at least `min_part` bytes
/// each (S3's minimum is 5 MiB) and at most 10,000 parts (S3's maximum).
pub struct PartPlan {
    pub size: u64,
    pub count: i32,
}

pub fn part_plan(size: u64, min_part: u64) -> PartPlan {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(10_000).div_ceil(MIB) * MIB;
    let part = min_part.max(needed).max(5 * MIB);
    PartPlan {
        size: part,
        count: size.div_ceil(part).max(1) as i32,
    }
}

impl App {
    async fn part_urls(
        &self,
        key: &str,
        upload_id: &str,
        numbers: impl IntoIterator<Item = i32>,
    ) -> Result<Vec<Value>, ApiError> {
        let ttl = self.deps.config.upload_url_ttl;
        let mut urls = Vec::new();
        for n in numbers {
            let url = self
                .deps
                .s3
                .presign_upload_part(key, upload_id, n, ttl)
                .await?;
            urls.push(json!({"part_number": n, "url": url}));
        }
        Ok(urls)
    }

    /// An import of this owner that is still waiting for its multipart upload.
    async fn pending_multipart(
        &self,
        owner: KeyId,
        id: &str,
    ) -> Result<(xlport_core::job::Job, String, String), ApiError> {
        let job = self.owned_job(owner, id, Some(JobKind::Import)).await?;
        if job.state != JobState::AwaitingUpload {
            return Err(ApiError::Conflict(format!(
                "import {id} is {}; its upload can no longer change",
                job.state
            )));
        }
        let (Some(key), Some(upload_id)) = (job.object_key.clone(), job.upload_id.clone()) else {
            return Err(ApiError::Conflict(format!(
                "import {id} uses a single PUT, not a multipart upload"
            )));
        };
        Ok((job, key, upload_id))
    }

    /// Fresh URLs for the parts asked for (all by default) and the parts
    /// S3 already has, so an interrupted upload resumes where it stopped.
    async fn upload_parts(&self, owner: KeyId, id: &str, req: &Request) -> ApiResult {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct MoreParts {
            #[serde(default)]
            part_numbers: Option<Vec<i32>>,
        }
        let body: MoreParts = if matches!(req.body(), Body::Empty) {
            MoreParts::default()
        } else {
            parse_json(req)?
        };
        let (job, key, upload_id) = self.pending_multipart(owner, id).await?;
        let plan = part_plan(
            job.declared_size.unwrap_or(0).max(0) as u64,
            self.deps.config.multipart_part_bytes,
        );
        let numbers = body
            .part_numbers
            .unwrap_or_else(|| (1..=plan.count).collect());
        if let Some(bad) = numbers.iter().find(|n| **n < 1 || **n > plan.count) {
            return Err(ApiError::BadRequest(format!(
                "part {bad} does not exist: this upload has parts 1 to {}",
                plan.count
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = numbers.iter().find(|n| !seen.insert(**n)) {
            return Err(ApiError::BadRequest(format!(
                "part {twice} is asked for twice; ask for each part once"
            )));
        }
        let uploaded = self.deps.s3.list_parts(&key, &upload_id).await?;
        let urls = self.part_urls(&key, &upload_id, numbers).await?;
        // Fresh URLs keep the upload alive: it expires a URL lifetime after
        // the last ones were handed out (adapters::sweep).
        self.deps.db.touch_job(job.id).await?;
        Ok(json_response(
            200,
            &json!({
                "part_size": plan.size,
                "part_count": plan.count,
                "parts": urls,
                "uploaded": uploaded.into_iter().map(|(n, etag, size)| json!({"part_number": n, "etag": etag, "size": size})).collect::<Vec<_>>(),
            }),
        ))
    }

    async fn complete_upload(&self, owner: KeyId, id: &str, req: &Request) -> ApiResult {
        #[derive(Deserialize)]
        struct PartRef {
            part_number: i32,
            etag: String,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Complete {
            parts: Vec<PartRef>,
        }
        let body: Complete = parse_json(req)?;
        let (job, key, upload_id) = self.pending_multipart(owner, id).await?;
        if body.parts.is_empty() {
            return Err(ApiError::BadRequest(
                "`parts` must list every uploaded part".into(),
            ));
        }
        let plan = part_plan(
            job.declared_size.unwrap_or(0).max(0) as u64,
            self.deps.config.multipart_part_bytes,
        );
        let mut seen = std::collections::HashSet::new();
        for p in &body.parts {
            if p.part_number < 1 || p.part_number > plan.count {
                return Err(ApiError::BadRequest(format!(
                    "part {} does not exist: this upload has parts 1 to {}",
                    p.part_number, plan.count
                )));
            }
            if !seen.insert(p.part_number) {
                return Err(ApiError::BadRequest(format!(
                    "part {} is listed twice; list each part once",
                    p.part_number
                )));
            }
        }
        let parts: Vec<(i32, String)> = body
            .parts
            .into_iter()
            .map(|p| (p.part_number, xlport_core::job::clip(&p.etag, 100)))
            .collect();
        self.deps
            .s3
            .multipart(&key, &upload_id)
            .complete_with(&parts)
            .await
            .map_err(|e| {
                // S3's own text (request ids and all) goes to the log only.
                tracing::warn!(error = %e, "completing a multipart upload failed");
                ApiError::BadRequest(
                    "S3 refused to complete the upload: are all parts uploaded, each listed \
                     once with the ETag S3 returned for it?"
                        .into(),
                )
            })?;
        Ok(json_response(
            200,
            &views::job(&job, &self.deps, false).await?,
        ))
    }

    /// Ends an import whose upload has not arrived, for both upload kinds:
    /// the multipart upload is aborted (S3 frees its parts) and anything a
    /// single PUT already put at the key is deleted; the job is cancelled.
    /// 409 once the file has arrived (the job is queued or later).
    async fn abort_upload(&self, owner: KeyId, id: &str) -> ApiResult {
        let job = self.owned_job(owner, id, Some(JobKind::Import)).await?;
        if job.state != JobState::AwaitingUpload {
            return Err(ApiError::Conflict(format!(
                "import {id} is {}; only an import awaiting its upload can be aborted",
                job.state
            )));
        }
        // Cancel first: an upload that lands from now on finds the job ended,
        // and the import worker deletes it.
        self.deps.db.cancel_upload(job.id, owner).await?;
        if let Some(key) = &job.object_key {
            match &job.upload_id {
                Some(upload_id) => self.deps.s3.multipart(key, upload_id).abort().await?,
                None => self.deps.s3.delete(key).await?,
            }
        }
        let job = self
            .deps
            .db
            .job_for_owner(owner, job.id)
            .await?
            .unwrap_or(job);
        Ok(json_response(
            200,
            &views::job(&job, &self.deps, false).await?,
        ))
    }
}

fn unknown_dataset(deps: &Deps, name: &str) -> ApiError {
    let known: Vec<&str> = deps.datasets.names().collect();
    ApiError::BadRequest(format!(
        "unknown dataset `{}`; known datasets: {}",
        xlport_core::job::clip(name, 40),
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
