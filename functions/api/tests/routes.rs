//! The API's routes, in-process on the in-memory ports: no Postgres,
//! LocalStack or function host runs, and each test takes milliseconds. The
//! end-to-end tests in `tests/` run the same routes on the real stack.

use std::sync::Arc;

use api::App;
use lambda_http::http::Method;
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_adapters::Config;
use xlport_core::Datasets;
use xlport_core::job::{Claim, KeyId, PartStatus};
use xlport_core::ports::JobStore;
use xlport_core::ports::memory::{InMemory, MemoryJobStore, MemoryObjectStore, MemoryQueue};
use xlport_core::{JobKind, JobState};

type TestApp = App<InMemory>;

const KEY: &str = "xlp_test_key_one";
const OTHER_KEY: &str = "xlp_test_key_two";

struct Harness {
    app: TestApp,
    owner: KeyId,
}

fn harness() -> Harness {
    harness_with(|_| None)
}

/// An app whose configuration is the local defaults, with `vars` on top.
fn harness_with(vars: impl Fn(&str) -> Option<String>) -> Harness {
    let config = Config::from_lookup(vars).expect("config");
    let jobs = MemoryJobStore::new();
    let owner = jobs.add_key(KEY);
    jobs.add_key(OTHER_KEY);
    Harness {
        app: App {
            jobs,
            objects: MemoryObjectStore::new(),
            queue: MemoryQueue::new(),
            config: Arc::new(config),
            datasets: Arc::new(Datasets::builtin().expect("datasets")),
        },
        owner,
    }
}

impl Harness {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, body) = self
            .raw(method, path, key, body.map(|b| b.to_string()))
            .await;
        let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
        (status, json)
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> (u16, lambda_http::http::HeaderMap, String) {
        let mut req = lambda_http::http::Request::builder()
            .method(method)
            .uri(path);
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let req: Request = req
            .body(body.map_or(Body::Empty, Body::Text))
            .expect("request");
        let resp = self.app.handle(req).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.into_body() {
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        };
        (status, headers, body)
    }

    async fn create_import(&self, size: u64) -> Value {
        let (status, job) = self
            .call(
                Method::POST,
                "/imports",
                Some(KEY),
                Some(json!({"dataset": "user_purchase", "filename": "compras.csv", "size": size})),
            )
            .await;
        assert_eq!(status, 201, "{job}");
        job
    }
}

fn id_of(job: &Value) -> Uuid {
    Uuid::parse_str(job["id"].as_str().expect("id")).expect("uuid")
}

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn health_reports_each_dependency_and_never_their_errors() {
    let h = harness();
    let (status, body) = h.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    for check in ["postgres", "s3", "sqs_imports", "sqs_exports"] {
        assert_eq!(body["checks"][check]["ok"], true, "{check}");
    }
    h.app.jobs.set_down(true);
    h.app.queue.set_down(true);
    let (status, body) = h.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["checks"]["postgres"],
        json!({"ok": false, "error": "unreachable"})
    );
    assert_eq!(body["checks"]["sqs_exports"]["ok"], false);
    assert_eq!(body["checks"]["s3"]["ok"], true);
    assert!(!body.to_string().contains("test's outage"), "{body}");
    let (status, _) = h.call(Method::POST, "/health", None, None).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn the_page_is_served_without_a_key_with_its_security_headers() {
    let h = harness();
    let (status, headers, body) = h.raw(Method::GET, "/", None, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("<script>"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(
        csp.contains("http://127.0.0.1:4566"),
        "the bucket's origin: {csp}"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn every_other_route_wants_a_known_key() {
    let h = harness();
    for (method, path) in [
        (Method::GET, "/datasets"),
        (Method::GET, "/jobs"),
        (Method::POST, "/imports"),
        (Method::POST, "/exports"),
        (Method::GET, "/jobs/00000000-0000-0000-0000-000000000000"),
    ] {
        for key in [None, Some("xlp_not_a_key")] {
            let (status, headers, body) = h.raw(method.clone(), path, key, None).await;
            assert_eq!(status, 401, "{method} {path} {key:?}: {body}");
            assert_eq!(headers["www-authenticate"], "Bearer");
            assert!(body.contains("\"code\":\"unauthorized\""), "{body}");
        }
    }
    let (status, headers, _) = h.raw(Method::GET, "/jobs", None, None).await;
    assert_eq!(
        (status, headers["x-content-type-options"].to_str().unwrap()),
        (401, "nosniff")
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let h = harness();
    let (status, body) = h.call(Method::GET, "/nope", Some(KEY), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    for (method, path, allow) in [
        (Method::DELETE, "/jobs", "GET"),
        (Method::PUT, "/imports", "POST"),
        (Method::GET, "/exports", "POST"),
        (Method::GET, "/imports/x/complete", "POST"),
        (Method::TRACE, "/health", "GET"),
        (Method::TRACE, "/", "GET"),
        (Method::POST, "/", "GET"),
    ] {
        let (status, headers, body) = h.raw(method.clone(), path, Some(KEY), None).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        // RFC 9110 §15.5.6: a 405 lists the methods the path has.
        assert_eq!(
            headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn datasets_list_the_configured_tables() {
    let h = harness();
    let (status, body) = h.call(Method::GET, "/datasets", Some(KEY), None).await;
    assert_eq!(status, 200);
    let up = body
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "user_purchase")
        .expect("user_purchase");
    assert_eq!(up["key"], "cpf");
    assert_eq!(up["columns"][0]["header"], "CPF");
}

#[tokio::test]
async fn a_small_import_gets_one_presigned_put_signed_for_its_size() {
    let h = harness();
    let job = h.create_import(1234).await;
    assert_eq!(job["state"], "awaiting_upload");
    assert_eq!(job["kind"], "import");
    assert_eq!(
        job["options"],
        json!({"conflict_policy": "upsert", "dry_run": false})
    );
    let upload = &job["upload"];
    assert_eq!(upload["type"], "single");
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["headers"]["content-length"], "1234");
    assert_eq!(upload["headers"]["if-none-match"], "*");
    let key = job["object"]["key"].as_str().unwrap();
    assert_eq!(key, format!("imports/{}/compras.csv", id_of(&job)));
    assert!(upload["url"].as_str().unwrap().contains(key));
    let stored = h.app.jobs.job(id_of(&job)).await.unwrap().unwrap();
    assert_eq!(stored.declared_size, Some(1234));
    assert_eq!(stored.upload_id, None);
}

#[tokio::test]
async fn bad_import_requests_are_refused_with_a_reason_and_bounded_echoes() {
    let h = harness();
    let long = "x".repeat(300);
    let cases = [
        (
            json!({"dataset": "nope", "filename": "a.csv", "size": 1}),
            404,
            "unknown dataset `nope`; known datasets: user_purchase",
        ),
        (
            json!({"dataset": "user_purchase", "filename": " ", "size": 1}),
            400,
            "`filename` must not be empty",
        ),
        (
            json!({"dataset": "user_purchase", "filename": long, "size": 1}),
            400,
            "`filename` is 300 bytes; at most 255 are accepted",
        ),
        (
            json!({"dataset": "user_purchase", "filename": "a\nb.csv", "size": 1}),
            400,
            "`filename` must not hold control characters",
        ),
        (
            json!({"dataset": "user_purchase", "filename": "a.csv", "size": 0}),
            400,
            "`size` must be the file's size in bytes (> 0)",
        ),
        (
            json!({"dataset": "user_purchase", "filename": "a.csv", "size": u64::MAX}),
            413,
            "the upload size limit is",
        ),
        (
            json!({"dataset": "user_purchase", "filename": "a.csv", "size": 1, "conflict_policy": "y".repeat(100)}),
            400,
            "unknown conflict_policy `yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy…`: use upsert, skip or reject",
        ),
        (
            json!({"dataset": "user_purchase", "filename": "a.csv", "size": 1, "extra": 1}),
            400,
            "unknown field `extra`",
        ),
        (
            json!({"dataset": "user_purchase"}),
            400,
            "missing field `filename`",
        ),
    ];
    for (body, status, says) in cases {
        let (got, resp) = h
            .call(Method::POST, "/imports", Some(KEY), Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {resp}");
        let error = resp["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: {error}");
        assert!(error.chars().count() < 300, "bounded: {error}");
    }
    let (status, _, body) = h
        .raw(
            Method::POST,
            "/imports",
            Some(KEY),
            Some("{not json".into()),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid JSON body"), "{body}");
    let (status, _, body) = h.raw(Method::POST, "/imports", Some(KEY), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("request body must be a JSON object"),
        "{body}"
    );
    assert!(
        h.app.jobs.list_jobs(h.owner, 10).await.unwrap().is_empty(),
        "no job was created"
    );
}

#[tokio::test]
async fn a_big_import_is_a_multipart_upload_that_resumes_and_completes() {
    let h = harness();
    let size = 70 * MIB;
    let job = h.create_import(size).await;
    let id = id_of(&job);
    let upload = &job["upload"];
    assert_eq!(upload["type"], "multipart");
    let part_size = upload["part_size"].as_u64().unwrap();
    let count = upload["part_count"].as_u64().unwrap();
    assert_eq!(count, size.div_ceil(part_size));
    assert_eq!(upload["parts"].as_array().unwrap().len() as u64, count);
    assert_eq!(upload["complete_url"], format!("/imports/{id}/complete"));
    let upload_id = h
        .app
        .jobs
        .job(id)
        .await
        .unwrap()
        .unwrap()
        .upload_id
        .expect("upload id");

    // Part 1 lands; a resumed client asks what is there and for part 2's URL.
    let e1 = h.app.objects.put_part(&upload_id, 1, b"first").unwrap();
    let (status, more) = h
        .call(
            Method::POST,
            &format!("/imports/{id}/parts"),
            Some(KEY),
            Some(json!({"part_numbers": [2]})),
        )
        .await;
    assert_eq!(status, 200, "{more}");
    assert_eq!(
        more["uploaded"],
        json!([{"part_number": 1, "etag": e1, "size": 5}])
    );
    assert_eq!(more["parts"].as_array().unwrap().len(), 1);
    assert_eq!(more["parts"][0]["part_number"], 2);
    let (status, all) = h
        .call(
            Method::POST,
            &format!("/imports/{id}/parts"),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(all["parts"].as_array().unwrap().len() as u64, count);
    for (numbers, says) in [
        (json!([0]), "part 0 does not exist"),
        (json!([1, 1]), "part 1 is asked for twice"),
    ] {
        let (status, body) = h
            .call(
                Method::POST,
                &format!("/imports/{id}/parts"),
                Some(KEY),
                Some(json!({"part_numbers": numbers})),
            )
            .await;
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }

    let e2 = h.app.objects.put_part(&upload_id, 2, b"second").unwrap();
    let complete = format!("/imports/{id}/complete");
    // A wrong ETag: S3 refuses, and the client is told what to check, not S3's words.
    let (status, body) = h
        .call(Method::POST, &complete, Some(KEY), Some(json!({"parts": [{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": "bogus"}]})))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("S3 refused to complete the upload"),
        "{body}"
    );
    assert!(!body.to_string().contains("InvalidPart"), "{body}");
    let (status, body) = h
        .call(
            Method::POST,
            &complete,
            Some(KEY),
            Some(
                json!({"parts": [{"part_number": 1, "etag": e1}, {"part_number": 1, "etag": e1}]}),
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("part 1 is listed twice"),
        "{body}"
    );
    let (status, body) = h
        .call(Method::POST, &complete, Some(KEY), Some(json!({"parts": [{"part_number": 2, "etag": e2}, {"part_number": 1, "etag": format!("\"{e1}\"")}]})))
        .await;
    assert_eq!(status, 200, "{body}");
    let key = job["object"]["key"].as_str().unwrap();
    assert_eq!(h.app.objects.get(key).unwrap(), b"firstsecond");
    assert_eq!(h.app.objects.uploads_in_progress(), 0);
}

#[tokio::test]
async fn the_parts_and_completion_of_a_single_put_or_a_started_import_are_conflicts() {
    let h = harness();
    let single = h.create_import(10).await;
    let id = id_of(&single);
    let (status, body) = h
        .call(
            Method::POST,
            &format!("/imports/{id}/parts"),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("uses a single PUT"),
        "{body}"
    );

    let multi = h.create_import(65 * MIB).await;
    let id = id_of(&multi);
    let key = multi["object"]["key"].as_str().unwrap();
    h.app
        .jobs
        .record_upload(id, key, 65 * MIB as i64, "e")
        .await
        .unwrap();
    let (status, body) = h
        .call(
            Method::POST,
            &format!("/imports/{id}/parts"),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("is queued; its upload can no longer change"),
        "{body}"
    );
}

#[tokio::test]
async fn an_abort_cancels_the_import_and_removes_what_was_uploaded() {
    let h = harness();
    let single = h.create_import(10).await;
    let key = single["object"]["key"].as_str().unwrap();
    h.app.objects.put(key, b"0123456789");
    let id = id_of(&single);
    let (status, job) = h
        .call(
            Method::POST,
            &format!("/imports/{id}/abort"),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["state"], "cancelled");
    assert!(
        h.app.objects.get(key).is_none(),
        "the uploaded object is deleted"
    );
    let (status, body) = h
        .call(
            Method::POST,
            &format!("/imports/{id}/abort"),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");

    let multi = h.create_import(65 * MIB).await;
    assert_eq!(h.app.objects.uploads_in_progress(), 1);
    let (status, job) = h
        .call(
            Method::POST,
            &format!("/imports/{}/abort", id_of(&multi)),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!((status, job["state"].as_str()), (200, Some("cancelled")));
    assert_eq!(
        h.app.objects.uploads_in_progress(),
        0,
        "the multipart upload is aborted"
    );
}

#[tokio::test]
async fn a_job_is_its_owner_s_alone() {
    let h = harness();
    let mine = h.create_import(10).await;
    let id = id_of(&mine);
    let (status, job) = h
        .call(Method::GET, &format!("/jobs/{id}"), Some(KEY), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(job["id"], mine["id"]);
    assert_eq!(job["status_url"], format!("/jobs/{id}"));
    for (method, path) in [
        (Method::GET, format!("/jobs/{id}")),
        (Method::POST, format!("/imports/{id}/abort")),
        (Method::POST, format!("/imports/{id}/parts")),
        (Method::POST, format!("/imports/{id}/complete")),
    ] {
        let body = (method == Method::POST && path.ends_with("complete"))
            .then(|| json!({"parts": [{"part_number": 1, "etag": "e"}]}));
        let (status, resp) = h.call(method.clone(), &path, Some(OTHER_KEY), body).await;
        assert_eq!(status, 404, "{method} {path}: {resp}");
        let what = if path.starts_with("/jobs") {
            "job"
        } else {
            "import"
        };
        assert_eq!(resp["error"], format!("{what} {id} not found"));
    }
    let (status, list) = h.call(Method::GET, "/jobs", Some(OTHER_KEY), None).await;
    assert_eq!((status, list), (200, json!([])));
    let (_, list) = h.call(Method::GET, "/jobs", Some(KEY), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let long = "z".repeat(500);
    for path in ["/jobs/not-a-uuid".to_string(), format!("/jobs/{long}")] {
        let (status, resp) = h.call(Method::GET, &path, Some(KEY), None).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            resp["error"].as_str().unwrap().len() < 80,
            "bounded: {resp}"
        );
    }
}

#[tokio::test]
async fn an_export_is_queued_with_its_options() {
    let h = harness();
    let (status, job) = h
        .call(
            Method::POST,
            "/exports",
            Some(KEY),
            Some(json!({"dataset": "user_purchase", "format": "csv", "csv": {"dialect": "excel-br"}, "filter": {"private": true}})),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "queued");
    assert_eq!(job["format"], "csv");
    assert_eq!(job["options"]["csv"]["dialect"], "excel-br");
    assert_eq!(job["options"]["filter"], json!({"private": true}));
    assert!(job["filename"].as_str().unwrap().ends_with(".csv"));
    let sent = h.app.queue.sent(&h.app.config.exports_queue_url);
    assert_eq!(sent.len(), 1);
    let message: Value = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(message["job_id"], job["id"]);
    assert!(h.app.queue.sent(&h.app.config.imports_queue_url).is_empty());
}

#[tokio::test]
async fn bad_exports_are_refused_before_a_job_exists() {
    let h = harness();
    for (body, says) in [
        (
            json!({"dataset": "user_purchase", "format": "pdf"}),
            "unknown format `pdf`: use xlsx or csv",
        ),
        (
            json!({"dataset": "user_purchase", "csv": {"dialect": "rfc4180"}}),
            "`csv` options are for",
        ),
        (
            json!({"dataset": "user_purchase", "format": "csv", "csv": {"dialect": "klingon"}}),
            "klingon",
        ),
        (
            json!({"dataset": "user_purchase", "filter": {"nope": 1}}),
            "nope",
        ),
    ] {
        let (status, resp) = h
            .call(Method::POST, "/exports", Some(KEY), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert!(
            resp["error"].as_str().unwrap().contains(says),
            "{body}: {resp}"
        );
    }
    let (status, resp) = h
        .call(
            Method::POST,
            "/exports",
            Some(KEY),
            Some(json!({"dataset": "nope"})),
        )
        .await;
    assert_eq!(status, 404, "{resp}");
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("unknown dataset `nope`")
    );
    assert!(h.app.jobs.list_jobs(h.owner, 10).await.unwrap().is_empty());
    assert!(h.app.queue.sent(&h.app.config.exports_queue_url).is_empty());
}

/// A key limited to some datasets sees only those, and any other is, for
/// it, a dataset that does not exist; a key limited to one kind of job is
/// told it may not create the other (docs/spec/datasets.md, "Access").
#[tokio::test]
async fn a_key_limited_to_datasets_and_kinds_sees_and_does_only_those() {
    use xlport_core::job::Access;
    let h = harness();
    let elsewhere = "xlp_test_key_elsewhere";
    h.app.jobs.add_key_with(
        elsewhere,
        Access {
            datasets: Some(vec!["orders".into()]),
            import: true,
            export: true,
        },
    );
    let (status, list) = h
        .call(Method::GET, "/datasets", Some(elsewhere), None)
        .await;
    assert_eq!((status, list), (200, json!([])));
    let export = json!({"dataset": "user_purchase"});
    let import = json!({"dataset": "user_purchase", "filename": "a.csv", "size": 3});
    for (path, body) in [("/exports", &export), ("/imports", &import)] {
        let (status, resp) = h
            .call(Method::POST, path, Some(elsewhere), Some(body.clone()))
            .await;
        assert_eq!(status, 404, "{path}: {resp}");
        assert_eq!(
            resp["error"], "unknown dataset `user_purchase`; known datasets: none",
            "the same answer as for a dataset that does not exist"
        );
    }

    let importer = "xlp_test_key_importer";
    h.app.jobs.add_key_with(
        importer,
        Access {
            datasets: Some(vec!["user_purchase".into()]),
            import: true,
            export: false,
        },
    );
    let (_, list) = h.call(Method::GET, "/datasets", Some(importer), None).await;
    assert_eq!(list[0]["name"], "user_purchase");
    let (status, resp) = h
        .call(
            Method::POST,
            "/exports",
            Some(importer),
            Some(export.clone()),
        )
        .await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (403, Some("forbidden")),
        "{resp}"
    );
    assert_eq!(
        resp["error"],
        "this API key may not create export jobs; ask for a key that may"
    );
    let (status, resp) = h
        .call(
            Method::POST,
            "/imports",
            Some(importer),
            Some(import.clone()),
        )
        .await;
    assert_eq!(status, 201, "{resp}");
    assert!(h.app.queue.sent(&h.app.config.exports_queue_url).is_empty());
}

#[tokio::test]
async fn an_export_the_queue_cannot_take_fails_at_once_and_says_nothing_internal() {
    let h = harness();
    h.app.queue.set_down(true);
    let (status, resp) = h
        .call(
            Method::POST,
            "/exports",
            Some(KEY),
            Some(json!({"dataset": "user_purchase"})),
        )
        .await;
    assert_eq!(status, 503, "{resp}");
    assert_eq!(resp["code"], "unavailable");
    assert!(
        !resp.to_string().contains("outage"),
        "internal text stays in the log: {resp}"
    );
    let jobs = h.app.jobs.list_jobs(h.owner, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Failed);
    assert_eq!(
        jobs[0].error.as_deref(),
        Some("the export could not be queued (the queue was unavailable); start it again")
    );
}

#[tokio::test]
async fn an_outage_of_the_job_store_or_the_bucket_is_a_503_without_its_text() {
    let h = harness();
    h.app.objects.set_down(true);
    let (status, resp) = h
        .call(
            Method::POST,
            "/imports",
            Some(KEY),
            Some(json!({"dataset": "user_purchase", "filename": "a.csv", "size": 5})),
        )
        .await;
    assert_eq!(status, 503, "{resp}");
    assert_eq!(
        resp["error"],
        "a service xlport depends on is unavailable; try again in a minute"
    );
    h.app.objects.set_down(false);
    h.app.jobs.set_down(true);
    let (status, resp) = h.call(Method::GET, "/jobs", Some(KEY), None).await;
    assert_eq!(status, 503, "{resp}");
    assert!(!resp.to_string().contains("outage"), "{resp}");
}

#[tokio::test]
async fn a_finished_job_links_its_file_and_an_import_lists_its_parts() {
    let h = harness();
    // An export that a worker finished.
    let (_, export) = h
        .call(
            Method::POST,
            "/exports",
            Some(KEY),
            Some(json!({"dataset": "user_purchase"})),
        )
        .await;
    let id = id_of(&export);
    let Claim::Claimed(_) = h
        .app
        .jobs
        .claim_job(id, "w", std::time::Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("claim");
    };
    h.app
        .jobs
        .set_upload(id, "w", "exports/x/user_purchase.xlsx", "u")
        .await
        .unwrap();
    assert!(
        h.app
            .jobs
            .succeed_job(id, "w", 3, 100, &json!({"rows": 3}))
            .await
            .unwrap()
    );
    let (status, job) = h
        .call(Method::GET, &format!("/jobs/{id}"), Some(KEY), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(job["state"], "succeeded");
    let url = job["download_url"].as_str().expect("download_url");
    assert!(url.contains("exports/x/user_purchase.xlsx"), "{url}");
    let (_, list) = h.call(Method::GET, "/jobs", Some(KEY), None).await;
    assert!(
        list[0].get("download_url").is_none(),
        "lists skip the signatures"
    );

    // An import with a rejected row: its parts and its error report.
    let import = h.create_import(10).await;
    let id = id_of(&import);
    let key = import["object"]["key"].as_str().unwrap();
    h.app.jobs.record_upload(id, key, 10, "e").await.unwrap();
    h.app
        .jobs
        .claim_job(id, "w", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    h.app.jobs.add_part(
        id,
        PartStatus {
            part_no: 1,
            state: "committed".into(),
            first_sheet: None,
            first_row: Some(2),
            last_sheet: None,
            last_row: Some(3),
            rows_read: 2,
            inserted: 1,
            updated: 0,
            rejected: 1,
            counts: json!({}),
            error: None,
        },
    );
    h.app
        .jobs
        .succeed_job(id, "w", 2, 10, &json!({"rows_read": 2, "rejected": 1}))
        .await
        .unwrap();
    let (_, job) = h
        .call(Method::GET, &format!("/jobs/{id}"), Some(KEY), None)
        .await;
    assert_eq!(job["parts"][0]["rows_read"], 2);
    assert!(job["parts"][0].get("first_sheet").is_none());
    let report = job["error_report_url"].as_str().expect("error_report_url");
    assert!(
        report.contains(&format!("reports/{id}/errors.xlsx")),
        "{report}"
    );
    assert!(report.contains(&format!("{id}-errors.xlsx")), "{report}");
    assert_eq!(JobKind::Import.as_str(), job["kind"]);
}

/// A body that is not UTF-8 (a Function URL hands it over base64-encoded,
/// lambda_http as `Body::Binary`) is malformed JSON: a 400, never a 500.
#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_400() {
    let h = harness();
    for path in [
        "/exports",
        "/imports",
        "/imports/x/complete",
        "/imports/x/parts",
    ] {
        let req: Request = lambda_http::http::Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .body(Body::Binary(vec![0xff, 0x66, 0x00, 0xc3]))
            .expect("request");
        let resp = h.app.handle(req).await;
        let status = resp.status().as_u16();
        assert!(status == 400 || status == 404, "{path}: {status}");
        if path == "/exports" || path == "/imports" {
            assert_eq!(status, 400, "{path}");
        }
    }
}
