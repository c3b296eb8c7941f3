//! `plugin-host bench`: what a frame costs on its way through a plugin process, next to the raw
//! baselines it is made of, all measured in the same run.
//!
//! - Raw baselines (same process, two threads): a 1-byte pipe round trip, a futex round trip
//!   (plain wait/wake, and the hand-off algorithm of [`crate::ipc::handoff`] with its spin), and a
//!   memcpy of each frame size.
//! - Per frame size, through the shared-memory transport ("shm", what [`PluginProcess`] does):
//!   the round trip through the `identity` plugin (no work: the hand-off alone) and the
//!   throughput through `invert`, next to a native in-process invert of the same frame.
//! - Start-up: spawn → ready of the `invert` plugin.
//!
//! Every figure is a median (p50) or p99 of sorted samples; warm-up iterations are discarded.

use crate::ipc::handoff::{self, Futex, Outcome};
use crate::sys::futex;
use crate::{Limits, PluginProcess, PluginSpec};
use anyhow::{Context, bail, ensure};
use plugin_sdk::{OwnedFrame, PixelFormat};
use serde::Serialize;
use std::collections::VecDeque;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::PathBuf;
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
    /// Samples per measurement (warm-up comes on top).
    pub iterations: usize,
    /// Fewer iterations and only the two smallest sizes: a run of a few seconds, for tests.
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

    fn samples(&self) -> usize {
        if self.quick { self.iterations.clamp(1, Self::QUICK_ITERATIONS) } else { self.iterations.max(1) }
    }
}

/// One transport at one frame size: `p50_us`/`p99_us` are the round trip through the identity
/// plugin (the hand-off alone), `frames_per_s` the throughput through invert with every slot in
/// flight.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub transport: String,
    pub frame_bytes: u64,
    pub p50_us: f64,
    pub p99_us: f64,
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
    /// Four copies in a row through five buffers (today's transport copies a frame four times).
    pub four_copies_p50_us: f64,
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
    /// `copy_from_slice` between two pre-touched buffers, per frame size.
    pub memcpy: Vec<Memcpy>,
}

/// Everything measured at one frame size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    pub width: u32,
    pub height: u32,
    pub frame_bytes: u64,
    pub memcpy: Latency,
    /// Four copies in a row through five buffers, in this thread.
    pub four_copies: Latency,
    /// submit + receive through the identity plugin, output buffer reused.
    pub identity: Latency,
    /// submit + receive through invert, one frame at a time.
    pub invert: Latency,
    /// Throughput through invert with every slot in flight.
    pub invert_frames_per_s: f64,
    /// The same invert loop, native, in this process (source → destination).
    pub native_invert: Latency,
    pub native_invert_frames_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    pub plugin: String,
    pub frame_bytes: u64,
    pub spawns: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// A derived figure, with what it divides by what.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub what: String,
    pub value: f64,
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
    pub ratios: Vec<Ratio>,
    pub notes: Vec<String>,
}

/// (width, height) of the RGBA frames measured.
const SIZES: [(u32, u32); 4] = [(32, 32), (1280, 720), (1920, 1080), (3840, 2160)];
const QUICK_SIZES: usize = 2;
const DEADLINE: Duration = Duration::from_secs(5);

fn warmup(samples: usize) -> usize {
    (samples / 10).max(2)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency(mut samples_us: Vec<f64>) -> Latency {
    samples_us.sort_by(f64::total_cmp);
    Latency { p50_us: percentile(&samples_us, 0.50), p99_us: percentile(&samples_us, 0.99), samples: samples_us.len() }
}

/// Runs `f` `warm + samples` times and keeps the last `samples` durations, in µs.
fn sample(warm: usize, samples: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Latency> {
    let mut times = Vec::with_capacity(samples);
    for i in 0..warm + samples {
        let start = Instant::now();
        f()?;
        let took = start.elapsed();
        if i >= warm {
            times.push(took.as_secs_f64() * 1e6);
        }
    }
    Ok(latency(times))
}

/// Like [`sample`] for work too short to time once: each sample runs `f` `batch` times.
fn sample_batched(warm: usize, samples: usize, batch: usize, mut f: impl FnMut()) -> Latency {
    let mut times = Vec::with_capacity(samples);
    for i in 0..warm + samples {
        let start = Instant::now();
        for _ in 0..batch {
            f();
        }
        let took = start.elapsed();
        if i >= warm {
            times.push(took.as_secs_f64() * 1e6 / batch as f64);
        }
    }
    latency(times)
}

/// Enough repetitions of a `bytes`-sized job that one sample moves about 1 MiB.
fn batch_for(bytes: usize) -> usize {
    ((1 << 20) / bytes.max(1)).max(1)
}

/// Measures everything; takes from a few seconds (`quick`) to about a minute.
pub fn run(options: &BenchOptions) -> anyhow::Result<Report> {
    let samples = options.samples();
    let warm = warmup(samples);
    let sizes = if options.quick { &SIZES[..QUICK_SIZES] } else { &SIZES[..] };
    let invert = options.plugin_dir.join("invert.wasm");
    for module in [&invert, &options.identity] {
        ensure!(module.is_file(), "{} is missing (build the plugins first: `cargo xtask build`)", module.display());
    }

    let cpu_before = CpuTimes::now();
    let pipe_round_trip = pipe_round_trip(warm, samples.max(1000)).context("pipe round trip")?;
    let futex_round_trip = futex_round_trip(warm, samples.max(1000));
    let handoff_round_trip = handoff_round_trip(warm, samples.max(1000));

    let mut results = Vec::new();
    for &(width, height) in sizes {
        results.push(
            measure_size(options, &invert, width, height, warm, samples)
                .with_context(|| format!("measuring {width}x{height}"))?,
        );
    }
    let startup = startup(options, &invert, if options.quick { 5 } else { 10 }).context("measuring start-up")?;

    let rows = results
        .iter()
        .map(|r| Row {
            transport: "shm".into(),
            frame_bytes: r.frame_bytes,
            p50_us: r.identity.p50_us,
            p99_us: r.identity.p99_us,
            frames_per_s: r.invert_frames_per_s,
        })
        .collect();
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
                four_copies_p50_us: r.four_copies.p50_us,
            })
            .collect(),
    };
    let ratios = ratios(&baselines, &results);
    let cpu = cpu_before.zip(CpuTimes::now()).map(|(before, after)| after.since(&before));
    Ok(Report {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        other_cpu_percent: cpu.map(|c| c.0),
        steal_percent: cpu.map(|c| c.1),
        iterations: samples,
        quick: options.quick,
        baselines,
        rows,
        sizes: results,
        startup,
        ratios,
        notes: vec![
            "Raw baselines run in this one process, between two threads; the scheduler places them on cores.".into(),
            "Today's shm transport is not zero-copy yet: the host copies the frame into the slot, the runner \
             copies it into wasm memory and the result back out, and the host copies the result out of the \
             slot (four copies per round trip). So hand-off time growing with frame size is expected today; \
             mapping the slots into wasm memory (zero-copy) comes later."
                .into(),
            "invert frames/s keeps every slot in flight (the host copies frame n+1 while the plugin works on \
             frame n); native invert is the same byte loop compiled natively, one frame at a time."
                .into(),
        ],
    })
}

fn ratios(baselines: &Baselines, results: &[SizeResult]) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    let Some(smallest) = results.first() else { return ratios };
    let label = |r: &SizeResult| format!("{}x{}", r.width, r.height);
    ratios.push(Ratio {
        what: format!("identity hand-off p50 at {} / futex round trip p50 (wait/wake)", label(smallest)),
        value: smallest.identity.p50_us / baselines.futex_round_trip.p50_us,
    });
    ratios.push(Ratio {
        what: format!("identity hand-off p50 at {} / hand-off algorithm round trip p50 (threads)", label(smallest)),
        value: smallest.identity.p50_us / baselines.handoff_round_trip.p50_us,
    });
    if let Some(largest) = results.last().filter(|l| l.frame_bytes > smallest.frame_bytes) {
        ratios.push(Ratio {
            what: format!("identity hand-off p50 at {} / at {}", label(largest), label(smallest)),
            value: largest.identity.p50_us / smallest.identity.p50_us,
        });
        ratios.push(Ratio {
            what: format!("memcpy p50 at {} / at {} (for comparison)", label(largest), label(smallest)),
            value: largest.memcpy.p50_us / smallest.memcpy.p50_us,
        });
    }
    let work = results.iter().find(|r| (r.width, r.height) == (1920, 1080)).or(results.last());
    if let Some(r) = work {
        ratios.push(Ratio {
            what: format!("invert frames/s via plugin / native invert frames/s at {}", label(r)),
            value: r.invert_frames_per_s / r.native_invert_frames_per_s,
        });
    }
    ratios
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

/// The invert plugin's byte loop, native.
fn native_invert(src: &[u8], dst: &mut [u8]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        d[0] = 255 - s[0];
        d[1] = 255 - s[1];
        d[2] = 255 - s[2];
        d[3] = s[3];
    }
}

fn spawn(
    options: &BenchOptions,
    name: &str,
    module: &std::path::Path,
    frame_bytes: u64,
) -> anyhow::Result<PluginProcess> {
    let mut spec = PluginSpec::new(name, module, frame_bytes);
    spec.limits = Limits { deadline: DEADLINE, ..Limits::default() };
    spec.runner.clone_from(&options.runner);
    Ok(PluginProcess::spawn(spec)?)
}

fn measure_size(
    options: &BenchOptions,
    invert: &std::path::Path,
    width: u32,
    height: u32,
    warm: usize,
    samples: usize,
) -> anyhow::Result<SizeResult> {
    let input = test_frame(width, height);
    let bytes = input.data.len();
    let frame_bytes = bytes as u64;

    // In-process baselines on page-aligned buffers (like slot buffers), batched so that small
    // frames are not lost in timer overhead: one memcpy, a chain of four copies through five
    // buffers (what today's transport does to a frame, minus the processes), the native invert.
    let mut buffers: Vec<Vec<u8>> = (0..5).map(|_| vec![1u8; bytes + PAGE]).collect();
    let mut chain: Vec<&mut [u8]> = buffers.iter_mut().map(|b| page_aligned(b, bytes)).collect();
    chain[0].copy_from_slice(&input.data);
    let batch = batch_for(bytes);
    let memcpy = sample_batched(warm, samples, batch, || {
        let (source, rest) = chain.split_at_mut(1);
        rest[0].copy_from_slice(black_box(&*source[0]));
        black_box(&mut *rest[0]);
    });
    let four_copies = sample_batched(warm, samples, batch, || {
        for k in 0..4 {
            let (done, rest) = chain.split_at_mut(k + 1);
            rest[0].copy_from_slice(black_box(&*done[k]));
        }
        black_box(&mut chain);
    });
    let native_invert_latency = sample_batched(warm, samples, batch, || {
        let (source, rest) = chain.split_at_mut(1);
        native_invert(black_box(&*source[0]), rest[0]);
        black_box(&mut *rest[0]);
    });
    drop(chain);
    drop(buffers);

    // The hand-off alone: the identity plugin does no work.
    let mut output = OwnedFrame::new(width, height, PixelFormat::Rgba8);
    let mut identity = spawn(options, "bench-identity", &options.identity, frame_bytes)?;
    let identity_latency = sample(warm, samples, || {
        let ticket = identity.submit(&input.view())?;
        identity.receive(ticket, &mut output)?;
        Ok(())
    })?;
    ensure!(
        (output.width, output.height, output.data.len()) == (width, height, bytes),
        "identity returned a {}x{} frame of {} bytes",
        output.width,
        output.height,
        output.data.len()
    );
    identity.shutdown()?;

    // Real work: invert, one at a time, then with every slot in flight.
    let mut plugin = spawn(options, "bench-invert", invert, frame_bytes)?;
    let invert_latency = sample(warm, samples, || {
        let ticket = plugin.submit(&input.view())?;
        plugin.receive(ticket, &mut output)?;
        Ok(())
    })?;
    let mut expected = vec![0u8; bytes];
    native_invert(&input.data, &mut expected);
    if output.data != expected {
        bail!("invert's output differs from the native invert");
    }
    let slots = crate::ipc::region::MIN_SLOTS as usize;
    throughput(&mut plugin, &input, &mut output, warm, slots)?;
    let invert_frames_per_s = throughput(&mut plugin, &input, &mut output, samples, slots)?;
    plugin.shutdown()?;

    Ok(SizeResult {
        width,
        height,
        frame_bytes,
        memcpy,
        four_copies,
        identity: identity_latency,
        invert: invert_latency,
        invert_frames_per_s,
        native_invert_frames_per_s: 1e6 / native_invert_latency.p50_us,
        native_invert: native_invert_latency,
    })
}

/// Frames per second through `plugin` with up to `in_flight` frames submitted at once.
fn throughput(
    plugin: &mut PluginProcess,
    input: &OwnedFrame,
    output: &mut OwnedFrame,
    count: usize,
    in_flight: usize,
) -> anyhow::Result<f64> {
    let mut tickets = VecDeque::with_capacity(in_flight);
    let start = Instant::now();
    for _ in 0..count {
        if tickets.len() == in_flight
            && let Some(ticket) = tickets.pop_front()
        {
            plugin.receive(ticket, output)?;
        }
        tickets.push_back(plugin.submit(&input.view())?);
    }
    while let Some(ticket) = tickets.pop_front() {
        plugin.receive(ticket, output)?;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// spawn → ready of `module` with a 1920x1080 RGBA frame capacity; the first spawn is discarded.
fn startup(options: &BenchOptions, module: &std::path::Path, spawns: usize) -> anyhow::Result<Startup> {
    let frame_bytes = 1920 * 1080 * 4;
    let mut times = Vec::with_capacity(spawns);
    for i in 0..=spawns {
        let start = Instant::now();
        let plugin = spawn(options, "bench-startup", module, frame_bytes)?;
        let took = start.elapsed();
        plugin.shutdown()?;
        if i > 0 {
            times.push(took.as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(Startup {
        plugin: module.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        frame_bytes,
        spawns,
        p50_ms: percentile(&times, 0.50),
        p99_ms: percentile(&times, 0.99),
    })
}

/// 1 byte there and back between two threads over two pipes.
fn pipe_round_trip(warm: usize, samples: usize) -> anyhow::Result<Latency> {
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
    let result = sample(warm, samples, || {
        there_write.write_all(&byte)?;
        back_read.read_exact(&mut byte)?;
        Ok(())
    });
    drop(there_write);
    echo.join().map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    result
}

/// Plain futex wait/wake between two threads on one word, no spinning.
fn futex_round_trip(warm: usize, samples: usize) -> Latency {
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
    let result = sample(warm, samples, || {
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
fn handoff_round_trip(warm: usize, samples: usize) -> Latency {
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
    let result = sample(warm, samples, || {
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
    } else if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1000.0 {
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

/// The human-readable report.
pub fn print_table(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let b = &report.baselines;
    writeln!(
        out,
        "plugin-host bench: {} cores, {} samples per measurement{}, warm-up discarded; p50 = median",
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
    writeln!(out)?;
    writeln!(out, "Frame round trip through a plugin process (transport shm; identity does no work),")?;
    writeln!(out, "next to one memcpy and to four copies in a row in this thread (page-aligned buffers):")?;
    writeln!(
        out,
        "  {:<10} {:>9} | {:>10} {:>10} | {:>10} {:>10} | {:>8} {:>9}",
        "frame", "bytes", "memcpy", "4 copies", "identity", "p99", "/memcpy", "/4 copies"
    )?;
    for r in &report.sizes {
        writeln!(
            out,
            "  {:<10} {:>9} | {:>10} {:>10} | {:>10} {:>10} | {:>7.1}x {:>8.1}x",
            format!("{}x{}", r.width, r.height),
            size_label(r.frame_bytes),
            time(r.memcpy.p50_us),
            time(r.four_copies.p50_us),
            time(r.identity.p50_us),
            time(r.identity.p99_us),
            r.identity.p50_us / r.memcpy.p50_us,
            r.identity.p50_us / r.four_copies.p50_us
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Plugin work: invert via the plugin process vs the same loop native, in this process:")?;
    writeln!(
        out,
        "  {:<10} | {:>12} {:>10} | {:>10} {:>10} | {:>13}",
        "frame", "plugin fps", "p50 trip", "native fps", "native p50", "plugin/native"
    )?;
    for r in &report.sizes {
        writeln!(
            out,
            "  {:<10} | {:>12.1} {:>10} | {:>10.1} {:>10} | {:>13.3}",
            format!("{}x{}", r.width, r.height),
            r.invert_frames_per_s,
            time(r.invert.p50_us),
            r.native_invert_frames_per_s,
            time(r.native_invert.p50_us),
            r.invert_frames_per_s / r.native_invert_frames_per_s
        )?;
    }
    writeln!(out)?;
    let s = &report.startup;
    writeln!(
        out,
        "Start-up, spawn → ready of {} ({} frame capacity), {} spawns: p50 {:.1} ms   p99 {:.1} ms",
        s.plugin,
        size_label(s.frame_bytes),
        s.spawns,
        s.p50_ms,
        s.p99_ms
    )?;
    writeln!(out)?;
    writeln!(out, "Ratios:")?;
    for r in &report.ratios {
        writeln!(out, "  {:>9.2}x  {}", r.value, r.what)?;
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
