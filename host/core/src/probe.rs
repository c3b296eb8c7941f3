//! What a plugin process gets on this machine, found the only reliable way: start a runner,
//! let it apply the sandbox, and read its report. No module is sent; the runner exits when its
//! control channel closes.

use crate::ipc::protocol::{self, Hello, MAX_TO_HOST_BYTES, ProtocolError, ToHost};
use crate::ipc::region::{self, Region};
use crate::sys::process::spawn_runner;
use crate::sys::sandbox::{Policy, Report};
use std::io::BufReader;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot start a runner: {0}")]
    Spawn(std::io::Error),
    #[error("cannot create a shared region: {0}")]
    Region(#[from] region::RegionError),
    #[error("the runner did not report its sandbox: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("the runner sent {0} instead of its sandbox report")]
    Unexpected(String),
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
}

/// Starts `runner` with `policy` and returns the sandbox report it sends.
pub fn probe(runner: &Path, policy: &Policy) -> Result<Report, ProbeError> {
    let region = Region::create("plugin-host:sandbox-probe", region::MIN_SLOTS, region::PAGE_SIZE)?;
    let started = spawn_runner(runner.to_path_buf(), protocol::runner_args(policy), region.file(), false)
        .map_err(ProbeError::Spawn)?;
    let mut child = started.child;
    let mut input = BufReader::new(started.from_runner);
    let mut output = started.to_runner;
    let result = protocol::handshake(Hello::OURS, &mut input, &mut output).map_err(ProbeError::from).and_then(|_| {
        match protocol::read_message::<ToHost>(&mut input, MAX_TO_HOST_BYTES)? {
            ToHost::Sandboxed { report } => Ok(report),
            other => Err(ProbeError::Unexpected(format!("{other:?}").chars().take(80).collect())),
        }
    });
    drop(output);
    let _ = child.kill();
    let _ = child.wait();
    result
}
