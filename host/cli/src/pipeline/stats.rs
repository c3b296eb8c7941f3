//! Per-plugin and whole-run statistics: the table at the end of a run and `--stats-json`.

use plugin_host::ipc::protocol::Failure;
use plugin_host::process::ErrorKind;
use serde::Serialize;
use std::io::Write;

/// One plugin instance's counts and processing times.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PluginStats {
    pub name: String,
    /// Processes the stage ran as, each on a band of every frame.
    pub workers: u32,
    /// Frames the plugin processed successfully.
    pub frames: u64,
    /// Frames it failed on (any reason): the sum of the next six.
    pub errors: u64,
    /// Wasm traps (unreachable, out of bounds, stack overflow, panics…).
    pub traps: u64,
    /// Errors the plugin reported itself.
    pub plugin_errors: u64,
    /// Frames past `deadline_ms` (the runner's interruption or the host's kill).
    pub deadline_misses: u64,
    /// `memory.grow` past `memory_mb`.
    pub memory_limit_hits: u64,
    /// The process died (exit or signal).
    pub crashes: u64,
    /// Lies: bad messages, states or descriptors, and frames it refused or could not take.
    pub protocol_violations: u64,
    pub restarts: u64,
    /// Parameter changes applied while running.
    pub param_changes: u64,
    /// States kept (`state_every`), given to a replacement process, and refused by one (a
    /// trap or an error in its restore: it then starts afresh).
    pub snapshots: u64,
    pub restores: u64,
    pub restore_failures: u64,
    /// Modules swapped in while running, swaps refused (the plugin went on as before), and swaps
    /// rolled back because the new module kept crashing.
    pub swaps: u64,
    pub swap_failures: u64,
    pub rollbacks: u64,
    pub skipped: u64,
    pub passed_through: u64,
    /// Frame copies the host made for this plugin between lane buffers (passed-through frames,
    /// pipe transport results); 0 on the zero-copy path.
    pub copies: u64,
    /// Restart time (kill → ready) p50 and p99, microseconds.
    pub restart_p50_us: u64,
    pub restart_p99_us: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Minor page faults per frame in the plugin process after warm-up (its own report).
    pub plugin_faults_per_frame: f64,
    /// Processing times, microseconds: a histogram of fixed size however long the run.
    #[serde(skip)]
    pub latency_us: Latencies,
    #[serde(skip)]
    pub restart_us: Latencies,
}

/// Durations in microseconds, kept in a histogram of fixed size (2 significant digits, 1 µs to
/// an hour): a run that lasts a day costs no more memory than one that lasts a second. Percentiles
/// are within 1 % of the exact ones.
#[derive(Debug, Clone)]
pub struct Latencies(hdrhistogram::Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        const HOUR_US: u64 = 3_600_000_000;
        Latencies(hdrhistogram::Histogram::new_with_bounds(1, HOUR_US, 2).expect("valid histogram bounds"))
    }
}

impl Latencies {
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.max(1));
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile, 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.0.is_empty() { 0 } else { self.0.value_at_quantile(q) }
    }

    pub fn max(&self) -> u64 {
        if self.0.is_empty() { 0 } else { self.0.max() }
    }

    /// How many durations were at most `us` (to the histogram's precision).
    pub fn count_up_to(&self, us: u64) -> u64 {
        self.0.count_between(0, us)
    }

    /// The sum of the durations (to the histogram's precision).
    pub fn sum_us(&self) -> u64 {
        self.0.iter_recorded().map(|v| v.value_iterated_to().saturating_mul(v.count_at_value())).sum()
    }
}

impl PluginStats {
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), ..Self::default() }
    }

    /// Fills the percentiles from the histograms.
    pub fn finish(&mut self) {
        self.p50_us = self.latency_us.quantile(0.50);
        self.p99_us = self.latency_us.quantile(0.99);
        self.max_us = self.latency_us.max();
        self.restart_p50_us = self.restart_us.quantile(0.50);
        self.restart_p99_us = self.restart_us.quantile(0.99);
    }

    /// Counts a failed frame under its kind.
    pub fn count_failure(&mut self, kind: &ErrorKind) {
        self.errors += 1;
        let counter = match kind {
            ErrorKind::Frame { failure: Failure::Trap { .. }, .. } => &mut self.traps,
            ErrorKind::Frame { failure: Failure::Deadline, .. } | ErrorKind::Deadline { .. } => {
                &mut self.deadline_misses
            }
            ErrorKind::Frame { failure: Failure::MemoryLimit(_), .. } => &mut self.memory_limit_hits,
            ErrorKind::Frame { failure: Failure::Plugin(_), .. } => &mut self.plugin_errors,
            ErrorKind::Died { .. } | ErrorKind::NotRunning => &mut self.crashes,
            _ => &mut self.protocol_violations,
        };
        *counter += 1;
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

/// Frames converted at one place of the chain from one format to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversion {
    /// Where: `before "blur"`, or `before the output`.
    pub place: String,
    pub from: String,
    pub to: String,
    /// The Y'CbCr matrix and range used (`bt709 limited range`).
    pub colour: String,
    pub frames: u64,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub wall_s: f64,
    /// Minor page faults per frame in the host after warm-up.
    pub host_faults_per_frame: f64,
    /// Frame copies between lane buffers over the whole chain (0 on the zero-copy path).
    pub copies: u64,
    pub plugins: Vec<PluginStats>,
    /// Frames the host converted from one pixel format to another, and where.
    pub conversions: Vec<Conversion>,
    /// Each boundary's frames: `input 1280x720 yuv420p`, then each plugin's output; in a graph
    /// each plugin's says what it takes (`mix 1280x720 rgba8 from main, logo`).
    pub shapes: Vec<String>,
    /// Whether the run was a graph (its shapes are not a chain's row).
    pub graph: bool,
    /// Whether the output now holds this run's frames (put in place; false when it had none, or
    /// the output failed, a video encoder say).
    pub output_written: bool,
    /// After a failed run over an existing output: where this run's frames were kept instead.
    pub output_kept_aside: Option<std::path::PathBuf>,
}

impl RunStats {
    pub fn fps(&self) -> f64 {
        if self.wall_s > 0.0 { self.frames_out as f64 / self.wall_s } else { 0.0 }
    }

    pub fn print_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        let width = self.plugins.iter().map(|p| p.name.len()).max().unwrap_or(6).max(6);
        writeln!(
            out,
            "{:<width$}  {:>7}  {:>8}  {:>9}  {:>9}  {:>9}  {:>6}  {:>5}  {:>8}  {:>7}  {:>8}  {:>7}  {:>11}  {:>6}",
            "plugin",
            "workers",
            "frames",
            "p50 ms",
            "p99 ms",
            "max ms",
            "traps",
            "late",
            "crashes",
            "errors",
            "restarts",
            "skipped",
            "passthrough",
            "copies"
        )?;
        for p in &self.plugins {
            let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
            writeln!(
                out,
                "{:<width$}  {:>7}  {:>8}  {:>9}  {:>9}  {:>9}  {:>6}  {:>5}  {:>8}  {:>7}  {:>8}  {:>7}  {:>11}  {:>6}",
                p.name,
                p.workers,
                p.frames,
                ms(p.p50_us),
                ms(p.p99_us),
                ms(p.max_us),
                p.traps,
                p.deadline_misses,
                p.crashes,
                p.errors,
                p.restarts,
                p.skipped,
                p.passed_through,
                p.copies
            )?;
        }
        writeln!(
            out,
            "{} frames in, {} out in {:.2} s: {:.1} frames/s; page faults per frame after warm-up: host {:.2}{}",
            self.frames_in,
            self.frames_out,
            self.wall_s,
            self.fps(),
            self.host_faults_per_frame,
            self.plugins.iter().map(|p| format!(", {} {:.2}", p.name, p.plugin_faults_per_frame)).collect::<String>()
        )?;
        if !self.shapes.is_empty() {
            writeln!(out, "frames: {}", self.shapes.join(if self.graph { "; " } else { " -> " }))?;
        }
        for c in &self.conversions {
            let frames = if c.frames == 1 { "frame" } else { "frames" };
            writeln!(out, "converted {} {frames} {} -> {} {} ({})", c.frames, c.from, c.to, c.place, c.colour)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_stay_the_same_size_and_their_percentiles_within_a_percent() {
        let mut latencies = Latencies::default();
        // The counters, allocated once: recording never grows them.
        let counters = latencies.0.distinct_values();
        for us in 1..=100_000u64 {
            latencies.record(us);
        }
        for us in 0..1_000_000u64 {
            latencies.record(50_000 + us % 7);
        }
        assert_eq!(latencies.len(), 1_100_000);
        let p50 = latencies.quantile(0.5) as f64;
        assert!((p50 - 50_003.0).abs() / 50_003.0 < 0.01, "{p50}");
        let max = latencies.max() as f64;
        assert!((max - 100_000.0).abs() / 100_000.0 < 0.01, "{max}");
        assert_eq!(Latencies::default().quantile(0.99), 0);
        assert_eq!(latencies.0.distinct_values(), counters, "no counter added by a million samples");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.5), 50);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
