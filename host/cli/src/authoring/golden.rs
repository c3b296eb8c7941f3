//! `plugin-host test`: runs a plugin module alone, in its real (sandboxed) plugin process, on a
//! PNG and compares the output with an expected PNG, or writes it. Also runs a folder of cases
//! (`NAME.in.png`, `NAME.expected.png`, optional `NAME.params.toml`).
//!
//! Exit status: 0 every case matched (or the output was written), 1 a mismatch or a plugin
//! failure, 2 bad usage (missing or unreadable files, bad parameters, not a plugin).

use super::plugin_name;
use crate::config::{missing_folder, same_file};
use crate::io::png_io;
use plugin_host::process::{PluginProcess, PluginSpec, StartFailure};
use plugin_host::schema::{ParamError, PluginDescription, parse_assignment};
use plugin_sdk::abi::ParamValue;
use plugin_sdk::testing::{self, GoldenError};
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `plugin-host test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The plugin module (.wasm).
    pub plugin: PathBuf,
    /// A folder of cases: NAME.in.png, NAME.expected.png and optionally NAME.params.toml
    /// (parameters as `key = value`, over those given with --param).
    pub cases: Option<PathBuf>,
    /// The input image.
    #[arg(long, value_name = "IN.png")]
    pub input: Option<PathBuf>,
    /// The expected output image to compare with.
    #[arg(long, value_name = "EXPECTED.png")]
    pub expect: Option<PathBuf>,
    /// Write the output image here instead of comparing (to create an expected image).
    #[arg(long, value_name = "OUT.png")]
    pub output: Option<PathBuf>,
    /// A parameter, typed by the plugin's schema; repeat for more.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Largest difference allowed per channel (0..=255).
    #[arg(long, default_value_t = 0)]
    pub tolerance: u8,
    /// Write NAME.actual.png and NAME.diff.png of mismatches into this folder instead of beside
    /// the expected files.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Show the plugin's own log lines (info and debug); without it only its warnings and errors.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Why `plugin-host test` stopped or a case failed.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The command was used wrongly (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The plugin failed or its output did not match (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl TestError {
    fn exit_code(&self) -> u8 {
        match self {
            TestError::Usage(_) => 2,
            TestError::Failed(_) => 1,
        }
    }
}

/// Runs the command, printing results on stdout and errors on stderr; returns the exit status.
pub fn command(args: &TestArgs) -> ExitCode {
    let result = match &args.cases {
        Some(folder) => run_folder(args, folder),
        None => run_single(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// Runs `plugin` on the folder of cases `cases` as `plugin-host test PLUGIN CASES` does (each
/// case's result in the log, never on stdout); the error says which failed. Used to check a module before it is
/// swapped into a running pipeline.
pub fn check_cases(plugin: &Path, cases: &Path) -> Result<(), String> {
    let args = TestArgs {
        plugin: plugin.to_path_buf(),
        cases: Some(cases.to_path_buf()),
        input: None,
        expect: None,
        output: None,
        params: Vec::new(),
        tolerance: 0,
        // Mismatch pictures go to a folder of the host's, never into the caller's cases.
        report: Some(std::env::temp_dir().join(format!("plugin-host-check-{}", std::process::id()))),
        verbose: false,
    };
    if let Some(report) = &args.report {
        let _ = std::fs::create_dir_all(report);
    }
    run_folder_saying(&args, cases, &|line| tracing::info!("{}: {line}", plugin.display())).map_err(|e| e.to_string())
}

fn usage(message: impl Into<String>) -> TestError {
    TestError::Usage(message.into())
}

fn run_single(args: &TestArgs) -> Result<(), TestError> {
    let input = args
        .input
        .as_deref()
        .ok_or_else(|| usage("give the input image with --input IN.png (or a folder of cases after the plugin)"))?;
    let target = match (&args.expect, &args.output) {
        (Some(expect), None) => Target::Expect(expect),
        (None, Some(output)) => Target::Output(output),
        (Some(_), Some(_)) => return Err(usage("give either --expect or --output, not both")),
        (None, None) => {
            return Err(usage("give --expect EXPECTED.png to compare, or --output OUT.png to write the output"));
        }
    };
    let plugin = Plugin::open(args)?;
    let frame = read_input(input)?;
    match target {
        Target::Expect(expect) => check_image_path("expected", expect)?,
        Target::Output(output) => {
            let what = if same_file(output, input) {
                Some("the input image")
            } else if same_file(output, &args.plugin) {
                Some("the plugin")
            } else {
                None
            };
            if let Some(what) = what {
                return Err(usage(format!("--output {} is {what}; the output would overwrite it", output.display())));
            }
        }
    }
    let report = report_dir(args)?;
    let actual = plugin.run(&plugin.params, &frame)?;
    match target {
        Target::Output(path) => {
            testing::write_png(path, &actual).map_err(|e| usage(e.to_string()))?;
            println!("wrote {} ({}x{} {})", path.display(), actual.width, actual.height, actual.format.name());
            Ok(())
        }
        Target::Expect(expect) => match testing::check_png(&actual, expect, args.tolerance, report.as_deref()) {
            Ok(comparison) => {
                println!("ok: {}: {comparison}", expect.display());
                Ok(())
            }
            Err(err @ GoldenError::Mismatch { .. }) => {
                println!("FAIL: {err}");
                Err(TestError::Failed(format!("the output of {} does not match", plugin.name)))
            }
            Err(GoldenError::Image(err)) => Err(usage(err.to_string())),
        },
    }
}

enum Target<'a> {
    Expect(&'a Path),
    Output(&'a Path),
}

fn run_folder(args: &TestArgs, folder: &Path) -> Result<(), TestError> {
    run_folder_saying(args, folder, &|line| println!("{line}"))
}

/// [`run_folder`], each case's result given to `say` (stdout for the command; the log when a
/// running pipeline checks a module, whose stdout may be its video output).
fn run_folder_saying(args: &TestArgs, folder: &Path, say: &dyn Fn(String)) -> Result<(), TestError> {
    if args.input.is_some() || args.expect.is_some() || args.output.is_some() {
        return Err(usage("a folder of cases takes no --input, --expect or --output: each case has its own files"));
    }
    let entries = std::fs::read_dir(folder)
        .map_err(|e| usage(format!("cannot read the folder of cases {}: {e}", folder.display())))?;
    let names: Vec<String> =
        entries.filter_map(Result::ok).filter_map(|e| e.file_name().to_str().map(str::to_string)).collect();
    let mut cases: Vec<String> = names.iter().filter_map(|n| n.strip_suffix(".in.png")).map(str::to_string).collect();
    cases.sort();
    if cases.is_empty() {
        return Err(usage(format!("{} holds no cases (files named NAME.in.png)", folder.display())));
    }
    // A case file without its input is most likely a misspelt name: it would silently not count.
    let mut orphans = names.iter().filter(|n| {
        [".expected.png", ".params.toml"]
            .iter()
            .any(|suffix| n.strip_suffix(suffix).is_some_and(|case| !cases.iter().any(|c| c == case)))
    });
    if let Some(orphan) = orphans.next() {
        let case =
            orphan.strip_suffix(".expected.png").or_else(|| orphan.strip_suffix(".params.toml")).unwrap_or(orphan);
        return Err(usage(format!(
            "{}: there is no {case}.in.png for it (a misspelt case name?)",
            folder.join(orphan).display()
        )));
    }
    let plugin = Plugin::open(args)?;
    let report = report_dir(args)?;
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for case in &cases {
        match run_case(&plugin, folder, case, args.tolerance, report.as_deref()) {
            Ok(comparison) => {
                passed += 1;
                say(format!("ok    {case}: {comparison}"));
            }
            Err(err) => {
                match err {
                    TestError::Usage(_) => broken += 1,
                    TestError::Failed(_) => failed += 1,
                }
                say(format!("FAIL  {case}: {err}"));
            }
        }
    }
    say(format!("{} case(s): {passed} passed, {} failed", cases.len(), failed + broken));
    match (broken, failed) {
        (0, 0) => Ok(()),
        (0, _) => Err(TestError::Failed(format!("{failed} of {} case(s) failed", cases.len()))),
        _ => Err(usage(format!("{broken} of {} case(s) could not run: see above", cases.len()))),
    }
}

fn run_case(
    plugin: &Plugin,
    folder: &Path,
    case: &str,
    tolerance: u8,
    report: Option<&Path>,
) -> Result<testing::Comparison, TestError> {
    let input = read_input(&folder.join(format!("{case}.in.png")))?;
    let expected = folder.join(format!("{case}.expected.png"));
    if !expected.is_file() {
        return Err(usage(format!("{} is missing", expected.display())));
    }
    let params_file = folder.join(format!("{case}.params.toml"));
    let mut params = plugin.params.clone();
    if params_file.exists() {
        for (name, value) in read_params_file(&params_file)? {
            params.retain(|(n, _)| *n != name);
            params.push((name, value));
        }
        plugin
            .description
            .resolve_params(&params)
            .map_err(|e| usage(format!("{}: plugin \"{}\": {e}", params_file.display(), plugin.name)))?;
    }
    let actual = plugin.run(&params, &input)?;
    testing::check_png(&actual, &expected, tolerance, report).map_err(|err| match err {
        GoldenError::Image(e) => usage(e.to_string()),
        mismatch => TestError::Failed(mismatch.to_string()),
    })
}

/// `key = value` lines of a case's parameter file.
fn read_params_file(path: &Path) -> Result<Vec<(String, ParamValue)>, TestError> {
    let text = std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| usage(format!("{}: {}", path.display(), e.message())))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value =
                crate::config::param_value(&key, value).map_err(|why| usage(format!("{}: {why}", path.display())))?;
            Ok((key, value))
        })
        .collect()
}

fn read_input(path: &Path) -> Result<OwnedFrame, TestError> {
    check_image_path("input", path)?;
    png_io::decode_keeping_gray(path).map_err(|e| usage(e.to_string()))
}

/// An image given on the command line must be a file: says which one is wrong, and how.
fn check_image_path(role: &str, path: &Path) -> Result<(), TestError> {
    if path.is_dir() {
        return Err(usage(format!("the {role} image {} is a folder, not a PNG file", path.display())));
    }
    if !path.is_file() {
        return Err(usage(format!("the {role} image {} does not exist", path.display())));
    }
    Ok(())
}

/// The `--report` folder, checked: made only when a mismatch is written into it.
fn report_dir(args: &TestArgs) -> Result<Option<PathBuf>, TestError> {
    let Some(dir) = &args.report else { return Ok(None) };
    let refuse = |why: String| Err(usage(format!("--report {}: {why}", dir.display())));
    if dir.exists() && !dir.is_dir() {
        return refuse("is a file, not a folder".into());
    }
    if let Some(parent) = missing_folder(dir) {
        return refuse(format!("its folder {} does not exist", parent.display()));
    }
    Ok(Some(dir.clone()))
}

/// The module under test, its description and the parameters given on the command line.
struct Plugin {
    name: String,
    module: PathBuf,
    description: PluginDescription,
    params: Vec<(String, ParamValue)>,
}

impl Plugin {
    /// Loads the module once to read its schema, and types `--param` values by it.
    fn open(args: &TestArgs) -> Result<Self, TestError> {
        let name = plugin_name(&args.plugin);
        if !args.plugin.is_file() {
            return Err(usage(format!("the plugin {} does not exist", args.plugin.display())));
        }
        let process = PluginProcess::spawn(PluginSpec::new(name.clone(), &args.plugin, 4096)).map_err(|e| {
            match e.kind.start_failure() {
                StartFailure::Init => TestError::Failed(e.to_string()),
                _ => usage(e.to_string()),
            }
        })?;
        let description = process.description().clone();
        let _ = process.shutdown();
        let params = args
            .params
            .iter()
            .map(|text| parse_assignment(&description, text))
            .collect::<Result<Vec<_>, ParamError>>()
            .and_then(|params| {
                match params.iter().enumerate().find(|(i, (key, _))| params[..*i].iter().any(|(k, _)| k == key)) {
                    Some((_, (key, _))) => Err(ParamError::Twice { name: key.clone() }),
                    None => Ok(params),
                }
            })
            .map_err(|e| usage(format!("--param: plugin \"{name}\": {e}")))?;
        description.resolve_params(&params).map_err(|e| usage(format!("--param: plugin \"{name}\": {e}")))?;
        Ok(Self { name, module: args.plugin.clone(), description, params })
    }

    /// Processes `input` with a fresh instance created with `params`. A gray8 input goes in as
    /// it is when the plugin takes gray8, as rgba8 otherwise (as `run` gives it a gray PNG).
    fn run(&self, params: &[(String, ParamValue)], input: &OwnedFrame) -> Result<OwnedFrame, TestError> {
        let converted;
        let input = if input.format == PixelFormat::Gray8 && !self.description.formats.iter().any(|f| f == "gray8") {
            converted = png_io::to_rgba(input.clone());
            &converted
        } else {
            input
        };
        let rgba = |shape: plugin_sdk::Shape| (shape.width as u64 * shape.height as u64 * 4).max(4096);
        let failed = |e: plugin_host::PluginError| TestError::Failed(e.to_string());
        let start = |bytes| {
            let mut spec = PluginSpec::new(self.name.clone(), &self.module, bytes);
            spec.params = params.to_vec();
            spec.input = Some(input.shape());
            PluginProcess::spawn(spec).map_err(failed)
        };
        let mut process = start(rgba(input.shape()))?;
        // A plugin that declares larger frames (an upscaler) gets buffers for them.
        if let Some(declared) = process.output_shape()
            && rgba(declared) > rgba(input.shape())
        {
            process = start(rgba(declared))?;
        }
        let output = process.process(input).map_err(failed)?;
        process.shutdown().map_err(failed)?;
        Ok(output)
    }
}
