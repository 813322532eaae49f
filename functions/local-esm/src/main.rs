//! Local SQS event-source mapping.
//!
//! LocalStack's own Lambda service needs Docker, which these machines lack, so
//! this process does what AWS's event-source mapping does for an SQS trigger:
//! long-poll the queue, hand batches to the function (here through
//! `cargo lambda watch`'s invoke endpoint) as real `SqsEvent` payloads, delete
//! the records the function did not report in `batchItemFailures`, and leave
//! the rest to reappear after the visibility timeout. Moving a message to the
//! DLQ after maxReceiveCount is the queue's redrive policy, as on AWS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use xlport_adapters::sqs::SqsQueue;
use xlport_adapters::{Config, aws};
use xlport_core::lifecycle::retry_backoff;

#[derive(Parser, Debug, Clone)]
#[command(
    version,
    about = "Invoke local Lambda functions from SQS queues, as AWS event-source mappings do"
)]
struct Args {
    /// Base URL of the Lambda invoke API (cargo lambda watch).
    #[arg(
        long,
        env = "XLPORT_INVOKE_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    invoke_endpoint: String,
    /// QUEUE=FUNCTION pairs: queue name or URL, and the function to invoke.
    #[arg(long = "map", required = true, value_parser = parse_mapping)]
    mappings: Vec<(String, String)>,
    /// Records per invocation (AWS: BatchSize).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
    batch_size: i32,
    /// Invocations in flight per mapping (AWS: ScalingConfig.MaximumConcurrency).
    #[arg(long, default_value_t = 4)]
    max_concurrency: usize,
    /// Long-poll wait per ReceiveMessage call, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=20))]
    wait_seconds: i32,
    /// Longest an invocation may take before it counts as failed, in
    /// seconds: the functions' timeout (AWS Lambda's maximum, 900 s, as in
    /// infra/). An invocation `cargo lambda watch` lost ends here at the
    /// latest; its job is re-driven sooner by the sweep.
    #[arg(long, env = "XLPORT_INVOKE_TIMEOUT", default_value_t = 900)]
    invoke_timeout_secs: u64,
    /// Every this many seconds, send again the jobs that have waited for a
    /// worker longer than XLPORT_STALL_SECS (a lost event, message or
    /// invocation; see xlport_adapters::sweep). 0 turns it off.
    #[arg(long, default_value_t = 10)]
    sweep_every_secs: u64,
}

fn parse_mapping(s: &str) -> Result<(String, String), String> {
    let (q, f) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not QUEUE=FUNCTION"))?;
    if q.is_empty() || f.is_empty() {
        return Err(format!("`{s}` is not QUEUE=FUNCTION"));
    }
    Ok((q.to_string(), f.to_string()))
}

struct Mapping {
    queue_url: String,
    queue_arn: String,
    function: String,
    /// Receipt handles of the messages received and not yet deleted or
    /// released, by message id.
    held: Mutex<HashMap<String, String>>,
}

impl Mapping {
    fn hold(&self, messages: &[Message]) {
        if let Ok(mut held) = self.held.lock() {
            for m in messages {
                if let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) {
                    held.insert(id.to_string(), receipt.to_string());
                }
            }
        }
    }

    fn let_go(&self, messages: &[Message]) {
        if let Ok(mut held) = self.held.lock() {
            for m in messages {
                if let Some(id) = m.message_id() {
                    held.remove(id);
                }
            }
        }
    }

    fn held(&self) -> Vec<(String, String)> {
        self.held
            .lock()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    xlport_adapters::telemetry::init();
    let args = Args::parse();
    let config = Config::from_env()?;
    let sdk = aws::sdk_config(&config).await;
    let sqs = aws::sqs_client(&sdk);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.invoke_timeout_secs))
        .build()?;

    let mut tasks = JoinSet::new();
    if args.sweep_every_secs > 0 {
        let deps = xlport_adapters::Deps::from_config(config.clone()).await?;
        let every = Duration::from_secs(args.sweep_every_secs);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match xlport_adapters::sweep::sweep(&deps, deps.config.stall).await {
                    Ok(swept) if !swept.redriven.is_empty() || !swept.expired.is_empty() => {
                        tracing::warn!(redriven = ?swept.redriven, expired = ?swept.expired, "stalled jobs sent again, expired uploads failed");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = format!("{e:#}"), "sweep failed"),
                }
            }
        });
    }
    let mut mappings = Vec::new();
    for (queue, function) in &args.mappings {
        let mapping = Arc::new(resolve(&sqs, queue, function, &config.region).await?);
        tracing::info!(queue = %mapping.queue_url, function = %mapping.function, "mapping started");
        tasks.spawn(poll(
            sqs.clone(),
            http.clone(),
            args.clone(),
            mapping.clone(),
        ));
        mappings.push(mapping);
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
        Some(done) = tasks.join_next() => done.map_err(anyhow::Error::from).and_then(|r| r),
    };
    tracing::info!("stopping: releasing the messages still held");
    for mapping in &mappings {
        release(&sqs, mapping, mapping.held(), Duration::ZERO).await;
    }
    outcome
}

/// Makes `messages` (id, receipt handle) visible again after `after`.
async fn release(
    sqs: &aws_sdk_sqs::Client,
    mapping: &Mapping,
    messages: Vec<(String, String)>,
    after: Duration,
) {
    let queue = SqsQueue::new(sqs.clone(), Vec::new());
    for (id, receipt) in messages {
        match queue
            .set_visibility(&mapping.queue_url, &receipt, after)
            .await
        {
            Ok(()) => {
                tracing::info!(message = %id, after_secs = after.as_secs(), "message released")
            }
            // The message was deleted or received again meanwhile: nothing to release.
            Err(e) => {
                tracing::debug!(message = %id, error = %e, "release failed")
            }
        }
    }
}

async fn resolve(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    function: &str,
    region: &str,
) -> anyhow::Result<Mapping> {
    let queue_url = if queue.starts_with("http") {
        queue.to_string()
    } else {
        sqs.get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .with_context(|| format!("queue `{queue}` not found (did localstack/init run?)"))?
            .queue_url()
            .unwrap_or_default()
            .to_string()
    };
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("cannot read attributes of {queue_url}"))?;
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_else(|| format!("arn:aws:sqs:{region}:000000000000:{queue}"));
    Ok(Mapping {
        queue_url,
        queue_arn,
        function: function.to_string(),
        held: Mutex::new(HashMap::new()),
    })
}

async fn poll(
    sqs: aws_sdk_sqs::Client,
    http: reqwest::Client,
    args: Args,
    mapping: Arc<Mapping>,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(args.max_concurrency.max(1)));
    loop {
        let permit = slots.clone().acquire_owned().await?;
        let received = sqs
            .receive_message()
            .queue_url(&mapping.queue_url)
            .max_number_of_messages(args.batch_size)
            .wait_time_seconds(args.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(queue = %mapping.queue_url, error = %aws::error_chain(&e), "receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        mapping.hold(&messages);
        let (sqs, http, endpoint, mapping) = (
            sqs.clone(),
            http.clone(),
            args.invoke_endpoint.clone(),
            mapping.clone(),
        );
        tokio::spawn(async move {
            deliver(&sqs, &http, &endpoint, &mapping, messages).await;
            drop(permit);
        });
    }
}

/// Invokes the function with one batch and deletes what succeeded.
async fn deliver(
    sqs: &aws_sdk_sqs::Client,
    http: &reqwest::Client,
    endpoint: &str,
    mapping: &Mapping,
    messages: Vec<Message>,
) {
    let event = sqs_event(&messages, &mapping.queue_arn);
    let ids: Vec<String> = messages
        .iter()
        .map(|m| m.message_id().unwrap_or_default().to_string())
        .collect();
    let failed = match invoke(http, endpoint, &mapping.function, &event).await {
        Ok(response) => match failed_ids(&response, &ids) {
            Ok(failed) => failed,
            Err(e) => {
                tracing::warn!(function = %mapping.function, error = %e, "bad batch response; the whole batch will be retried");
                ids.clone()
            }
        },
        Err(e) => {
            // No answer we can read: retried after the same backoff a
            // worker asks for, not after the whole visibility timeout.
            let receives = messages
                .iter()
                .filter_map(|m| {
                    m.attributes()?
                        .get(&MessageSystemAttributeName::ApproximateReceiveCount)?
                        .parse::<u32>()
                        .ok()
                })
                .max()
                .unwrap_or(1);
            let after = retry_backoff(receives);
            tracing::warn!(function = %mapping.function, error = format!("{e:#}"), records = ids.len(), retry_in_secs = after.as_secs(), "invocation failed; the whole batch will be retried");
            let held = messages
                .iter()
                .filter_map(|m| {
                    Some((m.message_id()?.to_string(), m.receipt_handle()?.to_string()))
                })
                .collect();
            release(sqs, mapping, held, after).await;
            mapping.let_go(&messages);
            return;
        }
    };
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .ok()
        })
        .collect();
    tracing::info!(
        function = %mapping.function,
        records = messages.len(),
        failed = failed.len(),
        "batch delivered"
    );
    // What the function reported failed keeps the visibility it set.
    mapping.let_go(&messages);
    if entries.is_empty() {
        return;
    }
    if let Err(e) = sqs
        .delete_message_batch()
        .queue_url(&mapping.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        tracing::warn!(error = %aws::error_chain(&e), "deleting processed records failed; they will be redelivered");
    }
}

async fn invoke(
    http: &reqwest::Client,
    endpoint: &str,
    function: &str,
    event: &Value,
) -> anyhow::Result<Value> {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        endpoint.trim_end_matches('/')
    );
    let resp = http
        .post(&url)
        .json(event)
        .send()
        .await
        .context("invoke request")?;
    let status = resp.status();
    let function_error = resp
        .headers()
        .get("x-amz-function-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.text().await.context("invoke response body")?;
    if !status.is_success() {
        bail!("function returned HTTP {status}: {}", truncate(&body));
    }
    if let Some(kind) = function_error {
        bail!("function error ({kind}): {}", truncate(&body));
    }
    let value: Value = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body)
            .with_context(|| format!("response is not JSON: {}", truncate(&body)))?
    };
    if value.get("errorType").is_some() || value.get("errorMessage").is_some() {
        bail!("function error: {}", truncate(&body));
    }
    Ok(value)
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(500).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// The records to leave on the queue, following AWS's rules: a null or empty
/// response means all succeeded; an identifier that is empty or not in the
/// batch fails the whole batch.
fn failed_ids(response: &Value, batch: &[String]) -> Result<Vec<String>, String> {
    let Some(failures) = response.get("batchItemFailures") else {
        return Ok(Vec::new());
    };
    let failures = match failures {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => return Err(format!("batchItemFailures is not a list: {other}")),
    };
    let mut out = Vec::with_capacity(failures.len());
    for f in failures {
        match f.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if batch.iter().any(|b| b == id) => out.push(id.to_string()),
            other => return Err(format!("unknown itemIdentifier {other:?}")),
        }
    }
    Ok(out)
}

/// The event AWS Lambda receives from an SQS event-source mapping.
fn sqs_event(messages: &[Message], queue_arn: &str) -> Value {
    let region = queue_arn.split(':').nth(3).unwrap_or("us-east-1");
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: HashMap<String, String> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let message_attributes: serde_json::Map<String, Value> = m
                .message_attributes()
                .map(|attrs| {
                    attrs
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                json!({
                                    "stringValue": v.string_value(),
                                    "binaryValue": Value::Null,
                                    "stringListValues": [],
                                    "binaryListValues": [],
                                    "dataType": v.data_type(),
                                }),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn empty_or_null_response_means_all_succeeded() {
        assert_eq!(failed_ids(&Value::Null, &batch()), Ok(vec![]));
        assert_eq!(
            failed_ids(&json!({"batchItemFailures": []}), &batch()),
            Ok(vec![])
        );
        assert_eq!(
            failed_ids(&json!({"batchItemFailures": null}), &batch()),
            Ok(vec![])
        );
    }

    #[test]
    fn reported_failures_stay_on_the_queue() {
        let r = json!({"batchItemFailures": [{"itemIdentifier": "b"}]});
        assert_eq!(failed_ids(&r, &batch()), Ok(vec!["b".to_string()]));
    }

    #[test]
    fn unknown_or_empty_identifier_fails_the_batch() {
        for bad in [
            json!({"itemIdentifier": "zzz"}),
            json!({"itemIdentifier": ""}),
            json!({}),
        ] {
            let r = json!({"batchItemFailures": [bad]});
            assert!(failed_ids(&r, &batch()).is_err());
        }
    }

    #[test]
    fn event_has_the_aws_shape() {
        let m = Message::builder()
            .message_id("id-1")
            .receipt_handle("rh")
            .body("{}")
            .md5_of_body("99914b932bd37a50b983c5e7c90ae93b")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let e = sqs_event(&[m], "arn:aws:sqs:eu-west-1:000000000000:xlport-imports");
        let r = &e["Records"][0];
        assert_eq!(r["messageId"], "id-1");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "2");
        let parsed: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.records[0].body.as_deref(), Some("{}"));
    }

    #[test]
    fn mapping_argument() {
        assert_eq!(parse_mapping("q=f"), Ok(("q".into(), "f".into())));
        assert!(parse_mapping("q").is_err());
        assert!(parse_mapping("=f").is_err());
    }
}
