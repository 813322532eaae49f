//! Bytes between a local file and S3, through presigned URLs, streamed in
//! small chunks so memory stays flat whatever the file size: uploads read
//! the file a chunk at a time (a part is never held whole), downloads write
//! each chunk as it arrives.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, ETAG, RANGE};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::api::error_chain;
use crate::error::{CliError, CliResult};

/// Bytes read from the file per chunk of a request body.
const CHUNK: usize = 256 * 1024;

/// A bandwidth cap shared by every transfer of a command (`--limit-rate`).
pub struct RateLimit {
    bytes_per_sec: f64,
    start: Instant,
    sent: AtomicU64,
}

impl RateLimit {
    pub fn new(bytes_per_sec: u64) -> Arc<RateLimit> {
        Arc::new(RateLimit {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            start: Instant::now(),
            sent: AtomicU64::new(0),
        })
    }

    /// Waits until sending `n` more bytes keeps the average under the cap.
    async fn take(&self, n: u64) {
        let total = self.sent.fetch_add(n, Ordering::Relaxed) + n;
        let due = self.start + Duration::from_secs_f64(total as f64 / self.bytes_per_sec);
        tokio::time::sleep_until(due).await;
    }
}

/// Parses `--limit-rate` values such as `500k`, `20M`, `1G` (bytes per second).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a rate: use bytes per second, e.g. 500k, 20M, 1G"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown unit `{other}` in `{s}`: use k, M or G")),
    };
    let rate = (n * scale) as u64;
    if rate == 0 {
        return Err("the rate must be more than 0 bytes per second".into());
    }
    Ok(rate)
}

/// Why one request failed, and whether trying again can help.
#[derive(Debug)]
pub enum Attempt {
    /// Worth another try after a pause (network error, 5xx, 429).
    Retry(String),
    /// The presigned URL has expired or was refused: ask for a fresh one.
    Refused(String),
    /// Trying again will not help.
    Fatal(String),
    /// The object is there already (412 to a single-use PUT, which carries
    /// `If-None-Match: *`): an earlier try landed though its answer was lost,
    /// or the URL was used before.
    AlreadyThere(String),
}

impl Attempt {
    fn message(&self) -> &str {
        match self {
            Attempt::Retry(m)
            | Attempt::Refused(m)
            | Attempt::Fatal(m)
            | Attempt::AlreadyThere(m) => m,
        }
    }
}

fn classify(status: StatusCode, body: &str) -> Attempt {
    let detail: String = body.chars().take(300).collect();
    let msg = format!("S3 answered {status}: {detail}");
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Attempt::Retry(msg)
    } else if status == StatusCode::FORBIDDEN {
        Attempt::Refused(msg)
    } else if status == StatusCode::PRECONDITION_FAILED {
        Attempt::AlreadyThere(msg)
    } else {
        Attempt::Fatal(msg)
    }
}

fn network(e: &reqwest::Error) -> Attempt {
    Attempt::Retry(error_chain(e))
}

/// Pause before retry `attempt` (1, 2, …): 0.5 s doubling, at most 8 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.saturating_sub(1).min(4))
}

#[derive(Clone)]
pub struct Transfers {
    http: reqwest::Client,
    limit: Option<Arc<RateLimit>>,
    pub retries: u32,
}

impl Transfers {
    pub fn new(http: reqwest::Client, limit: Option<Arc<RateLimit>>, retries: u32) -> Transfers {
        Transfers {
            http,
            limit,
            retries,
        }
    }

    /// PUTs bytes `offset..offset+len` of `path` to a presigned URL, once.
    /// Returns the ETag S3 gave the bytes.
    pub async fn put_range(
        &self,
        url: &str,
        headers: &[(String, String)],
        path: &Path,
        offset: u64,
        len: u64,
        bar: &ProgressBar,
    ) -> Result<String, Attempt> {
        let counted = Arc::new(AtomicU64::new(0));
        let body = file_body(
            path.to_path_buf(),
            offset,
            len,
            bar.clone(),
            counted.clone(),
            self.limit.clone(),
        );
        let mut req = self.http.put(url).header(CONTENT_LENGTH, len).body(body);
        for (k, v) in headers {
            if !k.eq_ignore_ascii_case("content-length") {
                req = req.header(k, v);
            }
        }
        let result = async {
            let resp = req.send().await.map_err(|e| network(&e))?;
            let status = resp.status();
            let etag = resp
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = resp.text().await.unwrap_or_default();
            if !status.is_success() {
                return Err(classify(status, &text));
            }
            etag.ok_or_else(|| {
                Attempt::Fatal(
                    "S3 accepted the bytes but sent no ETag (a proxy in the way? S3's CORS must expose ETag)".into(),
                )
            })
        }
        .await;
        if result.is_err() {
            // The bytes of a failed attempt are sent again: take them back
            // off the bar so it shows what has really arrived.
            bar.dec(counted.load(Ordering::Relaxed));
        }
        result
    }

    /// Streams a presigned GET into `dest` (through a temporary file beside
    /// it, renamed at the end, so a broken download never looks finished).
    /// A dropped connection resumes with a ranged GET. Returns the bytes.
    pub async fn download(&self, url: &str, dest: &Path, bar: &ProgressBar) -> CliResult<u64> {
        let partial = partial_path(dest);
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", partial.display())))?;
        let mut written: u64 = 0;
        let mut total: Option<u64> = None;
        let mut attempt = 0;
        let outcome: CliResult<()> = loop {
            let mut req = self.http.get(url);
            if written > 0 {
                req = req.header(RANGE, format!("bytes={written}-"));
            }
            let step = async {
                let mut resp = req.send().await.map_err(|e| network(&e))?;
                let status = resp.status();
                if !status.is_success() {
                    let text = resp.text().await.unwrap_or_default();
                    return Err(classify(status, &text));
                }
                if written > 0 && status != StatusCode::PARTIAL_CONTENT {
                    return Err(Attempt::Fatal(
                        "the server ignored the range request while resuming the download".into(),
                    ));
                }
                if total.is_none() {
                    total = resp.content_length();
                    if let Some(t) = total {
                        bar.set_length(t);
                    }
                }
                while let Some(chunk) = resp.chunk().await.map_err(|e| network(&e))? {
                    if let Some(limit) = &self.limit {
                        limit.take(chunk.len() as u64).await;
                    }
                    file.write_all(&chunk).await.map_err(|e| {
                        Attempt::Fatal(format!("cannot write {}: {e}", partial.display()))
                    })?;
                    written += chunk.len() as u64;
                    bar.set_position(written);
                }
                Ok(())
            }
            .await;
            match step {
                Ok(()) => break Ok(()),
                Err(Attempt::Retry(msg)) if attempt < self.retries => {
                    attempt += 1;
                    bar.println(format!(
                        "download interrupted ({msg}); resuming, retry {attempt} of {}",
                        self.retries
                    ));
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    break Err(CliError::Transfer(format!(
                        "download failed after {} attempt(s): {}",
                        attempt + 1,
                        e.message()
                    )));
                }
            }
        };
        let finished = async {
            outcome?;
            file.flush()
                .await
                .and(file.sync_all().await)
                .map_err(|e| CliError::Io(format!("cannot write {}: {e}", partial.display())))?;
            if let Some(t) = total.filter(|t| *t != written) {
                return Err(CliError::Transfer(format!(
                    "download incomplete: {written} of {t} bytes arrived"
                )));
            }
            tokio::fs::rename(&partial, dest).await.map_err(|e| {
                CliError::Io(format!(
                    "cannot move {} to {}: {e}",
                    partial.display(),
                    dest.display()
                ))
            })
        }
        .await;
        if finished.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        finished.map(|()| written)
    }
}

/// `dir/.name.xlport-partial` for `dir/name`.
fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    dest.with_file_name(format!(".{name}.xlport-partial"))
}

/// A request body that reads `len` bytes of `path` from `offset`, a chunk
/// at a time, counting them on `bar` and in `counted`.
fn file_body(
    path: PathBuf,
    offset: u64,
    len: u64,
    bar: ProgressBar,
    counted: Arc<AtomicU64>,
    limit: Option<Arc<RateLimit>>,
) -> reqwest::Body {
    struct State {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        offset: u64,
        remaining: u64,
        bar: ProgressBar,
        counted: Arc<AtomicU64>,
        limit: Option<Arc<RateLimit>>,
    }
    let state = State {
        path,
        file: None,
        offset,
        remaining: len,
        bar,
        counted,
        limit,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        if s.remaining == 0 {
            return None;
        }
        let chunk = async {
            if s.file.is_none() {
                let mut f = tokio::fs::File::open(&s.path).await?;
                f.seek(std::io::SeekFrom::Start(s.offset)).await?;
                s.file = Some(f);
            }
            let want = s.remaining.min(CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            let mut filled = 0;
            if let Some(f) = s.file.as_mut() {
                while filled < want {
                    let n = f.read(&mut buf[filled..]).await?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("{} got shorter while uploading", s.path.display()),
                        ));
                    }
                    filled += n;
                }
            }
            if let Some(limit) = &s.limit {
                limit.take(want as u64).await;
            }
            Ok::<_, std::io::Error>(bytes::Bytes::from(buf))
        }
        .await;
        match chunk {
            Ok(bytes) => {
                let n = bytes.len() as u64;
                s.remaining -= n;
                s.bar.inc(n);
                s.counted.fetch_add(n, Ordering::Relaxed);
                Some((Ok(bytes), s))
            }
            Err(e) => {
                s.remaining = 0;
                Some((Err(e), s))
            }
        }
    });
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_units() {
        assert_eq!(parse_rate("500k"), Ok(500_000));
        assert_eq!(parse_rate("20M"), Ok(20_000_000));
        assert_eq!(parse_rate("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_rate("2MiB"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10x").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(5), Duration::from_millis(8000));
        assert_eq!(backoff(9), Duration::from_millis(8000));
    }

    #[test]
    fn partial_files_sit_beside_the_destination() {
        assert_eq!(
            partial_path(Path::new("/tmp/out/a.xlsx")),
            PathBuf::from("/tmp/out/.a.xlsx.xlport-partial")
        );
    }
}
