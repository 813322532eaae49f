//! Every answer of the API reads into its type of the contract
//! (`xlport_contract`), as the CLI reads it, and writes back as the same
//! JSON: the types hold all that the API sends. In-process, on the
//! in-memory ports (see routes.rs).

use std::sync::Arc;

use api::App;
use lambda_http::http::Method;
use lambda_http::{Body, Request};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_adapters::Config;
use xlport_contract::{
    DatasetView, ErrorBody, Health, ImportCreated, JobCounts, JobView, PartsAnswer, Upload,
};
use xlport_core::Datasets;
use xlport_core::job::PartStatus;
use xlport_core::ports::JobStore;
use xlport_core::ports::memory::{InMemory, MemoryJobStore, MemoryObjectStore, MemoryQueue};

const KEY: &str = "xlp_test_key_one";
const MIB: u64 = 1024 * 1024;

fn app() -> App<InMemory> {
    let jobs = MemoryJobStore::new();
    jobs.add_key(KEY);
    App {
        jobs,
        objects: MemoryObjectStore::new(),
        queue: MemoryQueue::new(),
        config: Arc::new(Config::from_lookup(|_| None).expect("config")),
        datasets: Arc::new(Datasets::builtin().expect("datasets")),
    }
}

/// The answer to `method path` with `body`, read as `T`; its status too.
/// Fails unless `T` writes back the very JSON the API sent.
async fn call<T: DeserializeOwned + Serialize>(
    app: &App<InMemory>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, T) {
    let req: Request = lambda_http::http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header("authorization", format!("Bearer {KEY}"))
        .body(body.map_or(Body::Empty, |b| Body::Text(b.to_string())))
        .expect("request");
    let resp = app.handle(req).await;
    let status = resp.status().as_u16();
    let text = match resp.into_body() {
        Body::Text(t) => t,
        other => panic!("{method} {path}: not text: {other:?}"),
    };
    let raw: Value = serde_json::from_str(&text).expect("JSON");
    let typed: T = serde_json::from_value(raw.clone())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {raw:#}"));
    let back = serde_json::to_value(&typed).expect("as JSON");
    assert_eq!(back, raw, "{method} {path} does not write back the same");
    (status, typed)
}

#[tokio::test]
async fn every_answer_reads_into_the_contract_and_writes_back_the_same() {
    let app = app();
    let (status, health) = call::<Health>(&app, Method::GET, "/health", None).await;
    assert_eq!((status, health.checks.all_ok()), (200, true));
    let (_, datasets) = call::<Vec<DatasetView>>(&app, Method::GET, "/datasets", None).await;
    assert!(datasets.iter().any(|d| d.name == "user_purchase"));

    // The two upload plans, the parts, the completion and an abort.
    let new_import = |size: u64| json!({"dataset": "user_purchase", "filename": "compras.csv", "size": size, "conflict_policy": "skip", "dry_run": true});
    let (status, single) =
        call::<ImportCreated>(&app, Method::POST, "/imports", Some(new_import(10))).await;
    assert_eq!(status, 201);
    assert!(matches!(single.upload, Upload::Single(_)));
    let (_, multi) =
        call::<ImportCreated>(&app, Method::POST, "/imports", Some(new_import(70 * MIB))).await;
    let Upload::Multipart(plan) = &multi.upload else {
        panic!("a multipart plan: {:?}", multi.upload);
    };
    let id = multi.job.id;
    let upload_id = app.jobs.job(id).await.unwrap().unwrap().upload_id.unwrap();
    let etag = app.objects.put_part(&upload_id, 1, b"first").unwrap();
    let parts = format!("/imports/{id}/parts");
    let (_, more) = call::<PartsAnswer>(&app, Method::POST, &parts, None).await;
    assert_eq!((more.part_count, more.uploaded.len()), (plan.part_count, 1));
    let (status, _) = call::<JobView>(
        &app,
        Method::POST,
        &format!("/imports/{id}/complete"),
        Some(json!({"parts": [{"part_number": 1, "etag": etag}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, aborted) = call::<JobView>(
        &app,
        Method::POST,
        &format!("/imports/{}/abort", single.job.id),
        None,
    )
    .await;
    assert_eq!(aborted.state.as_str(), "cancelled");

    // An export and an import that workers finished, with what they write.
    let (status, export) = call::<JobView>(
        &app,
        Method::POST,
        "/exports",
        Some(json!({"dataset": "user_purchase", "format": "csv", "csv": {"dialect": "excel-br"}, "filter": {"private": true}})),
    )
    .await;
    assert_eq!(status, 202);
    let w = std::time::Duration::from_secs(60);
    app.jobs.claim_job(export.id, "w", w).await.unwrap();
    app.jobs
        .set_upload(export.id, "w", "exports/x/a.csv", "u")
        .await
        .unwrap();
    let counts = json!({"rows": 3, "bytes": 100, "sheets": 1, "duration_ms": 12});
    app.jobs
        .succeed_job(export.id, "w", 3, 100, &counts)
        .await
        .unwrap();
    let (_, done) = call::<JobView>(&app, Method::GET, &format!("/jobs/{}", export.id), None).await;
    assert!(matches!(done.counts, JobCounts::Export(_)) && done.download_url.is_some());

    let (_, import) =
        call::<ImportCreated>(&app, Method::POST, "/imports", Some(new_import(10))).await;
    let id = import.job.id;
    let key = import.job.object.key.clone().unwrap();
    app.jobs.record_upload(id, &key, 10, "e").await.unwrap();
    app.jobs.claim_job(id, "w", w).await.unwrap();
    let counters = json!({"rows_read": 3, "inserted": 2, "updated": 0, "skipped": 0, "rejected": 1,
        "rejected_by_reason": {"invalid_date": 1}, "invalid_cpf": 1, "invalid_cnpj": 0});
    app.jobs.add_part(
        id,
        PartStatus {
            part_no: 1,
            state: "succeeded".into(),
            first_sheet: None,
            first_row: Some(2),
            last_sheet: None,
            last_row: Some(4),
            rows_read: 3,
            inserted: 2,
            updated: 0,
            rejected: 1,
            counts: counters.clone(),
            error: None,
        },
    );
    let mut counts = counters;
    for (k, v) in [
        ("dry_run", json!(true)),
        ("format", json!("csv (delimiter ';')")),
        ("encoding", json!("utf-8")),
        ("sheet", Value::Null),
        ("duration_ms", json!(5)),
        (
            "error_report_key",
            json!(format!("reports/{id}/errors.xlsx")),
        ),
    ] {
        counts[k] = v;
    }
    app.jobs.succeed_job(id, "w", 3, 10, &counts).await.unwrap();
    let (_, done) = call::<JobView>(&app, Method::GET, &format!("/jobs/{id}"), None).await;
    assert_eq!(done.counts.import().rejected, 1);
    assert!(done.error_report_url.is_some() && done.parts.is_some());
    let (_, list) = call::<Vec<JobView>>(&app, Method::GET, "/jobs", None).await;
    assert_eq!(list.len(), 4);

    // Errors.
    for (method, path, body, status) in [
        (Method::GET, format!("/jobs/{}", Uuid::nil()), None, 404),
        (Method::DELETE, "/jobs".into(), None, 405),
        (
            Method::POST,
            "/exports".into(),
            Some(json!({"dataset": "nope"})),
            404,
        ),
        (
            Method::POST,
            "/exports".into(),
            Some(json!({"dataset": "user_purchase", "format": "pdf"})),
            400,
        ),
    ] {
        let (got, error) = call::<ErrorBody>(&app, method, &path, body).await;
        assert_eq!(got, status, "{path}: {error:?}");
        assert!(!error.error.is_empty() && !error.code.is_empty());
    }
}
