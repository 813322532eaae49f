//! Jobs as the API returns them: waiting for one to finish with a progress
//! bar, and showing them to a person.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use xlport_contract::{
    DatasetView, ExportFormat, JobCounts, JobKind, JobOptions, JobState, JobView,
};

use crate::api::{Answer, Api};
use crate::error::{CliResult, exit};
use crate::ui::{Ui, human_bytes, thousands};

/// A time as the API writes it (RFC 3339, UTC, `Z`; chrono's own serde form).
fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A count the API keeps signed, as shown (never negative).
fn num(n: impl Into<i64>) -> u64 {
    u64::try_from(n.into()).unwrap_or(0)
}

pub fn rejected(job: &JobView) -> u64 {
    job.counts.import().rejected
}

/// The exit code a finished (or, for `status`, any) job stands for.
pub fn exit_code(job: &JobView) -> i32 {
    match job.state {
        JobState::Failed | JobState::Cancelled => exit::FAILED,
        JobState::Succeeded if rejected(job) > 0 => exit::REJECTED_ROWS,
        _ => exit::DONE,
    }
}

/// Polls the job until it finishes, showing its progress: rows written for
/// an export; bytes read, rows and parts for an import.
pub async fn wait(api: &Api, ui: &Ui, id: &str) -> CliResult<Answer<JobView>> {
    let mut answer = api.job(id).await?;
    if answer.typed.state.is_terminal() {
        return Ok(answer);
    }
    let import = answer.typed.kind == JobKind::Import;
    let bar = ui.counter(if import { "importing" } else { "exporting" });
    let mut pause = Duration::from_millis(250);
    let mut last_state = None;
    let mut last_retry: Option<String> = None;
    let mut waiting = None;
    loop {
        let job = &answer.typed;
        let progress = &job.progress;
        bar.set_position(num(progress.rows));
        if import {
            let parts = match progress.parts_total {
                Some(t) if t >= 0 => format!("{}/{t}", num(progress.parts_done)),
                _ => num(progress.parts_done).to_string(),
            };
            bar.set_message(format!(
                "parts {parts}, {} of the file fetched",
                human_bytes(num(progress.bytes))
            ));
        }
        if Some(job.state) != last_state {
            last_state = Some(job.state);
            if bar.is_hidden() {
                ui.note(format!("job {id}: {}", job.state));
            }
        }
        if let Some(retry) = retry_note(job)
            && Some(&retry) != last_retry.as_ref()
        {
            ui.note(format!("job {id}: {retry}"));
            last_retry = Some(retry);
        }
        if let Some(since) = job.waiting_for_worker_since
            && Some(since) != waiting
        {
            ui.note(format!(
                "job {id}: waiting for a worker since {}",
                at(since)
            ));
            waiting = Some(since);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
        answer = api.job(id).await?;
        if answer.typed.state.is_terminal() {
            bar.finish_and_clear();
            return Ok(answer);
        }
    }
}

/// A job handed back after a transient failure: which attempt failed, why,
/// and when the next one is due.
pub fn retry_note(job: &JobView) -> Option<String> {
    if job.state.is_terminal() {
        return None;
    }
    let why = job.last_error.as_deref()?;
    let next = job
        .next_attempt_at
        .map(|t| format!("; next attempt at {}", at(t)))
        .unwrap_or_default();
    Some(format!("attempt {} failed: {why}{next}", num(job.attempts)))
}

/// Seconds from the job's start to its end, once it has both.
fn took_secs(job: &JobView) -> Option<f64> {
    Some((job.finished_at? - job.started_at?).as_seconds_f64())
}

/// A finished or running job, for a person.
pub fn describe(job: &JobView) -> String {
    let mut out = String::new();
    let took = took_secs(job)
        .map(|s| format!(" in {s:.1} s"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{} {} {}{took} (dataset {})",
        job.kind, job.id, job.state, job.dataset
    );
    if let Some(e) = &job.error {
        let _ = writeln!(out, "  error: {e}");
    }
    if let Some(retry) = retry_note(job) {
        let _ = writeln!(out, "  {retry}");
    }
    if let Some(since) = job.waiting_for_worker_since {
        let _ = writeln!(out, "  waiting for a worker since {}", at(since));
    }
    match job.kind {
        JobKind::Import => describe_import(job, &mut out),
        JobKind::Export => describe_export(job, &mut out),
    }
    out
}

fn describe_import(job: &JobView, out: &mut String) {
    let (policy, dry_run) = match &job.options {
        JobOptions::Import(o) => (o.conflict_policy.as_str(), o.dry_run),
        _ => ("upsert", false),
    };
    let _ = writeln!(
        out,
        "  file             {}  ({})",
        job.filename.as_deref().unwrap_or("?"),
        human_bytes(job.object.declared_size.map_or(0, num))
    );
    let _ = writeln!(
        out,
        "  policy           {policy}{}",
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    // Zeros until the import has succeeded.
    let counts = job.counts.import();
    for (label, n) in [
        ("rows read", counts.rows_read),
        ("inserted", counts.inserted),
        ("updated", counts.updated),
        ("skipped", counts.skipped),
        ("rejected", counts.rejected),
    ] {
        let _ = writeln!(out, "  {label:<16} {:>12}", thousands(n));
    }
    for (reason, n) in &counts.rejected_by_reason {
        let _ = writeln!(out, "    {reason:<22} {:>8}", thousands(*n));
    }
    let _ = writeln!(
        out,
        "  flags            invalid_cpf {}, invalid_cnpj {}",
        thousands(counts.invalid_cpf),
        thousands(counts.invalid_cnpj)
    );
    if let Some(parts) = job.parts.as_ref().filter(|p| !p.is_empty()) {
        let done = parts.iter().filter(|p| p.state == "succeeded").count();
        let _ = writeln!(out, "  parts            {} ({done} done)", parts.len());
        for p in parts {
            if let Some(e) = &p.error {
                let _ = writeln!(out, "    part {}: {e}", num(p.part_no));
            }
        }
    }
    for w in &job.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    if let Some(url) = &job.error_report_url {
        let _ = writeln!(out, "  error report     {url}");
    }
}

fn describe_export(job: &JobView, out: &mut String) {
    // Zeros until the export has succeeded.
    let (rows, bytes, sheets) = match &job.counts {
        JobCounts::Export(c) => (c.rows, c.bytes.unwrap_or(0), c.sheets.unwrap_or(0)),
        _ => (0, 0, 0),
    };
    let _ = writeln!(
        out,
        "  format           {}",
        job.format.map_or("?", ExportFormat::as_str)
    );
    let _ = writeln!(out, "  rows             {:>12}", thousands(rows));
    let _ = writeln!(out, "  size             {:>12}", human_bytes(bytes));
    if job.format == Some(ExportFormat::Xlsx) {
        let _ = writeln!(out, "  sheets           {:>12}", sheets);
    }
    if let Some(url) = &job.download_url {
        let _ = writeln!(out, "  download         {url}");
    }
}

/// `xlport jobs`: one line per job.
pub fn table(jobs: &[JobView]) -> String {
    let mut out = format!(
        "{:<36}  {:<6}  {:<14}  {:<15}  {:>12}  {}\n",
        "ID", "KIND", "DATASET", "STATE", "ROWS", "CREATED"
    );
    for j in jobs {
        let _ = writeln!(
            out,
            "{:<36}  {:<6}  {:<14}  {:<15}  {:>12}  {}",
            j.id.to_string(),
            j.kind.as_str(),
            j.dataset,
            j.state.as_str(),
            thousands(num(j.progress.rows)),
            j.created_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    out
}

/// `xlport datasets`: each dataset with its columns and filters.
pub fn datasets(list: &[DatasetView]) -> String {
    let mut out = String::new();
    for d in list {
        let _ = writeln!(
            out,
            "{}  {} (key: {})",
            d.name,
            d.title.as_deref().unwrap_or(""),
            d.key
        );
        let mut filters = Vec::new();
        for c in &d.columns {
            let _ = writeln!(
                out,
                "  {:<28} {:<8} {}{}",
                c.name,
                c.kind.as_str(),
                c.header,
                if c.nullable { "" } else { "  (required)" }
            );
            if c.filterable {
                filters.push(c.name.clone());
            }
        }
        filters.extend(d.flags.iter().map(|f| f.name.clone()));
        if !filters.is_empty() {
            let _ = writeln!(out, "  export filters: {}", filters.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A job as the API writes one, with `fields` in place of its own.
    fn job(fields: Value) -> JobView {
        let mut job = json!({
            "id": "00000000-0000-0000-0000-000000000001", "kind": "import",
            "dataset": "user_purchase", "state": "queued", "format": null, "options": {},
            "filename": null, "progress": {"rows": 0, "bytes": 0, "parts_done": 0, "parts_total": null},
            "counts": {}, "warnings": [], "error": null,
            "object": {"key": null, "declared_size": null, "size": null, "etag": null},
            "attempts": 0, "last_error": null, "next_attempt_at": null,
            "waiting_for_worker_since": null, "created_at": "2026-11-23T23:59:00Z",
            "updated_at": "2026-11-23T23:59:00Z", "started_at": null, "finished_at": null,
            "status_url": "/jobs/00000000-0000-0000-0000-000000000001"
        });
        if let (Some(job), Value::Object(fields)) = (job.as_object_mut(), fields) {
            job.extend(fields);
        }
        serde_json::from_value(job).expect("a job")
    }

    #[test]
    fn a_retried_job_says_which_attempt_failed_why_and_when_the_next_is() {
        let retried = job(
            json!({"state": "queued", "attempts": 1, "last_error": "a database error; it will be retried",
                         "next_attempt_at": "2026-11-30T22:00:05Z"}),
        );
        assert_eq!(
            retry_note(&retried).as_deref(),
            Some(
                "attempt 1 failed: a database error; it will be retried; next attempt at 2026-11-30T22:00:05Z"
            )
        );
        assert_eq!(
            retry_note(&job(json!({"state": "succeeded", "last_error": "x"}))),
            None
        );
        assert_eq!(retry_note(&job(json!({"state": "running"}))), None);
    }

    #[test]
    fn exit_codes_follow_the_job() {
        let finished = |counts: Value| job(json!({"state": "succeeded", "counts": counts}));
        assert_eq!(
            exit_code(&finished(json!({"rows_read": 2, "rejected": 0}))),
            0
        );
        assert_eq!(
            exit_code(&finished(json!({"rows_read": 2, "rejected": 2}))),
            3
        );
        assert_eq!(exit_code(&job(json!({"state": "failed"}))), 1);
        assert_eq!(exit_code(&job(json!({"state": "cancelled"}))), 1);
        assert_eq!(exit_code(&job(json!({"state": "running"}))), 0);
    }

    #[test]
    fn durations_come_from_the_timestamps() {
        let done = job(
            json!({"started_at": "2026-11-23T23:59:58.5Z", "finished_at": "2026-11-24T00:00:01Z"}),
        );
        let s = took_secs(&done).unwrap_or(-1.0);
        assert!((s - 2.5).abs() < 1e-6, "{s}");
        assert_eq!(
            took_secs(&job(json!({"finished_at": "2026-11-24T00:00:01Z"}))),
            None
        );
        let bad = json!({"started_at": "garbage"});
        assert!(serde_json::from_value::<JobView>(bad).is_err());
    }

    #[test]
    fn times_read_as_the_api_wrote_them() {
        for text in [
            "2026-11-30T22:00:05Z",
            "2026-11-30T22:00:05.500Z",
            "2026-11-30T22:00:05.123456Z",
        ] {
            let t: DateTime<Utc> = serde_json::from_value(json!(text)).expect("a time");
            assert_eq!(at(t), text);
        }
    }

    #[test]
    fn an_import_summary_names_counts_reasons_and_the_report() {
        let imported = job(json!({
            "kind": "import", "state": "succeeded", "dataset": "user_purchase",
            "filename": "f.csv", "object": {"key": null, "declared_size": 2048, "size": null, "etag": null},
            "options": {"conflict_policy": "skip", "dry_run": true},
            "counts": {"rows_read": 1200, "inserted": 1000, "updated": 0, "skipped": 150, "rejected": 50,
                       "rejected_by_reason": {"invalid_date": 50}, "invalid_cpf": 7, "invalid_cnpj": 3},
            "parts": [{"part_no": 1, "state": "succeeded", "first_row": 2, "last_row": 1201,
                       "rows_read": 1200, "inserted": 1000, "updated": 0, "rejected": 50,
                       "counts": {}, "error": null}],
            "warnings": ["unknown column `extra` ignored"],
            "error_report_url": "http://s3/report"
        }));
        let text = describe(&imported);
        for needle in [
            "rows read",
            "1,200",
            "skip (dry run",
            "invalid_date",
            "invalid_cpf 7",
            "invalid_cnpj 3",
            "1 (1 done)",
            "unknown column",
            "http://s3/report",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }

    #[test]
    fn an_export_summary_names_its_rows_size_sheets_and_link() {
        let exported = job(json!({
            "kind": "export", "state": "succeeded", "format": "xlsx",
            "options": {"filter": null},
            "counts": {"rows": 1500, "bytes": 2048, "sheets": 2, "duration_ms": 9},
            "download_url": "http://s3/file"
        }));
        let text = describe(&exported);
        for needle in ["format           xlsx", "1,500", "sheets", "http://s3/file"] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        let table = table(&[exported]);
        assert!(table.contains("2026-11-23 23:59:00"), "{table}");
    }
}
