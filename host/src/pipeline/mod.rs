//! Running a config: the source, one thread per plugin stage, and the sink, joined by bounded
//! channels so that stage k works on frame n while stage k+1 works on frame n−1. Frames keep
//! their order; memory stays bounded; buffers are recycled through a pool.

pub mod stats;

use crate::config::{Config, ConfigError, OnError, PluginConfig};
use crate::io::{self, MediaError, Sink, Source};
use crate::plugin::{ErrorKind, PluginError, PluginProcess, PluginSpec, Ticket};
use plugin_sdk::OwnedFrame;
use stats::{PluginStats, RunStats};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A frame and its 1-based number in the input.
type Numbered = (u64, OwnedFrame);

/// Frames after which page faults start to count (buffers and mappings are warm by then).
const WARM_UP_FRAMES: u64 = 10;

/// Frames waiting between two threads.
const CHANNEL_DEPTH: usize = 2;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config or something it names is wrong; nothing ran. Exit code 2.
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
    options: RunOptions,
}

impl Prepared {
    /// Checks everything a config names and starts the plugins. Problems with the config, the
    /// plugins' modules or parameters, the input or the output are [`RunError::Config`].
    pub fn new(config: &Config, options: RunOptions) -> Result<Self, RunError> {
        let source = io::open_source(&config.input).map_err(|e| config.error(format!("input: {e}")))?;
        let (width, height, format) = source.shape();
        let frame_bytes = width as u64 * height as u64 * 4;
        let mut stages = Vec::new();
        for plugin in &config.plugins {
            stages.push(Stage::start(plugin, frame_bytes, &options).map_err(|e| match e.kind {
                ErrorKind::ReadModule { .. }
                | ErrorKind::NotWasm { .. }
                | ErrorKind::NotAPlugin { .. }
                | ErrorKind::Param(_)
                | ErrorKind::Init(_)
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
        Ok(Self { source, sink, stages, options })
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

    /// Runs every frame through the chain. On failure the output so far is still put in place
    /// (complete up to the last frame written) and the error says what failed.
    pub fn run(self, progress: &mut dyn Progress) -> (RunStats, Result<(), RunError>) {
        let Prepared { mut source, mut sink, stages, options } = self;
        let started = Instant::now();
        let total = match (source.len_hint(), options.max_frames) {
            (Some(n), Some(m)) => Some(n.min(m)),
            (n, m) => n.or(m),
        };
        progress.start(total);
        let pool = Pool::default();
        let frames_in = Arc::new(Mutex::new(0u64));

        let (source_tx, mut upstream) = sync_channel::<Numbered>(CHANNEL_DEPTH);
        let source_pool = pool.clone();
        let counted = Arc::clone(&frames_in);
        let max_frames = options.max_frames;
        let source_thread = std::thread::spawn(move || -> Result<(), RunError> {
            let mut n = 0u64;
            while max_frames.is_none_or(|m| n < m) {
                if crate::sys::signals::stop_requested() {
                    return Err(RunError::Interrupted);
                }
                let mut frame = source_pool.get();
                if !source.next_into(&mut frame)? {
                    break;
                }
                n += 1;
                if let Ok(mut c) = counted.lock() {
                    *c = n;
                }
                if source_tx.send((n, frame)).is_err() {
                    break;
                }
            }
            Ok(())
        });

        let mut stage_threads = Vec::new();
        for stage in stages {
            let (tx, rx) = sync_channel::<Numbered>(CHANNEL_DEPTH);
            let input = std::mem::replace(&mut upstream, rx);
            let stage_pool = pool.clone();
            stage_threads.push(std::thread::spawn(move || stage.run(input, tx, stage_pool)));
        }

        let mut frames_out = 0u64;
        let mut host_warm = None;
        let mut sink_result = Ok(());
        for (_, frame) in upstream.iter() {
            if let Err(e) = sink.write(frames_out, &frame) {
                sink_result = Err(RunError::from(e));
                break;
            }
            frames_out += 1;
            if frames_out == WARM_UP_FRAMES {
                host_warm = crate::sys::process::minor_faults().ok();
            }
            pool.put(frame);
            progress.frame_done(frames_out);
        }
        drop(upstream);

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
        keep(&mut first_error, sink.finish().map_err(RunError::from));
        progress.finish();
        let frames_in = frames_in.lock().map(|n| *n).unwrap_or(0);
        let host_faults_per_frame = match (host_warm, crate::sys::process::minor_faults()) {
            (Some(warm), Ok(now)) if frames_out > WARM_UP_FRAMES => {
                now.saturating_sub(warm) as f64 / (frames_out - WARM_UP_FRAMES) as f64
            }
            _ => 0.0,
        };
        let wall_s = started.elapsed().as_secs_f64();
        let stats = RunStats { frames_in, frames_out, wall_s, host_faults_per_frame, plugins };
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

/// Recycled frame buffers, so that steady state allocates nothing.
#[derive(Clone, Default)]
struct Pool(Arc<Mutex<Vec<OwnedFrame>>>);

impl Pool {
    fn get(&self) -> OwnedFrame {
        self.0
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_else(|| OwnedFrame::new(0, 0, plugin_sdk::PixelFormat::Rgba8))
    }
    fn put(&self, frame: OwnedFrame) {
        if let Ok(mut v) = self.0.lock()
            && v.len() < 64
        {
            v.push(frame);
        }
    }
}

/// One plugin of the chain and what happened to it.
struct Stage {
    config: PluginConfig,
    spec: PluginSpec,
    process: Option<PluginProcess>,
    stats: PluginStats,
    /// The plugin process's counters after warm-up.
    warm: Option<crate::plugin::RunnerStats>,
}

impl Stage {
    fn start(config: &PluginConfig, frame_bytes: u64, options: &RunOptions) -> Result<Self, PluginError> {
        let mut spec = PluginSpec::new(&config.name, &config.path, frame_bytes);
        spec.params = config.params.clone();
        spec.limits = config.limits.clone();
        spec.transport = config.transport;
        spec.runner = options.runner.clone();
        spec.sandbox = config.sandbox;
        let process = PluginProcess::spawn(spec.clone())?;
        Ok(Self {
            config: config.clone(),
            spec,
            process: Some(process),
            stats: PluginStats::new(&config.name),
            warm: None,
        })
    }

    /// Serves frames from `input` to `output` until the input ends or the stage fails.
    fn run(
        mut self,
        input: Receiver<Numbered>,
        output: SyncSender<Numbered>,
        pool: Pool,
    ) -> (PluginStats, Result<(), PluginError>) {
        let result = self.serve(&input, &output, &pool);
        if let (Some(process), Some(warm)) = (self.process.as_mut(), self.warm)
            && let Ok(now) = process.runner_stats()
            && now.frames > warm.frames
        {
            self.stats.plugin_faults_per_frame =
                now.minor_faults.saturating_sub(warm.minor_faults) as f64 / (now.frames - warm.frames) as f64;
        }
        if let Some(process) = self.process.take() {
            let _ = process.shutdown();
        }
        (self.stats, result)
    }

    fn serve(
        &mut self,
        input: &Receiver<Numbered>,
        output: &SyncSender<Numbered>,
        pool: &Pool,
    ) -> Result<(), PluginError> {
        let slots = self.spec.slots as usize;
        let mut pending: VecDeque<(Ticket, Numbered)> = VecDeque::new();
        let mut ended = false;
        let mut last_done = Instant::now();
        loop {
            // Keep every slot busy: the next frame is copied in while the plugin works.
            while !ended && pending.len() < slots {
                let next = if pending.is_empty() {
                    input.recv().map_err(|_| TryRecvError::Disconnected)
                } else {
                    input.try_recv()
                };
                match next {
                    Ok(numbered) => {
                        if let Some(entry) = self.submit(numbered, output, pool)? {
                            pending.push_back(entry);
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => ended = true,
                }
            }
            let Some((ticket, (index, frame))) = pending.pop_front() else {
                return Ok(());
            };
            // Service time: from when the plugin could start on this frame to when it was done.
            let started = ticket.submitted().max(last_done);
            let mut out = pool.get();
            let result = match self.process.as_mut() {
                Some(process) => process.receive(ticket, &mut out),
                None => Err(PluginError { plugin: self.config.name.clone(), kind: ErrorKind::NotRunning }),
            };
            last_done = Instant::now();
            match result {
                Ok(()) => {
                    self.stats.frames += 1;
                    if self.stats.frames == WARM_UP_FRAMES
                        && let Some(process) = self.process.as_mut()
                    {
                        self.warm = process.runner_stats().ok();
                    }
                    self.stats.samples_us.push((last_done - started).as_micros() as u64);
                    pool.put(frame);
                    if output.send((index, out)).is_err() {
                        return Ok(());
                    }
                }
                Err(error) => {
                    pool.put(out);
                    self.stats.errors += 1;
                    if self.config.on_error == OnError::Fail {
                        return Err(error);
                    }
                    let dead = self.process.as_ref().is_none_or(|p| p.pid().is_none());
                    self.apply_policy(&error, (index, frame), output, pool);
                    if dead {
                        // Frames queued in the dead process go to the new one.
                        let requeue: Vec<Numbered> = pending.drain(..).map(|(_, f)| f).collect();
                        self.restart();
                        for numbered in requeue {
                            if let Some(entry) = self.submit(numbered, output, pool)? {
                                pending.push_back(entry);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Submits a frame, or applies the policy when the plugin is disabled. Returns the entry to
    /// wait for, if the frame went to the plugin.
    fn submit(
        &mut self,
        (index, frame): Numbered,
        output: &SyncSender<Numbered>,
        pool: &Pool,
    ) -> Result<Option<(Ticket, Numbered)>, PluginError> {
        let error = match self.process.as_mut() {
            Some(process) => match process.submit_numbered(&frame.view(), index) {
                Ok(ticket) => return Ok(Some((ticket, (index, frame)))),
                Err(error) => {
                    self.stats.errors += 1;
                    error
                }
            },
            None => PluginError { plugin: self.config.name.clone(), kind: ErrorKind::NotRunning },
        };
        if self.config.on_error == OnError::Fail {
            return Err(error);
        }
        self.apply_policy(&error, (index, frame), output, pool);
        Ok(None)
    }

    /// Skips or passes through a frame the plugin could not process (policy skip/passthrough).
    fn apply_policy(
        &mut self,
        error: &PluginError,
        (index, frame): Numbered,
        output: &SyncSender<Numbered>,
        pool: &Pool,
    ) {
        // A disabled plugin was reported once, when it was disabled.
        let report = self.process.is_some() || !matches!(error.kind, ErrorKind::NotRunning);
        match self.config.on_error {
            OnError::Fail | OnError::Skip => {
                if report {
                    tracing::warn!("{error}; frame {index} skipped");
                }
                self.stats.skipped += 1;
                pool.put(frame);
            }
            OnError::Passthrough => {
                if report {
                    tracing::warn!("{error}; frame {index} passed through unchanged");
                }
                self.stats.passed_through += 1;
                let _ = output.send((index, frame));
            }
        }
    }

    /// Starts a fresh process after the old one died; after `max_restarts`, or when it cannot
    /// start, the plugin stays disabled and its policy handles every further frame.
    fn restart(&mut self) {
        self.process = None;
        if self.stats.restarts >= self.config.max_restarts as u64 {
            tracing::error!(
                "plugin \"{}\": disabled after {} restarts; {} every further frame",
                self.config.name,
                self.stats.restarts,
                if self.config.on_error == OnError::Skip { "skipping" } else { "passing through" }
            );
            return;
        }
        self.stats.restarts += 1;
        match PluginProcess::spawn(self.spec.clone()) {
            Ok(process) => self.process = Some(process),
            Err(error) => tracing::error!("{error}; the plugin stays disabled"),
        }
    }
}
