//! The OS sandbox around a plugin process: defence in depth for the day a plugin escapes the
//! wasm sandbox. The runner calls [`apply`] first thing, before it reads any untrusted byte (the
//! module arrives later, over its control pipe), and sends the [`Report`] of what it got to the
//! host, which refuses a plugin whose `sandbox = "strict"` is not met.
//!
//! The layers, in the order they go up:
//! 1. descriptors (only 3, 4, 5 stay open) and an empty environment;
//! 2. `PR_SET_NO_NEW_PRIVS`, the parent-death signal, every capability dropped;
//! 3. rlimits (`RLIMIT_NOFILE`, `RLIMIT_CORE`, `RLIMIT_DATA`);
//! 4. user, network, IPC and mount namespaces, where the kernel and the container allow them;
//! 5. Landlock: no filesystem, no TCP, no abstract Unix sockets or signals beyond the process;
//! 6. a seccomp-bpf allowlist ([`seccomp::RULES`]); anything else kills the process.

mod landlock;
mod privileges;
pub mod seccomp;

use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};

/// How much sandbox a plugin process demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Level {
    /// Every layer the machine allows; a layer the kernel or a container forbids is reported,
    /// not fatal.
    #[default]
    Standard,
    /// Every layer, or the plugin does not run.
    Strict,
    /// No sandbox at all. For measuring its cost and for debugging only: no config can ask for
    /// it, only code that sets [`crate::PluginSpec::sandbox`].
    Off,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Standard => "standard",
            Level::Strict => "strict",
            Level::Off => "off",
        }
    }

    fn from_name(name: &str) -> Option<Level> {
        [Level::Standard, Level::Strict, Level::Off].into_iter().find(|l| l.name() == name)
    }
}

/// What the runner applies; the host passes it on the runner's command line (the runner has no
/// other trusted input before the sandbox is up).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub level: Level,
    /// `RLIMIT_DATA` in bytes (private writable memory: heap and wasm linear memory).
    pub data_limit: Option<u64>,
    /// Leaves seccomp out, so that tests can show what the other layers stop on their own.
    /// Never set by the host.
    pub skip_seccomp: bool,
    /// Leaves the namespaces out (tests of the strict refusal). Never set by the host.
    pub skip_namespaces: bool,
}

const LEVEL_ARG: &str = "--sandbox=";
const DATA_LIMIT_ARG: &str = "--data-limit=";
const SKIP_ARG: &str = "--sandbox-skip=";

/// Private writable memory a runner needs besides the plugin's linear memory: the runtime,
/// wasmtime's own structures, thread stacks.
const DATA_BASE: u64 = 128 << 20;

impl Policy {
    /// The policy for one plugin process. `RLIMIT_DATA` covers two linear memories (a trapped
    /// instance is replaced while the old one still exists), the module twice (the message and
    /// its loaded copy) and, for the pipe transport, three frames (the two frame buffers the
    /// instance keeps in its own memory, and one of slack).
    pub fn for_plugin(level: Level, memory_bytes: u64, module_bytes: u64, frame_bytes: u64, pipe: bool) -> Policy {
        let frames = if pipe { 3 * frame_bytes } else { 0 };
        let limit = DATA_BASE
            .saturating_add(memory_bytes.saturating_mul(2))
            .saturating_add(module_bytes.saturating_mul(2))
            .saturating_add(frames);
        Policy { level, data_limit: Some(limit), ..Policy::default() }
    }

    /// The runner arguments that carry this policy.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args = vec![format!("{LEVEL_ARG}{}", self.level.name()).into()];
        if let Some(limit) = self.data_limit {
            args.push(format!("{DATA_LIMIT_ARG}{limit}").into());
        }
        for (skip, name) in [(self.skip_seccomp, "seccomp"), (self.skip_namespaces, "namespaces")] {
            if skip {
                args.push(format!("{SKIP_ARG}{name}").into());
            }
        }
        args
    }

    /// Reads the policy from the runner's arguments (after the runner argument). Missing or
    /// unreadable values give the standard level: a runner never sandboxes itself less because
    /// of a typo.
    pub fn from_args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Policy {
        let mut policy = Policy::default();
        for arg in args {
            let Some(arg) = arg.as_ref().to_str() else { continue };
            if let Some(level) = arg.strip_prefix(LEVEL_ARG).and_then(Level::from_name) {
                policy.level = level;
            } else if let Some(limit) = arg.strip_prefix(DATA_LIMIT_ARG).and_then(|v| v.parse().ok()) {
                policy.data_limit = Some(limit);
            } else if arg == format!("{SKIP_ARG}seccomp") {
                policy.skip_seccomp = true;
            } else if arg == format!("{SKIP_ARG}namespaces") {
                policy.skip_namespaces = true;
            }
        }
        policy
    }
}

/// Whether a layer is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    On,
    /// Up, but weaker than the full layer (an old Landlock ABI).
    Partial,
    /// The kernel or the environment does not allow it.
    Unavailable,
    /// Left out on purpose (level `off`, or a test).
    Off,
    /// Not part of this sandbox; the detail says why.
    NotUsed,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::On => "on",
            State::Partial => "partial",
            State::Unavailable => "unavailable",
            State::Off => "off",
            State::NotUsed => "not used",
        }
    }
}

/// One layer of the sandbox as the plugin process got it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    pub state: State,
    pub detail: String,
}

/// What a plugin process got, sent to the host before the module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub level: Level,
    pub layers: Vec<Layer>,
}

impl Report {
    /// Layers that are neither on nor deliberately not part of the sandbox.
    pub fn missing(&self) -> Vec<&Layer> {
        self.layers.iter().filter(|l| !matches!(l.state, State::On | State::NotUsed)).collect()
    }

    /// Layers the report does not mention at all. The report comes from the plugin process, so
    /// a layer it leaves out counts as missing, not as on.
    pub fn unreported(&self) -> Vec<&'static str> {
        names::ALL.iter().copied().filter(|name| self.layer(name).is_none()).collect()
    }

    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// The refusal of a `strict` plugin whose sandbox is not complete, in one sentence.
    pub fn strict_refusal(&self) -> Option<String> {
        let missing = self.missing();
        let unreported = self.unreported();
        if missing.is_empty() && unreported.is_empty() {
            return None;
        }
        let mut list: Vec<String> = missing.iter().map(|l| l.short()).collect();
        list.extend(unreported.iter().map(|name| format!("{name} (not reported)")));
        Some(format!(
            "sandbox = \"strict\" needs every sandbox layer, but its process lacks {}; use sandbox = \"standard\" \
             to run with what this machine allows",
            list.join(", ")
        ))
    }

    /// One line: the level and what is missing, if anything.
    pub fn summary(&self) -> String {
        let on = self.layers.iter().filter(|l| l.state == State::On).count();
        let missing = self.missing();
        let mut line = format!("{}: {on} layers on", self.level.name());
        if missing.is_empty() {
            line.push_str(" (all)");
        } else {
            let list: Vec<String> = missing.iter().map(|l| l.short()).collect();
            line.push_str(&format!("; missing: {}", list.join(", ")));
        }
        line
    }

    /// One row per layer, for `plugin-host sandbox`. Escaped: it comes from another process.
    pub fn table(&self) -> String {
        let width = self.layers.iter().map(|l| l.name.len()).max().unwrap_or(0) + 1;
        let mut out = String::new();
        for layer in &self.layers {
            let name = format!("{}:", clean(&layer.name));
            out.push_str(&format!("  {name:<width$} {}", layer.state.word(), width = width + 1));
            if !layer.detail.is_empty() {
                out.push_str(&format!(" ({})", clean(&layer.detail)));
            }
            out.push('\n');
        }
        out
    }

    /// One line for a run's summary over every plugin's report.
    pub fn run_summary<'a>(reports: impl IntoIterator<Item = (&'a str, &'a Report)>) -> String {
        let reports: Vec<(&str, &Report)> = reports.into_iter().collect();
        if reports.is_empty() {
            return "sandbox: no plugins".into();
        }
        let mut levels: Vec<&str> = reports.iter().map(|(_, r)| r.level.name()).collect();
        levels.sort_unstable();
        levels.dedup();
        let base = format!("sandbox: {} for {} plugin(s)", levels.join("/"), reports.len());
        if reports.iter().all(|(_, r)| r.level == Level::Off) {
            return format!("{base}: no OS sandbox (measurement and debugging only)");
        }
        // Each missing layer once, with the plugins that lack it.
        let mut gaps: Vec<(String, Vec<&str>)> = Vec::new();
        for (name, report) in &reports {
            for layer in report.missing() {
                let what = layer.short();
                match gaps.iter_mut().find(|(w, _)| *w == what) {
                    Some((_, names)) => names.push(name),
                    None => gaps.push((what, vec![name])),
                }
            }
        }
        if gaps.is_empty() {
            let on = reports[0].1.layers.iter().filter(|l| l.state == State::On).count();
            return format!("{base}, every layer on ({on}: seccomp, landlock, namespaces, no capabilities, rlimits)");
        }
        let gaps: Vec<String> = gaps
            .into_iter()
            .map(|(what, names)| {
                let who = if names.len() == reports.len() { "all".to_string() } else { clean(&names.join(", ")) };
                format!("{what} in {who}")
            })
            .collect();
        format!("{base}; missing: {}", gaps.join("; "))
    }
}

impl Layer {
    fn new(name: &str, state: State, detail: impl Into<String>) -> Layer {
        Layer { name: name.into(), state, detail: detail.into() }
    }

    fn short(&self) -> String {
        if self.detail.is_empty() {
            format!("{} ({})", clean(&self.name), self.state.word())
        } else {
            format!("{} ({}: {})", clean(&self.name), self.state.word(), clean(&self.detail))
        }
    }
}

/// Text from another process, with control characters escaped (no terminal escapes).
use crate::text::terminal_safe as clean;

/// Why the sandbox could not even be attempted.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the sandbox must be applied before the runner starts threads ({0} are running)")]
    Threads(usize),
    #[error("cannot close the inherited descriptors: {0}")]
    Descriptors(std::io::Error),
    #[error("cannot set {what}: {source}")]
    Prctl { what: &'static str, source: std::io::Error },
}

/// Layer names, as reported.
pub mod names {
    pub const DESCRIPTORS: &str = "descriptors";
    pub const ENVIRONMENT: &str = "environment";
    pub const NO_NEW_PRIVS: &str = "no_new_privs";
    pub const DEATH_SIGNAL: &str = "parent-death signal";
    pub const CAPABILITIES: &str = "capabilities";
    pub const RLIMITS: &str = "rlimits";
    pub const PROCESSES: &str = "new processes";
    pub const USER_NS: &str = "user namespace";
    pub const NET_NS: &str = "network namespace";
    pub const IPC_NS: &str = "IPC namespace";
    pub const MOUNT_NS: &str = "mount namespace";
    pub const PID_NS: &str = "PID namespace";
    pub const LANDLOCK: &str = "landlock";
    pub const SECCOMP: &str = "seccomp";
    /// Every layer a report must account for.
    pub const ALL: &[&str] = &[
        DESCRIPTORS,
        ENVIRONMENT,
        NO_NEW_PRIVS,
        DEATH_SIGNAL,
        CAPABILITIES,
        RLIMITS,
        PROCESSES,
        USER_NS,
        NET_NS,
        IPC_NS,
        MOUNT_NS,
        PID_NS,
        LANDLOCK,
        SECCOMP,
    ];
}

/// Applies the sandbox to this process, in the fixed order, and says what it got. Call in the
/// runner before any thread starts and before any untrusted byte is read. A layer the machine
/// does not allow is reported, not an error: the host decides whether that is acceptable.
pub fn apply(policy: &Policy) -> Result<Report, SandboxError> {
    use names::*;
    let mut layers = Vec::new();
    if policy.level == Level::Off {
        for name in ALL {
            layers.push(Layer::new(name, State::Off, "sandbox = off (measurement and debugging only)"));
        }
        return Ok(Report { level: policy.level, layers });
    }
    let threads = privileges::thread_count();
    if threads > 1 {
        return Err(SandboxError::Threads(threads));
    }
    // 1. Descriptors and environment.
    privileges::close_other_descriptors().map_err(SandboxError::Descriptors)?;
    layers.push(Layer::new(
        DESCRIPTORS,
        State::On,
        "0-2 and everything above 5 closed: only the control pipes and the frames' region stay",
    ));
    privileges::clear_environment();
    layers.push(Layer::new(ENVIRONMENT, State::On, "empty"));
    // 2. No new privileges, death with the host, no capabilities.
    privileges::no_new_privs().map_err(|source| SandboxError::Prctl { what: "PR_SET_NO_NEW_PRIVS", source })?;
    layers.push(Layer::new(NO_NEW_PRIVS, State::On, ""));
    privileges::death_signal().map_err(|source| SandboxError::Prctl { what: "PR_SET_PDEATHSIG", source })?;
    layers.push(Layer::new(DEATH_SIGNAL, State::On, "SIGKILL"));
    let caps_at = layers.len();
    layers.push(privileges::drop_capabilities());
    // 3. Resource limits.
    layers.push(privileges::set_rlimits(policy.data_limit));
    // 4. Namespaces. A new user namespace hands back a full capability set inside it: drop again.
    let namespaces = if policy.skip_namespaces {
        [USER_NS, NET_NS, IPC_NS, MOUNT_NS].map(|n| Layer::new(n, State::Off, "left out by the policy")).to_vec()
    } else {
        privileges::enter_namespaces()
    };
    if namespaces.iter().any(|l| l.name == USER_NS && l.state == State::On) {
        let mut again = privileges::drop_capabilities();
        if let Some(uid) = layers[caps_at].detail.split("; ").find(|part| part.ends_with("instead of root")) {
            again.detail = format!("{}; {uid}", again.detail);
        }
        layers[caps_at] = again;
    }
    // Credentials changed: make sure the death signal survived.
    privileges::death_signal().map_err(|source| SandboxError::Prctl { what: "PR_SET_PDEATHSIG", source })?;
    layers.extend(namespaces);
    layers.push(Layer::new(
        PID_NS,
        State::NotUsed,
        "only children would enter it, and the process can start none (see seccomp)",
    ));
    // 5. Landlock.
    layers.push(landlock::restrict());
    // 6. Seccomp, last: it would forbid the calls above.
    let seccomp = if policy.skip_seccomp {
        Layer::new(SECCOMP, State::Off, "left out by the policy")
    } else {
        seccomp::install()
    };
    let processes = if seccomp.state == State::On {
        Layer::new(PROCESSES, State::On, "seccomp allows clone only with CLONE_THREAD, and no execve")
    } else {
        Layer::new(PROCESSES, State::Unavailable, "needs seccomp")
    };
    layers.push(processes);
    layers.push(seccomp);
    Ok(Report { level: policy.level, layers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips_through_the_runner_arguments() {
        let policy = Policy { level: Level::Strict, data_limit: Some(123), skip_seccomp: true, skip_namespaces: false };
        assert_eq!(Policy::from_args(policy.to_args()), policy);
        assert_eq!(Policy::from_args(["--sandbox=bogus", "--data-limit=x"]), Policy::default());
    }

    #[test]
    fn strict_names_what_is_missing() {
        let report = Report {
            level: Level::Strict,
            layers: vec![
                Layer::new("seccomp", State::On, "allowlist"),
                Layer::new("user namespace", State::Unavailable, "EPERM"),
                Layer::new("PID namespace", State::NotUsed, "why"),
            ],
        };
        let refusal = report.strict_refusal().unwrap();
        assert!(refusal.contains("lacks user namespace (unavailable: EPERM)"), "{refusal}");
        assert!(!refusal.contains("PID"), "{refusal}");
        let full = Report {
            level: Level::Strict,
            layers: names::ALL.iter().map(|name| Layer::new(name, State::On, "")).collect(),
        };
        assert_eq!(full.strict_refusal(), None);
        // A process that leaves layers out of its report does not pass for complete.
        let terse = Report { level: Level::Strict, layers: vec![Layer::new("seccomp", State::On, "")] };
        let refusal = terse.strict_refusal().unwrap();
        assert!(refusal.contains("landlock (not reported)"), "{refusal}");
    }

    #[test]
    fn the_run_summary_names_each_gap_once_and_escapes_control_characters() {
        let full = Report { level: Level::Standard, layers: vec![Layer::new("seccomp", State::On, "")] };
        let lacking = Report {
            level: Level::Standard,
            layers: vec![
                Layer::new("seccomp", State::On, ""),
                Layer::new("landlock", State::Unavailable, "ENOSYS\x1b[2J"),
            ],
        };
        assert_eq!(
            Report::run_summary([("a", &full), ("b", &full)]),
            "sandbox: standard for 2 plugin(s), every layer on (1: seccomp, landlock, namespaces, no capabilities, rlimits)"
        );
        assert_eq!(
            Report::run_summary([("a", &full), ("b", &lacking)]),
            "sandbox: standard for 2 plugin(s); missing: landlock (unavailable: ENOSYS\\u{1b}[2J) in b"
        );
    }

    #[test]
    fn the_data_limit_grows_with_what_the_plugin_may_use() {
        let shm = Policy::for_plugin(Level::Standard, 256 << 20, 1 << 20, 8 << 20, false).data_limit.unwrap();
        let pipe = Policy::for_plugin(Level::Standard, 256 << 20, 1 << 20, 8 << 20, true).data_limit.unwrap();
        assert_eq!(shm, DATA_BASE + (512 << 20) + (2 << 20));
        assert_eq!(pipe, shm + (24 << 20));
    }
}
