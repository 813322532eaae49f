//! `GET /health`: each dependency's state, without a key.

use std::time::Duration;

use lambda_http::{Body, Response};
use xlport_contract::{Check, Health, HealthChecks, HealthStatus};
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
        let checks = HealthChecks {
            postgres: check("postgres", pg),
            s3: check("s3", s3),
            sqs_imports: check("sqs_imports", imports),
            sqs_exports: check("sqs_exports", exports),
        };
        let ok = checks.all_ok();
        json_response(
            if ok { 200 } else { 503 },
            &Health {
                status: if ok {
                    HealthStatus::Ok
                } else {
                    HealthStatus::Degraded
                },
                checks,
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
        )
    }
}

fn check<E: std::fmt::Display>(
    name: &str,
    r: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> Check {
    let failed = |why: String| Check {
        ok: false,
        error: Some(why),
    };
    match r {
        Ok(Ok(())) => Check {
            ok: true,
            error: None,
        },
        Ok(Err(e)) => {
            tracing::error!(dependency = name, error = %e, "health check failed");
            failed("unreachable".into())
        }
        Err(_) => failed(format!("timed out after {} s", TIMEOUT.as_secs())),
    }
}
