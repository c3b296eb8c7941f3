//! Plugin authors' tools through the real binary: `plugin-host new` → build → test end to end,
//! `plugin-host test` (match, mismatch with its report, bad usage, folders of cases), `inspect`
//! for every example plugin, parameter errors with suggestions in configs and on the command
//! line, trap backtraces, and the C twin of `invert` against its Rust original.

use crate::support::*;
use plugin_host::PluginProcess;
use plugin_host::ipc::protocol::Transport;
use plugin_sdk::{OwnedFrame, ParamKind, ParamSpec, PixelFormat, Plugin, testing};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-host-authors-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn host(args: &[&str], cwd: &Path) -> Output {
    Command::new(host_bin()).args(args).current_dir(cwd).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// plugin-host new

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // One target folder for every run of this test, so the SDK is not rebuilt each time.
    command.env("CARGO_TARGET_DIR", root().join("target/authors-new"));
    command
}

#[test]
fn new_crate_builds_for_wasm_and_its_tests_pass_natively_and_in_the_host() {
    let dir = scratch("new");
    let output = host(&["new", "warm-glow", "--dir", path(&dir)], &root());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let krate = dir.join("warm-glow");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let sdk = std::fs::canonicalize(root().join("plugin-sdk")).unwrap();
    assert!(
        manifest.contains(&format!("plugin-sdk = {{ path = \"{}\" }}", sdk.display())),
        "run from inside the repository: a path dependency\n{manifest}"
    );
    assert!(manifest.contains("\n[workspace]\n"), "its own workspace\n{manifest}");
    for file in
        [".cargo/config.toml", "README.md", "src/lib.rs", "tests/golden.rs", "tests/golden/gradient.expected.png"]
    {
        assert!(krate.join(file).is_file(), "{file} is missing");
    }

    let build = cargo()
        .args(["build", "--quiet", "--target", "wasm32-unknown-unknown", "--release"])
        .current_dir(&krate)
        .output()
        .unwrap();
    assert!(build.status.success(), "cargo build: {}", text(&build.stderr));
    let test = cargo().args(["test", "--quiet"]).current_dir(&krate).output().unwrap();
    let report = text(&test.stdout);
    assert!(test.status.success(), "cargo test: {report}{}", text(&test.stderr));
    assert!(
        report.contains("3 passed") && report.contains("1 passed"),
        "the 3 unit tests (bands included) and the golden test ran: {report}"
    );

    let module = root().join("target/authors-new/wasm32-unknown-unknown/release/warm_glow.wasm");
    let golden = host(&["test", path(&module), "tests/golden"], &krate);
    let stdout = text(&golden.stdout);
    assert_eq!(golden.status.code(), Some(0), "{stdout}{}", text(&golden.stderr));
    assert!(stdout.contains("ok    cool: match") && stdout.contains("2 case(s): 2 passed, 0 failed"), "{stdout}");
    let inspect = host(&["inspect", path(&module)], &krate);
    assert!(text(&inspect.stdout).contains("amount (int, default 24): an int in -128..=128"));

    // A wrong golden image makes the native golden test fail, naming the pixel.
    let expected = krate.join("tests/golden/gradient.expected.png");
    let mut frame = testing::read_png(&expected).unwrap();
    frame.data[(2 * 64 + 1) * 4] ^= 0x40;
    testing::write_png(&expected, &frame).unwrap();
    let test = cargo().args(["test", "--quiet", "--test", "golden"]).current_dir(&krate).output().unwrap();
    let report = format!("{}{}", text(&test.stdout), text(&test.stderr));
    assert!(!test.status.success(), "{report}");
    assert!(report.contains("first at (x 1, y 2)"), "{report}");
    assert!(krate.join("tests/golden/gradient.diff.png").is_file());

    // A case without its expected image says how to make one, and that way makes it.
    std::fs::remove_file(krate.join("tests/golden/cool.expected.png")).unwrap();
    let golden = || {
        let mut command = cargo();
        command.args(["test", "--quiet", "--test", "golden"]).current_dir(&krate);
        command
    };
    let test = golden().output().unwrap();
    let report = format!("{}{}", text(&test.stdout), text(&test.stderr));
    assert!(report.contains("cool.expected.png does not exist yet: `UPDATE_GOLDEN=1 cargo test`"), "{report}");
    assert!(golden().env("UPDATE_GOLDEN", "1").status().unwrap().success());
    assert!(krate.join("tests/golden/cool.expected.png").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn new_outside_the_repository_carries_its_sdk_builds_offline_and_refuses_bad_names() {
    // Outside any plugin-host tree, with a data folder of its own: the crate depends on the SDK
    // this binary carries, written under the data folder, never on a registry name.
    let dir = scratch("new-outside");
    let data = dir.join("data");
    let new = |args: &[&str]| {
        Command::new(host_bin()).args(args).current_dir(&dir).env("XDG_DATA_HOME", &data).output().unwrap()
    };
    let output = new(&["new", "dim", "--dir", "not/yet"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let krate = dir.join("not/yet/dim");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let sdk = std::fs::read_dir(data.join("plugin-host/sdk")).unwrap().next().unwrap().unwrap().path();
    assert!(sdk.file_name().unwrap().to_string_lossy().starts_with("plugin-sdk-0.1.0-"), "{}", sdk.display());
    assert!(manifest.contains(&format!("plugin-sdk = {{ path = \"{}\" }}", sdk.display())), "{manifest}");
    assert!(text(&output.stdout).contains(&sdk.display().to_string()), "says where the SDK is");

    // It builds for wasm and passes its tests with no network.
    let build = cargo()
        .args(["build", "--offline", "--quiet", "--target", "wasm32-unknown-unknown", "--release"])
        .current_dir(&krate)
        .output()
        .unwrap();
    assert!(build.status.success(), "cargo build --offline: {}", text(&build.stderr));
    let test = cargo().args(["test", "--offline", "--quiet"]).current_dir(&krate).output().unwrap();
    assert!(test.status.success(), "cargo test --offline: {}{}", text(&test.stdout), text(&test.stderr));

    // A second crate reuses the same SDK folder.
    assert!(new(&["new", "dimmer"]).status.success());
    assert_eq!(std::fs::read_dir(data.join("plugin-host/sdk")).unwrap().count(), 1);
    for (args, culprit) in [
        (vec!["new", "dimmer"], "dimmer already exists"),
        (vec!["new", "Dim"], "\"Dim\" is not a usable plugin name"),
        (vec!["new", "x", "--dir", "dimmer/Cargo.toml"], "is a file, not a folder"),
    ] {
        let output = new(&args);
        let message = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.starts_with("error: ") && message.contains(culprit), "{args:?}: {message}");
    }
    let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, vec!["data", "dimmer", "not"], "nothing else written");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// plugin-host test

/// A scratch folder with `in.png` (a gradient) and `expected.png` (the invert of it).
fn invert_case(name: &str) -> (PathBuf, OwnedFrame) {
    let dir = scratch(name);
    let input = testing::gradient(24, 16, PixelFormat::Rgba8);
    testing::write_png(&dir.join("in.png"), &input).unwrap();
    let expected = invert_reference(&input);
    testing::write_png(&dir.join("expected.png"), &expected).unwrap();
    (dir, expected)
}

#[test]
fn test_passes_when_the_output_matches() {
    let (dir, _) = invert_case("match");
    let output = host(&["test", path(&plugin("invert")), "--input", "in.png", "--expect", "expected.png"], &dir);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "ok: expected.png: match (max difference 0, PSNR inf dB)\n");
    assert!(!dir.join("expected.actual.png").exists() && !dir.join("expected.diff.png").exists());
}

#[test]
fn test_fails_with_exit_1_writes_actual_and_diff_and_names_the_pixel() {
    let (dir, mut expected) = invert_case("mismatch");
    let at = (3 * 24 + 5) * 4 + 1; // (x 5, y 3), green
    let actual_green = expected.data[at];
    expected.data[at] = actual_green.wrapping_add(30);
    testing::write_png(&dir.join("expected.png"), &expected).unwrap();
    let invert = plugin("invert");
    let args = ["test", path(&invert), "--input", "in.png", "--expect", "expected.png"];
    let output = host(&args, &dir);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("1 of 384 pixels differ by more than 0"), "{stdout}");
    assert!(stdout.contains("first at (x 5, y 3)"), "{stdout}");
    assert!(stdout.contains("max difference 30"), "{stdout}");
    assert!(stdout.contains("PSNR"), "{stdout}");
    assert!(stdout.contains("actual output written to expected.actual.png, differences to expected.diff.png"));
    let actual = testing::read_png(&dir.join("expected.actual.png")).unwrap();
    assert!(actual.same_pixels(&invert_reference(&testing::read_png(&dir.join("in.png")).unwrap())));
    let diff = testing::read_png(&dir.join("expected.diff.png")).unwrap();
    assert_eq!(&diff.data[(3 * 24 + 5) * 4..][..4], &[143, 0, 0, 255], "the differing pixel is red in the diff");
    assert_eq!(diff.data[(3 * 24 + 6) * 4 + 1], diff.data[(3 * 24 + 6) * 4], "matching pixels are gray");

    // Within the tolerance it passes (and makes no report folder); --report puts the files elsewhere.
    let output = host(&[&args[..], &["--tolerance", "30", "--report", "report"]].concat(), &dir);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(!dir.join("report").exists(), "a passing run makes no report folder");
    std::fs::remove_file(dir.join("expected.actual.png")).unwrap();
    let output = host(&[&args[..], &["--tolerance", "29", "--report", "report"]].concat(), &dir);
    assert_eq!(output.status.code(), Some(1));
    assert!(dir.join("report/expected.actual.png").is_file() && dir.join("report/expected.diff.png").is_file());
    assert!(!dir.join("expected.actual.png").exists());
}

#[test]
fn a_gray_png_stays_gray_for_a_plugin_that_takes_gray8() {
    let dir = scratch("gray");
    let gray = testing::gradient(8, 4, PixelFormat::Gray8);
    testing::write_png(&dir.join("gray.png"), &gray).unwrap();
    let output = host(&["test", path(&plugin("invert")), "--input", "gray.png", "--output", "inverted.png"], &dir);
    assert_eq!(text(&output.stdout), "wrote inverted.png (8x4 gray8)\n", "{}", text(&output.stderr));
    let inverted = testing::read_png(&dir.join("inverted.png")).unwrap();
    assert_eq!(inverted.packed(), gray.packed().iter().map(|v| 255 - v).collect::<Vec<u8>>());
    // So a gray golden image compares with a gray output.
    let output = host(&["test", path(&plugin("invert")), "--input", "gray.png", "--expect", "inverted.png"], &dir);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    // A plugin that takes only rgba8 gets it as opaque gray pixels, as `run` gives it.
    let output = host(&["test", path(&plugin("grayscale")), "--input", "gray.png", "--output", "g.png"], &dir);
    assert_eq!(text(&output.stdout), "wrote g.png (8x4 rgba8)\n", "{}", text(&output.stderr));
}

#[test]
fn test_writes_the_output_with_output() {
    let (dir, expected) = invert_case("output");
    let output = host(&["test", path(&plugin("invert")), "--input", "in.png", "--output", "out.png"], &dir);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "wrote out.png (24x16 rgba8)\n");
    assert!(testing::read_png(&dir.join("out.png")).unwrap().same_pixels(&expected));
}

#[test]
fn test_bad_usage_exits_2_with_one_sentence() {
    let (dir, _) = invert_case("usage");
    std::fs::write(dir.join("not.wasm"), "hello").unwrap();
    std::fs::create_dir(dir.join("empty")).unwrap();
    let invert = plugin("invert");
    let blur = plugin("blur");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![path(&invert), "--input", "in.png"], "give --expect EXPECTED.png to compare, or --output OUT.png"),
        (vec![path(&invert), "--input", "in.png", "--expect", "expected.png", "--output", "o.png"], "not both"),
        (vec![path(&invert), "--expect", "expected.png"], "give the input image with --input"),
        (vec![path(&invert), "--input", "none.png", "--expect", "expected.png"], "input image none.png does not exist"),
        (
            vec![path(&invert), "--input", "empty", "--expect", "expected.png"],
            "input image empty is a folder, not a PNG file",
        ),
        (vec![path(&invert), "--input", "not.wasm", "--expect", "expected.png"], "not.wasm: not a PNG"),
        (vec![path(&invert), "--input", "in.png", "--expect", "none.png"], "expected image none.png does not exist"),
        (vec!["none.wasm", "--input", "in.png", "--expect", "expected.png"], "the plugin none.wasm does not exist"),
        (vec!["not.wasm", "--input", "in.png", "--expect", "expected.png"], "is not a WebAssembly module"),
        (
            vec![path(&blur), "--input", "in.png", "--output", "o.png", "--param", "radus=3"],
            "--param: plugin \"blur\": unknown parameter \"radus\" (did you mean \"radius\"?)",
        ),
        (
            vec![path(&blur), "--input", "in.png", "--output", "o.png", "--param", "radius=200"],
            "--param: plugin \"blur\": parameter \"radius\" = 200 is out of range 0..=64",
        ),
        (
            vec![path(&blur), "--input", "in.png", "--output", "o.png", "--param", "radius=big"],
            "parameter \"radius\" must be an int in 0..=64, not \"big\"",
        ),
        (
            vec![path(&invert), "--input", "in.png", "--output", "o.png", "--param", "x"],
            "--param: plugin \"invert\": \"x\" is not KEY=VALUE",
        ),
        (
            vec![path(&blur), "--input", "in.png", "--output", "o.png", "--param", "radius=2", "--param", "radius=3"],
            "--param: plugin \"blur\": parameter \"radius\" is given twice",
        ),
        (vec![path(&invert), "--input", "in.png", "--output", "no/o.png"], "cannot write no/o.png"),
        (vec![path(&invert), "--input", "in.png", "--output", "in.png"], "--output in.png is the input image"),
        (vec![path(&invert), "--input", "in.png", "--output", path(&invert)], "is the plugin; the output would"),
        (
            vec![path(&invert), "--input", "in.png", "--expect", "expected.png", "--report", "no/report"],
            "--report no/report: its folder no does not exist",
        ),
        (vec![path(&invert), "empty"], "empty holds no cases"),
        (vec![path(&invert), "empty", "--input", "in.png"], "takes no --input"),
        (vec![path(&invert), "--input", "in.png", "--output", "o.png", "--tolerance", "256"], "--tolerance"),
    ];
    for (args, culprit) in cases {
        let output = host(&[&["test"], &args[..]].concat(), &dir);
        let message = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(culprit), "{args:?}: the message must say {culprit:?}: {message}");
        assert_eq!(message.lines().filter(|l| l.starts_with("error")).count(), 1, "{args:?}: {message}");
    }
    assert!(!dir.join("o.png").exists(), "nothing written on bad usage");
}

#[test]
fn test_runs_a_folder_of_cases_with_per_case_params() {
    let dir = scratch("folder");
    let input = testing::gradient(10, 6, PixelFormat::Rgba8);
    for case in ["mirror", "upside-down"] {
        testing::write_png(&dir.join(format!("{case}.in.png")), &input).unwrap();
    }
    testing::write_png(&dir.join("mirror.expected.png"), &flip_reference(&input, true)).unwrap();
    testing::write_png(&dir.join("upside-down.expected.png"), &flip_reference(&input, false)).unwrap();
    std::fs::write(dir.join("upside-down.params.toml"), "axis = \"vertical\"\n").unwrap();
    let flip = plugin("flip");
    let output = host(&["test", path(&flip), path(&dir)], &dir);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("ok    mirror: match") && stdout.contains("ok    upside-down: match"), "{stdout}");
    assert!(stdout.ends_with("2 case(s): 2 passed, 0 failed\n"), "{stdout}");

    // Command-line parameters apply to every case; a case's file overrides them.
    let output = host(&["test", path(&flip), path(&dir), "--param", "axis=vertical"], &dir);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  mirror: ") && stdout.contains("ok    upside-down"), "{stdout}");
    assert!(stdout.ends_with("2 case(s): 1 passed, 1 failed\n"), "{stdout}");
    assert!(dir.join("mirror.actual.png").is_file() && dir.join("mirror.diff.png").is_file());

    std::fs::write(dir.join("upside-down.params.toml"), "axis = \"verticle\"\n").unwrap();
    let output = host(&["test", path(&flip), path(&dir)], &dir);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "a broken case is bad usage: {stdout}");
    assert!(
        stdout.contains("upside-down.params.toml: plugin \"flip\": parameter \"axis\" = \"verticle\" is not one of \"horizontal\", \"vertical\" (did you mean \"vertical\"?)"),
        "{stdout}"
    );

    // A case file whose name matches no input is refused, not silently left out.
    std::fs::write(dir.join("upside_down.params.toml"), "axis = \"vertical\"\n").unwrap();
    let output = host(&["test", path(&flip), path(&dir)], &dir);
    let message = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("upside_down.params.toml: there is no upside_down.in.png for it"), "{message}");
}

#[test]
fn a_trap_comes_back_with_a_backtrace_naming_the_plugins_functions() {
    let (dir, _) = invert_case("trap");
    let misbehave = test_plugin("misbehave");
    let args = ["test", path(&misbehave), "--input", "in.png", "--output", "o.png"];
    let output = host(&[&args[..], &["--param", "mode=divide", "--param", "frame=1"]].concat(), &dir);
    let message = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("plugin \"misbehave\": frame 1: wasm trap: integer divide by zero"), "{message}");
    assert!(message.contains("misbehave.wasm!<misbehave::Misbehave as plugin_sdk::Plugin>::process"), "{message}");
    assert!(message.contains("misbehave.wasm!plugin_process"), "{message}");
    assert!(!dir.join("o.png").exists());
}

// ---------------------------------------------------------------------------------------------
// inspect

/// The text `inspect` prints about a plugin declaring `params` (the one rendering rule, spelled
/// out independently here).
fn expected_param_lines(params: &[ParamSpec]) -> String {
    let mut out = String::new();
    for p in params {
        let (kind, default, allowed) = match &p.kind {
            ParamKind::Int { default, min, max } => ("int", default.to_string(), format!("an int in {min}..={max}")),
            ParamKind::Float { default, min, max } => {
                ("float", default.to_string(), format!("a float in {min}..={max}"))
            }
            ParamKind::Bool { default } => ("bool", default.to_string(), "true or false".into()),
            ParamKind::Enum { default, choices } => (
                "enum",
                format!("\"{default}\""),
                format!("one of {}", choices.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")),
            ),
            ParamKind::String { default } => ("string", format!("\"{default}\""), "a string".into()),
        };
        let help = if p.help.is_empty() { String::new() } else { format!(" — {}", p.help) };
        out.push_str(&format!("  {} ({kind}, default {default}): {allowed}{help}\n", p.name));
    }
    out
}

fn check_inspect<P: Plugin>(name: &str, module: &Path, description: &str) {
    let dir = root();
    // The C twin is built for ABI 1 on purpose (the host runs such modules unchanged).
    let abi = if name.ends_with("-c") { 1 } else { plugin_sdk::abi::ABI_VERSION };
    let formats: Vec<&str> = P::formats().iter().map(|f| f.name()).collect();
    let params = P::params();
    let output = host(&["inspect", path(module)], &dir);
    assert!(output.status.success(), "{name}: {}", text(&output.stderr));
    let expected = format!(
        "{name} 0.1.0\n{description}\nABI version: {abi}\nformats: {}\n{}{}",
        formats.join(", "),
        if params.is_empty() { "params: none\n" } else { "params:\n" },
        expected_param_lines(&params)
    );
    assert_eq!(text(&output.stdout), expected, "{name}: inspect text");

    let output = host(&["inspect", "--json", path(module)], &dir);
    assert!(output.status.success(), "{name}: {}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["abi_version"], abi, "{name}");
    assert_eq!(json["name"], name);
    assert_eq!(json["version"], "0.1.0");
    assert_eq!(json["description"], description);
    assert_eq!(json["formats"], serde_json::json!(formats), "{name}");
    let declared = json["params"].as_array().unwrap();
    assert_eq!(declared.len(), params.len(), "{name}");
    for (j, p) in declared.iter().zip(&params) {
        assert_eq!(j["name"], p.name);
        assert_eq!(j["help"], p.help);
        let (kind, default, range) = match &p.kind {
            ParamKind::Int { default, min, max } => {
                ("int", serde_json::json!(default), Some((*min as f64, *max as f64)))
            }
            ParamKind::Float { default, min, max } => ("float", serde_json::json!(default), Some((*min, *max))),
            ParamKind::Bool { default } => ("bool", serde_json::json!(default), None),
            ParamKind::Enum { default, choices } => {
                assert_eq!(j["choices"], serde_json::json!(choices), "{name}.{}", p.name);
                ("enum", serde_json::json!(default), None)
            }
            ParamKind::String { default } => ("string", serde_json::json!(default), None),
        };
        assert_eq!(j["type"], kind, "{name}.{}", p.name);
        assert_eq!(j["default"].as_f64().map(serde_json::Value::from).unwrap_or(j["default"].clone()), {
            default.as_f64().map(serde_json::Value::from).unwrap_or(default)
        });
        if let Some((min, max)) = range {
            assert_eq!((j["min"].as_f64(), j["max"].as_f64()), (Some(min), Some(max)), "{name}.{}", p.name);
        }
    }
}

#[test]
fn inspect_every_example_plugin_as_text_and_json() {
    // (The descriptions are each crate's Cargo.toml `description`.)
    check_inspect::<blur::Blur>(
        "blur",
        &plugin("blur"),
        "Box blur of every channel, alpha included, with a configurable radius.",
    );
    check_inspect::<brightness::Brightness>(
        "brightness",
        &plugin("brightness"),
        "Adjusts brightness and contrast of red, green and blue (or luma); keeps alpha.",
    );
    check_inspect::<flip::Flip>("flip", &plugin("flip"), "Mirrors the frame horizontally or vertically.");
    check_inspect::<grayscale::Grayscale>(
        "grayscale",
        &plugin("grayscale"),
        "Replaces colour with BT.709 luma; keeps alpha.",
    );
    check_inspect::<invert::Invert>("invert", &plugin("invert"), "Inverts red, green and blue; keeps alpha.");
    check_inspect::<sobel::Sobel>(
        "sobel",
        &plugin("sobel"),
        "Sobel edge magnitude of the frame's BT.709 luma, as an opaque gray image.",
    );
    check_inspect::<threshold::Threshold>(
        "threshold",
        &plugin("threshold"),
        "Turns each pixel white or black by comparing its BT.709 luma to a level; keeps alpha.",
    );
    if let Some(module) = c_plugin() {
        check_inspect::<invert::Invert>("invert-c", &module, "Inverts red, green and blue; keeps alpha. Written in C.");
    }
}

#[test]
fn inspect_of_a_file_that_is_not_a_plugin_is_one_sentence() {
    let dir = scratch("inspect-bad");
    std::fs::write(dir.join("x.wasm"), "nope").unwrap();
    let output = host(&["inspect", "x.wasm"], &dir);
    let message = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(message, "error: plugin \"x\": x.wasm is not a WebAssembly module\n");
}

// ---------------------------------------------------------------------------------------------
// Parameter errors in configs

fn run_config(dir: &Path, config: &str) -> Output {
    std::fs::write(dir.join("pipeline.toml"), config).unwrap();
    host(&["run", "-q", "pipeline.toml"], dir)
}

#[test]
fn config_parameter_errors_name_plugin_parameter_and_what_is_allowed() {
    let dir = scratch("config-params");
    let head = "[input]\nkind = \"testsrc\"\nwidth = 8\nheight = 8\nframes = 1\n";
    let tail = "[output]\nkind = \"null\"\n";
    let cases = [
        ("brightness", "contrst = 2.0", "plugin \"p\": unknown parameter \"contrst\" (did you mean \"contrast\"?)"),
        ("brightness", "contrast = 9.0", "plugin \"p\": parameter \"contrast\" = 9 is out of range 0..=4"),
        (
            "flip",
            "axis = \"verticle\"",
            "plugin \"p\": parameter \"axis\" = \"verticle\" is not one of \"horizontal\", \"vertical\" (did you mean \"vertical\"?)",
        ),
        (
            "threshold",
            "level = \"high\"",
            "plugin \"p\": parameter \"level\" must be an int in 0..=255, not the string \"high\"",
        ),
    ];
    for (module, param, message) in cases {
        let config = format!(
            "{head}[[plugin]]\nname = \"p\"\npath = \"{}\"\n[plugin.params]\n{param}\n{tail}",
            plugin(module).display()
        );
        let output = run_config(&dir, &config);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{param}: {stderr}");
        assert!(stderr.contains(message), "{param}: expected {message:?} in {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// The C plugin

/// `target/plugins/invert-c.wasm`, or `None` when `cargo xtask` had no clang and said so
/// (`PLUGIN_HOST_SKIP_C=1`). Without that variable a missing module fails the test.
fn c_plugin() -> Option<PathBuf> {
    let module = root().join("target/plugins/invert-c.wasm");
    if !module.exists() && std::env::var_os("PLUGIN_HOST_SKIP_C").is_some_and(|v| v == "1") {
        eprintln!("skipped: no C toolchain (see cargo xtask's warning)");
        return None;
    }
    Some(plugin("invert-c"))
}

#[test]
fn c_invert_gives_the_same_bytes_as_the_rust_invert_on_both_transports() {
    let Some(module) = c_plugin() else { return };
    for transport in [Transport::SharedMemory, Transport::Pipe] {
        let start = |name: &str, module: PathBuf| {
            let mut spec = spec(name, module, 1 << 20);
            spec.transport = transport;
            PluginProcess::spawn(spec).unwrap()
        };
        let mut c = start("c", module.clone());
        let mut rust = start("rust", plugin("invert"));
        for format in [PixelFormat::Rgba8, PixelFormat::Gray8] {
            for (i, (w, h, padding)) in [(1, 1, 0), (13, 7, 8), (64, 40, 0), (301, 3, 5)].into_iter().enumerate() {
                let input = noise_frame(w, h, padding, format, 70 + i as u64);
                let from_c = c.process(&input).unwrap();
                let from_rust = rust.process(&input).unwrap();
                let what = format!("{transport:?} {format:?} {w}x{h}+{padding}");
                assert!(from_c.same_pixels(&from_rust), "{what}: C and Rust differ");
                assert!(from_c.same_pixels(&invert_reference(&input)), "{what}: not the inverse");
                assert_eq!(from_c.timestamp_us, input.timestamp_us, "{what}");
            }
        }
        c.shutdown().unwrap();
        rust.shutdown().unwrap();
    }
}

#[test]
fn c_invert_in_a_pipeline_and_under_plugin_host_test() {
    let Some(module) = c_plugin() else { return };
    let dir = scratch("c-pipeline");
    for (name, module) in [("c", module.clone()), ("rust", plugin("invert"))] {
        let config = format!(
            "[input]\nkind = \"testsrc\"\nwidth = 48\nheight = 32\nframes = 3\n[[plugin]]\nname = \"neg\"\npath = \"{}\"\n[output]\nkind = \"raw\"\npath = \"{name}.rgba\"\n",
            module.display()
        );
        let output = run_config(&dir, &config);
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
    }
    let (c, rust) = (std::fs::read(dir.join("c.rgba")).unwrap(), std::fs::read(dir.join("rust.rgba")).unwrap());
    assert_eq!(c.len(), 3 * 48 * 32 * 4);
    assert!(c == rust, "the C and Rust pipelines' outputs differ");

    let (dir, _) = invert_case("c-golden");
    let output = host(&["test", path(&module), "--input", "in.png", "--expect", "expected.png"], &dir);
    assert_eq!(output.status.code(), Some(0), "{}{}", text(&output.stdout), text(&output.stderr));

    // It takes no parameters, and says so through the host's schema check.
    let output = host(&["test", path(&module), "--input", "in.png", "--output", "o.png", "--param", "x=1"], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unknown parameter \"x\" (the plugin takes no parameters)"));
}

#[test]
fn c_invert_handles_a_frame_that_fills_its_slot_exactly() {
    let Some(module) = c_plugin() else { return };
    // The slot holds exactly this frame (64 x 64 x 4 bytes is a whole number of pages): the
    // plugin's bounds check must accept a frame that ends at the end of its buffer.
    let mut process = PluginProcess::spawn(spec("c", module, 64 * 64 * 4)).unwrap();
    let input = noise_frame(64, 64, 0, PixelFormat::Rgba8, 5);
    assert!(process.process(&input).unwrap().same_pixels(&invert_reference(&input)));
    process.shutdown().unwrap();
}

#[test]
fn test_shows_the_plugins_own_info_lines_only_with_verbose() {
    let (dir, _) = invert_case("test-quiet");
    let misbehave = test_plugin("misbehave");
    let args = ["test", path(&misbehave), "--input", "in.png", "--output", "out.png", "--param", "mode=log"];
    let quiet = host(&args, &dir);
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert!(!text(&quiet.stderr).contains("frame 1 of 24x16"), "{}", text(&quiet.stderr));
    let verbose = host(&[&args[..], &["-v"]].concat(), &dir);
    assert!(text(&verbose.stderr).contains("frame 1 of 24x16"), "{}", text(&verbose.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}
