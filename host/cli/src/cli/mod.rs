//! The `plugin-host` command line: arguments, dispatch, progress and the run's summary.

mod sandbox;

use crate::config::{Config, OutputConfig, RawFormat};
use crate::io::MediaError;
use crate::oneline::{OneLine, StreamFormat};
use crate::pipeline::{Prepared, Progress, RunError, RunOptions};
use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plugin_host::runner;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "plugin-host", version, about = "Run untrusted WebAssembly media plugins, each in its own process")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline config: an input, a chain of plugins, an output; or a graph of several.
    ///
    /// Exit status: 0 done, 1 a failure while running (the message says what, and where the
    /// frames completed so far are), 2 a bad config or bad input found before any frame ran,
    /// 130 interrupted (SIGINT/SIGTERM).
    #[command(after_help = "\
A chain without a config file (plugins found by name on the search path: --plugin-path,
$PLUGIN_HOST_PATH, then the plugins installed beside plugin-host):

  plugin-host run -i testsrc:1280x720:60 -o frames 'blur radius=5 ! flip axis=horizontal ! invert'
  ffmpeg -i in.mp4 -f yuv4mpegpipe - | \\
    plugin-host run -i - -o - --format y4m 'invert' | ffmpeg -i - out.mp4

INPUT: testsrc[:WxH[:N]], a video file (.mp4, .mkv, .mov, .webm, …; decoded by ffmpeg), a .y4m
file, a .png file, a folder of PNG files, a .rgba/.gray/.yuv raw file, or - (stdin: y4m with
--format y4m, else raw frames); raw frames need --size WxH. OUTPUT: a video file (encoded by
ffmpeg, the input video's audio copied), a .y4m file, a folder (PNG frames), a raw file (.rgba,
.gray, .yuv, or any name with --format), - (stdout) or null. One --format serves - on both sides.
Frames are converted where a plugin or the output takes another format, and the run says so. Each plugin's key=value parameters are checked
against its schema, as in a config file.")]
    Run {
        /// The pipeline config (TOML; paths in it are relative to its folder), or with -i and -o
        /// the chain: 'NAME key=value … ! NAME …'.
        config: String,
        /// The chain's input (see below); with -o, the positional argument is the chain.
        #[arg(short, long, value_name = "INPUT", requires = "output")]
        input: Option<String>,
        /// The chain's output (see below).
        #[arg(short, long, value_name = "OUTPUT", requires = "input")]
        output: Option<String>,
        /// What - carries: y4m, or raw frames in a pixel format (also for raw files).
        #[arg(long, value_enum, value_name = "y4m|rgba|gray|yuv420p|nv12|yuv420p10le")]
        format: Option<StreamFormatArg>,
        /// Raw frames' size, WxH.
        #[arg(long, value_name = "WxH")]
        size: Option<String>,
        /// A folder searched for plugins by name, before $PLUGIN_HOST_PATH (may be repeated).
        #[arg(long, value_name = "DIR", requires = "input")]
        plugin_path: Vec<PathBuf>,
        /// With a config file: set a plugin's parameter, NAME.KEY=VALUE (may be repeated).
        #[arg(long, value_name = "NAME.KEY=VALUE", conflicts_with = "input")]
        set: Vec<String>,
        /// Stop after this many input frames.
        #[arg(long)]
        frames: Option<u64>,
        /// Also write the statistics as JSON to this file.
        #[arg(long, value_name = "PATH")]
        stats_json: Option<PathBuf>,
        /// Change plugins' parameters while running, as this file lists: [[change]] tables of
        /// at_ms, plugin and params, each applied from the first frame at or after its time.
        #[arg(long, value_name = "FILE")]
        changes: Option<PathBuf>,
        /// Serve live metrics (OpenMetrics text at /metrics) at this address while the run
        /// lasts, for Prometheus: 127.0.0.1:9100, or 127.0.0.1:0 for a free port.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
        /// Serve the metrics and a control API at this address: POST /params with
        /// {"plugin": NAME, "params": {...}} changes a plugin's parameters from its next frame.
        /// Requests that change anything need the token printed at start.
        #[arg(long, value_name = "ADDR", conflicts_with = "metrics")]
        control: Option<String>,
        /// Serve the control API and a page showing any node's latest frame, with controls for
        /// every plugin's parameters, at this address (default a free loopback port; the page's
        /// address, with its token, is printed).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0", conflicts_with_all = ["metrics", "control"])]
        preview: Option<String>,
        /// How many frames per second of each node the preview keeps.
        #[arg(long, value_name = "N", default_value_t = 5, requires = "preview")]
        preview_fps: u32,
        /// Load a plugin's module again when its file changes, and swap it in while running
        /// (same parameters and output shape, or it goes on as before).
        #[arg(long)]
        watch: bool,
        /// With --watch: swap a changed module in only if it passes this folder of golden cases
        /// (as `plugin-host test MODULE DIR`).
        #[arg(long, value_name = "DIR", requires = "watch")]
        watch_check: Option<PathBuf>,
        /// More log output (plugin debug lines included).
        #[arg(short, long, conflicts_with = "quiet")]
        verbose: bool,
        /// Only warnings and errors; no progress, no table.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show each layer of the OS sandbox a plugin process gets on this machine.
    Sandbox {
        /// Also list the allowed system calls and why each is needed.
        #[arg(long)]
        syscalls: bool,
    },
    /// Show a plugin's name, version, frame formats and parameters.
    Inspect {
        plugin: PathBuf,
        /// Print JSON for tools.
        #[arg(long)]
        json: bool,
        /// Show the plugin's own log lines (info and debug); without it only its warnings and errors.
        #[arg(short, long)]
        verbose: bool,
    },
    /// List the plugins on the search path (--plugin-path, $PLUGIN_HOST_PATH, then those
    /// installed beside plugin-host): name, version, formats, description.
    List {
        /// A folder searched first (may be repeated).
        #[arg(long, value_name = "DIR")]
        plugin_path: Vec<PathBuf>,
        /// Print JSON for tools: one object per plugin, as `inspect --json`, with its `path`.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (cargo xtask install writes them where shells look).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), made from these arguments' own descriptions: plugin-host(1),
    /// or with a subcommand's name its own page, plugin-host-NAME(1).
    #[command(hide = true)]
    Man { subcommand: Option<String> },
    /// Create a plugin crate: an example filter with a parameter, unit and golden-image tests.
    New(crate::authoring::NewArgs),
    /// Run a plugin alone in its real process on a PNG and compare with an expected PNG (exit 0
    /// match, 1 mismatch, 2 bad usage), or run a folder of golden cases.
    Test(crate::authoring::TestArgs),
}

/// The binary's main: runner mode when started as one, else the command line.
pub fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == plugin_host::ipc::protocol::RUNNER_ARG) {
        return runner::main();
    }
    let cli = Cli::parse();
    let level = match &cli.command {
        Command::Run { verbose: true, .. } => "debug",
        Command::Run { quiet: true, .. } => "warn",
        // A plugin's chatter is not what inspect and test are asked for.
        Command::Inspect { verbose: false, .. } => "warn",
        Command::Test(args) if !args.verbose => "warn",
        Command::Inspect { verbose: true, .. } | Command::Test(_) => "debug",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLUGIN_HOST_LOG").unwrap_or_else(|_| level.into());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(filter)
        .init();
    if !matches!(cli.command, Command::Run { .. }) {
        // A reader that goes away (`| head`) ends these commands quietly.
        let _ = plugin_host::sys::signals::default_sigpipe();
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            config,
            input,
            output,
            format,
            size,
            plugin_path,
            set,
            frames,
            stats_json,
            metrics,
            control,
            preview,
            preview_fps,
            watch,
            watch_check,
            changes,
            quiet,
            ..
        } => {
            let loaded = match (input, output) {
                (Some(input), Some(output)) => {
                    let format = format.map(StreamFormatArg::format);
                    crate::oneline::config(&OneLine { input, output, chain: config, format, size, plugin_path })
                }
                _ => Config::load(Path::new(&config)).and_then(|mut config| {
                    crate::oneline::apply_sets(&mut config, &set)?;
                    Ok(config)
                }),
            };
            match loaded {
                Ok(config) => {
                    let changes = match &changes {
                        None => Ok(Vec::new()),
                        Some(file) => crate::config::load_changes(file, &config),
                    };
                    match changes {
                        Ok(changes) => {
                            let serve = match (metrics, control, preview) {
                                (Some(addr), _, _) => Some(Serve { addr, control: false, preview: None }),
                                (None, Some(addr), _) => Some(Serve { addr, control: true, preview: None }),
                                (None, None, Some(addr)) => {
                                    Some(Serve { addr, control: true, preview: Some(preview_fps.clamp(1, 60)) })
                                }
                                (None, None, None) => None,
                            };
                            let watch = watch.then_some(watch_check);
                            run_config(config, frames, stats_json, serve, changes, watch, quiet)
                        }
                        Err(err) => {
                            eprintln!("error: {err}");
                            Ok(ExitCode::from(2))
                        }
                    }
                }
                Err(err) => {
                    let err = RunError::from(err);
                    eprintln!("error: {err}");
                    Ok(ExitCode::from(err.exit_code()))
                }
            }
        }
        Command::Sandbox { syscalls } => Ok(sandbox::print(syscalls, &mut std::io::stdout())?),
        Command::New(args) => Ok(crate::authoring::scaffold::command(&args)),
        Command::List { plugin_path, json } => Ok(list(&plugin_path, json)),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "plugin-host", &mut script);
            emit(&script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { subcommand } => {
            let command = <Cli as clap::CommandFactory>::command();
            let man = match &subcommand {
                None => clap_mangen::Man::new(command),
                Some(name) => match command.find_subcommand(name) {
                    Some(sub) => clap_mangen::Man::new(sub.clone()).title(format!("plugin-host-{name}")),
                    None => anyhow::bail!("no subcommand \"{name}\""),
                },
            };
            let mut page = Vec::new();
            man.render(&mut page)?;
            emit(&page);
            Ok(ExitCode::SUCCESS)
        }
        Command::Test(args) => Ok(crate::authoring::golden::command(&args)),
        Command::Inspect { plugin, json, .. } => match crate::authoring::inspect::render(&plugin, json) {
            Ok(text) => {
                emit(text.as_bytes());
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                eprintln!("error: {err}");
                // As for `test`: a plugin that fails in its own init is a failure, anything
                // else (no such file, not a plugin) bad input.
                let init_failed = err.kind.start_failure() == plugin_host::process::StartFailure::Init;
                Ok(ExitCode::from(if init_failed { 1 } else { 2 }))
            }
        },
    }
}

/// Writes to stdout; a reader that has gone (`plugin-host list | head`) ends the output quietly
/// instead of panicking as `print!` would.
fn emit(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

/// `plugin-host list`: each `NAME.wasm` on the search path, the first of a name only (as a
/// shell's PATH), loaded in its process to read what it says about itself.
fn list(flags: &[PathBuf], json: bool) -> ExitCode {
    let mut seen = std::collections::BTreeSet::new();
    let mut found = Vec::new();
    for dir in crate::oneline::search_path(flags) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut modules: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
            .collect();
        modules.sort();
        for module in modules {
            let name = module.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if seen.insert(name) {
                found.push(module);
            }
        }
    }
    let mut failed = false;
    let mut objects = Vec::new();
    for module in &found {
        match crate::authoring::inspect::describe(module) {
            Ok(description) if json => {
                let mut object: serde_json::Value =
                    serde_json::from_str(&crate::authoring::inspect::to_json(&description)).unwrap_or_default();
                object["path"] = module.display().to_string().into();
                objects.push(object);
            }
            Ok(description) => {
                let found_as = module.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let line = crate::authoring::inspect::list_line(&found_as, &description);
                emit(format!("{line}  {}\n", module.display()).as_bytes())
            }
            Err(err) => {
                failed = true;
                eprintln!("error: {}: {err}", module.display());
            }
        }
    }
    if json {
        emit(format!("{}\n", serde_json::to_string_pretty(&objects).unwrap_or_default()).as_bytes());
    } else if found.is_empty() {
        eprintln!("no plugins on the search path; add a folder with --plugin-path or $PLUGIN_HOST_PATH");
    }
    ExitCode::from(u8::from(failed))
}

/// `--format` on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StreamFormatArg {
    Y4m,
    Rgba,
    Gray,
    Yuv420p,
    Nv12,
    #[value(name = "yuv420p10le", alias = "yuv420p10")]
    Yuv420p10le,
}

impl StreamFormatArg {
    fn format(self) -> StreamFormat {
        StreamFormat::Raw(match self {
            StreamFormatArg::Y4m => return StreamFormat::Y4m,
            StreamFormatArg::Rgba => RawFormat::Rgba,
            StreamFormatArg::Gray => RawFormat::Gray,
            StreamFormatArg::Yuv420p => RawFormat::Yuv420p,
            StreamFormatArg::Nv12 => RawFormat::Nv12,
            StreamFormatArg::Yuv420p10le => RawFormat::Yuv420p10le,
        })
    }
}

/// `--watch`: looks at every plugin's module file a few times a second, and when one has
/// changed (and stayed the same for one look, so a half-written file is not taken) swaps it in.
/// With `check`, a changed module is swapped in only if it passes that folder of golden cases.
fn watch_modules(config: &Config, live: crate::pipeline::Live, check: Option<PathBuf>) {
    let modules: Vec<(String, PathBuf)> = config.plugins.iter().map(|p| (p.name.clone(), p.path.clone())).collect();
    let stamp = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.modified().ok(), m.len()));
    let _ = std::thread::Builder::new().name("watch".into()).spawn(move || {
        let mut seen: Vec<_> = modules.iter().map(|(_, path)| stamp(path)).collect();
        let mut last = seen.clone();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(300));
            for (k, (name, path)) in modules.iter().enumerate() {
                let now = stamp(path);
                if now.is_some() && now == last[k] && now != seen[k] {
                    seen[k] = now;
                    let checked = match &check {
                        Some(cases) => crate::authoring::golden::check_cases(path, cases),
                        None => Ok(()),
                    };
                    if let Err(why) = checked {
                        tracing::warn!(
                            "plugin \"{name}\": {} changed but fails its check, so it is not swapped in: {why}",
                            path.display()
                        );
                        continue;
                    }
                    match live.swap(name, path) {
                        Ok(()) => tracing::info!("plugin \"{name}\": {} changed; loading it", path.display()),
                        Err(e) if e.contains("has stopped") => return,
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
                last[k] = now;
            }
        }
    });
}

/// What `run` serves while it runs: metrics, the control API, the preview page.
struct Serve {
    addr: String,
    control: bool,
    /// The preview's frames per second, when it is on.
    preview: Option<u32>,
}

fn run_config(
    config: Config,
    frames: Option<u64>,
    stats_json: Option<PathBuf>,
    serve: Option<Serve>,
    changes: Vec<crate::config::ParamChange>,
    watch: Option<Option<PathBuf>>,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let fail = |err: RunError| {
        eprintln!("error: {err}");
        // Stopped while starting (a stalled input): still an interrupt.
        let interrupted = plugin_host::sys::signals::stop_requested();
        Ok(ExitCode::from(if interrupted { RunError::Interrupted.exit_code() } else { err.exit_code() }))
    };
    if let Some(json) = &stats_json {
        let problem = if json.is_dir() {
            Some("is a folder; give a file name".to_string())
        } else if let Some(folder) = crate::config::missing_folder(json) {
            Some(format!("its folder {} does not exist", folder.display()))
        } else {
            config.overwritten_by(json).map(|what| format!("is {what}; the statistics would overwrite it"))
        };
        if let Some(problem) = problem {
            return fail(config.error(format!("--stats-json {}: {problem}", json.display())).into());
        }
    }
    plugin_host::sys::signals::install_stop_handlers().context("installing the SIGINT/SIGTERM handlers")?;
    let live = match &serve {
        None => watch.is_some().then(crate::pipeline::Live::default),
        Some(Serve { addr, control, preview }) => {
            let live = crate::pipeline::Live::default();
            let token = match control {
                true => Some(crate::metrics::new_token().context("making the control token")?),
                false => None,
            };
            if let Some(fps) = preview {
                live.keep_frames(std::time::Duration::from_millis(1000 / *fps as u64));
            }
            let check: crate::metrics::SwapCheck = std::sync::Arc::new(crate::authoring::golden::check_cases);
            match crate::metrics::serve(addr, live.clone(), token.clone(), preview.is_some(), check) {
                Ok(bound) => match (token, preview) {
                    (Some(token), Some(_)) => eprintln!(
                        "preview: http://{bound}/#token={token} (control: docs/control.md, metrics: http://{bound}/metrics)"
                    ),
                    (Some(token), None) => {
                        eprintln!(
                            "control: http://{bound}/ (docs/control.md), metrics: http://{bound}/metrics, token: {token}"
                        )
                    }
                    (None, _) => eprintln!("metrics: http://{bound}/metrics"),
                },
                Err(message) => return fail(config.error(message).into()),
            }
            Some(live)
        }
    };
    let prepared =
        match Prepared::new(&config, RunOptions { max_frames: frames, runner: None, live: live.clone(), changes }) {
            Ok(prepared) => prepared,
            Err(err) => return fail(err),
        };
    if let (Some(check), Some(live)) = (watch, &live) {
        watch_modules(&config, live.clone(), check);
    }
    let to_stdout = prepared.output_is_stdout();
    // A file or folder holds frames after the run; a stream (stdout, a FIFO) or null does not.
    let output_holds_frames = match config.output() {
        OutputConfig::Png { .. } | OutputConfig::Video { .. } => true,
        OutputConfig::Raw { path, .. } | OutputConfig::Y4m { path } => {
            !to_stdout && std::fs::metadata(path).map_or(true, |m| m.is_file())
        }
        OutputConfig::Null => false,
    };
    let sandbox = prepared.sandbox_summary();
    let mut progress = ProgressReport::new(quiet);
    let (stats, result) = prepared.run(&mut progress);
    if let Some(json) = &stats_json {
        let text = serde_json::to_string_pretty(&stats).context("encoding the statistics")?;
        std::fs::write(json, text).with_context(|| format!("cannot write the statistics to {}", json.display()))?;
    }
    if !quiet {
        let mut table = Vec::new();
        stats.print_table(&mut table)?;
        writeln!(table, "{sandbox}")?;
        if to_stdout {
            std::io::stderr().write_all(&table)?;
        } else {
            std::io::stdout().write_all(&table)?;
        }
    }
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            match &err {
                RunError::Media(MediaError::Write { path, source })
                    if source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    eprintln!(
                        "error: the reader of {} closed it (broken pipe); the output stops there",
                        path.display()
                    );
                }
                _ => eprintln!("error: {err}"),
            }
            let ending = if plugin_host::sys::signals::stop_requested() { "interrupt" } else { "failure" };
            match &stats.output_kept_aside {
                // Nothing this run made was put in place (no frame, or a video that failed to
                // encode): nothing to claim.
                None if !output_holds_frames || !stats.output_written => {}
                None => eprintln!("the output holds the {} frame(s) completed before the {ending}", stats.frames_out),
                Some(kept) => eprintln!(
                    "the output that was already there is untouched; the {} frame(s) completed before the {ending} \
                     are in {}",
                    stats.frames_out,
                    kept.display()
                ),
            }
            // Ctrl-C on a shell pipeline stops its neighbours too, so the error may be theirs (a
            // closed pipe): the run was still interrupted.
            let interrupted = plugin_host::sys::signals::stop_requested();
            Ok(ExitCode::from(if interrupted { RunError::Interrupted.exit_code() } else { err.exit_code() }))
        }
    }
}

/// A progress bar on a terminal; otherwise a status line every few seconds.
struct ProgressReport {
    quiet: bool,
    bar: Option<ProgressBar>,
    total: Option<u64>,
    started: Instant,
    last_line: Instant,
}

impl ProgressReport {
    fn new(quiet: bool) -> Self {
        Self { quiet, bar: None, total: None, started: Instant::now(), last_line: Instant::now() }
    }
}

/// The status line printed when stderr is no terminal: frames, rate, and with a known total the
/// share done and the time left.
fn status_line(frames_out: u64, elapsed: Duration, total: Option<u64>) -> String {
    let fps = frames_out as f64 / elapsed.as_secs_f64().max(1e-9);
    match total {
        Some(total) if total > 0 => {
            let left = total.saturating_sub(frames_out) as f64 / fps.max(1e-9);
            let percent = 100.0 * frames_out as f64 / total as f64;
            format!(
                "plugin-host: {frames_out} of {total} frames ({percent:.0}%), {fps:.1} frames/s, about {left:.0} s left"
            )
        }
        _ => format!("plugin-host: {frames_out} frames, {fps:.1} frames/s"),
    }
}

impl Progress for ProgressReport {
    fn start(&mut self, total: Option<u64>) {
        self.started = Instant::now();
        self.last_line = Instant::now();
        self.total = total;
        if let (false, true, Some(total)) = (self.quiet, std::io::stderr().is_terminal(), total) {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = "{bar:40} {pos}/{len} frames ({percent}%), {per_sec}, eta {eta}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
    }
    fn frame_done(&mut self, frames_out: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(frames_out),
            None if !self.quiet && self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                eprintln!("{}", status_line(frames_out, self.started.elapsed(), self.total));
            }
            None => {}
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_gives_share_and_time_left_when_the_total_is_known() {
        let line = status_line(250, Duration::from_secs(5), Some(1000));
        assert_eq!(line, "plugin-host: 250 of 1000 frames (25%), 50.0 frames/s, about 15 s left");
        assert_eq!(status_line(10, Duration::from_secs(2), None), "plugin-host: 10 frames, 5.0 frames/s");
    }
}
