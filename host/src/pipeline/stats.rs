//! Per-plugin and whole-run statistics: the table at the end of a run and `--stats-json`.

use serde::Serialize;
use std::io::Write;

/// One plugin instance's counts and processing times.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PluginStats {
    pub name: String,
    /// Frames the plugin processed successfully.
    pub frames: u64,
    /// Frames it failed on (any reason).
    pub errors: u64,
    pub restarts: u64,
    pub skipped: u64,
    pub passed_through: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Minor page faults per frame in the plugin process after warm-up (its own report).
    pub plugin_faults_per_frame: f64,
    #[serde(skip)]
    pub samples_us: Vec<u64>,
}

impl PluginStats {
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), ..Self::default() }
    }

    /// Fills the percentiles from the samples.
    pub fn finish(&mut self) {
        self.samples_us.sort_unstable();
        self.p50_us = percentile(&self.samples_us, 0.50);
        self.p99_us = percentile(&self.samples_us, 0.99);
        self.max_us = self.samples_us.last().copied().unwrap_or(0);
    }
}

/// The `q` quantile of sorted samples (nearest rank), 0 when empty.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    nearest_rank(sorted, q).unwrap_or(0)
}

/// The `q` quantile of sorted samples by nearest rank; `None` when there are none.
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub wall_s: f64,
    /// Minor page faults per frame in the host after warm-up.
    pub host_faults_per_frame: f64,
    pub plugins: Vec<PluginStats>,
}

impl RunStats {
    pub fn fps(&self) -> f64 {
        if self.wall_s > 0.0 { self.frames_out as f64 / self.wall_s } else { 0.0 }
    }

    pub fn print_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        let width = self.plugins.iter().map(|p| p.name.len()).max().unwrap_or(6).max(6);
        writeln!(
            out,
            "{:<width$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>6}  {:>8}  {:>7}  {:>11}",
            "plugin", "frames", "p50 ms", "p99 ms", "max ms", "errors", "restarts", "skipped", "passthrough"
        )?;
        for p in &self.plugins {
            let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
            writeln!(
                out,
                "{:<width$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>6}  {:>8}  {:>7}  {:>11}",
                p.name,
                p.frames,
                ms(p.p50_us),
                ms(p.p99_us),
                ms(p.max_us),
                p.errors,
                p.restarts,
                p.skipped,
                p.passed_through
            )?;
        }
        writeln!(
            out,
            "{} frames in, {} out in {:.2} s: {:.1} frames/s; page faults per frame after warm-up: host {:.2}, {}",
            self.frames_in,
            self.frames_out,
            self.wall_s,
            self.fps(),
            self.host_faults_per_frame,
            self.plugins
                .iter()
                .map(|p| format!("{} {:.2}", p.name, p.plugin_faults_per_frame))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.5), 50);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
