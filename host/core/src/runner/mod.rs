//! Runner mode: the plugin process. The host starts its own binary (or any binary that calls
//! [`run_if_requested`]) with the runner argument; the runner takes its three descriptors,
//! handshakes, loads the module, and serves frames from the shared region until told to stop.

mod memory;
mod wasm;

use crate::ipc::handoff::{self, Futex, Outcome};
use crate::ipc::protocol::{self, Failure, Hello, MAX_TO_RUNNER_BYTES, ToHost, ToRunner};
use crate::ipc::protocol::{RUNNER_ARG, Transport};
use crate::ipc::region::{Buffer, MAX_SLOT_CAPACITY, PAGE_SIZE, Region};
use crate::sys::process::take_runner_fds;
use memory::Window;
use std::fs::File;
use std::io::BufReader;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasm::{FrameIo, LogSink, PluginModule};

/// The answer to [`ToRunner::Compile`]: the module compiled for the runners' engine, or why it
/// cannot be. Untrusted bytes: only ever called inside a sandboxed runner, under its memory limit.
pub fn compile(module: Vec<u8>) -> ToHost {
    let compiled = crate::artifact::compiling_engine()
        .and_then(|engine| engine.precompile_module(&module).map_err(|e| format!("{e:#}")));
    match compiled {
        Ok(artifact) => ToHost::Compiled { artifact },
        Err(why) => ToHost::Failed { frame: None, failure: Failure::Load(why.into()) },
    }
}

/// For applications that embed the host and use their own executable as the runner: call first
/// thing in `main`; in a plugin process it runs the runner and exits.
pub fn run_if_requested() {
    if std::env::args_os().nth(1).is_some_and(|a| a == RUNNER_ARG) {
        let code = main();
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
    }
}

/// The runner's main. Exit status 0 after a requested shutdown, 1 otherwise.
pub fn main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// Shared by the frame loop and the log import.
type Control = Arc<Mutex<File>>;

fn send(control: &Control, message: &ToHost) -> Result<(), protocol::ProtocolError> {
    let mut out = control.lock().map_err(|_| protocol::ProtocolError::Closed)?;
    protocol::write_message(&mut *out, message)
}

/// Why a runner stopped serving (it exits with status 1; the host has been told what it could).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("{0}")]
    Protocol(#[from] protocol::ProtocolError),
    #[error("cannot take its descriptors: {0}")]
    Descriptors(#[from] std::io::Error),
    /// A failure reported to the host as `Failed`, after which the runner stops.
    #[error("{0}")]
    Failed(Failure),
}

fn serve() -> Result<(), RunnerError> {
    // The sandbox goes up first: its policy comes from the arguments the host gave, and nothing
    // untrusted (the module, over fd 3) has been read yet.
    let policy = crate::sys::sandbox::Policy::from_args(std::env::args_os().skip(2));
    let sandbox = crate::sys::sandbox::apply(&policy);
    let [control_in, control_out, region_fd] = take_runner_fds()?;
    let mut input = BufReader::new(File::from(control_in));
    let mut output = File::from(control_out);
    // Only the host's handshake is read before the failure is reported: no untrusted byte.
    protocol::handshake(Hello::OURS, &mut input, &mut output)?;
    let control: Control = Arc::new(Mutex::new(output));
    let seccomp_on = match sandbox {
        Ok(report) => {
            let on = report
                .layer(crate::sys::sandbox::names::SECCOMP)
                .is_some_and(|l| l.state == crate::sys::sandbox::State::On);
            send(&control, &ToHost::Sandboxed { report })?;
            on
        }
        Err(e) => {
            let failure = Failure::Sandbox(e.to_string().into());
            send(&control, &ToHost::Failed { frame: None, failure: failure.clone() })?;
            return Err(RunnerError::Failed(failure));
        }
    };
    let fail = |failure: Failure| {
        let _ = send(&control, &ToHost::Failed { frame: None, failure: failure.clone() });
        RunnerError::Failed(failure)
    };
    // Once this process's own threads run (none to compile; the watchdog to serve), no other
    // may start.
    let forbid_threads = || match seccomp_on {
        true => crate::sys::sandbox::seccomp::forbid_new_threads()
            .map_err(|e| fail(Failure::Sandbox(format!("cannot forbid threads: {e}").into()))),
        false => Ok(()),
    };

    let (module_bytes, precompiled, limits, transport, pipe_capacity, [stage, boundary], node) =
        match protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES)? {
            ToRunner::Load {
                module, precompiled, limits, transport, frame_capacity, stage, boundary, node, ..
            } => (module, precompiled, limits, transport, frame_capacity, [stage, boundary], node),
            ToRunner::Compile { module } => {
                forbid_threads()?;
                return Ok(send(&control, &compile(module))?);
            }
            other => return Err(fail(Failure::Protocol(format!("expected Load, got {other:?}").into()))),
        };
    let region = Region::open(File::from(region_fd)).map_err(|e| fail(Failure::Protocol(e.to_string().into())))?;
    let region = match node {
        Some(node) => region.for_node(stage, node),
        None => region.for_worker(stage, boundary),
    };
    let region = region.map_err(|e| fail(Failure::Protocol(e.to_string().into())))?;
    let (capacity, window) = match transport {
        Transport::SharedMemory => {
            let parts = region
                .window_parts()
                .ok_or_else(|| fail(Failure::Protocol(format!("stage {stage} has no output boundary").into())))?;
            let region_file = region.file().try_clone().map_err(|e| fail(Failure::Protocol(e.to_string().into())))?;
            // Its inputs read-only, its output writable, nothing of any other boundary.
            let parts = parts.into_iter().map(|(offset, len, writable)| (offset, len as usize, writable)).collect();
            (region.slot_capacity(), Some(Window::new(region_file, parts)))
        }
        Transport::Pipe => (pipe_capacity.next_multiple_of(PAGE_SIZE), None),
    };
    let capacity = u32::try_from(capacity)
        .ok()
        .filter(|&c| c as u64 <= MAX_SLOT_CAPACITY)
        .ok_or_else(|| fail(Failure::Protocol(format!("frame capacity {capacity} is too large").into())))?;
    let engine = wasm::engine(window.clone()).map_err(|e| fail(Failure::Load(e.to_string().into())))?;
    let watchdog = Watchdog::start(engine.clone(), Duration::from_millis(limits.deadline_ms.max(1)));
    forbid_threads()?;
    let module = PluginModule::load(&engine, &module_bytes, precompiled).map_err(fail)?;
    drop(module_bytes);
    let log_control = Arc::clone(&control);
    let log: LogSink = Arc::new(move |level, message| {
        let _ = send(&log_control, &ToHost::Log { level, message });
    });
    let mut instance = module.instantiate(&limits, capacity, window.clone(), Arc::clone(&log)).map_err(fail)?;
    let description = instance.describe().map_err(fail)?;
    send(&control, &ToHost::Loaded { description })?;

    let (mut params, input_shape, other_shapes) = match protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES)? {
        ToRunner::Init { params, input, others } => (params, input, others),
        ToRunner::Shutdown => return Ok(()),
        other => return Err(fail(Failure::Protocol(format!("expected Init, got {other:?}").into()))),
    };
    let startup = Duration::from_millis(limits.startup_ms.max(1));
    watchdog.guard(startup, || instance.init(&params, 1)).map_err(fail)?;
    let output = match input_shape {
        Some(desc) if other_shapes.is_empty() => {
            let shape =
                watchdog.guard(startup, || instance.output_shape(&plugin_sdk::abi::FrameDesc::from_bytes(&desc)));
            Some(shape.map_err(fail)?.to_bytes())
        }
        Some(desc) => {
            let shapes: Vec<_> =
                [desc].iter().chain(&other_shapes).map(plugin_sdk::abi::FrameDesc::from_bytes).collect();
            let shape = watchdog.guard(startup, || instance.output_shape_many(&shapes));
            Some(shape.map_err(fail)?.to_bytes())
        }
        None => None,
    };
    send(&control, &ToHost::Ready { band_context: instance.band_context().map_err(fail)?, output })?;

    let deadline = Duration::from_millis(limits.deadline_ms.max(1));
    let fresh = |params: &[u8]| -> Result<wasm::PluginInstance, Failure> {
        let mut instance = module.instantiate(&limits, capacity, window.clone(), Arc::clone(&log))?;
        watchdog.guard(startup, || instance.init(params, 1))?;
        Ok(instance)
    };
    let recover = |instance: &mut wasm::PluginInstance, failure: &Failure, params: &[u8]| -> Result<(), RunnerError> {
        if matches!(failure, Failure::Trap { .. } | Failure::Deadline | Failure::MemoryLimit(_)) {
            // A trap can leave the guest's state half-updated: start it afresh.
            *instance = fresh(params).map_err(fail)?;
        }
        Ok(())
    };
    // New parameters between frames: the plugin's own set_params, or a fresh instance with them.
    // On failure the old ones stay (a trap in set_params leaves a fresh instance with them).
    let set_params =
        |instance: &mut wasm::PluginInstance, params: &mut Vec<u8>, new: Vec<u8>| -> Result<(), RunnerError> {
            let result = match watchdog.guard(startup, || instance.set_params(&new)) {
                Ok(true) => Ok(()),
                Ok(false) => fresh(&new).map(|made| *instance = made),
                Err(failure) => Err(failure),
            };
            match result {
                Ok(()) => {
                    *params = new;
                    Ok(send(&control, &ToHost::ParamsSet)?)
                }
                Err(failure) => {
                    send(&control, &ToHost::Failed { frame: None, failure: failure.clone() })?;
                    recover(instance, &failure, params)
                }
            }
        };
    // The plugin's state between frames: given to the host (`restore` None), or taken back
    // right after a start. A restore that fails leaves a fresh instance, without the state.
    let keep_state = |instance: &mut wasm::PluginInstance,
                      restore: Option<Vec<u8>>,
                      params: &[u8]|
     -> Result<(), RunnerError> {
        let restoring = restore.is_some();
        let answer = match restore {
            None => watchdog
                .guard(startup, || instance.snapshot())
                .map(|state| ToHost::Snapshot { state: state.map(serde_bytes::ByteBuf::from) }),
            Some(state) => watchdog.guard(startup, || instance.restore(&state)).map(|taken| ToHost::Restored { taken }),
        };
        match answer {
            Ok(answer) => Ok(send(&control, &answer)?),
            Err(failure) => {
                send(&control, &ToHost::Failed { frame: None, failure: failure.clone() })?;
                match restoring {
                    true => {
                        *instance = fresh(params).map_err(fail)?;
                        Ok(())
                    }
                    false => recover(instance, &failure, params),
                }
            }
        }
    };
    // A frame in a slot is done: its output's descriptor and metadata, or its failure, go back.
    let finish_frame = |instance: &mut wasm::PluginInstance,
                        slot: u32,
                        frame: u64,
                        result: Result<plugin_sdk::abi::FrameDesc, Failure>,
                        params: &[u8]|
     -> Result<(), RunnerError> {
        match result {
            Ok(output) => {
                if let Some(set) = instance.take_output_meta() {
                    region.write_meta(slot, Buffer::Output, Some(&set));
                }
                region.write_desc(slot, Buffer::Output, &output);
                handoff::complete(&Futex, region.state(slot), Outcome::Done);
            }
            Err(failure) => {
                send(&control, &ToHost::Failed { frame: Some(frame), failure: failure.clone() })?;
                handoff::complete(&Futex, region.state(slot), Outcome::Failed);
                recover(instance, &failure, params)?;
            }
        }
        Ok(())
    };
    let mut frames_served = 0u64;
    if transport == Transport::Pipe {
        loop {
            match protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES)? {
                ToRunner::Frame { frame, slot, desc, len, meta } => {
                    frames_served += 1;
                    let desc = plugin_sdk::abi::FrameDesc {
                        data: 0,
                        capacity,
                        ..plugin_sdk::abi::FrameDesc::from_bytes(&desc)
                    };
                    if len != desc.byte_len() {
                        return Err(fail(Failure::Protocol("frame bytes do not match their descriptor".into())));
                    }
                    // Straight from the pipe into the plugin's input buffer, outside its deadline.
                    instance
                        .read_input(&desc, &mut input)
                        .map_err(|e| fail(Failure::Protocol(e.to_string().into())))?;
                    instance.set_input_meta(&meta, true);
                    let result = watchdog.guard(deadline, || instance.process(&desc, 1, FrameIo::Heap, None));
                    match result {
                        Ok(done) => {
                            let meta = instance.take_output_meta();
                            let pixels = instance.heap_output(&done).ok_or_else(|| {
                                fail(Failure::Protocol("the output lies outside the plugin's memory".into()))
                            })?;
                            let len = pixels.len() as u64;
                            let done = ToHost::FrameDone { frame, slot, desc: done.to_bytes(), len, meta };
                            let mut out = control.lock().map_err(|_| protocol::ProtocolError::Closed)?;
                            protocol::write_message_with_bytes(&mut *out, &done, pixels)?;
                        }
                        Err(failure) => {
                            send(&control, &ToHost::Failed { frame: Some(frame), failure: failure.clone() })?;
                            recover(&mut instance, &failure, &params)?;
                        }
                    }
                }
                ToRunner::Stats => send(&control, &stats(frames_served))?,
                ToRunner::SetParams { params: new } => set_params(&mut instance, &mut params, new)?,
                ToRunner::Snapshot => keep_state(&mut instance, None, &params)?,
                ToRunner::Restore { state } => keep_state(&mut instance, Some(state), &params)?,
                ToRunner::Shutdown => return Ok(()),
                other => {
                    return Err(fail(Failure::Protocol(format!("unexpected {other:?} while serving frames").into())));
                }
            }
        }
    }
    let mut seen = region.doorbell().load(Ordering::Acquire);
    let mut meta = Vec::with_capacity(plugin_sdk::abi::MAX_META_BYTES);
    let mut inputs = Vec::with_capacity(plugin_sdk::abi::MAX_INPUTS);
    let mut metas: Vec<Vec<u8>> = Vec::new();
    loop {
        if let Some(slot) = next_submitted(&region) {
            let frame = region.frame_number(slot);
            if region.node().is_some() {
                // A graph node's frame: its inputs lie in other boundaries' slots, named by the
                // host; each must be a buffer this node maps read-only.
                region.inputs(slot, &mut inputs);
                let output = region.window_offset(region.node().map_or(0, |n| n.write), slot, false);
                let mut placed = Vec::with_capacity(inputs.len());
                metas.resize_with(inputs.len(), Vec::new);
                for (k, &(boundary, buffer, desc)) in inputs.iter().enumerate() {
                    match region.window_offset(boundary, buffer, true) {
                        Some(offset) => placed.push((desc, offset as u32)),
                        None => {
                            let why = format!("input {k} of frame {frame} lies outside the node's window");
                            return Err(fail(Failure::Protocol(why.into())));
                        }
                    }
                    region.read_meta_at(boundary, buffer, &mut metas[k]);
                }
                let Some(output) = output.filter(|_| !placed.is_empty()) else {
                    return Err(fail(Failure::Protocol(format!("frame {frame} names no inputs").into())));
                };
                instance.set_input_metas(&metas[..placed.len()]);
                let result = watchdog.guard(deadline, || match placed.as_slice() {
                    [(desc, input)] => {
                        instance.process(desc, 1, FrameIo::InPlace { input: *input, output: output as u32 }, None)
                    }
                    many => instance.process_many(many, output as u32),
                });
                frames_served += 1;
                finish_frame(&mut instance, slot, frame, result, &params)?;
                continue;
            }
            let input_desc = region.read_desc(slot, Buffer::Input);
            let (Some(input), Some(output)) =
                (region.window_offset(boundary, slot, true), region.window_offset(boundary + 1, slot, false))
            else {
                return Err(fail(Failure::Protocol(format!("slot {slot} lies outside the window").into())));
            };
            let io = FrameIo::InPlace { input: input as u32, output: output as u32 };
            let band = match region.band(slot) {
                (_, 0) => None,
                band => Some(band),
            };
            region.read_meta(slot, Buffer::Input, &mut meta);
            instance.set_input_meta(&meta, band.is_none_or(|(first, _)| first == 0));
            let result = watchdog.guard(deadline, || instance.process(&input_desc, 1, io, band));
            frames_served += 1;
            finish_frame(&mut instance, slot, frame, result, &params)?;
            continue;
        }
        if control_message_waiting(&input)? {
            match protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES)? {
                ToRunner::Stats => send(&control, &stats(frames_served))?,
                ToRunner::SetParams { params: new } => set_params(&mut instance, &mut params, new)?,
                ToRunner::Snapshot => keep_state(&mut instance, None, &params)?,
                ToRunner::Restore { state } => keep_state(&mut instance, Some(state), &params)?,
                ToRunner::Shutdown => return Ok(()),
                other => {
                    return Err(fail(Failure::Protocol(format!("unexpected {other:?} while serving frames").into())));
                }
            }
        }
        // Sleep until the next submit; wake now and then to look at the control pipe.
        seen =
            handoff::wait_doorbell(&Futex, region.doorbell(), seen, Some(Instant::now() + Duration::from_millis(200)));
    }
}

/// This process's counters.
fn stats(frames: u64) -> ToHost {
    let minor_faults = crate::sys::process::minor_faults().unwrap_or(0);
    ToHost::Stats { frames, minor_faults }
}

/// The submitted slot with the lowest frame number, claimed.
/// Runs once per frame, so it allocates nothing: a lost race for the oldest slot just means
/// looking again.
fn next_submitted(region: &Region) -> Option<u32> {
    loop {
        let oldest = (0..region.slot_count())
            .filter(|&s| region.state(s).load(Ordering::Acquire) == handoff::state::SUBMITTED)
            .min_by_key(|&s| region.frame_number(s))?;
        if handoff::take(region.state(oldest)) {
            return Some(oldest);
        }
    }
}

fn control_message_waiting(input: &BufReader<File>) -> Result<bool, protocol::ProtocolError> {
    if !input.buffer().is_empty() {
        return Ok(true);
    }
    let mut fds = [nix::poll::PollFd::new(input.get_ref().as_fd(), nix::poll::PollFlags::POLLIN)];
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).map_err(std::io::Error::from)?;
    Ok(ready > 0)
}

/// Ends a wasm call that runs past its deadline by bumping the engine's epoch. One thread per
/// runner; arming is an atomic store and disarming an uncontended lock, with no wake-up per frame.
///
/// Each call sets its epoch deadline one tick past the epoch at its start, so a bump that lands
/// after the call ended would trap the *next* call falsely. The watchdog therefore fires (checks
/// the deadline and bumps the epoch) under `firing`, and disarming takes the same lock: a bump
/// for a call is over before that call's guard returns, and so before the next call starts.
struct Watchdog {
    /// Nanoseconds since `epoch_origin` at which the armed call must end; 0 when disarmed.
    deadline_ns: Arc<AtomicU64>,
    firing: Arc<Mutex<()>>,
    origin: Instant,
}

impl Watchdog {
    fn start(engine: wasmtime::Engine, idle_period: Duration) -> Self {
        let deadline_ns = Arc::new(AtomicU64::new(0));
        let origin = Instant::now();
        let armed = Arc::clone(&deadline_ns);
        let firing = Arc::new(Mutex::new(()));
        let fire = Arc::clone(&firing);
        std::thread::Builder::new()
            .name("deadline-watchdog".into())
            .spawn(move || {
                loop {
                    let deadline = armed.load(Ordering::Acquire);
                    let now = origin.elapsed().as_nanos() as u64;
                    if deadline == 0 {
                        std::thread::sleep(idle_period);
                    } else if now >= deadline {
                        let _firing = fire.lock().unwrap_or_else(|e| e.into_inner());
                        if armed.compare_exchange(deadline, 0, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                            engine.increment_epoch();
                        }
                    } else {
                        std::thread::sleep(Duration::from_nanos(deadline - now));
                    }
                }
            })
            .ok();
        Self { deadline_ns, firing, origin }
    }

    /// Runs `call` (which sets an epoch deadline of one tick) with the watchdog armed.
    fn guard<T>(&self, limit: Duration, call: impl FnOnce() -> T) -> T {
        let deadline = (self.origin.elapsed() + limit).as_nanos() as u64;
        self.deadline_ns.store(deadline.max(1), Ordering::Release);
        let result = call();
        let _firing = self.firing.lock().unwrap_or_else(|e| e.into_inner());
        self.deadline_ns.store(0, Ordering::Release);
        result
    }
}
