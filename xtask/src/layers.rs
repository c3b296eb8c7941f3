//! `cargo xtask layers`: the host's dependency picture, checked. Each host crate lists its
//! top-level modules with the modules each may use; a `crate::` path to any other module (or a
//! module missing from the table) fails, and so does a crate that depends on one above it. So the
//! arrows in the README's Architecture section stay true: they point down. (`host/bench` is a
//! leaf binary on top of both; nothing may depend on it.)

use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's modules, lowest first, each with the modules it may use.
struct Crate {
    folder: &'static str,
    /// Workspace crates this one must not depend on (the ones above it).
    not_on: &'static [&'static str],
    modules: &'static [(&'static str, &'static [&'static str])],
}

const CRATES: &[Crate] = &[
    Crate {
        folder: "host/core",
        not_on: &["plugin-host-cli", "plugin-host-bench"],
        modules: &[
            ("text", &[]),
            ("schema", &[]),
            ("sys", &["text"]),
            ("ipc", &["sys", "text"]),
            ("runner", &["ipc", "sys", "text"]),
            ("compile", &["ipc", "sys", "text"]),
            ("cache", &["compile", "ipc"]),
            ("probe", &["ipc", "sys"]),
            ("process", &["cache", "compile", "ipc", "schema", "sys", "text"]),
            ("lib", &["*"]),
        ],
    },
    Crate {
        folder: "host/cli",
        not_on: &["plugin-host-bench"],
        modules: &[
            ("config", &[]),
            ("io", &["config"]),
            ("pipeline", &["config", "io"]),
            ("authoring", &["config", "io"]),
            ("cli", &["authoring", "config", "io", "pipeline"]),
            ("lib", &["*"]),
            ("main", &[]),
        ],
    },
];

/// Checks every crate; with `print`, writes the picture (module → the modules it uses).
pub fn check(root: &Path, print: bool) -> Result<()> {
    let mut problems = Vec::new();
    for krate in CRATES {
        let dir = root.join(krate.folder);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
            .with_context(|| format!("reading {}/Cargo.toml", krate.folder))?;
        for above in krate.not_on {
            if depends_on(&manifest, above) {
                problems.push(format!("{} depends on {above}, a crate above it", krate.folder));
            }
        }
        let uses = module_uses(&dir.join("src"))?;
        if print {
            println!("{}:", krate.folder);
        }
        for (module, used) in &uses {
            let Some((_, allowed)) = krate.modules.iter().find(|(name, _)| name == module) else {
                problems.push(format!("{}/src: module `{module}` is not in xtask's layer table", krate.folder));
                continue;
            };
            if print {
                let list: Vec<&str> = used.keys().map(String::as_str).collect();
                println!("  {module:<9} → {}", if list.is_empty() { "(nothing)".into() } else { list.join(", ") });
            }
            for (target, file) in used {
                if !allowed.contains(&"*") && !allowed.contains(&target.as_str()) {
                    problems.push(format!(
                        "{}: `{module}` uses `crate::{target}`, which is not below it (allowed: {})",
                        file.display(),
                        if allowed.is_empty() { "nothing".to_string() } else { allowed.join(", ") }
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("the layering is broken:\n  {}", problems.join("\n  "));
    }
    if !print {
        eprintln!("xtask: layers ok: every crate:: path points down");
    }
    Ok(())
}

/// Whether a manifest's `[dependencies]` (or build/dev dependencies) name `package`.
fn depends_on(manifest: &str, package: &str) -> bool {
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line.contains("dependencies");
        } else if in_deps && line.split(['=', '.', ' ']).next() == Some(package) {
            return true;
        }
    }
    false
}

/// Top-level module → (module it uses → the first file that does).
fn module_uses(src: &Path) -> Result<BTreeMap<String, BTreeMap<String, PathBuf>>> {
    let mut uses: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in rust_files(src)? {
        let relative = file.strip_prefix(src).unwrap_or(&file);
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let entry = uses.entry(module.clone()).or_default();
        for target in crate_paths(&text) {
            if target != module {
                entry.entry(target).or_insert_with(|| file.clone());
            }
        }
    }
    Ok(uses)
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The first segment of every `crate::` path in code (comments are skipped), groups included:
/// `use crate::{a::b, c}` gives `a` and `c`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| line.split(" // ").next().unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `plugin_sdk_crate::`, `$crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() && name != "self" {
                            found.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_groups_are_found_and_comments_are_not() {
        let text = "use crate::ipc::protocol;\nuse crate::{sys::futex, text, self};\n// crate::runner\nlet x = \
                    crate::cache::key(); // crate::compile\n$crate::abi\n";
        let found: Vec<String> = crate_paths(text).into_iter().collect();
        assert_eq!(found, ["cache", "ipc", "sys", "text"]);
    }

    #[test]
    fn a_dependency_is_found_in_any_dependency_table() {
        let manifest = "[package]\nname = \"x\"\n[dev-dependencies]\nplugin-host-cli.workspace = true\n";
        assert!(depends_on(manifest, "plugin-host-cli"));
        assert!(!depends_on(manifest, "plugin-host-bench"));
    }
}
