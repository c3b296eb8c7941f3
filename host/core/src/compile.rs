//! Untrusted modules are compiled only inside a sandboxed runner process, never in the host.
//!
//! Cranelift's cost is not linear in a module's size: a 1.2 MB module of nested blocks can ask
//! for tens of gigabytes. So the host starts a runner with the plugin's sandbox and a memory cap
//! of its own (`RLIMIT_DATA` = the compile memory limit), sends it the wasm bytes, and waits for
//! the compiled artifact until the plugin's start-up deadline, looking at SIGINT/SIGTERM every
//! few milliseconds. Over a limit the compiler process dies or is killed; the host only ever
//! holds the module and an artifact of bounded size.

use crate::ipc::protocol::{self, Failure, Hello, MAX_TO_HOST_BYTES, ProtocolError, ToHost, ToRunner};
use crate::ipc::region::{self, Region};
use crate::sys::process::spawn_runner;
use crate::sys::sandbox::{Level, Policy};
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why a module could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot start its compiler process: {0}")]
    Spawn(std::io::Error),
    #[error("cannot create its compiler's region: {0}")]
    Region(#[from] region::RegionError),
    #[error("not a valid WebAssembly module: {0}")]
    Invalid(crate::text::PluginText),
    #[error(
        "compiling it needed more than its compile memory limit of {} MiB (compile_memory_mb); its compiler process {status}",
        limit >> 20
    )]
    MemoryLimit { limit: u64, status: String },
    #[error("its compiler process {0} before it answered")]
    Crashed(String),
    #[error("compiling it took longer than its start-up limit of {0:?} (startup_ms); the compiler process was killed")]
    Deadline(Duration),
    #[error("interrupted while it was being compiled")]
    Interrupted,
    #[error("its compiler process's sandbox: {0}")]
    Sandbox(crate::text::PluginText),
    #[error("its compiler process broke the protocol: {0}")]
    Protocol(String),
}

/// What to compile, and under which limits.
#[derive(Debug, Clone)]
pub struct CompileJob {
    pub runner: PathBuf,
    pub sandbox: Level,
    /// The compiler process's private memory cap (`RLIMIT_DATA`), which also caps the artifact.
    pub memory_limit: u64,
    pub deadline: Instant,
    /// The start-up limit `deadline` comes from, for the message.
    pub startup: Duration,
}

/// How often a wait looks at SIGINT/SIGTERM.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Compiles `module` in a sandboxed compiler process and returns the artifact.
pub fn compile_in_sandbox(job: &CompileJob, module: Vec<u8>) -> Result<Vec<u8>, CompileError> {
    let region = Region::create("plugin-host:compile", region::MIN_SLOTS, region::PAGE_SIZE)?;
    let policy = Policy { level: job.sandbox, data_limit: Some(job.memory_limit), ..Policy::default() };
    let runner = spawn_runner(job.runner.clone(), protocol::runner_args(&policy), region.file(), false)
        .map_err(CompileError::Spawn)?;
    let (mut child, from_runner_read, to_runner_write) = (runner.child, runner.from_runner, runner.to_runner);

    // The exchange blocks on pipes, so it runs on a thread of its own; killing the child ends it.
    let (done_tx, done) = mpsc::channel();
    let max_artifact = usize::try_from(job.memory_limit).unwrap_or(usize::MAX);
    let level = job.sandbox;
    let exchange = std::thread::spawn(move || {
        let mut input = BufReader::new(from_runner_read);
        let mut output = to_runner_write;
        let _ = done_tx.send(converse(&mut input, &mut output, level, module, max_artifact));
    });
    let outcome = loop {
        let left = job.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(CompileError::Deadline(job.startup));
        }
        match done.recv_timeout(left.min(STOP_POLL)) {
            Ok(outcome) => break outcome,
            Err(mpsc::RecvTimeoutError::Timeout) if crate::sys::signals::stop_requested() => {
                break Err(CompileError::Interrupted);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(CompileError::Protocol("its exchange ended without an answer".into()));
            }
        }
    };
    let _ = child.kill();
    let status = child.wait();
    let _ = exchange.join();
    match outcome {
        // The channel ended without an answer: the process died. An allocation that fails under
        // its memory cap aborts it (SIGABRT); anything else is said as it is.
        Err(CompileError::Protocol(_)) if let Some(status) = status.ok().filter(|s| !s.success()) => {
            use std::os::unix::process::ExitStatusExt;
            let description = describe_status(status);
            Err(match status.signal() {
                Some(libc::SIGABRT) => CompileError::MemoryLimit { limit: job.memory_limit, status: description },
                _ => CompileError::Crashed(description),
            })
        }
        other => other,
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => format!(
            "was ended by {}",
            nix::sys::signal::Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.to_string())
        ),
        None => format!("exited with status {}", status.code().unwrap_or(-1)),
    }
}

/// Handshake, sandbox report, `Compile`, `Compiled`.
fn converse(
    input: &mut BufReader<File>,
    output: &mut File,
    level: Level,
    module: Vec<u8>,
    max_artifact: usize,
) -> Result<Vec<u8>, CompileError> {
    let broken = |e: ProtocolError| CompileError::Protocol(e.to_string());
    protocol::handshake(Hello::OURS, input, output).map_err(broken)?;
    match protocol::read_message::<ToHost>(input, MAX_TO_HOST_BYTES).map_err(broken)? {
        ToHost::Sandboxed { report } => {
            if level == Level::Strict
                && let Some(refusal) = (crate::sys::sandbox::Report { level, ..report }).strict_refusal()
            {
                return Err(CompileError::Sandbox(refusal.into()));
            }
        }
        ToHost::Failed { failure: Failure::Sandbox(why), .. } => return Err(CompileError::Sandbox(why)),
        _ => return Err(CompileError::Protocol("it did not report its sandbox first".into())),
    }
    protocol::write_message(output, &ToRunner::Compile { module }).map_err(broken)?;
    match protocol::read_message::<ToHost>(input, max_artifact).map_err(broken)? {
        ToHost::Compiled { artifact } => Ok(artifact),
        ToHost::Failed { failure: Failure::Load(why), .. } => Err(CompileError::Invalid(why)),
        _ => Err(CompileError::Protocol("it answered Compile with something else".into())),
    }
}
