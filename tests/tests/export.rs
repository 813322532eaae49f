//! Exports against the real stack: Postgres -> export worker -> S3 multipart,
//! read back with calamine and compared with the table cell for cell.

use std::io::Cursor;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use calamine::{Data, Reader, Xlsx};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_adapters::Deps;
use xlport_adapters::postgres::seed_user_purchase;
use xlport_core::JobState;
use xlport_core::ports::{JobStore, ObjectStore};
use xlport_core::xlsx::check_conventional_zip;
use xlport_tests::{
    Stack, deps_with_fresh_db, deps_with_one_connection, download, fail_a_copy, import_bytes,
    import_bytes_into, libreoffice_resave, new_export_job_of, openpyxl_rows, openpyxl_sheets,
    random_u32, snapshot, table_checksum,
};

async fn new_export_job(deps: &Deps, format: &str, filter: Value) -> Uuid {
    new_export_job_of(deps, "user_purchase", format, filter).await
}

/// The export worker's event for `job`.
fn message(job: Uuid) -> SqsEvent {
    xlport_tests::export_message(job)
}

#[derive(sqlx::FromRow)]
struct TableRow {
    cpf: String,
    private: bool,
    incompleto: bool,
    data: Option<String>,
    ticket_medio: Option<String>,
    ticket_ultima: Option<String>,
    loja_mais_frequente: Option<String>,
    loja_ultima_compra: Option<String>,
    cpf_valido: bool,
    loja_mais_frequente_valida: Option<bool>,
    loja_ultima_compra_valida: Option<bool>,
}

/// The table as the export should show it: masks, ISO dates, two decimals.
async fn expected_rows(deps: &Deps, filter_sql: &str) -> Vec<Vec<String>> {
    let rows: Vec<TableRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select cpf, private, incompleto, to_char(data_ultima_compra, 'YYYY-MM-DD') as data, \
         ticket_medio::text as ticket_medio, ticket_ultima_compra::text as ticket_ultima, \
         loja_mais_frequente, loja_ultima_compra, cpf_valido, loja_mais_frequente_valida, \
         loja_ultima_compra_valida from user_purchase {filter_sql} order by cpf"
    )))
    .fetch_all(&deps.jobs.pool)
    .await
    .unwrap();
    let b = |v: bool| if v { "true" } else { "false" }.to_string();
    let ob = |v: Option<bool>| v.map(b).unwrap_or_default();
    let os = |v: Option<String>| v.unwrap_or_default();
    let cnpj = |v: Option<String>| {
        v.map(|c| xlport_core::export::mask_cnpj(&c).to_string())
            .unwrap_or_default()
    };
    rows.into_iter()
        .map(|r| {
            vec![
                xlport_core::export::mask_cpf(&r.cpf).to_string(),
                b(r.private),
                b(r.incompleto),
                os(r.data),
                os(r.ticket_medio),
                os(r.ticket_ultima),
                cnpj(r.loja_mais_frequente),
                cnpj(r.loja_ultima_compra),
                b(r.cpf_valido),
                ob(r.loja_mais_frequente_valida),
                ob(r.loja_ultima_compra_valida),
            ]
        })
        .collect()
}

/// A cell as text for comparison: dates as ISO, numbers with two decimals.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Bool(b) => b.to_string(),
        Data::Float(f) => format!("{f:.2}"),
        Data::Int(i) => format!("{i}.00"),
        Data::DateTime(d) => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            format!("{y:04}-{m:02}-{day:02}")
        }
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn xlsx_export_matches_the_table_cell_for_cell() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_user_purchase(&deps.jobs.pool, 3_000, 42)
        .await
        .unwrap();
    let job = new_export_job(&deps, "xlsx", Value::Null).await;

    let response = export_worker::handle_batch(&deps, message(job)).await;
    assert!(response.batch_item_failures.is_empty());
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.counts["rows"], 3_000);
    assert_eq!(done.counts["sheets"], 1);
    let key = done.result_key.clone().unwrap();
    assert_eq!(key, format!("exports/{job}/test-export.xlsx"));

    let bytes = download(&deps, &key).await;
    assert_eq!(done.counts["bytes"], bytes.len());
    let mut book = Xlsx::new(Cursor::new(bytes.clone())).unwrap();
    let names = book.sheet_names();
    assert_eq!(names, ["user_purchase"]);
    let range = book.worksheet_range("user_purchase").unwrap();
    let mut rows = range.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(cell_text).collect();
    assert_eq!(header, xlport_tests::USER_PURCHASE_EXPORT_HEADERS);
    let got: Vec<Vec<String>> = rows
        .map(|r| {
            let mut v: Vec<String> = r.iter().map(cell_text).collect();
            v.resize(11, String::new());
            v
        })
        .collect();
    let want = expected_rows(&deps, "").await;
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "row {}", i + 2);
    }
    // Dates are real date cells and tickets real numbers, not text.
    let data_row = range.rows().nth(1).unwrap();
    let first_with_date = range
        .rows()
        .skip(1)
        .find(|r| !matches!(r[3], Data::Empty))
        .unwrap();
    assert!(
        matches!(first_with_date[3], Data::DateTime(_)),
        "{:?}",
        first_with_date[3]
    );
    assert!(
        matches!(first_with_date[4], Data::Float(_)),
        "{:?}",
        first_with_date[4]
    );
    assert!(matches!(data_row[0], Data::String(_)));

    // Another reader, as Python users open exports: the same cells, typed
    // (bools, dates, numbers), with the header frozen and the number formats.
    let opened = openpyxl_rows(&bytes);
    assert_eq!(opened["sheets"], json!(["user_purchase"]));
    assert_eq!(opened["freeze_panes"], "A2");
    assert_eq!(
        opened["formats"],
        json!([
            "@",
            "General",
            "General",
            "yyyy-mm-dd",
            "#,##0.00",
            "#,##0.00",
            "@",
            "@",
            "General",
            "General",
            "General"
        ])
    );
    let opened_rows: Vec<Vec<String>> = serde_json::from_value(opened["rows"].clone()).unwrap();
    assert_eq!(opened_rows[0], header);
    assert_eq!(opened_rows.len() - 1, want.len());
    for (i, (g, w)) in opened_rows[1..].iter().zip(&want).enumerate() {
        assert_eq!(g, w, "openpyxl, row {}", i + 2);
    }

    // A duplicate message for the finished job is dropped, not re-exported.
    let again = export_worker::handle_batch(&deps, message(job)).await;
    assert!(again.batch_item_failures.is_empty());
    let after = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(after.attempts, 1);
    assert_eq!(after.finished_at, done.finished_at);
}

/// Issue #20: after a failed COPY the pool's connection is never reused out
/// of step, so the next export, on the same single connection, succeeds.
#[tokio::test]
async fn an_export_right_after_a_failed_copy_succeeds() {
    let (deps, _db) = deps_with_one_connection().await;
    seed_user_purchase(&deps.jobs.pool, 700, 20).await.unwrap();
    fail_a_copy(&deps.jobs.pool).await;
    let job = new_export_job(&deps, "csv", Value::Null).await;
    let response = export_worker::handle_batch(&deps, message(job)).await;
    assert!(response.batch_item_failures.is_empty());
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.counts["rows"], 700);
    let csv = download(&deps, &done.result_key.unwrap()).await;
    assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 701);
}

/// Issue #19: an attempt that fails for a transient reason hands the job
/// back with a backoff of seconds, and the message comes back then, not
/// after the queue's visibility timeout (here 300 s).
#[tokio::test]
async fn a_transient_failure_is_retried_in_seconds_not_after_the_visibility_timeout() {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let (mut deps, _db) = deps_with_fresh_db().await;
    seed_user_purchase(&deps.jobs.pool, 50, 3).await.unwrap();
    // A queue of its own, with a long visibility timeout.
    let (name, queue_url) = xlport_tests::with_private_queue(&mut deps, true, 300).await;
    let job = new_export_job(&deps, "csv", Value::Null).await;
    deps.queue
        .client
        .send_message()
        .queue_url(&queue_url)
        .message_body(json!({"job_id": job}).to_string())
        .send()
        .await
        .unwrap();
    let receive = || async {
        let started = std::time::Instant::now();
        loop {
            let got = deps
                .queue
                .client
                .receive_message()
                .queue_url(&queue_url)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            if let Some(m) = got.messages.unwrap_or_default().into_iter().next() {
                return (m, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the message did not come back"
            );
        }
    };
    let event = |m: &aws_sdk_sqs::types::Message| xlport_tests::event_of(m, &name);

    // The table is away for the first attempt: a database error.
    sqlx::query("alter table user_purchase rename to user_purchase_away")
        .execute(&deps.jobs.pool)
        .await
        .unwrap();
    let (first, _) = receive().await;
    let response = export_worker::handle_batch(&deps, event(&first)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    let failed = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Queued);
    assert_eq!(failed.attempts, 1);
    let last_error = failed.last_error.clone().unwrap();
    assert_eq!(
        last_error, "a database error; it will be retried",
        "no internals"
    );
    let due = failed.next_attempt_at.unwrap() - chrono::Utc::now();
    assert!(due <= chrono::Duration::seconds(5), "{due}");
    sqlx::query("alter table user_purchase_away rename to user_purchase")
        .execute(&deps.jobs.pool)
        .await
        .unwrap();

    let (again, waited) = receive().await;
    eprintln!("the message came back after {waited:.1?} (visibility timeout 300 s)");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    let response = export_worker::handle_batch(&deps, event(&again)).await;
    assert!(response.batch_item_failures.is_empty());
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempts, 2);
    assert!(done.next_attempt_at.is_none());
    deps.queue
        .client
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .ok();
}

/// Issue #15: a filter Postgres cannot run (here a year 0 that reached the
/// worker without the API's check) fails the job at once with a reason,
/// instead of retrying, and the pool stays in step (issue #20).
#[tokio::test]
async fn an_export_whose_query_postgres_refuses_fails_at_once() {
    let (deps, _db) = deps_with_one_connection().await;
    seed_user_purchase(&deps.jobs.pool, 20, 4).await.unwrap();
    let job = new_export_job(&deps, "csv", Value::Null).await;
    // `date '0000-01-01'` fails inside Postgres at the COPY's start.
    sqlx::query("update jobs set options = $2 where id = $1")
        .bind(job)
        .bind(json!({"filter": {"data_ultima_compra": {"from": "0000-01-01"}}}))
        .execute(&deps.jobs.pool)
        .await
        .unwrap();
    export_worker::handle_batch(&deps, message(job)).await;
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Failed);
    assert_eq!(done.attempts, 1);
    let error = done.error.unwrap();
    assert!(
        error.contains("out of range") || error.contains("outside the years"),
        "{error}"
    );
    // The next export on the same single connection succeeds.
    let next = new_export_job(&deps, "csv", Value::Null).await;
    export_worker::handle_batch(&deps, message(next)).await;
    let next = deps.jobs.job(next).await.unwrap().unwrap();
    assert_eq!(next.state, JobState::Succeeded, "{:?}", next.error);
}

/// Issue #21: every CSV dialect round-trips: export, import back (the table
/// emptied first), the table is as it was.
#[tokio::test]
async fn every_csv_dialect_round_trips() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_user_purchase(&deps.jobs.pool, 400, 21).await.unwrap();
    let before = snapshot(&deps, "user_purchase", "cpf").await;
    for dialect in xlport_core::export::CSV_DIALECTS {
        let job = new_export_job(&deps, "csv", Value::Null).await;
        sqlx::query("update jobs set options = options || $2 where id = $1")
            .bind(job)
            .bind(json!({"csv": {"dialect": dialect.name}}))
            .execute(&deps.jobs.pool)
            .await
            .unwrap();
        let response = export_worker::handle_batch(&deps, message(job)).await;
        assert!(response.batch_item_failures.is_empty());
        let done = deps.jobs.job(job).await.unwrap().unwrap();
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
        let csv = download(&deps, done.result_key.as_deref().unwrap()).await;
        sqlx::query("truncate user_purchase")
            .execute(&deps.jobs.pool)
            .await
            .unwrap();
        let back = import_bytes(
            &deps,
            &csv,
            "back.csv",
            json!({"conflict_policy": "upsert"}),
        )
        .await;
        assert_eq!(
            back.state,
            JobState::Succeeded,
            "{}: {:?}",
            dialect.name,
            back.error
        );
        assert_eq!(
            back.counts["rejected"], 0,
            "{}: {}",
            dialect.name, back.counts
        );
        assert_eq!(
            snapshot(&deps, "user_purchase", "cpf").await,
            before,
            "{}: the table changed",
            dialect.name
        );
    }
}

/// Issue #21: LibreOffice in Brazilian Portuguese reads an `excel-br` export
/// with the tickets as numbers and the dates as dates.
#[tokio::test]
async fn libreoffice_in_pt_br_reads_an_excel_br_export_with_typed_columns() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_user_purchase(&deps.jobs.pool, 60, 22).await.unwrap();
    let job = new_export_job(&deps, "csv", Value::Null).await;
    sqlx::query("update jobs set options = options || $2 where id = $1")
        .bind(job)
        .bind(json!({"csv": {"dialect": "excel-br"}}))
        .execute(&deps.jobs.pool)
        .await
        .unwrap();
    export_worker::handle_batch(&deps, message(job)).await;
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    let csv = download(&deps, done.result_key.as_deref().unwrap()).await;
    // `;`, `"`, UTF-8 (76), from line 1, language pt-BR (1046), detect
    // special numbers (dates): what a Brazilian Calc does by default.
    let xlsx = xlport_tests::libreoffice_convert(
        &csv,
        "export.csv",
        Some("CSV:59,34,76,1,,1046,false,true"),
        "xlsx",
        Duration::from_secs(120),
    );
    let sheets = xlport_tests::openpyxl_typed(&xlsx);
    let rows = sheets["sheets"][0][1].as_array().unwrap();
    let header: Vec<&str> = rows[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["s"].as_str().unwrap_or_default())
        .collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (date, ticket) = (at("DATA DA ÚLTIMA COMPRA"), at("TICKET MÉDIO"));
    let want: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "select to_char(data_ultima_compra, 'YYYY-MM-DD'), ticket_medio::text from user_purchase order by cpf",
    )
    .fetch_all(&deps.jobs.pool)
    .await
    .unwrap();
    let (mut dates, mut numbers) = (0, 0);
    for (row, (want_date, want_ticket)) in rows[1..].iter().zip(&want) {
        let cell = &row[date];
        if let Some(d) = want_date {
            let serial = cell["serial"]
                .as_f64()
                .unwrap_or_else(|| panic!("not a date: {cell}"));
            let day = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap()
                + chrono::Duration::days(serial as i64);
            assert_eq!(day.format("%Y-%m-%d").to_string(), *d);
            dates += 1;
        }
        let cell = &row[ticket];
        if let Some(t) = want_ticket {
            let n = cell["n"]
                .as_f64()
                .unwrap_or_else(|| panic!("not a number: {cell}"));
            assert!((n - t.parse::<f64>().unwrap()).abs() < 1e-9, "{n} != {t}");
            numbers += 1;
        }
    }
    eprintln!("LibreOffice pt-BR read {dates} dates as dates and {numbers} tickets as numbers");
    assert!(dates > 10 && numbers > 10);
}

#[tokio::test]
async fn csv_export_with_a_filter() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_user_purchase(&deps.jobs.pool, 2_000, 7).await.unwrap();
    let filter = json!({"private": false, "cpf_valido": true, "data_ultima_compra": {"from": "2015-01-01", "to": "2016-12-31"}});
    let job = new_export_job(&deps, "csv", filter).await;
    export_worker::handle_batch(&deps, message(job)).await;
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);

    let text =
        String::from_utf8(download(&deps, done.result_key.as_deref().unwrap()).await).unwrap();
    let text = text.strip_prefix('\u{feff}').expect("UTF-8 BOM for Excel");
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("CPF,PRIVATE,INCOMPLETO,"));
    let got: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let want: Vec<Vec<String>> = expected_rows(
        &deps,
        "where not private and cpf_valido and data_ultima_compra between '2015-01-01' and '2016-12-31'",
    )
    .await
    .into_iter()
    .map(|r| {
        r.into_iter()
            .map(|c| match c.as_str() {
                "true" => "1".to_string(),
                "false" => "0".to_string(),
                _ => c,
            })
            .collect()
    })
    .collect();
    assert!(
        want.len() > 50,
        "the filter should keep a fair share: {}",
        want.len()
    );
    assert_eq!(got, want);
    assert_eq!(done.counts["rows"], want.len());
}

/// A worker that died mid-export (lease lapsed, multipart upload left open):
/// the redelivered message aborts the dead upload and writes one whole file.
#[tokio::test]
async fn a_crashed_export_is_taken_over_and_completed() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_user_purchase(&deps.jobs.pool, 500, 3).await.unwrap();
    let job = new_export_job(&deps, "xlsx", Value::Null).await;
    // The dead worker: claimed with a lease that has already run out, and an
    // upload it never finished.
    let claim = deps
        .jobs
        .claim_job(job, "dead-worker", Duration::from_secs(0))
        .await
        .unwrap();
    assert!(matches!(claim, xlport_core::job::Claim::Claimed(_)));
    let key = format!("exports/{job}/test-export.xlsx");
    let dead = deps
        .objects
        .create_multipart_upload(&key, "application/octet-stream", None)
        .await
        .unwrap();
    deps.jobs
        .set_upload(job, "dead-worker", &key, &dead)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let response = export_worker::handle_batch(&deps, message(job)).await;
    assert!(response.batch_item_failures.is_empty());
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempts, 2);
    assert_eq!(done.counts["rows"], 500);
    let parts = deps.objects.list_parts(&key, &dead).await;
    assert!(
        matches!(parts, Err(xlport_core::ports::StoreError::NotFound(_))),
        "the dead attempt's upload was aborted: {parts:?}"
    );
    let bytes = download(&deps, &key).await;
    let mut book = Xlsx::new(Cursor::new(bytes)).unwrap();
    let range = book.worksheet_range("user_purchase").unwrap();
    assert_eq!(range.height(), 501);
}

/// While a live worker holds the job, a duplicate message is sent back to the queue.
#[tokio::test]
async fn a_duplicate_message_waits_for_the_live_worker() {
    let (deps, _db) = deps_with_fresh_db().await;
    let job = new_export_job(&deps, "csv", Value::Null).await;
    deps.jobs
        .claim_job(job, "live-worker", Duration::from_secs(600))
        .await
        .unwrap();
    let response = export_worker::handle_batch(&deps, message(job)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    let job = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.attempts, 1);
}

/// Through the API, the queue, the mapping and the function under cargo lambda
/// watch; the presigned link downloads with curl as an attachment.
#[tokio::test]
async fn export_through_the_api_downloads_with_curl() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    // Rows of a year no other test uses, so the filter sees only these.
    let mut inserted = Vec::new();
    for i in 0..40u32 {
        let cpf = format!(
            "{:011}",
            90_000_000_000u64 + u64::from(random_u32() % 1_000_000) * 100 + u64::from(i)
        );
        sqlx::query(
            "insert into user_purchase (cpf, private, incompleto, data_ultima_compra, ticket_medio, cpf_valido) \
             values ($1, false, true, make_date(1999, 1 + $2 % 12, 1 + $2 % 28), 10.5, false) on conflict do nothing",
        )
        .bind(&cpf)
        .bind(i as i32)
        .execute(&stack.deps.jobs.pool)
        .await
        .unwrap();
        inserted.push(cpf);
    }
    let (status, job) = stack
        .call(
            Method::POST,
            "/exports",
            Some(&key),
            Some(json!({"dataset": "user_purchase", "format": "xlsx",
                        "filter": {"data_ultima_compra": {"from": "1999-01-01", "to": "1999-12-31"}}})),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "queued");
    let id = job["id"].as_str().unwrap();
    let job = stack
        .wait_finished(&key, id, Duration::from_secs(120))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let expected: i64 = sqlx::query_scalar(
        "select count(*) from user_purchase where data_ultima_compra between '1999-01-01' and '1999-12-31'",
    )
    .fetch_one(&stack.deps.jobs.pool)
    .await
    .unwrap();
    assert_eq!(job["counts"]["rows"], expected);
    let url = job["download_url"].as_str().expect("download_url");

    let dir = std::env::temp_dir().join(format!("xlport-dl-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "-O", "-J", "-D", "-", url])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        headers.contains("content-disposition: attachment; filename=\"user_purchase-"),
        "{headers}"
    );
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().ends_with(".xlsx"));
    let mut book: Xlsx<_> = calamine::open_workbook(&files[0]).unwrap();
    let range = book.worksheet_range("user_purchase").unwrap();
    assert_eq!(range.height() as i64, expected + 1);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn bad_export_requests_get_a_clear_400() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let cases = [
        (
            json!({"dataset": "user_purchase", "format": "pdf"}),
            "unknown format `pdf`",
        ),
        (
            json!({"dataset": "user_purchase", "filter": {"ticket_medio": 1}}),
            "unknown filter `ticket_medio`",
        ),
        (
            json!({"dataset": "user_purchase", "filter": {"private": "yes"}}),
            "true or false",
        ),
        (
            json!({"dataset": "user_purchase", "filter": {"data_ultima_compra": {"from": "2020-13-01"}}}),
            "not a date",
        ),
        (
            json!({"dataset": "user_purchase", "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            json!({"dataset": "user_purchase", "format": "csv", "csv": {"dialect": "excel-fr"}}),
            "unknown CSV dialect `excel-fr`: use rfc4180 or excel-br",
        ),
        (
            json!({"dataset": "user_purchase", "format": "xlsx", "csv": {"dialect": "excel-br"}}),
            "`csv` options are for",
        ),
    ];
    for (body, needle) in cases {
        let (status, resp) = stack
            .call(Method::POST, "/exports", Some(&key), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body} -> {resp}");
        assert!(
            resp["error"].as_str().unwrap().contains(needle),
            "{body} -> {resp}"
        );
    }
    // A dataset that does not exist is a 404, as one the key may not use.
    let (status, resp) = stack
        .call(
            Method::POST,
            "/exports",
            Some(&key),
            Some(json!({"dataset": "orders"})),
        )
        .await;
    assert_eq!(status, 404, "{resp}");
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("unknown dataset `orders`")
    );
}

/// Over Excel's 1,048,576 rows: a second sheet, every row once, read back by
/// calamine, openpyxl and LibreOffice. Slow (about 15 minutes, most of it
/// LibreOffice's), so left out of a plain `cargo test`;
/// `scripts/test` runs it (`cargo nextest run --run-ignored all`).
#[tokio::test]
#[ignore]
async fn more_rows_than_a_sheet_holds_spill_into_a_second_sheet() {
    let (deps, _db) = deps_with_fresh_db().await;
    // Two sheets: 1,048,575 + 51,425 rows (the case of issue #12).
    let total = 1_100_000;
    seed_user_purchase(&deps.jobs.pool, total, 11)
        .await
        .unwrap();
    let job = new_export_job(&deps, "xlsx", Value::Null).await;
    export_worker::handle_batch(&deps, message(job)).await;
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.counts["sheets"], 2);
    let bytes = download(&deps, done.result_key.as_deref().unwrap()).await;
    check_conventional_zip(&bytes).unwrap_or_else(|e| panic!("not a conventional zip: {e}"));
    let mut book = Xlsx::new(Cursor::new(bytes.clone())).unwrap();
    assert_eq!(book.sheet_names(), ["user_purchase", "user_purchase (2)"]);
    let mut seen = std::collections::HashSet::new();
    for name in book.sheet_names() {
        let range = book.worksheet_range(&name).unwrap();
        for row in range.rows().skip(1) {
            assert!(seen.insert(cell_text(&row[0])), "duplicate row");
        }
    }
    assert_eq!(seen.len() as u64, total);
    drop(book);

    // openpyxl, and LibreOffice (re-saved, then read with openpyxl): both
    // sheets, every cell. LibreOffice needs about 11 minutes of one core and
    // 3.5 GB for these 11.5 million cells; openpyxl 1.5 minutes a read.
    let want = expected_rows(&deps, "").await;
    let names = ["user_purchase", "user_purchase (2)"];
    let split = usize::try_from(xlport_core::export::MAX_DATA_ROWS_PER_SHEET).unwrap();
    let expected = [sheet_as_read(&want[..split]), sheet_as_read(&want[split..])];
    drop(want);
    let check = |reader: &str, sheets: Vec<(String, Vec<Vec<String>>)>| {
        assert_eq!(
            sheets.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            names,
            "{reader}"
        );
        for ((name, rows), want) in sheets.iter().zip(&expected) {
            assert_eq!(rows.len(), want.len(), "{reader}, sheet {name}");
            for (i, (g, w)) in rows.iter().zip(want).enumerate() {
                assert_eq!(g, w, "{reader}, sheet {name}, row {}", i + 1);
            }
        }
    };
    check("openpyxl", openpyxl_sheets(&bytes));
    let resaved = libreoffice_resave(&bytes, Duration::from_secs(1800));
    check("LibreOffice", openpyxl_sheets(&resaved));

    // Issue #12: the two-sheet export, sent back, leaves the table unchanged.
    let before = table_checksum(&deps, "user_purchase", "cpf").await;
    let back = import_bytes(
        &deps,
        &bytes,
        "two-sheets.xlsx",
        json!({"conflict_policy": "upsert"}),
    )
    .await;
    assert_eq!(back.state, JobState::Succeeded, "{:?}", back.error);
    assert_eq!(back.counts["rows_read"], total);
    assert_eq!(back.counts["updated"], total);
    assert_eq!(back.counts["inserted"], 0);
    assert_eq!(back.counts["rejected"], 0);
    assert_eq!(table_checksum(&deps, "user_purchase", "cpf").await, before);
}

/// The header row and `rows` as `openpyxl_sheets` shows a sheet: cells as
/// text, trailing empty cells left out.
fn sheet_as_read(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    let header = xlport_tests::USER_PURCHASE_EXPORT_HEADERS;
    std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().cloned())
        .map(|mut r: Vec<String>| {
            while r.last().is_some_and(String::is_empty) {
                r.pop();
            }
            r
        })
        .collect()
}

/// Exports `dataset` as xlsx through the worker in-process; the file's bytes.
async fn export_xlsx(deps: &Deps, dataset: &str) -> Vec<u8> {
    let job = new_export_job_of(deps, dataset, "xlsx", Value::Null).await;
    let response = export_worker::handle_batch(deps, message(job)).await;
    assert!(response.batch_item_failures.is_empty());
    let done = deps.jobs.job(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    download(deps, done.result_key.as_deref().unwrap()).await
}

/// LibreOffice's copy goes back through the import worker into the emptied
/// table, which must come out as it was.
async fn resave_imports_back(deps: &Deps, dataset: &str, table: &str, key: &str, resaved: &[u8]) {
    let before = snapshot(deps, table, key).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("truncate {table}")))
        .execute(&deps.jobs.pool)
        .await
        .unwrap();
    let job = import_bytes_into(
        deps,
        dataset,
        resaved,
        "resaved-by-libreoffice.xlsx",
        json!({"conflict_policy": "upsert", "dry_run": false}),
    )
    .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(job.counts["inserted"], before.len(), "{}", job.counts);
    assert_eq!(job.counts["rejected"], 0, "{}", job.counts);
    let after = snapshot(deps, table, key).await;
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a, b, "a row changed on the way through LibreOffice");
    }
}

/// LibreOffice 7.4 could not load exports written as Zip64 (issue #17): a
/// small export is a conventional zip, opens in openpyxl and LibreOffice
/// with every cell as the table has it, and LibreOffice's re-saved copy
/// imports back into the table unchanged.
#[tokio::test]
async fn libreoffice_and_openpyxl_open_a_small_export_that_imports_back() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_user_purchase(&deps.jobs.pool, 300, 5).await.unwrap();
    let bytes = export_xlsx(&deps, "user_purchase").await;
    check_conventional_zip(&bytes).unwrap_or_else(|e| panic!("not a conventional zip: {e}"));
    let want = vec![(
        "user_purchase".to_string(),
        sheet_as_read(&expected_rows(&deps, "").await),
    )];
    assert_eq!(openpyxl_sheets(&bytes), want, "openpyxl");
    let resaved = libreoffice_resave(&bytes, Duration::from_secs(180));
    assert_eq!(openpyxl_sheets(&resaved), want, "LibreOffice");
    resave_imports_back(&deps, "user_purchase", "user_purchase", "cpf", &resaved).await;
}

/// Columns of the wide dataset: a key and 39 text columns.
const WIDE_COLUMNS: usize = 40;

/// A dataset of text columns, and its table in the test's own database.
async fn wide_dataset(deps: &mut Deps) {
    let mut toml = format!(
        "{}\n[[dataset]]\nname = \"wide_rows\"\ntable = \"wide_rows\"\nkey = \"id\"\nsheet_name = \"wide rows\"\n\
         [[dataset.column]]\nname = \"id\"\nheader = \"ID\"\ntype = \"text\"\nnullable = false\n",
        xlport_core::dataset::BUILTIN_DATASETS
    );
    let mut ddl = String::from("create table wide_rows (id text primary key");
    for c in 1..WIDE_COLUMNS {
        toml.push_str(&format!(
            "[[dataset.column]]\nname = \"c{c:02}\"\nheader = \"TEXT {c:02}\"\ntype = \"text\"\nnullable = true\n"
        ));
        ddl.push_str(&format!(", c{c:02} text"));
    }
    // The bookkeeping every imported table carries (as user_purchase does).
    ddl.push_str(", last_job_id uuid, updated_at timestamptz not null default now())");
    deps.datasets = std::sync::Arc::new(xlport_core::Datasets::parse(&toml, "wide test").unwrap());
    sqlx::query(sqlx::AssertSqlSafe(ddl))
        .execute(&deps.jobs.pool)
        .await
        .unwrap();
}

/// The text of row `r`, column `c` of the wide table: long, escaped in XML,
/// formula-like, accented, multi-line; `None` (NULL) now and then.
fn wide_cell(r: usize, c: usize) -> Option<String> {
    let formulas = ["=1+1", "+A1", "@SUM(1)", "-2+3"];
    match (r + c) % 9 {
        0 => None,
        1 => Some(formulas[(r + c) % formulas.len()].to_string()),
        2 => Some(format!("linha {r}\nsegunda linha\tcom tab")),
        _ if r == 0 && c == 3 => Some("ção & <b> \"aspas\" ".repeat(1_500).trim().to_string()),
        _ => Some(
            format!("r{r}c{c} ação & <tag> \"q\" 'a' =SUM(A1) ")
                .repeat(25)
                .trim()
                .to_string(),
        ),
    }
}

/// A wide export (40 text columns of up to 30,000 characters, escaped and
/// formula-like text) opens in openpyxl and LibreOffice cell for cell, and
/// LibreOffice's copy imports back into the table unchanged.
#[tokio::test]
async fn libreoffice_and_openpyxl_open_a_wide_export_that_imports_back() {
    let (mut deps, _db) = deps_with_fresh_db().await;
    wide_dataset(&mut deps).await;
    let rows = 120;
    let mut want = vec![
        std::iter::once("ID".to_string())
            .chain((1..WIDE_COLUMNS).map(|c| format!("TEXT {c:02}")))
            .collect::<Vec<_>>(),
    ];
    let columns: Vec<String> = (1..WIDE_COLUMNS).map(|c| format!("c{c:02}")).collect();
    let placeholders: Vec<String> = (2..=WIDE_COLUMNS).map(|i| format!("${i}")).collect();
    let insert = format!(
        "insert into wide_rows (id, {}) values ($1, {})",
        columns.join(", "),
        placeholders.join(", ")
    );
    for r in 0..rows {
        let id = format!("row {r:04}");
        let cells: Vec<Option<String>> = (1..WIDE_COLUMNS).map(|c| wide_cell(r, c)).collect();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone())).bind(&id);
        for cell in &cells {
            q = q.bind(cell.clone());
        }
        q.execute(&deps.jobs.pool).await.unwrap();
        let mut row: Vec<String> = std::iter::once(id)
            .chain(cells.into_iter().map(Option::unwrap_or_default))
            .collect();
        while row.last().is_some_and(String::is_empty) {
            row.pop();
        }
        want.push(row);
    }
    let bytes = export_xlsx(&deps, "wide_rows").await;
    check_conventional_zip(&bytes).unwrap_or_else(|e| panic!("not a conventional zip: {e}"));
    let want = vec![("wide rows".to_string(), want)];
    assert_eq!(openpyxl_sheets(&bytes), want, "openpyxl");
    let resaved = libreoffice_resave(&bytes, Duration::from_secs(180));
    assert_eq!(openpyxl_sheets(&resaved), want, "LibreOffice");
    resave_imports_back(&deps, "wide_rows", "wide_rows", "id", &resaved).await;
}
