//! `cargo xtask build | test | demo | bench`: the tasks that need the second target (wasm32).
//! Everything a fresh machine needs is installed from here.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("build") => build(&root),
        Some("test") => {
            build(&root)?;
            test(&root, &args[1..])
        }
        Some("demo") => {
            build(&root)?;
            demo(&root)
        }
        Some("bench") => {
            build(&root)?;
            run(Command::new(root.join("target/release/plugin-host")).arg("bench").args(&args[1..]).current_dir(&root))
        }
        _ => bail!("usage: cargo xtask build | test [cargo test args] | demo | bench [args]"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
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
fn build_plugins(root: &Path, source: &str, dest: &str) -> Result<()> {
    let names = crates_in(&root.join(source))?;
    if names.is_empty() {
        return Ok(());
    }
    let mut command = cargo();
    command.current_dir(root).args(["build", "--release", "--target", WASM_TARGET]);
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

fn build(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    build_plugins(root, "plugins", "target/plugins")?;
    build_plugins(root, "tests/plugins", "target/test-plugins")?;
    run(cargo().current_dir(root).args(["build", "--release", "-p", "plugin-host"]))
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    run(cargo()
        .current_dir(root)
        .env("PLUGIN_HOST_BIN", root.join("target/release/plugin-host"))
        .args(["test", "--workspace", "--exclude", "xtask"])
        .args(extra))
}

fn demo(root: &Path) -> Result<()> {
    let config = root.join("examples/demo.toml");
    if !config.exists() {
        bail!("{} is missing", config.display());
    }
    run(Command::new(root.join("target/release/plugin-host")).current_dir(root).arg("run").arg(&config))
}
