//! What the CLI shows a person: notes and progress bars on stderr, never on
//! stdout (which `--json` keeps for its one JSON object). Bars only when
//! stderr is a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy)]
pub struct Ui {
    bars: bool,
    quiet: bool,
}

impl Ui {
    pub fn new(quiet: bool) -> Ui {
        Ui {
            bars: !quiet && std::io::stderr().is_terminal(),
            quiet,
        }
    }

    /// A line on stderr for a person (suppressed by `--quiet`).
    pub fn note(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// A byte-count bar with rate and ETA.
    pub fn bytes_bar(&self, label: &str, total: u64) -> ProgressBar {
        self.bar(
            Some(total),
            "{prefix:>10} [{bar:32}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
            label,
        )
    }

    /// A counter of rows (or other units) without a known end.
    pub fn counter(&self, label: &str) -> ProgressBar {
        self.bar(
            None,
            "{prefix:>10} {spinner} {human_pos} rows, {elapsed} {msg}",
            label,
        )
    }

    fn bar(&self, len: Option<u64>, template: &str, label: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count for people: `73.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(73_154_489), "73.2 MB");
        assert_eq!(human_bytes(5_000_000_000), "5.0 GB");
    }
}
