use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xlport_adapters::telemetry::init();
    let deps = xlport_adapters::Deps::from_env().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move { Ok::<_, Error>(import_worker::handle_batch(&deps, event.payload).await) }
    }))
    .await
}
