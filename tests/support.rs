//! Helpers for the integration tests: where the built binary and plugins are, test frames, and
//! reference implementations written independently of the plugins.

use plugin_host::PluginSpec;
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn built(path: PathBuf, how: &str) -> PathBuf {
    assert!(path.exists(), "{} is missing: {how}", path.display());
    path
}

const BUILD_PLUGINS: &str = "build the plugins with `cargo xtask build` (`cargo xtask test` does it too)";

/// The `plugin-host` binary cargo built for these tests (`plugin-host-under-test`: the command
/// line's own `main`, see tests/Cargo.toml). Outside the tests (the fuzz targets), the binary
/// `$PLUGIN_HOST_BIN` names.
pub fn host_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_plugin-host-under-test") {
        Some(path) => PathBuf::from(path),
        None => built(
            std::env::var_os("PLUGIN_HOST_BIN").map(PathBuf::from).unwrap_or_default(),
            "set PLUGIN_HOST_BIN to a plugin-host binary (`cargo xtask build` makes target/release/plugin-host)",
        ),
    }
}

/// An example plugin's module.
pub fn plugin(name: &str) -> PathBuf {
    built(root().join("target/plugins").join(format!("{name}.wasm")), BUILD_PLUGINS)
}

/// A test plugin's module (from `tests/plugins`).
pub fn test_plugin(name: &str) -> PathBuf {
    built(root().join("target/test-plugins").join(format!("{name}.wasm")), BUILD_PLUGINS)
}

/// A spec that runs `module` with the built binary as the runner.
pub fn spec(name: &str, module: PathBuf, max_frame_bytes: u64) -> PluginSpec {
    let mut spec = PluginSpec::new(name, module, max_frame_bytes);
    spec.runner = Some(host_bin());
    spec
}

/// A deterministic pseudo-random frame; `padding` extra bytes per row, filled with noise too.
pub fn noise_frame(width: u32, height: u32, padding: u32, format: PixelFormat, seed: u64) -> OwnedFrame {
    let stride = width * format.bytes_per_pixel() + padding;
    let mut frame = OwnedFrame::with_stride(width, height, stride, format);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for byte in &mut frame.data {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = (x >> 24) as u8;
    }
    frame.timestamp_us = seed as i64 * 1000;
    frame
}

/// Applies `f` to every pixel of `input`, producing a packed frame of the same format.
pub fn map_pixels(input: &OwnedFrame, f: impl Fn(&[u8]) -> Vec<u8>) -> OwnedFrame {
    let bpp = input.format.bytes_per_pixel() as usize;
    let pixels: Vec<u8> = input.packed().chunks_exact(bpp).flat_map(f).collect();
    let mut out = OwnedFrame::from_pixels(input.width, input.height, input.format, pixels).expect("same shape");
    out.timestamp_us = input.timestamp_us;
    out
}

pub fn invert_reference(input: &OwnedFrame) -> OwnedFrame {
    map_pixels(input, |p| match p.len() {
        4 => vec![255 - p[0], 255 - p[1], 255 - p[2], p[3]],
        _ => vec![255 - p[0]],
    })
}

pub fn grayscale_reference(input: &OwnedFrame) -> OwnedFrame {
    map_pixels(input, |p| {
        // BT.709 luma with the coefficients in 16-bit fixed point (0.2126, 0.7152, 0.0722 × 65536).
        let y = ((13933 * p[0] as u32 + 46871 * p[1] as u32 + 4732 * p[2] as u32 + 32768) >> 16) as u8;
        vec![y, y, y, p[3]]
    })
}

pub fn flip_reference(input: &OwnedFrame, horizontal: bool) -> OwnedFrame {
    let bpp = input.format.bytes_per_pixel() as usize;
    let (w, h) = (input.width as usize, input.height as usize);
    let packed = input.packed();
    let mut out = Vec::with_capacity(packed.len());
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = if horizontal { (w - 1 - x, y) } else { (x, h - 1 - y) };
            let at = (sy * w + sx) * bpp;
            out.extend_from_slice(&packed[at..at + bpp]);
        }
    }
    let mut frame = OwnedFrame::from_pixels(input.width, input.height, input.format, out).expect("same shape");
    frame.timestamp_us = input.timestamp_us;
    frame
}

/// Open descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Mappings of this process.
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0)
}

/// Plugin processes (runners) started by the process `host`: its children in runner mode.
pub fn runner_pids(host: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent pid is the second field after the command name in parentheses.
            let parent = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            parent == Some(host) && cmdline.windows(RUNNER_MARK.len()).any(|w| w == RUNNER_MARK)
        })
        .collect()
}

const RUNNER_MARK: &[u8] = plugin_host::ipc::protocol::RUNNER_ARG.as_bytes();

/// Until `child` (a host) exits: once `pick` finds at least two of its plugin processes (a
/// plugin and its standby), SIGKILLs every one `pick` gives, every `every`. Returns the kills.
pub fn kill_until_exit(
    child: &mut std::process::Child,
    pick: impl Fn(u32) -> Vec<i32>,
    every: std::time::Duration,
) -> u32 {
    let mut kills = 0;
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < std::time::Duration::from_secs(300), "the run hangs");
        let pids = pick(child.id());
        if pids.len() >= 2 || kills > 0 {
            for pid in pids {
                // SAFETY: kill(2) on a process the host under test started.
                if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                    kills += 1;
                }
            }
            std::thread::sleep(every);
        } else {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    kills
}

/// A fresh, empty folder for one test: `plugin-host-<suite>-<pid>-<name>` in the temp folder.
pub fn scratch_dir(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-host-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The PNG frames `plugin-host run` wrote to `dir`, by input frame number (their names); none
/// when the folder does not exist.
pub fn written_frames(dir: &std::path::Path) -> Vec<(u64, OwnedFrame)> {
    let paths: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    let mut frames: Vec<(u64, OwnedFrame)> = paths
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap();
            (name.trim_start_matches("frame-").parse().unwrap(), plugin_host_cli::io::png_io::decode(p).unwrap())
        })
        .collect();
    frames.sort_by_key(|(n, _)| *n);
    frames
}

/// Loads `bytes` as a plugin module the way `inspect` does (in its own compiler and runner
/// processes, 5 s start-up, 256 MiB to compile, no disk cache): its description's name, or the
/// error as the user would read it. The body of the module-loading fuzz (tests/hostile.rs, and
/// `fuzz/fuzz_targets/module_loading.rs` for cargo fuzz).
pub fn load_untrusted_module(dir: &std::path::Path, bytes: &[u8]) -> Result<String, String> {
    let path = dir.join("fuzzed.wasm");
    std::fs::write(&path, bytes).expect("the fuzz folder is writable");
    let mut spec = spec("fuzzed", path, 4096);
    spec.cache_dir = None;
    spec.limits.startup = std::time::Duration::from_secs(5);
    spec.limits.compile_memory_bytes = Some(256 << 20);
    let loaded = plugin_host::PluginProcess::spawn(spec);
    // Each distinct module would otherwise stay in this process's in-memory cache.
    plugin_host::cache::clear_memory();
    match loaded {
        Ok(plugin) => {
            let name = plugin.description().name.clone();
            let _ = plugin.shutdown();
            Ok(name)
        }
        Err(err) => Err(err.to_string()),
    }
}

/// `plugin-host` to run in `dir` with the example plugins on its search path, stdin closed,
/// stdout and stderr piped.
pub fn host_command(dir: &std::path::Path) -> std::process::Command {
    use std::process::Stdio;
    let mut command = std::process::Command::new(host_bin());
    command
        .current_dir(dir)
        .env("PLUGIN_HOST_PATH", root().join("target/plugins"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts `command` and returns it with the first line it writes to stderr (where a run with
/// `--metrics` or `--control` announces its address); later lines are read and dropped.
pub fn spawn_announced(command: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    (child, first)
}
