//! Running a config: the source, one thread per plugin stage, and the sink, joined by bounded
//! channels so that stage k works on frame n while stage k+1 works on frame n−1.
//!
//! Frames never move between stages by copy. The chain shares one region ([`Region::create_chain`])
//! whose slots are *lanes*: the source writes a frame into a free lane's first boundary, each
//! stage's plugin reads it there (mapped read-only) and writes its result into the lane's next
//! boundary, which is the next stage's input, and the sink encodes from the last boundary and
//! frees the lane. Threads pass the lane's token and the
//! validated descriptor. The only copy is on the failure path (a frame passed through a stage
//! unchanged), and it is counted. Frames keep their order; memory is the ring of lanes.

pub mod stats;

use crate::config::{Config, ConfigError, OnError, PluginConfig};
use crate::io::{self, MediaError, Sink, Source};
use crate::ipc::region::{Buffer, Lane, Region};
use crate::plugin::{ErrorKind, PluginError, PluginProcess, PluginSpec, Ticket};
use plugin_sdk::abi::FrameDesc;
use plugin_sdk::{Frame, OwnedFrame};
use stats::{PluginStats, RunStats};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A frame on its way: its 1-based number in the input, its lane, and its validated shape.
struct Carried {
    frame: u64,
    lane: Lane,
    desc: FrameDesc,
    /// Set on a frame a failed stage passed through: the host copied it into that stage's
    /// output boundary, which its plugin can write whenever it runs. The stage runs nothing
    /// until whoever reads the frame next drops this, when it is done with the buffer.
    reading: Option<Reading>,
}

/// Dropped when the reader of a passed-through frame no longer reads its buffer.
type Reading = Sender<()>;

/// Frames after which page faults start to count (buffers and mappings are warm by then).
const WARM_UP_FRAMES: u64 = 10;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config or something it names is wrong (a plugin that cannot start included); nothing
    /// ran. Exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("a pipeline thread panicked: {0}")]
    Panic(String),
    #[error("interrupted")]
    Interrupted,
}

impl RunError {
    /// 2 for config errors, 1 for failures while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) => 2,
            RunError::Interrupted => 130,
            _ => 1,
        }
    }
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this many input frames.
    pub max_frames: Option<u64>,
    /// The runner executable (see [`PluginSpec::runner`]).
    pub runner: Option<PathBuf>,
}

/// Reports progress from the sink: frames written so far, and the total when known.
pub trait Progress {
    fn start(&mut self, total: Option<u64>);
    fn frame_done(&mut self, frames_out: u64);
    fn finish(&mut self);
}

/// A checked, started pipeline: input open, output prepared, every plugin running.
pub struct Prepared {
    source: Box<dyn Source>,
    sink: Box<dyn Sink>,
    stages: Vec<Stage>,
    region: Region,
    options: RunOptions,
}

impl Prepared {
    /// Checks everything a config names and starts the plugins. Problems with the config, the
    /// plugins' modules or parameters, the input or the output are [`RunError::Config`].
    pub fn new(config: &Config, options: RunOptions) -> Result<Self, RunError> {
        let source = io::open_source(&config.input).map_err(|e| config.error(format!("input: {e}")))?;
        let (width, height, format) = source.shape();
        let frame_bytes = width as u64 * height as u64 * 4;
        // One control block per plugin, and one for the sink's view of the last buffer.
        let stage_count = (config.plugins.len() as u32 + 1).max(2);
        let lanes = config.plugins.len() as u32 + config.ring;
        let region = Region::create_chain("plugin-host:chain", stage_count, lanes.max(2), frame_bytes)
            .map_err(|e| RunError::Plugin(PluginError { plugin: "pipeline".into(), kind: e.into() }))?;
        let mut stages = Vec::new();
        for (k, plugin) in config.plugins.iter().enumerate() {
            let view = region.for_stage(k as u32).map_err(|e| config.error(e.to_string()))?;
            stages.push(Stage::start(plugin, frame_bytes, &view, &options).map_err(|e| match e.kind {
                ErrorKind::Interrupted => RunError::Interrupted,
                ErrorKind::ReadModule { .. }
                | ErrorKind::NotAFile { .. }
                | ErrorKind::ModuleTooLarge { .. }
                | ErrorKind::Compile { .. }
                | ErrorKind::NotWasm { .. }
                | ErrorKind::NotAPlugin { .. }
                | ErrorKind::Param(_)
                | ErrorKind::Init(_)
                | ErrorKind::StartupTimeout(_)
                | ErrorKind::Died { frame: None, .. }
                | ErrorKind::Protocol(_)
                | ErrorKind::Sandbox(_) => RunError::Config(config.error(e.to_string())),
                _ => RunError::Plugin(e),
            })?);
        }
        if let Some(first) = stages.first()
            && let Some(process) = &first.process
            && !process.description().accepts(format)
        {
            return Err(config
                .error(format!(
                    "plugin \"{}\" does not accept the input's {} frames (it takes {})",
                    first.config.name,
                    format.name(),
                    process.description().formats.join(", ")
                ))
                .into());
        }
        let sink = io::open_sink(&config.output).map_err(|e| config.error(format!("output: {e}")))?;
        Ok(Self { source, sink, stages, region, options })
    }

    /// One line on the plugins' sandboxes, for the run's summary.
    pub fn sandbox_summary(&self) -> String {
        crate::sys::sandbox::Report::run_summary(
            self.stages.iter().filter_map(|s| s.process.as_ref()).map(|p| (p.name(), p.sandbox())),
        )
    }

    /// Whether the output goes to stdout (then nothing else may be printed there).
    pub fn output_is_stdout(&self) -> bool {
        self.sink.uses_stdout()
    }

    /// Runs every frame through the chain. On failure the output so far (complete up to the last
    /// frame written) is put in place, or kept beside an output that was already there
    /// ([`RunStats::output_kept_aside`]), and the error says what failed.
    pub fn run(self, progress: &mut dyn Progress) -> (RunStats, Result<(), RunError>) {
        let Prepared { mut source, mut sink, stages, region, options } = self;
        let started = Instant::now();
        let total = match (source.len_hint(), options.max_frames) {
            (Some(n), Some(m)) => Some(n.min(m)),
            (n, m) => n.or(m),
        };
        progress.start(total);
        let frames_in = Arc::new(Mutex::new(0u64));
        let lanes = region.take_lanes();
        let depth = lanes.len();
        // Free lanes go back to the source from the sink and from stages that drop a frame.
        let (free_tx, free_rx) = channel::<Lane>();
        for lane in lanes {
            let _ = free_tx.send(lane);
        }

        // Set when the sink stops taking frames: the source, which may be waiting for a free lane
        // that a failed stage took with it, then stops too.
        let sink_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (source_tx, mut upstream) = sync_channel::<Carried>(depth);
        let source_stop = Arc::clone(&sink_done);
        let counted = Arc::clone(&frames_in);
        let max_frames = options.max_frames;
        let first_view = region.clone();
        let source_thread = std::thread::spawn(move || -> Result<(), RunError> {
            let mut n = 0u64;
            let mut decoded = OwnedFrame::new(0, 0, plugin_sdk::PixelFormat::Rgba8);
            while max_frames.is_none_or(|m| n < m) {
                if crate::sys::signals::stop_requested() {
                    return Err(RunError::Interrupted);
                }
                if !source.next_into(&mut decoded)? {
                    break;
                }
                let mut lane = loop {
                    match free_rx.recv_timeout(std::time::Duration::from_millis(50)) {
                        Ok(lane) => break Some(lane),
                        Err(RecvTimeoutError::Timeout) if !source_stop.load(Ordering::Acquire) => {}
                        Err(_) => break None,
                    }
                };
                let Some(mut lane) = lane.take() else { break };
                let desc = FrameDesc {
                    data: 0,
                    capacity: first_view.slot_capacity() as u32,
                    width: decoded.width,
                    height: decoded.height,
                    stride: decoded.stride,
                    format: decoded.format as u32,
                    timestamp_us: decoded.timestamp_us,
                };
                let bytes = desc.byte_len() as usize;
                first_view.write_pixels(&mut lane, Buffer::Input, &decoded.data[..bytes]);
                n += 1;
                if let Ok(mut c) = counted.lock() {
                    *c = n;
                }
                if source_tx.send(Carried { frame: n, lane, desc, reading: None }).is_err() {
                    break;
                }
            }
            Ok(())
        });

        let stage_count = stages.len() as u32;
        let mut stage_threads = Vec::new();
        for stage in stages {
            let (tx, rx) = sync_channel::<Carried>(depth);
            let input = std::mem::replace(&mut upstream, rx);
            let free = free_tx.clone();
            stage_threads.push(std::thread::spawn(move || stage.run(input, tx, free)));
        }

        let sink_view = region.for_stage(stage_count).expect("the region has a block for the sink");
        let mut frames_out = 0u64;
        let mut host_warm = None;
        let mut sink_result = Ok(());
        // The last stage's process can still write the buffer: the sink encodes its own copy.
        let mut pixels = Vec::new();
        for Carried { frame, lane, desc, reading } in upstream.iter() {
            sink_view.read_pixels(&lane, Buffer::Input, desc.byte_len() as usize, &mut pixels);
            drop(reading);
            let written = Frame::new(
                &pixels,
                desc.width,
                desc.height,
                desc.stride,
                plugin_sdk::PixelFormat::from_u32(desc.format).unwrap_or(plugin_sdk::PixelFormat::Rgba8),
                desc.timestamp_us,
            )
            .map_err(|e| MediaError::Frame { frame, reason: e.0 })
            .and_then(|view| sink.write(frame - 1, &view));
            let _ = free_tx.send(lane);
            if let Err(e) = written {
                sink_result = Err(RunError::from(e));
                break;
            }
            frames_out += 1;
            if frames_out == WARM_UP_FRAMES {
                host_warm = crate::sys::process::minor_faults().ok();
            }
            progress.frame_done(frames_out);
        }
        sink_done.store(true, Ordering::Release);
        drop(upstream);
        drop(free_tx);

        let mut first_error: Option<RunError> = None;
        let keep = |first_error: &mut Option<RunError>, result: Result<(), RunError>| {
            if let Err(e) = result
                && first_error.is_none()
            {
                *first_error = Some(e);
            }
        };
        let mut plugins = Vec::new();
        for handle in stage_threads {
            match handle.join() {
                Ok((mut stats, result)) => {
                    stats.finish();
                    plugins.push(stats);
                    keep(&mut first_error, result.map_err(RunError::from));
                }
                Err(panic) => keep(&mut first_error, Err(RunError::Panic(panic_message(&panic)))),
            }
        }
        keep(&mut first_error, sink_result);
        // After a failure the source may sit in a blocking read (stdin): leave it behind.
        if first_error.is_none() || source_thread.is_finished() {
            keep(&mut first_error, join(source_thread));
        }
        let mut output_kept_aside = None;
        if first_error.is_none() {
            keep(&mut first_error, sink.finish().map_err(RunError::from));
        } else {
            match sink.keep_aside() {
                Ok(kept) => output_kept_aside = kept,
                Err(e) => keep(&mut first_error, Err(e.into())),
            }
        }
        progress.finish();
        let frames_in = frames_in.lock().map(|n| *n).unwrap_or(0);
        let host_faults_per_frame = match (host_warm, crate::sys::process::minor_faults()) {
            (Some(warm), Ok(now)) if frames_out > WARM_UP_FRAMES => {
                now.saturating_sub(warm) as f64 / (frames_out - WARM_UP_FRAMES) as f64
            }
            _ => 0.0,
        };
        let wall_s = started.elapsed().as_secs_f64();
        let copies = plugins.iter().map(|p| p.copies).sum();
        let stats =
            RunStats { frames_in, frames_out, wall_s, host_faults_per_frame, copies, plugins, output_kept_aside };
        (stats, first_error.map_or(Ok(()), Err))
    }
}

fn join(handle: std::thread::JoinHandle<Result<(), RunError>>) -> Result<(), RunError> {
    handle.join().unwrap_or_else(|panic| Err(RunError::Panic(panic_message(&panic))))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// One plugin of the chain and what happened to it.
struct Stage {
    config: PluginConfig,
    process: Option<PluginProcess>,
    /// This stage's view of the chain's region (for the failure path's copy).
    region: Region,
    stats: PluginStats,
    /// The plugin process's counters after warm-up.
    warm: Option<crate::plugin::RunnerStats>,
    /// Failures since the last frame that went well, for the restart back-off.
    failures_in_a_row: u32,
    /// When the recent restarts happened (those within the config's window).
    recent_restarts: VecDeque<Instant>,
}

/// A frame the plugin is working on.
struct Pending {
    ticket: Ticket,
    frame: u64,
    input: FrameDesc,
    reading: Option<Reading>,
}

/// Back-off before restart number `n` (1-based) of a run of failures: none for the first, then
/// 10 ms doubling up to 1 s.
fn restart_backoff(failures_in_a_row: u32) -> Duration {
    match failures_in_a_row {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(10u64 << (n - 2).min(7)).min(Duration::from_secs(1)),
    }
}

impl Stage {
    fn start(
        config: &PluginConfig,
        frame_bytes: u64,
        region: &Region,
        options: &RunOptions,
    ) -> Result<Self, PluginError> {
        let mut spec = PluginSpec::new(&config.name, &config.path, frame_bytes);
        spec.params = config.params.clone();
        spec.limits = config.limits.clone();
        spec.transport = config.transport;
        spec.runner = options.runner.clone();
        spec.sandbox = config.sandbox;
        spec.slots = region.slot_count();
        spec.standby = config.max_restarts > 0;
        spec.snapshot_input = config.snapshot_input;
        let process = PluginProcess::spawn_stage(spec, region)?;
        Ok(Self {
            config: config.clone(),
            process: Some(process),
            region: region.clone(),
            stats: PluginStats::new(&config.name),
            warm: None,
            failures_in_a_row: 0,
            recent_restarts: VecDeque::new(),
        })
    }

    /// Serves frames from `input` to `output` until the input ends or the stage fails.
    fn run(
        mut self,
        input: Receiver<Carried>,
        output: SyncSender<Carried>,
        free: Sender<Lane>,
    ) -> (PluginStats, Result<(), PluginError>) {
        let result = self.serve(&input, &output, &free);
        if let Some(process) = self.process.as_mut() {
            if let Some(warm) = self.warm
                && let Ok(now) = process.runner_stats()
                && now.frames > warm.frames
            {
                self.stats.plugin_faults_per_frame =
                    now.minor_faults.saturating_sub(warm.minor_faults) as f64 / (now.frames - warm.frames) as f64;
            }
            self.stats.copies += process.copies();
        }
        if let Some(process) = self.process.take() {
            let _ = process.shutdown();
        }
        (self.stats, result)
    }

    fn serve(
        &mut self,
        input: &Receiver<Carried>,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
    ) -> Result<(), PluginError> {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut ended = false;
        let mut last_done = Instant::now();
        // Whether the current process's death has been counted (by the submit that found it).
        let mut death_counted = false;
        loop {
            // A death noticed outside a frame (a submit, or asking for its counters) is
            // recovered from here.
            if self.is_dead() {
                if !death_counted {
                    self.stats.count_failure(&ErrorKind::NotRunning);
                }
                self.recover(&mut pending, output, free)?;
                death_counted = false;
            }
            // Hand over every frame that has arrived: the plugin works while we wait.
            while !ended {
                let next = if pending.is_empty() {
                    input.recv().map_err(|_| TryRecvError::Disconnected)
                } else {
                    input.try_recv()
                };
                match next {
                    Ok(carried) => {
                        let busy = !pending.is_empty();
                        if let Some(entry) = self.submit(carried, output, free, busy)? {
                            pending.push_back(entry);
                        }
                        if self.is_dead() {
                            // The submit found it dead and counted that: restart before the next frame.
                            death_counted = true;
                            break;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => ended = true,
                }
            }
            if self.is_dead() {
                continue;
            }
            let Some(Pending { ticket, frame, input: input_desc, reading }) = pending.pop_front() else {
                return Ok(());
            };
            // Service time: from when the plugin could start on this frame to when it was done.
            let started = ticket.submitted().max(last_done);
            let (lane, result) = match self.process.as_mut() {
                Some(process) => process.receive_lane(ticket),
                None => unreachable!("a ticket outlived its plugin"),
            };
            last_done = Instant::now();
            // The plugin is done reading its input buffer, whatever the outcome.
            drop(reading);
            let passes_through = result.is_err() && self.config.on_error == OnError::Passthrough;
            if passes_through && !pending.is_empty() && !self.is_dead() {
                // The frame's copy will go where this plugin can write while it runs: let it
                // finish what it holds first, and keep the results for after this frame.
                let mut held = Vec::new();
                while !self.is_dead() {
                    let Some(Pending { ticket, frame, input, reading }) = pending.pop_front() else { break };
                    let started = ticket.submitted().max(last_done);
                    let (lane, result) = self.process.as_mut().expect("a process holds them").receive_lane(ticket);
                    last_done = Instant::now();
                    drop(reading);
                    held.push((Carried { frame, lane, desc: input, reading: None }, result, last_done - started));
                }
                let finished = self.finish(
                    Carried { frame, lane, desc: input_desc, reading: None },
                    result,
                    last_done - started,
                    output,
                    free,
                )?;
                if !finished {
                    return Ok(());
                }
                for (carried, result, took) in held {
                    if !self.finish(carried, result, took, output, free)? {
                        return Ok(());
                    }
                }
            } else if !self.finish(
                Carried { frame, lane, desc: input_desc, reading: None },
                result,
                last_done - started,
                output,
                free,
            )? {
                return Ok(());
            }
            if self.is_dead() {
                self.recover(&mut pending, output, free)?;
            }
        }
    }

    /// Delivers a frame the plugin finished (`result` is its output descriptor), or applies the
    /// policy to one it failed (`carried.desc` is then its input). False when the next stage is
    /// gone.
    fn finish(
        &mut self,
        carried: Carried,
        result: Result<FrameDesc, PluginError>,
        took: Duration,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
    ) -> Result<bool, PluginError> {
        match result {
            Ok(desc) => {
                self.stats.frames += 1;
                self.failures_in_a_row = 0;
                if self.stats.frames == WARM_UP_FRAMES
                    && let Some(process) = self.process.as_mut()
                {
                    self.warm = process.runner_stats().ok();
                }
                self.stats.samples_us.push(took.as_micros() as u64);
                Ok(output.send(Carried { desc, ..carried }).is_ok())
            }
            Err(error) => {
                self.stats.count_failure(&error.kind);
                if self.config.on_error == OnError::Fail {
                    return Err(error);
                }
                // Nothing else is in the plugin's hands here (see `serve`).
                self.apply_policy(&error, carried, output, free, false);
                Ok(true)
            }
        }
    }

    /// Whether the stage has a process and it has died (a disabled stage has none).
    fn is_dead(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.pid().is_none())
    }

    /// After the process died: takes back the lanes of the frames it still held (their inputs
    /// are intact: a plugin only writes its output buffer), restarts it and hands them over again.
    fn recover(
        &mut self,
        pending: &mut VecDeque<Pending>,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
    ) -> Result<(), PluginError> {
        let mut requeue = Vec::new();
        for Pending { ticket, frame, input, reading } in pending.drain(..) {
            let process = self.process.as_mut().expect("pending frames have a process");
            let (lane, _) = process.receive_lane(ticket);
            requeue.push(Carried { frame, lane, desc: input, reading });
        }
        self.restart();
        for carried in requeue {
            let busy = !pending.is_empty();
            if let Some(entry) = self.submit(carried, output, free, busy)? {
                pending.push_back(entry);
            }
        }
        Ok(())
    }

    /// Submits a frame, or applies the policy when the plugin is disabled or refuses it.
    /// Returns the entry to wait for, if the frame went to the plugin.
    fn submit(
        &mut self,
        carried: Carried,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
        busy: bool,
    ) -> Result<Option<Pending>, PluginError> {
        let Carried { frame, lane, desc, reading } = carried;
        let (error, lane) = match self.process.as_mut() {
            Some(process) => match process.submit_lane(lane, frame, &desc) {
                Ok(ticket) => return Ok(Some(Pending { ticket, frame, input: desc, reading })),
                Err(refused) => {
                    let (error, lane) = *refused;
                    self.stats.count_failure(&error.kind);
                    (error, lane)
                }
            },
            None => (PluginError { plugin: self.config.name.clone(), kind: ErrorKind::NotRunning }, lane),
        };
        if self.config.on_error == OnError::Fail {
            return Err(error);
        }
        self.apply_policy(&error, Carried { frame, lane, desc, reading }, output, free, busy);
        Ok(None)
    }

    /// Skips or passes through a frame the plugin could not process (policy skip/passthrough).
    /// `carried` holds the plugin's input; `busy` says other frames are in the plugin's hands.
    fn apply_policy(
        &mut self,
        error: &PluginError,
        carried: Carried,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
        busy: bool,
    ) {
        let Carried { frame, mut lane, desc, reading } = carried;
        // A disabled plugin was reported once, when it was disabled.
        let report = self.process.is_some() || !matches!(error.kind, ErrorKind::NotRunning);
        match self.config.on_error {
            OnError::Fail | OnError::Skip => {
                if report {
                    tracing::warn!("{error}; frame {frame} skipped");
                }
                self.stats.skipped += 1;
                drop(reading);
                let _ = free.send(lane);
            }
            OnError::Passthrough => {
                if report {
                    tracing::warn!("{error}; frame {frame} passed through unchanged");
                }
                self.stats.passed_through += 1;
                // The copy goes into this stage's output boundary, which its plugin can write
                // whenever it runs: while the next reader reads it, no code of this plugin may
                // run. A plugin busy with other frames is killed first (they are handed to its
                // replacement); then this stage waits until the reader is done.
                if busy && let Some(process) = self.process.as_mut() {
                    process.kill();
                    // The host's own doing: its restart needs no back-off (max_restarts still counts it).
                    self.failures_in_a_row = 0;
                }
                // The next stage reads the lane's next boundary: the one copy of the failure path.
                self.region.copy_input_to_output(&mut lane, desc.byte_len() as usize);
                drop(reading);
                self.stats.copies += 1;
                let (done_reading, read) = channel();
                if output.send(Carried { frame, lane, desc, reading: Some(done_reading) }).is_ok() {
                    // Ends with an error when the reader drops its end: it is done.
                    let _ = read.recv();
                }
            }
        }
    }

    /// Starts a fresh process after the old one died (after a back-off when failures repeat);
    /// after `max_restarts`, or when it cannot start, the plugin stays disabled and its policy
    /// handles every further frame.
    fn restart(&mut self) {
        let mut failed_starts = 0u32;
        loop {
            let now = Instant::now();
            let window = self.config.restart_window;
            self.recent_restarts.retain(|&at| now.duration_since(at) < window);
            if self.recent_restarts.len() >= self.config.max_restarts as usize
                || failed_starts >= self.config.max_restarts.max(1)
            {
                if let Some(process) = self.process.take() {
                    self.stats.copies += process.copies();
                }
                tracing::error!(
                    "plugin \"{}\": disabled after {} restarts within {:?}; {} every further frame",
                    self.config.name,
                    self.recent_restarts.len(),
                    window,
                    if self.config.on_error == OnError::Skip { "skipping" } else { "passing through" }
                );
                return;
            }
            let Some(process) = self.process.as_mut() else { return };
            self.recent_restarts.push_back(now);
            self.failures_in_a_row += 1;
            std::thread::sleep(restart_backoff(self.failures_in_a_row));
            self.stats.restarts += 1;
            let started = Instant::now();
            match process.restart() {
                Ok(()) => {
                    self.stats.restart_us.push(started.elapsed().as_micros() as u64);
                    return;
                }
                // A process that dies while it starts is one more failed restart.
                Err(error) => {
                    failed_starts += 1;
                    tracing::warn!("{error}; restarting again");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_exponentially_up_to_a_second() {
        let waits: Vec<u64> = (1..=12).map(|n| restart_backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]);
    }
}
