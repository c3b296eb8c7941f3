//! Pipeline configs (TOML): an input, a chain of plugins, an output; or, in the graph form, named
//! inputs, plugins that name what they take and outputs that name what they write (checked by
//! [`crate::graph`]). Parsed strictly (unknown keys are errors) and checked as a whole before
//! anything runs; every problem is one sentence that names the file and the key or plugin.

use crate::graph::{Declared, DeclaredInput, DeclaredOutput, DeclaredPlugin, Graph, OnEnd};
use plugin_host::ipc::protocol::Transport;
use plugin_host::process::Limits;
use plugin_host::sys::sandbox::Level as SandboxLevel;
use plugin_sdk::PixelFormat;
use plugin_sdk::abi::ParamValue;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config problem: the run does not start. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// The default for every plugin.
    sandbox: Option<SandboxName>,
    /// Frames in flight in the chain beyond one per plugin.
    ring: Option<u32>,
    /// Largest frame a plugin may declare, in bytes as RGBA.
    max_frame_bytes: Option<u64>,
    input: OneOrMany<RawInput>,
    #[serde(default, rename = "plugin")]
    plugins: Vec<RawPlugin>,
    output: OneOrMany<RawOutput>,
}

/// The `file` of a config made from the command line's one-off form.
pub const COMMAND_LINE: &str = "the command line";

/// `[input]` (one table, the chain form) or `[[input]]` (an array of tables, the graph form).
#[derive(Debug, Clone)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

// By hand, not `#[serde(untagged)]`: an untagged enum buffers the table and, when neither form
// fits, says only that; this hands the table or the array straight to `T`, so a bad key is still
// named, with its line and column.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table or an array of tables")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

// Tables are parsed as plain structs (not serde-tagged enums) so that toml can point at the
// offending key; which keys belong to which kind is checked afterwards.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    /// Needed when there are several inputs; one alone is [`crate::graph::DEFAULT_INPUT_NAME`].
    name: Option<String>,
    #[serde(default)]
    on_end: OnEnd,
    kind: InputKind,
    path: Option<PathBuf>,
    width: Option<u32>,
    height: Option<u32>,
    frames: Option<u64>,
    format: Option<RawFormat>,
    decoder_args: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum InputKind {
    Testsrc,
    Png,
    Raw,
    Y4m,
    Video,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    name: Option<String>,
    /// The node it writes; left out, the last plugin (or the only input).
    from: Option<String>,
    kind: OutputKind,
    path: Option<PathBuf>,
    format: Option<RawFormat>,
    encoder_args: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OutputKind {
    Png,
    Raw,
    Y4m,
    Video,
    Null,
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputConfig {
    /// The built-in moving test pattern.
    Testsrc { width: u32, height: u32, frames: u64 },
    /// One PNG file, or a folder of them taken in name order.
    Png { path: PathBuf },
    /// Raw video (`ffmpeg -f rawvideo`): `-` for stdin, or a file.
    Raw { path: PathBuf, width: u32, height: u32, format: RawFormat },
    /// A y4m stream (`ffmpeg -f yuv4mpegpipe`): `-` for stdin, or a file.
    Y4m { path: PathBuf },
    /// Any video file ffmpeg can decode (ffmpeg runs as a child process).
    /// `decoder_args`: ffmpeg options for the decoded frames (`["-vf", "yadif"]`).
    Video { path: PathBuf, decoder_args: Vec<String> },
}

impl InputConfig {
    /// The file or folder it reads; none for the test pattern.
    pub fn path(&self) -> Option<&Path> {
        match self {
            InputConfig::Png { path }
            | InputConfig::Raw { path, .. }
            | InputConfig::Y4m { path }
            | InputConfig::Video { path, .. } => Some(path),
            InputConfig::Testsrc { .. } => None,
        }
    }
}

/// Pixel formats of raw video, by ffmpeg's `-pix_fmt` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawFormat {
    #[default]
    Rgba,
    Gray,
    Yuv420p,
    Nv12,
    #[serde(rename = "yuv420p10le", alias = "yuv420p10")]
    Yuv420p10le,
}

impl RawFormat {
    pub const ALL: [RawFormat; 5] =
        [RawFormat::Rgba, RawFormat::Gray, RawFormat::Yuv420p, RawFormat::Nv12, RawFormat::Yuv420p10le];

    pub fn pixel_format(self) -> PixelFormat {
        match self {
            RawFormat::Rgba => PixelFormat::Rgba8,
            RawFormat::Gray => PixelFormat::Gray8,
            RawFormat::Yuv420p => PixelFormat::Yuv420p,
            RawFormat::Nv12 => PixelFormat::Nv12,
            RawFormat::Yuv420p10le => PixelFormat::Yuv420p10,
        }
    }

    /// ffmpeg's `-pix_fmt` name.
    pub fn name(self) -> &'static str {
        match self {
            RawFormat::Rgba => "rgba",
            RawFormat::Gray => "gray",
            RawFormat::Yuv420p => "yuv420p",
            RawFormat::Nv12 => "nv12",
            RawFormat::Yuv420p10le => "yuv420p10le",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let name = if name == "yuv420p10" { "yuv420p10le" } else { name };
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Where frames go.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputConfig {
    /// A folder of `frame-000001.png`, ….
    Png { path: PathBuf },
    /// Raw video: `-` for stdout, or a file; in `format` if given.
    Raw { path: PathBuf, format: Option<RawFormat> },
    /// A y4m stream: `-` for stdout, or a file.
    Y4m { path: PathBuf },
    /// A video file, encoded by ffmpeg as its extension says, with `encoder_args` (ffmpeg output
    /// options such as `-c:v libx264 -crf 18`), the input video's audio copied when it fits.
    Video { path: PathBuf, encoder_args: Vec<String> },
    /// Discard (for measuring).
    Null,
}

impl OutputConfig {
    /// The file or folder it writes; none for `null`.
    pub fn path(&self) -> Option<&Path> {
        match self {
            OutputConfig::Png { path }
            | OutputConfig::Raw { path, .. }
            | OutputConfig::Y4m { path }
            | OutputConfig::Video { path, .. } => Some(path),
            OutputConfig::Null => None,
        }
    }
}

/// What a plugin does with a frame it could not process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop the run.
    #[default]
    Fail,
    /// Drop the frame.
    Skip,
    /// Forward the plugin's input unchanged.
    Passthrough,
}

/// How a plugin reads its input frame (`input = …`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum InputMode {
    /// In place, mapped read-only: no copy; the stage before can still write it meanwhile.
    #[default]
    Shared,
    /// Copied into the plugin's private memory first (one copy a frame, counted).
    Snapshot,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: String,
    path: PathBuf,
    /// The nodes it takes frames from; left out, the previous node.
    inputs: Option<Vec<String>>,
    deadline_ms: Option<u64>,
    startup_ms: Option<u64>,
    memory_mb: Option<u64>,
    compile_memory_mb: Option<u64>,
    module_max_mb: Option<u64>,
    #[serde(default)]
    on_error: OnError,
    max_restarts: Option<u32>,
    restart_window_s: Option<u64>,
    #[serde(default)]
    transport: TransportName,
    #[serde(default)]
    input: InputMode,
    sandbox: Option<SandboxName>,
    workers: Option<u32>,
    #[serde(default)]
    state_every: u64,
    #[serde(default)]
    params: toml::Table,
}

/// `sandbox` in a config: the levels a user may ask for (never "off").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SandboxName {
    Standard,
    Strict,
}

impl SandboxName {
    fn level(self) -> SandboxLevel {
        match self {
            SandboxName::Standard => SandboxLevel::Standard,
            SandboxName::Strict => SandboxLevel::Strict,
        }
    }
}

/// `transport` in a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TransportName {
    #[default]
    Shm,
    Pipe,
}

/// One stage of the chain, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    pub name: String,
    /// Resolved against the config file's folder.
    pub path: PathBuf,
    pub limits: Limits,
    pub on_error: OnError,
    pub max_restarts: u32,
    /// The window `max_restarts` counts in: more restarts than that within it disable the plugin.
    pub restart_window: Duration,
    pub transport: Transport,
    /// The plugin's own `sandbox`, else the file's, else standard.
    pub sandbox: SandboxLevel,
    /// `input = "snapshot"`: copy each input frame before the plugin reads it.
    pub snapshot_input: bool,
    /// Processes that each write a band of every frame; `None`: one per core, up to a limit
    /// ([`default_workers`]). A plugin that needs whole frames gets one.
    pub workers: Option<u32>,
    /// Every this many frames the host keeps the plugin's state (`Plugin::snapshot`) and gives
    /// it to the process that replaces one that crashed; 0: never.
    pub state_every: u64,
    pub params: Vec<(String, ParamValue)>,
}

/// New values for some of a running plugin's parameters, from the first frame whose timestamp
/// is at or after `at_us`: a recorded change list replays exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamChange {
    pub at_us: i64,
    /// The plugin instance's name in the config.
    pub plugin: String,
    pub params: Vec<(String, ParamValue)>,
}

/// Reads a change list (`--changes FILE`): `[[change]]` tables of `at_ms`, `plugin` and
/// `params`, checked against `config`'s plugin names (their values are checked against each
/// plugin's schema when it has started). Sorted by time, in file order within a time.
pub fn load_changes(path: &Path, config: &Config) -> Result<Vec<ParamChange>, ConfigError> {
    let error = |message: String| ConfigError { file: path.display().to_string(), message };
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawChanges {
        #[serde(default)]
        change: Vec<RawChange>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawChange {
        at_ms: u64,
        plugin: String,
        params: toml::Table,
    }
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    let raw: RawChanges = toml::from_str(&text).map_err(|e| error(describe_toml_error(&text, &e)))?;
    let mut changes = Vec::new();
    for (i, change) in raw.change.into_iter().enumerate() {
        config.plugin_index(&change.plugin).map_err(|e| error(format!("change #{}: {e}", i + 1)))?;
        let params = change
            .params
            .into_iter()
            .map(|(key, value)| param_value(&key, value).map(|v| (key, v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error(format!("change #{}: {e}", i + 1)))?;
        let at_us = i64::try_from(change.at_ms.saturating_mul(1000)).unwrap_or(i64::MAX);
        changes.push(ParamChange { at_us, plugin: change.plugin, params });
    }
    changes.sort_by_key(|c| c.at_us);
    Ok(changes)
}

/// A checked config; paths are resolved against the config file's folder. Made by
/// [`Config::load`] or, for a chain, [`Config::chain`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub file: PathBuf,
    /// At the indices of [`Graph::plugins`].
    pub plugins: Vec<PluginConfig>,
    /// Every input, at the indices of [`Graph::inputs`]; never empty.
    inputs: Vec<InputConfig>,
    /// Every output, at the indices of [`Graph::outputs`]; never empty.
    outputs: Vec<OutputConfig>,
    graph: Graph,
    /// Frames in flight beyond one per plugin: how far a stage may run ahead of the next.
    pub ring: u32,
    /// Largest frame a plugin may declare it makes, counted as RGBA (4 bytes a pixel): buffers
    /// are sized for the largest frame of the chain.
    pub max_frame_bytes: u64,
}

/// File extensions the one-line form takes for video files (`kind = "video"`).
pub const VIDEO_EXTENSIONS: [&str; 11] = ["mp4", "mkv", "mov", "webm", "avi", "m4v", "ts", "mxf", "flv", "mpg", "ogv"];

/// [`Config::max_frame_bytes`] by default: an 8192×8192 RGBA frame, the most a buffer holds.
pub const DEFAULT_MAX_FRAME_BYTES: u64 = plugin_host::ipc::region::MAX_SLOT_CAPACITY;

pub const DEFAULT_RING: u32 = 2;
/// Most workers a stage may have.
pub const MAX_WORKERS: u32 = 64;

/// Workers for a stage that does not say: one per core, at most [`DEFAULT_MAX_WORKERS`]. The
/// stages of a chain share the cores by turns (a worker with nothing to do sleeps), so the
/// heaviest stage can use every core while the light ones wait; cores shared out among the stages
/// left it short (the demo chain at 1080p on 2 cores: 31 frames/s with 1 worker a stage, 45 with 2).
pub fn default_workers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(1, DEFAULT_MAX_WORKERS as usize) as u32
}

/// Most workers a stage gets without asking, to keep the process count modest on big machines.
pub const DEFAULT_MAX_WORKERS: u32 = 8;
pub const MAX_RING: u32 = 16;
pub const DEFAULT_MAX_RESTARTS: u32 = 5;
pub const DEFAULT_RESTART_WINDOW_S: u64 = 60;
/// Largest frame side accepted from a config.
pub const MAX_SIDE: u32 = 8192;

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let error = |message: String| ConfigError { file: file.clone(), message };
        let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read the config: {e}")))?;
        if let Some(message) = table_before_its_plugin(&text) {
            return Err(error(message));
        }
        let raw: RawConfig = toml::from_str(&text).map_err(|e| error(describe_toml_error(&text, &e)))?;
        let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let resolve = |p: &Path| if p == Path::new("-") || p.is_absolute() { p.to_path_buf() } else { base.join(p) };

        // With several inputs or outputs, a problem with one says which (`input #2 ("logo"): …`).
        let (raw_inputs, raw_outputs) = (raw.input.into_vec(), raw.output.into_vec());
        let (input_count, output_count) = (raw_inputs.len(), raw_outputs.len());
        let label = |table: &str, i: usize, count: usize, name: &Option<String>| match (count, name) {
            (0 | 1, _) => String::new(),
            (_, Some(name)) => format!("{table} #{} (\"{name}\"): ", i + 1),
            (_, None) => format!("{table} #{}: ", i + 1),
        };
        let mut declared = Declared::default();
        let mut inputs = Vec::with_capacity(raw_inputs.len());
        for (i, raw_input) in raw_inputs.into_iter().enumerate() {
            let at = label("input", i, input_count, &raw_input.name);
            declared.inputs.push(DeclaredInput { name: raw_input.name.clone(), on_end: raw_input.on_end });
            inputs.push(check_input(raw_input, &resolve).map_err(|why| error(format!("{at}{why}")))?);
        }
        let mut outputs = Vec::with_capacity(raw_outputs.len());
        for (i, raw_output) in raw_outputs.into_iter().enumerate() {
            let at = label("output", i, output_count, &raw_output.name);
            declared.outputs.push(DeclaredOutput { name: raw_output.name.clone(), from: raw_output.from.clone() });
            outputs.push(check_output(raw_output, &resolve).map_err(|why| error(format!("{at}{why}")))?);
        }
        let mut plugins: Vec<PluginConfig> = Vec::new();
        for (i, p) in raw.plugins.into_iter().enumerate() {
            let at = format!("plugin #{} (\"{}\")", i + 1, p.name);
            declared.plugins.push(DeclaredPlugin { name: p.name.clone(), inputs: p.inputs.clone() });
            let positive = |key: &str, v: Option<u64>, default: u64, max: u64| match v {
                Some(0) => Err(error(format!("{at}: {key} must be at least 1"))),
                Some(v) if v > max => Err(error(format!("{at}: {key} = {v} exceeds the maximum of {max}"))),
                Some(v) => Ok(v),
                None => Ok(default),
            };
            // The library's defaults, in the config's units.
            let defaults = Limits::default();
            let ms = |d: Duration| d.as_millis() as u64;
            let limits = Limits {
                deadline: Duration::from_millis(positive(
                    "deadline_ms",
                    p.deadline_ms,
                    ms(defaults.deadline),
                    3_600_000,
                )?),
                startup: Duration::from_millis(positive("startup_ms", p.startup_ms, ms(defaults.startup), 3_600_000)?),
                memory_bytes: positive("memory_mb", p.memory_mb, defaults.memory_bytes >> 20, 4096)? << 20,
                compile_memory_bytes: None,
                module_max_bytes: positive("module_max_mb", p.module_max_mb, defaults.module_max_bytes >> 20, 4096)?
                    << 20,
            };
            let limits = Limits {
                compile_memory_bytes: match p.compile_memory_mb {
                    None => None,
                    some => Some(positive("compile_memory_mb", some, 0, 65_536)? << 20),
                },
                ..limits
            };
            let transport = match p.transport {
                TransportName::Shm => Transport::SharedMemory,
                TransportName::Pipe => Transport::Pipe,
            };
            let workers = match p.workers {
                Some(n @ 2..) if transport == Transport::Pipe => {
                    return Err(error(format!(
                        "{at}: workers = {n} needs transport = \"shm\" (bands of one frame share its buffers)"
                    )));
                }
                Some(n @ 1..=MAX_WORKERS) => Some(n),
                Some(n) => return Err(error(format!("{at}: workers = {n} is outside 1..={MAX_WORKERS}"))),
                None if transport == Transport::Pipe => Some(1),
                None => None,
            };
            let mut params = Vec::new();
            for (key, value) in p.params {
                let value = param_value(&key, value).map_err(|why| error(format!("plugin \"{}\": {why}", p.name)))?;
                params.push((key, value));
            }
            plugins.push(PluginConfig {
                name: p.name,
                path: resolve(&p.path),
                limits,
                on_error: p.on_error,
                max_restarts: p.max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS),
                restart_window: Duration::from_secs(positive(
                    "restart_window_s",
                    p.restart_window_s,
                    DEFAULT_RESTART_WINDOW_S,
                    86_400,
                )?),
                transport,
                sandbox: p.sandbox.or(raw.sandbox).map_or(SandboxLevel::Standard, SandboxName::level),
                snapshot_input: matches!(p.input, InputMode::Snapshot),
                workers,
                state_every: p.state_every,
                params,
            });
        }
        let graph = Graph::build(declared).map_err(error)?;
        let ring = match raw.ring {
            None => DEFAULT_RING,
            Some(ring @ 1..=MAX_RING) => ring,
            Some(ring) => return Err(error(format!("ring = {ring} is outside 1..={MAX_RING}"))),
        };
        // One process has one stdin and one stdout: `-` serves one input and one output.
        // The second of `paths` that is `-`.
        let second_dash = |paths: Vec<Option<&Path>>| {
            paths.iter().enumerate().filter(|(_, p)| **p == Some(Path::new("-"))).nth(1).map(|(i, _)| i)
        };
        let input_count = inputs.len();
        if let Some(i) = second_dash(inputs.iter().map(InputConfig::path).collect()) {
            let at = label("input", i, input_count, &Some(graph.inputs()[i].name.clone()));
            return Err(error(format!("{at}input.path \"-\" is stdin, which an earlier input reads already")));
        }
        if let Some(i) = second_dash(outputs.iter().map(OutputConfig::path).collect()) {
            let at = label("output", i, output_count, &graph.outputs()[i].name);
            return Err(error(format!("{at}output.path \"-\" is stdout, which an earlier output writes already")));
        }
        for (i, output) in outputs.iter().enumerate() {
            if let Some(out) = output.path()
                && let Some(what) = overwritten_by(out, path, &inputs, &plugins, (&outputs, i))
            {
                let at = label("output", i, output_count, &graph.outputs()[i].name);
                return Err(error(format!("{at}output.path {} is {what}; the run would overwrite it", out.display())));
            }
        }
        let max_frame_bytes = match raw.max_frame_bytes {
            None => DEFAULT_MAX_FRAME_BYTES,
            Some(bytes @ 1..=DEFAULT_MAX_FRAME_BYTES) => bytes,
            Some(bytes) => {
                return Err(error(format!("max_frame_bytes = {bytes} is outside 1..={DEFAULT_MAX_FRAME_BYTES}")));
            }
        };
        Ok(Config { file: path.to_path_buf(), plugins, inputs, outputs, graph, ring, max_frame_bytes })
    }

    /// The chain `input → plugins → output` (plugin names unique), with the defaults of a
    /// config file: what the one-line command and the benchmark run.
    pub fn chain(file: PathBuf, input: InputConfig, plugins: Vec<PluginConfig>, output: OutputConfig) -> Config {
        Config {
            file,
            inputs: vec![input],
            outputs: vec![output],
            graph: Graph::chain(plugins.iter().map(|p| p.name.clone())),
            plugins,
            ring: DEFAULT_RING,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }

    /// How the inputs, plugins and outputs connect; a chain's is [`Graph::chain`].
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The first input: a chain's only one (what the chain runtime reads).
    pub fn input(&self) -> &InputConfig {
        &self.inputs[0]
    }

    /// The first output: a chain's only one (what the chain runtime writes).
    pub fn output(&self) -> &OutputConfig {
        &self.outputs[0]
    }

    /// Every input, at the indices of [`Graph::inputs`].
    pub fn inputs(&self) -> &[InputConfig] {
        &self.inputs
    }

    /// Every output, at the indices of [`Graph::outputs`].
    pub fn outputs(&self) -> &[OutputConfig] {
        &self.outputs
    }

    /// Whether the chain runtime can run this config: one input, one output, each plugin fed by
    /// the one before it ([`Graph::is_chain`]).
    pub fn is_chain(&self) -> bool {
        self.graph.is_chain()
    }

    /// What of this run's own files (config, inputs, plugins, outputs) writing `path` would
    /// overwrite, if any.
    pub fn overwritten_by(&self, path: &Path) -> Option<String> {
        overwritten_by(path, &self.file, &self.inputs, &self.plugins, (&self.outputs, self.outputs.len()))
    }

    /// What of the run's own files (config, inputs, plugins, earlier outputs) an output would
    /// overwrite, if any: the first such output's path and what.
    pub fn output_overwrites(&self) -> Option<(PathBuf, String)> {
        self.outputs.iter().enumerate().find_map(|(i, output)| {
            let path = output.path()?;
            let what = overwritten_by(path, &self.file, &self.inputs, &self.plugins, (&self.outputs, i))?;
            Some((path.to_path_buf(), what))
        })
    }

    /// Which of the plugins is named `name`, or the sentence saying there is none (with the
    /// names there are, and the closest).
    pub fn plugin_index(&self, name: &str) -> Result<usize, String> {
        self.plugins.iter().position(|p| p.name == name).ok_or_else(|| {
            let names: Vec<String> = self.plugins.iter().map(|p| p.name.clone()).collect();
            let suggestion = plugin_host::schema::closest(name, &names)
                .map(|s| format!("; did you mean \"{s}\"?"))
                .unwrap_or_default();
            format!("no plugin named \"{name}\" (there are: {}){suggestion}", names.join(", "))
        })
    }

    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.display().to_string(), message: message.into() }
    }
}

/// Refuses keys that do not belong to the table's kind.
fn only(table: &str, kind: &str, present: &[(&str, bool)]) -> Result<(), String> {
    match present.iter().find(|(_, is)| *is) {
        Some((key, _)) => Err(format!("{table}.{key} does not apply to kind = \"{kind}\"")),
        None => Ok(()),
    }
}

fn required<T>(table: &str, key: &str, kind: &str, value: Option<T>) -> Result<T, String> {
    value.ok_or_else(|| format!("{table}.{key} is required for kind = \"{kind}\""))
}

fn required_path(table: &str, kind: &str, value: Option<PathBuf>) -> Result<PathBuf, String> {
    let path = required(table, "path", kind, value)?;
    if path.as_os_str().is_empty() {
        return Err(format!("{table}.path is empty"));
    }
    Ok(path)
}

/// The canonical path of `path`, or of its folder joined with its name when it does not exist
/// yet; none for `-`.
fn real_path(path: &Path) -> Option<PathBuf> {
    if path == Path::new("-") {
        return None; // stdin or stdout, not a file
    }
    std::fs::canonicalize(path).ok().or_else(|| {
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(folder).ok()?.join(path.file_name()?))
    })
}

/// Whether `a` and `b` name the same file (or would, once `a` or `b` is created).
pub fn same_file(a: &Path, b: &Path) -> bool {
    real_path(a).is_some_and(|a| real_path(b).is_some_and(|b| a == b))
}

/// The folder `path` would be created in, when that folder does not exist.
pub fn missing_folder(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
}

/// What of the run's own files `target` would overwrite, if any: the config, an input (or, for
/// a PNG folder output, a file inside it), a plugin's module, or one of the first `n` outputs
/// (`(outputs, n)`: the others are counted to name the one it is).
fn overwritten_by(
    target: &Path,
    config: &Path,
    inputs: &[InputConfig],
    plugins: &[PluginConfig],
    (outputs, n): (&[OutputConfig], usize),
) -> Option<String> {
    let real = real_path(target)?;
    let same = |p: &Path| real_path(p).is_some_and(|r| r == real);
    // A folder target holds what lies inside it, and so does a file target's own folder output.
    let holds = |outer: &Path, p: &Path| {
        std::fs::canonicalize(outer).is_ok_and(|o| o.is_dir() && real_path(p).is_some_and(|r| r.starts_with(&o)))
    };
    // `the input` when there is one, else `input #2`.
    let which = |table: &str, i: usize, count: usize| match count {
        1 => format!("the {table}"),
        _ => format!("{table} #{}", i + 1),
    };
    if same(config) {
        return Some("the config file itself".into());
    }
    for (i, input) in inputs.iter().enumerate() {
        if let Some(input) = input.path()
            && (same(input) || holds(target, input))
        {
            let it = which("input", i, inputs.len());
            return Some(if same(input) { it } else { format!("a folder that holds {it}") });
        }
    }
    if let Some(plugin) = plugins.iter().find(|p| same(&p.path) || holds(target, &p.path)) {
        let module = format!("plugin \"{}\"'s module", plugin.name);
        return Some(if same(&plugin.path) { module } else { format!("a folder that holds {module}") });
    }
    for (i, output) in outputs[..n].iter().enumerate() {
        let Some(out) = output.path() else { continue };
        if same(out) {
            return Some(which("output", i, outputs.len()));
        }
        if holds(out, target) {
            return Some(match outputs.len() {
                1 => "inside the output folder".into(),
                _ => format!("inside output #{}'s folder", i + 1),
            });
        }
    }
    None
}

fn check_input(raw: RawInput, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<InputConfig, String> {
    // The name and on_end are the graph's.
    let RawInput { kind, path, width, height, frames, format, decoder_args, .. } = raw;
    let name = format!("{kind:?}").to_lowercase();
    only("input", &name, &[("decoder_args", kind != InputKind::Video && decoder_args.is_some())])?;
    Ok(match kind {
        InputKind::Testsrc => {
            only("input", "testsrc", &[("path", path.is_some()), ("format", format.is_some())])?;
            let (width, height) = (width.unwrap_or(1280), height.unwrap_or(720));
            check_size("input", width, height)?;
            InputConfig::Testsrc { width, height, frames: frames.unwrap_or(120) }
        }
        InputKind::Png => {
            only(
                "input",
                "png",
                &[
                    ("width", width.is_some()),
                    ("height", height.is_some()),
                    ("frames", frames.is_some()),
                    ("format", format.is_some()),
                ],
            )?;
            let path = required_path("input", "png", path)?;
            if path == Path::new("-") {
                return Err("input.path: a png input is a folder or a file, not stdin".into());
            }
            InputConfig::Png { path: resolve(&path) }
        }
        InputKind::Raw => {
            only("input", "raw", &[("frames", frames.is_some())])?;
            let path = resolve(&required_path("input", "raw", path)?);
            let (width, height) =
                (required("input", "width", "raw", width)?, required("input", "height", "raw", height)?);
            check_size("input", width, height)?;
            InputConfig::Raw { path, width, height, format: format.unwrap_or_default() }
        }
        InputKind::Y4m | InputKind::Video => {
            // The stream says its size, format and length.
            let name = if kind == InputKind::Y4m { "y4m" } else { "video" };
            let present = [
                ("width", width.is_some()),
                ("height", height.is_some()),
                ("frames", frames.is_some()),
                ("format", format.is_some()),
            ];
            only("input", name, &present)?;
            let path = required_path("input", name, path)?;
            if kind == InputKind::Y4m {
                return Ok(InputConfig::Y4m { path: resolve(&path) });
            }
            if path == Path::new("-") {
                return Err("input.path: a video input is a file; for a stream use kind = \"y4m\"".into());
            }
            InputConfig::Video { path: resolve(&path), decoder_args: decoder_args.unwrap_or_default() }
        }
    })
}

fn check_output(raw: RawOutput, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<OutputConfig, String> {
    let kind = format!("{:?}", raw.kind).to_lowercase();
    only("output", &kind, &[("format", raw.kind != OutputKind::Raw && raw.format.is_some())])?;
    only("output", &kind, &[("encoder_args", raw.kind != OutputKind::Video && raw.encoder_args.is_some())])?;
    Ok(match raw.kind {
        OutputKind::Png => {
            let path = required_path("output", "png", raw.path)?;
            if path == Path::new("-") {
                return Err("output.path: a png output is a folder, not stdout".into());
            }
            check_png_folder("output.path", &path)?;
            OutputConfig::Png { path: resolve(&path) }
        }
        OutputKind::Raw => {
            OutputConfig::Raw { path: resolve(&required_path("output", "raw", raw.path)?), format: raw.format }
        }
        OutputKind::Y4m => OutputConfig::Y4m { path: resolve(&required_path("output", "y4m", raw.path)?) },
        OutputKind::Video => {
            let path = required_path("output", "video", raw.path)?;
            if path == Path::new("-") {
                return Err("output.path: a video output is a file; for a stream use kind = \"y4m\"".into());
            }
            OutputConfig::Video { path: resolve(&path), encoder_args: raw.encoder_args.unwrap_or_default() }
        }
        OutputKind::Null => {
            only("output", "null", &[("path", raw.path.is_some())])?;
            OutputConfig::Null
        }
    })
}

pub fn check_size(key: &str, width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!("{key}: {width}x{height} is not a frame size (each side 1..={MAX_SIDE})"));
    }
    Ok(())
}

/// A plugin parameter from a TOML value (a config's `[plugin.params]`, a test case's params
/// file); only numbers, booleans and strings are parameters.
pub fn param_value(key: &str, value: toml::Value) -> Result<ParamValue, String> {
    match value {
        toml::Value::Integer(v) => Ok(ParamValue::Int(v)),
        toml::Value::Float(v) => Ok(ParamValue::Float(v)),
        toml::Value::Boolean(v) => Ok(ParamValue::Bool(v)),
        toml::Value::String(v) => Ok(ParamValue::Str(v)),
        other => Err(format!(
            "parameter \"{key}\" is {}; parameters are numbers, booleans or strings",
            article(other.type_str())
        )),
    }
}

fn article(noun: &str) -> String {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { format!("an {noun}") } else { format!("a {noun}") }
}

/// A PNG output is a folder: a path named `.png` is refused, with a hint (`what` names the key).
pub fn check_png_folder(what: &str, path: &Path) -> Result<(), String> {
    match path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        true => Err(format!(
            "{what} {}: a png output is a folder of frame-000001.png, frame-000002.png …; name a folder \
             (for example \"out\")",
            path.display()
        )),
        false => Ok(()),
    }
}

/// A `[plugin.params]` (or any `[plugin.…]`) table before the first `[[plugin]]`, in plain words:
/// TOML itself only says "duplicate key" further down.
fn table_before_its_plugin(text: &str) -> Option<String> {
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with("[[plugin]]") {
            return None;
        }
        if let Some(table) = line.strip_prefix("[plugin.").and_then(|rest| rest.strip_suffix(']')) {
            return Some(format!(
                "line {}: [plugin.{table}] comes before any [[plugin]]; put it after the [[plugin]] it belongs to",
                number + 1
            ));
        }
    }
    None
}

/// `line L, column C: message`, from toml's error and the source text.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let mut message = err.message().trim_end_matches('\n').replace('\n', "; ");
    if message.contains("as i128") {
        message = "the number is too large (integers here are 64-bit)".into();
    }
    if message.contains("expected a sequence") && text.lines().any(|l| l.trim() == "[plugin]") {
        message.push_str("; write [[plugin]] (two brackets) for each plugin of the chain");
    }
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_table_before_its_plugin_and_a_png_file_as_output_say_so() {
        let err = load("[input]\nkind = \"testsrc\"\nwidth = 8\nheight = 8\n[plugin.params]\nradius = 2\n[[plugin]]\nname = \"x\"\npath = \"x.wasm\"\n[output]\nkind = \"null\"\n").unwrap_err();
        assert_eq!(
            err,
            "line 5: [plugin.params] comes before any [[plugin]]; put it after the [[plugin]] it belongs to"
        );
        let err =
            load("[input]\nkind = \"testsrc\"\nwidth = 8\nheight = 8\n[output]\nkind = \"png\"\npath = \"out.png\"\n")
                .unwrap_err();
        assert!(err.starts_with("output.path out.png: a png output is a folder"), "{err}");
    }

    fn load(text: &str) -> Result<Config, String> {
        // A folder per call: tests run at once, and two texts may have one length.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("plugin-host-config-{}-{call}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).map_err(|e| e.message)
    }

    const MINIMAL: &str = "[input]\nkind = \"testsrc\"\n[output]\nkind = \"null\"\n";

    #[test]
    fn a_plugin_may_be_named_input_and_stdin_and_stdout_serve_one_each() {
        let chain =
            "[input]\nkind = \"testsrc\"\n[[plugin]]\nname = \"input\"\npath = \"x.wasm\"\n[output]\nkind = \"null\"\n";
        assert!(load(chain).unwrap().is_chain(), "the unnamed input's default name is not taken from the user");
        let two_stdout = "[input]\nkind = \"testsrc\"\n[[output]]\nkind = \"raw\"\npath = \"-\"\n\
                          [[output]]\nkind = \"y4m\"\npath = \"-\"\n";
        let err = load(two_stdout).unwrap_err();
        assert!(
            err.contains("output #2: output.path \"-\" is stdout, which an earlier output writes already"),
            "{err}"
        );
    }

    #[test]
    fn a_change_list_names_its_plugin_and_its_syntax_errors_by_line() {
        let dir = std::env::temp_dir().join(format!("plugin-host-changes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = Config::chain(
            dir.join("c.toml"),
            InputConfig::Testsrc { width: 8, height: 8, frames: 1 },
            Vec::new(),
            OutputConfig::Null,
        );
        std::fs::write(dir.join("bad.toml"), "[[change]]\nat_ms = \"soon\"\n").unwrap();
        let err = load_changes(&dir.join("bad.toml"), &config).unwrap_err().message;
        assert!(err.starts_with("line 2, column"), "{err}");
        assert!(!err.contains('\n') && !err.contains('|'), "one sentence: {err}");
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let config = load(MINIMAL).unwrap();
        assert_eq!(*config.input(), InputConfig::Testsrc { width: 1280, height: 720, frames: 120 });
        assert!(config.plugins.is_empty());
    }

    #[test]
    fn errors_say_where() {
        let err = load("[input]\nkind = \"testsrc\"\nwidht = 3\n[output]\nkind = \"null\"\n").unwrap_err();
        assert!(err.starts_with("line 3, column 1: unknown field `widht`"), "{err}");
        let err = load("[input]\nkind = \"webcam\"\n[output]\nkind = \"null\"\n").unwrap_err();
        assert!(err.contains("unknown variant `webcam`"), "{err}");
        let err = load("[input]\nkind = \"testsrc\"\n").unwrap_err();
        assert!(err.contains("missing field `output`"), "{err}");
        let err =
            load(&format!("{MINIMAL}[[plugin]]\nname = \"a\"\npath = \"x.wasm\"\ndeadline_ms = 0\n")).unwrap_err();
        assert_eq!(err, "plugin #1 (\"a\"): deadline_ms must be at least 1");
        let twice =
            format!("{MINIMAL}[[plugin]]\nname = \"a\"\npath = \"x\"\n[[plugin]]\nname = \"a\"\npath = \"y\"\n");
        assert!(load(&twice).unwrap_err().contains("\"a\" is used twice"));
        let err = load("[input]\nkind = \"raw\"\npath = \"-\"\nwidth = 0\nheight = 2\n[output]\nkind = \"null\"\n")
            .unwrap_err();
        assert!(err.contains("0x2 is not a frame size"), "{err}");
        let err =
            load(&format!("{MINIMAL}[[plugin]]\nname = \"a\"\npath = \"x\"\n[plugin.params]\nr = [1]\n")).unwrap_err();
        assert!(err.contains("parameter \"r\" is an array"), "{err}");
        let err = load("[input]\nkind = \"png\"\n[output]\nkind = \"null\"\n").unwrap_err();
        assert_eq!(err, "input.path is required for kind = \"png\"");
        let err = load("[input]\nkind = \"testsrc\"\nwidth = \"wide\"\n[output]\nkind = \"null\"\n").unwrap_err();
        assert!(err.starts_with("line 3, column 9: invalid type: string \"wide\""), "{err}");
    }

    #[test]
    fn toml_errors_say_what_to_write() {
        let err =
            load("[input]\nkind = \"testsrc\"\n[plugin]\nname = \"a\"\npath = \"a.wasm\"\n[output]\nkind = \"null\"\n")
                .unwrap_err();
        assert!(err.contains("write [[plugin]] (two brackets)"), "{err}");
        let err = load("[input]\nkind = \"testsrc\"\nframes = 99999999999999999999\n[output]\nkind = \"null\"\n")
            .unwrap_err();
        assert!(err.contains("line 3, column 10: the number is too large"), "{err}");
    }

    #[test]
    fn sandbox_is_per_plugin_or_global() {
        let two =
            "[[plugin]]\nname = \"a\"\npath = \"x\"\n[[plugin]]\nname = \"b\"\npath = \"y\"\nsandbox = \"standard\"\n";
        let config = load(&format!("sandbox = \"strict\"\n{MINIMAL}{two}")).unwrap();
        assert_eq!(config.plugins[0].sandbox, SandboxLevel::Strict);
        assert_eq!(config.plugins[1].sandbox, SandboxLevel::Standard);
        let config = load(&format!("{MINIMAL}{two}")).unwrap();
        assert_eq!(config.plugins[0].sandbox, SandboxLevel::Standard);
        let err = load(&format!("sandbox = \"off\"\n{MINIMAL}")).unwrap_err();
        assert!(err.starts_with("line 1, column 11: unknown variant `off`, expected `standard` or `strict`"), "{err}");
    }

    #[test]
    fn the_chain_form_gives_the_chain() {
        let text = format!(
            "{MINIMAL}[[plugin]]\nname = \"a\"\npath = \"a.wasm\"\n[[plugin]]\nname = \"b\"\npath = \"b.wasm\"\n"
        );
        let config = load(&text).unwrap();
        assert_eq!(*config.input(), InputConfig::Testsrc { width: 1280, height: 720, frames: 120 });
        assert_eq!(*config.output(), OutputConfig::Null);
        assert_eq!(config.plugins.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        // Exactly what the one-line command and the benchmark build for the same chain.
        let chain =
            Config::chain(config.file.clone(), config.input().clone(), config.plugins.clone(), config.output().clone());
        assert_eq!(config, chain);
        assert!(config.is_chain());
        assert_eq!(config.inputs(), std::slice::from_ref(config.input()));
        assert_eq!(config.graph().inputs()[0].name, "input");
        // One input may still be named, and say on_end.
        let named =
            load("[input]\nname = \"cam\"\non_end = \"hold_last\"\nkind = \"testsrc\"\n[output]\nkind = \"null\"\n")
                .unwrap();
        assert!(named.is_chain());
        assert_eq!(named.graph().inputs()[0].on_end, OnEnd::HoldLast);
    }

    const GRAPH: &str = r#"
[[input]]
name = "main"
kind = "video"
path = "in.mp4"
on_end = "hold_last"

[[input]]
name = "logo"
kind = "png"
path = "logo.png"

[[plugin]]
name = "soft"
path = "blur.wasm"

[[plugin]]
name = "mix"
path = "overlay.wasm"
inputs = ["soft", "logo"]

[[output]]
kind = "video"
path = "out.mp4"

[[output]]
name = "preview"
from = "main"
kind = "null"
"#;

    #[test]
    fn the_graph_form_loads_every_input_and_output() {
        use crate::graph::Node;
        let config = load(GRAPH).unwrap();
        assert!(!config.is_chain());
        assert_eq!(config.inputs().len(), 2);
        assert_eq!(*config.input(), config.inputs()[0], "input is the first");
        assert!(matches!(&config.inputs()[1], InputConfig::Png { path } if path.ends_with("logo.png")));
        assert_eq!(config.outputs()[1], OutputConfig::Null);
        assert_eq!(*config.output(), config.outputs()[0], "output is the first");
        let graph = config.graph();
        assert_eq!(graph.inputs()[0].on_end, OnEnd::HoldLast);
        assert_eq!(graph.inputs()[1].on_end, OnEnd::Stop);
        assert_eq!(graph.plugins()[0].inputs, [Node::Input(0)]);
        assert_eq!(graph.plugins()[1].inputs, [Node::Plugin(0), Node::Input(1)]);
        assert_eq!(graph.outputs()[0].from, Node::Plugin(1));
        assert_eq!(graph.outputs()[1].from, Node::Input(0));
        assert_eq!(graph.order(), [0, 1]);
    }

    #[test]
    fn graph_form_errors_name_the_key_the_node_and_the_file() {
        let err =
            load("[[input]]\nname = \"a\"\nkind = \"testsrc\"\nwidht = 3\n[output]\nkind = \"null\"\n").unwrap_err();
        assert!(err.starts_with("line 4, column 1: unknown field `widht`"), "{err}");
        let err =
            load("[input]\nkind = \"testsrc\"\n[[output]]\nkind = \"null\"\n[[output]]\nkind = \"nul\"\n").unwrap_err();
        assert!(err.starts_with("line 6, column 8: unknown variant `nul`"), "{err}");
        let err = load("[input]\nkind = \"testsrc\"\non_end = \"pause\"\n[output]\nkind = \"null\"\n").unwrap_err();
        assert!(
            err.starts_with("line 3, column 10: ") && err.contains("`pause`, expected `stop` or `hold_last`"),
            "{err}"
        );
        let err = load("input = 3\n[output]\nkind = \"null\"\n").unwrap_err();
        assert!(err.contains("expected a table or an array of tables"), "{err}");
        // Among several inputs or outputs, a problem with one says which.
        let second_png = GRAPH.replace("path = \"logo.png\"", "");
        assert_eq!(load(&second_png).unwrap_err(), "input #2 (\"logo\"): input.path is required for kind = \"png\"");
        let same_file =
            GRAPH.replace("from = \"main\"\nkind = \"null\"", "from = \"main\"\nkind = \"video\"\npath = \"out.mp4\"");
        let err = load(&same_file).unwrap_err();
        assert!(err.starts_with("output #2 (\"preview\"): output.path "), "{err}");
        assert!(err.ends_with("out.mp4 is output #1; the run would overwrite it"), "{err}");
        // The graph's own checks, through the file.
        let cycle = GRAPH.replace("path = \"blur.wasm\"", "path = \"blur.wasm\"\ninputs = [\"mix\"]");
        let err = load(&cycle).unwrap_err();
        assert!(err.starts_with("a cycle: soft -> mix -> soft"), "{err}");
        let error = Config::load(Path::new("/nonexistent/c.toml")).unwrap_err();
        assert!(error.to_string().starts_with("/nonexistent/c.toml: "), "the file comes first: {error}");
        let err = load(
            "[[input]]\nkind = \"testsrc\"\n[[input]]\nname = \"b\"\nkind = \"testsrc\"\n[output]\nkind = \"null\"\n",
        )
        .unwrap_err();
        assert_eq!(err, "input #1 has no name; with more than one input each needs one (name = \"…\")");
    }

    #[test]
    fn paths_are_relative_to_the_config() {
        let config = load(&format!("{MINIMAL}[[plugin]]\nname = \"a\"\npath = \"p/x.wasm\"\n")).unwrap();
        assert!(config.plugins[0].path.ends_with("p/x.wasm"));
        assert!(config.plugins[0].path.is_absolute() || config.plugins[0].path.starts_with(std::env::temp_dir()));
    }
}
