//! The import worker: receives S3 object-created notifications through the
//! `imports` queue, matches each object to its job, and loads the file.
//!
//! The object is spooled to the temp dir (one chunk in memory at a time),
//! checked (format, header, limits) before anything is written, then parsed
//! on a blocking thread into parts of N rows while an async loader commits
//! each part: COPY into staging, merge per conflict policy, counts and
//! rejected rows in the same transaction. A redelivered message resumes
//! after the last committed part. Failures are reported per record (SQS
//! partial batch response), so one bad message never sends its neighbours
//! back to the queue.

mod report;

use std::sync::atomic::Ordering;

use anyhow::{Context, anyhow};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::json;
use xlport_adapters::Deps;
use xlport_adapters::worker::{
    DeadLetter, Finished, Progress, ScratchDir, each_record, run_job, spawn_heartbeat,
};
use xlport_contract::ImportOptions;
use xlport_core::JobState;
use xlport_core::decode::{self, DecodeError, Limits};
use xlport_core::import::{ConflictPolicy, ImportCounts, Part, PartBuilder};
use xlport_core::job::{Job, UploadOutcome, keys};
use xlport_core::lifecycle::Permanent;
use xlport_core::message::{ImportNotification, ObjectCreated, parse_import_notification};
use xlport_core::ports::{
    ImportSession, ImportTarget, JobStore, LoadSpec, ObjectStore, Ports, StoreError, TableError,
};

/// Handles one SQS batch and reports the records to retry.
///
/// `P`: the ports it runs on, `Deployed` in the function and the in-memory
/// ones in this crate's tests.
pub async fn handle_batch<P: Ports>(deps: &Deps<P>, event: SqsEvent) -> SqsBatchResponse {
    each_record(deps, event, |record| async move {
        handle_record(deps, &record).await
    })
    .await
}

async fn handle_record<P: Ports>(deps: &Deps<P>, record: &SqsMessage) -> anyhow::Result<()> {
    let body = record.body.as_deref().unwrap_or_default();
    let notification = parse_import_notification(body)
        .map_err(|e| DeadLetter::unreadable("an S3 event", e, body))?;
    match notification {
        ImportNotification::TestEvent => {
            tracing::info!("ignoring s3:TestEvent");
            Ok(())
        }
        ImportNotification::Objects(objects) => {
            for object in objects {
                handle_object(deps, &object).await?;
            }
            Ok(())
        }
    }
}

async fn handle_object<P: Ports>(deps: &Deps<P>, object: &ObjectCreated) -> anyhow::Result<()> {
    if object.bucket != deps.config.bucket {
        tracing::warn!(bucket = %object.bucket, key = %object.key, "object in a bucket this deployment does not own; ignored");
        return Ok(());
    }
    let Some(job_id) = keys::import_job_of(&object.key) else {
        tracing::warn!(key = %object.key, "key is not an xlport import; ignored");
        return Ok(());
    };
    let size = i64::try_from(object.size)?;
    let job = match deps
        .jobs
        .record_upload(job_id, &object.key, size, &object.etag)
        .await?
    {
        UploadOutcome::UnknownKey => {
            tracing::warn!(%job_id, key = %object.key, "no import job waits for this object; ignored");
            return Ok(());
        }
        // The import ended (aborted, expired) before its file arrived: the
        // file has no job to go to and does not stay in the bucket.
        UploadOutcome::AlreadyRecorded(job)
            if job.etag.is_none()
                && matches!(job.state, JobState::Cancelled | JobState::Failed) =>
        {
            tracing::warn!(%job_id, state = %job.state, key = %object.key, "an upload for an import that has ended; deleting it");
            remove_refused(deps, &object.key).await;
            return Ok(());
        }
        UploadOutcome::AlreadyRecorded(job) => {
            tracing::info!(%job_id, state = %job.state, etag = %object.etag, "object already recorded (redelivery)");
            job
        }
        UploadOutcome::Queued(job) => {
            tracing::info!(%job_id, key = %object.key, size = object.size, etag = %object.etag, "import object received");
            job
        }
    };
    if job.etag.as_deref() != Some(object.etag.as_str()) {
        tracing::warn!(%job_id, "an event for another version of the object; ignored");
        return Ok(());
    }
    if let Some(declared) = job.declared_size
        && declared != size
    {
        let reason = format!(
            "the uploaded file is {size} bytes but the import was created for {declared} bytes; \
             create a new import with the file's real size"
        );
        deps.jobs.fail_job(job_id, &reason).await?;
        remove_refused(deps, &object.key).await;
        return Ok(());
    }
    if size as u64 > deps.config.max_upload_bytes {
        let reason = format!(
            "the file is {size} bytes, over the upload size limit of {} bytes (XLPORT_MAX_UPLOAD_BYTES)",
            deps.config.max_upload_bytes
        );
        deps.jobs.fail_job(job_id, &reason).await?;
        remove_refused(deps, &object.key).await;
        return Ok(());
    }
    process(deps, job_id).await
}

/// Deletes an upload xlport refused before reading it. A failure is logged,
/// not retried: the job's outcome is already decided, and the bucket's
/// lifecycle rule (infra/) removes what is left.
async fn remove_refused<P: Ports>(deps: &Deps<P>, key: &str) {
    match deps.objects.delete(key).await {
        Ok(()) => tracing::info!(key, "refused upload deleted"),
        Err(e) => tracing::warn!(key, error = %e, "could not delete a refused upload"),
    }
}

async fn process<P: Ports>(deps: &Deps<P>, job_id: uuid::Uuid) -> anyhow::Result<()> {
    run_job(
        &deps.jobs,
        job_id,
        "import",
        deps.config.job_lease,
        |job, worker| async move { run_import(deps, &job, &worker).await },
    )
    .await
}

/// A table port's failure as the lifecycle takes it: a data exception no
/// retry fixes fails the job; anything else is retried.
fn table_failure(e: TableError) -> anyhow::Error {
    match e {
        TableError::Data(message) => anyhow!(Permanent(format!(
            "Postgres refused the file's values: {message}"
        ))),
        other => anyhow!(other),
    }
}

fn decode_failure(e: DecodeError) -> anyhow::Error {
    match e {
        DecodeError::Io(io) => anyhow!(io).context("reading the spooled file"),
        other => anyhow!(Permanent(other.to_string())),
    }
}

async fn run_import<P: Ports>(deps: &Deps<P>, job: &Job, worker: &str) -> anyhow::Result<Finished> {
    let started = std::time::Instant::now();
    let dataset = deps
        .datasets
        .get(&job.dataset)
        .ok_or_else(|| Permanent(format!("dataset `{}` is not configured", job.dataset)))?
        .clone();
    // The options as the api stored them (docs/api.md, "The job").
    let options: ImportOptions = serde_json::from_value(job.options.clone())
        .map_err(|e| Permanent(format!("the import's options cannot be read: {e}")))?;
    let key = job
        .object_key
        .clone()
        .ok_or_else(|| Permanent("the job has no object".into()))?;

    let progress = Progress::default();
    let heartbeat = spawn_heartbeat(
        &deps.jobs,
        deps.config.job_lease,
        job.id,
        worker,
        progress.clone(),
    );
    let result = load(deps, job, worker, &dataset, options, &key, &progress).await;
    heartbeat.abort();
    let (totals, info, size) = result?;

    let mut counts = totals.to_json();
    counts["dry_run"] = json!(options.dry_run);
    counts["format"] = json!(info.format.name());
    counts["encoding"] = json!(info.encoding);
    counts["sheet"] = json!(info.sheet);
    if info.sheets.len() > 1 {
        counts["sheets"] = json!(info.sheets);
    }
    counts["duration_ms"] = json!(started.elapsed().as_millis() as u64);
    if totals.rejected > 0 {
        report::write(deps, job.id, info.format.is_workbook())
            .await
            .context("writing the error report")?;
        counts["error_report_key"] = json!(keys::error_report(job.id));
    }
    tracing::info!(job_id = %job.id, rows = totals.rows_read, inserted = totals.inserted, updated = totals.updated,
        rejected = totals.rejected, secs = started.elapsed().as_secs_f64(), "import finished");
    Ok(Finished {
        rows: i64::try_from(totals.rows_read)?,
        bytes: i64::try_from(size)?,
        counts,
    })
}

/// Spool, check, then parse and load in overlapping stages.
async fn load<P: Ports>(
    deps: &Deps<P>,
    job: &Job,
    worker: &str,
    dataset: &xlport_core::Dataset,
    options: ImportOptions,
    key: &str,
    progress: &Progress,
) -> anyhow::Result<(ImportCounts, decode::FileInfo, u64)> {
    let ImportOptions {
        conflict_policy: policy,
        dry_run,
    } = options;
    let scratch = ScratchDir::create(deps, "import").context("creating the scratch dir")?;
    let path = scratch.0.join("upload");
    let size = spool(deps, job, key, &path, progress).await?;

    let limits = Limits {
        max_sheet_inflated_bytes: deps.config.max_sheet_inflated_bytes,
        max_columns: deps.config.max_columns,
    };
    // Everything that can fail the whole file is checked before a row is written.
    let info = {
        let (path, dataset) = (path.clone(), dataset.clone());
        tokio::task::spawn_blocking(move || decode::inspect(&path, &dataset, &limits))
            .await
            .context("inspect thread panicked")?
            .map_err(decode_failure)?
    };
    deps.jobs.add_warnings(job.id, &info.warnings).await?;
    deps.tables
        .set_source_header(job.id, &info.header)
        .await
        .map_err(table_failure)?;
    let inspected_warnings = info.warnings;

    // A dry run's data was rolled back with its attempt: start over.
    let (start, totals) = if dry_run && job.parts_done > 0 {
        deps.tables
            .reset_progress(job.id, worker)
            .await
            .map_err(table_failure)?;
        ((0, 0), ImportCounts::default())
    } else {
        (
            (job.parts_done.max(0) as u32, job.rows_done.max(0) as u64),
            ImportCounts::from_json(&job.counts),
        )
    };
    progress.rows.store(start.1, Ordering::Relaxed);

    let (tx, rx) = tokio::sync::mpsc::channel::<Part>(2);
    let parser = spawn_parser(
        &path,
        dataset,
        (deps.config.import_part_rows, policy),
        start,
        limits,
        tx,
        job.id,
    );
    let spec = LoadSpec {
        job: job.id,
        worker: worker.to_string(),
        dataset: dataset.clone(),
        policy,
        dry_run,
        totals,
        object_size: size as i64,
    };
    let loaded = load_parts(deps, spec, rx, progress).await;
    let parsed = parser.await.context("parser thread panicked")?;
    let totals = loaded.map_err(table_failure)?;
    let info = parsed.map_err(decode_failure)?;
    // Decoding the rows can add warnings (a header without rows, say).
    let mut warnings = info.warnings.clone();
    if totals.rows_read == 0 && !warnings.iter().any(|w| w.contains("no data rows")) {
        warnings.push("the file has a header but no data rows".into());
    }
    if warnings != inspected_warnings {
        deps.jobs.add_warnings(job.id, &warnings).await?;
    }
    drop(scratch);
    Ok((totals, info, size))
}

/// Streams the upload from the bucket into `path`, the bytes whose size and
/// ETag were recorded (issue #15); returns its size.
async fn spool<P: Ports>(
    deps: &Deps<P>,
    job: &Job,
    key: &str,
    path: &std::path::Path,
    progress: &Progress,
) -> anyhow::Result<u64> {
    let bytes = progress.bytes.clone();
    let size = deps
        .objects
        .download_to(key, job.etag.as_deref(), path, move |n| {
            bytes.store(n, Ordering::Relaxed)
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => anyhow!(Permanent(
                "the uploaded file is no longer in the bucket; upload it again".into()
            )),
            StoreError::Changed(_) => anyhow!(Permanent(
                "the uploaded file was replaced after it was received and checked (a second upload \
                 to the same URL); nothing was imported: start a new import"
                    .into()
            )),
            other => anyhow!(other).context("downloading the upload"),
        })?;
    // The bytes read are the ones whose size was checked.
    if let Some(recorded) = job.object_size
        && recorded >= 0
        && recorded as u64 != size
    {
        return Err(anyhow!(Permanent(format!(
            "the file read from the bucket is {size} bytes, but {recorded} bytes were uploaded; \
             nothing was imported: start a new import"
        ))));
    }
    Ok(size)
}

/// The parsing stage, on a blocking thread: the file's rows from `start`
/// (parts done, rows done) on, cut into parts of `part_rows` sent to `parts`.
/// A closed channel (the loader failed) stops it.
fn spawn_parser(
    path: &std::path::Path,
    dataset: &xlport_core::Dataset,
    (part_rows, policy): (usize, ConflictPolicy),
    (start_parts, start_rows): (u32, u64),
    limits: Limits,
    parts: tokio::sync::mpsc::Sender<Part>,
    job_id: uuid::Uuid,
) -> tokio::task::JoinHandle<Result<decode::FileInfo, DecodeError>> {
    let (path, dataset) = (path.to_path_buf(), dataset.clone());
    tokio::task::spawn_blocking(move || {
        let mut builder = PartBuilder::new(&dataset, part_rows, policy, start_parts, start_rows);
        let job_id = job_id.to_string();
        let prepare = |mut part: Part| {
            if policy != ConflictPolicy::Reject {
                part.prepare_direct_copy(&dataset, &job_id);
            }
            part
        };
        let info = decode::decode_file(&path, &dataset, &limits, start_rows, &mut |row| {
            if let Some(part) = builder.push(row) {
                parts
                    .blocking_send(prepare(part))
                    .map_err(|_| "the loader stopped".to_string())?;
            }
            Ok(())
        })?;
        if let Some(part) = builder.finish() {
            // A closed channel means the loader failed; its error wins.
            let _ = parts.blocking_send(prepare(part));
        }
        Ok(info)
    })
}

/// The loading stage: each part committed with its counts and rejections
/// (on Postgres: a transaction per part; a dry run merges inside one more,
/// rolled back at the end). Returns the job's totals. A loader that fails
/// drops `parts`, which stops the parser.
async fn load_parts<P: Ports>(
    deps: &Deps<P>,
    spec: LoadSpec,
    mut parts: tokio::sync::mpsc::Receiver<Part>,
    progress: &Progress,
) -> Result<ImportCounts, TableError> {
    let job = spec.job;
    let mut session = deps.tables.begin(spec).await?;
    while let Some(part) = parts.recv().await {
        let number = part.number;
        let part_counts = session.load_part(part).await?;
        progress
            .rows
            .store(session.totals().rows_read, Ordering::Relaxed);
        tracing::info!(job_id = %job, part = number, rows = part_counts.rows_read, "part committed");
    }
    let totals = session.totals().clone();
    session.finish().await?;
    Ok(totals)
}
