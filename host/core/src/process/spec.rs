//! What to start: a plugin's module, parameters and limits, and where its runner is.

use super::{ErrorKind, PluginError};
use crate::ipc::protocol::Transport;
use crate::ipc::region;
use crate::sys::sandbox::Level as SandboxLevel;
use plugin_sdk::abi::ParamValue;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
/// Default [`Limits::deadline`]: 1 s a frame.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(1000);
/// Default [`Limits::startup`]: 20 s from spawn to ready, compiling included.
pub const DEFAULT_STARTUP: Duration = Duration::from_secs(20);
/// Default [`Limits::memory_bytes`]: 256 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            startup: DEFAULT_STARTUP,
            memory_bytes: DEFAULT_MEMORY_BYTES,
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
    /// The shape of the frames it will get (in the nearest format it takes, see
    /// [`plugin_sdk::convert::nearest`]); when set, the ready plugin declares its output's
    /// ([`super::PluginProcess::output_shape`]).
    pub input: Option<plugin_sdk::Shape>,
    /// A graph node's other inputs' shapes, in order (in formats it takes: the graph checks).
    pub more_inputs: Vec<plugin_sdk::Shape>,
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
            input: None,
            more_inputs: Vec::new(),
        }
    }

    /// The executable to start in runner mode (see [`PluginSpec::runner`]).
    pub(super) fn runner_path(&self) -> io::Result<PathBuf> {
        self.runner.clone().map_or_else(default_runner, Ok)
    }

    pub fn param(mut self, name: &str, value: ParamValue) -> Self {
        self.params.push((name.to_string(), value));
        self
    }
}

/// Reads a module file: it must be a regular file of at most `max` bytes (checked with `fstat`
/// before anything is read, so a FIFO, a device or a huge sparse file costs nothing) that starts
/// with the wasm magic. Opened non-blocking: opening a FIFO never waits for a writer.
pub(super) fn read_module(name: &str, path: &Path, max: u64) -> Result<Vec<u8>, PluginError> {
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
pub fn default_runner() -> io::Result<PathBuf> {
    match std::env::var_os("PLUGIN_HOST_RUNNER") {
        Some(path) => Ok(PathBuf::from(path)),
        None => std::env::current_exe(),
    }
}
