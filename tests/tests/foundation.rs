//! The foundation, end to end: API auth and health, a presigned PUT with plain
//! curl -> S3 event -> SQS -> local event-source mapping -> import function,
//! the S3 test event ignored, and a poison message retried then dead-lettered.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use reqwest::Method;
use serde_json::json;
use xlport_tests::{Stack, deps_with_fresh_db, md5_hex};

#[tokio::test]
async fn health_reports_each_dependency() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let (status, body) = stack.call(Method::GET, "/health", Some(&key), None).await;
    assert_eq!(status, 200, "{body}");
    for dep in ["postgres", "s3", "sqs_imports", "sqs_exports"] {
        assert_eq!(body["checks"][dep]["ok"], true, "{dep}: {body}");
    }
}

#[tokio::test]
async fn every_other_route_needs_a_valid_key() {
    let stack = Stack::connect().await;
    for key in [None, Some("xlp_not_a_real_key_0000000000")] {
        let (status, body) = stack.call(Method::GET, "/jobs", key, None).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], "unauthorized");
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    }
    let key = stack.new_key().await;
    let (status, _) = stack.call(Method::GET, "/jobs", Some(&key), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn someone_elses_job_is_not_found() {
    let stack = Stack::connect().await;
    let (alice, bob) = (stack.new_key().await, stack.new_key().await);
    let (status, job) = stack
        .call(
            Method::POST,
            "/imports",
            Some(&alice),
            Some(json!({"dataset": "user_purchase", "filename": "a.csv", "size": 10})),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    assert_eq!(
        stack.call(Method::GET, &path, Some(&alice), None).await.0,
        200
    );
    assert_eq!(
        stack.call(Method::GET, &path, Some(&bob), None).await.0,
        404
    );
}

#[tokio::test]
async fn bad_import_requests_get_a_clear_400() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let cases = [
        (
            json!({"dataset": "user_purchase", "filename": "a.csv", "size": 1, "conflict_policy": "merge"}),
            "unknown conflict_policy `merge`",
        ),
        (
            json!({"dataset": "user_purchase", "filename": "", "size": 1}),
            "`filename`",
        ),
        (
            json!({"dataset": "user_purchase"}),
            "missing field `filename`",
        ),
    ];
    for (body, needle) in cases {
        let (status, resp) = stack
            .call(Method::POST, "/imports", Some(&key), Some(body.clone()))
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
            "/imports",
            Some(&key),
            Some(json!({"dataset": "nope", "filename": "a.csv", "size": 1})),
        )
        .await;
    assert_eq!(status, 404, "{resp}");
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("unknown dataset `nope`")
    );
    let (status, resp) = stack
        .call(
            Method::POST,
            "/imports",
            Some(&key),
            Some(json!({"dataset": "user_purchase", "filename": "big.csv", "size": 1u64 << 50})),
        )
        .await;
    assert_eq!(status, 413, "{resp}");
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("upload size limit"),
        "{resp}"
    );
}

/// The whole path of an upload: the import function is invoked through the
/// mapping with the object's bucket, key, size and etag, and records them.
#[tokio::test]
async fn curl_upload_reaches_the_import_worker_through_s3_sqs_and_the_mapping() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let content = "CPF   PRIVATE  INCOMPLETO  DATA DA ÚLTIMA COMPRA  TICKET MÉDIO  TICKET DA ÚLTIMA COMPRA  LOJA MAIS FREQUÊNTE  LOJA DA ÚLTIMA COMPRA\n\
                   041.091.641-25  0  0  NULL  NULL  NULL  NULL  NULL\n"
        .as_bytes()
        .to_vec();
    let dir = std::env::temp_dir().join(format!("xlport-e2e-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compras de março.txt");
    std::fs::write(&file, &content).unwrap();

    let (status, job) = stack
        .call(
            Method::POST,
            "/imports",
            Some(&key),
            Some(json!({"dataset": "user_purchase", "filename": "compras de março.txt", "size": content.len()})),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["state"], "awaiting_upload");
    let id = job["id"].as_str().unwrap().to_string();
    let object_key = job["object"]["key"].as_str().unwrap().to_string();
    assert_eq!(object_key, format!("imports/{id}/compras_de_marco.txt"));

    xlport_tests::curl_upload_plan(&job["upload"], &file).unwrap();

    let job = stack
        .wait_job(&key, &id, Duration::from_secs(60), |j| {
            j["object"]["etag"].is_string()
        })
        .await;
    assert_eq!(job["object"]["key"], object_key.as_str());
    assert_eq!(job["object"]["size"], content.len());
    assert_eq!(job["object"]["etag"], md5_hex(&content).as_str());
    assert_ne!(job["state"], "awaiting_upload");
    let job = stack
        .wait_finished(&key, &id, Duration::from_secs(60))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["counts"]["rows_read"], 1);
    std::fs::remove_dir_all(dir).ok();
}

/// The upload URL allows exactly the declared size: a file of another size
/// never lands, and the job waits for the right one (or expires).
#[tokio::test]
async fn an_upload_of_another_size_than_declared_is_refused() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let file = std::env::temp_dir().join(format!("xlport-e2e-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(&file, b"CPF;PRIVATE\n1;2\n").unwrap();
    let (_, job) = stack
        .call(
            Method::POST,
            "/imports",
            Some(&key),
            Some(json!({"dataset": "user_purchase", "filename": "x.csv", "size": 5})),
        )
        .await;
    // The URL is signed for 5 bytes: S3 refuses the 16 (issue #15). A file
    // of another size that reaches the bucket some other way fails its job
    // in the worker and is deleted (import.rs,
    // refused_and_orphaned_uploads_are_deleted).
    let refused = xlport_tests::curl_upload_plan(&job["upload"], &file)
        .expect_err("S3 refuses a body of another size than the URL allows");
    assert!(
        refused.to_string().contains("SignatureDoesNotMatch"),
        "{refused}"
    );
    let id = job["id"].as_str().unwrap();
    let (_, job) = stack
        .call(Method::GET, &format!("/jobs/{id}"), Some(&key), None)
        .await;
    assert_eq!(job["state"], "awaiting_upload", "{job}");
    assert!(job["object"]["size"].is_null(), "{job}");
    std::fs::remove_file(file).ok();
}

fn sqs_event(bodies: &[(&str, &str)]) -> SqsEvent {
    let records: Vec<_> = bodies
        .iter()
        .map(|(id, body)| json!({"messageId": id, "receiptHandle": "rh", "body": body, "eventSource": "aws:sqs"}))
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// The function itself: the test event succeeds (and is deleted), garbage is
/// reported as a batch item failure, and only it.
#[tokio::test]
async fn import_worker_ignores_the_test_event_and_reports_only_bad_records() {
    let (deps, _db) = deps_with_fresh_db().await;
    let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-23T10:00:00.000Z","Bucket":"xlport-test"}"#;
    let unknown_key = json!({"Records": [{"eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "xlport-test"}, "object": {"key": "somewhere/else.csv", "size": 3, "eTag": "x"}}}]})
    .to_string();
    let response = import_worker::handle_batch(
        &deps,
        sqs_event(&[
            ("t", test_event),
            ("g", "this is not JSON"),
            ("u", &unknown_key),
        ]),
    )
    .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["g"]);
}

/// Through the real queue and mapping: a record the worker keeps failing
/// comes back after the visibility timeout and, after maxReceiveCount
/// receives, lands in the dead-letter queue. The S3 test event never does.
#[tokio::test]
async fn a_poison_message_is_retried_then_dead_lettered_and_the_test_event_is_not() {
    let stack = Stack::connect().await;
    let config = &stack.deps.config;
    let sqs = &stack.deps.queue.client;
    let marker = uuid::Uuid::new_v4().to_string();
    let dlq_url = format!("{}-dlq", config.imports_queue_url);
    let poison = format!("poison {marker}");
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "xlport-test", "RequestId": marker}).to_string();
    for body in [&poison, &test_event] {
        sqs.send_message()
            .queue_url(&config.imports_queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let start = Instant::now();
    let mut dead = Vec::new();
    while start.elapsed() < Duration::from_secs(90) {
        let out = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .visibility_timeout(1)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            if m.body().unwrap_or_default().contains(&marker) {
                sqs.delete_message()
                    .queue_url(&dlq_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                dead.push(m);
            }
        }
        if dead.iter().any(|m| m.body() == Some(poison.as_str())) {
            break;
        }
    }
    let bodies: Vec<_> = dead.iter().map(|m| m.body().unwrap_or_default()).collect();
    assert_eq!(
        bodies,
        [poison.as_str()],
        "only the poison message is dead-lettered"
    );
    // It was delivered to the function maxReceiveCount (3) times before the
    // redrive policy moved it.
    let receives: u32 = dead[0]
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(receives >= 3, "received {receives} times before the DLQ");
}

/// The admin binary is also the `migrate` Lambda function Terraform invokes
/// on deploy: through the local runtime, as AWS would call it.
#[tokio::test]
async fn the_admin_function_migrates_and_creates_keys_as_a_lambda() {
    let stack = Stack::connect().await;
    let invoke = format!(
        "{}/2015-03-31/functions/xlport-admin/invocations",
        stack.api.trim_end_matches("/lambda-url/api")
    );
    let migrated: serde_json::Value = stack
        .http
        .post(&invoke)
        .json(&json!({"command": "migrate"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(migrated["ok"], true, "{migrated}");
    assert!(migrated["migrations_applied"].as_u64().unwrap() >= 3);
    let created: serde_json::Value = stack
        .http
        .post(&invoke)
        .json(&json!({"command": "create-key", "name": "from lambda"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().expect("a key");
    let (status, _) = stack.call(Method::GET, "/jobs", Some(key), None).await;
    assert_eq!(status, 200);
    let bad = stack
        .http
        .post(&invoke)
        .json(&json!({"command": "drop-everything"}))
        .send()
        .await
        .unwrap();
    let text = bad.text().await.unwrap();
    assert!(text.contains("unknown command"), "{text}");
}

/// Issue #15, faults 1 and 8: LocalStack runs with S3 signature validation
/// (`S3_SKIP_SIGNATURE_VALIDATION=0`, localstack/start.sh), so the tests can
/// tell a broken presigned URL from a good one: a URL whose key, signature
/// or expiry was changed, and an expired URL, are refused with 403, as S3
/// refuses them. The upload URL allows exactly the declared size (a signed
/// `Content-Length`) and one PUT (a signed `If-None-Match: *`): a body of
/// another size is refused, and so is a second PUT to the same URL.
#[tokio::test]
async fn presigned_upload_urls_allow_one_put_of_the_declared_size_and_nothing_else() {
    use xlport_core::ports::ObjectStore;
    let (deps, _db) = deps_with_fresh_db().await;
    // Outside imports/, so no S3 event goes to the workers.
    let key = format!("signature-tests/{}/file.csv", uuid::Uuid::new_v4());
    let http = reqwest::Client::new();
    let body = "CPF\n";
    let put = |url: String, headers: Vec<(String, String)>, body: &'static str| {
        let http = http.clone();
        async move {
            let mut req = http.put(url).body(body);
            for (k, v) in headers {
                if !k.eq_ignore_ascii_case("content-length") {
                    req = req.header(k, v);
                }
            }
            req.send().await.expect("PUT").status().as_u16()
        }
    };
    let good = deps
        .objects
        .presign_put(&key, body.len() as u64, Duration::from_secs(300))
        .await
        .unwrap();
    let signed: Vec<String> = good.headers.iter().map(|(k, _)| k.to_lowercase()).collect();
    assert!(signed.contains(&"if-none-match".to_string()), "{signed:?}");
    assert!(good.url.contains("content-length"), "{}", good.url);
    let h = || good.headers.clone();
    let signature_at = good.url.find("X-Amz-Signature=").expect("a SigV4 URL") + 16;
    let mut forged = good.url.clone();
    let flipped = if forged.as_bytes()[signature_at] == b'0' {
        "1"
    } else {
        "0"
    };
    forged.replace_range(signature_at..signature_at + 1, flipped);
    let other_key = good.url.replacen("file.csv", "other.csv", 1);
    let longer = good
        .url
        .replacen("X-Amz-Expires=300", "X-Amz-Expires=604800", 1);
    assert_eq!(put(forged, h(), body).await, 403, "a forged signature");
    assert_eq!(
        put(other_key, h(), body).await,
        403,
        "another key under the same signature"
    );
    assert_eq!(
        put(longer, h(), body).await,
        403,
        "a longer expiry under the same signature"
    );
    assert_eq!(
        put(good.url.clone(), h(), "CPF;PRIVATE\n").await,
        403,
        "a body of another size"
    );
    assert_eq!(
        put(good.url.clone(), Vec::new(), body).await,
        403,
        "without the signed If-None-Match"
    );
    // (An unsigned PUT is not tried: LocalStack's community edition enforces
    // no IAM or bucket policy on anonymous requests, so it passes here,
    // though S3 refuses it for a private bucket.)

    let short = deps
        .objects
        .presign_put(&key, body.len() as u64, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        put(short.url, short.headers, body).await,
        403,
        "an expired URL"
    );
    // None of them wrote anything; the good URL works once.
    assert!(deps.objects.head(&key).await.is_err());
    assert_eq!(put(good.url.clone(), h(), body).await, 200, "the good URL");
    assert!(deps.objects.head(&key).await.is_ok());
    assert_eq!(
        put(good.url.clone(), h(), "XYZ\n").await,
        412,
        "the same URL again"
    );
    let kept = deps.objects.head(&key).await.unwrap();
    assert_eq!(kept.size, body.len() as u64, "the first file stays");
}

/// Keys limited to datasets and to a kind of job, stored in Postgres and
/// enforced by the API function on the stack (docs/spec/datasets.md, "Access").
#[tokio::test]
async fn a_limited_key_sees_and_does_only_what_it_may() {
    use xlport_core::job::Access;
    let stack = Stack::connect().await;
    let (_, elsewhere) = stack
        .deps
        .jobs
        .create_api_key_with(
            "limited to another dataset",
            &Access {
                datasets: Some(vec!["orders".into()]),
                import: true,
                export: true,
            },
        )
        .await
        .unwrap();
    let (status, list) = stack
        .call(Method::GET, "/datasets", Some(&elsewhere), None)
        .await;
    assert_eq!((status, list), (200, json!([])));
    let (status, resp) = stack
        .call(
            Method::POST,
            "/exports",
            Some(&elsewhere),
            Some(json!({"dataset": "user_purchase"})),
        )
        .await;
    assert_eq!(status, 404, "{resp}");

    let (_, importer) = stack
        .deps
        .jobs
        .create_api_key_with(
            "imports only",
            &Access {
                datasets: None,
                import: true,
                export: false,
            },
        )
        .await
        .unwrap();
    let (status, resp) = stack
        .call(
            Method::POST,
            "/exports",
            Some(&importer),
            Some(json!({"dataset": "user_purchase"})),
        )
        .await;
    assert_eq!(
        (status, &resp["code"]),
        (403, &json!("forbidden")),
        "{resp}"
    );
    let (status, list) = stack
        .call(Method::GET, "/datasets", Some(&importer), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["name"], "user_purchase");
}
