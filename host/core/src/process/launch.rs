//! Starting a plugin process up to the point where it waits for its parameters: spawn, handshake,
//! the sandbox report (checked against the spec), the compiled module sent and its description
//! read. A restart and a standby process go through the same steps; only `init` comes later.

use super::channel::{Channel, Event, Launch, message_kind};
use super::error::{ErrorKind, PluginError, SandboxShortfall, Violation};
use super::spec::PluginSpec;
use crate::cache::Artifact;
use crate::ipc::protocol::{self, Failure, Hello, MAX_TO_HOST_BYTES, RunnerLimits, ToHost, ToRunner, Transport};
use crate::ipc::region::{self, Region, RegionError};
use crate::schema::PluginDescription;
use crate::sys::sandbox::{Level as SandboxLevel, Policy as SandboxPolicy, Report as SandboxReport};
use crate::text::PluginText;
use std::time::Instant;

/// A plugin process that has loaded its module and waits for its parameters.
pub(super) struct Loaded {
    pub channel: Channel,
    pub description: PluginDescription,
    /// The sandbox layers the process reported before it was sent the module.
    pub sandbox: SandboxReport,
    /// Rows of context a band of the plugin's output reads, once it is ready; `None`: it needs
    /// whole frames (or is not ready yet).
    pub band_context: Option<u32>,
    /// The output shape it declared for the spec's input, once it is ready.
    pub output_shape: Option<plugin_sdk::Shape>,
}

/// Largest frame in bytes a spec's plugin handles: its slot capacity, or for the pipe transport
/// the same rounding.
pub(super) fn frame_capacity(spec: &PluginSpec) -> Result<u64, RegionError> {
    let capacity = spec.max_frame_bytes.max(1).next_multiple_of(region::PAGE_SIZE);
    if capacity > region::MAX_SLOT_CAPACITY {
        return Err(RegionError::Capacity(spec.max_frame_bytes));
    }
    Ok(capacity)
}

impl Loaded {
    /// Starts a process on `region` and loads the compiled module into it.
    pub(super) fn launch(
        spec: &PluginSpec,
        region: &Region,
        artifact: &Artifact,
        deadline: Instant,
    ) -> Result<Self, PluginError> {
        let err = |kind| PluginError { plugin: spec.name.clone(), kind };
        let frame_capacity = frame_capacity(spec).map_err(|e| err(e.into()))?;
        if region.slot_capacity() < frame_capacity {
            return Err(err(RegionError::Capacity(spec.max_frame_bytes).into()));
        }
        region.restore_header();
        let policy = SandboxPolicy::for_plugin(
            spec.sandbox,
            spec.limits.memory_bytes,
            artifact.len() as u64,
            frame_capacity,
            spec.transport == Transport::Pipe,
        );
        // A frame's bytes never travel inside a message: a frame-sized message is a flood.
        let max_message = MAX_TO_HOST_BYTES;
        let program = spec.runner_path().map_err(|e| err(ErrorKind::Spawn(e)))?;
        let channel = Channel::open(Launch {
            name: &spec.name,
            program,
            args: protocol::runner_args(&policy),
            region,
            max_message,
        })
        .map_err(|e| err(ErrorKind::Spawn(e)))?;
        let load = ToRunner::Load {
            plugin: spec.name.clone(),
            module: artifact.to_vec(),
            precompiled: true,
            limits: RunnerLimits {
                memory_bytes: spec.limits.memory_bytes,
                deadline_ms: spec.limits.deadline.as_millis() as u64,
                startup_ms: spec.limits.startup.as_millis() as u64,
                snapshot_input: spec.snapshot_input,
            },
            transport: spec.transport,
            frame_capacity,
            stage: region.stage(),
            boundary: region.boundary(),
            node: region.node().cloned(),
        };
        load_module(channel, spec, &load, deadline).map_err(|kind| err(kind.out_of_time(spec)))
    }
}

/// Handshake, sandbox check, module, description.
fn load_module(
    mut channel: Channel,
    spec: &PluginSpec,
    load: &ToRunner,
    deadline: Instant,
) -> Result<Loaded, ErrorKind> {
    channel.send(&Hello::OURS.to_bytes(), deadline)?;
    match channel.next_event(deadline)? {
        Event::Hello(bytes) => {
            Hello::OURS.negotiate(Hello::from_bytes(bytes)).map_err(Violation::Handshake)?;
        }
        _ => return Err(Violation::NoHandshake.into()),
    }
    let sandbox = match channel.next_message(deadline)? {
        // The level is the host's own; the layers are the plugin process's word, checked below.
        ToHost::Sandboxed { report } => SandboxReport { level: spec.sandbox, ..report },
        ToHost::Failed { failure: failure @ Failure::Sandbox(_), .. } => {
            return Err(SandboxShortfall::NotApplied(failure).into());
        }
        other => return Err(Violation::Unexpected { expected: "its sandbox report", got: message_kind(&other) }.into()),
    };
    if spec.sandbox == SandboxLevel::Strict && sandbox.strict_refusal().is_some() {
        return Err(SandboxShortfall::BelowStrict(sandbox).into());
    }
    channel.send_message(load, deadline)?;
    let not_a_plugin = |reason: PluginText| ErrorKind::NotAPlugin { path: spec.module.clone(), reason };
    let description = match channel.next_message(deadline)? {
        ToHost::Loaded { description } => description,
        ToHost::Failed { failure: Failure::Load(reason), .. } => return Err(not_a_plugin(reason)),
        ToHost::Failed { failure, .. } => return Err(not_a_plugin(failure.to_string().into())),
        other => return Err(Violation::Unexpected { expected: "Loaded", got: message_kind(&other) }.into()),
    };
    let description = PluginDescription::parse(&description).map_err(|e| not_a_plugin(e.into()))?;
    Ok(Loaded { channel, description, sandbox, band_context: None, output_shape: None })
}

impl ErrorKind {
    /// A start-up that ran out of time says so.
    pub(super) fn out_of_time(self, spec: &PluginSpec) -> Self {
        match self {
            ErrorKind::NoAnswer(_) => ErrorKind::StartupTimeout(spec.limits.startup),
            other => other,
        }
    }
}
