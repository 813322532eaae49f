//! Adapters: the core's ports on S3, SQS and Postgres, the typed configuration
//! and the shared wiring every function binary starts with.

pub mod aws;
pub mod catalog;
pub mod config;
pub mod imports;
pub mod multipart;
pub mod pgcopy;
pub mod postgres;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod sweep;
pub mod telemetry;
pub mod testing;
pub mod worker;

pub use config::Config;

use std::sync::Arc;

use xlport_core::Datasets;
use xlport_core::ports::Ports;
use xlport_core::ports::memory::{
    InMemory, MemoryJobStore, MemoryObjectStore, MemoryQueue, MemoryTables,
};

/// The ports as deployed: Postgres, S3 and SQS.
#[derive(Debug, Clone, Copy)]
pub struct Deployed;

impl xlport_core::ports::Ports for Deployed {
    type Jobs = postgres::PgStore;
    type Objects = s3::S3Store;
    type Queue = sqs::SqsQueue;
    type Tables = postgres::PgStore;
}

/// Everything a function needs: its settings, the datasets, and the ports
/// `P` (the job store, the bucket, the queues, the dataset tables). The
/// functions build `Deps<Deployed>` once per cold start
/// ([`Deps::from_env`]); tests of the workers build `Deps<InMemory>`
/// ([`Deps::new`]) and need no service.
pub struct Deps<P: Ports = Deployed> {
    pub config: Arc<Config>,
    pub datasets: Arc<Datasets>,
    pub jobs: P::Jobs,
    pub objects: P::Objects,
    pub queue: P::Queue,
    pub tables: P::Tables,
}

impl<P: Ports> Clone for Deps<P> {
    fn clone(&self) -> Self {
        Deps {
            config: self.config.clone(),
            datasets: self.datasets.clone(),
            jobs: self.jobs.clone(),
            objects: self.objects.clone(),
            queue: self.queue.clone(),
            tables: self.tables.clone(),
        }
    }
}

impl<P: Ports> Deps<P> {
    /// Deps over ports built elsewhere (the in-memory ones, in tests).
    pub fn new(
        config: Config,
        datasets: Datasets,
        jobs: P::Jobs,
        objects: P::Objects,
        queue: P::Queue,
        tables: P::Tables,
    ) -> Self {
        Deps {
            config: Arc::new(config),
            datasets: Arc::new(datasets),
            jobs,
            objects,
            queue,
            tables,
        }
    }
}

impl Deps<InMemory> {
    /// Deps on the in-memory ports (`xlport_core::ports::memory`), with the
    /// built-in datasets: the workers run on these in tests with no service.
    /// The tables record imports in the same job store.
    pub fn in_memory(config: Config) -> anyhow::Result<Self> {
        let jobs = MemoryJobStore::new();
        Ok(Deps::new(
            config,
            Datasets::builtin()?,
            jobs.clone(),
            MemoryObjectStore::new(),
            MemoryQueue::new(),
            MemoryTables::new(jobs),
        ))
    }
}

impl Deps<Deployed> {
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
        let db = postgres::PgStore::new(pool);
        Ok(Deps {
            objects: s3::S3Store::new(aws::s3_client(sdk, &config), config.bucket.clone()),
            queue: sqs::SqsQueue::new(
                aws::sqs_client(sdk),
                vec![
                    config.imports_queue_url.clone(),
                    config.exports_queue_url.clone(),
                ],
            ),
            tables: db.clone(),
            jobs: db,
            datasets: Arc::new(datasets),
            config: Arc::new(config),
        })
    }

    pub async fn from_env() -> anyhow::Result<Self> {
        Self::from_config(Config::from_env()?).await
    }
}
