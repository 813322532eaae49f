//! `xlport-admin`: what an operator runs against a deployment's database.
//! The same binary is the `migrate` Lambda function on AWS: started by the
//! Lambda runtime with no arguments, it takes `{"command": "migrate"}` or
//! `{"command": "create-key", "name": "...", "datasets"?: "a,b", "can"?:
//! "import"}` as its event.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use sqlx::migrate::MigrateDatabase;
use xlport_adapters::{Config, aws, postgres, secrets};

#[derive(Parser)]
#[command(
    version,
    about = "xlport operator commands (reads the same environment as the functions)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if it does not exist and apply pending migrations.
    Migrate,
    /// Create an API key and print it once (it is stored hashed).
    CreateKey {
        #[arg(long, default_value = "default")]
        name: String,
        /// Limit the key to these datasets (comma-separated); every dataset
        /// when left out. Any other dataset is, for this key, a 404.
        #[arg(long)]
        datasets: Option<String>,
        /// What the key may do: `import`, `export` or `import,export` (the
        /// default).
        #[arg(long)]
        can: Option<String>,
        /// Print `{"id": ..., "key": ...}` instead of the bare key.
        #[arg(long)]
        json: bool,
    },
    /// Load N deterministic, realistic sample rows into user_purchase (COPY).
    Seed {
        #[arg(long)]
        rows: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Empty the table first.
        #[arg(long)]
        truncate: bool,
    },
    /// Send again every job that has waited for a worker longer than
    /// `--stall-secs` (a lost event or message, a lapsed lease); prints what
    /// it did as JSON. On AWS a schedule runs it (`{"command": "sweep"}`).
    Sweep {
        #[arg(long, env = "XLPORT_STALL_SECS", default_value_t = 120)]
        stall_secs: u64,
    },
    /// Datasets and the tables they name.
    Dataset {
        #[command(subcommand)]
        action: DatasetCommand,
    },
    /// Store a key whose value you choose (idempotent); for the local stack.
    EnsureKey {
        #[arg(long)]
        name: String,
        #[arg(long, env = "XLPORT_ENSURE_KEY", hide_env_values = true)]
        key: String,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Print a dataset declaration for TABLE (`table` or `public.table`)
    /// read from the Postgres catalog: review it, commit it under
    /// `datasets/`, restart (docs/datasets.md).
    Describe {
        table: String,
        /// The dataset's name (default: the table's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Check every dataset this deployment serves (XLPORT_DATASETS_FILE, or
    /// the built-in ones) against its table; prints each mismatch and exits
    /// non-zero when there is one.
    Check,
}

/// The declaration of `table` from the catalog (see `xlport_core::describe`).
async fn describe(config: &Config, table: &str, name: Option<&str>) -> anyhow::Result<String> {
    let pool = postgres::connect(config).await?;
    let shape = xlport_adapters::catalog::table_shape(&pool, table)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no table `{table}` in the database"))?;
    let name = name.unwrap_or_else(|| table.rsplit('.').next().unwrap_or(table));
    Ok(xlport_core::describe::declaration(name, &shape)?)
}

/// Every mismatch between the served datasets and their tables, each line
/// naming its dataset (see `xlport_core::describe::mismatches`).
async fn check(config: &Config) -> anyhow::Result<Vec<String>> {
    let datasets = xlport_core::Datasets::load(config.datasets_file.as_deref())?;
    let pool = postgres::connect(config).await?;
    let mut problems = Vec::new();
    for dataset in datasets.iter() {
        match xlport_adapters::catalog::table_shape(&pool, &dataset.table).await? {
            None => problems.push(format!(
                "dataset `{}`: no table `{}` in the database",
                dataset.name, dataset.table
            )),
            Some(shape) => problems.extend(
                xlport_core::describe::mismatches(dataset, &shape)
                    .into_iter()
                    .map(|p| format!("dataset `{}`: {p}", dataset.name)),
            ),
        }
    }
    Ok(problems)
}

/// The configuration with the database URL resolved (from Secrets Manager on AWS).
async fn config() -> anyhow::Result<Config> {
    let mut config = Config::from_env()?;
    let sdk = aws::sdk_config(&config).await;
    secrets::resolve_database_url(&mut config, &sdk).await?;
    Ok(config)
}

async fn migrate(config: &Config) -> anyhow::Result<usize> {
    if !sqlx::Postgres::database_exists(&config.database_url)
        .await
        .context("cannot reach Postgres")?
    {
        sqlx::Postgres::create_database(&config.database_url)
            .await
            .context("cannot create the database")?;
        eprintln!("created database");
    }
    let pool = postgres::connect(config).await?;
    postgres::migrate(&pool).await?;
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&pool)
        .await?;
    Ok(applied as usize)
}

/// Creates a key limited by `datasets` and `can` (see
/// [`xlport_core::job::Access::parse`]), checked against the datasets this
/// deployment serves.
async fn create_key(
    config: &Config,
    name: &str,
    datasets: Option<&str>,
    can: Option<&str>,
) -> anyhow::Result<Value> {
    let known = xlport_core::Datasets::load(config.datasets_file.as_deref())?;
    let access = xlport_core::job::Access::parse(datasets, can, known.names())
        .map_err(anyhow::Error::msg)?;
    let store = postgres::PgStore::new(postgres::connect(config).await?);
    let (id, key) = store.create_api_key_with(name, &access).await?;
    Ok(json!({
        "id": id.0,
        "name": name,
        "key": key,
        "datasets": access.datasets,
        "can_import": access.import,
        "can_export": access.export,
    }))
}

async fn sweep(config: Config, stall_secs: u64) -> anyhow::Result<Value> {
    let deps = xlport_adapters::Deps::from_resolved_config(config).await?;
    let swept =
        xlport_adapters::sweep::sweep(&deps, std::time::Duration::from_secs(stall_secs)).await?;
    Ok(json!(swept))
}

/// The Lambda handler: one command per invocation.
async fn lambda(event: lambda_runtime::LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let config = config().await?;
    let payload = event.payload;
    match payload.get("command").and_then(Value::as_str) {
        Some("migrate") => Ok(json!({"ok": true, "migrations_applied": migrate(&config).await?})),
        Some("sweep") => {
            let stall = payload
                .get("stall_secs")
                .and_then(Value::as_u64)
                .unwrap_or(config.stall.as_secs());
            Ok(sweep(config, stall).await?)
        }
        Some("create-key") => {
            let text = |field: &str| payload.get(field).and_then(Value::as_str);
            let name = text("name").unwrap_or("default");
            Ok(create_key(&config, name, text("datasets"), text("can")).await?)
        }
        other => Err(format!(
            "unknown command {other:?}: send {{\"command\": \"migrate\"}}, {{\"command\": \"sweep\"}} or {{\"command\": \"create-key\", \"name\": \"...\", \"datasets\"?: \"a,b\", \"can\"?: \"import\"}}"
        )
        .into()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() && std::env::args().len() == 1 {
        xlport_adapters::telemetry::init();
        return lambda_runtime::run(lambda_runtime::service_fn(lambda))
            .await
            .map_err(|e| anyhow::anyhow!(e));
    }
    let cli = Cli::parse();
    let config = config().await?;
    match cli.command {
        Command::Migrate => {
            migrate(&config).await?;
            eprintln!("migrations applied");
        }
        Command::Sweep { stall_secs } => {
            println!("{}", sweep(config, stall_secs).await?);
        }
        Command::CreateKey {
            name,
            datasets,
            can,
            json,
        } => {
            let created = create_key(&config, &name, datasets.as_deref(), can.as_deref()).await?;
            if json {
                println!("{created}");
            } else {
                println!("{}", created["key"].as_str().unwrap_or_default());
            }
        }
        Command::Seed {
            rows,
            seed,
            truncate,
        } => {
            let pool = postgres::connect(&config).await?;
            if truncate {
                sqlx::query("truncate user_purchase").execute(&pool).await?;
            }
            let started = std::time::Instant::now();
            let n = postgres::seed_user_purchase(&pool, rows, seed).await?;
            eprintln!("loaded {n} rows in {:.1}s", started.elapsed().as_secs_f64());
        }
        Command::Dataset {
            action: DatasetCommand::Describe { table, name },
        } => {
            print!("{}", describe(&config, &table, name.as_deref()).await?);
        }
        Command::Dataset {
            action: DatasetCommand::Check,
        } => {
            let problems = check(&config).await?;
            for p in &problems {
                println!("{p}");
            }
            if !problems.is_empty() {
                anyhow::bail!(
                    "{} mismatch(es) between the datasets and their tables",
                    problems.len()
                );
            }
            eprintln!("every dataset matches its table");
        }
        Command::EnsureKey { name, key } => {
            if key.len() < 16 {
                anyhow::bail!("a key must be at least 16 characters");
            }
            let store = postgres::PgStore::new(postgres::connect(&config).await?);
            store.ensure_api_key(&name, &key).await?;
        }
    }
    Ok(())
}
