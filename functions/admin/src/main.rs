//! `xlport-admin`: what an operator runs against a deployment's database.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sqlx::migrate::MigrateDatabase;
use xlport_adapters::{Config, postgres};

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
    /// Store a key whose value you choose (idempotent); for the local stack.
    EnsureKey {
        #[arg(long)]
        name: String,
        #[arg(long, env = "XLPORT_ENSURE_KEY", hide_env_values = true)]
        key: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env()?;
    match cli.command {
        Command::Migrate => {
            if !sqlx::Postgres::database_exists(&config.database_url)
                .await
                .context("cannot reach Postgres")?
            {
                sqlx::Postgres::create_database(&config.database_url)
                    .await
                    .context("cannot create the database")?;
                eprintln!("created database");
            }
            let pool = postgres::connect(&config).await?;
            postgres::migrate(&pool).await?;
            eprintln!("migrations applied");
        }
        Command::CreateKey { name, json } => {
            let store = postgres::PgStore::new(postgres::connect(&config).await?);
            let (id, key) = store.create_api_key(&name).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": id.0, "name": name, "key": key})
                );
            } else {
                println!("{key}");
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
