//! `plugin-host bench`: shared memory against message passing, on the user's own machine, with
//! the raw baselines it is made of, all measured in the same run.
//!
//! - Raw baselines (same process, two threads): a 1-byte pipe round trip, a futex round trip
//!   (plain wait/wake, and the hand-off algorithm of [`crate::ipc::handoff`] with its spin), and a
//!   memcpy of each frame size.
//! - Per transport (`shm`: [`Transport::SharedMemory`], `pipe`: [`Transport::Pipe`]) and per frame
//!   size: the round trip through the `identity` plugin (no work) and the throughput through
//!   `invert`, next to a native in-process invert of the same frame.
//! - For shm, the round trip taken apart. The plugin side copies nothing (the slots are mapped
//!   into its wasm memory), but the public API does, on the host side: `submit(&Frame)` copies the
//!   frame into the slot, `receive(&mut OwnedFrame)` copies the result out. Those two copies are
//!   timed on their own, interleaved with the round trips, with the very functions `submit` and
//!   `receive` use ([`Region::write_buffer`], [`Region::read_buffer`]) on a region of the same kind
//!   and size. The zero-copy path is measured through the lane API ([`LaneRunner`]), as a
//!   pipeline stage uses it: the frame written into its lane once, then handed over and back
//!   with nothing copied by anyone.
//! - Start-up (spawn → ready): cold (empty cache), from the disk cache, from the in-memory cache,
//!   and a restart after SIGKILL (kill → dead process reaped → new process ready), with and
//!   without a standby process.
//! - A pipeline of 1 and of 4 invert stages, frames per second.
//!
//! Every figure is a median (p50) or p99 of sorted samples; warm-up iterations are discarded.

use crate::ipc::handoff::{self, Futex, Outcome};
use crate::ipc::protocol::Transport;
use crate::ipc::region::{self, Buffer, Lane, Region};
use crate::sys::futex;
use crate::{Limits, PluginProcess, PluginSpec, Ticket, cache};
use anyhow::{Context, bail, ensure};
use plugin_sdk::{OwnedFrame, PixelFormat};
use serde::Serialize;
use std::collections::VecDeque;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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
    const QUICK_ITERATIONS: usize = 20;

    pub fn new(plugin_dir: impl Into<PathBuf>, identity: impl Into<PathBuf>) -> Self {
        Self {
            plugin_dir: plugin_dir.into(),
            identity: identity.into(),
            runner: None,
            iterations: Self::DEFAULT_ITERATIONS,
            quick: false,
        }
    }

    fn plan(&self) -> Plan {
        if self.quick {
            let samples = self.iterations.clamp(1, Self::QUICK_ITERATIONS);
            Plan { warm: 2, samples, min_samples: samples.min(5), budget: Duration::from_millis(400) }
        } else {
            let samples = self.iterations.max(1);
            Plan { warm: (samples / 10).max(2), samples, min_samples: samples.min(20), budget: Duration::from_secs(3) }
        }
    }

    fn spawns(&self) -> usize {
        if self.quick { 2 } else { 10 }
    }
}

/// How long a measurement runs: `warm` discarded iterations, then up to `samples`, stopping
/// once `budget` has passed and at least `min_samples` are in.
#[derive(Debug, Clone, Copy)]
struct Plan {
    warm: usize,
    samples: usize,
    min_samples: usize,
    budget: Duration,
}

impl Plan {
    /// Runs `f(false)` for warm-up (cut short at a quarter of the budget, at least 2) and
    /// `f(true)` for the samples.
    fn repeat(&self, mut f: impl FnMut(bool) -> anyhow::Result<()>) -> anyhow::Result<usize> {
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

/// One transport at one frame size: `p50_us`/`p99_us` are the round trip (`submit` + `receive`)
/// through the identity plugin, `frames_per_s` the throughput through invert with every slot in
/// flight.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// "shm" or "pipe".
    pub transport: String,
    pub width: u32,
    pub height: u32,
    pub frame_bytes: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub samples: usize,
    pub frames_per_s: f64,
}

/// A latency distribution.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub samples: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memcpy {
    pub frame_bytes: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub gb_per_s: f64,
}

/// Measured in this process, between two threads (the scheduler places them on cores).
#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    /// 1 byte there and back over two pipes.
    pub pipe_round_trip: Latency,
    /// Plain futex wait/wake on one shared word, no spinning.
    pub futex_round_trip: Latency,
    /// The hand-off algorithm PluginProcess uses (spin, then futex) on two words.
    pub handoff_round_trip: Latency,
    /// `copy_from_slice` between two pre-touched page-aligned buffers, per frame size.
    pub memcpy: Vec<Memcpy>,
}

/// The shared-memory transport at one size, taken apart.
#[derive(Debug, Clone, Serialize)]
pub struct ShmDetail {
    /// `submit` + `receive` through identity (the row's figure).
    pub round_trip: Latency,
    /// `submit()` alone: the host's copy of the frame into the slot, the descriptor, the doorbell.
    pub submit: Latency,
    /// `receive()` alone: the wait for the plugin, then the host's copy of the result out of the slot.
    pub receive: Latency,
    /// The host's copy into a slot (`Region::write_buffer`, as in `submit`), timed on its own.
    pub copy_in: Latency,
    /// The host's copy out of a slot (`Region::read_buffer`, as in `receive`), timed on its own.
    pub copy_out: Latency,
    /// Both copies one after the other, per sample.
    pub copies: Latency,
    /// Each round trip minus the copies timed right after it (paired samples). Noisy at large
    /// sizes: the difference of two large numbers.
    pub round_trip_minus_copies: Latency,
    /// The hand-off measured directly ([`LaneRunner`]): the frame already in its slot, handed
    /// to the identity plugin and back; nothing copied. Descriptor, doorbell, the runner taking
    /// the slot, calling the plugin and marking it done, the host seeing it.
    pub handoff: Latency,
    /// submit + receive through invert, one frame at a time.
    pub invert: Latency,
    /// Throughput through invert with every slot in flight, through the public API.
    pub invert_frames_per_s: f64,
    /// The same with the frame already in the slots and nothing copied ([`LaneRunner`]): the
    /// plugin's work plus the hand-off, as a stage of a zero-copy chain.
    pub invert_in_place_frames_per_s: f64,
}

/// The pipe transport at one size.
#[derive(Debug, Clone, Serialize)]
pub struct PipeDetail {
    /// `submit` + `receive` through identity (the row's figure).
    pub round_trip: Latency,
    /// Throughput through invert with every slot in flight.
    pub invert_frames_per_s: f64,
}

/// Everything measured at one frame size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    pub width: u32,
    pub height: u32,
    pub frame_bytes: u64,
    pub memcpy: Latency,
    /// The invert plugin's loop compiled natively, in this process (source → destination).
    pub native_invert: Latency,
    pub native_invert_frames_per_s: f64,
    pub shm: ShmDetail,
    pub pipe: PipeDetail,
}

/// spawn → ready times of one kind of start.
#[derive(Debug, Clone, Serialize)]
pub struct SpawnTimes {
    pub spawns: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Module cache use during these spawns (from [`cache::counts`]): shows which path was taken.
    pub compiled: u64,
    pub disk_hits: u64,
    pub memory_hits: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    pub plugin: String,
    pub frame_bytes: u64,
    /// Empty cache folder (a fresh temporary one each time) and in-memory cache cleared: compiles.
    pub cold: SpawnTimes,
    /// The folder holds the compiled module; in-memory cache cleared: reads and checks the entry.
    pub disk_cache: SpawnTimes,
    /// The compiled module is in this process's memory (every restart within a run).
    pub memory_cache: SpawnTimes,
    /// The same with 4 KiB slots: the difference is what making the frame buffers costs.
    pub memory_cache_4k_slots: SpawnTimes,
    /// SIGKILL to the running plugin → the dead process reaped (its pipe closed) → the standby
    /// process (started and loaded ahead) initialised and ready.
    pub restart_after_sigkill: SpawnTimes,
    /// The same without a standby: a new process from the in-memory cache, in the same region.
    pub restart_without_standby: SpawnTimes,
    /// The first part of that: SIGKILL → the dead process reaped and its reader thread done.
    pub kill_to_reaped_p50_ms: f64,
}

/// A derived figure, with what it divides by what, and the goal where there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub what: String,
    pub value: f64,
    /// "x" for a ratio, "ms" for a time.
    pub unit: String,
    pub goal: Option<String>,
    /// Whether the goal is met; None where there is no goal or the run did not measure its case.
    pub met: Option<bool>,
}

/// One line of the comparison of the two methods.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub aspect: String,
    pub shared_memory: String,
    pub message_passing: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cores: usize,
    /// Share of all CPU time that other processes used during the run: a busy machine makes
    /// every figure slower and noisier. None where /proc is not readable.
    pub other_cpu_percent: Option<f64>,
    /// Share of all CPU time the hypervisor took (steal).
    pub steal_percent: Option<f64>,
    pub iterations: usize,
    pub quick: bool,
    pub baselines: Baselines,
    pub rows: Vec<Row>,
    pub sizes: Vec<SizeResult>,
    pub startup: Startup,
    pub chain: ChainResult,
    pub ratios: Vec<Ratio>,
    pub comparison: Vec<Comparison>,
    pub notes: Vec<String>,
}

/// (width, height) of the RGBA frames measured: 4 KiB, 720p, 1080p, 2160p.
const SIZES: [(u32, u32); 4] = [(32, 32), (1280, 720), (1920, 1080), (3840, 2160)];
const QUICK_SIZES: usize = 2;
const DEADLINE: Duration = Duration::from_secs(5);
/// The size the shm-vs-pipe and plugin-vs-native goals are stated at.
const GOAL_SIZE: (u32, u32) = (1920, 1080);

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    crate::pipeline::stats::nearest_rank(sorted, p).unwrap_or(f64::NAN)
}

fn latency(mut samples_us: Vec<f64>) -> Latency {
    samples_us.sort_by(f64::total_cmp);
    Latency { p50_us: percentile(&samples_us, 0.50), p99_us: percentile(&samples_us, 0.99), samples: samples_us.len() }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Times `f` under `plan`, in µs.
fn sample(plan: &Plan, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Latency> {
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
fn sample_batched(plan: &Plan, batch: usize, mut f: impl FnMut()) -> Latency {
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
fn batch_for(bytes: usize) -> usize {
    ((1 << 20) / bytes.max(1)).max(1)
}

/// Measures everything; takes from a few seconds (`quick`) to a couple of minutes.
pub fn run(options: &BenchOptions) -> anyhow::Result<Report> {
    let plan = options.plan();
    let sizes = if options.quick { &SIZES[..QUICK_SIZES] } else { &SIZES[..] };
    let invert = options.plugin_dir.join("invert.wasm");
    for module in [&invert, &options.identity] {
        ensure!(module.is_file(), "{} is missing (build the plugins first: `cargo xtask build`)", module.display());
    }

    let cpu_before = CpuTimes::now();
    let round_trips = Plan { samples: plan.samples.max(1000), min_samples: plan.samples.max(1000), ..plan };
    let pipe_round_trip = pipe_round_trip(&round_trips).context("pipe round trip")?;
    let futex_round_trip = futex_round_trip(&round_trips);
    let handoff_round_trip = handoff_round_trip(&round_trips);

    let mut results = Vec::new();
    for &(width, height) in sizes {
        results.push(
            measure_size(options, &plan, &invert, width, height)
                .with_context(|| format!("measuring {width}x{height}"))?,
        );
    }
    let startup = startup(options, &invert, options.spawns()).context("measuring start-up")?;
    let chain = chain(&invert, options).context("measuring a chain")?;

    let mut rows = Vec::new();
    for r in &results {
        for (transport, trip, fps) in [
            ("shm", &r.shm.handoff, r.shm.invert_in_place_frames_per_s),
            ("shm-copying-api", &r.shm.round_trip, r.shm.invert_frames_per_s),
            ("pipe", &r.pipe.round_trip, r.pipe.invert_frames_per_s),
        ] {
            rows.push(Row {
                transport: transport.into(),
                width: r.width,
                height: r.height,
                frame_bytes: r.frame_bytes,
                p50_us: trip.p50_us,
                p99_us: trip.p99_us,
                samples: trip.samples,
                frames_per_s: fps,
            });
        }
    }
    let baselines = Baselines {
        pipe_round_trip,
        futex_round_trip,
        handoff_round_trip,
        memcpy: results
            .iter()
            .map(|r| Memcpy {
                frame_bytes: r.frame_bytes,
                p50_us: r.memcpy.p50_us,
                p99_us: r.memcpy.p99_us,
                gb_per_s: r.frame_bytes as f64 / r.memcpy.p50_us / 1e3,
            })
            .collect(),
    };
    let mut ratios = ratios(&baselines, &results, &startup);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let v = chain.four_stages_frames_per_s / chain.one_stage_frames_per_s;
    ratios.push(ratio(
        format!(
            "pipeline frames/s at {}x{}: 4 invert stages / 1 invert stage ({cores} cores; the goal is for >= 6)",
            chain.width, chain.height
        ),
        v,
        (cores >= 6).then_some((">= 0.8", v >= 0.8)),
    ));
    let comparison = comparison(&baselines, &results, &startup);
    let cpu = cpu_before.zip(CpuTimes::now()).map(|(before, after)| after.since(&before));
    Ok(Report {
        cores,
        other_cpu_percent: cpu.map(|c| c.0),
        steal_percent: cpu.map(|c| c.1),
        iterations: plan.samples,
        quick: options.quick,
        baselines,
        rows,
        sizes: results,
        startup,
        chain: chain.clone(),
        ratios,
        comparison,
        notes: vec![
            "Raw baselines run in this one process, between two threads; the scheduler places them on cores.".into(),
            "shm: the plugin reads and writes the slot buffers in place (they are mapped into its wasm memory); \
             nobody copies. The shm rows use the lane API (PluginProcess::submit_lane/receive_lane), which a \
             pipeline stage uses: the frame is written into its lane once and handed over and back. The \
             shm-copying-api rows use submit(&Frame)/receive(&mut OwnedFrame), which copy the frame into the \
             slot and the result out (two memcpy per frame), for callers that hold their frames elsewhere."
                .into(),
            "pipe: each frame travels as one postcard message each way over the control pipes (encoded, written \
             through a 1 MiB pipe buffer, read and decoded by the other side)."
                .into(),
            "invert frames/s keeps every slot in flight (the host copies frame n+1 in while the plugin works on \
             frame n); native invert is the same byte loop compiled natively, one frame at a time, one thread."
                .into(),
            format!(
                "A measurement stops at {:?} once it has {} samples, so large frames (and the pipe) may have fewer \
                 than {}; each figure's sample count is in the JSON.",
                plan.budget, plan.min_samples, plan.samples
            ),
            format!(
                "Chain: `plugin-host run`'s pipeline on the test pattern to a null output, {} frames, 1 and then 4 \
                 invert stages; each stage is a process and a host thread, so 4 stages need 4+ cores to overlap \
                 fully (this machine has {cores}).",
                chain.frames
            ),
        ],
    })
}

fn label(r: &SizeResult) -> String {
    format!("{}x{}", r.width, r.height)
}

fn ratio(what: String, value: f64, goal: Option<(&str, bool)>) -> Ratio {
    Ratio {
        what,
        value,
        unit: "x".into(),
        goal: goal.map(|(g, _)| g.to_string()),
        met: goal.filter(|_| value.is_finite()).map(|(_, met)| met),
    }
}

fn ratios(baselines: &Baselines, results: &[SizeResult], startup: &Startup) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    let Some(small) = results.first() else { return ratios };
    let large = results.last().filter(|l| l.frame_bytes > small.frame_bytes);
    let goal_size = results.iter().find(|r| (r.width, r.height) == GOAL_SIZE);
    // Where the run did not measure the goal's size (quick), the largest size stands in, without a verdict.
    let at_goal = |goal: &'static str, met: bool| goal_size.is_some().then_some((goal, met));

    let v = small.shm.handoff.p50_us / baselines.futex_round_trip.p50_us;
    ratios.push(ratio(
        format!("identity hand-off p50 at {} (shm, nothing copied) / raw futex round trip p50", label(small)),
        v,
        Some(("<= 1.5", v <= 1.5)),
    ));
    ratios.push(ratio(
        format!("identity hand-off p50 at {} / hand-off algorithm between two threads p50", label(small)),
        small.shm.handoff.p50_us / baselines.handoff_round_trip.p50_us,
        None,
    ));
    ratios.push(ratio(
        format!(
            "identity round trip p50 at {} through the API (copies included) / raw futex round trip p50",
            label(small)
        ),
        small.shm.round_trip.p50_us / baselines.futex_round_trip.p50_us,
        None,
    ));
    if let Some(large) = large {
        let v = large.shm.handoff.p50_us / small.shm.handoff.p50_us;
        let goal = (large.width, large.height) == SIZES[SIZES.len() - 1];
        ratios.push(ratio(
            format!("identity hand-off p50 (nothing copied) at {} / at {}", label(large), label(small)),
            v,
            goal.then_some(("<= 1.5", v <= 1.5)),
        ));
        ratios.push(ratio(
            format!(
                "identity round trip p50 through the API (host copies included) at {} / at {}",
                label(large),
                label(small)
            ),
            large.shm.round_trip.p50_us / small.shm.round_trip.p50_us,
            None,
        ));
        ratios.push(ratio(
            format!("memcpy p50 at {} / at {} (for comparison)", label(large), label(small)),
            large.memcpy.p50_us / small.memcpy.p50_us,
            None,
        ));
    }
    if let Some(r) = goal_size.or(large).or(Some(small)) {
        let v = r.pipe.round_trip.p50_us / r.shm.handoff.p50_us;
        ratios.push(ratio(
            format!("identity round trip p50 at {}: pipe / shm (lane API, nothing copied)", label(r)),
            v,
            at_goal(">= 50", v >= 50.0),
        ));
        ratios.push(ratio(
            format!("identity round trip p50 at {}: pipe / shm through the copying API", label(r)),
            r.pipe.round_trip.p50_us / r.shm.round_trip.p50_us,
            None,
        ));
        let v = r.shm.invert_in_place_frames_per_s / r.native_invert_frames_per_s;
        ratios.push(ratio(
            format!("invert frames/s at {}: plugin-host (shm, lane API) / native in-process", label(r)),
            v,
            at_goal(">= 0.5", v >= 0.5),
        ));
        ratios.push(ratio(
            format!("invert frames/s at {}: through the copying API (shm) / native in-process", label(r)),
            r.shm.invert_frames_per_s / r.native_invert_frames_per_s,
            None,
        ));
        ratios.push(ratio(
            format!("invert frames/s at {}: through the API (pipe) / native in-process", label(r)),
            r.pipe.invert_frames_per_s / r.native_invert_frames_per_s,
            None,
        ));
    }
    let restart = startup.restart_after_sigkill.p50_ms;
    ratios.push(Ratio {
        what: "restart after SIGKILL, p50 (kill → reaped → the standby process ready with the plugin's parameters)"
            .into(),
        value: restart,
        unit: "ms".into(),
        goal: Some("<= 10 ms".into()),
        met: restart.is_finite().then_some(restart <= 10.0),
    });
    ratios.push(Ratio {
        what: "restart after SIGKILL without a standby, p50 (kill → new process from the cache, same region)".into(),
        value: startup.restart_without_standby.p50_ms,
        unit: "ms".into(),
        goal: None,
        met: None,
    });
    ratios.push(ratio(
        "start-up p50: cold (compiling) / from the in-memory cache".into(),
        startup.cold.p50_ms / startup.memory_cache.p50_ms,
        None,
    ));
    ratios
}

/// The classic comparison of the two methods, with this run's figures.
fn comparison(baselines: &Baselines, results: &[SizeResult], startup: &Startup) -> Vec<Comparison> {
    let row = |aspect: &str, shm: String, pipe: String| Comparison {
        aspect: aspect.into(),
        shared_memory: shm,
        message_passing: pipe,
    };
    let speed_at = results.iter().find(|r| (r.width, r.height) == GOAL_SIZE).or(results.last());
    let (speed_shm, speed_pipe) = match speed_at {
        Some(r) => (
            format!(
                "{}: at {} the hand-off takes {} (nothing copied), the API round trip {} (the host's \
                 two copies); invert {:.0} frames/s; raw futex round trip {}",
                if r.shm.round_trip.p50_us <= r.pipe.round_trip.p50_us { "Faster" } else { "Slower" },
                label(r),
                time(r.shm.handoff.p50_us),
                time(r.shm.round_trip.p50_us),
                r.shm.invert_frames_per_s,
                time(baselines.futex_round_trip.p50_us)
            ),
            format!(
                "{}: at {} the round trip takes {}, {:.1}x the shm API round trip, {:.0}x the shm hand-off; \
                 invert {:.0} frames/s; raw 1-byte pipe round trip {}",
                if r.shm.round_trip.p50_us <= r.pipe.round_trip.p50_us { "Slower" } else { "Faster" },
                label(r),
                time(r.pipe.round_trip.p50_us),
                r.pipe.round_trip.p50_us / r.shm.round_trip.p50_us,
                r.pipe.round_trip.p50_us / r.shm.handoff.p50_us,
                r.pipe.invert_frames_per_s,
                time(baselines.pipe_round_trip.p50_us)
            ),
        ),
        None => (String::new(), String::new()),
    };
    let list = |f: &dyn Fn(&SizeResult) -> f64| {
        results.iter().map(|r| format!("{} {}", size_label(r.frame_bytes), time(f(r)))).collect::<Vec<_>>().join(", ")
    };
    let growth = match (results.first(), results.last()) {
        (Some(small), Some(large)) if large.frame_bytes > small.frame_bytes => {
            Some(large.shm.handoff.p50_us / small.shm.handoff.p50_us)
        }
        _ => None,
    };
    let data_shm = match growth {
        Some(g) if g > 1.5 => format!(
            "Nothing is copied, yet this run's hand-off grows with the frame ({g:.0}x from smallest to largest): \
             {}; look at what the runner does per frame. Through the API the host's own copy-in + copy-out \
             add memcpy time",
            list(&|r| r.shm.handoff.p50_us)
        ),
        _ => format!(
            "Any size (up to the slot size) at the same hand-off cost, nothing copied: {}; through the API the \
             host's own copy-in + copy-out add memcpy time",
            list(&|r| r.shm.handoff.p50_us)
        ),
    };
    let pipe_rate = speed_at
        .map(|r| {
            format!(
                " (about {:.2} GB/s each way at {})",
                2.0 * r.frame_bytes as f64 / r.pipe.round_trip.p50_us / 1e3,
                label(r)
            )
        })
        .unwrap_or_default();
    let data_pipe = format!(
        "Cost grows with every byte (serialised, written, read, decoded): round trip {}{pipe_rate}",
        list(&|r| r.pipe.round_trip.p50_us)
    );
    vec![
        row("Speed", speed_shm, speed_pipe),
        row("Data size", data_shm, data_pipe),
        row(
            "Synchronisation",
            format!(
                "Explicit: a state word per slot (who owns it) and a futex doorbell; hand-off algorithm between \
                 threads {} p50",
                time(baselines.handoff_round_trip.p50_us)
            ),
            format!(
                "Implicit: a read blocks until the message arrives; the kernel orders and buffers it ({} p50 for \
                 1 byte)",
                time(baselines.pipe_round_trip.p50_us)
            ),
        ),
        row(
            "Scope",
            "Processes on one machine sharing a mapping (a sealed memfd, also mapped into the plugin's wasm memory)"
                .into(),
            "Anything that carries a byte stream: pipes, sockets, other machines; no shared mapping needed".into(),
        ),
        row(
            "Programming effort",
            "Higher: region layout, ownership states, deadlines, descriptors from the plugin checked before use".into(),
            "Lower: encode, write, read, decode (postcard messages)".into(),
        ),
        row(
            "Conflicts",
            "Both sides see the same bytes: ownership by state word; a lying plugin can only garble its own \
             output, never the host's memory"
                .into(),
            "None: each side has its own copy".into(),
        ),
        row(
            "Start-up",
            format!(
                "Same process start for both: cold {:.1} ms, cached {:.1} ms ({:.1} ms with 4 KiB slots: making the \
                 slot buffers costs the rest), restart after SIGKILL {:.1} ms (p50)",
                startup.cold.p50_ms,
                startup.memory_cache.p50_ms,
                startup.memory_cache_4k_slots.p50_ms,
                startup.restart_after_sigkill.p50_ms
            ),
            "Same, with smaller regions (the pipe transport's region has no slot buffers)".into(),
        ),
    ]
}

/// Cumulative CPU time from /proc, in clock ticks: the whole machine's, and this process's
/// own (its threads and its reaped children: the plugin processes).
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    total: u64,
    busy: u64,
    steal: u64,
    own: u64,
}

impl CpuTimes {
    fn now() -> Option<Self> {
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
    fn since(&self, before: &Self) -> (f64, f64) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        let busy = self.busy.saturating_sub(before.busy);
        let own = self.own.saturating_sub(before.own);
        let other = busy.saturating_sub(own) as f64 / total * 100.0;
        (other, self.steal.saturating_sub(before.steal) as f64 / total * 100.0)
    }
}

/// A pseudo-random RGBA frame, every page touched.
fn test_frame(width: u32, height: u32) -> OwnedFrame {
    let mut frame = OwnedFrame::new(width, height, PixelFormat::Rgba8);
    let mut x: u32 = 0x9E37_79B9;
    for byte in &mut frame.data {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte = x as u8;
    }
    frame
}

const PAGE: usize = 4096;

/// `len` bytes of `buffer` (which has a page to spare) starting on a page boundary, like a slot
/// buffer. With source and destination both page-aligned the memcpy baseline avoids a slow path
/// of `rep movsb` on AMD Zen that hits copies of up to ~64 KiB when `(dst - src) % 4096` is
/// just above zero (16 for two adjacent 4 KiB heap blocks: 25 times slower here).
fn page_aligned(buffer: &mut [u8], len: usize) -> &mut [u8] {
    let start = (PAGE - buffer.as_ptr() as usize % PAGE) % PAGE;
    &mut buffer[start..start + len]
}

/// The invert plugin's loop (plugins/invert), native.
fn native_invert(src: &[u8], dst: &mut [u8]) {
    let (dst_blocks, dst_rest) = dst.as_chunks_mut::<64>();
    let (src_blocks, src_rest) = src.as_chunks::<64>();
    for (d, s) in dst_blocks.iter_mut().zip(src_blocks) {
        invert_rgba(d, s);
    }
    invert_rgba(dst_rest, src_rest);
}

fn invert_rgba(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let pixel = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) ^ 0x00ff_ffff;
        d.copy_from_slice(&pixel.to_le_bytes());
    }
}

fn spec(options: &BenchOptions, name: &str, module: &Path, frame_bytes: u64, transport: Transport) -> PluginSpec {
    let mut spec = PluginSpec::new(name, module, frame_bytes);
    spec.limits = Limits { deadline: DEADLINE, ..Limits::default() };
    spec.runner.clone_from(&options.runner);
    spec.transport = transport;
    spec
}

fn spawn(
    options: &BenchOptions,
    name: &str,
    module: &Path,
    frame_bytes: u64,
    transport: Transport,
) -> anyhow::Result<PluginProcess> {
    Ok(PluginProcess::spawn(spec(options, name, module, frame_bytes, transport))?)
}

fn check_identity(output: &OwnedFrame, input: &OwnedFrame) -> anyhow::Result<()> {
    ensure!(
        (output.width, output.height, output.data.len()) == (input.width, input.height, input.data.len()),
        "identity returned a {}x{} frame of {} bytes",
        output.width,
        output.height,
        output.data.len()
    );
    Ok(())
}

fn measure_size(
    options: &BenchOptions,
    plan: &Plan,
    invert: &Path,
    width: u32,
    height: u32,
) -> anyhow::Result<SizeResult> {
    let input = test_frame(width, height);
    let bytes = input.data.len();
    let frame_bytes = bytes as u64;
    let slots = region::MIN_SLOTS as usize;

    // In-process baselines on page-aligned buffers (like slot buffers), batched so that small
    // frames are not lost in timer overhead: one memcpy, the native invert.
    let mut buffers: Vec<Vec<u8>> = (0..2).map(|_| vec![1u8; bytes + PAGE]).collect();
    let [source, destination] = &mut buffers[..] else { unreachable!("two buffers") };
    let source = page_aligned(source, bytes);
    let destination = page_aligned(destination, bytes);
    source.copy_from_slice(&input.data);
    let batch = batch_for(bytes);
    let memcpy = sample_batched(plan, batch, || {
        destination.copy_from_slice(black_box(&*source));
        black_box(&mut *destination);
    });
    let native_invert_latency = sample_batched(plan, batch, || {
        native_invert(black_box(&*source), destination);
        black_box(&mut *destination);
    });
    drop(buffers);
    let mut expected = vec![0u8; bytes];
    native_invert(&input.data, &mut expected);
    let mut output = OwnedFrame::new(width, height, PixelFormat::Rgba8);

    // shm, identity: the round trip, with submit() and receive() timed apart; after each, the
    // host API's two copies alone, on a region like the plugin's: slots used in turn, output
    // buffers that nobody writes (identity writes none either).
    let mut identity = spawn(options, "bench-identity", &options.identity, frame_bytes, Transport::SharedMemory)?;
    let copy_region = Region::create("plugin-host:bench-copies", region::MIN_SLOTS, frame_bytes)
        .map_err(|e| anyhow::anyhow!("creating a region for the copy baseline: {e}"))?;
    let mut copy_output = vec![0u8; bytes];
    let mut slot = 0;
    let mut times: [Vec<f64>; 6] = Default::default();
    plan.repeat(|keep| {
        let start = Instant::now();
        let ticket = identity.submit(&input.view())?;
        let submitted = Instant::now();
        identity.receive(ticket, &mut output)?;
        let received = Instant::now();
        copy_region.write_buffer(slot, Buffer::Input, 0, black_box(&input.data));
        let written = Instant::now();
        copy_region.read_buffer(slot, Buffer::Output, 0, &mut copy_output);
        black_box(&mut copy_output);
        let read = Instant::now();
        slot = (slot + 1) % region::MIN_SLOTS;
        if keep {
            let trip = micros(received - start);
            let copies = micros(read - received);
            for (k, v) in [
                trip,
                micros(submitted - start),
                micros(received - submitted),
                micros(written - received),
                micros(read - written),
                trip - copies,
            ]
            .into_iter()
            .enumerate()
            {
                times[k].push(v);
            }
        }
        Ok(())
    })?;
    check_identity(&output, &input)?;
    identity.shutdown()?;
    drop(copy_region);
    drop(copy_output);
    let [trips, submits, receives, copy_in, copy_out, trip_minus_copies] = times;
    let copies: Vec<f64> = copy_in.iter().zip(&copy_out).map(|(a, b)| a + b).collect();

    // The hand-off alone, and invert in place: the lane API, nothing copied by anyone.
    let mut lanes = LaneRunner::spawn(options, &options.identity, &input)?;
    let mut slot = 0;
    let handoff = sample(plan, || {
        lanes.round_trip(slot)?;
        slot = (slot + 1) % slots;
        Ok(())
    })?;
    lanes.shutdown()?;
    let mut lanes = LaneRunner::spawn(options, invert, &input)?;
    lanes.round_trip(0)?;
    if lanes.output(0) != expected {
        bail!("invert's output in place differs from the native invert");
    }
    let invert_in_place_frames_per_s = lanes.throughput(plan)?;
    lanes.shutdown()?;

    // shm, invert: one at a time, then with every slot in flight.
    let mut plugin = spawn(options, "bench-invert", invert, frame_bytes, Transport::SharedMemory)?;
    let invert_latency = sample(plan, || {
        let ticket = plugin.submit(&input.view())?;
        plugin.receive(ticket, &mut output)?;
        Ok(())
    })?;
    if output.data != expected {
        bail!("invert's output through shm differs from the native invert");
    }
    let shm_fps = throughput(&mut plugin, &input, &mut output, plan, slots)?;
    plugin.shutdown()?;

    // pipe, identity and invert.
    let mut identity = spawn(options, "bench-identity-pipe", &options.identity, frame_bytes, Transport::Pipe)?;
    let pipe_trip = sample(plan, || {
        let ticket = identity.submit(&input.view())?;
        identity.receive(ticket, &mut output)?;
        Ok(())
    })?;
    check_identity(&output, &input)?;
    identity.shutdown()?;
    let mut plugin = spawn(options, "bench-invert-pipe", invert, frame_bytes, Transport::Pipe)?;
    output.data.fill(0);
    let ticket = plugin.submit(&input.view())?;
    plugin.receive(ticket, &mut output)?;
    if output.data != expected {
        bail!("invert's output through the pipe differs from the native invert");
    }
    let pipe_fps = throughput(&mut plugin, &input, &mut output, plan, slots)?;
    plugin.shutdown()?;

    Ok(SizeResult {
        width,
        height,
        frame_bytes,
        memcpy,
        native_invert_frames_per_s: 1e6 / native_invert_latency.p50_us,
        native_invert: native_invert_latency,
        shm: ShmDetail {
            round_trip: latency(trips),
            submit: latency(submits),
            receive: latency(receives),
            copy_in: latency(copy_in),
            copy_out: latency(copy_out),
            copies: latency(copies),
            round_trip_minus_copies: latency(trip_minus_copies),
            handoff,
            invert: invert_latency,
            invert_frames_per_s: shm_fps,
            invert_in_place_frames_per_s,
        },
        pipe: PipeDetail { round_trip: pipe_trip, invert_frames_per_s: pipe_fps },
    })
}

/// Frames per second through `plugin` with up to `in_flight` frames submitted at once: a
/// warm-up run, then `plan.samples` frames (fewer if the budget runs out).
fn throughput(
    plugin: &mut PluginProcess,
    input: &OwnedFrame,
    output: &mut OwnedFrame,
    plan: &Plan,
    in_flight: usize,
) -> anyhow::Result<f64> {
    let mut run = |count: usize, min: usize, budget: Duration| -> anyhow::Result<f64> {
        let mut tickets = VecDeque::with_capacity(in_flight);
        let start = Instant::now();
        let mut submitted = 0;
        while submitted < count && (submitted < min || start.elapsed() <= budget) {
            if tickets.len() == in_flight
                && let Some(ticket) = tickets.pop_front()
            {
                plugin.receive(ticket, output)?;
            }
            tickets.push_back(plugin.submit(&input.view())?);
            submitted += 1;
        }
        while let Some(ticket) = tickets.pop_front() {
            plugin.receive(ticket, output)?;
        }
        Ok(submitted as f64 / start.elapsed().as_secs_f64())
    };
    run(plan.warm.max(in_flight), 2, plan.budget / 4)?;
    run(plan.samples, plan.min_samples.max(in_flight), plan.budget)
}

/// A chain of equal plugins through the real pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct ChainResult {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub one_stage_frames_per_s: f64,
    pub four_stages_frames_per_s: f64,
    /// Frames copied between lane buffers in the 4-stage run (0: ownership passed along).
    pub four_stages_copies: u64,
}

fn chain(invert: &Path, options: &BenchOptions) -> anyhow::Result<ChainResult> {
    use crate::config::{Config, InputConfig, OnError, OutputConfig, PluginConfig};
    use crate::pipeline::{Prepared, Progress, RunOptions};
    struct Silent;
    impl Progress for Silent {
        fn start(&mut self, _: Option<u64>) {}
        fn frame_done(&mut self, _: u64) {}
        fn finish(&mut self) {}
    }
    let (width, height) = GOAL_SIZE;
    let frames = if options.quick { 30 } else { 200 };
    let run = |stages: usize| -> anyhow::Result<crate::pipeline::stats::RunStats> {
        let plugin = |k: usize| PluginConfig {
            name: format!("invert-{k}"),
            path: invert.to_path_buf(),
            limits: Limits::default(),
            on_error: OnError::Fail,
            max_restarts: 0,
            restart_window: std::time::Duration::from_secs(60),
            transport: Transport::SharedMemory,
            sandbox: crate::sys::sandbox::Level::Standard,
            snapshot_input: false,
            params: Vec::new(),
        };
        let config = Config {
            file: PathBuf::from("(bench)"),
            input: InputConfig::Testsrc { width, height, frames },
            plugins: (0..stages).map(plugin).collect(),
            output: OutputConfig::Null,
            ring: crate::config::DEFAULT_RING,
        };
        let run_options = RunOptions { max_frames: None, runner: options.runner.clone() };
        let (stats, result) = Prepared::new(&config, run_options)?.run(&mut Silent);
        result?;
        Ok(stats)
    };
    let one = run(1)?;
    let four = run(4)?;
    Ok(ChainResult {
        width,
        height,
        frames,
        one_stage_frames_per_s: one.fps(),
        four_stages_frames_per_s: four.fps(),
        four_stages_copies: four.copies,
    })
}

/// A plugin driven through the zero-copy lane API ([`PluginProcess::submit_lane`] and
/// [`PluginProcess::receive_lane`]), as a stage of a chain is: the frame is written into every
/// lane once; each round trip then hands a lane over and waits for it back, nothing copied.
pub struct LaneRunner {
    plugin: PluginProcess,
    region: Region,
    lanes: Vec<Option<Lane>>,
    desc: plugin_sdk::abi::FrameDesc,
    frame: u64,
}

impl LaneRunner {
    /// Starts `module` (shm) with `frame` in every lane's input buffer.
    pub fn spawn(options: &BenchOptions, module: &Path, frame: &OwnedFrame) -> anyhow::Result<Self> {
        let frame_bytes = frame.data.len() as u64;
        let region = Region::create("plugin-host:bench-lanes", region::MIN_SLOTS, frame_bytes)
            .map_err(|e| anyhow::anyhow!("creating the region: {e}"))?;
        let mut lanes = region.take_lanes();
        for lane in &mut lanes {
            region.write_pixels(lane, Buffer::Input, &frame.data);
        }
        let desc = plugin_sdk::abi::FrameDesc {
            data: 0,
            capacity: u32::try_from(region.slot_capacity()).context("slot capacity")?,
            width: frame.width,
            height: frame.height,
            stride: frame.stride,
            format: frame.format as u32,
            timestamp_us: frame.timestamp_us,
        };
        let spec = spec(options, "bench-lanes", module, frame_bytes, Transport::SharedMemory);
        let plugin = PluginProcess::spawn_stage(spec, &region)?;
        Ok(Self { plugin, region, lanes: lanes.into_iter().map(Some).collect(), desc, frame: 0 })
    }

    fn submit(&mut self, index: usize) -> anyhow::Result<Ticket> {
        let lane = self.lanes[index].take().context("the lane is in flight")?;
        self.frame += 1;
        self.plugin.submit_lane(lane, self.frame, &self.desc).map_err(|refused| {
            let (error, lane) = *refused;
            self.lanes[index] = Some(lane);
            error.into()
        })
    }

    fn wait(&mut self, ticket: Ticket) -> anyhow::Result<()> {
        let (lane, result) = self.plugin.receive_lane(ticket);
        let index = lane.slot() as usize;
        self.lanes[index] = Some(lane);
        result?;
        Ok(())
    }

    /// Hands lane `index` over and waits for it back.
    pub fn round_trip(&mut self, index: usize) -> anyhow::Result<()> {
        let ticket = self.submit(index)?;
        self.wait(ticket)
    }

    /// The output the plugin left in lane `index`.
    pub fn output(&self, index: usize) -> Vec<u8> {
        let lane = self.lanes[index].as_ref().expect("lanes are home between round trips");
        let mut pixels = Vec::new();
        self.region.read_pixels(lane, Buffer::Output, self.desc.byte_len() as usize, &mut pixels);
        pixels
    }

    /// Frames per second with every lane in flight.
    fn throughput(&mut self, plan: &Plan) -> anyhow::Result<f64> {
        let lanes = self.lanes.len();
        let mut run = |count: usize, min: usize, budget: Duration| -> anyhow::Result<f64> {
            let mut tickets = VecDeque::with_capacity(lanes);
            let start = Instant::now();
            let mut submitted = 0;
            while submitted < count && (submitted < min || start.elapsed() <= budget) {
                if tickets.len() == lanes
                    && let Some(ticket) = tickets.pop_front()
                {
                    self.wait(ticket)?;
                }
                tickets.push_back(self.submit(submitted % lanes)?);
                submitted += 1;
            }
            while let Some(ticket) = tickets.pop_front() {
                self.wait(ticket)?;
            }
            Ok(submitted as f64 / start.elapsed().as_secs_f64())
        };
        run(plan.warm.max(lanes), 2, plan.budget / 4)?;
        run(plan.samples.max(lanes), plan.min_samples.max(lanes), plan.budget)
    }

    pub fn shutdown(self) -> anyhow::Result<()> {
        Ok(self.plugin.shutdown()?)
    }
}

struct CacheDelta(cache::CacheCounts);

impl CacheDelta {
    fn start() -> Self {
        Self(cache::counts())
    }

    fn finish(self, times_ms: Vec<f64>) -> SpawnTimes {
        let now = cache::counts();
        let mut times = times_ms;
        times.sort_by(f64::total_cmp);
        SpawnTimes {
            spawns: times.len(),
            p50_ms: percentile(&times, 0.50),
            p99_ms: percentile(&times, 0.99),
            compiled: now.compiled - self.0.compiled,
            disk_hits: now.disk_hits - self.0.disk_hits,
            memory_hits: now.memory_hits - self.0.memory_hits,
        }
    }
}

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("plugin-host-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Start-up of `module` with a 1920x1080 RGBA frame capacity (shm): cold, from the disk cache,
/// from the in-memory cache, and restart after SIGKILL.
fn startup(options: &BenchOptions, module: &Path, spawns: usize) -> anyhow::Result<Startup> {
    let frame_bytes = 1920 * 1080 * 4;
    let temp = TempDir::new()?;
    let warm_dir = temp.0.join("warm");
    let spec_sized = |dir: &Path, frame_bytes: u64| {
        let mut spec = spec(options, "bench-startup", module, frame_bytes, Transport::SharedMemory);
        spec.cache_dir = Some(dir.to_path_buf());
        spec
    };
    let spec_in = |dir: &Path| spec_sized(dir, frame_bytes);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let time_spawn = |spec: PluginSpec| -> anyhow::Result<f64> {
        let start = Instant::now();
        let plugin = PluginProcess::spawn(spec)?;
        let took = start.elapsed();
        plugin.shutdown()?;
        Ok(ms(took))
    };

    // Cold: a fresh empty folder each time and nothing in memory. The first fills `warm_dir`.
    let delta = CacheDelta::start();
    let mut times = Vec::new();
    for i in 0..spawns {
        cache::clear_memory();
        let dir = if i == 0 { warm_dir.clone() } else { temp.0.join(format!("cold-{i}")) };
        times.push(time_spawn(spec_in(&dir))?);
    }
    let cold = delta.finish(times);

    let delta = CacheDelta::start();
    let mut times = Vec::new();
    for _ in 0..spawns {
        cache::clear_memory();
        times.push(time_spawn(spec_in(&warm_dir))?);
    }
    let disk_cache = delta.finish(times);

    let delta = CacheDelta::start();
    let mut times = Vec::new();
    for _ in 0..spawns {
        times.push(time_spawn(spec_in(&warm_dir))?);
    }
    let memory_cache = delta.finish(times);

    let delta = CacheDelta::start();
    let mut times = Vec::new();
    for _ in 0..spawns {
        times.push(time_spawn(spec_sized(&warm_dir, 4096))?);
    }
    let memory_cache_4k_slots = delta.finish(times);

    // Restart: SIGKILL the running plugin, then `restart()`: reap it (the caller's detection:
    // its pipe closes) and make a new process ready, reusing the region. With a standby, the new
    // process was started and loaded ahead; the pause between kills lets it get ready, as it
    // would between crashes in a real run.
    let restarts = |standby: bool| -> anyhow::Result<(SpawnTimes, Vec<f64>)> {
        let mut spec = spec_in(&warm_dir);
        spec.standby = standby;
        let mut running = PluginProcess::spawn(spec)?;
        let (mut times, mut reaped) = (Vec::new(), Vec::new());
        let delta = CacheDelta::start();
        for _ in 0..spawns {
            std::thread::sleep(Duration::from_millis(if standby { 200 } else { 20 }));
            let pid = running.pid().context("the plugin has no process")?;
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).context("pid out of range")?);
            let start = Instant::now();
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).context("kill -9")?;
            running.kill();
            reaped.push(ms(start.elapsed()));
            running.restart()?;
            times.push(ms(start.elapsed()));
        }
        running.shutdown()?;
        reaped.sort_by(f64::total_cmp);
        Ok((delta.finish(times), reaped))
    };
    let (restart_after_sigkill, reaped) = restarts(true)?;
    let (restart_without_standby, _) = restarts(false)?;

    Ok(Startup {
        plugin: module.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        frame_bytes,
        cold,
        disk_cache,
        memory_cache,
        memory_cache_4k_slots,
        restart_after_sigkill,
        restart_without_standby,
        kill_to_reaped_p50_ms: percentile(&reaped, 0.50),
    })
}

/// 1 byte there and back between two threads over two pipes.
fn pipe_round_trip(plan: &Plan) -> anyhow::Result<Latency> {
    let (mut there_read, mut there_write) = std::io::pipe()?;
    let (mut back_read, mut back_write) = std::io::pipe()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut byte = [0u8; 1];
        loop {
            match there_read.read(&mut byte)? {
                0 => return Ok(()),
                _ => back_write.write_all(&byte)?,
            }
        }
    });
    let mut byte = [7u8; 1];
    let result = sample(plan, || {
        there_write.write_all(&byte)?;
        back_read.read_exact(&mut byte)?;
        Ok(())
    });
    drop(there_write);
    echo.join().map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    result
}

/// Plain futex wait/wake between two threads on one word, no spinning.
fn futex_round_trip(plan: &Plan) -> Latency {
    const IDLE: u32 = 0;
    const REQUEST: u32 = 1;
    const REPLY: u32 = 2;
    const STOP: u32 = 3;
    let word = Arc::new(AtomicU32::new(IDLE));
    let peer = Arc::clone(&word);
    let echo = std::thread::spawn(move || {
        loop {
            match peer.load(Ordering::Acquire) {
                REQUEST => {
                    peer.store(REPLY, Ordering::Release);
                    futex::wake(&peer);
                }
                STOP => return,
                other => {
                    futex::wait(&peer, other, None);
                }
            }
        }
    });
    let result = sample(plan, || {
        word.store(REQUEST, Ordering::Release);
        futex::wake(&word);
        loop {
            let now = word.load(Ordering::Acquire);
            if now == REPLY {
                return Ok(());
            }
            futex::wait(&word, now, None);
        }
    });
    word.store(STOP, Ordering::Release);
    futex::wake(&word);
    let _ = echo.join();
    result.expect("the futex round trip cannot fail")
}

/// The hand-off algorithm PluginProcess and the runner use (spin, then futex), between threads.
fn handoff_round_trip(plan: &Plan) -> Latency {
    struct Shared {
        state: AtomicU32,
        doorbell: AtomicU32,
        stop: AtomicU32,
    }
    let shared = Arc::new(Shared {
        state: AtomicU32::new(handoff::state::FREE),
        doorbell: AtomicU32::new(0),
        stop: AtomicU32::new(0),
    });
    let peer = Arc::clone(&shared);
    let runner = std::thread::spawn(move || {
        let mut seen = peer.doorbell.load(Ordering::Acquire);
        while peer.stop.load(Ordering::Acquire) == 0 {
            if handoff::take(&peer.state) {
                handoff::complete(&Futex, &peer.state, Outcome::Done);
            } else {
                let deadline = Instant::now() + Duration::from_millis(50);
                seen = handoff::wait_doorbell(&Futex, &peer.doorbell, seen, Some(deadline));
            }
        }
    });
    let result = sample(plan, || {
        handoff::submit(&Futex, &shared.state, &shared.doorbell);
        let outcome = handoff::wait_outcome(&Futex, &shared.state, Instant::now() + DEADLINE);
        handoff::reclaim(&shared.state);
        ensure!(outcome == Ok(Outcome::Done), "hand-off between threads: {outcome:?}");
        Ok(())
    });
    shared.stop.store(1, Ordering::Release);
    handoff::ring_doorbell(&Futex, &shared.doorbell);
    let _ = runner.join();
    result.expect("the hand-off between threads failed")
}

/// A duration given in µs, in a readable unit.
fn time(us: f64) -> String {
    if us.is_nan() {
        "-".into()
    } else if us.abs() < 10.0 {
        format!("{us:.2} µs")
    } else if us.abs() < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// Splits `text` into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Pads `text` to `width` characters (µs and → count as one).
fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// The human-readable report.
pub fn print_table(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let b = &report.baselines;
    writeln!(
        out,
        "plugin-host bench: {} cores, up to {} samples per measurement{}, warm-up discarded; p50 = median",
        report.cores,
        report.iterations,
        if report.quick { " (quick)" } else { "" }
    )?;
    if let (Some(other), Some(steal)) = (report.other_cpu_percent, report.steal_percent) {
        write!(out, "During the run other processes used {other:.0}% of all CPU time (hypervisor steal {steal:.0}%)")?;
        if other >= 5.0 {
            write!(out, ": a busy machine, so expect slower, noisier figures (spinning hand-offs need a free core)")?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    writeln!(out, "Raw baselines (same process, two threads; {} round trips each):", b.pipe_round_trip.samples)?;
    for (what, l) in [
        ("pipe round trip, 1 byte", &b.pipe_round_trip),
        ("futex round trip, wait/wake (no spin)", &b.futex_round_trip),
        ("futex hand-off algorithm (spin, then futex)", &b.handoff_round_trip),
    ] {
        writeln!(out, "  {what:<46} p50 {:>10}   p99 {:>10}", time(l.p50_us), time(l.p99_us))?;
    }
    for m in &b.memcpy {
        writeln!(
            out,
            "  {:<46} p50 {:>10}   p99 {:>10}   {:>6.1} GB/s",
            format!("memcpy {}", size_label(m.frame_bytes)),
            time(m.p50_us),
            time(m.p99_us),
            m.gb_per_s
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Frame round trip through the identity plugin (no work), per transport. shm = the lane API,")?;
    writeln!(out, "nothing copied; shm+copies = submit(&Frame) + receive(&mut OwnedFrame), a copy each way:")?;
    writeln!(
        out,
        "  {:<10} {:>9} | {:>10} {:>10} | {:>10} | {:>10} {:>10} | {:>9}",
        "frame", "bytes", "shm p50", "shm p99", "shm+copies", "pipe p50", "pipe p99", "pipe/shm"
    )?;
    for r in &report.sizes {
        writeln!(
            out,
            "  {:<10} {:>9} | {:>10} {:>10} | {:>10} | {:>10} {:>10} | {:>8.0}x",
            label(r),
            size_label(r.frame_bytes),
            time(r.shm.handoff.p50_us),
            time(r.shm.handoff.p99_us),
            time(r.shm.round_trip.p50_us),
            time(r.pipe.round_trip.p50_us),
            time(r.pipe.round_trip.p99_us),
            r.pipe.round_trip.p50_us / r.shm.handoff.p50_us
        )?;
    }
    writeln!(out)?;
    writeln!(out, "shm taken apart (identity; p50 unless said). The plugin side copies nothing; the public API")?;
    writeln!(out, "copies on the host side: submit(&Frame) into the slot, receive(&mut OwnedFrame) out of it.")?;
    writeln!(out, "  submit(), receive() = the two halves of the API round trip, timed around the same calls")?;
    writeln!(out, "  copy-in, copy-out   = those two copies alone, right after each round trip, with the functions")?;
    writeln!(out, "                        submit/receive use (Region::write_buffer/read_buffer), same-sized region")?;
    writeln!(out, "  trip - copies       = round trip minus those copies, per sample (noisy at large sizes)")?;
    writeln!(out, "  hand-off            = measured directly: frame already in the slot, handed to the plugin and")?;
    writeln!(out, "                        back, nothing copied (as a stage of a zero-copy chain sees it)")?;
    writeln!(
        out,
        "  {:<10} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>12} | {:>10} {:>10}",
        "frame", "submit()", "receive()", "copy-in", "copy-out", "round trip", "trip-copies", "hand-off", "p99"
    )?;
    for r in &report.sizes {
        writeln!(
            out,
            "  {:<10} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>12} | {:>10} {:>10}",
            label(r),
            time(r.shm.submit.p50_us),
            time(r.shm.receive.p50_us),
            time(r.shm.copy_in.p50_us),
            time(r.shm.copy_out.p50_us),
            time(r.shm.round_trip.p50_us),
            time(r.shm.round_trip_minus_copies.p50_us),
            time(r.shm.handoff.p50_us),
            time(r.shm.handoff.p99_us)
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Plugin work: invert frames/s (every slot in flight) vs the same loop native, in this process;")?;
    writeln!(
        out,
        "\"in place\" = frame already in the slots, nothing copied; \"trip\" = one frame at a time via the API:"
    )?;
    writeln!(
        out,
        "  {:<10} | {:>9} {:>10} {:>9} | {:>9} | {:>10} {:>10} | {:>7} {:>8} {:>8}",
        "frame",
        "shm fps",
        "shm trip",
        "in place",
        "pipe fps",
        "native fps",
        "native p50",
        "shm/nat",
        "place/nat",
        "pipe/nat"
    )?;
    for r in &report.sizes {
        let native = r.native_invert_frames_per_s;
        writeln!(
            out,
            "  {:<10} | {:>9.1} {:>10} {:>9.1} | {:>9.1} | {:>10.1} {:>10} | {:>7.3} {:>9.3} {:>8.3}",
            label(r),
            r.shm.invert_frames_per_s,
            time(r.shm.invert.p50_us),
            r.shm.invert_in_place_frames_per_s,
            r.pipe.invert_frames_per_s,
            native,
            time(r.native_invert.p50_us),
            r.shm.invert_frames_per_s / native,
            r.shm.invert_in_place_frames_per_s / native,
            r.pipe.invert_frames_per_s / native
        )?;
    }
    writeln!(out)?;
    let s = &report.startup;
    writeln!(out, "Start-up of {} ({} frame capacity, shm), spawn → ready:", s.plugin, size_label(s.frame_bytes))?;
    for (what, t) in [
        ("cold (empty cache folder, memory cleared)", &s.cold),
        ("from the disk cache (memory cleared)", &s.disk_cache),
        ("from the in-memory cache", &s.memory_cache),
        ("from the in-memory cache, 4 KiB slots", &s.memory_cache_4k_slots),
        ("restart after SIGKILL, standby (kill → ready)", &s.restart_after_sigkill),
        ("restart after SIGKILL, no standby", &s.restart_without_standby),
    ] {
        writeln!(
            out,
            "  {what:<42} p50 {:>7.1} ms   p99 {:>7.1} ms   ({} spawns: {} compiled, {} disk hits, {} memory hits)",
            t.p50_ms, t.p99_ms, t.spawns, t.compiled, t.disk_hits, t.memory_hits
        )?;
    }
    writeln!(out, "  (of the restart, kill → dead process reaped: p50 {:.2} ms)", s.kill_to_reaped_p50_ms)?;
    writeln!(out)?;
    let c = &report.chain;
    writeln!(
        out,
        "Pipeline, invert at {}x{}, {} frames, test pattern → null: 1 stage {:.1} frames/s, 4 stages {:.1} frames/s \
         ({} frames copied between stages)",
        c.width, c.height, c.frames, c.one_stage_frames_per_s, c.four_stages_frames_per_s, c.four_stages_copies
    )?;
    writeln!(out)?;
    writeln!(out, "Goals and ratios ({} cores):", report.cores)?;
    for r in &report.ratios {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        let goal = r.goal.as_deref().map(|g| format!("goal {g}")).unwrap_or_default();
        let value = if r.unit == "ms" { format!("{:.2} ms", r.value) } else { format!("{:.2}x", r.value) };
        writeln!(out, "  {value:>10}  {goal:<13} {verdict:<6}  {}", r.what)?;
    }
    writeln!(out)?;
    writeln!(out, "Shared memory vs message passing, measured on this machine:")?;
    let widths = [18, 50, 50];
    let rule = format!("  +{}+", widths.map(|w| "-".repeat(w + 2)).join("+"));
    writeln!(out, "{rule}")?;
    writeln!(
        out,
        "  | {} | {} | {} |",
        pad("", widths[0]),
        pad("Shared memory (shm)", widths[1]),
        pad("Message passing (pipe)", widths[2])
    )?;
    writeln!(out, "{rule}")?;
    for c in &report.comparison {
        let cells =
            [wrap(&c.aspect, widths[0]), wrap(&c.shared_memory, widths[1]), wrap(&c.message_passing, widths[2])];
        let lines = cells.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..lines {
            let cell = |k: usize| pad(cells[k].get(i).map_or("", String::as_str), widths[k]);
            writeln!(out, "  | {} | {} | {} |", cell(0), cell(1), cell(2))?;
        }
        writeln!(out, "{rule}")?;
    }
    writeln!(out)?;
    writeln!(out, "Notes:")?;
    for note in &report.notes {
        writeln!(out, "  - {note}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.50), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }

    #[test]
    fn native_invert_keeps_alpha() {
        let mut out = [0u8; 8];
        native_invert(&[0, 10, 200, 7, 255, 128, 1, 0], &mut out);
        assert_eq!(out, [255, 245, 55, 7, 0, 127, 254, 0]);
    }

    #[test]
    fn plans_stop_at_their_budget_after_the_minimum() {
        let plan = Plan { warm: 1, samples: 1000, min_samples: 3, budget: Duration::ZERO };
        let mut calls = 0;
        let done = plan.repeat(|_| {
            calls += 1;
            Ok(())
        });
        assert_eq!(done.unwrap(), 3);
        assert_eq!(calls, 4);
    }

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("", 5), [""]);
    }

    /// Runs the real benchmark against the release build: `cargo xtask build`, then
    /// `cargo test -p plugin-host --release bench -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs target/release/plugin-host and the built plugins"]
    fn bench_against_the_release_build() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut options =
            BenchOptions::new(root.join("target/plugins"), root.join("target/test-plugins/identity.wasm"));
        options.runner = Some(root.join("target/release/plugin-host"));
        options.quick = std::env::var_os("BENCH_QUICK").is_some();
        let report = run(&options).unwrap();
        let mut text = Vec::new();
        print_table(&report, &mut text).unwrap();
        println!("{}", String::from_utf8(text).unwrap());
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    }
}
