//! `POST /exports`: a job that streams a dataset into a file, queued for the
//! export worker.

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_core::export::{CsvDialect, ExportFormat, parse_filter};
use xlport_core::job::{KeyId, NewJob};
use xlport_core::message::ExportRequested;
use xlport_core::ports::{JobQueue, JobStore, Ports};
use xlport_core::{JobKind, JobState};

use crate::{ApiError, ApiResult, App, json_response, parse_json, views};

/// The body of `POST /exports` (docs/api.md).
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

impl<P: Ports> App<P> {
    /// Creates the job and queues its message; a queue that cannot take it
    /// fails the job at once (503), so no job waits for a message never sent.
    pub(crate) async fn create_export(
        &self,
        owner: KeyId,
        req: &lambda_http::Request,
    ) -> ApiResult {
        let body: CreateExport = parse_json(req)?;
        let dataset = self
            .datasets
            .get(&body.dataset)
            .ok_or_else(|| self.unknown_dataset(&body.dataset))?;
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
                        .unwrap_or(CsvDialect::default_dialect().name.as_str()),
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
            .jobs
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
