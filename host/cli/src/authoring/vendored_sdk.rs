//! The SDK this binary was built with, carried inside it. `plugin-host new` outside a plugin-host
//! source tree writes it once to a folder named for its version and content, and the new crate
//! depends on that folder by path: it builds offline, and never against a registry name we do
//! not own (anyone could publish a `plugin-sdk` there).

use super::scaffold::ScaffoldError;
use std::path::{Path, PathBuf};

/// Every source file of `plugin-sdk`, as built into this binary (a test checks the list against
/// the folder).
const SOURCES: &[(&str, &str)] = &[
    ("src/abi.rs", include_str!("../../../../plugin-sdk/src/abi.rs")),
    ("src/convert.rs", include_str!("../../../../plugin-sdk/src/convert.rs")),
    ("src/describe.rs", include_str!("../../../../plugin-sdk/src/describe.rs")),
    ("src/frame.rs", include_str!("../../../../plugin-sdk/src/frame.rs")),
    ("src/lib.rs", include_str!("../../../../plugin-sdk/src/lib.rs")),
    ("src/params.rs", include_str!("../../../../plugin-sdk/src/params.rs")),
    ("src/runtime.rs", include_str!("../../../../plugin-sdk/src/runtime.rs")),
    ("src/testing.rs", include_str!("../../../../plugin-sdk/src/testing.rs")),
];
const SDK_MANIFEST: &str = include_str!("../../../../plugin-sdk/Cargo.toml");
/// For the values the SDK's manifest inherits from the workspace.
const WORKSPACE_MANIFEST: &str = include_str!("../../../../Cargo.toml");

/// The SDK's manifest made standalone: what it inherits from the workspace filled in, its lints
/// (the workspace's) left out.
fn manifest() -> String {
    let parse = |text: &str| text.parse::<toml::Table>().expect("the manifests built into plugin-host parse");
    let (mut sdk, workspace) = (parse(SDK_MANIFEST), parse(WORKSPACE_MANIFEST));
    let inherited = |section: &str, key: &str| {
        workspace.get("workspace").and_then(|w| w.get(section)).and_then(|t| t.get(key)).cloned()
    };
    let inherits = |value: &toml::Value| value.get("workspace").and_then(toml::Value::as_bool) == Some(true);
    if let Some(toml::Value::Table(package)) = sdk.get_mut("package") {
        for (key, value) in package.iter_mut() {
            if inherits(value)
                && let Some(found) = inherited("package", key)
            {
                *value = found;
            }
        }
        package.insert("publish".into(), false.into());
    }
    let (dependencies, targets) = split_dependencies(&mut sdk);
    for table in dependencies.into_iter().chain(targets) {
        for (name, value) in table.iter_mut() {
            if inherits(value)
                && let Some(found) = inherited("dependencies", name)
            {
                *value = found;
            }
        }
    }
    sdk.remove("lints");
    format!("# Written by plugin-host {}: the plugin SDK it was built with.\n{sdk}", env!("CARGO_PKG_VERSION"))
}

/// The manifest's `[dependencies]` and every `[target.*.dependencies]` table.
fn split_dependencies(sdk: &mut toml::Table) -> (Option<&mut toml::Table>, Vec<&mut toml::Table>) {
    let mut dependencies = None;
    let mut targets = Vec::new();
    for (key, value) in sdk.iter_mut() {
        match (key.as_str(), value) {
            ("dependencies", toml::Value::Table(table)) => dependencies = Some(table),
            ("target", toml::Value::Table(platforms)) => {
                for (_, platform) in platforms.iter_mut() {
                    if let Some(toml::Value::Table(table)) = platform.get_mut("dependencies") {
                        targets.push(table);
                    }
                }
            }
            _ => {}
        }
    }
    (dependencies, targets)
}

/// The files to write, manifest first.
fn files() -> Vec<(&'static str, String)> {
    let mut files = vec![("Cargo.toml", manifest())];
    files.extend(SOURCES.iter().map(|&(path, text)| (path, text.to_string())));
    files
}

/// FNV-1a over every file: names the folder, so that another SDK never reuses it.
fn content_hash(files: &[(&str, String)]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (path, text) in files {
        for byte in path.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Where the SDK folders go: `$XDG_DATA_HOME/plugin-host/sdk`, else `~/.local/share/plugin-host/sdk`.
pub fn default_base() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(data.join("plugin-host/sdk"))
}

/// Writes the SDK into `base/plugin-sdk-VERSION-HASH` unless it is there already, whole and
/// unchanged; returns that folder. A folder that differs (edited, half-written) is replaced.
pub fn install(base: &Path) -> Result<PathBuf, ScaffoldError> {
    let files = files();
    let dir = base.join(format!("plugin-sdk-{}-{:016x}", env!("CARGO_PKG_VERSION"), content_hash(&files)));
    let intact = files.iter().all(|(path, text)| std::fs::read_to_string(dir.join(path)).is_ok_and(|t| t == *text));
    if intact {
        return Ok(dir);
    }
    let write_err = |path: &Path, source| ScaffoldError::Write { path: path.to_path_buf(), source };
    let partial = base.join(format!(".partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    for (path, text) in &files {
        let path = partial.join(path);
        let folder = path.parent().unwrap_or(&partial);
        std::fs::create_dir_all(folder).map_err(|e| write_err(folder, e))?;
        std::fs::write(&path, text).map_err(|e| write_err(&path, e))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| write_err(&dir, e))?;
    }
    std::fs::rename(&partial, &dir).map_err(|e| write_err(&dir, e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_source_file_is_carried() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugin-sdk/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| format!("src/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let carried: Vec<String> = SOURCES.iter().map(|(path, _)| path.to_string()).collect();
        assert_eq!(carried, on_disk, "add the new SDK file to SOURCES");
    }

    #[test]
    fn the_manifest_stands_alone() {
        let manifest = manifest();
        let table: toml::Table = manifest.parse().unwrap();
        assert!(!manifest.contains("workspace"), "{manifest}");
        assert_eq!(table["package"]["name"].as_str(), Some("plugin-sdk"));
        assert_eq!(table["package"]["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
        assert!(table.get("lints").is_none());
        let native = &table["target"]["cfg(not(target_arch = \"wasm32\"))"]["dependencies"];
        assert!(native["thiserror"].is_str() && native["png"].is_str(), "{manifest}");
    }

    #[test]
    fn installs_once_and_mends_an_edited_copy() {
        let base = std::env::temp_dir().join(format!("vendored-sdk-unit-{}", std::process::id()));
        let dir = install(&base).unwrap();
        assert!(dir.join("src/lib.rs").is_file() && dir.join("Cargo.toml").is_file());
        let before = std::fs::metadata(dir.join("src/lib.rs")).unwrap().modified().unwrap();
        assert_eq!(install(&base).unwrap(), dir);
        assert_eq!(std::fs::metadata(dir.join("src/lib.rs")).unwrap().modified().unwrap(), before, "not rewritten");
        std::fs::write(dir.join("src/abi.rs"), "// edited").unwrap();
        assert_eq!(install(&base).unwrap(), dir);
        assert_eq!(std::fs::read_to_string(dir.join("src/abi.rs")).unwrap(), SOURCES[0].1);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
