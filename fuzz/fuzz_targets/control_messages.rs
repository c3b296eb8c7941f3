//! Any bytes as a message from a plugin process: decoded or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugin_host::ipc::protocol::{ToHost, decode};

fuzz_target!(|bytes: &[u8]| {
    let _ = decode::<ToHost>(bytes);
});
