//! `xlport-bench load`: N users at once, each with its own API key, each
//! exporting the whole table as xlsx, downloading it, and importing it back
//! (upsert), all through the API, presigned S3 URLs, the queues and the
//! workers of a release-build local stack (issue #15). Afterwards the table
//! must be exactly what it was (row count and an MD5 over every column of
//! every row), and no user may have failed.
//!
//! Printed: the single-user time measured in the same run, then for each
//! user count the per-user p50/p95/max, failures, the peak RSS of each
//! function's processes and Postgres's peak connections to the stack's
//! database; the last line is one JSON object.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use xlport_adapters::{Config, Deps, postgres};

use crate::{RssSampler, round};

pub struct Args<'a> {
    pub users: Vec<usize>,
    pub rows: u64,
    pub api: &'a str,
    pub scratch: &'a Path,
}

/// One user's round trip, in seconds.
#[derive(Debug, Clone, Copy)]
struct Trip {
    total_s: f64,
    export_s: f64,
    download_s: f64,
    import_s: f64,
}

pub async fn run(config: &Config, args: Args<'_>) -> anyhow::Result<()> {
    let deps = Deps::from_config(config.clone()).await?;
    let pool = postgres::connect(config).await?;
    let have: i64 = sqlx::query_scalar("select count(*) from user_purchase")
        .fetch_one(&pool)
        .await?;
    if have as u64 != args.rows {
        eprintln!("seeding {} rows", args.rows);
        sqlx::query("truncate user_purchase").execute(&pool).await?;
        postgres::seed_user_purchase(&pool, args.rows, 1).await?;
        sqlx::query("vacuum analyze user_purchase")
            .execute(&pool)
            .await?;
    }
    let before = checksum(&pool).await?;
    eprintln!("table before: {} rows, md5 {}", before.0, before.1);

    let most = args.users.iter().copied().max().unwrap_or(1).max(1);
    let mut keys = Vec::with_capacity(most);
    for i in 0..most {
        keys.push(deps.jobs.create_api_key(&format!("load user {i}")).await?.1);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    std::fs::create_dir_all(args.scratch)?;

    // The single user, alone, in this run.
    let single = round_trip(&http, args.api, &keys[0], args.rows, args.scratch, 0).await?;
    eprintln!(
        "single user: {:.2}s (export {:.2}s, download {:.2}s, import {:.2}s)",
        single.total_s, single.export_s, single.download_s, single.import_s
    );

    let mut last = Value::Null;
    for &users in &args.users {
        let samplers = [
            ("api", RssSampler::start("/api")),
            ("export-worker", RssSampler::start("/export-worker")),
            ("import-worker", RssSampler::start("/import-worker")),
        ];
        let connections = ConnectionSampler::start(config).await?;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (user, key) in keys.iter().take(users).enumerate() {
            let (http, api, key, scratch) = (
                http.clone(),
                args.api.to_string(),
                key.clone(),
                args.scratch.to_path_buf(),
            );
            let rows = args.rows;
            tasks.spawn(async move {
                round_trip(&http, &api, &key, rows, &scratch, user + 1)
                    .await
                    .map_err(|e| format!("user {}: {e:#}", user + 1))
            });
        }
        let mut trips = Vec::new();
        let mut failures = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(trip)) => trips.push(trip),
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(format!("a user task panicked: {e}")),
            }
        }
        let wall_s = started.elapsed().as_secs_f64();
        let peak_pg_connections = connections.stop().await;
        let mut peak_rss = serde_json::Map::new();
        for (name, sampler) in samplers {
            peak_rss.insert(name.into(), json!(round(sampler.stop().await)));
        }
        for f in &failures {
            eprintln!("FAILED {f}");
        }
        let after = checksum(&pool).await?;
        let table_unchanged = after == before;
        let mut totals: Vec<f64> = trips.iter().map(|t| t.total_s).collect();
        totals.sort_by(f64::total_cmp);
        let pick = |q: f64| percentile(&totals, q);
        let phase_p50 = |f: fn(&Trip) -> f64| {
            let mut v: Vec<f64> = trips.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            round(percentile(&v, 0.5))
        };
        eprintln!(
            "{users} users: p50 {:.2}s, p95 {:.2}s, max {:.2}s, wall {wall_s:.2}s, failures {}, \
             table unchanged {table_unchanged}, peak Postgres connections {peak_pg_connections}, \
             peak RSS MB {}",
            pick(0.5),
            pick(0.95),
            pick(1.0),
            failures.len(),
            Value::Object(peak_rss.clone())
        );
        last = json!({
            "bench": "load",
            "users": users,
            "rows": args.rows,
            "failures": failures.len(),
            "p50_s": round(pick(0.5)),
            "p95_s": round(pick(0.95)),
            "max_s": round(pick(1.0)),
            "wall_s": round(wall_s),
            "phases_p50_s": {
                "export": phase_p50(|t| t.export_s),
                "download": phase_p50(|t| t.download_s),
                "import": phase_p50(|t| t.import_s),
            },
            "single_user_s": round(single.total_s),
            "ratio_p95_vs_single": round(pick(0.95) / single.total_s),
            "table_unchanged": table_unchanged,
            "rows_after": after.0,
            "peak_pg_connections": peak_pg_connections,
            "peak_rss_mb": peak_rss,
        });
        println!("{last}");
    }
    if last["failures"].as_u64() != Some(0) || last["table_unchanged"] != json!(true) {
        bail!("the load run lost, changed or failed something: {last}");
    }
    Ok(())
}

/// Export → download → import back, as one user; checks the counts.
async fn round_trip(
    http: &reqwest::Client,
    api: &str,
    key: &str,
    rows: u64,
    scratch: &Path,
    user: usize,
) -> anyhow::Result<Trip> {
    let started = Instant::now();
    let id = crate::start_export(http, api, key).await?;
    let export = poll(http, api, key, &id).await?;
    if export["counts"]["rows"].as_u64() != Some(rows) {
        bail!(
            "export {id} wrote {} rows, not {rows}",
            export["counts"]["rows"]
        );
    }
    let export_s = started.elapsed().as_secs_f64();

    let file: PathBuf = scratch.join(format!("load-user-{user}.xlsx"));
    let url = export["download_url"].as_str().context("download_url")?;
    let mut resp = http.get(url).send().await?.error_for_status()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        bytes.extend_from_slice(&chunk);
    }
    tokio::fs::write(&file, &bytes).await?;
    let download_s = started.elapsed().as_secs_f64() - export_s;

    let import: Value = http
        .post(format!("{api}/imports"))
        .bearer_auth(key)
        .json(
            &json!({"dataset": "user_purchase", "filename": format!("load-user-{user}.xlsx"),
            "size": bytes.len(), "conflict_policy": "upsert"}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if import["upload"]["type"] != "single" {
        bail!("the load stack should hand out single PUTs (XLPORT_MULTIPART_THRESHOLD_BYTES)");
    }
    let import_id = import["id"].as_str().context("import id")?.to_string();
    crate::signed_put(http, &import["upload"])?
        .body(bytes)
        .send()
        .await?
        .error_for_status()?;
    let import = poll(http, api, key, &import_id).await?;
    let counts = &import["counts"];
    if counts["rows_read"].as_u64() != Some(rows)
        || counts["rejected"].as_u64() != Some(0)
        || counts["inserted"].as_u64() != Some(0)
    {
        bail!("import {import_id} of export {id}: unexpected counts {counts}");
    }
    tokio::fs::remove_file(&file).await.ok();
    let total_s = started.elapsed().as_secs_f64();
    Ok(Trip {
        total_s,
        export_s,
        download_s,
        import_s: total_s - export_s - download_s,
    })
}

/// Waits for the job to succeed, polling every 250 ms (50 users polling
/// faster would be a load test of GET /jobs).
async fn poll(http: &reqwest::Client, api: &str, key: &str, id: &str) -> anyhow::Result<Value> {
    crate::wait_for_job(http, api, key, id, Duration::from_millis(250)).await
}

/// Row count and an MD5 over every column of every row in key order (the
/// bookkeeping columns `last_job_id` and `updated_at` left out).
async fn checksum(pool: &sqlx::PgPool) -> anyhow::Result<(i64, String)> {
    let (count, md5): (i64, Option<String>) = sqlx::query_as(
        "select count(*), md5(string_agg((to_jsonb(t) - 'last_job_id' - 'updated_at')::text, E'\\n' \
         order by cpf)) from user_purchase t",
    )
    .fetch_one(pool)
    .await?;
    Ok((count, md5.unwrap_or_default()))
}

/// The `q` quantile (nearest rank) of sorted values; 0 when empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Samples the connections open to the stack's database every 100 ms.
struct ConnectionSampler {
    peak: Arc<AtomicI64>,
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectionSampler {
    async fn start(config: &Config) -> anyhow::Result<Self> {
        let pool = postgres::connect(config).await?;
        let peak = Arc::new(AtomicI64::new(0));
        let running = Arc::new(AtomicBool::new(true));
        let task = {
            let (peak, running) = (peak.clone(), running.clone());
            tokio::spawn(async move {
                while running.load(Ordering::Relaxed) {
                    // Every connection to this database but the sampler's own.
                    let now: Result<i64, _> = sqlx::query_scalar(
                        "select count(*) - 1 from pg_stat_activity where datname = current_database()",
                    )
                    .fetch_one(&pool)
                    .await;
                    if let Ok(now) = now {
                        peak.fetch_max(now, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Ok(ConnectionSampler {
            peak,
            running,
            task,
        })
    }

    async fn stop(self) -> i64 {
        self.running.store(false, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), 5.0);
        assert_eq!(percentile(&v, 0.95), 10.0);
        assert_eq!(percentile(&v, 1.0), 10.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
