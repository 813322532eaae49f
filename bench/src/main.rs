//! `xlport-bench`: end-to-end benchmarks on the local stack, each printed
//! beside baselines measured in the same run so figures stay comparable on a
//! noisy machine. Run through `bench/export` (which starts a release-build
//! stack); the last line of output is one JSON object.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Value, json};
use xlport_adapters::pgcopy::CopyConnection;
use xlport_adapters::{Config, postgres};
use xlport_core::export::{mask_cnpj, mask_cpf, split_copy_line};

mod import;
mod load;
mod rss;
mod upload;

pub use rss::RssSampler;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The stack under test: its API and a key for it.
#[derive(clap::Args)]
struct StackArgs {
    #[arg(long = "api", env = "XLPORT_BENCH_API")]
    api: String,
    #[arg(long = "token", env = "XLPORT_BENCH_TOKEN")]
    token: String,
}

#[derive(Subcommand)]
enum Command {
    /// Seed N rows, then time an export job end to end against the baselines.
    Export {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[command(flatten)]
        stack: StackArgs,
        /// Concurrent exports to start at once (all must succeed).
        #[arg(long, default_value_t = 1)]
        concurrent: usize,
        /// Where the write-only baseline writes its file.
        #[arg(long, default_value = "/tmp")]
        scratch: PathBuf,
        /// Skip seeding when the table already holds exactly `rows` rows.
        #[arg(long)]
        reuse: bool,
        /// Time the job only, this many times, without the baselines: for
        /// profiling the worker, not for the record.
        #[arg(long)]
        job_only: Option<u32>,
    },
    /// Import the same N rows as inline-strings xlsx, CSV and shared-strings
    /// xlsx, end to end, against calamine alone and COPY FROM.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, default_value = "/tmp")]
        scratch: PathBuf,
    },
    /// The import worker's parsing stage alone (decode and validate, no
    /// database) on the benchmark's files: a profiling target.
    Parse {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value = "/tmp")]
        scratch: PathBuf,
    },
    /// N users at once, each exporting the table, downloading the file and
    /// importing it back; the table must come out unchanged.
    Load {
        /// User counts to run one after the other (each after a single-user run).
        #[arg(long, value_delimiter = ',', default_value = "5")]
        users: Vec<usize>,
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
        #[arg(long = "api", env = "XLPORT_BENCH_API")]
        api: String,
        #[arg(long, default_value = "/tmp")]
        scratch: PathBuf,
    },
    /// Upload files of each size (MB) with the `xlport` CLI and with curl.
    Upload {
        #[arg(long, value_delimiter = ',', default_value = "256,2048")]
        sizes_mb: Vec<u64>,
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, default_value = "/tmp")]
        scratch: PathBuf,
        /// The CLI binary (a release build).
        #[arg(long, default_value = "target/release/xlport")]
        cli: PathBuf,
        #[arg(long, default_value_t = 4)]
        parallel: u16,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env()?;
    match cli.command {
        Command::Export {
            rows,
            stack,
            concurrent,
            scratch,
            reuse,
            job_only,
        } => {
            let run = ExportRun {
                rows,
                api: &stack.api,
                token: &stack.token,
                concurrent,
            };
            export(&config, &run, &scratch, reuse, job_only).await
        }
        Command::Import {
            rows,
            stack,
            scratch,
        } => {
            import::run(
                &config,
                import::Args {
                    rows,
                    api: &stack.api,
                    token: &stack.token,
                    scratch: &scratch,
                },
            )
            .await
        }
        Command::Load {
            users,
            rows,
            api,
            scratch,
        } => {
            load::run(
                &config,
                load::Args {
                    users,
                    rows,
                    api: &api,
                    scratch: &scratch,
                },
            )
            .await
        }
        Command::Parse { rows, scratch } => import::parse_only(rows, &scratch),
        Command::Upload {
            sizes_mb,
            stack,
            scratch,
            cli,
            parallel,
        } => {
            let deps = xlport_adapters::Deps::from_config(config).await?;
            upload::run(
                &deps,
                upload::Args {
                    sizes_mb: &sizes_mb,
                    api: &stack.api,
                    token: &stack.token,
                    scratch: &scratch,
                    cli: &cli,
                    parallel,
                },
            )
            .await
        }
    }
}

/// One export benchmark's jobs: how many rows, on which stack, how many at once.
struct ExportRun<'a> {
    rows: u64,
    api: &'a str,
    token: &'a str,
    concurrent: usize,
}

async fn export(
    config: &Config,
    run: &ExportRun<'_>,
    scratch: &std::path::Path,
    reuse: bool,
    job_only: Option<u32>,
) -> anyhow::Result<()> {
    let rows = run.rows;
    let pool = postgres::connect(config).await?;
    let have: i64 = sqlx::query_scalar("select count(*) from user_purchase")
        .fetch_one(&pool)
        .await?;
    if !(reuse && have as u64 == rows) {
        eprintln!("seeding {rows} rows");
        sqlx::query("truncate user_purchase").execute(&pool).await?;
        postgres::seed_user_purchase(&pool, rows, 1).await?;
        sqlx::query("vacuum analyze user_purchase")
            .execute(&pool)
            .await?;
    }
    if let Some(times) = job_only {
        for _ in 0..times {
            println!("{}", export_jobs(run).await?);
        }
        return Ok(());
    }
    let dataset = xlport_core::Datasets::builtin()?
        .get("user_purchase")
        .cloned()
        .context("user_purchase")?;
    let columns = dataset.stored_columns().join(", ");

    // Baseline 1: Postgres alone, COPY of the same rows to CSV.
    let started = Instant::now();
    let copied = copy_out_all(
        &pool,
        &format!("copy (select {columns} from user_purchase order by cpf) to stdout (format csv)"),
        |_| {},
    )
    .await?;
    let copy_csv_s = started.elapsed().as_secs_f64();
    eprintln!("COPY TO csv: {copy_csv_s:.2}s, {copied} bytes");

    // Baseline 2: rust_xlsxwriter alone, constant memory, library defaults
    // (zip level 6), the same cells from memory to a local file.
    let mut text = Vec::new();
    copy_out_all(
        &pool,
        &format!("copy (select {columns} from user_purchase order by cpf) to stdout"),
        |batch| text.extend_from_slice(batch),
    )
    .await?;
    let text = String::from_utf8(text)?;
    let file = scratch.join("xlport-bench-write-only.xlsx");
    let (xlsx_write_only_s, write_only_bytes) = write_only_baseline(&text, &file, None)?;
    eprintln!(
        "rust_xlsxwriter write-only (level 6): {xlsx_write_only_s:.2}s, {write_only_bytes} bytes"
    );
    // The same bare write at the job's zip level and at the fastest, level 1:
    // rust_xlsxwriter compresses only when it saves, after the last row, so
    // these are floors for a job at those levels.
    let mut at_levels = serde_json::Map::new();
    let mut levels = vec![config.xlsx_compression_level, 1];
    levels.dedup();
    for level in levels {
        let (secs, bytes) = write_only_baseline(&text, &file, Some(level))?;
        eprintln!("rust_xlsxwriter write-only (level {level}): {secs:.2}s, {bytes} bytes");
        at_levels.insert(
            format!("xlsx_write_only_level{level}_s"),
            json!(round(secs)),
        );
        at_levels.insert(format!("xlsx_write_only_level{level}_bytes"), json!(bytes));
    }
    // Not a baseline: xlport's own encoder (the worker's middle stage) on the
    // same COPY text to a local file at the job's level, with no database or
    // S3 around it, to show what the rest of the pipeline adds.
    let started = Instant::now();
    let mut encoder =
        xlport_core::export::XlsxExport::new(&dataset, scratch, config.xlsx_compression_level)?;
    let mut fields = Vec::new();
    for line in text.lines() {
        split_copy_line(line, &mut fields);
        encoder.write_row(&fields)?;
    }
    // Up to here, cells; from here, the zip (the library compresses on save).
    let encode_rows_s = started.elapsed().as_secs_f64();
    encoder.finish(std::io::BufWriter::new(std::fs::File::create(&file)?))?;
    let encode_only_s = started.elapsed().as_secs_f64();
    std::fs::remove_file(&file).ok();
    eprintln!(
        "xlport encoder alone: {encode_only_s:.2}s ({encode_rows_s:.2}s of cells, then the zip)"
    );
    at_levels.insert("xlport_encode_only_s".into(), json!(round(encode_only_s)));
    at_levels.insert(
        "xlport_encode_only_rows_s".into(),
        json!(round(encode_rows_s)),
    );
    drop(text);

    let mut result = export_jobs(run).await?;
    let job_s = result["job_s"].as_f64().context("job_s")?;
    for (k, v) in [
        ("compression_level", json!(config.xlsx_compression_level)),
        ("copy_csv_s", json!(round(copy_csv_s))),
        ("xlsx_write_only_s", json!(round(xlsx_write_only_s))),
        ("xlsx_write_only_bytes", json!(write_only_bytes)),
        (
            "ratio_vs_write_only",
            json!(round(job_s / xlsx_write_only_s)),
        ),
        ("ratio_vs_copy_csv", json!(round(job_s / copy_csv_s))),
    ] {
        result[k] = v;
    }
    for (k, v) in at_levels {
        result[k] = v;
    }
    println!("{result}");
    Ok(())
}

/// The job: POST /exports -> queue -> mapping -> export worker -> S3, for
/// `run.concurrent` exports started at once. `job_s` is the slowest one's
/// wall time, from sending its request to the moment it succeeded (the job's
/// `finished_at`: Postgres and this process share the machine's clock), so
/// the figure does not depend on how often this process polls; `seen_s` is
/// when the polling saw it. The phases say where the time went.
async fn export_jobs(run: &ExportRun<'_>) -> anyhow::Result<Value> {
    let ExportRun {
        rows,
        api,
        token,
        concurrent,
    } = *run;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let worker_rss_before = worker_peak_rss_mb();
    let started = Instant::now();
    let started_wall = chrono::Utc::now();
    let mut ids = Vec::new();
    for _ in 0..concurrent {
        ids.push(start_export(&http, api, token).await?);
    }
    let posted_s = started.elapsed().as_secs_f64();
    let mut jobs = Vec::new();
    for id in &ids {
        let job = wait_for_job(&http, api, token, id, Duration::from_millis(100)).await?;
        jobs.push(job);
    }
    let seen_s = started.elapsed().as_secs_f64();
    // Seconds from sending the requests to one of a job's timestamps.
    let since_start = |job: &Value, field: &str| {
        job[field]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| (t.with_timezone(&chrono::Utc) - started_wall).as_seconds_f64())
    };
    let mut slowest = None;
    for job in &jobs {
        let finished = since_start(job, "finished_at").context("a finished job has finished_at")?;
        if slowest.as_ref().is_none_or(|(s, _)| finished > *s) {
            slowest = Some((finished, job.clone()));
        }
    }
    let (job_s, job) = slowest.context("no job")?;
    let bytes = job["counts"]["bytes"].as_u64().unwrap_or(0);
    let exported = job["counts"]["rows"].as_u64().unwrap_or(0);
    if jobs
        .iter()
        .any(|j| j["counts"]["rows"].as_u64() != Some(rows))
    {
        bail!("an export has the wrong row count: {jobs:?}");
    }
    let peak_rss_mb = worker_peak_rss_mb();
    let phase = |field: &str| since_start(&job, field).map(round);
    eprintln!(
        "export job: {rows} rows, {bytes} bytes, {job_s:.2}s wall, worker peak RSS {peak_rss_mb:?} MB"
    );
    Ok(json!({
        "bench": "export",
        "rows": exported,
        "bytes": bytes,
        "sheets": job["counts"]["sheets"],
        "concurrent": concurrent,
        "job_s": round(job_s),
        "worker_duration_s": round(job["counts"]["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0),
        "seen_s": round(seen_s),
        "phases_s": {
            "requests_answered": round(posted_s),
            "created": phase("created_at"),
            "started": phase("started_at"),
            "finished": phase("finished_at"),
        },
        "peak_rss_mb": peak_rss_mb,
        "peak_rss_mb_before": worker_rss_before,
    }))
}

/// POST /exports of the whole `user_purchase` as xlsx; the job's id.
pub async fn start_export(
    http: &reqwest::Client,
    api: &str,
    token: &str,
) -> anyhow::Result<String> {
    let resp: Value = http
        .post(format!("{api}/exports"))
        .bearer_auth(token)
        .json(&json!({"dataset": "user_purchase", "format": "xlsx"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(resp["id"].as_str().context("job id")?.to_string())
}

/// Polls GET /jobs/{id} every `every` until the job succeeds (returned) or
/// fails (an error), for at most 30 minutes. Each poll costs CPU the job
/// shares on a small machine.
pub async fn wait_for_job(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    id: &str,
    every: Duration,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let job: Value = http
            .get(format!("{api}/jobs/{id}"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        match job["state"].as_str() {
            Some("succeeded") => return Ok(job),
            Some("failed") => bail!("job {id} failed: {}", job["error"]),
            _ => tokio::time::sleep(every).await,
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("job {id} did not finish in 30 minutes");
        }
    }
}

/// A PUT to a single-PUT upload plan (`{"url", "headers"}` of POST
/// /imports) with its signed headers; reqwest sets Content-Length from the body.
pub fn signed_put(
    http: &reqwest::Client,
    upload: &Value,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let mut req = http.put(upload["url"].as_str().context("upload.url")?);
    for (k, v) in upload["headers"].as_object().into_iter().flatten() {
        if !k.eq_ignore_ascii_case("content-length")
            && let Some(v) = v.as_str()
        {
            req = req.header(k.as_str(), v);
        }
    }
    Ok(req)
}

pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// How a user of the crate would write these rows: constant-memory sheet,
/// the default zip level unless `level` says otherwise, typed cells.
fn write_only_baseline(
    text: &str,
    path: &std::path::Path,
    level: Option<u8>,
) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let mut workbook = Workbook::new();
    if let Some(level) = level {
        workbook.set_zip_compression_level(level);
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let money = Format::new().set_num_format("#,##0.00");
    let mut sheet_rows = 0u32;
    let mut fields = Vec::new();
    let mut sheet = workbook.add_worksheet_with_constant_memory()?;
    for line in text.lines() {
        if sheet_rows == xlport_core::export::MAX_DATA_ROWS_PER_SHEET {
            sheet = workbook.add_worksheet_with_constant_memory()?;
            sheet_rows = 0;
        }
        sheet_rows += 1;
        let r = sheet_rows;
        split_copy_line(line, &mut fields);
        for (c, f) in fields.iter().enumerate() {
            let Some(v) = f else { continue };
            let col = c as u16;
            match c {
                0 => sheet.write_string(r, col, mask_cpf(v).as_str())?,
                1 | 2 | 8 | 9 | 10 => sheet.write_boolean(r, col, v == "t")?,
                3 => {
                    let y = v[0..4].parse()?;
                    let m = v[5..7].parse()?;
                    let d = v[8..10].parse()?;
                    sheet.write_datetime_with_format(
                        r,
                        col,
                        ExcelDateTime::from_ymd(y, m, d)?,
                        &date,
                    )?
                }
                4 | 5 => sheet.write_number_with_format(r, col, v.parse::<f64>()?, &money)?,
                _ => sheet.write_string(r, col, mask_cnpj(v).as_str())?,
            };
        }
    }
    workbook.save(path)?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(path)?.len();
    std::fs::remove_file(path).ok();
    Ok((secs, bytes))
}

/// Peak resident set (VmHWM) of the export worker processes cargo lambda
/// watch runs, in MB: the largest across instances.
fn worker_peak_rss_mb() -> Option<f64> {
    rss::process_memory_mb("/export-worker")
        .into_iter()
        .map(|(_, hwm)| (hwm * 10.0).round() / 10.0)
        .reduce(f64::max)
}

/// A whole `COPY … TO STDOUT`, each batch handed to `each`; returns its bytes.
async fn copy_out_all(
    pool: &sqlx::PgPool,
    statement: &str,
    mut each: impl FnMut(&[u8]),
) -> anyhow::Result<u64> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let conn = CopyConnection::acquire(pool).await?;
    let copy = async move { conn.copy_out(statement, 256 * 1024, &tx).await };
    let read = async {
        let mut bytes = 0u64;
        while let Some(batch) = rx.recv().await {
            bytes += batch.len() as u64;
            each(&batch);
        }
        bytes
    };
    let (end, bytes) = tokio::join!(copy, read);
    end?;
    Ok(bytes)
}
