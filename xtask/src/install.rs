//! `cargo xtask install [--prefix DIR]`: `plugin-host` on PATH, the example plugins where its
//! search path finds them (`PREFIX/share/plugin-host/plugins`, beside `PREFIX/bin`), shell
//! completions and a man page, all made from the binary just built.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every subcommand with a man page of its own (install fails on a name plugin-host lacks).
const SUBCOMMANDS: [&str; 7] = ["run", "list", "inspect", "new", "test", "sandbox", "completions"];

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let prefix = match args {
        [] => PathBuf::from(std::env::var_os("HOME").context("HOME is not set; give --prefix DIR")?).join(".local"),
        [flag, dir] if flag == "--prefix" => std::path::absolute(dir).context("the --prefix folder")?,
        _ => bail!("usage: cargo xtask install [--prefix DIR] (default ~/.local)"),
    };
    let bin = prefix.join("bin/plugin-host");
    copy(&root.join("target/release/plugin-host"), &bin)?;
    let plugins = prefix.join("share/plugin-host/plugins");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("target/plugins")).context("reading target/plugins")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            copy(&path, &plugins.join(path.file_name().context("a plugin file name")?))?;
            names.push(path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        }
    }
    names.sort();
    let mut generated: Vec<(Vec<String>, String)> = [
        ("completions bash", "share/bash-completion/completions/plugin-host"),
        ("completions zsh", "share/zsh/site-functions/_plugin-host"),
        ("completions fish", "share/fish/vendor_completions.d/plugin-host.fish"),
        ("man", "share/man/man1/plugin-host.1"),
    ]
    .iter()
    .map(|(args, file)| (args.split(' ').map(String::from).collect(), file.to_string()))
    .collect();
    // The main page refers to one page per subcommand.
    for sub in SUBCOMMANDS {
        generated.push((vec!["man".into(), sub.to_string()], format!("share/man/man1/plugin-host-{sub}.1")));
    }
    for (args, file) in &generated {
        let output = Command::new(&bin).args(args).output().with_context(|| format!("running {}", bin.display()))?;
        if !output.status.success() {
            bail!("{} {} failed: {}", bin.display(), args.join(" "), String::from_utf8_lossy(&output.stderr));
        }
        write(&prefix.join(file), &output.stdout)?;
    }
    println!("xtask: installed into {}:", prefix.display());
    println!("  bin/plugin-host");
    println!("  share/plugin-host/plugins/ ({})", names.join(", "));
    for (_, file) in &generated {
        println!("  {file}");
    }
    let on_path =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir == prefix.join("bin")));
    if !on_path {
        println!(
            "xtask: {} is not on PATH; add it, e.g. export PATH=\"{}:$PATH\"",
            prefix.join("bin").display(),
            prefix.join("bin").display()
        );
    }
    Ok(())
}

/// Copies through a temporary name, so a running `plugin-host` is never overwritten in place.
fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {} (run cargo xtask build)", from.display()))?;
    write(to, &bytes)?;
    let mode = std::fs::metadata(from)?.permissions();
    std::fs::set_permissions(to, mode).with_context(|| format!("setting the mode of {}", to.display()))
}

fn write(to: &Path, bytes: &[u8]) -> Result<()> {
    let folder = to.parent().context("a file with a folder")?;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let partial = to.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, to).with_context(|| format!("moving {} into place", to.display()))
}
