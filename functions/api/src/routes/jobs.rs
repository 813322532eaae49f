//! `GET /jobs` and `GET /jobs/{id}`: the caller's jobs, and nobody else's.

use uuid::Uuid;
use xlport_core::JobKind;
use xlport_core::job::{Job, KeyId};
use xlport_core::ports::{JobStore, Ports};

use crate::{ApiError, ApiResult, App, json_response, views};

/// How many jobs `GET /jobs` lists, newest first.
const LIST_LIMIT: i64 = 50;

impl<P: Ports> App<P> {
    pub(crate) async fn list_jobs(&self, owner: KeyId) -> ApiResult {
        let jobs = self
            .jobs
            .list_jobs(owner, LIST_LIMIT)
            .await
            .map_err(ApiError::job_store)?;
        let mut out = Vec::with_capacity(jobs.len());
        for job in &jobs {
            out.push(views::job(job, self, false).await?);
        }
        Ok(json_response(200, &out))
    }

    pub(crate) async fn get_job(&self, owner: KeyId, id: &str) -> ApiResult {
        let job = self.owned_job(owner, id, None).await?;
        Ok(json_response(200, &views::job(&job, self, true).await?))
    }

    /// The caller's job `id` (of `kind`, when given): anything else, someone
    /// else's job and a malformed id included, is a 404.
    pub(crate) async fn owned_job(
        &self,
        owner: KeyId,
        id: &str,
        kind: Option<JobKind>,
    ) -> Result<Job, ApiError> {
        let what = kind.map_or("job", JobKind::as_str);
        let not_found = || ApiError::NotFound(format!("{what} {}", xlport_core::job::clip(id, 40)));
        let id = Uuid::parse_str(id).map_err(|_| not_found())?;
        self.jobs
            .job_for_owner(owner, id)
            .await
            .map_err(ApiError::job_store)?
            .filter(|j| kind.is_none_or(|k| j.kind == k))
            .ok_or_else(not_found)
    }
}
