//! What can go wrong with one plugin process, typed, and how a start-up failure is classed.

use crate::compile::CompileError;
use crate::ipc::protocol::{Failure, ProtocolError};
use crate::ipc::region::RegionError;
use crate::schema::ParamError;
use crate::sys::sandbox::Report as SandboxReport;
use crate::text::PluginText;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

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
    Compile { path: PathBuf, source: CompileError },
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
    Protocol(#[from] Violation),
    #[error("{0}")]
    Misuse(#[from] Misuse),
    #[error("a {width}x{height} {format} frame needs {bytes} bytes; its slots hold {capacity}")]
    TooLarge { width: u32, height: u32, format: &'static str, bytes: u64, capacity: u64 },
    #[error("it does not accept {given} frames (it takes {accepted})")]
    Format { given: &'static str, accepted: String },
    #[error("its process is no longer running")]
    NotRunning,
    #[error("the frame is not valid: {0}")]
    BadFrame(String),
    #[error("{0}")]
    NoAnswer(#[from] NoAnswer),
    /// The process's sandbox falls short of what the spec demands.
    #[error("{0}")]
    Sandbox(#[from] SandboxShortfall),
}

/// What a plugin process did against the protocol. The process is killed for each (at once, or
/// when the handle drops it).
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    #[error("{0}")]
    Handshake(ProtocolError),
    #[error("the runner did not start with a handshake")]
    NoHandshake,
    #[error("a second handshake")]
    SecondHandshake,
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: &'static str },
    #[error("frame {frame}: unexpected {got}")]
    UnexpectedForFrame { frame: u64, got: &'static str },
    #[error("the output descriptor is invalid: {0}")]
    OutputDescriptor(&'static str),
    #[error("frame {frame}: the returned frame does not match its descriptor")]
    FrameMismatch { frame: u64 },
    #[error("frame {frame}: {state}")]
    SlotState { frame: u64, state: crate::ipc::handoff::WaitError },
    #[error("it did not exit when asked; killed")]
    DidNotExit,
    #[error("cannot encode a message for it: {0}")]
    Encode(ProtocolError),
    #[error("it declared an impossible output shape: {0}")]
    OutputShape(&'static str),
    #[error("it declared {now} output frames after a restart, not {before} as at its start")]
    OutputShapeChanged { before: plugin_sdk::Shape, now: plugin_sdk::Shape },
}

/// A call the handle cannot serve as made: the caller's mistake, not the plugin's.
#[derive(Debug, thiserror::Error)]
pub enum Misuse {
    #[error("a stage of a chain takes frames by lane (submit_lane)")]
    SubmitToStage,
    #[error("all {0} slots are in flight; receive first")]
    AllSlotsInFlight(usize),
    #[error("slot {0} is already in flight")]
    SlotInFlight(u32),
    #[error("a lane's ticket is collected with receive_lane")]
    LaneTicket,
    #[error("the ticket is from a process that has been replaced, or from another plugin")]
    ForeignTicket,
    #[error("a band of a frame goes over shared memory only")]
    BandOnPipe,
    #[error("the plugin works on whole frames only")]
    WholeFramesOnly,
    #[error("rows {0:?} are no band of the frame")]
    BadBand(std::ops::Range<u32>),
    #[error("frames with named inputs go to a graph node over shared memory only")]
    NotANode,
    #[error("a node's frame has between 1 and {most} inputs, not {0}", most = crate::ipc::region::MAX_INPUTS)]
    InputCount(usize),
    #[error("slot {0} is not one of the region's")]
    NoSuchSlot(u32),
}

/// A plugin process that stopped answering; it has been killed.
#[derive(Debug, thiserror::Error)]
pub enum NoAnswer {
    #[error("it did not answer within {0:?}; killed")]
    Within(Duration),
    #[error("it stopped reading its control channel; killed")]
    StoppedReading,
}

/// Why a process's sandbox is not good enough; the process has been killed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxShortfall {
    /// The runner could not apply its sandbox, and said so.
    #[error("{0}")]
    NotApplied(Failure),
    /// `sandbox = "strict"`, and the process lacks layers (the report says which).
    #[error("{}", .0.strict_refusal().unwrap_or_default())]
    BelowStrict(SandboxReport),
}

/// How a failure to start a plugin is to be told to the user: the one place that decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFailure {
    /// SIGINT or SIGTERM while it started.
    Interrupted,
    /// The plugin's own `init` refused its parameters or failed.
    Init,
    /// Bad input: the module file, its contents, its parameters, its sandbox or its process
    /// misbehaving before it served any frame.
    BadPlugin,
    /// The host could not do its part (spawning, memory): not the plugin's fault.
    Host,
}

impl ErrorKind {
    /// The class of a failure from [`crate::PluginProcess::spawn`] or
    /// [`crate::PluginProcess::spawn_stage`].
    pub fn start_failure(&self) -> StartFailure {
        match self {
            ErrorKind::Interrupted => StartFailure::Interrupted,
            ErrorKind::Init(_) => StartFailure::Init,
            ErrorKind::ReadModule { .. }
            | ErrorKind::NotAFile { .. }
            | ErrorKind::ModuleTooLarge { .. }
            | ErrorKind::Compile { .. }
            | ErrorKind::NotWasm { .. }
            | ErrorKind::NotAPlugin { .. }
            | ErrorKind::Param(_)
            | ErrorKind::StartupTimeout(_)
            | ErrorKind::Died { frame: None, .. }
            | ErrorKind::Protocol(_)
            | ErrorKind::NoAnswer(_)
            | ErrorKind::Sandbox(_)
            | ErrorKind::Died { frame: Some(_), .. }
            | ErrorKind::Frame { .. }
            | ErrorKind::Deadline { .. }
            | ErrorKind::TooLarge { .. }
            | ErrorKind::Format { .. }
            | ErrorKind::BadFrame(_) => StartFailure::BadPlugin,
            ErrorKind::Spawn(_) | ErrorKind::Region(_) | ErrorKind::NotRunning | ErrorKind::Misuse(_) => {
                StartFailure::Host
            }
        }
    }
}
