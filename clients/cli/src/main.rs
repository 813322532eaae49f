//! `xlport`: export and import spreadsheets through the xlport API from a
//! terminal. It talks only to the public API and to presigned S3 URLs.

mod api;
mod commands;
mod error;
mod jobs;
mod transfer;
mod ui;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use xlport_contract::{ConflictPolicy, ExportFormat};

use crate::api::Api;
use crate::commands::{Ctx, ExportArgs, ImportArgs, Outcome};
use crate::error::{CliError, CliResult};
use crate::transfer::{RateLimit, Transfers, parse_rate};
use crate::ui::Ui;

const EXIT_CODES: &str = "Exit codes: 0 done; 1 the job failed (or a transfer did); \
2 usage or configuration error (bad arguments or file, API unreachable, key refused); \
3 done, with rejected rows.";

/// Export and import spreadsheets (xlsx, csv) to and from Postgres through xlport.
#[derive(Parser)]
#[command(name = "xlport", version, after_help = EXIT_CODES)]
struct Cli {
    /// The API's base URL. Defaults to the local stack's (scripts/up prints it).
    #[arg(long, env = "XLPORT_API", global = true)]
    api: Option<String>,
    /// The API key. Defaults to the local stack's key.
    #[arg(long, env = "XLPORT_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print exactly one JSON object on stdout (the job as the API returns it,
    /// a list for `jobs` and `datasets`, or `{"error": …}`) and nothing else.
    #[arg(long, global = true)]
    json: bool,
    /// No notes on stderr (errors still show).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Retries of each upload part or download after a network error or a 5xx.
    #[arg(long, default_value_t = 5, global = true)]
    retries: u32,
    /// Cap on transfer speed in bytes per second, e.g. 500k, 20M.
    #[arg(long, value_parser = parse_rate, global = true)]
    limit_rate: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Export a dataset to a file: waits for the job, then downloads it.
    Export {
        #[arg(long, default_value = "user_purchase")]
        dataset: String,
        #[arg(long, default_value = ExportFormat::default().as_str(), value_parser = ExportFormat::NAMES)]
        format: String,
        /// CSV dialect: `rfc4180` (`,`, decimal point, ISO dates) or
        /// `excel-br` (`;`, decimal comma, DD/MM/YYYY, CRLF; for Excel and
        /// LibreOffice in Brazilian Portuguese). Implies `--format csv`.
        #[arg(long)]
        csv_dialect: Option<String>,
        /// `name=true|false`, `name=FROM..TO` for dates (either side may be
        /// empty), `name.from=DATE`, or a JSON object. Repeat to combine.
        #[arg(long)]
        filter: Vec<String>,
        /// Where to save the file (default: the export's own name, here).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Start the export and print the job without waiting for it.
        #[arg(long, conflicts_with = "wait")]
        no_wait: bool,
        /// Wait for the job and download the file (the default).
        #[arg(long)]
        wait: bool,
    },
    /// Upload a file (xlsx, csv or the original text format) and import it.
    Import {
        file: PathBuf,
        #[arg(long, default_value = "user_purchase")]
        dataset: String,
        /// What to do with a row whose key is already there.
        #[arg(long, default_value = ConflictPolicy::default().as_str(), value_parser = ConflictPolicy::NAMES)]
        policy: String,
        /// Validate and count everything, write nothing to the table.
        #[arg(long)]
        dry_run: bool,
        /// Print the job once the upload is complete, without waiting for it.
        #[arg(long, conflicts_with = "wait")]
        no_wait: bool,
        /// Wait for the job to finish (the default).
        #[arg(long)]
        wait: bool,
        /// Save the report of rejected rows (xlsx) here.
        #[arg(long, value_name = "FILE")]
        report_out: Option<PathBuf>,
        /// Finish the interrupted upload of job JOB, sending only missing parts.
        #[arg(long, value_name = "JOB")]
        resume: Option<String>,
        /// Parts uploaded at once, for large files.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        parallel: u16,
    },
    /// Show a job (add --wait to follow it until it finishes).
    Status {
        job: String,
        #[arg(long)]
        wait: bool,
    },
    /// Abandon an import whose upload is unfinished (S3 drops its parts).
    Abort { job: String },
    /// The recent jobs of this API key.
    Jobs,
    /// The datasets, their columns and export filters.
    Datasets,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let json = args.iter().any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            if json && e.use_stderr() {
                let err = CliError::Usage(e.to_string().trim().to_string());
                println!("{}", err.to_json());
            } else {
                let _ = e.print();
            }
            return exit_code(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return finish(json, Err(CliError::Io(format!("cannot start: {e}")))),
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(cli) => r,
            _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted(
                ": jobs already started go on; see them with `xlport jobs`".into(),
            )),
        }
    });
    // Do not wait for in-flight requests after Ctrl-C or an error.
    runtime.shutdown_timeout(Duration::from_millis(100));
    finish(json, result)
}

fn finish(json: bool, result: CliResult<Outcome>) -> ExitCode {
    match result {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else {
                print!("{}", out.human);
            }
            exit_code(out.exit_code)
        }
        Err(e) => {
            if json {
                println!("{}", e.to_json());
            } else {
                eprintln!("xlport: {e}");
            }
            exit_code(e.exit_code())
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn run(cli: Cli) -> CliResult<Outcome> {
    let ui = Ui::new(cli.quiet);
    let base = match cli.api.filter(|s| !s.trim().is_empty()) {
        Some(url) => url,
        None => local_stack_file("local-api-url").ok_or_else(|| {
            CliError::Usage(
                "no API URL: pass --api or set XLPORT_API (scripts/up prints the local one)".into(),
            )
        })?,
    };
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "the API URL `{base}` must start with http:// or https://"
        )));
    }
    let token = match cli.token.filter(|s| !s.trim().is_empty()) {
        Some(t) => t,
        None => local_stack_file("local-api-key").ok_or_else(|| {
            CliError::Usage(
                "no API key: pass --token or set XLPORT_TOKEN (scripts/up prints the local one)"
                    .into(),
            )
        })?,
    };
    let http = reqwest::Client::builder()
        .user_agent(concat!("xlport-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| CliError::Usage(format!("cannot set up HTTP: {e}")))?;
    let limit = cli.limit_rate.map(RateLimit::new);
    let mut ctx = Ctx {
        api: Api::new(&base, &token, http.clone()),
        transfers: Transfers::new(http, limit, cli.retries),
        ui,
        parallel: 4,
    };
    match cli.command {
        Command::Export {
            dataset,
            format,
            csv_dialect,
            filter,
            output,
            no_wait,
            wait: _,
        } => {
            commands::export(
                &ctx,
                ExportArgs {
                    dataset,
                    format: if csv_dialect.is_some() {
                        ExportFormat::Csv.as_str().into()
                    } else {
                        format
                    },
                    csv_dialect,
                    filters: filter,
                    output,
                    wait: !no_wait,
                },
            )
            .await
        }
        Command::Import {
            file,
            dataset,
            policy,
            dry_run,
            no_wait,
            wait: _,
            report_out,
            resume,
            parallel,
        } => {
            ctx.parallel = usize::from(parallel);
            commands::import(
                &ctx,
                ImportArgs {
                    file,
                    dataset,
                    policy,
                    dry_run,
                    wait: !no_wait,
                    report_out,
                    resume,
                },
            )
            .await
        }
        Command::Status { job, wait } => commands::status(&ctx, &job, wait).await,
        Command::Abort { job } => commands::abort(&ctx, &job).await,
        Command::Jobs => commands::list_jobs(&ctx).await,
        Command::Datasets => commands::datasets(&ctx).await,
    }
}

/// What the local stack's run command (scripts/up) left in `$XLPORT_HOME`.
fn local_stack_file(name: &str) -> Option<String> {
    let home = std::env::var_os("XLPORT_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|c| c.join("xlport"))
        })?;
    let text = std::fs::read_to_string(home.join(name)).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
