//! `POST /imports` and its upload: the plan (one presigned PUT, or a
//! multipart upload's part URLs), more part URLs for a resumed upload, the
//! completion, and the abort. The bytes go straight to S3; the import
//! worker starts when S3 reports the object.

use std::collections::HashSet;

use lambda_http::{Body, Request};
use uuid::Uuid;
use xlport_contract::{
    CompleteRequest, ConflictPolicy, ImportCreated, ImportOptions, ImportRequest, JobOptions,
    MultipartPlan, PartUrl, PartsAnswer, PartsRequest, SinglePut, Upload, one_of,
};
use xlport_core::job::{Caller, Job, KeyId, NewJob, keys};
use xlport_core::ports::{JobStore, ObjectStore, Ports};
use xlport_core::{JobKind, JobState};

use crate::{ApiError, ApiResult, App, json_response, parse_json, views};

/// The longest filename an import takes, in bytes (S3 keys are at most 1,024).
const MAX_FILENAME_BYTES: usize = 255;

/// The longest ETag a completion may list, in characters (S3's are 32 hex
/// digits, a dash and a part count).
const MAX_ETAG_CHARS: usize = 100;

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

/// A 400 unless `numbers` are each a part of the plan, once.
fn check_part_numbers(
    numbers: impl IntoIterator<Item = i32>,
    plan: &PartPlan,
    twice: &str,
) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for n in numbers {
        if n < 1 || n > plan.count {
            return Err(ApiError::BadRequest(format!(
                "part {n} does not exist: this upload has parts 1 to {}",
                plan.count
            )));
        }
        if !seen.insert(n) {
            return Err(ApiError::BadRequest(format!("part {n} {twice}")));
        }
    }
    Ok(())
}

impl<P: Ports> App<P> {
    pub(crate) async fn create_import(&self, caller: &Caller, req: &Request) -> ApiResult {
        let owner = caller.key;
        let body: ImportRequest = parse_json(req)?;
        self.dataset_for(caller, &body.dataset, JobKind::Import)?;
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
        let max = self.config.max_upload_bytes;
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
        let policy = match body.conflict_policy.as_deref() {
            None => ConflictPolicy::Upsert,
            Some(name) => ConflictPolicy::parse(name).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown conflict_policy `{}`: use {}",
                    xlport_core::job::clip(name, 40),
                    one_of(&ConflictPolicy::NAMES)
                ))
            })?,
        };
        let id = Uuid::new_v4();
        let key = keys::import(id, &body.filename);
        let config = &self.config;
        let multipart = body.size >= config.multipart_threshold_bytes;
        let (upload, upload_id) = if multipart {
            let upload_id = self
                .objects
                .create_multipart_upload(&key, "application/octet-stream", None)
                .await?;
            let plan = part_plan(body.size, config.multipart_part_bytes);
            let urls = self.part_urls(&key, &upload_id, 1..=plan.count).await?;
            (
                Upload::Multipart(MultipartPlan {
                    part_size: plan.size,
                    part_count: plan.count,
                    parts: urls,
                    complete_url: format!("/imports/{id}/complete"),
                    more_parts_url: format!("/imports/{id}/parts"),
                    abort_url: format!("/imports/{id}/abort"),
                    expires_in: config.upload_url_ttl.as_secs(),
                }),
                Some(upload_id),
            )
        } else {
            let put = self
                .objects
                .presign_put(&key, body.size, config.upload_url_ttl)
                .await?;
            (
                Upload::Single(SinglePut {
                    method: put.method.to_string(),
                    url: put.url,
                    headers: put.headers.into_iter().collect(),
                    abort_url: format!("/imports/{id}/abort"),
                    expires_in: config.upload_url_ttl.as_secs(),
                }),
                None,
            )
        };
        let job = self
            .jobs
            .create_job(NewJob::import(
                id,
                owner,
                &body.dataset,
                &body.filename,
                i64::try_from(body.size).ok(),
                JobOptions::from(ImportOptions {
                    conflict_policy: policy,
                    dry_run: body.dry_run,
                })
                .to_json(),
                upload_id,
            ))
            .await
            .map_err(ApiError::job_store)?;
        let job = views::job(&job, self, false).await?;
        Ok(json_response(201, &ImportCreated { job, upload }))
    }

    async fn part_urls(
        &self,
        key: &str,
        upload_id: &str,
        numbers: impl IntoIterator<Item = i32>,
    ) -> Result<Vec<PartUrl>, ApiError> {
        let ttl = self.config.upload_url_ttl;
        let mut urls = Vec::new();
        for n in numbers {
            let url = self
                .objects
                .presign_upload_part(key, upload_id, n, ttl)
                .await?;
            urls.push(PartUrl {
                part_number: n,
                url,
            });
        }
        Ok(urls)
    }

    /// An import of this owner that is still waiting for its multipart
    /// upload: the job, its key, its upload id and its part plan.
    async fn pending_multipart(
        &self,
        owner: KeyId,
        id: &str,
    ) -> Result<(Job, String, String, PartPlan), ApiError> {
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
        let plan = part_plan(
            job.declared_size.unwrap_or(0).max(0) as u64,
            self.config.multipart_part_bytes,
        );
        Ok((job, key, upload_id, plan))
    }

    /// Fresh URLs for the parts asked for (all by default) and the parts
    /// S3 already has, so an interrupted upload resumes where it stopped.
    pub(crate) async fn upload_parts(&self, owner: KeyId, id: &str, req: &Request) -> ApiResult {
        // No body, or `null`, asks for every part.
        let body: PartsRequest = if matches!(req.body(), Body::Empty) {
            PartsRequest::default()
        } else {
            parse_json::<Option<PartsRequest>>(req)?.unwrap_or_default()
        };
        let (job, key, upload_id, plan) = self.pending_multipart(owner, id).await?;
        let numbers = body
            .part_numbers
            .unwrap_or_else(|| (1..=plan.count).collect());
        check_part_numbers(
            numbers.iter().copied(),
            &plan,
            "is asked for twice; ask for each part once",
        )?;
        let uploaded = self.objects.list_parts(&key, &upload_id).await?;
        let urls = self.part_urls(&key, &upload_id, numbers).await?;
        // Fresh URLs keep the upload alive: it expires a URL lifetime after
        // the last ones were handed out (adapters::sweep).
        self.jobs
            .touch_job(job.id)
            .await
            .map_err(ApiError::job_store)?;
        Ok(json_response(
            200,
            &PartsAnswer {
                part_size: plan.size,
                part_count: plan.count,
                parts: urls,
                uploaded,
            },
        ))
    }

    pub(crate) async fn complete_upload(&self, owner: KeyId, id: &str, req: &Request) -> ApiResult {
        let body: CompleteRequest = parse_json(req)?;
        let (job, key, upload_id, plan) = self.pending_multipart(owner, id).await?;
        if body.parts.is_empty() {
            return Err(ApiError::BadRequest(
                "`parts` must list every uploaded part".into(),
            ));
        }
        check_part_numbers(
            body.parts.iter().map(|p| p.part_number),
            &plan,
            "is listed twice; list each part once",
        )?;
        let parts: Vec<(i32, String)> = body
            .parts
            .into_iter()
            .map(|p| {
                (
                    p.part_number,
                    xlport_core::job::clip(&p.etag, MAX_ETAG_CHARS),
                )
            })
            .collect();
        self.objects
            .complete_multipart_upload(&key, &upload_id, &parts)
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
        Ok(json_response(200, &views::job(&job, self, false).await?))
    }

    /// Ends an import whose upload has not arrived, for both upload kinds:
    /// the multipart upload is aborted (S3 frees its parts) and anything a
    /// single PUT already put at the key is deleted; the job is cancelled.
    /// 409 once the file has arrived (the job is queued or later).
    pub(crate) async fn abort_upload(&self, owner: KeyId, id: &str) -> ApiResult {
        let job = self.owned_job(owner, id, Some(JobKind::Import)).await?;
        if job.state != JobState::AwaitingUpload {
            return Err(ApiError::Conflict(format!(
                "import {id} is {}; only an import awaiting its upload can be aborted",
                job.state
            )));
        }
        // Cancel first: an upload that lands from now on finds the job ended,
        // and the import worker deletes it.
        self.jobs
            .cancel_upload(job.id, owner)
            .await
            .map_err(ApiError::job_store)?;
        if let Some(key) = &job.object_key {
            match &job.upload_id {
                Some(upload_id) => self.objects.abort_multipart_upload(key, upload_id).await?,
                None => self.objects.delete(key).await?,
            }
        }
        let job = self
            .jobs
            .job_for_owner(owner, job.id)
            .await
            .map_err(ApiError::job_store)?
            .unwrap_or(job);
        Ok(json_response(200, &views::job(&job, self, false).await?))
    }
}
