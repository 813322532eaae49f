//! The import benchmark: the same N rows as an inline-strings xlsx (as
//! rust_xlsxwriter writes), a shared-strings xlsx (as Excel and LibreOffice
//! write) and a CSV, each imported end to end (API -> presigned PUT -> S3
//! event -> SQS -> mapping -> import worker -> Postgres), beside calamine
//! alone streaming the inline-strings file and Postgres `COPY FROM` of the CSV.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use calamine::{Reader, Xlsx};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Value, json};
use xlport_adapters::pgcopy::CopyConnection;
use xlport_adapters::{Config, postgres};
use xlport_core::export::{CsvExport, mask_cnpj, mask_cpf, split_copy_line};
use xlport_core::sample::UserPurchaseSample;

use crate::{RssSampler, round, wait_for_job};

pub struct Args<'a> {
    pub rows: u64,
    pub api: &'a str,
    pub token: &'a str,
    pub scratch: &'a Path,
}

pub async fn run(config: &Config, args: Args<'_>) -> anyhow::Result<()> {
    let dataset = xlport_core::Datasets::builtin()?
        .get("user_purchase")
        .cloned()
        .context("user_purchase")?;
    let (text, files) = write_files(&dataset, args.rows, args.scratch)?;
    let BenchFiles {
        inline,
        shared,
        csv,
    } = files;
    // A sheet holds 1,048,575 data rows and the importer reads one sheet:
    // beyond that, only the CSV carries the rows.
    let with_xlsx = args.rows <= MAX_SHEET_DATA_ROWS;
    if !with_xlsx {
        eprintln!("{} rows do not fit one sheet: CSV only", args.rows);
    }

    // Baseline 1: calamine alone, streaming every cell of the inline-strings file.
    let calamine_parse_only_s = if with_xlsx {
        calamine_alone(&inline)?
    } else {
        f64::NAN
    };

    // Not a baseline: xlport's own decoding and validation alone (no
    // database), to show which stage of the job sets its pace.
    let mut parse_only = serde_json::Map::new();
    for (label, path) in [("xlsx", &inline), ("csv", &csv)] {
        if label.starts_with("xlsx") && !with_xlsx {
            continue;
        }
        let secs = parse_and_validate(&dataset, path)?;
        eprintln!("xlport parse + validate, {label}: {secs:.2}s");
        parse_only.insert(format!("{label}_parse_validate_s"), json!(round(secs)));
    }

    // Baseline 2: Postgres COPY FROM of the same CSV into plain text columns.
    let pool = postgres::connect(config).await?;
    sqlx::query("drop table if exists bench_copy_from")
        .execute(&pool)
        .await?;
    let cols: Vec<String> = (1..=11).map(|i| format!("c{i} text")).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "create unlogged table bench_copy_from ({})",
        cols.join(", ")
    )))
    .execute(&pool)
    .await?;
    let started = Instant::now();
    let mut conn = CopyConnection::acquire(&pool).await?;
    let loaded = conn
        .copy_in_reader(
            "copy bench_copy_from from stdin (format csv, header)",
            tokio::fs::File::open(&csv).await?,
        )
        .await?;
    conn.release().await;
    let copy_from_s = started.elapsed().as_secs_f64();
    sqlx::query("drop table bench_copy_from")
        .execute(&pool)
        .await?;
    eprintln!("COPY FROM csv: {copy_from_s:.2}s ({loaded} rows)");

    // Baseline 3: the same rows COPY'd (Postgres text format) into a table
    // like the dataset's, with its key, index and checks: what landing
    // them in such a table costs Postgres alone, before any validation.
    sqlx::query("drop table if exists bench_copy_into_table")
        .execute(&pool)
        .await?;
    sqlx::query("create table bench_copy_into_table (like user_purchase including all)")
        .execute(&pool)
        .await?;
    let started = Instant::now();
    let mut conn = CopyConnection::acquire(&pool).await?;
    conn.copy_in(
        &format!(
            "copy bench_copy_into_table ({}) from stdin",
            dataset.stored_columns().join(", ")
        ),
        text.as_bytes().chunks(1 << 20),
    )
    .await?;
    conn.release().await;
    let copy_into_table_s = started.elapsed().as_secs_f64();
    sqlx::query("drop table bench_copy_into_table")
        .execute(&pool)
        .await?;
    drop(text);
    eprintln!("COPY into a keyed, indexed table: {copy_into_table_s:.2}s");

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let mut results = serde_json::Map::new();
    for (label, path) in [
        ("xlsx", &inline),
        ("csv", &csv),
        ("xlsx_shared_strings", &shared),
    ] {
        if label.starts_with("xlsx") && !with_xlsx {
            continue;
        }
        sqlx::query("truncate user_purchase").execute(&pool).await?;
        let (secs, rss, job) = import_once(&http, &args, path).await?;
        let read = job["counts"]["rows_read"].as_u64().unwrap_or(0);
        if read != args.rows || job["counts"]["inserted"].as_u64() != Some(args.rows) {
            bail!(
                "{label}: expected {} rows inserted, got {}",
                args.rows,
                job["counts"]
            );
        }
        eprintln!("{label}: {secs:.2}s, worker peak RSS {rss:.1} MB");
        results.insert(format!("{label}_job_s"), json!(round(secs)));
        results.insert(
            format!(
                "peak_rss{}_mb",
                if label == "xlsx_shared_strings" {
                    "_shared_strings"
                } else if label == "csv" {
                    "_csv"
                } else {
                    ""
                }
            ),
            json!(round(rss)),
        );
        results.insert(
            format!("{label}_bytes"),
            json!(std::fs::metadata(path)?.len()),
        );
    }
    let csv_s = results["csv_job_s"].as_f64().unwrap_or(0.0);
    let mut out = json!({
        "bench": "import",
        "rows": args.rows,
        "copy_from_s": round(copy_from_s),
        "csv_ratio_vs_copy_from": round(csv_s / copy_from_s),
        "copy_into_table_s": round(copy_into_table_s),
        "csv_ratio_vs_copy_into_table": round(csv_s / copy_into_table_s),
    });
    if with_xlsx {
        let xlsx_s = results["xlsx_job_s"].as_f64().unwrap_or(0.0);
        out["calamine_parse_only_s"] = json!(round(calamine_parse_only_s));
        out["xlsx_ratio_vs_calamine"] = json!(round(xlsx_s / calamine_parse_only_s));
    } else {
        out["xlsx"] = json!("skipped: more rows than one sheet holds");
    }
    for (k, v) in results.into_iter().chain(parse_only) {
        out[k] = v;
    }
    println!("{out}");
    for p in [inline, shared, csv] {
        std::fs::remove_file(p).ok();
    }
    Ok(())
}

/// Data rows an xlsx sheet holds under its header row.
const MAX_SHEET_DATA_ROWS: u64 = xlport_core::export::MAX_DATA_ROWS_PER_SHEET as u64;

/// Seconds for calamine alone to stream every cell of the first sheet.
fn calamine_alone(path: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut book: Xlsx<_> = calamine::open_workbook(path)?;
    let name = book.sheet_names().first().cloned().context("a sheet")?;
    let mut cells = book.worksheet_cells_reader(&name)?;
    let mut n = 0u64;
    while let Some(cell) = cells.next_cell()? {
        n += u64::from(!matches!(cell.get_value(), calamine::DataRef::Empty));
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("calamine streaming parse: {secs:.2}s ({n} cells)");
    Ok(secs)
}

pub struct BenchFiles {
    pub inline: PathBuf,
    pub shared: PathBuf,
    pub csv: PathBuf,
}

/// The same `rows` sample rows as an inline-strings xlsx, a shared-strings
/// xlsx and a CSV under `scratch`; also returns the rows as COPY text.
pub fn write_files(
    dataset: &xlport_core::Dataset,
    rows: u64,
    scratch: &Path,
) -> anyhow::Result<(String, BenchFiles)> {
    std::fs::create_dir_all(scratch)?;
    let files = BenchFiles {
        inline: scratch.join("bench-inline.xlsx"),
        shared: scratch.join("bench-shared.xlsx"),
        csv: scratch.join("bench.csv"),
    };
    eprintln!("writing the {rows}-row files");
    let mut text = String::new();
    let mut sample = UserPurchaseSample::new(5);
    for i in 0..rows {
        sample.write_row(i, &mut text);
    }
    if rows <= MAX_SHEET_DATA_ROWS {
        write_xlsx(dataset, &text, &files.inline, false)?;
        write_xlsx(dataset, &text, &files.shared, true)?;
    }
    let file = std::io::BufWriter::new(std::fs::File::create(&files.csv)?);
    let mut out = CsvExport::new(dataset, file)?;
    let mut fields = Vec::new();
    for line in text.lines() {
        split_copy_line(line, &mut fields);
        out.write_row(&fields)?;
    }
    out.finish()?;
    Ok((text, files))
}

/// `xlport-bench parse`: the worker's parsing stage alone on each file, to
/// profile it (`perf record target/release/xlport-bench parse`).
pub fn parse_only(rows: u64, scratch: &Path) -> anyhow::Result<()> {
    let dataset = xlport_core::Datasets::builtin()?
        .get("user_purchase")
        .cloned()
        .context("user_purchase")?;
    let (_, files) = write_files(&dataset, rows, scratch)?;
    let mut out = json!({"bench": "parse", "rows": rows});
    for (label, path) in [
        ("xlsx", &files.inline),
        ("csv", &files.csv),
        ("xlsx_shared_strings", &files.shared),
    ] {
        if label.starts_with("xlsx") && rows > MAX_SHEET_DATA_ROWS {
            continue;
        }
        let secs = parse_and_validate(&dataset, path)?;
        eprintln!("{label}: {secs:.2}s");
        out[format!("{label}_parse_validate_s")] = json!(round(secs));
    }
    println!("{out}");
    for p in [files.inline, files.shared, files.csv] {
        std::fs::remove_file(p).ok();
    }
    Ok(())
}

/// Seconds to decode and validate every row of `path` into import parts, as
/// the worker's parsing stage does, with nothing loaded.
fn parse_and_validate(dataset: &xlport_core::Dataset, path: &Path) -> anyhow::Result<f64> {
    use xlport_core::decode::{self, Limits};
    use xlport_core::import::{ConflictPolicy, PartBuilder};
    let started = Instant::now();
    let mut builder = PartBuilder::new(dataset, 10_000, ConflictPolicy::Upsert, 0, 0);
    let mut rows = 0u64;
    decode::decode_file(path, dataset, &Limits::default(), 0, &mut |row| {
        if let Some(part) = builder.push(row) {
            rows += part.counts.rows_read;
        }
        Ok(())
    })?;
    if let Some(part) = builder.finish() {
        rows += part.counts.rows_read;
    }
    let secs = started.elapsed().as_secs_f64();
    if rows == 0 {
        bail!("{} decoded to no rows", path.display());
    }
    Ok(secs)
}

/// Creates the import, PUTs the file, and times from the end of the upload
/// to the job's success; samples the worker's RSS meanwhile.
async fn import_once(
    http: &reqwest::Client,
    args: &Args<'_>,
    path: &PathBuf,
) -> anyhow::Result<(f64, f64, Value)> {
    let size = std::fs::metadata(path)?.len();
    let job: Value = http
        .post(format!("{}/imports", args.api))
        .bearer_auth(args.token)
        .json(&json!({"dataset": "user_purchase", "filename": path.file_name().and_then(|n| n.to_str()).unwrap_or("f"), "size": size}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if job["upload"]["type"] != "single" {
        bail!(
            "the bench stack should hand out single PUTs (raise XLPORT_MULTIPART_THRESHOLD_BYTES)"
        );
    }
    let id = job["id"].as_str().context("id")?.to_string();
    let body = tokio::fs::read(path).await?;
    crate::signed_put(http, &job["upload"])?
        .body(body)
        .send()
        .await?
        .error_for_status()?;
    let started = Instant::now();
    let sampler = RssSampler::start("/import-worker");
    // Import figures are when the poller saw the job end, so poll often.
    let job = wait_for_job(http, args.api, args.token, &id, Duration::from_millis(25)).await;
    let peak = sampler.stop().await;
    Ok((started.elapsed().as_secs_f64(), peak, job?))
}

/// The rows as an xlsx: inline strings (constant memory) or a shared-strings
/// table (low memory mode, as Excel and LibreOffice write).
fn write_xlsx(
    dataset: &xlport_core::Dataset,
    text: &str,
    path: &Path,
    shared_strings: bool,
) -> anyhow::Result<()> {
    let mut book = Workbook::new();
    book.set_zip_compression_level(1);
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let sheet = if shared_strings {
        book.add_worksheet_with_low_memory()?
    } else {
        book.add_worksheet_with_constant_memory()?
    };
    for (c, column) in dataset.columns.iter().enumerate() {
        sheet.write_string(0, c as u16, &column.header)?;
    }
    let mut fields = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let r = i as u32 + 1;
        split_copy_line(line, &mut fields);
        for (c, f) in fields.iter().take(dataset.columns.len()).enumerate() {
            let Some(v) = f else { continue };
            let col = c as u16;
            match c {
                0 => sheet.write_string(r, col, mask_cpf(v).as_str())?,
                1 | 2 => sheet.write_number(r, col, if v == "t" { 1 } else { 0 })?,
                3 => {
                    let d = ExcelDateTime::from_ymd(
                        v[0..4].parse()?,
                        v[5..7].parse()?,
                        v[8..10].parse()?,
                    )?;
                    sheet.write_datetime_with_format(r, col, d, &date)?
                }
                4 | 5 => sheet.write_number(r, col, v.parse::<f64>()?)?,
                _ => sheet.write_string(r, col, mask_cnpj(v).as_str())?,
            };
        }
    }
    book.save(path)?;
    Ok(())
}
