//! `plugin-host-bench`: shared memory against message passing, on the user's own machine, with
//! the raw baselines it is made of, all measured in the same run.
//!
//! - Raw baselines (same process, two threads): a 1-byte pipe round trip, a futex round trip
//!   (plain wait/wake, and the hand-off algorithm of [`plugin_host::ipc::handoff`] with its spin), and a
//!   memcpy of each frame size.
//! - Per transport (`shm`: [`Transport::SharedMemory`], `pipe`: [`Transport::Pipe`]) and per frame
//!   size: the round trip through the `identity` plugin (no work) and the throughput through
//!   `invert`, next to a native in-process invert of the same frame.
//! - For shm, the round trip taken apart. The plugin side copies nothing (the slots are mapped
//!   into its wasm memory), but the public API does, on the host side: `submit(&Frame)` copies the
//!   frame into the slot, `receive(&mut OwnedFrame)` copies the result out. Those two copies are
//!   timed on their own, interleaved with the round trips, with the very functions `submit` and
//!   `receive` use ([`Region::write_pixels`], [`Region::read_pixels`]) on a region of the same kind
//!   and size. The zero-copy path is measured through the lane API ([`LaneRunner`]), as a
//!   pipeline stage uses it: the frame written into its lane once, then handed over and back
//!   with nothing copied by anyone.
//! - Start-up (spawn → ready): cold (empty cache), from the disk cache, from the in-memory cache,
//!   and a restart after SIGKILL (kill → dead process reaped → new process ready), with and
//!   without a standby process.
//! - A pipeline of 1 and of 4 invert stages, frames per second.
//! - A graph of two branches from one input against the two chains as separate processes.
//!
//! Every figure is a median (p50) or p99 of sorted samples; warm-up iterations are discarded.

mod baselines;
mod branches;
mod chain;
mod measure;
mod report;
mod run;
mod sizes;
mod startup;
mod table;

use anyhow::{Context, bail, ensure};
use plugin_host::ipc::handoff::{self, Futex, Outcome};
use plugin_host::ipc::protocol::Transport;
use plugin_host::ipc::region::{self, Buffer, Lane, Region};
use plugin_host::sys::futex;
use plugin_host::{Limits, PluginProcess, PluginSpec, Ticket, cache};
use plugin_sdk::{OwnedFrame, PixelFormat};
use serde::Serialize;
use std::collections::VecDeque;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use baselines::*;
use branches::*;
use chain::*;
use measure::*;
use report::*;
use run::*;
use sizes::*;
use startup::*;
use table::*;

/// Measure shared memory against message passing on this machine: raw baselines, frame round
/// trips per size, plugin work against native, start-up, a chain.
#[derive(clap::Parser)]
#[command(name = "plugin-host-bench", version)]
struct Args {
    /// Folder with the example plugins (invert.wasm).
    #[arg(long, default_value = "target/plugins")]
    pub(crate) plugins: PathBuf,
    /// The identity test plugin.
    #[arg(long, default_value = "target/test-plugins/identity.wasm")]
    pub(crate) identity: PathBuf,
    /// Samples per measurement.
    #[arg(long, default_value_t = BenchOptions::DEFAULT_ITERATIONS)]
    pub(crate) iterations: usize,
    /// Fewer samples and only the small sizes.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Also write every figure as JSON.
    #[arg(long, value_name = "PATH")]
    pub(crate) json: Option<PathBuf>,
    /// Runs one config and exits (the two-branch measurement starts the chains this way).
    #[arg(long, value_name = "PATH", hide = true)]
    pub(crate) run_config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    // The plugin processes are this binary in runner mode.
    plugin_host::runner::run_if_requested();
    let args = <Args as clap::Parser>::parse();
    if let Some(path) = &args.run_config {
        return run_config(path);
    }
    let mut options = BenchOptions::new(args.plugins, args.identity);
    options.iterations = args.iterations;
    options.quick = args.quick;
    let report = run(&options)?;
    print_table(&report, &mut std::io::stdout())?;
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
