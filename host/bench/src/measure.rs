//! How figures are taken: what to measure with, sampling plans, percentiles, CPU time.

use super::*;

/// What to measure with.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Directory holding `invert.wasm`.
    pub plugin_dir: PathBuf,
    /// The `identity` test plugin's module.
    pub identity: PathBuf,
    /// The executable to run plugins with (see [`PluginSpec::runner`]).
    pub runner: Option<PathBuf>,
    /// Samples per measurement (warm-up comes on top); a measurement also stops at its time
    /// budget once it has a minimum of samples.
    pub iterations: usize,
    /// Fewer iterations, only the two smallest sizes, two spawns per start-up figure: a run of a
    /// few seconds, for tests.
    pub quick: bool,
}

impl BenchOptions {
    pub const DEFAULT_ITERATIONS: usize = 200;
    pub(crate) const QUICK_ITERATIONS: usize = 20;

    pub fn new(plugin_dir: impl Into<PathBuf>, identity: impl Into<PathBuf>) -> Self {
        Self {
            plugin_dir: plugin_dir.into(),
            identity: identity.into(),
            runner: None,
            iterations: Self::DEFAULT_ITERATIONS,
            quick: false,
        }
    }

    pub(crate) fn plan(&self) -> Plan {
        if self.quick {
            let samples = self.iterations.clamp(1, Self::QUICK_ITERATIONS);
            Plan { warm: 2, samples, min_samples: samples.min(5), budget: Duration::from_millis(400) }
        } else {
            let samples = self.iterations.max(1);
            Plan { warm: (samples / 10).max(2), samples, min_samples: samples.min(20), budget: Duration::from_secs(3) }
        }
    }

    pub(crate) fn spawns(&self) -> usize {
        if self.quick { 2 } else { 10 }
    }
}

/// How long a measurement runs: `warm` discarded iterations, then up to `samples`, stopping
/// once `budget` has passed and at least `min_samples` are in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) warm: usize,
    pub(crate) samples: usize,
    pub(crate) min_samples: usize,
    pub(crate) budget: Duration,
}

impl Plan {
    /// Runs `f(false)` for warm-up (cut short at a quarter of the budget, at least 2) and
    /// `f(true)` for the samples.
    pub(crate) fn repeat(&self, mut f: impl FnMut(bool) -> anyhow::Result<()>) -> anyhow::Result<usize> {
        let start = Instant::now();
        for i in 0..self.warm {
            if i >= 2 && start.elapsed() > self.budget / 4 {
                break;
            }
            f(false)?;
        }
        let start = Instant::now();
        let mut done = 0;
        while done < self.samples && (done < self.min_samples || start.elapsed() <= self.budget) {
            f(true)?;
            done += 1;
        }
        Ok(done)
    }
}

/// Nearest-rank percentile of sorted samples.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    plugin_host_cli::pipeline::stats::nearest_rank(sorted, p).unwrap_or(f64::NAN)
}

pub(crate) fn latency(mut samples_us: Vec<f64>) -> Latency {
    samples_us.sort_by(f64::total_cmp);
    Latency { p50_us: percentile(&samples_us, 0.50), p99_us: percentile(&samples_us, 0.99), samples: samples_us.len() }
}

pub(crate) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Times `f` under `plan`, in µs.
pub(crate) fn sample(plan: &Plan, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Latency> {
    let mut times = Vec::with_capacity(plan.samples);
    plan.repeat(|keep| {
        let start = Instant::now();
        f()?;
        if keep {
            times.push(micros(start.elapsed()));
        }
        Ok(())
    })?;
    Ok(latency(times))
}

/// Like [`sample`] for work too short to time once: each sample runs `f` `batch` times.
pub(crate) fn sample_batched(plan: &Plan, batch: usize, mut f: impl FnMut()) -> Latency {
    let mut times = Vec::with_capacity(plan.samples);
    let result = plan.repeat(|keep| {
        let start = Instant::now();
        for _ in 0..batch {
            f();
        }
        if keep {
            times.push(micros(start.elapsed()) / batch as f64);
        }
        Ok(())
    });
    debug_assert!(result.is_ok());
    latency(times)
}

/// Enough repetitions of a `bytes`-sized job that one sample moves about 1 MiB.
pub(crate) fn batch_for(bytes: usize) -> usize {
    ((1 << 20) / bytes.max(1)).max(1)
}

/// Cumulative CPU time from /proc, in clock ticks: the whole machine's, and this process's
/// own (its threads and its reaped children: the plugin processes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTimes {
    pub(crate) total: u64,
    pub(crate) busy: u64,
    pub(crate) steal: u64,
    pub(crate) own: u64,
}

impl CpuTimes {
    pub(crate) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let fields: Vec<u64> =
            stat.lines().next()?.split_whitespace().skip(1).take(8).map(|v| v.parse().ok()).collect::<Option<_>>()?;
        let [user, nice, system, idle, iowait, irq, softirq, steal] = fields[..] else { return None };
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the command name: state is field 3, utime stime cutime cstime are fields 14..=17.
        let after_name = own_stat.get(own_stat.rfind(')')? + 1..)?;
        let own = after_name.split_whitespace().skip(11).take(4).map(|v| v.parse::<u64>().ok()).sum::<Option<u64>>()?;
        Some(Self {
            total: user + nice + system + idle + iowait + irq + softirq + steal,
            busy: user + nice + system + irq + softirq,
            steal,
            own,
        })
    }

    /// (other processes' share, steal share) of all CPU time since `before`, in percent.
    pub(crate) fn since(&self, before: &Self) -> (f64, f64) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        let busy = self.busy.saturating_sub(before.busy);
        let own = self.own.saturating_sub(before.own);
        let other = busy.saturating_sub(own) as f64 / total * 100.0;
        (other, self.steal.saturating_sub(before.steal) as f64 / total * 100.0)
    }
}
