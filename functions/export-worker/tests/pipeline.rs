//! The export pipeline in-process, on the in-memory ports: the rows read
//! from the table as COPY text, encoded as .xlsx or CSV on a blocking thread,
//! cut into multipart parts and completed; the job carried through its
//! lifecycle, a failed attempt's upload aborted. No Postgres, LocalStack or
//! function host runs; each test takes milliseconds. The end-to-end tests in
//! `tests/` run the same code on the real stack.

use std::io::Cursor;

use calamine::{Reader, Xlsx};
use serde_json::{Value, json};
use xlport_adapters::Deps;
use xlport_adapters::testing::{self, export_job, export_requested, import_job, job};
use xlport_core::JobState;
use xlport_core::job::Claim;
use xlport_core::ports::memory::InMemory;
use xlport_core::ports::{JobStore, ObjectStore, TableError};
use xlport_core::sample::UserPurchaseSample;

/// Puts `rows` sample rows into `user_purchase`; returns them as COPY text
/// lines, in key order.
fn seed(deps: &Deps<InMemory>, rows: u64) -> Vec<String> {
    let dataset = deps.datasets.get("user_purchase").expect("built in");
    let mut sample = UserPurchaseSample::new(7);
    let mut text = String::new();
    for i in 0..rows {
        sample.write_row(i, &mut text);
    }
    deps.tables.insert_copy_text(dataset, &text);
    deps.tables.rows(dataset)
}

async fn export(deps: &Deps<InMemory>, format: &str, options: Value) -> uuid::Uuid {
    let id = export_job(deps, "user_purchase", format, options).await;
    export_worker::handle_batch(deps, export_requested(id)).await;
    id
}

fn file(deps: &Deps<InMemory>, key: &str) -> Vec<u8> {
    deps.objects.get(key).expect("the export is in the bucket")
}

#[tokio::test]
async fn an_xlsx_export_holds_every_row_under_the_header() {
    let deps = testing::deps(&[]);
    seed(&deps, 300);
    let id = export(&deps, "xlsx", json!({})).await;
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.counts["rows"], 300);
    assert_eq!(done.counts["sheets"], 1);
    let key = done.result_key.clone().expect("a result key");
    let bytes = file(&deps, &key);
    assert_eq!(done.counts["bytes"], bytes.len());
    let mut book = Xlsx::new(Cursor::new(bytes)).unwrap();
    let range = book.worksheet_range("user_purchase").unwrap();
    assert_eq!(range.height(), 301);
    assert_eq!(
        range.get((0, 0)).map(|c| c.to_string()).as_deref(),
        Some("CPF")
    );
    assert_eq!(deps.objects.uploads_in_progress(), 0);
}

#[tokio::test]
async fn a_csv_export_keeps_only_the_rows_its_filter_asks_for() {
    let deps = testing::deps(&[]);
    let rows = seed(&deps, 200);
    let private = rows
        .iter()
        .filter(|r| r.split('\t').nth(1) == Some("t"))
        .count();
    assert!(private > 0 && private < 200);
    let id = export(&deps, "csv", json!({"filter": {"private": true}})).await;
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.counts["rows"], private);
    let text = String::from_utf8(file(&deps, &done.result_key.unwrap())).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), private + 1, "a header and the private rows");
}

#[tokio::test]
async fn a_query_that_fails_on_the_data_fails_the_job_and_leaves_no_parts() {
    let deps = testing::deps(&[]);
    seed(&deps, 10);
    deps.tables.fail_copy_out_once(TableError::Data(
        "date/time field value out of range".into(),
    ));
    let id = export_job(&deps, "user_purchase", "xlsx", json!({})).await;
    let response = export_worker::handle_batch(&deps, export_requested(id)).await;
    assert_eq!(response.batch_item_failures.len(), 1, "dead-lettered");
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Failed);
    assert_eq!(done.attempts, 1);
    let error = done.error.unwrap();
    assert!(
        error.contains("out of range") && error.contains("check the filter"),
        "{error}"
    );
    assert_eq!(
        deps.objects.uploads_in_progress(),
        0,
        "its upload was aborted"
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_the_retry_writes_the_whole_file() {
    let deps = testing::deps(&[]);
    seed(&deps, 50);
    deps.tables
        .fail_copy_out_once(TableError::Unavailable("connection reset".into()));
    let id = export_job(&deps, "user_purchase", "csv", json!({})).await;
    let first = export_worker::handle_batch(&deps, export_requested(id)).await;
    assert_eq!(first.batch_item_failures.len(), 1);
    let waiting = job(&deps, id).await;
    assert_eq!(waiting.state, JobState::Queued);
    assert_eq!(
        waiting.last_error.as_deref(),
        Some("a database error; it will be retried")
    );
    assert_eq!(deps.objects.uploads_in_progress(), 0);
    let second = export_worker::handle_batch(&deps, export_requested(id)).await;
    assert!(second.batch_item_failures.is_empty());
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!((done.attempts, &done.counts["rows"]), (2, &json!(50)));
}

#[tokio::test]
async fn a_dead_attempts_upload_is_aborted_by_the_next() {
    let deps = testing::deps(&[]);
    seed(&deps, 20);
    let id = export_job(&deps, "user_purchase", "xlsx", json!({})).await;
    let claim = deps
        .jobs
        .claim_job(id, "dead-worker", std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(matches!(claim, Claim::Claimed(_)));
    let key = format!("exports/{id}/user_purchase.xlsx");
    let dead = deps
        .objects
        .create_multipart_upload(&key, "application/octet-stream", None)
        .await
        .unwrap();
    deps.jobs
        .set_upload(id, "dead-worker", &key, &dead)
        .await
        .unwrap();
    deps.jobs.expire_lease(id);
    let response = export_worker::handle_batch(&deps, export_requested(id)).await;
    assert!(response.batch_item_failures.is_empty());
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempts, 2);
    assert!(
        deps.objects.list_parts(&key, &dead).await.is_err(),
        "aborted"
    );
    assert_eq!(deps.objects.uploads_in_progress(), 0);
}

#[tokio::test]
async fn a_message_that_is_no_export_request_is_dead_lettered() {
    let deps = testing::deps(&[]);
    let event = testing::sqs_event("{\"nope\": 1}", "xlport-exports", 1);
    let response = export_worker::handle_batch(&deps, event).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(deps.queue.retries()[0].1, std::time::Duration::ZERO);
}

/// What an export writes, an import of the same file puts back unchanged
/// (spec "Round trip"): here through both pipelines on the same ports.
#[tokio::test]
async fn an_exported_workbook_imports_back_unchanged() {
    let deps = testing::deps(&[("XLPORT_IMPORT_PART_ROWS", "100")]);
    let before = seed(&deps, 400);
    let id = export(&deps, "xlsx", json!({})).await;
    let exported = job(&deps, id).await;
    assert_eq!(exported.state, JobState::Succeeded, "{:?}", exported.error);
    let bytes = file(&deps, &exported.result_key.unwrap());

    let back = testing::deps(&[("XLPORT_IMPORT_PART_ROWS", "100")]);
    let (import, key) = import_job(
        &back,
        "user_purchase",
        "user_purchase.xlsx",
        bytes.len(),
        json!({"conflict_policy": "upsert"}),
    )
    .await;
    let etag = back.objects.put(&key, &bytes);
    let event = testing::object_created(&back, &key, bytes.len(), &etag);
    let response = import_worker::handle_batch(&back, event).await;
    assert!(response.batch_item_failures.is_empty());
    let imported = job(&back, import).await;
    assert_eq!(imported.state, JobState::Succeeded, "{:?}", imported.error);
    assert_eq!(imported.counts["rejected"], 0, "{}", imported.counts);
    let dataset = back.datasets.get("user_purchase").unwrap();
    assert_eq!(back.tables.rows(dataset), before);
}
