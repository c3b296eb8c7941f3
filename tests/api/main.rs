//! The library through real plugin processes: the data path and every example plugin, runners
//! that lie, the OS sandbox against a compromised runner, and the control channel's reader under
//! fuzzing. One test binary, so that the suite links wasmtime few times.

#[path = "../support.rs"]
#[allow(dead_code, reason = "shared by the test binaries; each uses a part")]
mod support;

mod control_fuzz;
mod data_path;
mod hostile;
mod sandbox;
