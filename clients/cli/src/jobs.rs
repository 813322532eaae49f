//! Jobs as the API returns them: waiting for one to finish with a progress
//! bar, and showing them to a person.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::api::Api;
use crate::error::{CliResult, exit};
use crate::ui::{Ui, human_bytes, thousands};

pub fn state(job: &Value) -> &str {
    job["state"].as_str().unwrap_or("unknown")
}

pub fn is_finished(job: &Value) -> bool {
    matches!(state(job), "succeeded" | "failed" | "cancelled")
}

fn num(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_i64().map(|n| n.max(0) as u64))
        .unwrap_or(0)
}

pub fn rejected(job: &Value) -> u64 {
    num(&job["counts"]["rejected"])
}

/// The exit code a finished (or, for `status`, any) job stands for.
pub fn exit_code(job: &Value) -> i32 {
    match state(job) {
        "failed" | "cancelled" => exit::FAILED,
        "succeeded" if rejected(job) > 0 => exit::REJECTED_ROWS,
        _ => exit::DONE,
    }
}

/// Polls the job until it finishes, showing its progress: rows written for
/// an export; bytes read, rows and parts for an import.
pub async fn wait(api: &Api, ui: &Ui, id: &str) -> CliResult<Value> {
    let mut job = api.job(id).await?;
    if is_finished(&job) {
        return Ok(job);
    }
    let import = job["kind"] == "import";
    let bar = ui.counter(if import { "importing" } else { "exporting" });
    let mut pause = Duration::from_millis(250);
    let mut last_state = String::new();
    let mut last_retry: Option<String> = None;
    let mut waiting: Option<String> = None;
    loop {
        let progress = &job["progress"];
        bar.set_position(num(&progress["rows"]));
        if import {
            let parts = match progress["parts_total"].as_u64() {
                Some(t) => format!("{}/{t}", num(&progress["parts_done"])),
                None => num(&progress["parts_done"]).to_string(),
            };
            bar.set_message(format!(
                "parts {parts}, {} of the file fetched",
                human_bytes(num(&progress["bytes"]))
            ));
        }
        if state(&job) != last_state {
            last_state = state(&job).to_string();
            if bar.is_hidden() {
                ui.note(format!("job {id}: {last_state}"));
            }
        }
        if let Some(retry) = retry_note(&job)
            && Some(&retry) != last_retry.as_ref()
        {
            ui.note(format!("job {id}: {retry}"));
            last_retry = Some(retry);
        }
        if let Some(since) = job["waiting_for_worker_since"].as_str()
            && Some(since) != waiting.as_deref()
        {
            ui.note(format!("job {id}: waiting for a worker since {since}"));
            waiting = Some(since.to_owned());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
        job = api.job(id).await?;
        if is_finished(&job) {
            bar.finish_and_clear();
            return Ok(job);
        }
    }
}

/// A job handed back after a transient failure: which attempt failed, why,
/// and when the next one is due.
pub fn retry_note(job: &Value) -> Option<String> {
    if is_finished(job) {
        return None;
    }
    let why = job["last_error"].as_str()?;
    let next = job["next_attempt_at"]
        .as_str()
        .map(|at| format!("; next attempt at {at}"))
        .unwrap_or_default();
    Some(format!(
        "attempt {} failed: {why}{next}",
        num(&job["attempts"])
    ))
}

fn secs_between(job: &Value, from: &str, to: &str) -> Option<f64> {
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(job[k].as_str()?).ok();
    Some((at(to)? - at(from)?).as_seconds_f64())
}

/// A finished or running job, for a person.
pub fn describe(job: &Value) -> String {
    let mut out = String::new();
    let kind = job["kind"].as_str().unwrap_or("job");
    let id = job["id"].as_str().unwrap_or("?");
    let took = secs_between(job, "started_at", "finished_at")
        .map(|s| format!(" in {s:.1} s"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{kind} {id} {}{took} (dataset {})",
        state(job),
        job["dataset"].as_str().unwrap_or("?")
    );
    if let Some(e) = job["error"].as_str() {
        let _ = writeln!(out, "  error: {e}");
    }
    if let Some(retry) = retry_note(job) {
        let _ = writeln!(out, "  {retry}");
    }
    if let Some(since) = job["waiting_for_worker_since"].as_str() {
        let _ = writeln!(out, "  waiting for a worker since {since}");
    }
    let counts = &job["counts"];
    if kind == "import" {
        let options = &job["options"];
        let _ = writeln!(
            out,
            "  file             {}  ({})",
            job["filename"].as_str().unwrap_or("?"),
            human_bytes(num(&job["object"]["declared_size"]))
        );
        let _ = writeln!(
            out,
            "  policy           {}{}",
            options["conflict_policy"].as_str().unwrap_or("upsert"),
            if options["dry_run"] == true {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
        if counts.is_object() {
            for (label, key) in [
                ("rows read", "rows_read"),
                ("inserted", "inserted"),
                ("updated", "updated"),
                ("skipped", "skipped"),
                ("rejected", "rejected"),
            ] {
                let _ = writeln!(out, "  {label:<16} {:>12}", thousands(num(&counts[key])));
            }
            if let Some(reasons) = counts["rejected_by_reason"].as_object() {
                for (reason, n) in reasons {
                    let _ = writeln!(out, "    {reason:<22} {:>8}", thousands(num(n)));
                }
            }
            let _ = writeln!(
                out,
                "  flags            invalid_cpf {}, invalid_cnpj {}",
                thousands(num(&counts["invalid_cpf"])),
                thousands(num(&counts["invalid_cnpj"]))
            );
        } else {
            let p = &job["progress"];
            let _ = writeln!(
                out,
                "  progress         {} rows, {} read",
                thousands(num(&p["rows"])),
                human_bytes(num(&p["bytes"]))
            );
        }
        if let Some(parts) = job["parts"].as_array().filter(|p| !p.is_empty()) {
            let done = parts.iter().filter(|p| p["state"] == "succeeded").count();
            let _ = writeln!(out, "  parts            {} ({done} done)", parts.len());
            for p in parts.iter().filter(|p| !p["error"].is_null()) {
                let _ = writeln!(
                    out,
                    "    part {}: {}",
                    num(&p["part_no"]),
                    p["error"].as_str().unwrap_or("")
                );
            }
        }
        if let Some(warnings) = job["warnings"].as_array() {
            for w in warnings {
                let text = w.as_str().map_or_else(|| w.to_string(), str::to_string);
                let _ = writeln!(out, "  warning: {text}");
            }
        }
        if let Some(url) = job["error_report_url"].as_str() {
            let _ = writeln!(out, "  error report     {url}");
        }
    } else {
        let rows = if counts.is_object() {
            num(&counts["rows"])
        } else {
            num(&job["progress"]["rows"])
        };
        let _ = writeln!(
            out,
            "  format           {}",
            job["format"].as_str().unwrap_or("?")
        );
        let _ = writeln!(out, "  rows             {:>12}", thousands(rows));
        if counts.is_object() {
            let _ = writeln!(
                out,
                "  size             {:>12}",
                human_bytes(num(&counts["bytes"]))
            );
            if job["format"] == "xlsx" {
                let _ = writeln!(out, "  sheets           {:>12}", num(&counts["sheets"]));
            }
        }
        if let Some(url) = job["download_url"].as_str() {
            let _ = writeln!(out, "  download         {url}");
        }
    }
    out
}

/// `xlport jobs`: one line per job.
pub fn table(jobs: &[Value]) -> String {
    let mut out = format!(
        "{:<36}  {:<6}  {:<14}  {:<15}  {:>12}  {}\n",
        "ID", "KIND", "DATASET", "STATE", "ROWS", "CREATED"
    );
    for j in jobs {
        let _ = writeln!(
            out,
            "{:<36}  {:<6}  {:<14}  {:<15}  {:>12}  {}",
            j["id"].as_str().unwrap_or("?"),
            j["kind"].as_str().unwrap_or("?"),
            j["dataset"].as_str().unwrap_or("?"),
            state(j),
            thousands(num(&j["progress"]["rows"])),
            j["created_at"]
                .as_str()
                .map(|s| s.get(..19).unwrap_or(s).replace('T', " "))
                .unwrap_or_default()
        );
    }
    out
}

/// `xlport datasets`: each dataset with its columns and filters.
pub fn datasets(list: &[Value]) -> String {
    let mut out = String::new();
    for d in list {
        let _ = writeln!(
            out,
            "{}  {} (key: {})",
            d["name"].as_str().unwrap_or("?"),
            d["title"].as_str().unwrap_or(""),
            d["key"].as_str().unwrap_or("?")
        );
        let mut filters = Vec::new();
        for c in d["columns"].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("?");
            let _ = writeln!(
                out,
                "  {name:<28} {:<8} {}{}",
                c["type"].as_str().unwrap_or("?"),
                c["header"].as_str().unwrap_or(""),
                if c["nullable"] == false {
                    "  (required)"
                } else {
                    ""
                }
            );
            if c["filterable"] == true {
                filters.push(name.to_string());
            }
        }
        filters.extend(
            d["flags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["name"].as_str().map(str::to_string)),
        );
        if !filters.is_empty() {
            let _ = writeln!(out, "  export filters: {}", filters.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_retried_job_says_which_attempt_failed_why_and_when_the_next_is() {
        let job = json!({"state": "queued", "attempts": 1, "last_error": "a database error; it will be retried",
                         "next_attempt_at": "2026-11-30T22:00:05Z"});
        assert_eq!(
            retry_note(&job).as_deref(),
            Some(
                "attempt 1 failed: a database error; it will be retried; next attempt at 2026-11-30T22:00:05Z"
            )
        );
        assert_eq!(
            retry_note(&json!({"state": "succeeded", "last_error": "x"})),
            None
        );
        assert_eq!(retry_note(&json!({"state": "running"})), None);
    }

    #[test]
    fn exit_codes_follow_the_job() {
        assert_eq!(
            exit_code(&json!({"state": "succeeded", "counts": {"rejected": 0}})),
            0
        );
        assert_eq!(
            exit_code(&json!({"state": "succeeded", "counts": {"rejected": 2}})),
            3
        );
        assert_eq!(exit_code(&json!({"state": "failed"})), 1);
        assert_eq!(exit_code(&json!({"state": "cancelled"})), 1);
        assert_eq!(exit_code(&json!({"state": "running"})), 0);
    }

    #[test]
    fn durations_come_from_the_timestamps() {
        let job =
            json!({"started_at": "2026-11-23T23:59:58.5Z", "finished_at": "2026-11-24T00:00:01Z"});
        let s = secs_between(&job, "started_at", "finished_at").unwrap_or(-1.0);
        assert!((s - 2.5).abs() < 1e-6, "{s}");
        let bad = json!({"started_at": "garbage", "finished_at": "2026-11-24T00:00:01Z"});
        assert_eq!(secs_between(&bad, "started_at", "finished_at"), None);
    }

    #[test]
    fn an_import_summary_names_counts_reasons_and_the_report() {
        let job = json!({
            "id": "j1", "kind": "import", "state": "succeeded", "dataset": "user_purchase",
            "filename": "f.csv", "object": {"declared_size": 2048},
            "options": {"conflict_policy": "skip", "dry_run": true},
            "counts": {"rows_read": 1200, "inserted": 1000, "updated": 0, "skipped": 150, "rejected": 50,
                       "rejected_by_reason": {"invalid_date": 50}, "invalid_cpf": 7, "invalid_cnpj": 3},
            "parts": [{"part_no": 1, "state": "succeeded", "error": null}],
            "warnings": ["unknown column `extra` ignored"],
            "error_report_url": "http://s3/report"
        });
        let text = describe(&job);
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
}
