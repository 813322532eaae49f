//! The `xlport` CLI against the real local stack, run as a user runs it: a
//! separate process given the API's URL and a key, nothing else.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use xlport_adapters::pgcopy::CopyConnection;
use xlport_tests::{Stack, big_csv, random_u32};

/// The CLI binary, built beside the test binaries (`target/debug/xlport`).
fn cli_binary() -> PathBuf {
    if let Ok(p) = std::env::var("XLPORT_CLI_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let bin = dir.join("xlport");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p xlport-cli`",
        bin.display()
    );
    bin
}

struct Run {
    code: i32,
    json: Value,
    stderr: String,
}

/// Runs `xlport --json ARGS` and parses stdout, which must be exactly one
/// JSON value and nothing else.
fn xlport(stack: &Stack, key: &str, args: &[&str]) -> Run {
    let out = Command::new(cli_binary())
        .args(args)
        .arg("--json")
        .env("XLPORT_API", &stack.api)
        .env("XLPORT_TOKEN", key)
        .env("XLPORT_HOME", "/nonexistent")
        .output()
        .expect("run xlport");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout of xlport {args:?} is not one JSON value ({e}):\n{stdout}\nstderr:\n{stderr}"
        )
    });
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "stdout must be one line of JSON: {stdout}"
    );
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

/// Asserts a run failed with `code` and an `error` that mentions `needle`.
fn assert_error(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "{} {}", run.json, run.stderr);
    let error = run.json["error"].as_str().unwrap_or("");
    assert!(error.contains(needle), "`{needle}` not in {}", run.json);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xlport-cli-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Every row of `user_purchase` whose last purchase was in `year`, as text.
async fn rows_of_year(stack: &Stack, year: i32) -> Vec<String> {
    sqlx::query_scalar(
        "select row(cpf, private, incompleto, data_ultima_compra, ticket_medio, ticket_ultima_compra, \
                    loja_mais_frequente, loja_ultima_compra, cpf_valido, loja_mais_frequente_valida, \
                    loja_ultima_compra_valida)::text \
         from user_purchase where extract(year from data_ultima_compra) = $1 order by cpf",
    )
    .bind(f64::from(year))
    .fetch_all(&stack.deps.jobs.pool)
    .await
    .expect("read rows")
}

/// Sample rows (valid and invalid check digits, NULLs, decimals) moved to
/// `year`, which no other test uses, so a date filter sees only these.
async fn seed_year(stack: &Stack, year: i32, rows: u64) {
    let mut conn = CopyConnection::acquire(&stack.deps.jobs.pool)
        .await
        .expect("connection");
    sqlx::query("create temp table cli_seed (like user_purchase including defaults)")
        .execute(&mut *conn)
        .await
        .expect("temp table");
    let mut sample = xlport_core::sample::UserPurchaseSample::new(u64::from(random_u32()));
    let mut text = String::new();
    for i in 0..rows {
        sample.write_row(i, &mut text);
    }
    let columns = "cpf, private, incompleto, data_ultima_compra, ticket_medio, ticket_ultima_compra, \
                   loja_mais_frequente, loja_ultima_compra, cpf_valido, loja_mais_frequente_valida, \
                   loja_ultima_compra_valida";
    conn.copy_in(
        &format!("copy cli_seed ({columns}) from stdin"),
        [text.as_bytes()],
    )
    .await
    .expect("copy rows");
    sqlx::query(
        "insert into user_purchase (cpf, private, incompleto, data_ultima_compra, ticket_medio, \
                ticket_ultima_compra, loja_mais_frequente, loja_ultima_compra, cpf_valido, \
                loja_mais_frequente_valida, loja_ultima_compra_valida) \
         select cpf, private, incompleto, make_date($1, 1 + substr(cpf, 3, 2)::int % 12, 1 + substr(cpf, 6, 2)::int % 28), \
                ticket_medio, ticket_ultima_compra, loja_mais_frequente, loja_ultima_compra, cpf_valido, \
                loja_mais_frequente_valida, loja_ultima_compra_valida \
         from cli_seed on conflict do nothing",
    )
    .bind(year)
    .execute(&mut *conn)
    .await
    .expect("seed rows");
    sqlx::query("drop table cli_seed")
        .execute(&mut *conn)
        .await
        .expect("drop temp table");
    conn.release().await;
}

fn count(job: &Value, name: &str) -> u64 {
    job["counts"][name].as_u64().unwrap_or(u64::MAX)
}

/// Export rows with the CLI, import the same file back with the CLI: the
/// import reads every row, rejects none and leaves the table as it was.
#[tokio::test]
async fn export_then_import_the_same_file_leaves_the_table_unchanged() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let year = 1987;
    seed_year(&stack, year, 300).await;
    let before = rows_of_year(&stack, year).await;
    assert!(before.len() >= 290, "seeded {} rows", before.len());
    let dir = temp_dir("roundtrip");

    for format in ["xlsx", "csv"] {
        let file = dir.join(format!("export.{format}"));
        let file_arg = file.to_str().expect("path");
        let export = xlport(
            &stack,
            &key,
            &[
                "export",
                "--format",
                format,
                "--filter",
                &format!("data_ultima_compra={year}-01-01..{year}-12-31"),
                "-o",
                file_arg,
            ],
        );
        assert_eq!(export.code, 0, "{} {}", export.json, export.stderr);
        assert_eq!(export.json["state"], "succeeded");
        assert_eq!(export.json["saved_to"], file_arg);
        assert_eq!(count(&export.json, "rows"), before.len() as u64);
        let size = std::fs::metadata(&file).expect("exported file").len();
        assert_eq!(count(&export.json, "bytes"), size);

        let import = xlport(&stack, &key, &["import", file_arg, "--policy", "upsert"]);
        assert_eq!(import.code, 0, "{} {}", import.json, import.stderr);
        let job = &import.json;
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["kind"], "import");
        assert_eq!(count(job, "rows_read"), before.len() as u64, "{job}");
        assert_eq!(count(job, "rejected"), 0, "{job}");
        assert_eq!(count(job, "inserted"), 0, "{job}");
        assert_eq!(count(job, "updated"), before.len() as u64, "{job}");
        assert_eq!(
            rows_of_year(&stack, year).await,
            before,
            "{format} round trip"
        );

        // `status` shows the same finished job.
        let id = job["id"].as_str().expect("job id");
        let status = xlport(&stack, &key, &["status", id]);
        assert_eq!(status.code, 0);
        assert_eq!(status.json["id"], id);
        assert_eq!(status.json["counts"], job["counts"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A multipart upload killed part-way resumes with `--resume`: the parts S3
/// already has are not sent again, and the import reads the whole file.
#[tokio::test]
async fn an_interrupted_multipart_upload_resumes_with_resume() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let dir = temp_dir("resume");
    let file = dir.join("big.csv");
    // About 17 MB: four 5 MiB parts on the test stack.
    let rows = 400_000;
    std::fs::write(&file, big_csv(rows)).expect("write csv");
    let file_arg = file.to_str().expect("path");

    // Slow enough (8 MB/s, one part at a time) to be stopped part-way.
    let mut child = Command::new(cli_binary())
        .args([
            "import",
            file_arg,
            "--dry-run",
            "--parallel",
            "1",
            "--limit-rate",
            "8M",
        ])
        .env("XLPORT_API", &stack.api)
        .env("XLPORT_TOKEN", &key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xlport");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let id = loop {
        let line = lines
            .next()
            .expect("xlport said nothing about its import")
            .expect("stderr line");
        if let Some(rest) = line.strip_prefix("import ")
            && let Some((id, _)) = rest.split_once(' ')
        {
            break id.to_string();
        }
    };
    let started = Instant::now();
    let (uploaded, part_count) = loop {
        let (status, parts) = stack
            .call(
                Method::POST,
                &format!("/imports/{id}/parts"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{parts}");
        let n = parts["uploaded"].as_array().map_or(0, Vec::len);
        let total = parts["part_count"].as_u64().unwrap_or(0) as usize;
        if n >= 2 {
            assert!(
                n < total,
                "the upload finished before it could be interrupted"
            );
            break (n, total);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no part arrived: {parts}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().expect("kill xlport");
    let _ = child.wait();
    let (_, job) = stack
        .call(Method::GET, &format!("/jobs/{id}"), Some(&key), None)
        .await;
    assert_eq!(job["state"], "awaiting_upload", "{job}");

    let resumed = xlport(&stack, &key, &["import", "--resume", &id, file_arg]);
    // Dry run of a file with malformed CPFs: done, with rejected rows.
    assert_eq!(resumed.code, 3, "{} {}", resumed.json, resumed.stderr);
    let line = resumed
        .stderr
        .lines()
        .find(|l| l.starts_with("resuming import"))
        .unwrap_or_else(|| panic!("no resume line in {}", resumed.stderr));
    let already: usize = line
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line}"));
    assert!(already >= uploaded, "{line}");
    assert!(
        line.ends_with(&format!("sending {}", part_count - already)),
        "{line}"
    );
    let job = &resumed.json;
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(count(job, "rows_read"), rows);
    assert_eq!(count(job, "rejected"), rows / 11);
    assert_eq!(job["object"]["size"], job["object"]["declared_size"]);

    // Resuming a finished upload just reports the job.
    let again = xlport(&stack, &key, &["import", "--resume", &id, file_arg]);
    assert_eq!(again.code, 3);
    assert_eq!(again.json["counts"], job["counts"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each exit code, and `--json` output that parses in every case, with an
/// `error` field when something went wrong.
#[tokio::test]
async fn exit_codes_and_json_for_every_outcome() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let dir = temp_dir("codes");

    // 2: usage and configuration errors.
    let missing = xlport(&stack, &key, &["import", "/nonexistent/file.csv"]);
    assert_error(&missing, 2, "/nonexistent/file.csv");
    let bad_flag = xlport(&stack, &key, &["export", "--format", "pdf"]);
    assert_error(&bad_flag, 2, "pdf");
    let bad_filter = xlport(&stack, &key, &["export", "--filter", "colour=red"]);
    assert_error(&bad_filter, 2, "unknown filter `colour`");
    let unauthorized = xlport(&stack, "not-a-key", &["jobs"]);
    assert_eq!(unauthorized.code, 2);
    assert_eq!(unauthorized.json["status"], 401, "{}", unauthorized.json);
    let unknown_job = xlport(
        &stack,
        &key,
        &["status", "00000000-0000-0000-0000-000000000000"],
    );
    assert_eq!(unknown_job.code, 2);
    assert_eq!(unknown_job.json["status"], 404);
    let out = Command::new(cli_binary())
        .args(["datasets", "--json"])
        .env("XLPORT_API", "http://127.0.0.1:9")
        .env("XLPORT_TOKEN", &key)
        .output()
        .expect("run xlport");
    assert_eq!(out.status.code(), Some(2));
    let unreachable: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(unreachable["code"], "unreachable", "{unreachable}");
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap_or("")
            .contains("127.0.0.1:9")
    );

    // 1: a file that is not a spreadsheet fails its job, with the reason.
    let junk = dir.join("photo.xlsx");
    std::fs::write(
        &junk,
        [0x89u8, b'P', b'N', b'G', 0, 1, 2, 3, 4, 5, 6, 7].repeat(50),
    )
    .expect("write");
    let failed = xlport(&stack, &key, &["import", junk.to_str().expect("path")]);
    assert_eq!(failed.code, 1, "{}", failed.json);
    assert_eq!(failed.json["state"], "failed");
    assert!(
        failed.json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        failed.json
    );

    // 3: done with rejected rows; the report is saved where asked.
    let csv = dir.join("some bad rows.csv");
    std::fs::write(&csv, big_csv(100)).expect("write");
    let report = dir.join("errors.xlsx");
    let rejected = xlport(
        &stack,
        &key,
        &[
            "import",
            csv.to_str().expect("path"),
            "--dry-run",
            "--report-out",
            report.to_str().expect("path"),
        ],
    );
    assert_eq!(rejected.code, 3, "{}", rejected.json);
    assert_eq!(count(&rejected.json, "rejected"), 100 / 11);
    assert!(rejected.json["error_report_url"].is_string());
    let bytes = std::fs::read(&report).expect("report saved");
    assert!(bytes.starts_with(b"PK"), "the report is an xlsx");

    // 0: the lists, and a job started without waiting.
    // A date range with no rows keeps it quick.
    let queued = xlport(
        &stack,
        &key,
        &[
            "export",
            "--no-wait",
            "--filter",
            "data_ultima_compra=1986-01-01..1986-01-02",
        ],
    );
    assert_eq!(queued.code, 0, "{}", queued.json);
    assert!(
        ["queued", "running", "succeeded"].contains(&queued.json["state"].as_str().unwrap_or(""))
    );
    let jobs = xlport(&stack, &key, &["jobs"]);
    assert_eq!(jobs.code, 0);
    let list = jobs.json.as_array().expect("jobs is a list");
    assert!(list.iter().any(|j| j["id"] == queued.json["id"]));
    let datasets = xlport(&stack, &key, &["datasets"]);
    assert_eq!(datasets.code, 0);
    assert!(
        datasets
            .json
            .as_array()
            .expect("list")
            .iter()
            .any(|d| d["name"] == "user_purchase")
    );
    let id = queued.json["id"].as_str().expect("id");
    let waited = xlport(&stack, &key, &["status", id, "--wait"]);
    assert_eq!(waited.code, 0, "{}", waited.json);
    assert_eq!(waited.json["state"], "succeeded");
    let _ = std::fs::remove_dir_all(&dir);
}
