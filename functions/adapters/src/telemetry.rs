//! Structured logs: JSON lines in Lambda (CloudWatch parses them), readable
//! text on a terminal. `RUST_LOG` filters; `XLPORT_LOG_FORMAT=json|text` overrides.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,sqlx=warn")
    });
    let json = match std::env::var("XLPORT_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => {
            std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
                && std::env::var_os("XLPORT_LOCAL_RUNTIME").is_none()
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (tests calling it twice) is harmless: keep the first.
    let _ = if json {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
}
