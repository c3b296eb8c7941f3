//! The command line's one-off form, `plugin-host run -i INPUT -o OUTPUT 'blur radius=5 ! flip'`,
//! turned into the same [`Config`] a TOML file gives (so every check applies); the plugin search
//! path that finds plugins by name; and `--set NAME.KEY=VALUE` overrides for a TOML config.

use crate::config::{
    Config, ConfigError, DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_WINDOW_S, InputConfig, OnError, OutputConfig,
    PluginConfig, RawFormat, check_size, param_value,
};
use plugin_host::ipc::protocol::Transport;
use plugin_host::process::Limits;
use plugin_host::sys::sandbox::Level as SandboxLevel;
use plugin_sdk::abi::ParamValue;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What names a config made from the command line in messages.
const ORIGIN: &str = crate::config::COMMAND_LINE;

/// The one-off form's arguments.
#[derive(Debug, Clone, Default)]
pub struct OneLine {
    pub input: String,
    pub output: String,
    /// `NAME key=value … ! NAME …`
    pub chain: String,
    /// What `-` carries (y4m, or raw frames in a pixel format); for raw files, their format.
    pub format: Option<StreamFormat>,
    /// Raw frames' size, `WxH`.
    pub size: Option<String>,
    /// Folders searched for `NAME.wasm` first.
    pub plugin_path: Vec<PathBuf>,
}

/// What a stream on stdin or stdout carries: y4m, or raw frames in a pixel format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    Y4m,
    Raw(RawFormat),
}

/// Where plugins are found by name, in order: the `--plugin-path` folders, `$PLUGIN_HOST_PATH`
/// (folders separated by `:`), then the plugins installed beside this binary
/// (`../share/plugin-host/plugins`, and `../plugins` as in cargo's `target/`).
pub fn search_path(flags: &[PathBuf]) -> Vec<PathBuf> {
    let mut path: Vec<PathBuf> = flags.to_vec();
    if let Some(env) = std::env::var_os("PLUGIN_HOST_PATH") {
        path.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
    }
    // A folder the user named that is not there is most likely a typo: say so.
    for dir in path.iter().filter(|dir| !dir.is_dir()) {
        tracing::warn!("plugin search path: {} is not a folder", dir.display());
    }
    if let Some(bin) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        for beside in [bin.join("../share/plugin-host/plugins"), bin.join("../plugins")] {
            path.push(std::fs::canonicalize(&beside).unwrap_or(beside));
        }
    }
    path
}

/// The first `NAME.wasm` on `path`.
pub fn find_plugin(name: &str, path: &[PathBuf]) -> Result<PathBuf, String> {
    if name.contains('/') || name.ends_with(".wasm") {
        return Ok(PathBuf::from(name));
    }
    path.iter().map(|dir| dir.join(format!("{name}.wasm"))).find(|p| p.is_file()).ok_or_else(|| {
        let searched: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
        let suggestion = plugin_host::schema::closest(&name.to_lowercase(), &names_on(path))
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        format!(
            "no plugin \"{name}\" on the search path{suggestion} ({}); add a folder with --plugin-path or \
             $PLUGIN_HOST_PATH, or see plugin-host list",
            searched.join(", ")
        )
    })
}

/// The names plugins on `path` are found by (their file names without `.wasm`).
pub fn names_on(path: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = path
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.filter_map(Result::ok))
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".wasm")).map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// One element of a chain as typed: the plugin's name and its `key=value`s.
pub type ChainElement = (String, Vec<(String, String)>);

/// `blur radius=5 ! flip axis=horizontal ! invert` → each plugin's name and its `key=value`s.
pub fn parse_chain(text: &str) -> Result<Vec<ChainElement>, String> {
    if text.trim().is_empty() {
        return Err("the chain is empty: name at least one plugin, for example 'invert'".into());
    }
    let mut chain = Vec::new();
    for (index, element) in text.split('!').enumerate() {
        let mut words = element.split_whitespace();
        let Some(name) = words.next() else {
            return Err(format!("the chain's element {} is empty (two `!` in a row, or one at an end)", index + 1));
        };
        let mut params = Vec::new();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .filter(|(key, _)| !key.is_empty())
                .ok_or_else(|| format!("\"{word}\" after \"{name}\" is not key=value"))?;
            if params.iter().any(|(k, _)| k == key) {
                return Err(format!("\"{key}\" is given twice for \"{name}\""));
            }
            params.push((key.to_string(), value.to_string()));
        }
        chain.push((name.to_string(), params));
    }
    Ok(chain)
}

/// A parameter's value as typed: an integer, a float, `true`/`false`, or else a string.
pub fn typed_value(key: &str, text: &str) -> Result<ParamValue, String> {
    match format!("value = {text}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("value")) {
        Some(value) => param_value(key, value),
        None => Ok(ParamValue::Str(text.to_string())),
    }
}

/// `WxH`.
fn parse_size(what: &str, text: &str) -> Result<(u32, u32), String> {
    let size = text.split_once('x').and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    let (width, height) = size.ok_or_else(|| format!("{what} \"{text}\" is not a size like 1280x720"))?;
    check_size(what, width, height)?;
    Ok((width, height))
}

fn input(line: &OneLine) -> Result<InputConfig, String> {
    let text = line.input.as_str();
    let path = PathBuf::from(text);
    let y4m = is_y4m(&path, line.format);
    let raw = raw_format(&path, line.format);
    if raw.is_none() && line.size.is_some() {
        return Err(format!("-i {text}: --size is for raw frames (- or a .rgba/.gray/.yuv file)"));
    }
    // --format may be the output's alone (`-o out.yuv --format nv12`).
    let output_takes_format = line.output == "-" || raw_format(Path::new(&line.output), None).is_some();
    if !y4m && raw.is_none() && line.format.is_some() && !output_takes_format {
        return Err(format!("-i {text}: --format is for - and raw files"));
    }
    // A .yuv file may hold any Y'CbCr layout; .rgba and .gray say theirs.
    let named = raw_format(&path, None).filter(|_| text != "-" && !has_extension(&path, "yuv"));
    if let (Some(StreamFormat::Raw(flag)), Some(named)) = (line.format, named)
        && flag != named
    {
        return Err(format!("-i {text}: --format disagrees with the file's name; drop one of them"));
    }
    if let Some(rest) = text.strip_prefix("testsrc").filter(|r| r.is_empty() || r.starts_with(':')) {
        let mut parts = rest.split(':').skip(1);
        let (width, height) = match parts.next() {
            Some(size) => parse_size("-i testsrc", size)?,
            None => (1280, 720),
        };
        let frames = match parts.next() {
            Some(n) => n.parse().map_err(|_| format!("-i {text}: \"{n}\" is not a frame count"))?,
            None => 120,
        };
        return Ok(InputConfig::Testsrc { width, height, frames });
    }
    if y4m {
        return Ok(InputConfig::Y4m { path });
    }
    if is_video(&path) {
        return Ok(InputConfig::Video { path, decoder_args: Vec::new() });
    }
    if let Some(format) = raw {
        let size = line.size.as_deref().ok_or_else(|| format!("-i {text}: raw frames need --size WxH"))?;
        let (width, height) = parse_size("--size", size)?;
        return Ok(InputConfig::Raw { path, width, height, format });
    }
    if path.is_dir() || has_extension(&path, "png") {
        return Ok(InputConfig::Png { path });
    }
    Err(format!(
        "-i {text}: cannot tell what it is from its name; give testsrc[:WxH[:N]], a video file (.mp4, .mkv, \
         .mov, …), a .y4m file, a .png file, a folder of PNG files, a .rgba/.gray/.yuv raw file, or - with --format y4m|rgba|gray|yuv420p|… (raw \
         frames also need --size WxH)"
    ))
}

fn output(line: &OneLine) -> Result<OutputConfig, String> {
    let path = PathBuf::from(&line.output);
    // A device or a FIFO (`/dev/null`, `mkfifo`) takes raw frames, written in place.
    let stream = std::fs::metadata(&path).is_ok_and(|m| !m.is_dir() && !m.is_file());
    Ok(match line.output.as_str() {
        "null" => OutputConfig::Null,
        _ if is_y4m(&path, line.format) => OutputConfig::Y4m { path },
        _ if is_video(&path) => OutputConfig::Video { path, encoder_args: Vec::new() },
        _ if stream
            || raw_format(&path, line.format).is_some()
            || matches!(line.format, Some(StreamFormat::Raw(_))) =>
        {
            // A raw file's name says its format (`.yuv`: yuv420p) unless --format does; `-`
            // carries frames as the chain gives them unless --format says.
            let format = match line.format {
                Some(StreamFormat::Raw(format)) => Some(format),
                _ if line.output != "-" => raw_format(&path, None),
                _ => None,
            };
            OutputConfig::Raw { path, format }
        }
        _ if path.extension().is_some() && !path.is_dir() && !has_extension(&path, "png") => {
            return Err(format!(
                "-o {}: cannot tell what it is from its name; give a video file (.mp4, .mkv, .mov, …), a .y4m file, a \
                 folder for PNG frames, a raw file (.rgba, .gray, .yuv, or any name with --format), - or null",
                line.output
            ));
        }
        _ => {
            crate::config::check_png_folder("-o", &path)?;
            OutputConfig::Png { path }
        }
    })
}

/// A file named like a video file (`.mp4`, `.mkv`, …): decoded or encoded by ffmpeg.
fn is_video(path: &Path) -> bool {
    crate::config::VIDEO_EXTENSIONS.iter().any(|e| has_extension(path, e))
}

/// `-` with `--format y4m`, or a file named `.y4m`.
fn is_y4m(path: &Path, flag: Option<StreamFormat>) -> bool {
    match path.to_str() {
        Some("-") => flag == Some(StreamFormat::Y4m),
        _ => has_extension(path, "y4m"),
    }
}

/// `-` (unless y4m), or a file named `.rgba`/`.gray`/`.yuv` (yuv420p): raw frames, in the
/// format `--format` or the name says.
fn raw_format(path: &Path, flag: Option<StreamFormat>) -> Option<RawFormat> {
    let named = |format| match flag {
        Some(StreamFormat::Raw(flag)) => Some(flag),
        _ => Some(format),
    };
    match path.to_str() {
        Some("-") if flag == Some(StreamFormat::Y4m) => None,
        Some("-") => named(RawFormat::Rgba),
        _ if has_extension(path, "rgba") => named(RawFormat::Rgba),
        _ if has_extension(path, "gray") => named(RawFormat::Gray),
        _ if has_extension(path, "yuv") => named(RawFormat::Yuv420p),
        _ => None,
    }
}

fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

/// The config the one-off form describes. Its plugins are named after their modules (`invert`,
/// a second one `invert-2`), with the defaults a TOML `[[plugin]]` table gets.
pub fn config(line: &OneLine) -> Result<Config, ConfigError> {
    let error = |message: String| ConfigError { file: ORIGIN.into(), message };
    let input = input(line).map_err(error)?;
    let output = output(line).map_err(error)?;
    let search = search_path(&line.plugin_path);
    let mut plugins: Vec<PluginConfig> = Vec::new();
    for (name, params) in parse_chain(&line.chain).map_err(error)? {
        let path = find_plugin(&name, &search).map_err(error)?;
        let base = path.file_stem().map_or(name.clone(), |s| s.to_string_lossy().into_owned());
        let taken = plugins.iter().filter(|p| p.name == base || p.name.starts_with(&format!("{base}-"))).count();
        let params = params
            .iter()
            .map(|(key, value)| typed_value(key, value).map(|v| (key.clone(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| error(format!("plugin \"{base}\": {why}")))?;
        plugins.push(PluginConfig {
            name: if taken == 0 { base } else { format!("{base}-{}", taken + 1) },
            path,
            limits: Limits::default(),
            on_error: OnError::Fail,
            max_restarts: DEFAULT_MAX_RESTARTS,
            restart_window: Duration::from_secs(DEFAULT_RESTART_WINDOW_S),
            transport: Transport::SharedMemory,
            sandbox: SandboxLevel::Standard,
            snapshot_input: false,
            state_every: 0,
            workers: None,
            params,
        });
    }
    let config = Config::chain(PathBuf::from(ORIGIN), input, plugins, output);
    if let Some((out, what)) = config.output_overwrites() {
        return Err(error(format!("-o {} is {what}; the run would overwrite it", out.display())));
    }
    Ok(config)
}

/// `--set NAME.KEY=VALUE`: sets a parameter of the plugin named NAME (checked against its schema
/// when the plugin starts, as the config's own are).
pub fn apply_sets(config: &mut Config, sets: &[String]) -> Result<(), ConfigError> {
    for set in sets {
        let parsed = set.split_once('=').and_then(|(target, value)| Some((target.split_once('.')?, value)));
        let Some(((name, key), value)) = parsed.filter(|((n, k), _)| !n.is_empty() && !k.is_empty()) else {
            return Err(config.error(format!("--set {set}: write NAME.KEY=VALUE")));
        };
        let value = typed_value(key, value).map_err(|why| config.error(format!("--set {set}: {why}")))?;
        let index = config.plugin_index(name).map_err(|why| config.error(format!("--set {set}: {why}")))?;
        let plugin = &mut config.plugins[index];
        plugin.params.retain(|(k, _)| k != key);
        plugin.params.push((key.to_string(), value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_and_values_parse_as_typed() {
        let chain = parse_chain("blur radius=5 ! flip axis=horizontal !invert").unwrap();
        assert_eq!(chain[0], ("blur".into(), vec![("radius".into(), "5".into())]));
        assert_eq!(chain[2], ("invert".into(), vec![]));
        assert!(parse_chain("blur ! ! invert").unwrap_err().contains("element 2 is empty"));
        assert!(parse_chain("blur radius").unwrap_err().contains("\"radius\" after \"blur\" is not key=value"));
        assert!(parse_chain("blur radius=5 radius=9").unwrap_err().contains("\"radius\" is given twice"));
        assert!(parse_chain("  ").unwrap_err().contains("the chain is empty"));
        assert_eq!(typed_value("r", "5").unwrap(), ParamValue::Int(5));
        assert_eq!(typed_value("c", "1.5").unwrap(), ParamValue::Float(1.5));
        assert_eq!(typed_value("b", "true").unwrap(), ParamValue::Bool(true));
        assert_eq!(typed_value("a", "horizontal").unwrap(), ParamValue::Str("horizontal".into()));
    }

    #[test]
    fn inputs_and_outputs_by_their_names() {
        let line =
            |input: &str, output: &str| OneLine { input: input.into(), output: output.into(), ..OneLine::default() };
        assert_eq!(
            input(&line("testsrc:64x48:7", "")).unwrap(),
            InputConfig::Testsrc { width: 64, height: 48, frames: 7 }
        );
        assert_eq!(
            input(&line("testsrc", "")).unwrap(),
            InputConfig::Testsrc { width: 1280, height: 720, frames: 120 }
        );
        assert!(input(&line("testsrc:0x4", "")).unwrap_err().contains("is not a frame size"));
        assert!(input(&line("-", "")).unwrap_err().contains("need --size WxH"));
        let raw =
            OneLine { size: Some("8x6".into()), format: Some(StreamFormat::Raw(RawFormat::Gray)), ..line("-", "") };
        assert_eq!(
            input(&raw).unwrap(),
            InputConfig::Raw { path: "-".into(), width: 8, height: 6, format: RawFormat::Gray }
        );
        assert!(input(&line("clip.xyz", "")).unwrap_err().contains("cannot tell what it is"));
        let video = InputConfig::Video { path: "clip.MOV".into(), decoder_args: Vec::new() };
        assert_eq!(input(&line("clip.MOV", "")).unwrap(), video);
        let out = output(&line("", "out.mp4")).unwrap();
        assert_eq!(out, OutputConfig::Video { path: "out.mp4".into(), encoder_args: Vec::new() });
        let sized = OneLine { size: Some("8x6".into()), ..line("testsrc", "") };
        assert!(input(&sized).unwrap_err().contains("--size is for raw frames"));
        let clash = OneLine {
            size: Some("8x6".into()),
            format: Some(StreamFormat::Raw(RawFormat::Gray)),
            ..line("a.rgba", "")
        };
        assert!(input(&clash).unwrap_err().contains("--format disagrees with the file's name"));
        assert_eq!(
            output(&line("", "/dev/null")).unwrap(),
            OutputConfig::Raw { path: "/dev/null".into(), format: None }
        );
        assert_eq!(output(&line("", "null")).unwrap(), OutputConfig::Null);
        assert_eq!(output(&line("", "-")).unwrap(), OutputConfig::Raw { path: "-".into(), format: None });
        let y4m = OneLine { format: Some(StreamFormat::Y4m), ..line("-", "-") };
        assert_eq!(input(&y4m).unwrap(), InputConfig::Y4m { path: "-".into() });
        assert_eq!(output(&y4m).unwrap(), OutputConfig::Y4m { path: "-".into() });
        assert_eq!(input(&line("in.y4m", "")).unwrap(), InputConfig::Y4m { path: "in.y4m".into() });
        assert_eq!(output(&line("", "out.Y4M")).unwrap(), OutputConfig::Y4m { path: "out.Y4M".into() });
        let sized_y4m = OneLine { size: Some("8x6".into()), ..line("in.y4m", "") };
        assert!(input(&sized_y4m).unwrap_err().contains("--size is for raw frames"));
        let yuv = OneLine { size: Some("8x6".into()), ..line("clip.yuv", "") };
        assert_eq!(
            input(&yuv).unwrap(),
            InputConfig::Raw { path: "clip.yuv".into(), width: 8, height: 6, format: RawFormat::Yuv420p }
        );
        assert_eq!(output(&line("", "frames")).unwrap(), OutputConfig::Png { path: "frames".into() });
        assert!(output(&line("", "a.png")).unwrap_err().contains("a png output is a folder of frame-000001.png"));
    }
}
