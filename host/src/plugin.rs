//! The embedding API: one plugin instance in its own process. Spawn it from a `.wasm` path with
//! parameters and limits, read its description, hand it frames, shut it down.
//!
//! ```no_run
//! use plugin_host::{PluginProcess, PluginSpec};
//! use plugin_sdk::{OwnedFrame, PixelFormat};
//!
//! let mut plugin = PluginProcess::spawn(PluginSpec::new("neg", "target/plugins/invert.wasm", 1920 * 1080 * 4))?;
//! let frame = OwnedFrame::new(1920, 1080, PixelFormat::Rgba8);
//! let inverted = plugin.process(&frame)?;
//! plugin.shutdown()?;
//! # Ok::<(), plugin_host::PluginError>(())
//! ```

use crate::ipc::handoff::{self, Futex, Outcome, WaitError};
use crate::ipc::protocol::{self, Failure, Hello, MAX_TO_HOST_BYTES, RunnerLimits, ToHost, ToRunner, Transport};
use crate::ipc::region::{self, Buffer, Lane, Region, RegionError};
use crate::runner::RUNNER_ARG;
use crate::schema::{ParamError, PluginDescription};
use crate::sys::process::{SpawnRequest, spawn};
use crate::sys::sandbox::{Level as SandboxLevel, Policy as SandboxPolicy, Report as SandboxReport};
use crate::text::PluginText;
use plugin_sdk::abi::{self, FrameDesc, LogLevel, ParamValue};
use plugin_sdk::{Frame, OwnedFrame};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Per-plugin limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest one frame may take.
    pub deadline: Duration,
    /// Longest spawn → ready may take (compiling the module included).
    pub startup: Duration,
    /// Cap on the plugin's own linear memory (frame buffers come on top).
    pub memory_bytes: u64,
    /// Cap on the private memory of the sandboxed process that compiles the module; `None`:
    /// [`Limits::compile_memory`]'s default, derived from `memory_bytes`.
    pub compile_memory_bytes: Option<u64>,
    /// Largest module file accepted; checked before it is read.
    pub module_max_bytes: u64,
}

impl Limits {
    /// The compiler process's memory cap: as given, else twice the plugin's memory, at least 512 MiB.
    pub fn compile_memory(&self) -> u64 {
        self.compile_memory_bytes.unwrap_or_else(|| self.memory_bytes.saturating_mul(2).max(512 << 20))
    }
}

/// Default [`Limits::module_max_bytes`]: 64 MiB.
pub const DEFAULT_MODULE_MAX_BYTES: u64 = 64 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(1000),
            startup: Duration::from_secs(20),
            memory_bytes: 256 << 20,
            compile_memory_bytes: None,
            module_max_bytes: DEFAULT_MODULE_MAX_BYTES,
        }
    }
}

/// How the host waits past a frame's deadline before it kills the process: the runner's own
/// epoch interruption gets the first chance.
pub const DEADLINE_GRACE: Duration = Duration::from_millis(100);

/// What to start.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The instance's name, used in every message about it.
    pub name: String,
    pub module: PathBuf,
    pub params: Vec<(String, ParamValue)>,
    pub limits: Limits,
    /// Largest frame, in bytes, the plugin will be given or may produce.
    pub max_frame_bytes: u64,
    /// Frames that can be in flight at once.
    pub slots: u32,
    /// Where compiled modules are kept across runs; `None` keeps them in memory only.
    /// [`PluginSpec::new`] sets [`crate::cache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// How frames travel: shared memory (default) or messages on the pipes.
    pub transport: Transport,
    /// The executable to run in runner mode; by default `$PLUGIN_HOST_RUNNER`, else this
    /// process's own executable (which must then call [`crate::runner::run_if_requested`]).
    pub runner: Option<PathBuf>,
    /// How much OS sandbox the process must have (see [`crate::sys::sandbox`]).
    pub sandbox: SandboxLevel,
    /// Keep a second process loaded and waiting, so that a restart takes milliseconds (it costs
    /// one idle process).
    pub standby: bool,
    /// Copy each input frame into the plugin's private memory before `process`, so that the
    /// stage before cannot change it while this plugin reads it (one copy per frame, counted).
    pub snapshot_input: bool,
}

impl PluginSpec {
    pub fn new(name: impl Into<String>, module: impl Into<PathBuf>, max_frame_bytes: u64) -> Self {
        Self {
            name: name.into(),
            module: module.into(),
            params: Vec::new(),
            limits: Limits::default(),
            max_frame_bytes,
            slots: region::MIN_SLOTS,
            transport: Transport::SharedMemory,
            cache_dir: crate::cache::default_dir(),
            runner: None,
            sandbox: SandboxLevel::Standard,
            standby: false,
            snapshot_input: false,
        }
    }

    /// The executable to start in runner mode (see [`PluginSpec::runner`]).
    fn runner_path(&self) -> io::Result<PathBuf> {
        self.runner.clone().map_or_else(default_runner, Ok)
    }

    pub fn param(mut self, name: &str, value: ParamValue) -> Self {
        self.params.push((name.to_string(), value));
        self
    }
}

/// An error from one plugin instance; its message starts with the instance's name.
#[derive(Debug, thiserror::Error)]
#[error("plugin \"{plugin}\": {kind}")]
pub struct PluginError {
    pub plugin: String,
    pub kind: ErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read {}: {source}", path.display())]
    ReadModule { path: PathBuf, source: io::Error },
    #[error("{} is not a WebAssembly module", path.display())]
    NotWasm { path: PathBuf },
    #[error("{} is {what}, not a module file", path.display())]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("{} is {bytes} bytes, more than the module size limit of {} MiB (module_max_mb)", path.display(), max >> 20)]
    ModuleTooLarge { path: PathBuf, bytes: u64, max: u64 },
    #[error("{} is not a usable plugin: {reason}", path.display())]
    NotAPlugin { path: PathBuf, reason: PluginText },
    #[error("{}: {source}", path.display())]
    Compile { path: PathBuf, source: crate::compile::CompileError },
    #[error("interrupted while it was starting")]
    Interrupted,
    #[error("{0}")]
    Param(#[from] ParamError),
    #[error("creating the instance failed: {0}")]
    Init(Failure),
    #[error("cannot start its process: {0}")]
    Spawn(io::Error),
    #[error("{0}")]
    Region(#[from] RegionError),
    #[error("it was not ready within the startup limit of {0:?}")]
    StartupTimeout(Duration),
    #[error("frame {frame}: {failure}")]
    Frame { frame: u64, failure: Failure },
    #[error("frame {frame} missed its deadline of {deadline:?}; the process was killed")]
    Deadline { frame: u64, deadline: Duration },
    #[error("its process died{}: {status}", frame.map(|f| format!(" during frame {f}")).unwrap_or_default())]
    Died { frame: Option<u64>, status: String },
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("a {width}x{height} {format} frame needs {bytes} bytes; its slots hold {capacity}")]
    TooLarge { width: u32, height: u32, format: &'static str, bytes: u64, capacity: u64 },
    #[error("it does not accept {given} frames (it takes {accepted})")]
    Format { given: &'static str, accepted: String },
    #[error("its process is no longer running")]
    NotRunning,
    #[error("the frame is not valid: {0}")]
    BadFrame(String),
    #[error("{0}")]
    NoAnswer(String),
    /// The process's sandbox falls short of what the spec demands.
    #[error("{0}")]
    Sandbox(String),
}

/// What the control-reader thread hands over.
enum Event {
    Hello([u8; 16]),
    /// A message and the bytes it holds (see [`weight`]), counted against the queue's budget.
    Message(ToHost, usize),
    /// The channel ended: EOF, I/O error or a protocol violation.
    Closed(String),
}

/// Counters a plugin process reports about itself (untrusted: for statistics only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunnerStats {
    pub frames: u64,
    pub minor_faults: u64,
}

/// A submitted frame, to collect with [`PluginProcess::receive`] (or, for a frame submitted with
/// [`PluginProcess::submit_lane`], [`PluginProcess::receive_lane`]). It holds the frame's lane.
#[derive(Debug)]
#[must_use]
pub struct Ticket {
    /// Which process of which `PluginProcess` issued it.
    owner: u64,
    lane: Lane,
    /// The lane belongs to the handle's own pool (frames submitted by copy).
    pooled: bool,
    frame: u64,
    submitted: Instant,
}

impl Ticket {
    /// Time since the frame was submitted.
    pub fn age(&self) -> Duration {
        self.submitted.elapsed()
    }

    /// The frame's number in the stream (see [`PluginProcess::submit_numbered`]).
    pub fn frame(&self) -> u64 {
        self.frame
    }

    pub fn submitted(&self) -> Instant {
        self.submitted
    }
}

/// A running plugin process.
pub struct PluginProcess {
    name: String,
    description: PluginDescription,
    spec: PluginSpec,
    /// The compiled module, kept for restarts (which never recompile).
    artifact: crate::cache::Artifact,
    child: Option<Child>,
    /// This plugin's view of the shared region (its stage of the chain).
    region: Region,
    /// Lanes for frames handed over by copy ([`PluginProcess::submit`]); empty for a stage of a
    /// chain, whose lanes the caller owns.
    lanes: Vec<Option<Lane>>,
    control: File,
    events: EventQueue,
    gone: Arc<AtomicBool>,
    /// Whether this process's in-flight slots are abandoned when its channel ends (a standby
    /// process holds none).
    active: Arc<AtomicBool>,
    /// Why the control channel ended, once it has.
    closed_because: Arc<Mutex<Option<String>>>,
    reader: Option<JoinHandle<()>>,
    in_flight: Vec<bool>,
    next_slot: u32,
    next_frame: u64,
    transport: Transport,
    /// Largest frame in bytes: the slot capacity, or for the pipe transport the same rounding.
    frame_capacity: u64,
    /// Tells this process's tickets from others' (a new one after every restart).
    serial: u64,
    /// The sandbox layers the process reported before it was sent the module.
    sandbox: SandboxReport,
    /// Frame copies made by the host between lane buffers (see [`PluginProcess::copies`]).
    copies: u64,
    /// A process started ahead, loaded and waiting for its parameters, for a fast restart.
    standby: Option<JoinHandle<Result<PluginProcess, PluginError>>>,
    /// When the host last saw a frame of this process finish (or the process start).
    last_done: Instant,
    /// Messages read while waiting for another one (a frame's result that arrived before the
    /// answer to a Stats request), in order, for whoever waits for them next.
    stash: VecDeque<ToHost>,
    /// Loading or creating the instance: SIGINT/SIGTERM end the wait.
    starting: bool,
}

/// Reads a module file: it must be a regular file of at most `max` bytes (checked with `fstat`
/// before anything is read, so a FIFO, a device or a huge sparse file costs nothing) that starts
/// with the wasm magic. Opened non-blocking: opening a FIFO never waits for a writer.
fn read_module(name: &str, path: &Path, max: u64) -> Result<Vec<u8>, PluginError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let err = |kind| PluginError { plugin: name.to_string(), kind };
    let read_error = |source| err(ErrorKind::ReadModule { path: path.into(), source });
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        let what = match meta.file_type() {
            t if t.is_dir() => "a folder",
            t if t.is_fifo() => "a FIFO",
            t if t.is_char_device() || t.is_block_device() => "a device",
            t if t.is_socket() => "a socket",
            _ => "not a regular file",
        };
        return Err(err(ErrorKind::NotAFile { path: path.into(), what }));
    }
    if meta.len() > max {
        return Err(err(ErrorKind::ModuleTooLarge { path: path.into(), bytes: meta.len(), max }));
    }
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || &magic != b"\0asm" {
        return Err(err(ErrorKind::NotWasm { path: path.into() }));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    bytes.extend_from_slice(&magic);
    (&mut file).take(max - 4 + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > max {
        return Err(err(ErrorKind::ModuleTooLarge { path: path.into(), bytes: bytes.len() as u64, max }));
    }
    Ok(bytes)
}

/// The runner executable: `$PLUGIN_HOST_RUNNER`, else this process's own.
pub(crate) fn default_runner() -> io::Result<PathBuf> {
    match std::env::var_os("PLUGIN_HOST_RUNNER") {
        Some(path) => Ok(PathBuf::from(path)),
        None => std::env::current_exe(),
    }
}

/// A start-up that ran out of time says so.
fn startup_error(kind: ErrorKind, spec: &PluginSpec) -> ErrorKind {
    match kind {
        ErrorKind::NoAnswer(_) => ErrorKind::StartupTimeout(spec.limits.startup),
        other => other,
    }
}

fn next_serial() -> u64 {
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

impl PluginProcess {
    /// Starts the process, loads the module, checks the parameters against its schema and
    /// creates the instance. Returns once it is ready for frames. The plugin gets a region of
    /// its own; frames are handed over with [`PluginProcess::submit`] and
    /// [`PluginProcess::receive`], which copy them in and out.
    pub fn spawn(spec: PluginSpec) -> Result<Self, PluginError> {
        let err = |kind| PluginError { plugin: spec.name.clone(), kind };
        // The pipe transport carries frames in messages: its region only needs its header.
        let region_bytes = match spec.transport {
            Transport::SharedMemory => spec.max_frame_bytes,
            Transport::Pipe => region::PAGE_SIZE,
        };
        let region = Region::create(&format!("plugin-host:{}", spec.name), spec.slots, region_bytes);
        let region = region.map_err(|e| err(e.into()))?;
        let lanes = region.take_lanes().into_iter().map(Some).collect();
        let mut plugin = Self::spawn_stage(spec, &region)?;
        plugin.lanes = lanes;
        Ok(plugin)
    }

    /// Starts the plugin as one stage of a chain whose frames live in `region` (a view of the
    /// plugin's stage, see [`Region::create_chain`]). Frames are handed over by lane, in place:
    /// [`PluginProcess::submit_lane`] and [`PluginProcess::receive_lane`].
    pub fn spawn_stage(spec: PluginSpec, region: &Region) -> Result<Self, PluginError> {
        // One start-up limit covers everything: compiling, loading and `init`.
        let deadline = Instant::now() + spec.limits.startup;
        let err = |kind| PluginError { plugin: spec.name.clone(), kind };
        let module = read_module(&spec.name, &spec.module, spec.limits.module_max_bytes)?;
        let job = crate::compile::CompileJob {
            runner: spec.runner_path().map_err(|e| err(ErrorKind::Spawn(e)))?,
            sandbox: spec.sandbox,
            memory_limit: spec.limits.compile_memory(),
            deadline,
            startup: spec.limits.startup,
        };
        let artifact = crate::cache::artifact(module, spec.cache_dir.as_deref(), job.memory_limit, |module| {
            crate::compile::compile_in_sandbox(&job, module)
        })
        .map_err(|source| {
            err(match source {
                crate::compile::CompileError::Interrupted => ErrorKind::Interrupted,
                source => ErrorKind::Compile { path: spec.module.clone(), source },
            })
        })?;
        let mut plugin = Self::launch(&spec, region.clone(), artifact, deadline)?;
        plugin.activate(deadline).map_err(err)?;
        Ok(plugin)
    }

    /// Starts a process and loads the module into it; it then waits for its parameters.
    fn launch(
        spec: &PluginSpec,
        region: Region,
        artifact: crate::cache::Artifact,
        deadline: Instant,
    ) -> Result<Self, PluginError> {
        let err = |kind| PluginError { plugin: spec.name.clone(), kind };
        let frame_capacity = spec.max_frame_bytes.max(1).next_multiple_of(region::PAGE_SIZE);
        if frame_capacity > region::MAX_SLOT_CAPACITY {
            return Err(err(ErrorKind::Region(RegionError::Capacity(spec.max_frame_bytes))));
        }
        if spec.transport == Transport::SharedMemory && region.slot_capacity() < frame_capacity {
            return Err(err(ErrorKind::Region(RegionError::Capacity(spec.max_frame_bytes))));
        }
        region.restore_header();
        let (to_runner_read, to_runner_write) = pipe().map_err(|e| err(ErrorKind::Spawn(e)))?;
        let (from_runner_read, from_runner_write) = pipe().map_err(|e| err(ErrorKind::Spawn(e)))?;
        let region_fd: OwnedFd = region.file().try_clone().map_err(|e| err(ErrorKind::Spawn(e)))?.into();
        let program = spec.runner_path().map_err(|e| err(ErrorKind::Spawn(e)))?;
        let policy = SandboxPolicy::for_plugin(
            spec.sandbox,
            spec.limits.memory_bytes,
            artifact.len() as u64,
            frame_capacity,
            spec.transport == Transport::Pipe,
        );
        let mut args = vec![RUNNER_ARG.into()];
        args.extend(policy.to_args());
        let child = spawn(SpawnRequest { program, args, fds: [to_runner_read, from_runner_write, region_fd] })
            .map_err(|e| err(ErrorKind::Spawn(e)))?;

        let gone = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicBool::new(false));
        // Only the pipe transport carries frames in messages: in shared-memory mode a
        // frame-sized message is a flood, not a frame.
        let max_message = match spec.transport {
            Transport::Pipe => MAX_TO_HOST_BYTES.max(frame_capacity as usize + 4096),
            Transport::SharedMemory => MAX_TO_HOST_BYTES,
        };
        // What the host keeps of unread messages: a reply for every frame in flight, and a
        // couple more; past that, bytes, not only the count, say it is a flood.
        let (tx, events) = event_queue(max_message.saturating_mul(region.slot_count() as usize + 2));
        let from_runner = File::from(from_runner_read);
        let closed_because = Arc::new(Mutex::new(None));
        let reader = start_reader(
            spec.name.clone(),
            from_runner,
            max_message,
            tx,
            region.clone(),
            [Arc::clone(&gone), Arc::clone(&active)],
            Arc::clone(&closed_because),
        );
        let control = File::from(to_runner_write);
        set_nonblocking(&control).map_err(|e| err(ErrorKind::Spawn(e)))?;
        let slots = region.slot_count() as usize;
        let mut plugin = PluginProcess {
            name: spec.name.clone(),
            description: PluginDescription::default(),
            spec: spec.clone(),
            artifact,
            child: Some(child),
            region,
            lanes: Vec::new(),
            control,
            events,
            gone,
            active,
            closed_because,
            reader: Some(reader),
            in_flight: vec![false; slots],
            next_slot: 0,
            next_frame: 1,
            transport: spec.transport,
            frame_capacity,
            serial: next_serial(),
            copies: 0,
            standby: None,
            stash: VecDeque::new(),
            last_done: Instant::now(),
            starting: true,
            sandbox: SandboxReport { level: spec.sandbox, layers: Vec::new() },
        };
        plugin.load(deadline).map_err(|kind| err(startup_error(kind, spec)))?;
        Ok(plugin)
    }

    fn load(&mut self, deadline: Instant) -> Result<(), ErrorKind> {
        self.send(&Hello::OURS.to_bytes(), deadline)?;
        match self.next_event(deadline)? {
            Event::Hello(bytes) => {
                Hello::OURS.negotiate(Hello::from_bytes(bytes)).map_err(|e| ErrorKind::Protocol(e.to_string()))?;
            }
            _ => return Err(ErrorKind::Protocol("the runner did not start with a handshake".into())),
        }
        self.sandbox = match self.next_message(deadline)? {
            // The level is the host's own; the layers are the plugin process's word, checked below.
            ToHost::Sandboxed { report } => SandboxReport { level: self.spec.sandbox, ..report },
            ToHost::Failed { failure: failure @ Failure::Sandbox(_), .. } => {
                self.kill();
                return Err(ErrorKind::Sandbox(failure.to_string()));
            }
            other => {
                return Err(ErrorKind::Protocol(format!("expected its sandbox report, got {}", message_kind(&other))));
            }
        };
        if self.spec.sandbox == SandboxLevel::Strict
            && let Some(refusal) = self.sandbox.strict_refusal()
        {
            self.kill();
            return Err(ErrorKind::Sandbox(refusal));
        }
        let limits = RunnerLimits {
            memory_bytes: self.spec.limits.memory_bytes,
            deadline_ms: self.spec.limits.deadline.as_millis() as u64,
            startup_ms: self.spec.limits.startup.as_millis() as u64,
            snapshot_input: self.spec.snapshot_input,
        };
        let load = ToRunner::Load {
            plugin: self.spec.name.clone(),
            module: self.artifact.to_vec(),
            precompiled: true,
            limits,
            transport: self.spec.transport,
            frame_capacity: self.frame_capacity,
            stage: self.region.stage(),
        };
        self.send_message(&load, deadline)?;
        let path = self.spec.module.clone();
        let not_a_plugin = |reason: PluginText| ErrorKind::NotAPlugin { path: path.clone(), reason };
        let description = match self.next_message(deadline)? {
            ToHost::Loaded { description } => description,
            ToHost::Failed { failure: Failure::Load(reason), .. } => return Err(not_a_plugin(reason)),
            ToHost::Failed { failure, .. } => return Err(not_a_plugin(failure.to_string().into())),
            other => return Err(ErrorKind::Protocol(format!("expected Loaded, got {}", message_kind(&other)))),
        };
        self.description = PluginDescription::parse(&description).map_err(|e| not_a_plugin(e.into()))?;
        Ok(())
    }

    /// Makes a loaded process the active one: frees the stage's slots, sends the parameters and
    /// waits for the instance; then starts a standby process if the spec asks for one.
    fn activate(&mut self, deadline: Instant) -> Result<(), ErrorKind> {
        self.starting = true;
        for slot in 0..self.region.slot_count() {
            self.region.state(slot).store(handoff::state::FREE, Ordering::Release);
        }
        self.in_flight.iter_mut().for_each(|f| *f = false);
        self.active.store(true, Ordering::SeqCst);
        let params = self.description.resolve_params(&self.spec.params)?;
        let encoded = abi::encode_params(params.iter().map(|(n, v)| (n.as_str(), v)));
        let ready = self.send_message(&ToRunner::Init { params: encoded }, deadline).and_then(|()| {
            match self.next_message(deadline)? {
                ToHost::Ready => {
                    tracing::debug!("plugin \"{}\" ready; sandbox {}", self.spec.name, self.sandbox.summary());
                    Ok(())
                }
                ToHost::Failed { failure, .. } => Err(ErrorKind::Init(failure)),
                other => Err(ErrorKind::Protocol(format!("expected Ready, got {}", message_kind(&other)))),
            }
        });
        self.starting = false;
        ready.map_err(|kind| startup_error(kind, &self.spec))?;
        if self.spec.standby && self.standby.is_none() {
            let (spec, region, artifact) = (self.spec.clone(), self.region.clone(), Arc::clone(&self.artifact));
            self.standby = Some(std::thread::spawn(move || {
                let deadline = Instant::now() + spec.limits.startup;
                Self::launch(&spec, region, artifact, deadline)
            }));
        }
        Ok(())
    }

    /// Replaces the process with a fresh one from the same compiled module and parameters (the
    /// standby process when there is one): kills and reaps the old process first, so nothing it
    /// did can reach a frame submitted after this. Tickets issued before are void; collect them
    /// with [`PluginProcess::receive_lane`] to get their lanes back.
    pub fn restart(&mut self) -> Result<(), PluginError> {
        self.kill();
        let name = self.name.clone();
        let err = |kind| PluginError { plugin: name.clone(), kind };
        let startup = self.spec.limits.startup;
        let deadline = move || Instant::now() + startup;
        let mut fresh = match self.standby.take().map(|handle| handle.join()) {
            Some(Ok(Ok(ready))) => ready,
            _ => Self::launch(&self.spec, self.region.clone(), Arc::clone(&self.artifact), deadline())?,
        };
        self.adopt(&mut fresh);
        if let Err(kind) = self.activate(deadline()) {
            // The standby may have died while it waited: one more try with a new process.
            self.kill();
            let mut fresh = Self::launch(&self.spec, self.region.clone(), Arc::clone(&self.artifact), deadline())?;
            self.adopt(&mut fresh);
            self.activate(deadline()).map_err(|_| err(kind))?;
        }
        Ok(())
    }

    /// Takes over `other`'s process (and gives it the dead one's leftovers to drop).
    fn adopt(&mut self, other: &mut PluginProcess) {
        std::mem::swap(&mut self.child, &mut other.child);
        std::mem::swap(&mut self.control, &mut other.control);
        std::mem::swap(&mut self.events, &mut other.events);
        std::mem::swap(&mut self.gone, &mut other.gone);
        std::mem::swap(&mut self.active, &mut other.active);
        std::mem::swap(&mut self.closed_because, &mut other.closed_because);
        std::mem::swap(&mut self.reader, &mut other.reader);
        self.stash.clear();
        self.last_done = Instant::now();
        self.description = other.description.clone();
        self.serial = next_serial();
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the plugin says about itself: metadata, formats and parameter schema.
    pub fn description(&self) -> &PluginDescription {
        &self.description
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Largest frame in bytes the plugin can be given.
    pub fn frame_capacity(&self) -> u64 {
        self.frame_capacity
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The sandbox layers the process has, as it reported them before it was sent the module.
    pub fn sandbox(&self) -> &SandboxReport {
        &self.sandbox
    }

    /// Frames the host copied into a lane's output buffer for this plugin (the pipe transport's
    /// results); 0 for the shared-memory transport.
    pub fn copies(&self) -> u64 {
        self.copies
    }

    /// Hands one frame to the plugin and waits for the result.
    pub fn process(&mut self, input: &OwnedFrame) -> Result<OwnedFrame, PluginError> {
        let mut output = OwnedFrame::new(0, 0, input.format);
        let ticket = self.submit(&input.view())?;
        self.receive(ticket, &mut output)?;
        Ok(output)
    }

    /// Copies `input` into a free slot and hands it over. Up to the slot count of frames may be
    /// in flight; receive them in the order submitted.
    pub fn submit(&mut self, input: &Frame<'_>) -> Result<Ticket, PluginError> {
        self.submit_numbered(input, self.next_frame)
    }

    /// Like [`PluginProcess::submit`], with the frame's number in the caller's stream, which
    /// every message about the frame uses.
    pub fn submit_numbered(&mut self, input: &Frame<'_>, frame: u64) -> Result<Ticket, PluginError> {
        self.check_running()?;
        // A Frame can be built without checks (OwnedFrame's fields are public): check it here.
        Frame::new(input.data(), input.width(), input.height(), input.stride(), input.format(), input.timestamp_us())
            .map_err(|e| self.error(ErrorKind::BadFrame(e.0)))?;
        let desc = FrameDesc {
            data: 0,
            capacity: self.frame_capacity as u32,
            width: input.width(),
            height: input.height(),
            stride: input.stride(),
            format: input.format() as u32,
            timestamp_us: input.timestamp_us(),
        };
        let bytes = self.check_input(&desc)? as usize;
        let slot = self.next_slot;
        let Some(mut lane) = self.lanes.get_mut(slot as usize).and_then(Option::take) else {
            let kind = if self.lanes.is_empty() {
                ErrorKind::Protocol("a stage of a chain takes frames by lane (submit_lane)".into())
            } else {
                ErrorKind::Protocol(format!("all {} slots are in flight; receive first", self.lanes.len()))
            };
            return Err(self.error(kind));
        };
        let pixels = &input.data()[..bytes];
        let result = match self.transport {
            Transport::SharedMemory => {
                self.region.write_pixels(&mut lane, Buffer::Input, pixels);
                self.hand_over(lane, frame, &desc, true, None)
            }
            Transport::Pipe => self.hand_over(lane, frame, &desc, true, Some(pixels)),
        };
        if result.is_ok() {
            self.next_slot = (slot + 1) % self.lanes.len() as u32;
        }
        result.map_err(|(error, lane)| {
            let slot = lane.slot() as usize;
            self.lanes[slot] = Some(lane);
            error
        })
    }

    /// Hands over a frame that is already in `lane`'s input buffer (written there by the caller
    /// or, in place, by the previous stage of the chain). `input` describes it (`data` 0). On
    /// error the lane comes back with it.
    pub fn submit_lane(
        &mut self,
        lane: Lane,
        frame: u64,
        input: &FrameDesc,
    ) -> Result<Ticket, Box<(PluginError, Lane)>> {
        if let Err(error) = self.check_running() {
            return Err(Box::new((error, lane)));
        }
        let desc = FrameDesc { data: 0, capacity: self.frame_capacity as u32, ..*input };
        let bytes = match self.check_input(&desc) {
            Ok(bytes) => bytes as usize,
            Err(error) => return Err(Box::new((error, lane))),
        };
        let pixels = match self.transport {
            Transport::SharedMemory => None,
            Transport::Pipe => {
                let mut pixels = Vec::new();
                self.region.read_pixels(&lane, Buffer::Input, bytes, &mut pixels);
                Some(pixels)
            }
        };
        self.hand_over(lane, frame, &desc, false, pixels.as_deref()).map_err(Box::new)
    }

    /// Checks a frame against the plugin's formats and capacity; returns its length in bytes.
    fn check_input(&self, desc: &FrameDesc) -> Result<u64, PluginError> {
        let format = desc.validate().map_err(|why| self.error(ErrorKind::BadFrame(why.to_string())))?;
        if !self.description.accepts(format) {
            let accepted = self.description.formats.join(", ");
            return Err(self.error(ErrorKind::Format { given: format.name(), accepted }));
        }
        let bytes = desc.byte_len();
        if bytes > self.frame_capacity {
            let (width, height, capacity) = (desc.width, desc.height, self.frame_capacity);
            return Err(self.error(ErrorKind::TooLarge { width, height, format: format.name(), bytes, capacity }));
        }
        Ok(bytes)
    }

    #[allow(clippy::result_large_err, reason = "the lane must come back with the error; failures are rare")]
    fn hand_over(
        &mut self,
        lane: Lane,
        frame: u64,
        desc: &FrameDesc,
        pooled: bool,
        pipe_pixels: Option<&[u8]>,
    ) -> Result<Ticket, (PluginError, Lane)> {
        let slot = lane.slot();
        if self.in_flight[slot as usize] {
            let kind = ErrorKind::Protocol(format!("slot {slot} is already in flight"));
            return Err((self.error(kind), lane));
        }
        match pipe_pixels {
            None => {
                self.region.write_desc(slot, Buffer::Input, desc);
                self.region.set_frame_number(slot, frame);
                handoff::submit(&Futex, self.region.state(slot), self.region.doorbell());
                // Pairs with the reader's store of `gone` before it scans the slots: one of the
                // two sides sees the other.
                std::sync::atomic::fence(Ordering::SeqCst);
                if self.gone.load(Ordering::SeqCst) {
                    // The reader may have scanned the slots before this submit: end our own wait.
                    handoff::abandon(&Futex, self.region.state(slot));
                }
            }
            Some(pixels) => {
                let message = ToRunner::Frame { frame, desc: desc.to_bytes(), pixels: pixels.to_vec() };
                let deadline = Instant::now() + self.spec.limits.deadline + DEADLINE_GRACE;
                if let Err(kind) = self.send_message(&message, deadline) {
                    return Err((self.error(kind), lane));
                }
            }
        }
        self.in_flight[slot as usize] = true;
        self.next_frame = frame + 1;
        Ok(Ticket { owner: self.serial, lane, pooled, frame, submitted: Instant::now() })
    }

    /// Waits for a frame submitted with [`PluginProcess::submit`] and copies the validated result
    /// into `output`.
    pub fn receive(&mut self, ticket: Ticket, output: &mut OwnedFrame) -> Result<(), PluginError> {
        if !ticket.pooled {
            return Err(self.error(ErrorKind::Protocol("a lane's ticket is collected with receive_lane".into())));
        }
        let (lane, result) = self.wait(ticket, Some(output));
        self.count_snapshot(&result);
        if let (Ok((desc, format)), Transport::SharedMemory) = (&result, self.transport) {
            self.region.read_pixels(&lane, Buffer::Output, desc.byte_len() as usize, &mut output.data);
            set_shape(output, desc, *format);
        }
        let slot = lane.slot() as usize;
        self.lanes[slot] = Some(lane);
        result.map(|_| ())
    }

    /// Waits for a frame submitted with [`PluginProcess::submit_lane`]. On success the result is
    /// in the lane's output buffer (which is the next stage's input buffer), described by the
    /// returned, validated descriptor. The lane always comes back.
    pub fn receive_lane(&mut self, ticket: Ticket) -> (Lane, Result<FrameDesc, PluginError>) {
        let (lane, result) = self.wait(ticket, None);
        self.count_snapshot(&result);
        (lane, result.map(|(desc, _)| desc))
    }

    /// A frame processed from a snapshot of its input cost the runner one copy.
    fn count_snapshot<T, E>(&mut self, result: &Result<T, E>) {
        if result.is_ok() && self.spec.snapshot_input && self.transport == Transport::SharedMemory {
            self.copies += 1;
        }
    }

    fn wait(
        &mut self,
        ticket: Ticket,
        pipe_output: Option<&mut OwnedFrame>,
    ) -> (Lane, Result<(FrameDesc, plugin_sdk::PixelFormat), PluginError>) {
        let Ticket { owner, mut lane, frame, submitted, .. } = ticket;
        let slot = lane.slot();
        if owner != self.serial || !self.in_flight[slot as usize] {
            let kind = if self.child.is_none() {
                ErrorKind::NotRunning
            } else {
                ErrorKind::Protocol(
                    "the ticket is from a process that has been replaced, or from another plugin".into(),
                )
            };
            return (lane, Err(self.error(kind)));
        }
        // The runner takes frames in order: this one could start no earlier than the previous
        // one was seen done, so time queued behind it does not count against the plugin.
        let deadline = submitted.max(self.last_done) + self.spec.limits.deadline + DEADLINE_GRACE;
        if self.transport == Transport::Pipe {
            self.in_flight[slot as usize] = false;
            let capacity = self.region.slot_capacity();
            let result = self.receive_message(frame, deadline).and_then(|(desc, format, pixels)| {
                match pipe_output {
                    Some(output) => {
                        output.data = pixels;
                        set_shape(output, &desc, format);
                    }
                    None if pixels.len() as u64 > capacity => {
                        return Err(ErrorKind::TooLarge {
                            width: desc.width,
                            height: desc.height,
                            format: format.name(),
                            bytes: pixels.len() as u64,
                            capacity,
                        });
                    }
                    None => {
                        self.region.write_pixels(&mut lane, Buffer::Output, &pixels);
                        self.copies += 1;
                    }
                }
                Ok((desc, format))
            });
            self.last_done = Instant::now();
            return (lane, result.map_err(|kind| self.error(kind)));
        }
        let state = self.region.state(slot);
        let outcome = handoff::wait_outcome(&Futex, state, deadline);
        self.in_flight[slot as usize] = false;
        let result = match outcome {
            Ok(Outcome::Done) => self.validate_output(slot).inspect_err(|_| self.kill()),
            Ok(Outcome::Failed) => Err(self.failure_of(frame)),
            Err(WaitError::TimedOut) => {
                self.kill();
                Err(ErrorKind::Deadline { frame, deadline: self.spec.limits.deadline })
            }
            Err(WaitError::Abandoned) => Err(self.died(Some(frame))),
            Err(violation @ WaitError::BadState(_)) => {
                self.kill();
                Err(ErrorKind::Protocol(format!("frame {frame}: {violation}")))
            }
        };
        handoff::reclaim(self.region.state(slot));
        self.last_done = Instant::now();
        (lane, result.map_err(|kind| self.error(kind)))
    }

    /// The output descriptor, copied out once and checked: the frame must start at the buffer's
    /// start (the next stage reads it there) and fit in it.
    fn validate_output(&self, slot: u32) -> Result<(FrameDesc, plugin_sdk::PixelFormat), ErrorKind> {
        let desc = self.region.read_desc(slot, Buffer::Output);
        let format = region::validate_output(&desc, self.region.slot_capacity())
            .and_then(|format| if desc.data == 0 { Ok(format) } else { Err("the frame does not start at its buffer") })
            .map_err(|why| ErrorKind::Protocol(format!("the output descriptor is invalid: {why}")))?;
        Ok((FrameDesc { capacity: self.frame_capacity as u32, ..desc }, format))
    }

    /// Pipe transport: waits for the frame's message.
    fn receive_message(
        &mut self,
        frame: u64,
        deadline: Instant,
    ) -> Result<(FrameDesc, plugin_sdk::PixelFormat, Vec<u8>), ErrorKind> {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = match self.stash.pop_front() {
            Some(message) => Ok(Event::Message(message, 0)),
            None => self.events.recv_timeout(left),
        };
        let message = match received {
            Ok(Event::Message(message, _)) => message,
            Ok(Event::Hello(_)) => return Err(ErrorKind::Protocol("a second handshake".into())),
            Ok(Event::Closed(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.died(Some(frame))),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.kill();
                return Err(ErrorKind::Deadline { frame, deadline: self.spec.limits.deadline });
            }
        };
        match message {
            ToHost::FrameDone { frame: done, desc, pixels } if done == frame => {
                let desc = FrameDesc::from_bytes(&desc);
                let format = region::validate_output(&desc, self.frame_capacity)
                    .ok()
                    .filter(|_| desc.data == 0 && pixels.len() as u64 == desc.byte_len())
                    .ok_or_else(|| {
                        self.kill();
                        ErrorKind::Protocol(format!("frame {frame}: the returned frame does not match its descriptor"))
                    })?;
                Ok((FrameDesc { capacity: self.frame_capacity as u32, ..desc }, format, pixels))
            }
            ToHost::Failed { frame: Some(f), failure } if f == frame => Err(ErrorKind::Frame { frame, failure }),
            other => {
                self.kill();
                Err(ErrorKind::Protocol(format!("frame {frame}: unexpected {}", message_kind(&other))))
            }
        }
    }

    /// The runner sends the reason before it marks the slot failed; collect it.
    fn failure_of(&mut self, frame: u64) -> ErrorKind {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.next_message(deadline) {
                Ok(ToHost::Failed { frame: Some(f), failure }) if f == frame => {
                    return ErrorKind::Frame { frame, failure };
                }
                Ok(_) => continue,
                Err(kind) => return kind,
            }
        }
    }

    /// The plugin process's counters: frames it served and its minor page faults so far.
    pub fn runner_stats(&mut self) -> Result<RunnerStats, PluginError> {
        self.check_running()?;
        // The runner answers once the frames in flight are done.
        let in_flight = self.in_flight.iter().filter(|&&f| f).count() as u32;
        let deadline = Instant::now() + Duration::from_secs(1) + self.spec.limits.deadline * in_flight;
        self.send_message(&ToRunner::Stats, deadline).map_err(|kind| self.error(kind))?;
        handoff::ring_doorbell(&Futex, self.region.doorbell());
        loop {
            match self.fresh_message(deadline).map_err(|kind| self.error(kind))? {
                ToHost::Stats { frames, minor_faults } => return Ok(RunnerStats { frames, minor_faults }),
                // About a frame in flight: kept for when that frame is collected. One answer per
                // frame in flight at most, so the stash holds no more than the slots do.
                other @ (ToHost::Failed { .. } | ToHost::FrameDone { .. }) if self.stash.len() < in_flight as usize => {
                    self.stash.push_back(other)
                }
                other => {
                    let kind = ErrorKind::Protocol(format!("expected Stats, got {}", message_kind(&other)));
                    self.kill();
                    return Err(self.error(kind));
                }
            }
        }
    }

    /// Asks the process to exit and reaps it; kills it if it does not exit within a second.
    pub fn shutdown(mut self) -> Result<(), PluginError> {
        let asked = self.send_message(&ToRunner::Shutdown, Instant::now() + Duration::from_millis(100)).is_ok();
        if asked {
            handoff::ring_doorbell(&Futex, self.region.doorbell());
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Some(child) = self.child.as_mut() {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {
                    self.child = None;
                }
                Ok(Some(status)) => {
                    self.child = None;
                    return Err(self.error(ErrorKind::Died { frame: None, status: status.to_string() }));
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                _ => {
                    self.kill();
                    return Err(self.error(ErrorKind::Protocol("it did not exit when asked; killed".into())));
                }
            }
        }
        Ok(())
    }

    /// Kills the process at once and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// The control channel ended: reap the process, killing it if it is still running (a
    /// process that closes its channel but lives on is misbehaving, and must never make the
    /// host wait).
    fn died(&mut self, frame: Option<u64>) -> ErrorKind {
        let status = match self.child.take() {
            Some(mut child) => {
                let grace = Instant::now() + Duration::from_millis(100);
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break status.to_string(),
                        Ok(None) if Instant::now() < grace => std::thread::sleep(Duration::from_millis(1)),
                        _ => {
                            let _ = child.kill();
                            let status = child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
                            break format!("{status} (killed: its control channel ended while it kept running)");
                        }
                    }
                }
            }
            None => "already reaped".to_string(),
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let status = if status.contains("SIGSYS") {
            format!("{status} (the sandbox killed it: a system call outside its seccomp allowlist)")
        } else {
            status
        };
        let status = match self.closed_because.lock().ok().and_then(|r| r.clone()) {
            Some(reason) => format!("{status}; {reason}"),
            None => status,
        };
        ErrorKind::Died { frame, status }
    }

    fn check_running(&mut self) -> Result<(), PluginError> {
        if self.child.is_none() {
            return Err(self.error(ErrorKind::NotRunning));
        }
        Ok(())
    }

    fn error(&self, kind: ErrorKind) -> PluginError {
        PluginError { plugin: self.name.clone(), kind }
    }

    fn next_event(&mut self, deadline: Instant) -> Result<Event, ErrorKind> {
        let start = Instant::now();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // While it starts, a SIGINT/SIGTERM ends the wait at once; later the run drains.
            let slice = if self.starting { left.min(STOP_POLL) } else { left };
            match self.events.recv_timeout(slice) {
                Ok(Event::Closed(_)) => return Err(self.died(None)),
                Ok(event) => return Ok(event),
                Err(mpsc::RecvTimeoutError::Timeout) if self.starting && crate::sys::signals::stop_requested() => {
                    self.kill();
                    return Err(ErrorKind::Interrupted);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.kill();
                    return Err(ErrorKind::NoAnswer(format!(
                        "it did not answer within {:?}; killed",
                        deadline - start
                    )));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.died(None)),
            }
        }
    }

    /// The next message: a stashed one first.
    fn next_message(&mut self, deadline: Instant) -> Result<ToHost, ErrorKind> {
        match self.stash.pop_front() {
            Some(message) => Ok(message),
            None => self.fresh_message(deadline),
        }
    }

    /// The next message from the channel itself.
    fn fresh_message(&mut self, deadline: Instant) -> Result<ToHost, ErrorKind> {
        match self.next_event(deadline)? {
            Event::Message(message, _) => Ok(message),
            Event::Hello(_) => Err(ErrorKind::Protocol("a second handshake".into())),
            Event::Closed(reason) => Err(ErrorKind::Protocol(reason)),
        }
    }

    fn send_message(&mut self, message: &ToRunner, deadline: Instant) -> Result<(), ErrorKind> {
        let mut framed = Vec::new();
        protocol::write_message(&mut framed, message).map_err(|e| ErrorKind::Protocol(e.to_string()))?;
        self.send(&framed, deadline)
    }

    /// Writes to the control pipe without ever blocking past `deadline`.
    fn send(&mut self, mut bytes: &[u8], deadline: Instant) -> Result<(), ErrorKind> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        while !bytes.is_empty() {
            match self.control.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.kill();
                        return Err(ErrorKind::NoAnswer("it stopped reading its control channel; killed".into()));
                    }
                    let timeout = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX);
                    let mut fds = [PollFd::new(self.control.as_fd(), PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, timeout);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(self.died(None)),
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for PluginProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginProcess").field("name", &self.name).field("pid", &self.pid()).finish_non_exhaustive()
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        self.kill();
        // The standby, once launched, is dropped (killed and reaped) with its result.
        if let Some(standby) = self.standby.take() {
            let _ = standby.join();
        }
    }
}

/// A pipe with a 1 MiB buffer where the system allows it (fewer wake-ups for large messages).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let _ = nix::fcntl::fcntl(write.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    Ok((read, write))
}

fn set_nonblocking(file: &File) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(file.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(file.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Reads the runner's messages: logs go to `tracing` under the plugin's name, the rest to the
/// handle. When the channel ends, every in-flight slot is abandoned so no wait lasts longer.
fn start_reader(
    name: String,
    pipe: File,
    max_message: usize,
    events: EventSender,
    region: Region,
    [gone, active]: [Arc<AtomicBool>; 2],
    why: Arc<Mutex<Option<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut logs = LogLimiter::default();
        let closed = protocol::read_control_channel(
            &mut reader,
            max_message,
            |hello| {
                let _ = events.sender.send(Event::Hello(hello));
            },
            |message| match message {
                ToHost::Log { level, message } => {
                    logs.forward(&name, level, &message);
                    Ok(())
                }
                message => events.queue(message),
            },
        );
        logs.report_dropped(&name);
        gone.store(true, Ordering::SeqCst);
        for slot in (0..region.slot_count()).filter(|_| active.load(Ordering::SeqCst)) {
            let state = region.state(slot);
            for expected in [handoff::state::SUBMITTED, handoff::state::TAKEN] {
                if state
                    .compare_exchange(expected, handoff::state::ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    handoff::Waiter::wake(&Futex, state);
                }
            }
        }
        if let Ok(mut reason) = why.lock() {
            *reason = Some(closed.clone());
        }
        // Never blocks: a full queue must not keep this thread (and so `died`) waiting.
        let _ = events.sender.try_send(Event::Closed(closed));
    })
}

/// How often a start-up wait looks at SIGINT/SIGTERM.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Messages (other than logs) a plugin process may have queued before the host reads them;
/// more is a flood and ends the channel.
const EVENT_QUEUE: usize = 64;

/// The handle's end of the reader thread's queue: bounded by count and by bytes.
struct EventQueue {
    receiver: mpsc::Receiver<Event>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

/// The reader thread's end.
struct EventSender {
    sender: mpsc::SyncSender<Event>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    budget: usize,
}

fn event_queue(budget: usize) -> (EventSender, EventQueue) {
    let (sender, receiver) = mpsc::sync_channel(EVENT_QUEUE);
    let queued_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (EventSender { sender, queued_bytes: Arc::clone(&queued_bytes), budget }, EventQueue { receiver, queued_bytes })
}

/// Bytes a queued message holds (its variable parts, and a little for the rest).
fn weight(message: &ToHost) -> usize {
    64 + match message {
        ToHost::FrameDone { pixels, .. } => pixels.len(),
        ToHost::Loaded { description } => description.len(),
        ToHost::Compiled { artifact } => artifact.len(),
        ToHost::Log { message, .. } => message.len(),
        ToHost::Failed { failure, .. } => failure.text_len(),
        ToHost::Ready | ToHost::Stats { .. } | ToHost::Sandboxed { .. } => 0,
    }
}

impl EventSender {
    /// Queues a message for the handle, or says why the channel must end.
    fn queue(&self, message: ToHost) -> Result<(), String> {
        let bytes = weight(&message);
        let queued = self.queued_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if queued > self.budget {
            return Err(format!("it sent more than {} bytes of messages the host had not asked for", self.budget));
        }
        match self.sender.try_send(Event::Message(message, bytes)) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(_)) => {
                Err(format!("it sent more than {EVENT_QUEUE} messages the host had not asked for"))
            }
            Err(mpsc::TrySendError::Disconnected(_)) => Err("the host closed the handle".into()),
        }
    }
}

impl EventQueue {
    fn recv_timeout(&self, timeout: Duration) -> Result<Event, mpsc::RecvTimeoutError> {
        let event = self.receiver.recv_timeout(timeout)?;
        if let Event::Message(_, bytes) = &event {
            self.queued_bytes.fetch_sub(*bytes, Ordering::SeqCst);
        }
        Ok(event)
    }
}

/// Log lines per second a plugin may write; the rest are dropped and counted.
const LOG_LINES_PER_SECOND: u32 = 200;

/// Forwards plugin log lines, at most [`LOG_LINES_PER_SECOND`], with control characters
/// escaped so that a plugin cannot forge host log lines or send terminal escapes.
#[derive(Default)]
struct LogLimiter {
    window_start: Option<Instant>,
    in_window: u32,
    dropped: u64,
}

impl LogLimiter {
    fn forward(&mut self, plugin: &str, level: i32, message: &str) {
        let now = Instant::now();
        if self.window_start.is_none_or(|start| now - start >= Duration::from_secs(1)) {
            self.report_dropped(plugin);
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= LOG_LINES_PER_SECOND {
            self.dropped += 1;
            return;
        }
        self.in_window += 1;
        forward_log(plugin, level, &PluginText::from(message).to_string());
    }

    fn report_dropped(&mut self, plugin: &str) {
        if self.dropped > 0 {
            tracing::warn!(target: "plugin", "{plugin}: dropped {} log lines (more than {LOG_LINES_PER_SECOND} a second)", self.dropped);
            self.dropped = 0;
        }
    }
}

/// Gives `output` the shape of a validated descriptor.
fn set_shape(output: &mut OwnedFrame, desc: &FrameDesc, format: plugin_sdk::PixelFormat) {
    output.width = desc.width;
    output.height = desc.height;
    output.stride = desc.stride;
    output.format = format;
    output.timestamp_us = desc.timestamp_us;
}

/// A message's name, for errors (never its untrusted contents in full).
fn message_kind(message: &ToHost) -> &'static str {
    match message {
        ToHost::Loaded { .. } => "Loaded",
        ToHost::Ready => "Ready",
        ToHost::Stats { .. } => "Stats",
        ToHost::FrameDone { .. } => "FrameDone for another frame",
        ToHost::Log { .. } => "Log",
        ToHost::Failed { .. } => "Failed for another frame",
        ToHost::Sandboxed { .. } => "Sandboxed",
        ToHost::Compiled { .. } => "Compiled",
    }
}

fn forward_log(plugin: &str, level: i32, message: &str) {
    match LogLevel::from_i32(level) {
        Some(LogLevel::Error) => tracing::error!(target: "plugin", "{plugin}: {message}"),
        Some(LogLevel::Warn) => tracing::warn!(target: "plugin", "{plugin}: {message}"),
        Some(LogLevel::Info) | None => tracing::info!(target: "plugin", "{plugin}: {message}"),
        Some(LogLevel::Debug) => tracing::debug!(target: "plugin", "{plugin}: {message}"),
        Some(LogLevel::Trace) => tracing::trace!(target: "plugin", "{plugin}: {message}"),
    }
}
