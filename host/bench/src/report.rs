//! The report: every figure of a run, and the ratios and comparisons made from them.

use super::*;

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
    /// The host's copy into a slot (`Region::write_pixels`, as in `submit`), timed on its own.
    pub copy_in: Latency,
    /// The host's copy out of a slot (`Region::read_pixels`, as in `receive`), timed on its own.
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
    /// The same bytes there and back through two plain pipes between two threads, no framing:
    /// what message passing costs at best (see `baselines::pipe_bytes_round_trip`).
    pub raw_round_trip: Latency,
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
    pub branches: BranchesResult,
    pub ratios: Vec<Ratio>,
    pub comparison: Vec<Comparison>,
    pub notes: Vec<String>,
}

/// (width, height) of the RGBA frames measured: 4 KiB, 720p, 1080p, 2160p.
pub(crate) const SIZES: [(u32, u32); 4] = [(32, 32), (1280, 720), (1920, 1080), (3840, 2160)];
pub(crate) const QUICK_SIZES: usize = 2;
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);
/// The size the shm-vs-pipe and plugin-vs-native goals are stated at.
pub(crate) const GOAL_SIZE: (u32, u32) = (1920, 1080);

pub(crate) fn label(r: &SizeResult) -> String {
    format!("{}x{}", r.width, r.height)
}

pub(crate) fn ratio(what: String, value: f64, goal: Option<(&str, bool)>) -> Ratio {
    Ratio {
        what,
        value,
        unit: "x".into(),
        goal: goal.map(|(g, _)| g.to_string()),
        met: goal.filter(|_| value.is_finite()).map(|(_, met)| met),
    }
}

pub(crate) fn ratios(baselines: &Baselines, results: &[SizeResult], startup: &Startup) -> Vec<Ratio> {
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
    for r in results {
        // Message passing done well costs about what the pipe itself costs.
        let v = r.pipe.round_trip.p50_us / r.pipe.raw_round_trip.p50_us;
        let goal = (r.frame_bytes >= 1920 * 1080 * 4).then_some(("<= 1.5", v <= 1.5));
        ratios.push(ratio(
            format!("identity round trip p50 at {}: pipe transport / raw pipe round trip of the same bytes", label(r)),
            v,
            goal,
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
pub(crate) fn comparison(baselines: &Baselines, results: &[SizeResult], startup: &Startup) -> Vec<Comparison> {
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
        "Cost grows with every byte (each copied into the kernel and out again, both ways): round trip {}{pipe_rate}",
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
            "Lower: a header message, then the bytes, written and read in place".into(),
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
            "Same (the pipe transport's results land in the same slot buffers)".into(),
        ),
    ]
}
