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
    package: &'static str,
    /// Workspace crates this one must not depend on (the ones above it).
    not_on: &'static [&'static str],
    modules: &'static [(&'static str, &'static [&'static str])],
    /// Outside crates a module must not name (`ipc` stays free of wasmtime).
    forbidden_crates: &'static [(&'static str, &'static [&'static str])],
}

const CRATES: &[Crate] = &[
    Crate {
        folder: "host/core",
        package: "plugin-host",
        not_on: &["plugin-host-cli", "plugin-host-bench"],
        modules: &[
            ("text", &[]),
            ("schema", &[]),
            ("sys", &["text"]),
            ("ipc", &["sys", "text"]),
            ("artifact", &[]),
            ("runner", &["artifact", "ipc", "sys", "text"]),
            ("compile", &["ipc", "sys", "text"]),
            ("cache", &["artifact", "compile", "ipc"]),
            ("probe", &["ipc", "sys"]),
            ("process", &["cache", "compile", "ipc", "schema", "sys", "text"]),
            ("lib", &["*"]),
        ],
        forbidden_crates: &[("text", &["wasmtime"]), ("sys", &["wasmtime"]), ("ipc", &["wasmtime"])],
    },
    Crate {
        folder: "host/cli",
        package: "plugin-host-cli",
        not_on: &["plugin-host-bench"],
        modules: &[
            ("graph", &[]),
            ("http", &[]),
            ("config", &["graph"]),
            ("io", &["config"]),
            ("oneline", &["config"]),
            ("pipeline", &["graph", "config", "io"]),
            ("metrics", &["pipeline", "http"]),
            ("authoring", &["config", "io"]),
            ("cli", &["authoring", "config", "io", "metrics", "oneline", "pipeline"]),
            ("lib", &["*"]),
            ("main", &[]),
        ],
        forbidden_crates: &[],
    },
];

/// Checks every crate; with `print`, writes the picture (module → the modules it uses).
pub fn check(root: &Path, print: bool) -> Result<()> {
    let mut problems = Vec::new();
    let dependencies = workspace_dependencies(root)?;
    for krate in CRATES {
        let dir = root.join(krate.folder);
        let deps =
            dependencies.get(krate.package).with_context(|| format!("cargo metadata lacks {}", krate.package))?;
        for above in krate.not_on {
            if deps.contains(*above) {
                problems.push(format!("{} depends on {above}, a crate above it", krate.folder));
            }
        }
        let known: Vec<&str> = krate.modules.iter().map(|(name, _)| *name).collect();
        let (uses, crates_named) = module_uses(&dir.join("src"), &known)?;
        for (module, forbidden) in krate.forbidden_crates {
            for name in *forbidden {
                if let Some(file) = crates_named.get(&(module.to_string(), name.to_string())) {
                    problems
                        .push(format!("{}: `{module}` names the crate `{name}`, which it must not", file.display()));
                }
            }
        }
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

/// Each workspace package's dependencies of every kind, by package name (renames resolved), from
/// `cargo metadata`.
fn workspace_dependencies(root: &Path) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).context("reading cargo metadata")?;
    let mut dependencies = BTreeMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let names = package["dependencies"].as_array().into_iter().flatten();
        let names = names.filter_map(|d| d["name"].as_str().map(String::from)).collect();
        dependencies.insert(package["name"].as_str().unwrap_or_default().to_string(), names);
    }
    Ok(dependencies)
}

type Uses = BTreeMap<String, BTreeMap<String, PathBuf>>;
/// (module, outside crate) → the first file of the module that names the crate.
type CratesNamed = BTreeMap<(String, String), PathBuf>;

/// Top-level module → (module it uses → the first file that does), and (module, outside crate) →
/// the first file of the module that names the crate.
fn module_uses(src: &Path, known: &[&str]) -> Result<(Uses, CratesNamed)> {
    let mut uses = Uses::new();
    let mut crates_named = BTreeMap::new();
    for file in rust_files(src)? {
        let relative = file.strip_prefix(src).unwrap_or(&file);
        let mut path: Vec<String> = relative
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .collect();
        if path.last().is_some_and(|last| last == "mod") {
            path.pop();
        }
        let module = path.first().cloned().unwrap_or_else(|| "lib".into());
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let code = code_only(&text);
        let entry = uses.entry(module.clone()).or_default();
        for target in crate_paths(&code, &path, known)? {
            if target != module {
                entry.entry(target).or_insert_with(|| file.clone());
            }
        }
        for head in path_heads(&code) {
            crates_named.entry((module.clone(), head)).or_insert_with(|| file.clone());
        }
    }
    Ok((uses, crates_named))
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

/// `text` without comments and without the contents of string and char literals, with the
/// whitespace around `::` removed: what is left is the code's paths.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == '"' {
            // A string (raw strings with `#` are rare in this code and hold no paths the check needs).
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    let mut joined = out;
    for spaced in [" ::", ":: ", "\n::", "::\n"] {
        while joined.contains(spaced) {
            joined = joined.replace(spaced, "::");
        }
    }
    joined
}

/// The first segment of every path in `code` (`wasmtime` in `wasmtime::Engine`).
fn path_heads(code: &str) -> BTreeSet<String> {
    let mut heads = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("::") {
        let before = &rest[..at];
        let head: String = before.chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let head: String = head.chars().rev().collect();
        let starts_path = !before[..before.len() - head.len()].ends_with(':');
        if starts_path && !head.is_empty() {
            heads.insert(head);
        }
        rest = &rest[at + 2..];
    }
    heads
}

/// The top-level modules that `code` (from the file at module `path`) names through `crate::`,
/// `$crate::` or `super::` paths, groups included (`use crate::{a::b, c}` gives `a` and `c`).
/// Aliases of the crate root (`crate as x`, `self as x` in a `crate::` group) are refused: they
/// would hide paths from this check.
fn crate_paths(code: &str, path: &[String], known: &[&str]) -> Result<BTreeSet<String>> {
    if code.contains("crate as ") || code.contains("crate::{self as") {
        bail!("an alias of the crate root (`crate as …` / `crate::{{self as …}}`) hides paths from the layer check");
    }
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut found = BTreeSet::new();
    let add_group_or_ident = |rest: &str, found: &mut BTreeSet<String>| {
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
    };
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `plugin_sdk_crate::`
        }
        add_group_or_ident(rest, &mut found);
    }
    // `super::` chains that climb to the crate root name a top-level module. A `super::` inside an
    // inline module (`mod tests`) climbs one less; names that are not modules are ignored, so
    // such a path can only be missed, never blamed wrongly, and `crate::` is the house style.
    let mut rest = code;
    while let Some(at) = rest.find("super::") {
        let before = rest[..at].chars().next_back();
        let mut after = &rest[at..];
        rest = &rest[at + "super::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // the second `super::` of a chain, counted with the first
        }
        let mut climbs = 0;
        while let Some(tail) = after.strip_prefix("super::") {
            climbs += 1;
            after = tail;
        }
        if climbs >= path.len() {
            let mut names = BTreeSet::new();
            add_group_or_ident(after, &mut names);
            found.extend(names.into_iter().filter(|n| known.contains(&n.as_str())));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str, at: &[&str]) -> Vec<String> {
        let path: Vec<String> = at.iter().map(|s| s.to_string()).collect();
        let known = ["cache", "ipc", "runner", "sys", "text"];
        crate_paths(&code_only(text), &path, &known).unwrap().into_iter().collect()
    }

    #[test]
    fn paths_groups_and_macros_are_found_and_comments_and_strings_are_not() {
        let text = "use crate::ipc::protocol;\nuse crate::{sys::futex, text, self};\n// crate::runner\nlet x = \
                    crate::cache::key(); // crate::compile\nlet s = \"a // b\"; crate :: runner::x();\n";
        assert_eq!(paths(text, &["sys"]), ["cache", "ipc", "runner", "sys", "text"]);
        assert_eq!(paths("$crate::runner::main()", &["sys"]), ["runner"]);
        assert_eq!(paths("/* crate::runner */ let s = \"crate::runner\";", &["sys"]), Vec::<String>::new());
    }

    #[test]
    fn super_paths_that_reach_the_crate_root_are_found() {
        assert_eq!(paths("use super::runner;", &["sys"]), ["runner"]);
        assert_eq!(paths("use super::super::runner::x;", &["sys", "sandbox"]), ["runner"]);
        assert_eq!(paths("use super::landlock;", &["sys", "sandbox"]), Vec::<String>::new());
        assert_eq!(paths("use super::{cache, helper};", &["sys"]), ["cache"]);
    }

    #[test]
    fn an_alias_of_the_crate_root_is_refused() {
        assert!(crate_paths(&code_only("use crate as root;"), &[], &[]).is_err());
        assert!(crate_paths(&code_only("use crate::{self as c};"), &[], &[]).is_err());
    }
}
