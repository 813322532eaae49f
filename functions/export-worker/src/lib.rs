//! The export worker: takes `ExportRequested` messages from the `exports`
//! queue and streams the dataset from Postgres into an .xlsx or .csv that goes
//! straight into an S3 multipart upload.
//!
//! Three stages run at once, joined by bounded channels, so the slowest sets
//! the pace and memory stays flat: a task reading `COPY ... TO STDOUT` chunks,
//! a blocking thread encoding rows (rust_xlsxwriter constant-memory sheets, or
//! CSV) and, while the workbook is zipped, the part uploads. Nothing is
//! visible at the object's key until the multipart upload completes, so a
//! worker that dies never leaves a truncated file marked done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use bytes::Bytes;
use serde_json::json;
use xlport_adapters::Deps;
use xlport_adapters::multipart::{MultipartUpload, PartWriter};
use xlport_adapters::s3::attachment_disposition;
use xlport_adapters::worker::{
    DeadLetter, Finished, Progress, ScratchDir, each_record, run_job, spawn_heartbeat,
};
use xlport_contract::ExportOptions;
use xlport_core::Dataset;
use xlport_core::export::{
    CsvDialect, CsvExport, ExportFormat, XlsxExport, parse_filter, split_copy_line,
};
use xlport_core::job::{Job, keys};
use xlport_core::lifecycle::Permanent;
use xlport_core::message::ExportRequested;
use xlport_core::ports::{JobStore, ObjectStore, Ports, RowSource, TableError};

/// S3 part size for exports: small enough to keep the worker inside 128 MB.
const PART_BYTES: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;
/// Rows cross from the database reader to the encoder thread in batches of
/// about this many bytes.
const CHUNK_BYTES: usize = 256 * 1024;

/// Handles one SQS batch and reports the records to retry. `P`: the ports
/// it runs on, `Deployed` in the function and the in-memory ones in this
/// crate's tests.
pub async fn handle_batch<P: Ports>(deps: &Deps<P>, event: SqsEvent) -> SqsBatchResponse {
    each_record(deps, event, |record| async move {
        handle_record(deps, &record).await
    })
    .await
}

async fn handle_record<P: Ports>(deps: &Deps<P>, record: &SqsMessage) -> anyhow::Result<()> {
    let body = record.body.as_deref().unwrap_or_default();
    let request: ExportRequested = serde_json::from_str(body)
        .map_err(|e| DeadLetter::unreadable("an export request", e, body))?;
    run_job(
        &deps.jobs,
        request.job_id,
        "export",
        deps.config.job_lease,
        |job, worker| async move {
            if let (Some(key), Some(upload_id)) = (&job.result_key, &job.upload_id) {
                // A previous attempt died mid-upload: its parts are garbage.
                if let Err(e) = deps.objects.abort_multipart_upload(key, upload_id).await {
                    tracing::warn!(job_id = %job.id, error = %e, "could not abort the previous attempt's upload");
                }
            }
            run_export(deps, &job, &worker).await
        },
    )
    .await
}

async fn run_export<P: Ports>(deps: &Deps<P>, job: &Job, worker: &str) -> anyhow::Result<Finished> {
    let started = Instant::now();
    let dataset = deps
        .datasets
        .get(&job.dataset)
        .ok_or_else(|| Permanent(format!("dataset `{}` is not configured", job.dataset)))?
        .clone();
    let format = match job.format.as_deref() {
        None => ExportFormat::Xlsx,
        Some(name) => ExportFormat::parse(name)
            .ok_or_else(|| Permanent(format!("unknown export format {name:?}")))?,
    };
    // The options as the api stored them (docs/api.md, "The job").
    let options: ExportOptions = serde_json::from_value(job.options.clone())
        .map_err(|e| Permanent(format!("the export's options cannot be read: {e}")))?;
    let conditions =
        parse_filter(&dataset, &options.filter).map_err(|e| Permanent(e.to_string()))?;
    let dialect = options.csv.map_or(CsvDialect::default_dialect(), |csv| {
        CsvDialect::of(csv.dialect)
    });
    let filename = job
        .filename
        .clone()
        .unwrap_or_else(|| format!("{}.{}", dataset.name, format.extension()));
    let key = keys::export(job.id, &filename);
    let upload = MultipartUpload::start(
        &deps.objects,
        &key,
        format.content_type(),
        Some(&attachment_disposition(&filename)),
    )
    .await?;
    deps.jobs
        .set_upload(job.id, worker, &key, &upload.upload_id)
        .await?;

    let progress = Progress::default();
    let heartbeat = spawn_heartbeat(
        &deps.jobs,
        deps.config.job_lease,
        job.id,
        worker,
        progress.clone(),
    );
    let result = stream_rows(
        deps,
        &dataset,
        &conditions,
        (format, dialect),
        &upload,
        progress.rows,
    )
    .await;
    heartbeat.abort();

    let (total_rows, sheets, bytes) = match result {
        Ok(done) => done,
        Err(e) => {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(error = %abort, "aborting the multipart upload failed");
            }
            return Err(e);
        }
    };
    let counts = json!({
        "rows": total_rows,
        "bytes": bytes,
        "sheets": sheets,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    tracing::info!(job_id = %job.id, rows = total_rows, bytes, sheets, secs = started.elapsed().as_secs_f64(), "export finished");
    Ok(Finished {
        rows: i64::try_from(total_rows)?,
        bytes: i64::try_from(bytes)?,
        counts,
    })
}

/// The three overlapping stages. Returns (rows, sheets, bytes uploaded).
async fn stream_rows<P: Ports>(
    deps: &Deps<P>,
    dataset: &Dataset,
    conditions: &[xlport_core::export::Condition],
    (format, dialect): (ExportFormat, &'static CsvDialect),
    upload: &MultipartUpload<P::Objects>,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<(u64, usize, u64)> {
    let scratch = ScratchDir::create(deps, "export").context("creating the scratch dir")?;

    // Stage timings below all count from here.
    let started = Instant::now();
    let (part_writer, uploads) = upload.writer(PART_BYTES, PARTS_IN_FLIGHT);
    let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let encoder = {
        let dataset = dataset.clone();
        let dir = scratch.0.clone();
        let level = deps.config.xlsx_compression_level;
        tokio::task::spawn_blocking(move || {
            encode(
                dataset,
                (format, dialect),
                &dir,
                level,
                chunk_rx,
                part_writer,
                &progress,
            )
        })
    };

    // Stage 1, here: Postgres -> chunks. Postgres sends one message per row:
    // they cross to the encoder thread in batches of about CHUNK_BYTES, since
    // a hand-over per row costs more in thread wake-ups than the row itself.
    let read = async {
        // The encoder stopping early ends the COPY; its error says why.
        match deps
            .tables
            .copy_out(dataset, conditions, CHUNK_BYTES, &chunk_tx)
            .await
        {
            Ok(_) => Ok(()),
            // A data exception (a value out of range, a bad date) will fail
            // the same way on every retry: the job fails now.
            Err(TableError::Data(message)) => Err(anyhow!(Permanent(format!(
                "Postgres could not run the export's query: {message}; check the filter's values"
            )))),
            Err(e) => Err(e.into()),
        }
    };
    let read_result = read.await;
    drop(chunk_tx);
    let encoded = encoder.await.context("encoder thread panicked")?;
    let uploaded = uploads.await.context("upload task panicked")?;
    read_result.context("reading rows from Postgres")?;
    let encoded = encoded?;
    let (parts, bytes) = uploaded?;
    let uploaded_at = started.elapsed();
    upload.complete(parts).await?;
    drop(scratch);
    // Where an export's time goes, for whoever tunes the level or the memory.
    tracing::info!(
        rows = encoded.rows,
        rows_secs = (encoded.rows_written - started).as_secs_f64(),
        zip_secs = (encoded.zipped - started).as_secs_f64(),
        last_part_secs = uploaded_at.as_secs_f64(),
        complete_secs = started.elapsed().as_secs_f64(),
        "export stages done (seconds since the rows were asked for)"
    );
    Ok((encoded.rows, encoded.sheets, bytes))
}

/// What the encoder thread did, and when each of its stages ended.
struct Encoded {
    rows: u64,
    sheets: usize,
    /// The last row went into the encoder.
    rows_written: Instant,
    /// The file was finished (zipped, for xlsx) into the part writer.
    zipped: Instant,
}

/// Stage 2, on a blocking thread: COPY text chunks -> rows -> encoder -> parts.
fn encode(
    dataset: Dataset,
    (format, dialect): (ExportFormat, &'static CsvDialect),
    scratch: &std::path::Path,
    level: u8,
    mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
    out: PartWriter,
    progress: &AtomicU64,
) -> anyhow::Result<Encoded> {
    // One per export, on this thread's stack: the size difference is irrelevant.
    #[allow(clippy::large_enum_variant)]
    enum Encoder {
        /// The workbook is zipped into the parts at the end.
        Xlsx(XlsxExport, PartWriter),
        /// CSV goes into the parts as it is written.
        Csv(CsvExport<PartWriter>),
    }
    let mut encoder = match format {
        ExportFormat::Xlsx => Encoder::Xlsx(XlsxExport::new(&dataset, scratch, level)?, out),
        ExportFormat::Csv => Encoder::Csv(CsvExport::with_dialect(&dataset, out, dialect)?),
    };
    let width = dataset.stored_columns().len();
    let mut pending: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut rows = 0u64;
    while let Some(chunk) = chunks.blocking_recv() {
        pending.extend_from_slice(&chunk);
        let Some(last_newline) = pending.iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        let complete =
            std::str::from_utf8(&pending[..last_newline]).context("Postgres sent invalid UTF-8")?;
        let mut fields = Vec::with_capacity(width);
        for line in complete.split('\n') {
            split_copy_line(line, &mut fields);
            match &mut encoder {
                Encoder::Xlsx(x, _) => x.write_row(&fields)?,
                Encoder::Csv(c) => c.write_row(&fields)?,
            }
            rows += 1;
        }
        progress.store(rows, Ordering::Relaxed);
        pending.drain(..=last_newline);
    }
    if !pending.is_empty() {
        bail!("the row stream from Postgres ended mid-row");
    }
    let rows_written = Instant::now();
    let (sheets, out) = match encoder {
        Encoder::Xlsx(x, mut out) => {
            let sheets = x.sheets();
            x.finish(&mut out)?;
            (sheets, out)
        }
        Encoder::Csv(c) => (1, c.finish()?),
    };
    out.finish()?;
    Ok(Encoded {
        rows,
        sheets,
        rows_written,
        zipped: Instant::now(),
    })
}
