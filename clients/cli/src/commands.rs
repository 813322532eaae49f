//! The commands. Each returns the JSON object `--json` prints (the job as
//! the API returns it, or a list) and the exit code it stands for.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use xlport_contract::{
    CsvRequest, ExportRequest, ImportRequest, JobCounts, JobKind, JobState, JobView, MultipartPlan,
    PartUrl, PartsAnswer, Upload,
};

use crate::api::{Answer, Api};
use crate::error::{CliError, CliResult, exit};
use crate::jobs;
use crate::transfer::{Attempt, Transfers, backoff};
use crate::ui::{Ui, human_bytes};

pub struct Ctx {
    pub api: Api,
    pub transfers: Transfers,
    pub ui: Ui,
    /// Parts uploaded at once (`--parallel`).
    pub parallel: usize,
}

pub struct Outcome {
    pub json: Value,
    pub human: String,
    pub exit_code: i32,
}

impl Outcome {
    /// The job as the API answered it (`--json` prints it unchanged).
    fn job(job: Answer<JobView>) -> Outcome {
        Outcome {
            human: jobs::describe(&job.typed),
            exit_code: jobs::exit_code(&job.typed),
            json: job.raw,
        }
    }
}

/// `answer` with `key` set to `value`, for `--json`.
fn with_field(mut answer: Answer<JobView>, key: &str, value: Value) -> Answer<JobView> {
    if let Some(fields) = answer.raw.as_object_mut() {
        fields.insert(key.to_string(), value);
    }
    answer
}

pub async fn datasets(ctx: &Ctx) -> CliResult<Outcome> {
    let list = ctx.api.datasets().await?;
    Ok(Outcome {
        human: jobs::datasets(&list.typed),
        json: list.raw,
        exit_code: exit::DONE,
    })
}

pub async fn list_jobs(ctx: &Ctx) -> CliResult<Outcome> {
    let list = ctx.api.jobs().await?;
    Ok(Outcome {
        human: jobs::table(&list.typed),
        json: list.raw,
        exit_code: exit::DONE,
    })
}

pub async fn status(ctx: &Ctx, id: &str, wait: bool) -> CliResult<Outcome> {
    let job = if wait {
        jobs::wait(&ctx.api, &ctx.ui, id).await?
    } else {
        ctx.api.job(id).await?
    };
    Ok(Outcome::job(job))
}

pub async fn abort(ctx: &Ctx, id: &str) -> CliResult<Outcome> {
    let job = ctx.api.abort_upload(id).await?;
    ctx.ui
        .note(format!("the upload of import {id} is abandoned"));
    Ok(Outcome::job(job))
}

/// `--filter` arguments as the API's `filter` object. Each is a JSON object,
/// `name=true|false`, `name=FROM..TO` (either side may be empty) or
/// `name.from=DATE` / `name.to=DATE`.
pub fn parse_filters(args: &[String]) -> CliResult<Value> {
    let mut filter = Map::new();
    for arg in args {
        let arg = arg.trim();
        if arg.starts_with('{') {
            let v: Value = serde_json::from_str(arg)
                .map_err(|e| CliError::Usage(format!("--filter `{arg}` is not valid JSON: {e}")))?;
            let Value::Object(m) = v else {
                return Err(CliError::Usage(format!(
                    "--filter `{arg}` must be a JSON object"
                )));
            };
            filter.extend(m);
            continue;
        }
        let Some((name, value)) = arg.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--filter `{arg}`: use name=value, e.g. private=true or data_ultima_compra=2020-01-01..2020-12-31"
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        if let Some((column, bound)) = name.split_once('.') {
            let entry = filter
                .entry(column.to_string())
                .or_insert_with(|| json!({}));
            if !entry.is_object() {
                return Err(CliError::Usage(format!(
                    "--filter `{column}` is given twice"
                )));
            }
            entry[bound] = json!(value);
        } else if let Some((from, to)) = value.split_once("..") {
            let mut range = Map::new();
            if !from.is_empty() {
                range.insert("from".into(), json!(from));
            }
            if !to.is_empty() {
                range.insert("to".into(), json!(to));
            }
            filter.insert(name.to_string(), Value::Object(range));
        } else {
            let v = match value.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => json!(true),
                "false" | "no" | "0" => json!(false),
                _ => json!(value),
            };
            filter.insert(name.to_string(), v);
        }
    }
    Ok(Value::Object(filter))
}

pub struct ExportArgs {
    pub dataset: String,
    pub format: String,
    /// The CSV dialect (the API's `csv.dialect`); the API checks the name.
    pub csv_dialect: Option<String>,
    pub filters: Vec<String>,
    pub output: Option<PathBuf>,
    pub wait: bool,
}

pub async fn export(ctx: &Ctx, args: ExportArgs) -> CliResult<Outcome> {
    let filter = parse_filters(&args.filters)?;
    if let Some(out) = &args.output {
        check_writable(out)?;
    }
    let request = ExportRequest {
        dataset: args.dataset,
        format: Some(args.format.clone()),
        filter,
        csv: args.csv_dialect.map(|dialect| CsvRequest {
            dialect: Some(dialect),
        }),
    };
    let job = ctx.api.create_export(&request).await?;
    let id = job.typed.id.to_string();
    ctx.ui.note(format!("export {id} queued"));
    if !args.wait {
        return Ok(Outcome::job(job));
    }
    let job = jobs::wait(&ctx.api, &ctx.ui, &id).await?;
    if job.typed.state != JobState::Succeeded {
        return Ok(Outcome::job(job));
    }
    let url = job.typed.download_url.clone().ok_or_else(|| {
        CliError::Transfer(format!("export {id} succeeded but has no download link"))
    })?;
    let dest = match args.output {
        Some(p) => p,
        None => PathBuf::from(
            job.typed
                .filename
                .as_deref()
                .map(safe_file_name)
                .unwrap_or_else(|| format!("{id}.{}", args.format)),
        ),
    };
    let expected = match &job.typed.counts {
        JobCounts::Export(counts) => counts.bytes,
        _ => None,
    };
    let bar = ctx.ui.bytes_bar("download", expected.unwrap_or(0));
    let bytes = ctx.transfers.download(&url, &dest, &bar).await?;
    bar.finish_and_clear();
    if let Some(e) = expected.filter(|e| *e != bytes) {
        let _ = std::fs::remove_file(&dest);
        return Err(CliError::Transfer(format!(
            "downloaded {bytes} bytes but the export wrote {e}: try `xlport status {id}` and download again"
        )));
    }
    let job = with_field(job, "saved_to", json!(dest.display().to_string()));
    let mut out = Outcome::job(job);
    out.human.push_str(&format!(
        "  saved to         {} ({})\n",
        dest.display(),
        human_bytes(bytes)
    ));
    Ok(out)
}

pub struct ImportArgs {
    pub file: PathBuf,
    pub dataset: String,
    pub policy: String,
    pub dry_run: bool,
    pub wait: bool,
    pub report_out: Option<PathBuf>,
    pub resume: Option<String>,
}

pub async fn import(ctx: &Ctx, args: ImportArgs) -> CliResult<Outcome> {
    let meta = std::fs::metadata(&args.file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    if !meta.is_file() {
        return Err(CliError::Usage(format!(
            "{} is not a file",
            args.file.display()
        )));
    }
    // Opening it now finds a file we may not read before anything starts.
    std::fs::File::open(&args.file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let size = meta.len();
    if size == 0 {
        return Err(CliError::Usage(format!("{} is empty", args.file.display())));
    }
    if let Some(out) = &args.report_out {
        check_writable(out)?;
    }
    let id = match &args.resume {
        Some(id) => resume(ctx, id, &args.file, size).await?,
        None => start(ctx, &args, size).await?,
    };
    if !args.wait {
        return Ok(Outcome::job(ctx.api.job(&id).await?));
    }
    let mut job = jobs::wait(&ctx.api, &ctx.ui, &id).await?;
    let mut saved = None;
    if let (Some(out), Some(url)) = (&args.report_out, job.typed.error_report_url.clone()) {
        let bar = ctx.ui.bytes_bar("report", 0);
        let bytes = ctx.transfers.download(&url, out, &bar).await?;
        bar.finish_and_clear();
        job = with_field(job, "report_saved_to", json!(out.display().to_string()));
        saved = Some(format!(
            "  report saved to  {} ({})\n",
            out.display(),
            human_bytes(bytes)
        ));
    } else if args.report_out.is_some() && job.typed.state == JobState::Succeeded {
        ctx.ui
            .note("no rows were rejected, so there is no error report to save");
    }
    let mut out = Outcome::job(job);
    if let Some(line) = saved {
        out.human.push_str(&line);
    }
    Ok(out)
}

/// Creates the import and uploads the file. Returns the job id.
async fn start(ctx: &Ctx, args: &ImportArgs, size: u64) -> CliResult<String> {
    let filename = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".into());
    let request = ImportRequest {
        dataset: args.dataset.clone(),
        filename,
        size,
        conflict_policy: Some(args.policy.clone()),
        dry_run: args.dry_run,
    };
    let created = ctx.api.create_import(&request).await?.typed;
    let id = created.job.id.to_string();
    match created.upload {
        Upload::Single(put) => {
            ctx.ui.note(format!(
                "import {id} created; uploading {} in one PUT",
                human_bytes(size)
            ));
            let url = put.url.as_str();
            let headers: Vec<(String, String)> = put.headers.into_iter().collect();
            let bar = ctx.ui.bytes_bar("upload", size);
            let mut attempt = 0;
            loop {
                match ctx
                    .transfers
                    .put_range(url, &headers, &args.file, 0, size, &bar)
                    .await
                {
                    Ok(_) => break,
                    // A retry finds the file there: the try before landed
                    // and only its answer was lost. The worker checks the
                    // size and ETag it records against what was declared.
                    Err(Attempt::AlreadyThere(_)) if attempt > 0 => break,
                    Err(Attempt::Retry(msg)) if attempt < ctx.transfers.retries => {
                        attempt += 1;
                        bar.println(format!("upload failed ({msg}); retrying"));
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    Err(e) => {
                        return Err(CliError::Transfer(format!(
                            "uploading {} failed: {}",
                            args.file.display(),
                            attempt_message(&e)
                        )));
                    }
                }
            }
            bar.finish_and_clear();
        }
        Upload::Multipart(multipart) => {
            let plan = Plan::of_upload(&multipart)?;
            ctx.ui.note(format!(
                "import {id} created; uploading {} in {} parts of {} ({} at a time)\n\
                 if interrupted, resume with: xlport import --resume {id} {}",
                human_bytes(size),
                plan.part_count,
                human_bytes(plan.part_size),
                ctx.parallel,
                shell_quote(&args.file)
            ));
            upload_parts(ctx, &id, &args.file, size, plan, HashMap::new()).await?;
        }
    }
    Ok(id)
}

/// Finishes the upload of import `id`: only the parts S3 does not have yet
/// are sent, after checking those it has against the file.
async fn resume(ctx: &Ctx, id: &str, file: &Path, size: u64) -> CliResult<String> {
    let job = ctx.api.job(id).await?.typed;
    if job.kind != JobKind::Import {
        return Err(CliError::Usage(format!("job {id} is not an import")));
    }
    let declared = job.object.declared_size.and_then(|d| u64::try_from(d).ok());
    if declared.is_some_and(|d| d != size) {
        return Err(CliError::Usage(format!(
            "{} is {size} bytes but import {id} was started for {} bytes: is it the same file?",
            file.display(),
            declared.unwrap_or(0)
        )));
    }
    if job.state != JobState::AwaitingUpload {
        ctx.ui.note(format!(
            "import {id} is {}: its upload is already complete",
            job.state
        ));
        return Ok(id.to_string());
    }
    let status = ctx.api.upload_parts(id, None).await.map_err(|e| match e {
        CliError::Api {
            status: 409,
            message,
            ..
        } => CliError::Usage(format!(
            "{message}: a single-PUT upload cannot be resumed; start the import again"
        )),
        other => other,
    })?;
    let plan = Plan::of_parts(&status)?;
    let mut uploaded = HashMap::new();
    for p in &status.uploaded {
        let Ok(len) = u64::try_from(p.size) else {
            continue;
        };
        if let Some((offset, expected)) = plan.range(p.part_number, size)
            && expected == len
            && part_matches(file, offset, len, &p.etag).await?
        {
            uploaded.insert(p.part_number, p.etag.clone());
        }
    }
    ctx.ui.note(format!(
        "resuming import {id}: {} of {} parts already uploaded, sending {}",
        uploaded.len(),
        plan.part_count,
        plan.part_count as usize - uploaded.len()
    ));
    upload_parts(ctx, id, file, size, plan, uploaded).await?;
    Ok(id.to_string())
}

/// The part layout of a multipart upload, and the URLs at hand.
struct Plan {
    part_size: u64,
    part_count: i32,
    urls: HashMap<i32, String>,
}

impl Plan {
    /// The plan `POST /imports` answered with.
    fn of_upload(upload: &MultipartPlan) -> CliResult<Plan> {
        Plan::new(upload.part_size, upload.part_count, &upload.parts)
    }

    /// The plan `POST /imports/{id}/parts` answered with.
    fn of_parts(answer: &PartsAnswer) -> CliResult<Plan> {
        Plan::new(answer.part_size, answer.part_count, &answer.parts)
    }

    fn new(part_size: u64, part_count: i32, urls: &[PartUrl]) -> CliResult<Plan> {
        if part_size == 0 {
            return Err(bad_response("part_size"));
        }
        if part_count <= 0 {
            return Err(bad_response("part_count"));
        }
        Ok(Plan {
            part_size,
            part_count,
            urls: urls_of(urls),
        })
    }

    /// Offset and length of part `n` (1-based) of a `size`-byte file.
    fn range(&self, n: i32, size: u64) -> Option<(u64, u64)> {
        if n < 1 || n > self.part_count {
            return None;
        }
        let offset = (n as u64 - 1) * self.part_size;
        (offset < size).then(|| (offset, self.part_size.min(size - offset)))
    }
}

fn urls_of(parts: &[PartUrl]) -> HashMap<i32, String> {
    parts
        .iter()
        .map(|p| (p.part_number, p.url.clone()))
        .collect()
}

/// Uploads every part not in `done` (part number → ETag), `--parallel` at a
/// time, each with its own retries, then completes the upload.
async fn upload_parts(
    ctx: &Ctx,
    id: &str,
    file: &Path,
    size: u64,
    plan: Plan,
    done: HashMap<i32, String>,
) -> CliResult<()> {
    let already: u64 = done
        .keys()
        .filter_map(|n| plan.range(*n, size).map(|r| r.1))
        .sum();
    let bar = ctx.ui.bytes_bar("upload", size);
    bar.set_position(already);
    let todo: Vec<i32> = (1..=plan.part_count)
        .filter(|n| !done.contains_key(n))
        .collect();
    let urls = tokio::sync::Mutex::new(plan.urls.clone());
    let results: Vec<CliResult<(i32, String)>> = futures::stream::iter(todo)
        .map(|n| {
            let bar = bar.clone();
            let urls = &urls;
            let plan = &plan;
            async move {
                let (offset, len) = plan
                    .range(n, size)
                    .ok_or_else(|| bad_response("part_count"))?;
                let mut attempt = 0;
                loop {
                    let url = match urls.lock().await.get(&n).cloned() {
                        Some(u) => u,
                        None => fresh_url(ctx, id, n).await?,
                    };
                    match ctx
                        .transfers
                        .put_range(&url, &[], file, offset, len, &bar)
                        .await
                    {
                        Ok(etag) => return Ok((n, etag)),
                        Err(e @ (Attempt::Retry(_) | Attempt::Refused(_)))
                            if attempt < ctx.transfers.retries =>
                        {
                            attempt += 1;
                            if matches!(e, Attempt::Refused(_)) {
                                // Most likely an expired URL: ask for a new one.
                                urls.lock().await.remove(&n);
                            }
                            bar.println(format!(
                                "part {n}: {}; retry {attempt} of {}",
                                attempt_message(&e),
                                ctx.transfers.retries
                            ));
                            tokio::time::sleep(backoff(attempt)).await;
                        }
                        Err(e) => {
                            return Err(CliError::Transfer(format!(
                                "part {n} of import {id} failed after {} attempt(s): {}. \
                                 Resume with: xlport import --resume {id} {}",
                                attempt + 1,
                                attempt_message(&e),
                                shell_quote(file)
                            )));
                        }
                    }
                }
            }
        })
        .buffer_unordered(ctx.parallel.max(1))
        .collect()
        .await;
    let mut parts: BTreeMap<i32, String> = done.into_iter().collect();
    for r in results {
        let (n, etag) = r?;
        parts.insert(n, etag);
    }
    bar.finish_and_clear();
    let parts: Vec<(i32, String)> = parts.into_iter().collect();
    ctx.api.complete_upload(id, &parts).await?;
    ctx.ui.note(format!("upload of import {id} complete"));
    Ok(())
}

async fn fresh_url(ctx: &Ctx, id: &str, n: i32) -> CliResult<String> {
    let answer = ctx.api.upload_parts(id, Some(&[n])).await?;
    urls_of(&answer.parts)
        .remove(&n)
        .ok_or_else(|| bad_response("parts[].url"))
}

/// Whether bytes `offset..offset+len` of `file` are what S3 holds under
/// `etag` (a part's ETag is the MD5 of its bytes).
async fn part_matches(file: &Path, offset: u64, len: u64, etag: &str) -> CliResult<bool> {
    let read_err =
        |e: std::io::Error| CliError::Usage(format!("cannot read {}: {e}", file.display()));
    let mut f = tokio::fs::File::open(file).await.map_err(read_err)?;
    f.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(read_err)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = f.read(&mut buf[..want]).await.map_err(read_err)?;
        if n == 0 {
            return Ok(false);
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hex::encode(hasher.finalize()) == etag.trim_matches('"'))
}

fn attempt_message(a: &Attempt) -> String {
    match a {
        Attempt::Retry(m) | Attempt::Fatal(m) => m.clone(),
        Attempt::AlreadyThere(m) => format!("{m} (this upload URL was used already)"),
        Attempt::Refused(m) => format!("{m} (the presigned URL may have expired)"),
    }
}

fn bad_response(field: &str) -> CliError {
    CliError::Api {
        status: 200,
        code: "bad_response".into(),
        message: format!("the API's answer has no valid `{field}`: is the CLI older than the API?"),
    }
}

/// Fails early, before any job starts, if `path` cannot be created.
fn check_writable(path: &Path) -> CliResult<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "cannot write {}: {} is not a directory",
            path.display(),
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is a directory",
            path.display()
        )));
    }
    Ok(())
}

/// A server-chosen file name, reduced to a plain name in the current directory.
fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "export".into()
    } else {
        cleaned
    }
}

fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_flags_ranges_bounds_and_json() {
        let f = parse_filters(&[
            "private=true".into(),
            "cpf_valido=no".into(),
            "data_ultima_compra=2020-01-01..".into(),
        ])
        .unwrap_or_default();
        assert_eq!(
            f,
            json!({"private": true, "cpf_valido": false, "data_ultima_compra": {"from": "2020-01-01"}})
        );
        let f = parse_filters(&[
            "data_ultima_compra.from=2020-01-01".into(),
            "data_ultima_compra.to=2020-12-31".into(),
            r#"{"incompleto": false}"#.into(),
        ])
        .unwrap_or_default();
        assert_eq!(
            f,
            json!({"data_ultima_compra": {"from": "2020-01-01", "to": "2020-12-31"}, "incompleto": false})
        );
        assert!(matches!(
            parse_filters(&["private".into()]),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            parse_filters(&["{nope".into()]),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            parse_filters(&["[1]".into()]),
            Err(CliError::Usage(_))
        ));
    }

    #[test]
    fn parts_cover_the_file_exactly() {
        let plan = Plan {
            part_size: 10,
            part_count: 3,
            urls: HashMap::new(),
        };
        assert_eq!(plan.range(1, 25), Some((0, 10)));
        assert_eq!(plan.range(3, 25), Some((20, 5)));
        assert_eq!(plan.range(4, 25), None);
        assert_eq!(plan.range(0, 25), None);
    }

    #[test]
    fn server_file_names_stay_in_the_current_directory() {
        assert_eq!(
            safe_file_name("user_purchase-1.xlsx"),
            "user_purchase-1.xlsx"
        );
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("a\\b\nc.csv"), "b_c.csv");
        assert_eq!(safe_file_name(".."), "export");
    }

    #[test]
    fn paths_are_quoted_for_the_shell_when_needed() {
        assert_eq!(shell_quote(Path::new("/tmp/a.csv")), "/tmp/a.csv");
        assert_eq!(
            shell_quote(Path::new("my file's.csv")),
            "'my file'\\''s.csv'"
        );
    }
}
