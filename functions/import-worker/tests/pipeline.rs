//! The import pipeline in-process, on the in-memory ports: an S3 event in,
//! the file spooled from the bucket, checked, parsed into parts, merged per
//! conflict policy, the error report written, the job carried through its
//! lifecycle. No Postgres, LocalStack or function host runs; each test takes
//! milliseconds. The end-to-end tests in `tests/` run the same code on the
//! real stack.

use std::io::Cursor;
use std::time::Duration;

use calamine::{Reader, Xlsx};
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_adapters::Deps;
use xlport_adapters::testing::{self, import_job, job, object_created};
use xlport_core::JobState;
use xlport_core::cells::cpf_check_digits;
use xlport_core::job::keys;
use xlport_core::ports::memory::InMemory;
use xlport_core::ports::{ImportTarget, ObjectStore};

const HEADER: &str = "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA\n";

/// The `i`th valid CPF (11 digits, check digits right).
fn cpf(i: u32) -> String {
    let base = format!("{:09}", 100_000_000 + i * 7);
    let mut digits = [0u8; 9];
    digits.copy_from_slice(base.as_bytes());
    let dv = cpf_check_digits(&digits);
    format!("{base}{}", String::from_utf8_lossy(&dv))
}

/// A CSV of `rows` valid rows, the `i`th with ticket `i`.
fn csv(rows: u32) -> String {
    let mut out = HEADER.to_string();
    for i in 0..rows {
        out.push_str(&format!(
            "{};0;1;2020-01-{:02};{i},50;;;\n",
            cpf(i),
            i % 28 + 1
        ));
    }
    out
}

fn upsert() -> Value {
    json!({"conflict_policy": "upsert"})
}

/// Uploads `bytes` as the file of a new import and delivers its S3 event.
/// Returns the job and how many records the batch failed.
async fn import(
    deps: &Deps<InMemory>,
    bytes: &[u8],
    filename: &str,
    options: Value,
) -> (Uuid, usize) {
    let (id, key) = import_job(deps, "user_purchase", filename, bytes.len(), options).await;
    let etag = deps.objects.put(&key, bytes);
    let failed = deliver(deps, &key, bytes.len(), &etag).await;
    (id, failed)
}

async fn deliver(deps: &Deps<InMemory>, key: &str, size: usize, etag: &str) -> usize {
    import_worker::handle_batch(deps, object_created(deps, key, size, etag))
        .await
        .batch_item_failures
        .len()
}

fn table(deps: &Deps<InMemory>) -> Vec<String> {
    let dataset = deps.datasets.get("user_purchase").expect("built in");
    deps.tables.rows(dataset)
}

#[tokio::test]
async fn a_csv_lands_in_parts_with_its_counts() {
    let deps = testing::deps(&[("XLPORT_IMPORT_PART_ROWS", "2")]);
    let (id, failed) = import(&deps, csv(5).as_bytes(), "a.csv", upsert()).await;
    assert_eq!(failed, 0);
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.counts["rows_read"], 5);
    assert_eq!(done.counts["inserted"], 5);
    assert_eq!(done.counts["rejected"], 0);
    assert_eq!(done.counts["format"], "csv (delimiter ';')");
    assert_eq!(done.parts_done, 3);
    assert_eq!(done.rows_done, 5);
    let rows = table(&deps);
    assert_eq!(rows.len(), 5);
    // Stored as COPY text: the CPF's digits, booleans, ISO date, decimal.
    assert!(
        rows.iter()
            .any(|r| r.starts_with(&format!("{}\tf\tt\t2020-01-01\t0.50", cpf(0)))),
        "{rows:?}"
    );
    use xlport_core::ports::JobStore;
    let parts = deps.jobs.job_parts(id).await.unwrap();
    assert_eq!(
        parts.iter().map(|p| p.rows_read).collect::<Vec<_>>(),
        [2, 2, 1]
    );
}

#[tokio::test]
async fn each_policy_decides_duplicates_and_reject_reports_them() {
    let file = format!(
        "{HEADER}{a};0;0;;1;;;\n{b};0;0;;2;;;\n{a};0;0;;3;;;\n",
        a = cpf(1),
        b = cpf(2)
    );
    for (policy, inserted, updated, skipped, rejected, ticket) in [
        ("upsert", 2, 1, 0, 0, "3.00"),
        ("skip", 2, 0, 1, 0, "1.00"),
        ("reject", 2, 0, 0, 1, "1.00"),
    ] {
        let deps = testing::deps(&[]);
        let (id, _) = import(
            &deps,
            file.as_bytes(),
            "d.csv",
            json!({ "conflict_policy": policy }),
        )
        .await;
        let done = job(&deps, id).await;
        assert_eq!(
            done.state,
            JobState::Succeeded,
            "{policy}: {:?}",
            done.error
        );
        let c = &done.counts;
        assert_eq!(
            (&c["inserted"], &c["updated"], &c["skipped"], &c["rejected"]),
            (
                &json!(inserted),
                &json!(updated),
                &json!(skipped),
                &json!(rejected)
            ),
            "{policy}: {c}"
        );
        let first = table(&deps)
            .into_iter()
            .find(|r| r.starts_with(&cpf(1)))
            .unwrap();
        assert_eq!(first.split('\t').nth(4), Some(ticket), "{policy}");
        if policy == "reject" {
            assert_eq!(c["rejected_by_reason"]["duplicate_key"], 1);
            let page = deps.tables.rejections_page(id, -1, 10).await.unwrap();
            assert_eq!(page.len(), 1);
            assert_eq!(page[0].row_number, 4);
            assert!(
                page[0]
                    .message
                    .contains("already in the table or earlier in the file")
            );
        }
    }
}

#[tokio::test]
async fn rejected_rows_are_counted_and_reported_in_file_order() {
    let deps = testing::deps(&[("XLPORT_IMPORT_PART_ROWS", "2")]);
    let file = format!(
        "{HEADER}{};0;0;;1;;;\n123;0;0;;2;;;\n{};0;0;2020-13-45;3;;;\n{};0;0;;4;;;\n",
        cpf(1),
        cpf(3),
        cpf(4)
    );
    let (id, _) = import(&deps, file.as_bytes(), "r.csv", upsert()).await;
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.counts["rows_read"], 4);
    assert_eq!(done.counts["inserted"], 2);
    assert_eq!(done.counts["rejected"], 2);
    let key = done.counts["error_report_key"].as_str().unwrap();
    assert_eq!(key, keys::error_report(id));
    let report = deps.objects.get(key).expect("the report is in the bucket");
    let mut book = Xlsx::new(Cursor::new(report)).unwrap();
    let sheet = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&sheet).unwrap();
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(
        rows.len(),
        3,
        "a header and the two rejected rows: {rows:?}"
    );
    // The rows keep the file's own values, in file order.
    assert!(rows[1].iter().any(|c| c == "123"), "{rows:?}");
    assert!(rows[2].iter().any(|c| c == "2020-13-45"), "{rows:?}");
}

#[tokio::test]
async fn a_dry_run_counts_and_reports_but_leaves_the_table_alone() {
    let deps = testing::deps(&[("XLPORT_IMPORT_PART_ROWS", "2")]);
    let (id, _) = import(
        &deps,
        csv(3).as_bytes(),
        "dry.csv",
        json!({"conflict_policy": "upsert", "dry_run": true}),
    )
    .await;
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.counts["inserted"], 3);
    assert_eq!(done.counts["dry_run"], true);
    assert!(table(&deps).is_empty(), "nothing landed");
}

#[tokio::test]
async fn a_failed_part_is_retried_and_the_retry_resumes_after_the_last_committed_part() {
    let deps = testing::deps(&[("XLPORT_IMPORT_PART_ROWS", "2")]);
    deps.tables.fail_part_once(2);
    let file = csv(5);
    let (id, key) = import_job(&deps, "user_purchase", "f.csv", file.len(), upsert()).await;
    let etag = deps.objects.put(&key, file.as_bytes());
    assert_eq!(
        deliver(&deps, &key, file.len(), &etag).await,
        1,
        "the record comes back"
    );
    let waiting = job(&deps, id).await;
    assert_eq!(waiting.state, JobState::Queued);
    assert_eq!(waiting.parts_done, 1, "part 1 committed before the fault");
    assert_eq!(
        waiting.last_error.as_deref(),
        Some("a database error; it will be retried"),
        "the reason names the kind, not the internal text"
    );
    // The record comes back after the lifecycle's backoff, not the
    // queue's visibility timeout.
    let retries = deps.queue.retries();
    assert_eq!(retries.len(), 1);
    assert!(retries[0].1 > Duration::ZERO && retries[0].1 <= Duration::from_secs(60));

    // The redelivery (a retry's backoff is the queue's business, not ours).
    assert_eq!(deliver(&deps, &key, file.len(), &etag).await, 0);
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempts, 2);
    assert_eq!(done.counts["rows_read"], 5, "each row counted once");
    assert_eq!(done.counts["inserted"], 5);
    assert_eq!(table(&deps).len(), 5);
    assert!(
        done.warnings
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("attempt 1 failed")),
        "{}",
        done.warnings
    );
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_records_nothing_more() {
    let deps = testing::deps(&[("XLPORT_IMPORT_PART_ROWS", "2")]);
    deps.tables.take_over_at_part(2, "the-other-worker");
    let (id, failed) = import(&deps, csv(5).as_bytes(), "l.csv", upsert()).await;
    assert_eq!(failed, 1, "the message comes back");
    let taken = job(&deps, id).await;
    assert_eq!(taken.state, JobState::Running, "the other worker's now");
    assert_eq!(taken.parts_done, 1, "nothing after the lease was lost");
    assert_eq!(taken.counts["rows_read"], 2);
    assert_eq!(table(&deps).len(), 2);
}

#[tokio::test]
async fn a_file_that_is_no_csv_fails_the_job_at_once_with_a_reason() {
    let deps = testing::deps(&[]);
    let (id, failed) = import(&deps, b"\x00\x01\x02garbage\xff", "x.csv", upsert()).await;
    assert_eq!(failed, 1, "the message goes on to the dead-letter queue");
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(done.error.as_deref().is_some_and(|e| !e.is_empty()));
    assert_eq!(done.attempts, 1, "no retry for what no retry fixes");
    assert_eq!(
        deps.queue.retries()[0].1,
        Duration::ZERO,
        "visible again at once, so the queue dead-letters it"
    );
    assert!(table(&deps).is_empty());
}

#[tokio::test]
async fn an_upload_of_another_size_than_declared_is_refused_and_deleted() {
    let deps = testing::deps(&[]);
    let file = csv(2);
    let (id, key) = import_job(&deps, "user_purchase", "s.csv", file.len() + 1, upsert()).await;
    let etag = deps.objects.put(&key, file.as_bytes());
    assert_eq!(deliver(&deps, &key, file.len(), &etag).await, 0);
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(
        done.error
            .unwrap()
            .contains("bytes but the import was created for")
    );
    assert!(
        deps.objects.get(&key).is_none(),
        "the refused upload is gone"
    );
}

#[tokio::test]
async fn the_same_event_twice_loads_once() {
    let deps = testing::deps(&[]);
    let file = csv(3);
    let (id, key) = import_job(&deps, "user_purchase", "t.csv", file.len(), upsert()).await;
    let etag = deps.objects.put(&key, file.as_bytes());
    assert_eq!(deliver(&deps, &key, file.len(), &etag).await, 0);
    assert_eq!(deliver(&deps, &key, file.len(), &etag).await, 0);
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.counts["inserted"], 3);
}

#[tokio::test]
async fn a_file_replaced_after_its_event_is_not_read() {
    let deps = testing::deps(&[]);
    let file = csv(2);
    let (id, key) = import_job(&deps, "user_purchase", "v.csv", file.len(), upsert()).await;
    let etag = deps.objects.put(&key, file.as_bytes());
    // A second PUT of the same length lands before the worker reads it.
    let other = file.replace(";0;1;", ";1;1;");
    deps.objects.put(&key, other.as_bytes());
    assert_eq!(deliver(&deps, &key, file.len(), &etag).await, 1);
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Failed);
    assert!(
        done.error
            .unwrap()
            .contains("replaced after it was received")
    );
    assert!(table(&deps).is_empty());
}

#[tokio::test]
async fn when_the_tables_are_down_the_job_waits_for_a_retry() {
    let deps = testing::deps(&[]);
    deps.tables.set_down(true);
    let (id, failed) = import(&deps, csv(2).as_bytes(), "o.csv", upsert()).await;
    assert_eq!(failed, 1);
    let waiting = job(&deps, id).await;
    assert_eq!(waiting.state, JobState::Queued);
    assert!(waiting.next_attempt_at.is_some());
    deps.tables.set_down(false);
    let key = waiting.object_key.clone().unwrap();
    let etag = waiting.etag.clone().unwrap();
    let size = waiting.object_size.unwrap() as usize;
    assert_eq!(deliver(&deps, &key, size, &etag).await, 0);
    assert_eq!(job(&deps, id).await.state, JobState::Succeeded);
    let _ = deps.objects.head(&key).await.unwrap();
}

/// A value Postgres refuses as a data exception (SQLSTATE class 22) fails
/// the same way on every retry: the job fails at once, as an export's does
/// (one rule for both workers, `xlport_core::lifecycle`).
#[tokio::test]
async fn a_data_exception_fails_the_import_at_once_with_its_reason() {
    let deps = testing::deps(&[("XLPORT_IMPORT_PART_ROWS", "2")]);
    deps.tables.fail_part_once_with(
        2,
        xlport_core::ports::TableError::Data("value out of range for type numeric".into()),
    );
    let (id, failed) = import(&deps, csv(5).as_bytes(), "x.csv", upsert()).await;
    assert_eq!(failed, 1, "dead-lettered");
    let done = job(&deps, id).await;
    assert_eq!(done.state, JobState::Failed);
    assert_eq!(done.attempts, 1);
    assert_eq!(
        done.error.as_deref(),
        Some("Postgres refused the file's values: value out of range for type numeric")
    );
    assert_eq!(deps.queue.retries()[0].1, Duration::ZERO);
}
