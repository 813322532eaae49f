//! `GET /health`: each dependency's state, without a key.

use std::time::Duration;

use lambda_http::{Body, Response};
use serde_json::{Value, json};
use xlport_core::ports::{JobQueue, JobStore, ObjectStore, Ports};

use crate::{App, json_response};

/// How long each dependency gets to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

impl<P: Ports> App<P> {
    /// Reports each dependency; 503 when any is down, so load balancers and
    /// scripts can wait on it. The endpoint needs no key, so a failure says
    /// only "unreachable" or "timed out": the error itself goes to the log.
    pub(crate) async fn health(&self) -> Response<Body> {
        let (pg, s3, imports, exports) = tokio::join!(
            tokio::time::timeout(TIMEOUT, self.jobs.ping()),
            tokio::time::timeout(TIMEOUT, self.objects.ping()),
            tokio::time::timeout(TIMEOUT, self.queue.ping(&self.config.imports_queue_url)),
            tokio::time::timeout(TIMEOUT, self.queue.ping(&self.config.exports_queue_url)),
        );
        let checks = json!({
            "postgres": check("postgres", pg),
            "s3": check("s3", s3),
            "sqs_imports": check("sqs_imports", imports),
            "sqs_exports": check("sqs_exports", exports),
        });
        let ok = checks
            .as_object()
            .is_some_and(|m| m.values().all(|v| v["ok"] == json!(true)));
        json_response(
            if ok { 200 } else { 503 },
            &json!({"status": if ok { "ok" } else { "degraded" }, "checks": checks, "version": env!("CARGO_PKG_VERSION")}),
        )
    }
}

fn check<E: std::fmt::Display>(
    name: &str,
    r: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> Value {
    match r {
        Ok(Ok(())) => json!({"ok": true}),
        Ok(Err(e)) => {
            tracing::error!(dependency = name, error = %e, "health check failed");
            json!({"ok": false, "error": "unreachable"})
        }
        Err(_) => json!({"ok": false, "error": format!("timed out after {} s", TIMEOUT.as_secs())}),
    }
}
