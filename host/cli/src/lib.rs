//! The `plugin-host` command line, as a library: pipeline configs ([`config`]) and the graphs
//! they describe ([`graph`]), the pipeline that runs them ([`pipeline`]), media input and output
//! ([`io`]), the plugin authors' tools ([`authoring`]) and the commands themselves ([`cli`]).
//! Built on the `plugin-host` library, which does everything with plugin processes; this crate
//! never touches one directly.
//!
//! Its API serves the binary, the benchmark and the tests; applications embed `plugin-host`.
//!
//! Layers, each using only those below (`cargo xtask layers` checks):
//!
//! ```text
//! cli                  argument parsing, progress and summaries, exit codes
//! metrics              the control API, metrics and preview page a run serves
//! pipeline, authoring  running a chain or a graph; `new`, `test`, `inspect`
//! io, oneline          sources and sinks: raw video, PNG, the test pattern; the one-off
//!                      command line's chain and the plugin search path
//! config               the TOML pipeline config
//! graph                how a config's inputs, plugins and outputs connect, checked
//! http                 the small HTTP server under metrics
//! ```

pub mod authoring;
pub mod cli;
pub mod config;
pub mod graph;
pub mod http;
pub mod io;
pub mod metrics;
pub mod oneline;
pub mod pipeline;
