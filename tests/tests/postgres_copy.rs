//! COPY never leaves a connection out of step with Postgres (issue #20), on
//! the real database: after COPYs that fail at their start, mid-stream, or
//! are stopped or cancelled, every later query on the same small pool gets
//! its own answers, and jobs started right after a failed COPY succeed.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;
use xlport_adapters::pgcopy::{CopyConnection, CopyOutEnd};
use xlport_adapters::postgres::PgStore;
use xlport_core::job::{Claim, KeyId, NewJob};
use xlport_core::ports::JobStore;
use xlport_core::{JobKind, JobState};
use xlport_tests::{FreshDb, fresh_database};

/// A pool of `size` connections on the test's own database.
async fn pool_of(db: &FreshDb, size: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&db.url)
        .await
        .expect("pool")
}

/// Every query gets its own answer: `select i` returns i, twenty times.
async fn answers_are_right(pool: &PgPool) {
    for i in 0..20i32 {
        let got: i32 = sqlx::query_scalar("select $1::int")
            .bind(i)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("select {i} after a failed COPY: {e}"));
        assert_eq!(got, i, "a query read another query's answer");
    }
}

/// Year 0 is not a date Postgres can hold: the COPY fails at its start.
const FAILS_AT_START: &str = "copy (select date '0000-01-01') to stdout";
/// Rows stream, then a division by zero ends the COPY mid-way.
const FAILS_MID_STREAM: &str = "copy (select case when g < 20000 then g else g / (g - g) end \
                                from generate_series(1, 40000) g) to stdout";

async fn copy_out_lines(pool: &PgPool, sql: &str) -> Result<(u64, CopyOutEnd), sqlx::Error> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let conn = CopyConnection::acquire(pool).await?;
    let copy = async move { conn.copy_out(sql, 64 * 1024, &tx).await };
    let count = async {
        let mut lines = 0u64;
        while let Some(batch) = rx.recv().await {
            lines += batch.iter().filter(|b| **b == b'\n').count() as u64;
        }
        lines
    };
    let (end, lines) = tokio::join!(copy, count);
    Ok((lines, end?))
}

#[tokio::test]
async fn a_copy_out_that_fails_at_its_start_leaves_the_pool_in_step() {
    let db = fresh_database().await;
    let pool = pool_of(&db, 1).await;
    let e = copy_out_lines(&pool, FAILS_AT_START)
        .await
        .expect_err("year 0 is out of range");
    assert!(e.to_string().contains("out of range"), "{e}");
    answers_are_right(&pool).await;
}

#[tokio::test]
async fn a_copy_out_that_fails_mid_stream_leaves_the_pool_in_step() {
    let db = fresh_database().await;
    let pool = pool_of(&db, 1).await;
    let e = copy_out_lines(&pool, FAILS_MID_STREAM)
        .await
        .expect_err("division by zero");
    assert!(e.to_string().contains("division by zero"), "{e}");
    answers_are_right(&pool).await;
}

#[tokio::test]
async fn a_copy_out_stopped_early_leaves_the_pool_in_step() {
    let db = fresh_database().await;
    let pool = pool_of(&db, 1).await;
    // The reader is gone before the first batch.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    let end = CopyConnection::acquire(&pool)
        .await
        .unwrap()
        .copy_out(
            "copy (select g from generate_series(1, 200000) g) to stdout",
            64 * 1024,
            &tx,
        )
        .await
        .unwrap();
    assert!(matches!(end, CopyOutEnd::Stopped { .. }), "{end:?}");
    answers_are_right(&pool).await;
    // A complete COPY still works on the same pool, and gives every row.
    let (lines, end) = copy_out_lines(&pool, "copy (select generate_series(1, 5000)) to stdout")
        .await
        .unwrap();
    assert_eq!(lines, 5000);
    assert!(matches!(end, CopyOutEnd::Complete { .. }), "{end:?}");
}

#[tokio::test]
async fn copy_in_failures_and_cancellations_leave_the_pool_in_step() {
    let db = fresh_database().await;
    let pool = pool_of(&db, 1).await;
    sqlx::query("create table copy_target (n int primary key)")
        .execute(&pool)
        .await
        .unwrap();

    // At its start: no such table.
    let mut conn = CopyConnection::acquire(&pool).await.unwrap();
    let e = conn
        .copy_in("copy no_such_table from stdin", [b"1\n"])
        .await
        .expect_err("no such table");
    assert!(e.to_string().contains("no_such_table"), "{e}");
    assert!(conn.is_broken());
    conn.release().await;
    answers_are_right(&pool).await;

    // Mid-stream: a value that is not an int, after good rows.
    let mut conn = CopyConnection::acquire(&pool).await.unwrap();
    let e = conn
        .copy_in(
            "copy copy_target from stdin",
            [&b"1\n2\n"[..], b"x\n", b"4\n"],
        )
        .await
        .expect_err("not an int");
    assert!(e.to_string().contains("invalid input syntax"), "{e}");
    conn.release().await;
    answers_are_right(&pool).await;

    // A unique violation inside a transaction: the savepoint rolls back and
    // the transaction goes on (the import's direct-COPY fallback).
    let mut conn = CopyConnection::acquire(&pool).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.copy_in("copy copy_target from stdin", [b"7\n"])
        .await
        .unwrap();
    let mut savepoint = tx.savepoint().await.unwrap();
    let e = savepoint
        .copy_in("copy copy_target from stdin", [b"8\n7\n"])
        .await
        .expect_err("7 is there");
    assert!(e.to_string().contains("duplicate key"), "{e}");
    savepoint.rollback().await.unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from copy_target")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 1, "the savepoint's rows are gone, the first COPY's stay");
    tx.commit().await.unwrap();
    conn.release().await;
    answers_are_right(&pool).await;

    // Cancelled mid-COPY: the rows so far are sent, the rest never comes,
    // and the future is dropped.
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    tokio::io::AsyncWriteExt::write_all(&mut writer, b"1000\n1001\n1002\n")
        .await
        .unwrap();
    let mut conn = CopyConnection::acquire(&pool).await.unwrap();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        conn.copy_in_reader("copy copy_target from stdin", reader),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the COPY should still have been waiting"
    );
    assert!(conn.is_broken());
    drop(conn);
    drop(writer);
    answers_are_right(&pool).await;
    let n: i64 = sqlx::query_scalar("select count(*) from copy_target")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "nothing of the cancelled COPY landed");
}

async fn queued_job(store: &PgStore, owner: KeyId) -> Uuid {
    let id = Uuid::new_v4();
    store
        .create_job(NewJob {
            id,
            owner,
            kind: JobKind::Export,
            dataset: "user_purchase".into(),
            state: JobState::Queued,
            format: Some("csv".into()),
            options: json!({}),
            filename: None,
            object_key: None,
            declared_size: None,
            upload_id: None,
        })
        .await
        .expect("job");
    id
}

/// 100 claims, reads and COPYs at once on a pool of 3, a quarter of them
/// COPYs that fail: every one gets the right answer.
#[tokio::test]
async fn a_hundred_concurrent_claims_reads_and_copies_on_a_small_pool_are_right() {
    let db = fresh_database().await;
    let pool = pool_of(&db, 3).await;
    let store = PgStore::new(pool.clone());
    let (owner, _) = store.create_api_key("copy test").await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100u32 {
        let pool = pool.clone();
        let store = store.clone();
        let job = queued_job(&store, owner).await;
        tasks.spawn(async move {
            match i % 5 {
                0 => {
                    let sql = if i % 2 == 0 {
                        FAILS_AT_START
                    } else {
                        FAILS_MID_STREAM
                    };
                    assert!(copy_out_lines(&pool, sql).await.is_err(), "task {i}");
                }
                1 => {
                    let rows = 1000 + i;
                    let (lines, end) = copy_out_lines(
                        &pool,
                        &format!("copy (select generate_series(1, {rows})) to stdout"),
                    )
                    .await
                    .unwrap();
                    assert_eq!(lines, u64::from(rows), "task {i}");
                    assert!(matches!(end, CopyOutEnd::Complete { .. }));
                }
                2 => {
                    let mut conn = CopyConnection::acquire(&pool).await.unwrap();
                    sqlx::query("create temp table if not exists t (n int)")
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    let e = conn
                        .copy_in("copy t from stdin", [b"1\nnot a number\n"])
                        .await;
                    assert!(e.is_err(), "task {i}");
                    conn.release().await;
                }
                3 => match store
                    .claim_job(job, &format!("worker-{i}"), Duration::from_secs(60))
                    .await
                    .unwrap()
                {
                    Claim::Claimed(claimed) => {
                        assert_eq!(claimed.id, job, "task {i} claimed another job");
                        assert_eq!(claimed.state, JobState::Running);
                    }
                    other => panic!("task {i}: a queued job must be claimed, got {other:?}"),
                },
                _ => {
                    let read = store.job(job).await.unwrap().expect("the job exists");
                    assert_eq!(read.id, job, "task {i} read another job");
                    assert_eq!(read.state, JobState::Queued);
                    let n: i64 = sqlx::query_scalar("select $1::bigint * 2")
                        .bind(i64::from(i))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    assert_eq!(n, i64::from(i) * 2, "task {i}");
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a task failed");
    }
    answers_are_right(&pool).await;
}
