//! `cargo xtask bench-ffmpeg`: each example plugin and the demo chain against ffmpeg's equivalent
//! filter on the same frames, on this machine, in the same run, as a user would compare them:
//! raw RGBA from a page-cached file to a null output, whole-process wall time, best of three,
//! ffmpeg with its default threads, plugin-host with its sandbox on. Prints frames/s and the
//! ratio plugin-host / ffmpeg (above 1: plugin-host is faster). Not part of `cargo xtask test`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One comparison: the plugins (module name, parameters as TOML lines) and ffmpeg's `-vf`.
struct Case {
    name: &'static str,
    plugins: &'static [(&'static str, &'static str)],
    ffmpeg: &'static str,
}

const CASES: &[Case] = &[
    Case { name: "invert / negate", plugins: &[("invert", "")], ffmpeg: "negate" },
    Case { name: "flip horizontal / hflip", plugins: &[("flip", "axis = \"horizontal\"")], ffmpeg: "hflip" },
    Case { name: "flip vertical / vflip", plugins: &[("flip", "axis = \"vertical\"")], ffmpeg: "vflip" },
    Case {
        name: "grayscale / colorchannelmixer",
        plugins: &[("grayscale", "")],
        ffmpeg: "colorchannelmixer=rr=.2126:rg=.7152:rb=.0722:gr=.2126:gg=.7152:gb=.0722:br=.2126:bg=.7152:bb=.0722",
    },
    Case {
        name: "brightness+contrast / lutrgb",
        plugins: &[("brightness", "brightness = 20\ncontrast = 1.2")],
        ffmpeg: "lutrgb=r='clip(round((val-128)*1.2+148),0,255)':g='clip(round((val-128)*1.2+148),0,255)':b='clip(round((val-128)*1.2+148),0,255)'",
    },
    Case { name: "blur radius 5 / avgblur=5", plugins: &[("blur", "radius = 5")], ffmpeg: "avgblur=5" },
    Case { name: "sobel / format=gray,sobel", plugins: &[("sobel", "")], ffmpeg: "format=gray,sobel=scale=0.25" },
    Case {
        name: "blur 1 → sobel → threshold → invert / same chain",
        plugins: &[("blur", "radius = 1"), ("sobel", ""), ("threshold", "level = 8"), ("invert", "")],
        ffmpeg: "avgblur=1,format=gray,sobel=scale=0.25,lut=c0='if(gte(val,8),255,0)',negate",
    },
];

/// Sizes and how many frames each input file holds.
const SIZES: &[(u32, u32, u32)] = &[(1280, 720, 150), (1920, 1080, 100)];
const RUNS: usize = 3;

/// `plugins`: the folder of example plugin modules (target/plugins, or another build of them).
pub fn run(root: &Path, host: &Path, plugins: &Path) -> Result<()> {
    ensure_ffmpeg()?;
    let dir = root.join("target/bench-ffmpeg");
    std::fs::create_dir_all(&dir)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("plugin-host against ffmpeg on the same frames: raw RGBA from a cached file to a null output,");
    println!("whole-process wall time, best of {RUNS}, {cores} cores, ffmpeg with its default threads,");
    println!("plugin-host with its sandbox on. ratio = plugin-host frames/s / ffmpeg frames/s.");
    println!("plugins from {}", plugins.display());
    println!("Where the work differs: ffmpeg's vflip copies nothing (it flips line pointers); avgblur");
    println!("converts RGBA to planar first (counted against ffmpeg); after format=gray ffmpeg's sobel,");
    println!("lut and negate work on 1 byte a pixel, the plugins on 4 (sobel scaled by 1/4, as the plugin).\n");
    println!("  {:<50} {:>10} {:>12} {:>10} {:>7}", "plugin / ffmpeg filter", "size", "plugin-host", "ffmpeg", "ratio");
    let mut json = Vec::new();
    for &(width, height, frames) in SIZES {
        let input = dir.join(format!("in-{width}x{height}.raw"));
        make_input(host, &dir, &input, width, height, frames)?;
        for case in CASES {
            let config = dir.join(format!(
                "{}-{width}x{height}.toml",
                case.plugins.iter().map(|p| p.0).collect::<Vec<_>>().join("-")
            ));
            std::fs::write(&config, plugin_config(plugins, &input, width, height, case))?;
            let ours = best_of(|| run_quietly(Command::new(host).arg("run").arg("-q").arg(&config)))?;
            let theirs = best_of(|| {
                run_quietly(
                    Command::new("ffmpeg")
                        .args(["-v", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s"])
                        .arg(format!("{width}x{height}"))
                        .arg("-i")
                        .arg(&input)
                        .args(["-vf", case.ffmpeg, "-f", "null", "-"]),
                )
            })?;
            let (ours_fps, theirs_fps) = (frames as f64 / ours.as_secs_f64(), frames as f64 / theirs.as_secs_f64());
            println!(
                "  {:<50} {:>10} {:>12.1} {:>10.1} {:>7.2}",
                case.name,
                format!("{width}x{height}"),
                ours_fps,
                theirs_fps,
                ours_fps / theirs_fps
            );
            json.push(format!(
                "{{\"case\":{:?},\"width\":{width},\"height\":{height},\"frames\":{frames},\"plugin_host_fps\":{ours_fps:.2},\"ffmpeg_fps\":{theirs_fps:.2}}}",
                case.name
            ));
        }
    }
    let report = dir.join("report.json");
    std::fs::write(&report, format!("[{}]\n", json.join(",\n")))?;
    println!("\n(every figure as JSON: {})", report.display());
    Ok(())
}

/// ffmpeg from the system's packages, installed (and said so) when it is missing.
fn ensure_ffmpeg() -> Result<()> {
    if Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    eprintln!("xtask: ffmpeg is not installed; installing it with apt-get (the system's package)");
    // `env` inside sudo: sudo drops DEBIAN_FRONTEND; no stdin, so no prompt can wait.
    let apt = |args: &[&str]| {
        let mut command = Command::new(if nix_is_root() { "env" } else { "sudo" });
        if !nix_is_root() {
            command.args(["-n", "env"]);
        }
        command.arg("DEBIAN_FRONTEND=noninteractive").arg("apt-get").args(args).stdin(Stdio::null()).status()
    };
    let ok = |status: std::io::Result<std::process::ExitStatus>| status.is_ok_and(|s| s.success());
    if !ok(apt(&["update", "-q"])) || !ok(apt(&["install", "-y", "-q", "--no-install-recommends", "ffmpeg"])) {
        bail!("ffmpeg is missing and could not be installed; install it with `apt-get install ffmpeg`");
    }
    Ok(())
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// The input file: plugin-host's test pattern as raw RGBA, made once and kept.
fn make_input(host: &Path, dir: &Path, input: &Path, width: u32, height: u32, frames: u32) -> Result<()> {
    let expected = width as u64 * height as u64 * 4 * frames as u64;
    if std::fs::metadata(input).is_ok_and(|m| m.len() == expected) {
        return Ok(());
    }
    let config = dir.join(format!("make-{width}x{height}.toml"));
    std::fs::write(
        &config,
        format!(
            "[input]\nkind = \"testsrc\"\nwidth = {width}\nheight = {height}\nframes = {frames}\n[output]\nkind = \"raw\"\npath = \"{}\"\n",
            input.display()
        ),
    )?;
    run_quietly(Command::new(host).arg("run").arg("-q").arg(&config)).map(|_| ())
}

fn plugin_config(plugins: &Path, input: &Path, width: u32, height: u32, case: &Case) -> String {
    let mut text =
        format!("[input]\nkind = \"raw\"\npath = \"{}\"\nwidth = {width}\nheight = {height}\n", input.display());
    for (i, (module, params)) in case.plugins.iter().enumerate() {
        let path: PathBuf = plugins.join(format!("{module}.wasm"));
        text += &format!("[[plugin]]\nname = \"p{i}\"\npath = \"{}\"\n", path.display());
        if !params.is_empty() {
            text += &format!("[plugin.params]\n{params}\n");
        }
    }
    text + "[output]\nkind = \"null\"\n"
}

fn run_quietly(command: &mut Command) -> Result<Duration> {
    let started = Instant::now();
    let output = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(started.elapsed())
}

fn best_of(mut run: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        best = best.min(run()?);
    }
    Ok(best)
}
