//! The import function: SQS batches in, through [`import_worker::handle_batch`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    xlport_adapters::worker::serve_sqs(|deps, event| {
        Box::pin(async move { import_worker::handle_batch(&deps, event).await })
    })
    .await
}
