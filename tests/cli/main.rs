//! `plugin-host` end to end, through the binary cargo built for these tests: `run` with real
//! media, chains, the example plugins against their native code, the authors' tools, and
//! supervision under every `on_error` policy. One test binary, so that the suite links wasmtime
//! few times.

#[path = "../support.rs"]
#[allow(dead_code, reason = "shared by the test binaries; each uses a part")]
mod support;

mod authors;
mod chain;
mod examples;
mod graph;
mod live;
mod media;
mod preview;
mod run;
mod supervision;
