//! Resident memory of the function processes cargo lambda watch runs, read
//! from /proc (Linux).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Resident set sizes (VmRSS, VmHWM) in MB of every process whose program
/// path ends with `suffix`.
pub fn process_memory_mb(suffix: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmdline);
        if !cmd.split('\0').next().is_some_and(|p| p.ends_with(suffix)) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        out.push((field("VmRSS:"), field("VmHWM:")));
    }
    out
}

/// Samples the largest VmRSS of the matching processes every 50 ms until
/// stopped: the peak during one job, even when the process outlives it.
pub struct RssSampler {
    peak_kb: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(suffix: &'static str) -> Self {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicBool::new(true));
        let task = {
            let (peak_kb, running) = (peak_kb.clone(), running.clone());
            tokio::spawn(async move {
                while running.load(Ordering::Relaxed) {
                    let now = process_memory_mb(suffix)
                        .iter()
                        .map(|(rss, _)| (rss * 1024.0) as u64)
                        .max()
                        .unwrap_or(0);
                    peak_kb.fetch_max(now, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        RssSampler {
            peak_kb,
            running,
            task,
        }
    }

    /// The peak in MB.
    pub async fn stop(self) -> f64 {
        self.running.store(false, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }
}
