//! Adapters: the core's ports on S3, SQS and Postgres, the typed configuration
//! and the shared wiring every function binary starts with.

pub mod aws;
pub mod config;
pub mod imports;
pub mod pgcopy;
pub mod postgres;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod sweep;
pub mod telemetry;
pub mod worker;

pub use config::Config;

use std::sync::Arc;

use xlport_core::Datasets;

/// The ports as deployed: Postgres, S3 and SQS.
#[derive(Debug, Clone, Copy)]
pub struct Deployed;

impl xlport_core::ports::Ports for Deployed {
    type Jobs = postgres::PgStore;
    type Objects = s3::S3Store;
    type Queue = sqs::SqsQueue;
}

/// Everything a function needs, built once per cold start.
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub datasets: Arc<Datasets>,
    pub db: postgres::PgStore,
    pub s3: s3::S3Store,
    pub sqs: sqs::SqsQueue,
}

impl Deps {
    pub async fn from_config(mut config: Config) -> anyhow::Result<Self> {
        let sdk = aws::sdk_config(&config).await;
        secrets::resolve_database_url(&mut config, &sdk).await?;
        Self::with_sdk(config, &sdk).await
    }

    /// As [`Deps::from_config`], for a configuration whose database URL is
    /// already resolved.
    pub async fn from_resolved_config(config: Config) -> anyhow::Result<Self> {
        let sdk = aws::sdk_config(&config).await;
        Self::with_sdk(config, &sdk).await
    }

    async fn with_sdk(config: Config, sdk: &aws_config::SdkConfig) -> anyhow::Result<Self> {
        let datasets = Datasets::load(config.datasets_file.as_deref())?;
        let pool = postgres::connect(&config).await?;
        Ok(Deps {
            s3: s3::S3Store::new(aws::s3_client(sdk, &config), config.bucket.clone()),
            sqs: sqs::SqsQueue::new(aws::sqs_client(sdk)),
            db: postgres::PgStore::new(pool),
            datasets: Arc::new(datasets),
            config: Arc::new(config),
        })
    }

    pub async fn from_env() -> anyhow::Result<Self> {
        Self::from_config(Config::from_env()?).await
    }
}
