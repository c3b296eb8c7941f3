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

mod convert;
mod graph_run;
mod stage;
pub mod stats;

use crate::config::{Config, ConfigError};
use crate::io::{self, FrameShape, MediaError, Sink, Source, StreamInfo};
use convert::{ConversionLog, Converter};
use plugin_host::ipc::region::{Buffer, Lane, Region};
use plugin_host::process::{PluginError, StartFailure};
use plugin_sdk::abi::FrameDesc;
use plugin_sdk::{Frame, OwnedFrame, Shape};
use stage::Stage;
use stats::RunStats;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A frame on its way: its 1-based number in the input, its lane, and its validated shape.
struct Carried {
    frame: u64,
    lane: Lane,
    desc: FrameDesc,
    /// Its metadata, encoded (`FrameMeta::encode`) and known to decode: set by the source,
    /// carried through every stage, changed only by a plugin that sets it (checked when it
    /// comes back). Kept encoded, so that a stage writes it as it is.
    meta: Vec<u8>,
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
    /// Where the run publishes its counters while it runs (for `--metrics`).
    pub live: Option<Live>,
    /// Parameter changes to make while running (`--changes`), in time order.
    pub changes: Vec<crate::config::ParamChange>,
}

/// A running pipeline's counters, for whoever watches it (the metrics endpoint): each plugin's
/// statistics, published by its stage a few times a second and at the end, and the frames in
/// and out, counted as they pass. Its size does not grow with the run.
#[derive(Debug, Clone, Default)]
pub struct Live {
    plugins: Arc<Mutex<Vec<stats::PluginStats>>>,
    frames_in: Arc<std::sync::atomic::AtomicU64>,
    frames_out: Arc<std::sync::atomic::AtomicU64>,
    /// Per plugin name: its schema, and where requests for it go while it runs.
    controls: Arc<Mutex<Vec<LiveControl>>>,
    /// Paused: the inputs take no new frame (the frames in the pipeline finish), except one per
    /// step asked for.
    paused: Arc<std::sync::atomic::AtomicBool>,
    steps: Arc<std::sync::atomic::AtomicU64>,
    /// For a preview: every this many milliseconds each node keeps a copy of its last frame
    /// (as RGBA); 0: none is kept.
    preview_every_ms: Arc<std::sync::atomic::AtomicU64>,
    previews: Arc<Mutex<Vec<KeptFrame>>>,
}

/// A node's last frame kept for a preview: its name and the frame, as RGBA.
type KeptFrame = (String, Arc<OwnedFrame>);

/// One running plugin as the control API sees it.
#[derive(Debug)]
struct LiveControl {
    name: String,
    description: plugin_host::schema::PluginDescription,
    /// Its sandbox in one line (`standard: 13 layers on`).
    sandbox: String,
    /// Whether its module can be swapped while running (a chain's plugins; not yet a graph's).
    swappable: bool,
    requests: Sender<LiveRequest>,
}

/// What the control API asks of a running plugin, at its next frame boundary.
#[derive(Debug)]
enum LiveRequest {
    /// New values for some of its parameters.
    Params(Vec<(String, plugin_sdk::abi::ParamValue)>),
    /// Keep its state now (as `state_every` would).
    KeepState,
    /// Run this module instead, from a frame boundary, once it has loaded.
    Swap(PathBuf),
}

/// What [`Live::snapshot`] gives.
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub plugins: Vec<stats::PluginStats>,
}

impl Live {
    pub fn snapshot(&self) -> LiveStats {
        LiveStats {
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            plugins: self.plugins.lock().map(|p| p.clone()).unwrap_or_default(),
        }
    }

    /// Gives running plugin `plugin` new values for `params`, from the next frame it takes:
    /// checked against its schema first (the schema's sentence when refused; nothing changes).
    pub fn set_params(&self, plugin: &str, params: Vec<(String, plugin_sdk::abi::ParamValue)>) -> Result<(), String> {
        self.ask(plugin, |description| {
            description.resolve_params(&params).map_err(|e| format!("plugin \"{plugin}\": {e}"))?;
            Ok(LiveRequest::Params(params))
        })
    }

    /// Has running plugin `plugin` keep its state now, before its next frame (for a process
    /// that replaces it after a crash; see `state_every`).
    pub fn keep_state(&self, plugin: &str) -> Result<(), String> {
        self.ask(plugin, |_| Ok(LiveRequest::KeepState))
    }

    /// Has running plugin `plugin` load `module` in a new process (the plugin keeps serving
    /// frames meanwhile) and take it at the first frame boundary after: same parameters, same
    /// output shape, or it goes on with its module as before. A new module whose process is
    /// disabled (`max_restarts`) within its first `restart_window_s` is swapped back.
    pub fn swap(&self, plugin: &str, module: &std::path::Path) -> Result<(), String> {
        if !module.is_file() {
            return Err(format!("{}: no such module file", module.display()));
        }
        let swappable =
            self.controls.lock().ok().and_then(|c| c.iter().find(|c| c.name == plugin).map(|c| c.swappable));
        if swappable == Some(false) {
            return Err(format!(
                "plugin \"{plugin}\" is part of a graph: its module cannot be swapped while running yet"
            ));
        }
        self.ask(plugin, |_| Ok(LiveRequest::Swap(module.to_path_buf())))
    }

    /// The running plugins, each with what it says about itself (its parameter schema) and its
    /// sandbox in one line.
    pub fn plugins(&self) -> Vec<(String, plugin_host::schema::PluginDescription, String)> {
        let controls = self
            .controls
            .lock()
            .map(|c| c.iter().map(|c| (c.name.clone(), c.description.clone(), c.sandbox.clone())).collect());
        controls.unwrap_or_default()
    }

    /// Plugin `plugin` runs another module now: its description and sandbox (for `/state`, the
    /// page's controls and the checks of new values).
    fn described(&self, plugin: &str, description: plugin_host::schema::PluginDescription, sandbox: String) {
        if let Ok(mut controls) = self.controls.lock()
            && let Some(control) = controls.iter_mut().find(|c| c.name == plugin)
        {
            control.description = description;
            control.sandbox = sandbox;
        }
    }

    /// The nodes whose last frame is kept ([`Live::keep_frames`]), in the order they first had one.
    pub fn frame_names(&self) -> Vec<String> {
        self.previews.lock().map(|p| p.iter().map(|(name, _)| name.clone()).collect()).unwrap_or_default()
    }

    /// Stops taking new frames from the inputs (the frames already in the pipeline finish).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Takes frames again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
    }

    /// While paused: lets one more frame in from each input.
    pub fn step(&self) {
        self.steps.fetch_add(1, Ordering::AcqRel);
    }

    /// Has every node keep a copy of its last frame, at most every `every`, for
    /// [`Live::frame`] (a preview).
    pub fn keep_frames(&self, every: std::time::Duration) {
        self.preview_every_ms.store((every.as_millis() as u64).max(1), Ordering::Release);
    }

    /// The last frame kept of `node` (an input or a plugin, by name), as RGBA.
    pub fn frame(&self, node: &str) -> Option<Arc<OwnedFrame>> {
        let previews = self.previews.lock().ok()?;
        previews.iter().find(|(name, _)| name == node).map(|(_, frame)| Arc::clone(frame))
    }

    /// Keeps `frame` as `node`'s last, when frames are kept and the last was kept at least the
    /// interval ago (`last`). The copy (and a conversion to RGBA) is made only then.
    fn offer(&self, node: &str, last: &mut Option<Instant>, frame: impl FnOnce() -> Option<OwnedFrame>) {
        let every = self.preview_every_ms.load(Ordering::Acquire);
        if every == 0 || last.is_some_and(|at| at.elapsed() < std::time::Duration::from_millis(every)) {
            return;
        }
        *last = Some(Instant::now());
        let Some(frame) = frame() else { return };
        let rgba = match frame.format {
            plugin_sdk::PixelFormat::Rgba8 => frame,
            _ => plugin_sdk::testing::to_rgba(&frame),
        };
        if let Ok(mut previews) = self.previews.lock() {
            match previews.iter_mut().find(|(name, _)| name == node) {
                Some((_, kept)) => *kept = Arc::new(rgba),
                None => previews.push((node.to_string(), Arc::new(rgba))),
            }
        }
    }

    /// `offer` for a frame in a region's buffer: copied out only when it is kept.
    fn offer_buffer(
        &self,
        node: &str,
        last: &mut Option<Instant>,
        region: &Region,
        lane: &Lane,
        which: Buffer,
        desc: &FrameDesc,
    ) {
        self.offer(node, last, || {
            let mut pixels = Vec::new();
            region.read_pixels(lane, which, desc.byte_len() as usize, &mut pixels);
            let format = plugin_sdk::PixelFormat::from_u32(desc.format)?;
            let view = Frame::new(&pixels, desc.width, desc.height, desc.stride, format, desc.timestamp_us).ok()?;
            OwnedFrame::from_pixels(desc.width, desc.height, format, view.packed().into_owned()).ok()
        });
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Waits, before an input takes its next frame, while the run is paused and this input has
    /// taken (`stepped`) every step asked for, or until `stop` says the run is over.
    fn wait_while_paused(&self, stepped: &mut u64, stop: impl Fn() -> bool) {
        while self.paused.load(Ordering::Acquire) && !stop() {
            if self.steps.load(Ordering::Acquire) > *stepped {
                *stepped += 1;
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Steps asked for while running are no steps.
        *stepped = self.steps.load(Ordering::Acquire);
    }

    /// Sends `plugin` the request `make` gives for its description.
    fn ask(
        &self,
        plugin: &str,
        make: impl FnOnce(&plugin_host::schema::PluginDescription) -> Result<LiveRequest, String>,
    ) -> Result<(), String> {
        let controls = self.controls.lock().map_err(|_| "the run's controls are gone".to_string())?;
        let Some(control) = controls.iter().find(|c| c.name == plugin) else {
            let names: Vec<&str> = controls.iter().map(|c| c.name.as_str()).collect();
            return Err(format!("no plugin named \"{plugin}\" is running (there are: {})", names.join(", ")));
        };
        let request = make(&control.description)?;
        control.requests.send(request).map_err(|_| format!("plugin \"{plugin}\" has stopped"))
    }

    /// Stage `index`'s statistics as they stand.
    fn publish(&self, index: usize, stats: &stats::PluginStats) {
        if let Ok(mut plugins) = self.plugins.lock() {
            if plugins.len() <= index {
                plugins.resize_with(index + 1, Default::default);
            }
            plugins[index].clone_from(stats);
            // Its percentiles as they stand (the end of the run fills them likewise).
            plugins[index].finish();
        }
    }
}

/// A plugin's state as the host keeps it (`state_every`): taken every so many frames handed to
/// the plugin, once they are done (frames in flight wait), and given to the process that
/// replaces a crashed one.
#[derive(Debug)]
struct KeptState {
    every: u64,
    since: u64,
    /// Asked for through the control API.
    asked: bool,
    bytes: Option<Vec<u8>>,
}

impl KeptState {
    fn new(config: &crate::config::PluginConfig) -> Self {
        if config.state_every > 0 && config.workers.is_some_and(|w| w > 1) {
            tracing::warn!("plugin \"{}\": its state is kept only when it runs as 1 worker", config.name);
        }
        KeptState { every: config.state_every, since: 0, asked: false, bytes: None }
    }

    fn frame_done(&mut self) {
        self.since += 1;
    }

    /// Whether the state is due to be kept (before the next frame).
    fn due(&self) -> bool {
        self.asked || (self.every > 0 && self.since >= self.every)
    }

    /// Has the state kept before the next frame (the control API's request).
    fn ask(&mut self) {
        self.asked = true;
    }

    /// Takes the state from `process`, which has no frame in flight.
    fn keep(&mut self, process: &mut plugin_host::process::PluginProcess, stats: &mut stats::PluginStats) {
        self.since = 0;
        self.asked = false;
        match process.snapshot() {
            Ok(Some(bytes)) => {
                self.bytes = Some(bytes);
                stats.snapshots += 1;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}; its state was not kept"),
        }
    }

    /// Gives the kept state, if any, to `process`, just started in place of one that died.
    fn restore(&self, process: &mut plugin_host::process::PluginProcess, stats: &mut stats::PluginStats) {
        let Some(bytes) = &self.bytes else { return };
        match process.restore(bytes) {
            Ok(true) => stats.restores += 1,
            Ok(false) => {}
            Err(e) => {
                stats.restore_failures += 1;
                tracing::warn!("{e}; it starts afresh");
            }
        }
    }
}

/// A new module for a running plugin: loading in the background, swapped in at a frame
/// boundary, and swapped back when its process keeps dying in its first restart window.
#[derive(Default)]
struct Swapper {
    loading: Option<plugin_host::process::SwapCandidate>,
    /// When the last swap was: a module that keeps crashing soon after goes back.
    swapped_at: Option<Instant>,
}

impl Swapper {
    /// Starts loading `module` for `process`; while one is loading, another is refused (said).
    fn ask(&mut self, process: &plugin_host::process::PluginProcess, module: PathBuf) {
        if self.loading.is_some() {
            tracing::warn!("plugin \"{}\": a module is loading already; {} is not", process.name(), module.display());
            return;
        }
        self.loading = Some(process.prepare_swap(module));
    }

    /// Whether a module has loaded and waits for the next frame boundary.
    fn due(&self) -> bool {
        self.loading.as_ref().is_some_and(|c| c.is_ready())
    }

    /// With no frame in flight: swaps the loaded module in, or says why not; true when swapped.
    /// The state kept of the module before is not given to the new one.
    fn swap(
        &mut self,
        process: &mut plugin_host::process::PluginProcess,
        stats: &mut stats::PluginStats,
        state: &mut KeptState,
    ) -> bool {
        let Some(candidate) = self.loading.take() else { return false };
        let before = process.module().to_path_buf();
        match process.swap(candidate) {
            Ok(()) => {
                stats.swaps += 1;
                tracing::info!("plugin \"{}\" now runs {}", process.name(), process.module().display());
                self.swapped_at = Some(Instant::now());
                state.bytes = None;
                true
            }
            Err(e) => {
                stats.swap_failures += 1;
                tracing::warn!("{e}; it goes on with {}", before.display());
                false
            }
        }
    }

    /// Called when `process` is about to be disabled: if its module was swapped in less than
    /// `window` ago, swaps the one before back in (restarts count afresh) and returns true.
    fn roll_back(
        &mut self,
        process: &mut plugin_host::process::PluginProcess,
        window: std::time::Duration,
        stats: &mut stats::PluginStats,
    ) -> bool {
        if self.swapped_at.take().is_none_or(|at| at.elapsed() >= window) {
            return false;
        }
        match process.swap_back() {
            Ok(false) => false,
            Ok(true) => {
                stats.rollbacks += 1;
                tracing::warn!(
                    "plugin \"{}\": its new module kept crashing; back to {}",
                    process.name(),
                    process.module().display()
                );
                true
            }
            Err(e) => {
                tracing::error!("{e}; the swap back failed");
                false
            }
        }
    }
}

/// Reports progress from the sink: frames written so far, and the total when known.
pub trait Progress {
    fn start(&mut self, total: Option<u64>);
    fn frame_done(&mut self, frames_out: u64);
    fn finish(&mut self);
}

/// A checked, started pipeline: inputs open, outputs prepared, every plugin running.
pub struct Prepared(Kind);

enum Kind {
    Chain(Box<Chain>),
    Graph(Box<graph_run::Graph>),
}

impl Prepared {
    /// Checks everything a config names and starts the plugins. Problems with the config, the
    /// plugins' modules or parameters, the inputs or the outputs are [`RunError::Config`].
    pub fn new(config: &Config, options: RunOptions) -> Result<Self, RunError> {
        Ok(Prepared(match config.is_chain() {
            true => Kind::Chain(Box::new(Chain::new(config, options)?)),
            false => Kind::Graph(Box::new(graph_run::Graph::new(config, options)?)),
        }))
    }

    /// One line on the plugins' sandboxes, for the run's summary.
    pub fn sandbox_summary(&self) -> String {
        let processes: Vec<&plugin_host::process::PluginProcess> = match &self.0 {
            Kind::Chain(chain) => chain.stages.iter().filter_map(|s| s.processes().next()).collect(),
            Kind::Graph(graph) => graph.processes().collect(),
        };
        plugin_host::sys::sandbox::Report::run_summary(processes.into_iter().map(|p| (p.name(), p.sandbox())))
    }

    /// Whether an output goes to stdout (then nothing else may be printed there).
    pub fn output_is_stdout(&self) -> bool {
        match &self.0 {
            Kind::Chain(chain) => chain.sink.uses_stdout(),
            Kind::Graph(graph) => graph.output_is_stdout(),
        }
    }

    /// Runs every frame through the pipeline. On failure the output so far (complete up to the
    /// last frame written) is put in place, or kept beside an output that was already there
    /// ([`RunStats::output_kept_aside`]), and the error says what failed.
    pub fn run(self, progress: &mut dyn Progress) -> (RunStats, Result<(), RunError>) {
        match self.0 {
            Kind::Chain(chain) => chain.run(progress),
            Kind::Graph(graph) => graph.run(progress),
        }
    }
}

/// A prepared chain: one input, plugins in a row, one output, on lanes.
struct Chain {
    source: Box<dyn Source>,
    sink: Box<dyn Sink>,
    stages: Vec<Stage>,
    region: Region,
    options: RunOptions,
    info: StreamInfo,
    /// The format the input's frames are converted to for the first plugin, if it takes another.
    source_convert: Option<plugin_sdk::PixelFormat>,
    conversions: ConversionLog,
    /// Each boundary's frames: `input 1280x720 yuv420p`, then each plugin's output.
    shapes: Vec<String>,
    /// The height of the frames the output gets.
    out_height: u32,
}

impl Chain {
    fn new(config: &Config, options: RunOptions) -> Result<Self, RunError> {
        let source = io::open_source(config.input()).map_err(|e| config.error(format!("input: {e}")))?;
        let (width, height, format) = source.shape();
        // A control block per worker (each stage's first is its own), and one for the sink's
        // view of the last buffer; a boundary per plugin and one more.
        let default_workers = crate::config::default_workers();
        let workers: Vec<u32> = config.plugins.iter().map(|p| p.workers.unwrap_or(default_workers)).collect();
        let boundaries = (config.plugins.len() as u32 + 1).max(2);
        let control_blocks = (workers.iter().sum::<u32>() + 1).max(boundaries);
        if control_blocks > plugin_host::ipc::region::MAX_CONTROL_BLOCKS {
            let most = plugin_host::ipc::region::MAX_CONTROL_BLOCKS - 1;
            return Err(config
                .error(format!("the plugins' workers add up to {} processes; at most {most}", control_blocks - 1))
                .into());
        }
        let lanes = config.plugins.len() as u32 + config.ring;
        // Buffers hold the chain's largest frame. Each plugin declares its output's shape when
        // it starts; one that makes frames larger than the buffers were made for (an upscaler)
        // has the chain started again with larger ones, once: the shapes depend only on the
        // parameters and the input's shape.
        let mut frame_bytes = rgba_bytes(Shape::new(width, height, format));
        // The input's frames count against the limit too: a stream's header alone (a y4m on
        // stdin) would otherwise size every buffer.
        if frame_bytes > config.max_frame_bytes {
            return Err(config
                .error(format!(
                    "input: its {width}x{height} frames are {frame_bytes} bytes as RGBA, more than max_frame_bytes = {}",
                    config.max_frame_bytes
                ))
                .into());
        }
        let mut starts = 0;
        let (region, mut stages, shapes) = loop {
            let region =
                Region::create_with_workers("plugin-host:chain", control_blocks, boundaries, lanes.max(2), frame_bytes)
                    .map_err(|e| RunError::Plugin(PluginError { plugin: "pipeline".into(), kind: e.into() }))?;
            let mut stages: Vec<Stage> = Vec::new();
            let mut shapes = vec![("input".to_string(), Shape::new(width, height, format))];
            let mut next_block = 0u32;
            let mut needed = frame_bytes;
            for (k, plugin) in config.plugins.iter().enumerate() {
                let views = (next_block..next_block + workers[k])
                    .map(|block| region.for_worker(block, k as u32))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| config.error(e.to_string()))?;
                next_block += workers[k];
                let input = shapes.last().expect("the input's shape comes first").1;
                // Before any frame: a plugin that cannot start is bad input, like a bad config.
                let stage = Stage::start(plugin, frame_bytes, &views, &options, input).map_err(|e| {
                    match e.kind.start_failure() {
                        StartFailure::Interrupted => RunError::Interrupted,
                        StartFailure::BadPlugin | StartFailure::Init => RunError::Config(config.error(e.to_string())),
                        StartFailure::Host => RunError::Plugin(e),
                    }
                })?;
                if let Some(description) = stage.processes().next().map(|p| p.description()) {
                    let takes: Vec<&str> = match description.inputs.is_empty() {
                        true => vec![plugin_sdk::InputSpec::MAIN.name],
                        false => description.inputs.iter().map(|i| i.name.as_str()).collect(),
                    };
                    config.graph().check_input_count(k, &takes).map_err(|e| match config.file.as_path() {
                        origin if origin == std::path::Path::new(crate::config::COMMAND_LINE) => config.error(format!(
                            "{e}; a one-line chain gives each plugin the one before it: write a graph (several \
                             inputs, inputs = [...]) in a config file"
                        )),
                        _ => config.error(e),
                    })?;
                }
                let output = stage.output_shape();
                let took = stage.processes().next().and_then(|p| p.input_shape()).unwrap_or(input);
                needed = needed.max(check_output_shape(config, plugin, took, output)?);
                shapes.push((plugin.name.clone(), output));
                stages.push(stage);
                if needed > frame_bytes {
                    break;
                }
            }
            if needed <= frame_bytes {
                break (region, stages, shapes);
            }
            // Each start finds a larger frame (a plugin that grows it): one per plugin at most,
            // or the shapes moved.
            starts += 1;
            if starts > config.plugins.len() {
                return Err(config.error("the plugins declared other output shapes when started again").into());
            }
            drop(stages);
            frame_bytes = needed;
        };
        // Each change goes to its stage, checked against its plugin's schema before any frame.
        for (k, stage) in stages.iter_mut().enumerate() {
            let name = &config.plugins[k].name;
            let mine: Vec<_> = options.changes.iter().filter(|c| &c.plugin == name).cloned().collect();
            if let Some(description) = stage.processes().next().map(|p| p.description()) {
                for change in &mine {
                    description.resolve_params(&change.params).map_err(|e| {
                        config.error(format!("the change at {} ms: plugin \"{name}\": {e}", change.at_us / 1000))
                    })?;
                }
            }
            stage.change_at(mine);
        }
        let info = source.info();
        let conversions = ConversionLog::default();
        for stage in &mut stages {
            stage.convert_with(info.colour, conversions.clone());
        }
        let mut source_convert = None;
        if let Some(first) = stages.first()
            && let Some(process) = first.processes().next()
        {
            let takes = process.description();
            match plugin_sdk::convert::nearest(format, |f| takes.accepts(f)) {
                Some(to) if to != format => source_convert = Some(to),
                Some(_) => {}
                None => {
                    return Err(config
                        .error(format!(
                            "plugin \"{}\" takes none of the formats the input's {} frames convert to (it takes {})",
                            first.config.name,
                            format.name(),
                            takes.formats.join(", ")
                        ))
                        .into());
                }
            }
        }
        // A video file's audio, as its source found it, may go to a video output.
        let codec = source.audio_codec();
        let audio = match (config.input(), &codec) {
            (crate::config::InputConfig::Video { path, .. }, Some(codec)) => Some((path.as_path(), codec.as_str())),
            _ => None,
        };
        let sink = io::open_sink(config.output(), &info, audio).map_err(|e| config.error(format!("output: {e}")))?;
        let out_height = shapes.last().map_or(height, |(_, shape)| shape.height);
        let shapes = shapes.into_iter().map(|(name, shape)| format!("{name} {shape}")).collect();
        Ok(Self { source, sink, stages, region, options, info, source_convert, conversions, shapes, out_height })
    }

    fn run(self, progress: &mut dyn Progress) -> (RunStats, Result<(), RunError>) {
        let Chain {
            mut source,
            mut sink,
            stages,
            region,
            options,
            info,
            source_convert,
            conversions,
            shapes,
            out_height,
        } = self;
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
        let source_live = options.live.clone();
        let input_name = crate::graph::DEFAULT_INPUT_NAME;
        let first_name = stages.first().map(|s| s.config.name.clone()).unwrap_or_default();
        let mut source_converter = Converter::new(format!("before \"{first_name}\""), info.colour, conversions.clone());
        let source_thread = std::thread::spawn(move || -> Result<(), RunError> {
            let (mut n, mut stepped, mut last_preview) = (0u64, 0u64, None);
            let mut decoded = OwnedFrame::new(0, 0, plugin_sdk::PixelFormat::Rgba8);
            while max_frames.is_none_or(|m| n < m) {
                if let Some(live) = &source_live {
                    live.wait_while_paused(&mut stepped, || {
                        source_stop.load(Ordering::Acquire) || plugin_host::sys::signals::stop_requested()
                    });
                }
                if plugin_host::sys::signals::stop_requested() {
                    return Err(RunError::Interrupted);
                }
                let lane = loop {
                    match free_rx.recv_timeout(std::time::Duration::from_millis(50)) {
                        Ok(lane) => break Some(lane),
                        Err(RecvTimeoutError::Timeout) if !source_stop.load(Ordering::Acquire) => {}
                        Err(_) => break None,
                    }
                };
                let Some(mut lane) = lane else { break };
                // Raw video is read straight into the lane; other sources decode into our frame,
                // which is then copied in.
                let mut read_into_lane =
                    |fd: std::os::fd::BorrowedFd<'_>, len| first_view.fill_from_fd(&mut lane, Buffer::Input, len, fd);
                let direct = match source_convert {
                    None => source.next_direct(&mut read_into_lane),
                    Some(_) => None,
                };
                let shape = match direct {
                    Some(read) => read.map_err(|e| match plugin_host::sys::signals::stop_requested() {
                        true => RunError::Interrupted,
                        false => e.into(),
                    })?,
                    None => match source.next_into(&mut decoded).map_err(|e| {
                        match plugin_host::sys::signals::stop_requested() {
                            true => RunError::Interrupted,
                            false => e.into(),
                        }
                    })? {
                        true => {
                            let frame = match source_convert {
                                Some(to) => source_converter
                                    .convert(&decoded.view(), to)
                                    .map_err(|reason| MediaError::Frame { frame: n + 1, reason })?,
                                None => &decoded,
                            };
                            let shape = FrameShape::of(frame);
                            let bytes = lane_desc(shape, 0).byte_len() as usize;
                            first_view.write_pixels(&mut lane, Buffer::Input, &frame.data[..bytes]);
                            Some(shape)
                        }
                        false => None,
                    },
                };
                let Some(shape) = shape else { break };
                let desc = lane_desc(shape, first_view.slot_capacity() as u32);
                if let Some(live) = &source_live {
                    live.offer_buffer(input_name, &mut last_preview, &first_view, &lane, Buffer::Input, &desc);
                }
                n += 1;
                if let Ok(mut c) = counted.lock() {
                    *c = n;
                }
                if let Some(live) = &source_live {
                    live.frames_in.store(n, Ordering::Relaxed);
                }
                let meta = info.frame_meta(n - 1).encode().unwrap_or_default();
                if source_tx.send(Carried { frame: n, lane, desc, meta, reading: None }).is_err() {
                    break;
                }
            }
            Ok(())
        });

        let stage_count = stages.len() as u32;
        let mut stage_threads = Vec::new();
        for (index, mut stage) in stages.into_iter().enumerate() {
            if let Some(live) = &options.live {
                stage.publish_to(live.clone(), index);
                let description = stage.processes().next().map(|p| p.description().clone());
                if let Some(description) = description {
                    let (requests, receiver) = channel();
                    stage.take_live_changes(receiver);
                    if let Ok(mut controls) = live.controls.lock() {
                        let sandbox = stage.processes().next().map(|p| p.sandbox().summary()).unwrap_or_default();
                        let name = stage.config.name.clone();
                        controls.push(LiveControl { name, description, sandbox, swappable: true, requests });
                    }
                }
            }
            let (tx, rx) = sync_channel::<Carried>(depth);
            let input = std::mem::replace(&mut upstream, rx);
            let free = free_tx.clone();
            stage_threads.push(std::thread::spawn(move || stage.run(input, tx, free)));
        }

        let sink_view = region
            .for_worker(region.stage_count() - 1, stage_count)
            .expect("the region has a block and a boundary for the sink");
        let mut frames_out = 0u64;
        let mut host_warm = None;
        let mut sink_result = Ok(());
        // The last stage's process can still write the buffer: the sink encodes its own copy.
        let mut pixels = Vec::new();
        let discards = sink.discards();
        // An output that cannot say its matrix is read with the one usual for its size.
        let out_colour = match sink.tags_colour() {
            true => info.colour,
            false => plugin_sdk::convert::Colour {
                matrix: StreamInfo::guess_colour(out_height).matrix,
                range: info.colour.range,
            },
        };
        let mut sink_converter = Converter::new("before the output".into(), out_colour, conversions.clone());
        for Carried { frame, lane, desc, reading, .. } in upstream.iter() {
            let written = if discards {
                // Like ffmpeg's null muxer: the frame is done with, unread.
                Ok(())
            } else {
                sink_view.read_pixels(&lane, Buffer::Input, desc.byte_len() as usize, &mut pixels);
                let format = plugin_sdk::PixelFormat::from_u32(desc.format).unwrap_or(plugin_sdk::PixelFormat::Rgba8);
                Frame::new(&pixels, desc.width, desc.height, desc.stride, format, desc.timestamp_us)
                    .map_err(|e| MediaError::Frame { frame, reason: e.0 })
                    .and_then(|view| match sink.format_for(format) {
                        to if to == format => sink.write(frame - 1, &view),
                        to => match sink_converter.convert(&view, to) {
                            Ok(converted) => sink.write(frame - 1, &converted.view()),
                            Err(reason) => Err(MediaError::Frame { frame, reason }),
                        },
                    })
            };
            drop(reading);
            let _ = free_tx.send(lane);
            if let Err(e) = written {
                sink_result = Err(RunError::from(e));
                break;
            }
            frames_out += 1;
            if let Some(live) = &options.live {
                live.frames_out.store(frames_out, Ordering::Relaxed);
            }
            if frames_out == WARM_UP_FRAMES {
                host_warm = plugin_host::sys::process::minor_faults().ok();
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
        let mut output_written = false;
        let frames_in = frames_in.lock().map(|n| *n).unwrap_or(0);
        // An input with no frames, or a run that failed before its first: nothing to put in
        // place (an empty file would look like an output). Frames that all went to `skip` still
        // make an (empty) output, as the config asked.
        if frames_out == 0 && (frames_in == 0 || first_error.is_some()) && !sink.uses_stdout() {
            drop(sink);
            if first_error.is_none() {
                tracing::warn!("the input gave no frames: nothing was written");
            }
        } else if first_error.is_none() {
            match sink.finish() {
                Ok(()) => output_written = frames_out > 0,
                Err(e) => keep(&mut first_error, Err(e.into())),
            }
        } else {
            match sink.keep_aside() {
                Ok(None) => output_written = frames_out > 0,
                Ok(kept) => output_kept_aside = kept,
                Err(e) => keep(&mut first_error, Err(e.into())),
            }
        }
        progress.finish();
        let host_faults_per_frame = match (host_warm, plugin_host::sys::process::minor_faults()) {
            (Some(warm), Ok(now)) if frames_out > WARM_UP_FRAMES => {
                now.saturating_sub(warm) as f64 / (frames_out - WARM_UP_FRAMES) as f64
            }
            _ => 0.0,
        };
        let wall_s = started.elapsed().as_secs_f64();
        let copies = plugins.iter().map(|p| p.copies).sum();
        let conversions = conversions.take();
        let stats = RunStats {
            graph: false,
            frames_in,
            frames_out,
            wall_s,
            host_faults_per_frame,
            copies,
            plugins,
            conversions,
            shapes,
            output_kept_aside,
            output_written,
        };
        (stats, first_error.map_or(Ok(()), Err))
    }
}

/// Checks the shape a started plugin declared for its output, given frames of `input`: within
/// the sides and bytes allowed, and, for `on_error = "passthrough"`, the input's own (a failed
/// frame's input goes on in its place). Returns its bytes as RGBA.
fn check_output_shape(
    config: &Config,
    plugin: &crate::config::PluginConfig,
    input: Shape,
    output: Shape,
) -> Result<u64, RunError> {
    let name = &plugin.name;
    if plugin.on_error == crate::config::OnError::Passthrough && output != input {
        return Err(config
            .error(format!(
                "plugin \"{name}\" makes {output} frames of {input} ones, so on_error = \"passthrough\" cannot pass \
                 a failed frame on in their place; use \"skip\" or \"fail\""
            ))
            .into());
    }
    let most = crate::config::MAX_SIDE;
    if output.width > most || output.height > most {
        return Err(config
            .error(format!("plugin \"{name}\" makes {output} frames of {input} ones; each side may be at most {most}"))
            .into());
    }
    let bytes = rgba_bytes(output);
    if bytes > config.max_frame_bytes {
        return Err(config
            .error(format!(
                "plugin \"{name}\" makes {output} frames of {input} ones: {bytes} bytes as RGBA, more than \
                 max_frame_bytes = {}",
                config.max_frame_bytes
            ))
            .into());
    }
    Ok(bytes)
}

/// Bytes of a frame of `shape`'s size as RGBA: what a buffer needs to hold it in any format.
fn rgba_bytes(shape: Shape) -> u64 {
    shape.width as u64 * shape.height as u64 * 4
}

/// The descriptor of a frame of `shape` at the start of a lane's buffer of `capacity` bytes.
fn lane_desc(shape: FrameShape, capacity: u32) -> FrameDesc {
    let FrameShape { width, height, stride, format, timestamp_us } = shape;
    FrameDesc { data: 0, capacity, width, height, stride, format: format as u32, timestamp_us }
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
