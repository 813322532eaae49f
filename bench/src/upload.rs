//! The CLI's upload: files of growing size sent with `xlport import`
//! (parallel multipart through presigned part URLs) beside plain `curl -T`
//! of the same file to a presigned PUT, measured in the same run. Shows the
//! CLI's memory staying flat as files grow.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use xlport_adapters::Deps;
use xlport_core::ports::ObjectStore;

use crate::{RssSampler, round};

pub struct Args<'a> {
    pub sizes_mb: &'a [u64],
    pub api: &'a str,
    pub token: &'a str,
    pub scratch: &'a Path,
    pub cli: &'a Path,
    pub parallel: u16,
}

/// Bytes that are neither a zip nor text, so the worker fails the job at
/// once (the benchmark is about the upload, not the import).
fn write_file(path: &Path, bytes: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let b = state.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Runs `cmd`, sampling the resident memory of processes named `name`.
async fn timed(
    mut cmd: tokio::process::Command,
    name: &'static str,
) -> anyhow::Result<(f64, f64, String)> {
    let sampler = RssSampler::start(name);
    let started = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let peak = sampler.stop().await;
    if !out.status.success() {
        bail!(
            "{name} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((
        secs,
        peak,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

pub async fn run(deps: &Deps, args: Args<'_>) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for &mb in args.sizes_mb {
        let bytes = mb * 1_000_000;
        let file: PathBuf = args.scratch.join(format!("upload-bench-{mb}mb.bin"));
        eprintln!("writing {}", file.display());
        write_file(&file, bytes)?;

        // Baseline: curl -T to a presigned single PUT (S3 takes up to 5 GB so).
        let key = format!("bench/curl-{}", uuid::Uuid::new_v4());
        let put = deps
            .objects
            .presign_put(&key, bytes, Duration::from_secs(3600))
            .await?;
        let mut curl = tokio::process::Command::new("curl");
        curl.args(["-sS", "--fail", "-o", "/dev/null", "-T"])
            .arg(&file)
            .arg(&put.url);
        for (k, v) in &put.headers {
            curl.arg("-H").arg(format!("{k}: {v}"));
        }
        let (curl_s, curl_rss, _) = timed(curl, "curl").await?;
        eprintln!("curl -T: {curl_s:.2}s, peak RSS {curl_rss:.1} MB");

        let mut cli = tokio::process::Command::new(args.cli);
        cli.arg("import")
            .arg(&file)
            .args(["--no-wait", "--json", "--parallel"])
            .arg(args.parallel.to_string())
            .env("XLPORT_API", args.api)
            .env("XLPORT_TOKEN", args.token);
        let (cli_s, cli_rss, stdout) = timed(cli, "release/xlport").await?;
        let job: Value = serde_json::from_str(stdout.trim())
            .with_context(|| format!("the CLI's output is not JSON: {stdout}"))?;
        if job["object"]["declared_size"].as_u64() != Some(bytes) {
            bail!("the CLI's job does not declare {bytes} bytes: {job}");
        }
        eprintln!("xlport import: {cli_s:.2}s, peak RSS {cli_rss:.1} MB");
        let _ = std::fs::remove_file(&file);
        let line = json!({
            "bench": "cli_upload",
            "bytes": bytes,
            "cli_s": round(cli_s),
            "cli_mb_per_s": round(mb as f64 / cli_s),
            "cli_peak_rss_mb": round(cli_rss),
            "parallel": args.parallel,
            "curl_put_s": round(curl_s),
            "curl_peak_rss_mb": round(curl_rss),
            "ratio_vs_curl": round(cli_s / curl_s),
        });
        println!("{line}");
        results.push(line);
    }
    let peaks: Vec<f64> = results
        .iter()
        .filter_map(|r| r["cli_peak_rss_mb"].as_f64())
        .collect();
    println!(
        "{}",
        json!({
            "bench": "cli_upload",
            "sizes_mb": args.sizes_mb,
            "cli_s": results.iter().map(|r| r["cli_s"].clone()).collect::<Vec<_>>(),
            "curl_put_s": results.iter().map(|r| r["curl_put_s"].clone()).collect::<Vec<_>>(),
            "cli_peak_rss_mb": peaks,
            "cli_peak_rss_max_mb": peaks.iter().copied().fold(0.0, f64::max),
        })
    );
    Ok(())
}
