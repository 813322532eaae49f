//! Recovery through the whole local stack (issues #19 and #15): the API under
//! `cargo lambda watch`, S3 events through LocalStack SQS, the local
//! event-source mapping with its sweep, and the workers on Postgres. Each
//! test prints the timestamps of the fault and of the recovery.
//!
//! Both tests touch only their own job and their own rows, so they run beside
//! the rest of the suite.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_tests::{Stack, curl_upload_plan, random_u32};

/// A `;` CSV of `rows` rows whose CPFs no other test uses (11 digits; their
/// check digits are flagged, not refused).
fn own_rows(rows: u64) -> (String, Vec<String>) {
    let base = 20_000_000_000u64 + u64::from(random_u32() % 10_000_000) * 1_000;
    let mut text = String::from(
        "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA\n",
    );
    let mut cpfs = Vec::new();
    for i in 0..rows {
        let cpf = format!("{:011}", base + i);
        text.push_str(&format!(
            "{cpf};1;0;2021-03-{:02};{},25;;;\n",
            1 + i % 28,
            100 + i
        ));
        cpfs.push(cpf);
    }
    (text, cpfs)
}

/// Creates an import through the API and returns its id and its single-PUT
/// upload plan (`{"url", "headers"}`).
async fn create_import(stack: &Stack, key: &str, filename: &str, size: usize) -> (String, Value) {
    let (status, job) = stack
        .call(
            Method::POST,
            "/imports",
            Some(key),
            Some(json!({"dataset": "user_purchase", "filename": filename, "size": size, "conflict_policy": "upsert"})),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["upload"]["type"], "single", "{job}");
    (
        job["id"].as_str().expect("job id").to_string(),
        job["upload"].clone(),
    )
}

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let file = std::env::temp_dir().join(format!("xlport-recovery-{}-{name}", Uuid::new_v4()));
    std::fs::write(&file, text).expect("temp file");
    file
}

fn stamp() -> String {
    Utc::now().format("%H:%M:%S%.3f").to_string()
}

/// An S3 event lost on its way (the worker got it while no job waited for the
/// key, so it was dropped, as a lost invocation or a message a killed long
/// poll took would be): the mapping's sweep notices the job waiting with its
/// object in the bucket, sends the event again, and the import lands, all in
/// well under a minute with the test stack's 30 s stall bound.
#[tokio::test]
async fn a_swallowed_upload_event_is_redriven_through_the_whole_stack() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let (text, cpfs) = own_rows(20);
    let file = write_temp("swallowed.csv", &text);
    let (id, url) = create_import(&stack, &key, "swallowed.csv", text.len()).await;
    let job_id: Uuid = id.parse().expect("uuid");

    // While the upload's event goes by, no job waits for this key.
    let moved = sqlx::query(
        "update jobs set object_key = object_key || '.elsewhere' where id = $1 and state = 'awaiting_upload'",
    )
    .bind(job_id)
    .execute(&stack.deps.jobs.pool)
    .await
    .expect("move the key");
    assert_eq!(moved.rows_affected(), 1);
    curl_upload_plan(&url, &file).expect("upload");
    let uploaded = Instant::now();
    eprintln!(
        "{} uploaded {id}; its S3 event goes to a worker that drops it",
        stamp()
    );
    // The mapping delivers an event within a second or two; give it more.
    tokio::time::sleep(Duration::from_secs(6)).await;
    sqlx::query("update jobs set object_key = left(object_key, -10) where id = $1")
        .bind(job_id)
        .execute(&stack.deps.jobs.pool)
        .await
        .expect("restore the key");
    let (_, waiting) = stack
        .call(Method::GET, &format!("/jobs/{id}"), Some(&key), None)
        .await;
    assert_eq!(
        waiting["state"], "awaiting_upload",
        "the event was not dropped: {waiting}"
    );
    eprintln!(
        "{} the event is gone; the job still waits: {}",
        stamp(),
        waiting["state"]
    );

    let done = stack
        .wait_finished(&key, &id, Duration::from_secs(90))
        .await;
    let took = uploaded.elapsed();
    eprintln!(
        "{} {} after {:.1} s; warnings: {}",
        stamp(),
        done["state"],
        took.as_secs_f64(),
        done["warnings"]
    );
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["counts"]["rows_read"], 20, "{done}");
    assert_eq!(done["counts"]["inserted"], 20, "{done}");
    let warnings = done["warnings"].to_string();
    assert!(
        warnings.contains("it was sent to the workers again"),
        "recovered by the sweep, and said so: {done}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let landed: i64 = sqlx::query_scalar("select count(*) from user_purchase where cpf = any($1)")
        .bind(&cpfs)
        .fetch_one(&stack.deps.jobs.pool)
        .await
        .expect("count");
    assert_eq!(landed, 20);
    std::fs::remove_file(file).ok();
}

/// The worker's Postgres connection is killed in the middle of a part
/// (`pg_terminate_backend`, as a failover or an operator would): the part's
/// transaction rolls back, the job is handed back with a backoff of seconds
/// (attempts 1, the last error without internals, the next attempt's time),
/// and the second attempt lands every row exactly once.
#[tokio::test]
async fn a_postgres_backend_killed_mid_part_is_retried_in_seconds_without_double_counting() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let pool = &stack.deps.jobs.pool;
    let (text, cpfs) = own_rows(30);
    let file = write_temp("first.csv", &text);

    // The rows exist, so the second import updates them (a merge that takes
    // row locks).
    let (first, url) = create_import(&stack, &key, "first.csv", text.len()).await;
    curl_upload_plan(&url, &file).expect("upload");
    let landed = stack
        .wait_finished(&key, &first, Duration::from_secs(60))
        .await;
    assert_eq!(landed["state"], "succeeded", "{landed}");
    assert_eq!(landed["counts"]["inserted"], 30, "{landed}");

    // Hold one of its rows, so the next import's merge waits on it.
    let mut holder = pool.acquire().await.expect("connection");
    sqlx::query("begin")
        .execute(&mut *holder)
        .await
        .expect("begin");
    sqlx::query("select 1 from user_purchase where cpf = $1 for update")
        .bind(&cpfs[17])
        .execute(&mut *holder)
        .await
        .expect("lock a row");
    let me: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut *holder)
        .await
        .expect("pid");

    let changed = text.replace(";1;0;2021-03-", ";0;1;2022-04-");
    let file = write_temp("second.csv", &changed);
    let (id, url) = create_import(&stack, &key, "second.csv", changed.len()).await;
    curl_upload_plan(&url, &file).expect("upload");
    let started = Instant::now();
    let worker: i32 = loop {
        let blocked: Option<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid)) limit 1",
        )
        .bind(me)
        .fetch_optional(pool)
        .await
        .expect("pg_stat_activity");
        if let Some(pid) = blocked {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the import never reached the held row"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let terminated: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(worker)
        .fetch_one(pool)
        .await
        .expect("terminate");
    assert!(terminated);
    let killed = Instant::now();
    eprintln!(
        "{} killed the worker's backend {worker} in the middle of {id}'s part",
        stamp()
    );
    sqlx::query("rollback")
        .execute(&mut *holder)
        .await
        .expect("rollback");
    drop(holder);

    // The job says what happened and when it tries again.
    let handed_back = stack
        .wait_job(&key, &id, Duration::from_secs(30), |j| {
            j["attempts"].as_i64() >= Some(1) && !j["last_error"].is_null()
                || j["state"] == "succeeded"
                || j["state"] == "failed"
        })
        .await;
    eprintln!(
        "{} state {}, attempts {}, last error {}, next attempt at {}",
        stamp(),
        handed_back["state"],
        handed_back["attempts"],
        handed_back["last_error"],
        handed_back["next_attempt_at"]
    );
    assert_eq!(
        handed_back["last_error"], "a database error; it will be retried",
        "{handed_back}"
    );

    let done = stack
        .wait_finished(&key, &id, Duration::from_secs(90))
        .await;
    let took = killed.elapsed();
    eprintln!(
        "{} {} on attempt {} after {:.1} s: {}",
        stamp(),
        done["state"],
        done["attempts"],
        took.as_secs_f64(),
        done["counts"]
    );
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    // Exactly the file's rows, once: the killed part left nothing behind.
    assert_eq!(done["counts"]["rows_read"], 30, "{done}");
    assert_eq!(done["counts"]["updated"], 30, "{done}");
    assert_eq!(done["counts"]["inserted"], 0, "{done}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let rows: Vec<(String, bool, Option<chrono::NaiveDate>)> = sqlx::query_as(
        "select cpf, private, data_ultima_compra from user_purchase where cpf = any($1) order by cpf",
    )
    .bind(&cpfs)
    .fetch_all(pool)
    .await
    .expect("rows");
    assert_eq!(rows.len(), 30);
    for (cpf, private, date) in rows {
        assert!(!private, "{cpf} was not updated");
        assert_eq!(
            date.map(|d| d.format("%Y-%m").to_string()).as_deref(),
            Some("2022-04"),
            "{cpf}"
        );
    }
    let value: Value = done["parts"].clone();
    assert_eq!(value.as_array().map(Vec::len), Some(1), "{done}");
    std::fs::remove_file(file).ok();
}
