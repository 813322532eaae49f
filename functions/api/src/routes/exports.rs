//! `POST /exports`: a job that streams a dataset into a file, queued for the
//! export worker.

use uuid::Uuid;
use xlport_contract::{CsvOptions, ExportFormat, ExportOptions, ExportRequest, JobOptions, one_of};
use xlport_core::JobKind;
use xlport_core::export::{CsvDialect, parse_filter};
use xlport_core::job::{Caller, NewJob};
use xlport_core::message::ExportRequested;
use xlport_core::ports::{JobQueue, JobStore, Ports};

use crate::{ApiError, ApiResult, App, json_response, parse_json, views};

impl<P: Ports> App<P> {
    /// Creates the job and queues its message; a queue that cannot take it
    /// fails the job at once (503), so no job waits for a message never sent.
    pub(crate) async fn create_export(
        &self,
        caller: &Caller,
        req: &lambda_http::Request,
    ) -> ApiResult {
        let owner = caller.key;
        let body: ExportRequest = parse_json(req)?;
        let dataset = self.dataset_for(caller, &body.dataset, JobKind::Export)?;
        let format = match body.format.as_deref() {
            None => ExportFormat::default(),
            Some(name) => ExportFormat::parse(name).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown format `{}`: use {}",
                    xlport_core::job::clip(name, 40),
                    one_of(&ExportFormat::NAMES)
                ))
            })?,
        };
        parse_filter(dataset, &body.filter).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let dialect = match (&body.csv, format) {
            (None, _) => None,
            (Some(_), ExportFormat::Xlsx) => {
                return Err(ApiError::BadRequest(
                    "`csv` options are for `\"format\": \"csv\"` exports".into(),
                ));
            }
            (Some(csv), ExportFormat::Csv) => Some(match csv.dialect.as_deref() {
                None => CsvDialect::default_dialect(),
                Some(name) => CsvDialect::named(name).map_err(ApiError::BadRequest)?,
            }),
        };
        let options = JobOptions::from(ExportOptions {
            filter: body.filter,
            csv: dialect.map(|d| CsvOptions { dialect: d.name }),
        });
        let id = Uuid::new_v4();
        let filename = format!(
            "{}-{}.{}",
            dataset.name,
            chrono::Utc::now().format("%Y%m%d-%H%M%S"),
            format.extension()
        );
        let job = self
            .jobs
            .create_job(NewJob::export(
                id,
                owner,
                &dataset.name,
                format.extension(),
                Some(filename),
                options.to_json(),
            ))
            .await
            .map_err(ApiError::job_store)?;
        let message = serde_json::to_string(&ExportRequested { job_id: id })
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Err(e) = self
            .queue
            .send(&self.config.exports_queue_url, message)
            .await
        {
            tracing::error!(job_id = %id, error = %e, "could not queue an export");
            self.jobs
                .fail_job(
                    id,
                    "the export could not be queued (the queue was unavailable); start it again",
                )
                .await
                .map_err(ApiError::job_store)?;
            return Err(ApiError::Unavailable(format!("the exports queue: {e}")));
        }
        Ok(json_response(202, &views::job(&job, self, false).await?))
    }
}
