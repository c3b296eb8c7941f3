//! `cargo xtask build | test | demo | bench | bench-ffmpeg | layers | install`: the tasks that need the second target
//! (wasm32), and the check that the host's modules only use those below them. Everything a fresh
//! machine needs is installed from here.

mod bench_ffmpeg;
mod install;
mod layers;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    check_null_device()?;
    match args.first().map(String::as_str) {
        Some("build") => {
            let debuginfo = match args.get(1).map(String::as_str) {
                None => false,
                Some("--plugin-debuginfo") => true,
                Some(other) => bail!("cargo xtask build: unknown option {other} (the one option: --plugin-debuginfo)"),
            };
            build_plugins_all(&root, debuginfo)?;
            build_release(&root, "plugin-host-cli")
        }
        Some("test") => {
            layers::check(&root, false)?;
            build_plugins_all(&root, false)?;
            test(&root, &args[1..])
        }
        Some("demo") => {
            let example = match (args.get(1).map(String::as_str), args.get(2)) {
                (None, _) => None,
                (Some("--example"), Some(name)) => Some(name.as_str()),
                _ => bail!("usage: cargo xtask demo [--example NAME] (the examples: {})", examples(&root).join(", ")),
            };
            if let Some(name) = example
                && !examples(&root).iter().any(|e| e == name)
            {
                bail!("there is no example \"{name}\"; the examples: {}", examples(&root).join(", "));
            }
            build_plugins_all(&root, false)?;
            build_release(&root, "plugin-host-cli")?;
            match example {
                None => demo(&root),
                Some(name) => demo_example(&root, name),
            }
        }
        Some("bench") => {
            build_plugins_all(&root, false)?;
            build_release(&root, "plugin-host-bench")?;
            run(Command::new(root.join("target/release/plugin-host-bench")).args(&args[1..]).current_dir(&root))
        }
        Some("bench-ffmpeg") => {
            build_plugins_all(&root, false)?;
            build_release(&root, "plugin-host-cli")?;
            let plugins = match (args.get(1).map(String::as_str), args.get(2)) {
                (None, _) => root.join("target/plugins"),
                (Some("--plugins"), Some(dir)) => PathBuf::from(dir),
                _ => bail!("usage: cargo xtask bench-ffmpeg [--plugins DIR]"),
            };
            bench_ffmpeg::run(&root, &root.join("target/release/plugin-host"), &plugins)
        }
        Some("layers") => layers::check(&root, true),
        Some("install") => {
            build_plugins_all(&root, false)?;
            build_release(&root, "plugin-host-cli")?;
            install::run(&root, &args[1..])
        }
        _ => bail!(
            "usage: cargo xtask build [--plugin-debuginfo] | test [cargo test args] | demo [--example NAME] | bench [args] | bench-ffmpeg | layers | install [--prefix DIR]"
        ),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Cargo runs rustc with `/dev/null` as its input when it probes the target; where `/dev/null`
/// has become a plain file, the probe compiles whatever was last written there and fails.
fn check_null_device() -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata("/dev/null").context("/dev/null is missing")?;
    if !meta.file_type().is_char_device() {
        bail!(
            "/dev/null is a plain file of {} bytes, not the null device, so cargo's rustc probes read \
             junk from it; restore it as root: rm /dev/null && mknod -m 666 /dev/null c 1 3",
            meta.len()
        );
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Installs the wasm target when this toolchain lacks it.
fn ensure_wasm_target() -> Result<()> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().context("cannot run rustc")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return Ok(());
    }
    eprintln!("xtask: installing the {WASM_TARGET} target");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// Crates in `dir` (one per folder with a Cargo.toml), by package name.
fn crates_in(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(names) };
    for entry in entries {
        let manifest = entry?.path().join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let name = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = ").map(|v| v.trim_matches('"').to_string()))
                .with_context(|| format!("{} has no package name", manifest.display()))?;
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Builds the wasm crates in `source` and copies each module to `dest/<name>.wasm`.
fn build_plugins(root: &Path, source: &str, dest: &str, debuginfo: bool) -> Result<()> {
    let names = crates_in(&root.join(source))?;
    if names.is_empty() {
        return Ok(());
    }
    let mut command = cargo();
    command.current_dir(root).args(["build", "--release", "--target", WASM_TARGET]);
    if debuginfo {
        // Replaces .cargo/config.toml's flags for wasm32: the same, without strip=debuginfo.
        command.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", "-C target-feature=+simd128");
    }
    for name in &names {
        command.args(["-p", name]);
    }
    run(&mut command)?;
    let out = root.join(dest);
    std::fs::create_dir_all(&out)?;
    for name in &names {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let built = root.join("target").join(WASM_TARGET).join("release").join(&file);
        let target = out.join(format!("{name}.wasm"));
        std::fs::copy(&built, &target)
            .with_context(|| format!("copying {} to {}", built.display(), target.display()))?;
    }
    eprintln!("xtask: {} plugin(s) in {dest}/: {}", names.len(), names.join(", "));
    Ok(())
}

/// The example plugins, the test plugins and the C plugins: what the tests, the demo and the
/// benchmark load. The tests build the host themselves (cargo builds their binaries).
fn build_plugins_all(root: &Path, debuginfo: bool) -> Result<()> {
    ensure_wasm_target()?;
    build_plugins(root, "plugins", "target/plugins", debuginfo)?;
    build_plugins(root, "tests/plugins", "target/test-plugins", debuginfo)?;
    build_c_plugins(root)
}

/// A host crate's binaries, optimised: what the demo and the benchmark time.
fn build_release(root: &Path, package: &str) -> Result<()> {
    run(cargo().current_dir(root).args(["build", "--release", "-p", package]))
}

/// Whether `clang` and `wasm-ld` can be run.
fn have_c_toolchain() -> bool {
    let runs = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    runs("clang") && runs("wasm-ld")
}

const NO_C_TOOLCHAIN: &str = "clang and wasm-ld are not installed, so the C plugins in plugins-c/ are not built \
     and their tests are skipped (install them with `apt-get install -y clang lld`)";

/// Builds each `plugins-c/NAME/NAME.c` into `target/plugins/NAME-c.wasm` with clang's wasm32
/// target and wasm-ld, no libc; says so and skips them when the tools are missing.
fn build_c_plugins(root: &Path) -> Result<()> {
    let source = root.join("plugins-c");
    let mut names: Vec<String> = std::fs::read_dir(&source)
        .map(|entries| entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.retain(|name| source.join(name).join(format!("{name}.c")).is_file());
    names.sort();
    if names.is_empty() {
        return Ok(());
    }
    if !have_c_toolchain() {
        eprintln!("xtask: warning: {NO_C_TOOLCHAIN}");
        return Ok(());
    }
    let objects = root.join("target/plugins-c");
    let out = root.join("target/plugins");
    std::fs::create_dir_all(&objects)?;
    std::fs::create_dir_all(&out)?;
    for name in &names {
        let object = objects.join(format!("{name}.o"));
        run(Command::new("clang")
            .args(["--target=wasm32", "-O2", "-ffreestanding", "-fno-builtin", "-nostdlib"])
            .args(["-Wall", "-Wextra", "-Werror", "-c"])
            .arg(source.join(name).join(format!("{name}.c")))
            .arg("-o")
            .arg(&object))?;
        // No --strip-all: the name section makes trap backtraces name the plugin's functions.
        run(Command::new("wasm-ld").arg("--no-entry").arg("-o").arg(out.join(format!("{name}-c.wasm"))).arg(&object))?;
    }
    let built: Vec<String> = names.iter().map(|n| format!("{n}-c")).collect();
    eprintln!("xtask: {} C plugin(s) in target/plugins/: {}", built.len(), built.join(", "));
    Ok(())
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    let mut command = cargo();
    if !have_c_toolchain() {
        eprintln!("xtask: warning: {NO_C_TOOLCHAIN}");
        command.env("PLUGIN_HOST_SKIP_C", "1");
    }
    run(command.current_dir(root).args(["test", "--workspace"]).args(extra))
}

/// Runs the demo, then puts input and output frame 30 side by side in
/// `target/demo-side-by-side.png` (the picture in the README).
fn demo(root: &Path) -> Result<()> {
    let host = root.join("target/release/plugin-host");
    run(Command::new(&host).current_dir(root).args(["run", "examples/demo.toml"]))?;
    let input_config = root.join("target/demo-input.toml");
    std::fs::write(
        &input_config,
        "[input]\nkind = \"testsrc\"\nwidth = 1280\nheight = 720\n[output]\nkind = \"png\"\npath = \"demo-input\"\n",
    )?;
    run(Command::new(&host).current_dir(root).args(["run", "-q", "--frames", "30"]).arg(&input_config))?;
    let frame = "frame-000030.png";
    let picture = root.join("target/demo-side-by-side.png");
    half_size_row(&[&root.join("target/demo-input").join(frame), &root.join("target/demo").join(frame)], &picture)?;
    eprintln!("xtask: the demo's frames are in target/demo/; input and output side by side: {}", picture.display());
    Ok(())
}

/// The graph examples: `examples/NAME.toml`, each writing its frames to `target/example-NAME/`.
fn examples(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("examples"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".toml").map(str::to_string))
                .filter(|name| {
                    let text = std::fs::read_to_string(root.join("examples").join(format!("{name}.toml")));
                    text.is_ok_and(|t| t.contains(&format!("../target/example-{name}\"")))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs `examples/NAME.toml` and writes its output's middle frame at half size to
/// `target/example-NAME.png` (the picture the README shows).
fn demo_example(root: &Path, name: &str) -> Result<()> {
    let host = root.join("target/release/plugin-host");
    let frames = root.join("target").join(format!("example-{name}"));
    let _ = std::fs::remove_dir_all(&frames);
    run(Command::new(&host).current_dir(root).args(["run"]).arg(format!("examples/{name}.toml")))?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(&frames)?.filter_map(|e| Some(e.ok()?.path())).collect();
    written.sort();
    let middle = written.get(written.len() / 2).context("the example wrote no frames")?;
    let picture = root.join("target").join(format!("example-{name}.png"));
    half_size_row(&[middle], &picture)?;
    eprintln!("xtask: the example's frames are in {}; one at half size: {}", frames.display(), picture.display());
    Ok(())
}

fn read_rgba(path: &Path) -> Result<(u32, u32, Vec<u8>)> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut reader = decoder.read_info()?;
    let mut data = vec![0; reader.output_buffer_size().context("image too large")?];
    let info = reader.next_frame(&mut data)?;
    if info.color_type != png::ColorType::Rgba {
        bail!("{} is not RGBA", path.display());
    }
    Ok((info.width, info.height, data))
}

/// Writes `images` (PNG files of one size, RGBA) side by side, each at half size.
fn half_size_row(images: &[&Path], out: &Path) -> Result<()> {
    let read: Vec<(u32, u32, Vec<u8>)> = images.iter().map(|p| read_rgba(p)).collect::<Result<_>>()?;
    let (w, h) = (read[0].0, read[0].1);
    if read.iter().any(|(iw, ih, _)| (*iw, *ih) != (w, h)) {
        bail!("the pictures to put side by side differ in size");
    }
    let (hw, hh) = (w / 2, h / 2);
    let gap = 8;
    let width = hw * images.len() as u32 + gap * (images.len() as u32 - 1);
    let mut pixels = vec![255u8; (width * hh * 4) as usize];
    for (k, (_, _, image)) in read.iter().enumerate() {
        let x0 = k as u32 * (hw + gap);
        for y in 0..hh {
            for x in 0..hw {
                let src = (((y * 2) * w + x * 2) * 4) as usize;
                let dst = ((y * width + x0 + x) * 4) as usize;
                pixels[dst..dst + 4].copy_from_slice(&image[src..src + 4]);
            }
        }
    }
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(std::fs::File::create(out)?), width, hh);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(())
}
