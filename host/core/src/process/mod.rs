//! The embedding API: one plugin instance in its own process. Spawn it from a `.wasm` path with
//! parameters and limits, read its description, hand it frames, restart it, shut it down.
//!
//! ```no_run
//! use plugin_host::{PluginProcess, PluginSpec};
//! use plugin_sdk::{OwnedFrame, PixelFormat};
//!
//! // This executable is the runner of its plugin processes (or set `PluginSpec::runner`).
//! plugin_host::runner::run_if_requested();
//! let mut plugin = PluginProcess::spawn(PluginSpec::new("neg", "target/plugins/invert.wasm", 1920 * 1080 * 4))?;
//! let frame = OwnedFrame::new(1920, 1080, PixelFormat::Rgba8);
//! let inverted = plugin.process(&frame)?;
//! plugin.shutdown()?;
//! # Ok::<(), plugin_host::PluginError>(())
//! ```
//!
//! A [`PluginProcess`] is made of a few parts, each with one job:
//! - [`spec`]: what to start ([`PluginSpec`], [`Limits`]) and reading the module file;
//! - `channel`: the spawned process, its pipes, the reader thread and the waits on it;
//! - `launch`: a process brought up to "loaded, waiting for its parameters" (also a standby);
//! - `frames`: the frame slots, tickets and the two transports' paths;
//! - [`error`]: the typed errors, and the one classifier of start-up failures.

mod channel;
pub mod error;
mod frames;
mod launch;
mod logs;
pub mod spec;

pub use error::{ErrorKind, Misuse, NoAnswer, PluginError, SandboxShortfall, StartFailure, Violation};
pub use frames::{BandTicket, Ticket};
pub use spec::{DEADLINE_GRACE, DEFAULT_MODULE_MAX_BYTES, Limits, PluginSpec, default_runner};

use crate::cache::Artifact;
use crate::compile::{CompileError, CompileJob};
use crate::ipc::handoff::{self, Futex};
use crate::ipc::protocol::{ToHost, ToRunner, Transport};
use crate::ipc::region::{self, Region};
use crate::schema::PluginDescription;
use crate::sys::sandbox::Report as SandboxReport;
use frames::Slots;
use launch::Loaded;
use plugin_sdk::abi;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A new module for a running plugin, loading in a process of its own
/// ([`PluginProcess::prepare_swap`]).
pub struct SwapCandidate {
    handle: JoinHandle<Result<(PluginSpec, Artifact), PluginError>>,
}

impl SwapCandidate {
    /// Whether it has finished loading (or failed to): [`PluginProcess::swap`] then waits for
    /// nothing.
    pub fn is_ready(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Counters a plugin process reports about itself (untrusted: for statistics only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunnerStats {
    pub frames: u64,
    pub minor_faults: u64,
}

/// A running plugin process.
pub struct PluginProcess {
    spec: PluginSpec,
    /// The compiled module, kept for restarts (which never recompile).
    artifact: Artifact,
    /// This plugin's view of the shared region (its stage of the chain).
    region: Region,
    /// The process serving frames now; a restart replaces it whole.
    current: Loaded,
    /// Frames in flight and the lanes of frames handed over by copy.
    slots: Slots,
    /// A process started ahead, loaded and waiting for its parameters, for a fast restart.
    standby: Option<JoinHandle<Result<Loaded, PluginError>>>,
    /// Largest frame in bytes: the slot capacity, or for the pipe transport the same rounding.
    frame_capacity: u64,
    /// Frame copies made by the host between lane buffers (see [`PluginProcess::copies`]).
    copies: u64,
    /// The output shape the first ready instance declared; every later one must say the same.
    declared: Option<plugin_sdk::Shape>,
    /// The module that ran before the last swap, compiled, to go back to.
    previous: Option<(PluginSpec, Artifact)>,
}

impl PluginProcess {
    /// Starts the process, loads the module, checks the parameters against its schema and
    /// creates the instance. Returns once it is ready for frames. The plugin gets a region of
    /// its own; frames are handed over with [`PluginProcess::submit`] and
    /// [`PluginProcess::receive`], which copy them in and out.
    pub fn spawn(spec: PluginSpec) -> Result<Self, PluginError> {
        let err = |kind| PluginError { plugin: spec.name.clone(), kind };
        // Either transport lands the result in the slot's output buffer.
        let region = Region::create(&format!("plugin-host:{}", spec.name), spec.slots, spec.max_frame_bytes);
        let region = region.map_err(|e| err(e.into()))?;
        let lanes = region.take_lanes();
        let mut plugin = Self::spawn_stage(spec, &region)?;
        plugin.slots.own_lanes(lanes);
        Ok(plugin)
    }

    /// Starts the plugin as one stage of a chain whose frames live in `region` (a view of the
    /// plugin's stage, see [`Region::create_chain`]). Frames are handed over by lane, in place:
    /// [`PluginProcess::submit_lane`] and [`PluginProcess::receive_lane`].
    pub fn spawn_stage(spec: PluginSpec, region: &Region) -> Result<Self, PluginError> {
        // One start-up limit covers everything: compiling, loading and `init`.
        let deadline = Instant::now() + spec.limits.startup;
        let artifact = Self::compile(&spec, deadline)?;
        Self::start_compiled(spec, artifact, region, deadline)
    }

    /// Reads the spec's module and compiles it in a sandboxed runner (or takes it from the cache).
    fn compile(spec: &PluginSpec, deadline: Instant) -> Result<Artifact, PluginError> {
        let err = |kind| PluginError { plugin: spec.name.clone(), kind };
        let module = spec::read_module(&spec.name, &spec.module, spec.limits.module_max_bytes)?;
        let job = CompileJob {
            runner: spec.runner_path().map_err(|e| err(ErrorKind::Spawn(e)))?,
            sandbox: spec.sandbox,
            memory_limit: spec.limits.compile_memory(),
            deadline,
            startup: spec.limits.startup,
        };
        crate::cache::artifact(module, spec.cache_dir.as_deref(), job.memory_limit, |module| {
            crate::compile::compile_in_sandbox(&job, module)
        })
        .map_err(|source| {
            err(match source {
                CompileError::Interrupted => ErrorKind::Interrupted,
                source => ErrorKind::Compile { path: spec.module.clone(), source },
            })
        })
    }

    /// Starts loading `module` in the background, to take over with [`PluginProcess::swap`]:
    /// compiled in a sandbox (as at start) and loaded once in a process of its own on a private
    /// region of its own, never this plugin's (its code runs while loading, and must not reach
    /// the frames this plugin serves meanwhile).
    pub fn prepare_swap(&self, module: PathBuf) -> SwapCandidate {
        let mut spec = self.spec.clone();
        spec.module = module;
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + spec.limits.startup;
            let artifact = Self::compile(&spec, deadline)?;
            let trial = Region::create(&format!("plugin-host:{}:trial", spec.name), region::MIN_SLOTS, 4096)
                .map_err(|e| PluginError { plugin: spec.name.clone(), kind: e.into() })?;
            // Loaded (and dropped): it is a module, with the ABI, that describes itself.
            Loaded::launch(&spec, &trial, &artifact, deadline)?;
            Ok((spec, artifact))
        });
        SwapCandidate { handle }
    }

    /// With no frame in flight: makes the candidate's process this plugin's, given the same
    /// parameters. When it failed to load, refuses them, or declares another output shape, the
    /// plugin goes on with the module it ran (in a fresh process when the old one was already
    /// stopped) and the error says why.
    pub fn swap(&mut self, candidate: SwapCandidate) -> Result<(), PluginError> {
        let prepared = candidate.handle.join().unwrap_or_else(|_| {
            Err(self.error(ErrorKind::Spawn(std::io::Error::other("loading the new module panicked"))))
        });
        let (spec, artifact) = prepared?;
        let taken = self.input_shape();
        let old_spec = std::mem::replace(&mut self.spec, spec);
        let old_artifact = std::mem::replace(&mut self.artifact, artifact);
        let startup = self.spec.limits.startup;
        self.kill();
        // The standby holds the old module: dropped (its process is killed when it is).
        self.standby = None;
        let started = Loaded::launch(&self.spec, &self.region, &self.artifact, Instant::now() + startup)
            .map_err(|e| e.kind)
            .and_then(|loaded| {
                self.current = loaded;
                self.activate(Instant::now() + startup)
            })
            .and_then(|()| match self.input_shape() == taken {
                true => Ok(()),
                false => Err(ErrorKind::Spawn(std::io::Error::other(
                    "it takes its frames in another format than the plugin it replaces",
                ))),
            });
        let Err(kind) = started else {
            self.previous = Some((old_spec, old_artifact));
            return Ok(());
        };
        let refused = self.error(kind);
        self.relaunch(old_spec, old_artifact)?;
        Err(refused)
    }

    /// Goes back to the module that ran before the last [`PluginProcess::swap`] (compiled
    /// already: its file is not read again). False when there was none.
    pub fn swap_back(&mut self) -> Result<bool, PluginError> {
        let Some((spec, artifact)) = self.previous.take() else { return Ok(false) };
        self.relaunch(spec, artifact)?;
        Ok(true)
    }

    /// Replaces the process with a fresh one of `spec`'s compiled `artifact`.
    fn relaunch(&mut self, spec: PluginSpec, artifact: Artifact) -> Result<(), PluginError> {
        self.kill();
        self.spec = spec;
        self.artifact = artifact;
        self.standby = None;
        let startup = self.spec.limits.startup;
        self.current = Loaded::launch(&self.spec, &self.region, &self.artifact, Instant::now() + startup)?;
        self.activate(Instant::now() + startup).map_err(|kind| self.error(kind))
    }

    /// The module file it runs.
    pub fn module(&self) -> &std::path::Path {
        &self.spec.module
    }

    /// Launches a process of a compiled module on `region` and activates it: the part of a
    /// start that a stage's first process and its further workers share.
    fn start_compiled(
        spec: PluginSpec,
        artifact: Artifact,
        region: &Region,
        deadline: Instant,
    ) -> Result<Self, PluginError> {
        let frame_capacity =
            launch::frame_capacity(&spec).map_err(|e| PluginError { plugin: spec.name.clone(), kind: e.into() })?;
        let current = Loaded::launch(&spec, region, &artifact, deadline)?;
        let mut plugin = PluginProcess {
            frame_capacity,
            slots: Slots::new(region.slot_count() as usize),
            spec,
            artifact,
            region: region.clone(),
            current,
            standby: None,
            copies: 0,
            declared: None,
            previous: None,
        };
        plugin.activate(deadline).map_err(|kind| plugin.error(kind))?;
        Ok(plugin)
    }

    /// Makes the loaded process the active one: frees the stage's slots, sends the parameters
    /// and waits for the instance; then starts a standby process if the spec asks for one.
    fn activate(&mut self, deadline: Instant) -> Result<(), ErrorKind> {
        let input = self.input_shape().map(|shape| shape_desc(shape).to_bytes());
        let others =
            self.spec.more_inputs.iter().filter_map(|&s| self.taken(s)).map(|s| shape_desc(s).to_bytes()).collect();
        let channel = &mut self.current.channel;
        channel.starting = true;
        for slot in 0..self.region.slot_count() {
            self.region.state(slot).store(handoff::state::FREE, std::sync::atomic::Ordering::Release);
        }
        self.slots.renew();
        channel.set_active();
        let params = self.current.description.resolve_params(&self.spec.params)?;
        let encoded = abi::encode_params(params.iter().map(|(n, v)| (n.as_str(), v)));
        let ready = channel.send_message(&ToRunner::Init { params: encoded, input, others }, deadline).and_then(|()| {
            match channel.next_message(deadline)? {
                ToHost::Ready { band_context, output } => Ok((band_context, output)),
                ToHost::Failed { failure, .. } => Err(ErrorKind::Init(failure)),
                other => Err(Violation::Unexpected { expected: "Ready", got: channel::message_kind(&other) }.into()),
            }
        });
        channel.starting = false;
        let (band_context, output) = ready.map_err(|kind| kind.out_of_time(&self.spec))?;
        self.current.band_context = band_context;
        let declared = match (input, output) {
            (Some(_), Some(desc)) => Some(declared_shape(&abi::FrameDesc::from_bytes(&desc))?),
            (Some(_), None) => return Err(Violation::Unexpected { expected: "an output shape", got: "none" }.into()),
            (None, _) => None,
        };
        if let (Some(before), Some(now)) = (self.declared, declared)
            && before != now
        {
            return Err(Violation::OutputShapeChanged { before, now }.into());
        }
        self.declared = self.declared.or(declared);
        self.current.output_shape = declared;
        tracing::debug!("plugin \"{}\" ready; sandbox {}", self.spec.name, self.current.sandbox.summary());
        if self.spec.standby && self.standby.is_none() {
            let (spec, region, artifact) = (self.spec.clone(), self.region.clone(), Artifact::clone(&self.artifact));
            self.standby = Some(std::thread::spawn(move || {
                Loaded::launch(&spec, &region, &artifact, Instant::now() + spec.limits.startup)
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
        let startup = self.spec.limits.startup;
        let deadline = move || Instant::now() + startup;
        self.current = match self.standby.take().map(JoinHandle::join) {
            Some(Ok(Ok(ready))) => ready,
            _ => Loaded::launch(&self.spec, &self.region, &self.artifact, deadline())?,
        };
        if let Err(kind) = self.activate(deadline()) {
            // The standby may have died while it waited: one more try with a new process.
            self.kill();
            self.current = Loaded::launch(&self.spec, &self.region, &self.artifact, deadline())?;
            self.activate(deadline()).map_err(|_| self.error(kind))?;
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Rows of context a band of the plugin's output reads, as the ready instance reported it
    /// (untrusted: it decides only whether the plugin gets bands); `None`: whole frames only.
    pub fn band_context(&self) -> Option<u32> {
        self.current.band_context
    }

    /// The plugin's state as bytes (`Plugin::snapshot`), `None` when it keeps none. Call it with
    /// no frame in flight; give it to a later process with [`PluginProcess::restore`].
    pub fn snapshot(&mut self) -> Result<Option<Vec<u8>>, PluginError> {
        let answer = self.request(&ToRunner::Snapshot).and_then(|answer| match answer {
            ToHost::Snapshot { state } => Ok(state.map(serde_bytes::ByteBuf::into_vec)),
            ToHost::Failed { frame: None, failure } => Err(ErrorKind::Init(failure)),
            other => Err(Violation::Unexpected { expected: "Snapshot", got: channel::message_kind(&other) }.into()),
        });
        match answer {
            Ok(Some(state)) if state.len() > abi::MAX_SNAPSHOT_BYTES => Err(self
                .error(Violation::Unexpected { expected: "a snapshot within the limit", got: "a larger one" }.into())),
            other => other.map_err(|kind| self.error(kind)),
        }
    }

    /// Gives a fresh instance `state` from an earlier one's [`PluginProcess::snapshot`]: true
    /// when it took it, false when the plugin has no restore. An error (a trap, or the plugin's
    /// refusal) leaves a fresh instance without it.
    pub fn restore(&mut self, state: &[u8]) -> Result<bool, PluginError> {
        let answer = self.request(&ToRunner::Restore { state: state.to_vec() }).and_then(|answer| match answer {
            ToHost::Restored { taken } => Ok(taken),
            ToHost::Failed { frame: None, failure } => Err(ErrorKind::Init(failure)),
            other => Err(Violation::Unexpected { expected: "Restored", got: channel::message_kind(&other) }.into()),
        });
        answer.map_err(|kind| self.error(kind))
    }

    /// Gives the running plugin new values for `given` parameters (the others keep theirs).
    /// They are checked against its schema first: a bad value is refused with the schema's
    /// sentence and nothing changes. Call it with no frame in flight: the frames submitted after
    /// it get the new values, and so does a restarted process. A plugin that fails to take them
    /// keeps the old ones.
    pub fn set_params(&mut self, given: &[(String, abi::ParamValue)]) -> Result<(), PluginError> {
        let mut merged = self.spec.params.clone();
        for (name, value) in given {
            match merged.iter_mut().find(|(n, _)| n == name) {
                Some((_, old)) => *old = value.clone(),
                None => merged.push((name.clone(), value.clone())),
            }
        }
        let resolved = self.current.description.resolve_params(&merged).map_err(|e| self.error(e.into()))?;
        let encoded = abi::encode_params(resolved.iter().map(|(n, v)| (n.as_str(), v)));
        let answer = self.request(&ToRunner::SetParams { params: encoded }).and_then(|answer| match answer {
            ToHost::ParamsSet => Ok(()),
            ToHost::Failed { frame: None, failure } => Err(ErrorKind::Init(failure)),
            other => Err(Violation::Unexpected { expected: "ParamsSet", got: channel::message_kind(&other) }.into()),
        });
        answer.map_err(|kind| self.error(kind))?;
        self.spec.params = merged;
        Ok(())
    }

    /// The shape of the frames it gets: the spec's input in the nearest format it takes.
    pub fn input_shape(&self) -> Option<plugin_sdk::Shape> {
        self.taken(self.spec.input?)
    }

    /// `input` in the nearest format the plugin takes; `None` when it takes none of them.
    pub fn taken(&self, input: plugin_sdk::Shape) -> Option<plugin_sdk::Shape> {
        let description = &self.current.description;
        let format = plugin_sdk::convert::nearest(input.format, |f| description.accepts(f))?;
        Some(plugin_sdk::Shape { format, ..input })
    }

    /// The shape of its output frames for [`PluginProcess::input_shape`], as it declared it
    /// when it started (untrusted: checked to be a frame, and every frame is checked against it).
    pub fn output_shape(&self) -> Option<plugin_sdk::Shape> {
        self.declared
    }

    /// What starts more processes of this plugin, from the same compiled module and parameters:
    /// more workers for bands of the same frames (see [`WorkerStarter::spawn`]).
    pub fn worker_starter(&self) -> WorkerStarter {
        WorkerStarter { spec: self.spec.clone(), artifact: Artifact::clone(&self.artifact) }
    }

    /// What the plugin says about itself: metadata, formats and parameter schema.
    pub fn description(&self) -> &PluginDescription {
        &self.current.description
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.current.channel.pid()
    }

    /// Largest frame in bytes the plugin can be given.
    pub fn frame_capacity(&self) -> u64 {
        self.frame_capacity
    }

    pub fn transport(&self) -> Transport {
        self.spec.transport
    }

    /// The sandbox layers the process has, as it reported them before it was sent the module.
    pub fn sandbox(&self) -> &SandboxReport {
        &self.current.sandbox
    }

    /// Frame copies made for this plugin beyond the hand-off: snapshots of inputs
    /// (`snapshot_input`); 0 otherwise (the pipe transport's bytes go from buffer to buffer
    /// through the kernel).
    pub fn copies(&self) -> u64 {
        self.copies
    }

    /// Sends `message` between frames, wakes the runner to read it (it sleeps on the doorbell,
    /// looking at its control pipe only now and then) and returns its answer, within the
    /// start-up limit.
    fn request(&mut self, message: &ToRunner) -> Result<ToHost, ErrorKind> {
        let deadline = Instant::now() + self.spec.limits.startup;
        self.current.channel.send_message(message, deadline)?;
        handoff::ring_doorbell(&Futex, self.region.doorbell());
        self.current.channel.next_message(deadline)
    }

    /// The plugin process's counters: frames it served and its minor page faults so far.
    pub fn runner_stats(&mut self) -> Result<RunnerStats, PluginError> {
        self.check_running()?;
        // The runner answers once the frames in flight are done.
        let in_flight = self.slots.in_flight();
        let deadline = Instant::now() + Duration::from_secs(1) + self.spec.limits.deadline * in_flight as u32;
        let channel = &mut self.current.channel;
        let asked = channel.send_message(&ToRunner::Stats, deadline);
        asked.map_err(|kind| self.error(kind))?;
        handoff::ring_doorbell(&Futex, self.region.doorbell());
        loop {
            let channel = &mut self.current.channel;
            match channel.fresh_message(deadline) {
                Ok(ToHost::Stats { frames, minor_faults }) => return Ok(RunnerStats { frames, minor_faults }),
                // About a frame in flight: kept for when that frame is collected. One answer per
                // frame in flight at most, so the stash holds no more than the slots do.
                Ok(other @ (ToHost::Failed { .. } | ToHost::FrameDone { .. })) if channel.stashed() < in_flight => {
                    channel.stash(other)
                }
                Ok(other) => {
                    channel.kill();
                    let got = channel::message_kind(&other);
                    return Err(self.error(Violation::Unexpected { expected: "Stats", got }.into()));
                }
                Err(kind) => return Err(self.error(kind)),
            }
        }
    }

    /// Asks the process to exit and reaps it; kills it if it does not exit within a second.
    pub fn shutdown(mut self) -> Result<(), PluginError> {
        let channel = &mut self.current.channel;
        if channel.is_running()
            && channel.send_message(&ToRunner::Shutdown, Instant::now() + Duration::from_millis(100)).is_ok()
        {
            handoff::ring_doorbell(&Futex, self.region.doorbell());
        }
        let exited = self.current.channel.wait_exit();
        exited.map_err(|kind| self.error(kind))
    }

    /// Kills the process at once and reaps it.
    pub fn kill(&mut self) {
        self.current.channel.kill();
    }

    fn check_running(&self) -> Result<(), PluginError> {
        match self.current.channel.is_running() {
            true => Ok(()),
            false => Err(self.error(ErrorKind::NotRunning)),
        }
    }

    fn error(&self, kind: ErrorKind) -> PluginError {
        PluginError { plugin: self.spec.name.clone(), kind }
    }
}

/// Starts processes of one plugin whose module is compiled already (from
/// [`PluginProcess::worker_starter`]); it can be sent to other threads to start several at once.
#[derive(Clone)]
pub struct WorkerStarter {
    spec: PluginSpec,
    artifact: Artifact,
}

impl WorkerStarter {
    /// Starts a process on `region`, a view of another control block on the same boundaries
    /// ([`Region::for_worker`]): one more worker, ready for bands of the same frames.
    pub fn spawn(&self, region: &Region) -> Result<PluginProcess, PluginError> {
        let deadline = Instant::now() + self.spec.limits.startup;
        PluginProcess::start_compiled(self.spec.clone(), Artifact::clone(&self.artifact), region, deadline)
    }
}

impl std::fmt::Debug for PluginProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginProcess").field("name", &self.spec.name).field("pid", &self.pid()).finish_non_exhaustive()
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

/// The descriptor that tells a plugin the shape of its input frames.
fn shape_desc(shape: plugin_sdk::Shape) -> abi::FrameDesc {
    let stride = shape.format.row_bytes(shape.width).min(u32::MAX as u64) as u32;
    abi::FrameDesc {
        width: shape.width,
        height: shape.height,
        stride,
        format: shape.format as u32,
        ..Default::default()
    }
}

/// Largest side of a declared output frame.
const MAX_DECLARED_SIDE: u32 = 16384;

/// The shape a runner's `Ready` declares, checked to be a frame.
fn declared_shape(desc: &abi::FrameDesc) -> Result<plugin_sdk::Shape, ErrorKind> {
    let format = abi::PixelFormat::from_u32(desc.format).ok_or(Violation::OutputShape("unknown pixel format"))?;
    if !(1..=MAX_DECLARED_SIDE).contains(&desc.width) || !(1..=MAX_DECLARED_SIDE).contains(&desc.height) {
        return Err(Violation::OutputShape("a side is 0 or larger than 16384").into());
    }
    Ok(plugin_sdk::Shape::new(desc.width, desc.height, format))
}
