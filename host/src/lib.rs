//! plugin-host: runs untrusted WebAssembly media plugins, each in its own process, with control
//! messages over pipes and frames through sealed shared memory.
//!
//! - [`plugin`]: the embedding API ([`PluginProcess`]).
//! - [`ipc`]: what host and runner agree on (protocol, region layout, hand-off).
//! - [`runner`]: the plugin process's side.
//! - [`schema`]: plugin descriptions and parameter checking.
//! - [`authoring`]: `plugin-host new` and `plugin-host test`, for plugin authors.
//! - `sys`: OS glue (memfd, futex, spawning).

#![deny(unsafe_code)]

pub mod authoring;
pub mod bench;
pub mod cache;
pub mod compile;
pub mod config;
pub mod io;
pub mod ipc;
pub mod pipeline;
pub mod plugin;
#[allow(unsafe_code, reason = "wasmtime memory glue")]
pub mod runner;
pub mod schema;
#[allow(unsafe_code, reason = "OS glue: futex, memfd, fork/exec")]
pub mod sys;
pub mod text;

pub use plugin::{ErrorKind, Limits, PluginError, PluginProcess, PluginSpec, RunnerStats, Ticket};
