//! The export function: SQS batches in, through [`export_worker::handle_batch`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    xlport_adapters::worker::serve_sqs(|deps, event| {
        Box::pin(async move { export_worker::handle_batch(&deps, event).await })
    })
    .await
}
