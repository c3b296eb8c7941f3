//! plugin-host: runs untrusted WebAssembly media plugins, each in its own sandboxed process, with
//! control messages over pipes and frames through sealed shared memory. This crate is the library
//! an application embeds; the `plugin-host` command line (configs, media files, authoring tools)
//! is the `plugin-host-cli` crate, built on this one.
//!
//! # The API, by who needs it
//!
//! - **Running plugins** ([`PluginProcess`], [`PluginSpec`], [`Limits`], [`PluginError`]): spawn
//!   a plugin process from a `.wasm` file, hand it frames, restart it, shut it down. Everything
//!   most applications need.
//! - **Chains** ([`ipc::region::Region`], [`ipc::region::Lane`]): stages that pass frames in place
//!   through one shared region ([`PluginProcess::spawn_stage`]).
//! - **Runner mode** ([`runner::run_if_requested`]): an application that is its own runner
//!   executable calls it first thing in `main`.
//! - **Below**, public for custom runners, tools and tests: [`ipc`] (the protocol, the region
//!   layout and the hand-off, what host and runner agree on), [`sys`] (OS glue and the sandbox),
//!   [`cache`] (compiled modules), [`probe`] (what sandbox this machine gives), [`schema`]
//!   (plugin descriptions), [`text`] (plugin text made safe to print).
//!
//! # Layers
//!
//! Each module uses only those below it (`cargo xtask layers` checks this on every test run):
//!
//! ```text
//! process            the host side of one plugin process (PluginProcess)
//!   ├─ cache → compile   compiled modules; compiling in a sandboxed runner
//!   └─ probe             a runner started only to report its sandbox
//! runner             the plugin process itself (wasmtime)
//! ipc, artifact      protocol, region layout, hand-off; compiled-module settings: what both
//!                    sides agree on (only `artifact` and `runner` use wasmtime)
//! sys                memfd, futex, spawning, signals, the OS sandbox
//! text, schema       plain data: printable plugin text, plugin descriptions
//! ```

#![deny(unsafe_code)]

pub mod artifact;
pub mod cache;
pub mod compile;
pub mod ipc;
pub mod probe;
pub mod process;
#[allow(unsafe_code, reason = "wasmtime memory glue")]
pub mod runner;
pub mod schema;
#[allow(unsafe_code, reason = "OS glue: futex, memfd, fork/exec")]
pub mod sys;
pub mod text;

pub use process::{
    ErrorKind, Limits, Misuse, NoAnswer, PluginError, PluginProcess, PluginSpec, RunnerStats, SandboxShortfall,
    StartFailure, Ticket, Violation,
};
