//! `plugin-host new`: writes a plugin crate from the templates in `host/cli/templates/plugin/`: an
//! example filter with a parameter, a native unit test, golden-image cases (usable both by
//! `cargo test` and by `plugin-host test`) and a README. It builds for wasm and passes its tests
//! as generated.
//!
//! `plugin-sdk` is a path dependency when the crate is made inside a plugin-host source tree
//! (found by walking up from the target folder, then from the current folder), else a path
//! dependency on the SDK this binary carries, written once to a versioned folder
//! ([`super::vendored_sdk`]): no registry, no network. Inside the tree's `plugins/` folder the crate becomes a workspace member; anywhere
//! else it is its own workspace (an empty `[workspace]` table), so no enclosing workspace
//! swallows it.

use plugin_sdk::testing;
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `plugin-host new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's crate name: lowercase letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// Folder to create the crate in (default: the current folder; made if missing); the crate
    /// is DIR/NAME.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
}

/// Why no crate was made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("\"{0}\" is not a usable plugin name: use lowercase letters, digits, - and _, starting with a letter")]
    BadName(String),
    #[error("\"{0}\" is taken by a crate every plugin depends on; choose another name")]
    ReservedName(String),
    #[error("\"{0}\" is a Rust keyword, which cannot name a crate; choose another name")]
    Keyword(String),
    #[error("\"{0}\" is too long for a plugin name (at most 64 characters)")]
    LongName(String),
    #[error("{} already exists; choose another name or --dir", .0.display())]
    Exists(PathBuf),
    #[error("{} is a file, not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot write the golden images: {0}")]
    Golden(#[from] testing::ImageError),
    #[error("no folder for the plugin SDK: set HOME or XDG_DATA_HOME")]
    NoSdkFolder,
}

/// Where `plugin-sdk` comes from in the generated crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A member of the plugin-host workspace (the crate is in its `plugins/` folder).
    WorkspaceMember,
    /// A path dependency on this `plugin-sdk` folder (as written in Cargo.toml).
    Path(String),
    /// The SDK this binary carries, written to this folder.
    Carried(PathBuf),
}

const CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml.in");
const LIB_RS: &str = include_str!("../../templates/plugin/lib.rs.in");
const GOLDEN_RS: &str = include_str!("../../templates/plugin/golden.rs.in");
const README: &str = include_str!("../../templates/plugin/README.md.in");
const GITIGNORE: &str = include_str!("../../templates/plugin/gitignore.in");
/// For a crate with its own workspace; members of ours get the same from the repository's.
const CARGO_CONFIG: &str = include_str!("../../templates/plugin/cargo-config.toml.in");

/// The template filter's amount in the `cool` golden case (its `cool.params.toml`).
const COOL_AMOUNT: i16 = -60;
/// The template filter's default amount (also in `lib.rs.in`).
const DEFAULT_AMOUNT: i16 = 24;

/// Runs the command: one line on success; otherwise one sentence on stderr, and exit 2 for a
/// bad name or folder, 1 when writing failed.
pub fn command(args: &NewArgs) -> ExitCode {
    let parent = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    match create(&args.name, &parent) {
        Ok((path, sdk)) => {
            let crate_name = args.name.replace('-', "_");
            let member = sdk == SdkSource::WorkspaceMember;
            let sdk = match sdk {
                SdkSource::WorkspaceMember => "plugin-sdk from the enclosing workspace".to_string(),
                SdkSource::Path(p) => format!("plugin-sdk from {p}"),
                SdkSource::Carried(p) => format!("plugin-sdk {} from {}", env!("CARGO_PKG_VERSION"), p.display()),
            };
            println!("created plugin \"{}\" in {} ({sdk})", args.name, path.display());
            if member {
                println!("next: cargo test -p {}", args.name);
                println!("      cargo xtask build");
                println!(
                    "      plugin-host test target/plugins/{}.wasm {}",
                    args.name,
                    path.join("tests/golden").display()
                );
            } else {
                println!("next: cd {}", path.display());
                println!("      cargo test");
                println!("      cargo build --target wasm32-unknown-unknown --release");
                println!("      plugin-host test target/wasm32-unknown-unknown/release/{crate_name}.wasm tests/golden");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(if matches!(err, ScaffoldError::Write { .. } | ScaffoldError::Golden(_)) { 1 } else { 2 })
        }
    }
}

/// Creates the crate `parent/name`; returns its path and where its `plugin-sdk` comes from.
/// Everything is written into a temporary folder beside it first, so a failure leaves nothing.
pub fn create(name: &str, parent: &Path) -> Result<(PathBuf, SdkSource), ScaffoldError> {
    check_name(name)?;
    if parent.exists() && !parent.is_dir() {
        return Err(ScaffoldError::NotAFolder(parent.to_path_buf()));
    }
    // A folder that does not exist yet is made (and removed again if the crate cannot be).
    let made_parent = !parent.exists();
    if made_parent {
        std::fs::create_dir_all(parent).map_err(|source| write_err(parent, source))?;
    }
    let result = create_in(name, parent);
    if result.is_err() && made_parent {
        let _ = std::fs::remove_dir(parent);
    }
    result
}

/// [`create`] in an existing folder.
fn create_in(name: &str, parent: &Path) -> Result<(PathBuf, SdkSource), ScaffoldError> {
    let target = parent.join(name);
    if target.symlink_metadata().is_ok() {
        return Err(ScaffoldError::Exists(target));
    }
    let parent_abs = std::fs::canonicalize(parent).map_err(|source| write_err(parent, source))?;
    let cwd = std::env::current_dir().ok();
    let sdk = match sdk_source(&parent_abs, cwd.as_deref()) {
        Some(sdk) => sdk,
        None => SdkSource::Carried(super::vendored_sdk::install(
            &super::vendored_sdk::default_base().ok_or(ScaffoldError::NoSdkFolder)?,
        )?),
    };
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let result = write_crate(&partial, name, &sdk)
        .and_then(|()| std::fs::rename(&partial, &target).map_err(|source| write_err(&target, source)));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result.map(|()| (target, sdk))
}

fn write_err(path: &Path, source: std::io::Error) -> ScaffoldError {
    ScaffoldError::Write { path: path.to_path_buf(), source }
}

/// Rust's keywords (strict and reserved, 2024 edition): not usable as a crate name.
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become",
    "box", "do", "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !well_formed {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    if name.len() > 64 {
        return Err(ScaffoldError::LongName(name.to_string()));
    }
    if ["test", "plugin_sdk", "plugin-sdk", "core", "std", "alloc"].contains(&name) {
        return Err(ScaffoldError::ReservedName(name.to_string()));
    }
    if RUST_KEYWORDS.contains(&name.replace('-', "_").as_str()) {
        return Err(ScaffoldError::Keyword(name.to_string()));
    }
    Ok(())
}

/// `warm-glow` → `WarmGlow`; names the SDK already uses get a `Filter` suffix.
fn type_name(name: &str) -> String {
    let camel: String = name
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    const TAKEN: [&str; 9] =
        ["Frame", "FrameMut", "ParamSpec", "Params", "PixelFormat", "Plugin", "PluginError", "ParamValue", "Path"];
    if TAKEN.contains(&camel.as_str()) { format!("{camel}Filter") } else { camel }
}

/// The plugin-host source tree enclosing `dir`, if any: a folder with a `Cargo.toml` and a
/// `plugin-sdk/Cargo.toml` for the package `plugin-sdk`.
pub fn find_source_tree(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            d.join("Cargo.toml").is_file()
                && std::fs::read_to_string(d.join("plugin-sdk/Cargo.toml"))
                    .is_ok_and(|t| t.lines().any(|l| l.trim() == "name = \"plugin-sdk\""))
        })
        .map(Path::to_path_buf)
}

/// Where the generated crate (in `parent`, absolute) gets `plugin-sdk` from, inside a source
/// tree; `None` outside one (the SDK this binary carries).
pub fn sdk_source(parent: &Path, cwd: Option<&Path>) -> Option<SdkSource> {
    if let Some(root) = find_source_tree(parent) {
        if parent == root.join("plugins") {
            return Some(SdkSource::WorkspaceMember);
        }
        // Inside the tree: a relative path, so the tree can move.
        let depth = parent
            .strip_prefix(&root)
            .map_or(0, |rel| rel.components().filter(|c| matches!(c, Component::Normal(_))).count());
        return Some(SdkSource::Path(format!("{}plugin-sdk", "../".repeat(depth + 1))));
    }
    let root = cwd.and_then(find_source_tree)?;
    Some(SdkSource::Path(root.join("plugin-sdk").display().to_string()))
}

fn render(template: &str, pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(template.to_string(), |text, (key, value)| text.replace(&format!("{{{{{key}}}}}"), value))
}

fn write_crate(dir: &Path, name: &str, sdk: &SdkSource) -> Result<(), ScaffoldError> {
    let crate_name = name.replace('-', "_");
    let type_name = type_name(name);
    let (package_fields, dependency, tail) = match sdk {
        SdkSource::WorkspaceMember => (
            "version.workspace = true\nedition.workspace = true\nlicense.workspace = true".to_string(),
            "plugin-sdk.workspace = true".to_string(),
            "\n[lints]\nworkspace = true\n".to_string(),
        ),
        SdkSource::Path(path) => (
            "version = \"0.1.0\"\nedition = \"2024\"".to_string(),
            format!("plugin-sdk = {{ path = {} }}", toml::Value::String(path.to_string())),
            "\n# Its own workspace, so that no enclosing one claims it.\n[workspace]\n".to_string(),
        ),
        SdkSource::Carried(path) => (
            "version = \"0.1.0\"\nedition = \"2024\"".to_string(),
            format!("plugin-sdk = {{ path = {} }}", toml::Value::String(path.display().to_string())),
            "\n# Its own workspace, so that no enclosing one claims it.\n[workspace]\n".to_string(),
        ),
    };
    let pairs = [
        ("name", name),
        ("crate", crate_name.as_str()),
        ("type", type_name.as_str()),
        ("package_fields", package_fields.as_str()),
        ("sdk_dependency", dependency.as_str()),
        ("tail", tail.as_str()),
    ];
    let own_workspace = !matches!(sdk, SdkSource::WorkspaceMember);
    let files = [
        ("Cargo.toml", render(CARGO_TOML, &pairs)),
        ("src/lib.rs", render(LIB_RS, &pairs)),
        ("tests/golden.rs", render(GOLDEN_RS, &pairs)),
        ("README.md", render(README, &pairs)),
        (".gitignore", GITIGNORE.to_string()),
        ("tests/golden/cool.params.toml", format!("amount = {COOL_AMOUNT}\n")),
    ];
    let config = own_workspace.then(|| (".cargo/config.toml", CARGO_CONFIG.to_string()));
    for (file, text) in files.into_iter().chain(config) {
        let path = dir.join(file);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|source| write_err(folder, source))?;
        }
        std::fs::write(&path, text).map_err(|source| write_err(&path, source))?;
    }
    let golden = dir.join("tests/golden");
    let input = testing::gradient(64, 48, PixelFormat::Rgba8);
    for (case, amount) in [("gradient", DEFAULT_AMOUNT), ("cool", COOL_AMOUNT)] {
        testing::write_png(&golden.join(format!("{case}.in.png")), &input)?;
        testing::write_png(&golden.join(format!("{case}.expected.png")), &warm(&input, amount))?;
    }
    Ok(())
}

/// What the template's filter (`lib.rs.in`) makes of `input`: the golden images' expected
/// output. `plugin-host`'s tests build and run the generated crate, so the two cannot drift.
fn warm(input: &OwnedFrame, amount: i16) -> OwnedFrame {
    let mut out = input.clone();
    for pixel in out.data.chunks_exact_mut(4) {
        pixel[0] = (pixel[0] as i16 + amount).clamp(0, 255) as u8;
        pixel[2] = (pixel[2] as i16 - amount).clamp(0, 255) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("warm-glow_2").is_ok());
        for bad in ["", "Warm", "2warm", "warm glow", "../x", "std"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("warm-glow_2"), "WarmGlow2");
        assert_eq!(type_name("plugin"), "PluginFilter");
    }

    #[test]
    fn sdk_dependency_follows_the_location() {
        let root = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap();
        assert_eq!(sdk_source(&root.join("plugins"), None), Some(SdkSource::WorkspaceMember));
        assert_eq!(sdk_source(&root.join("examples"), None), Some(SdkSource::Path("../../plugin-sdk".into())));
        assert_eq!(sdk_source(&root, None), Some(SdkSource::Path("../plugin-sdk".into())));
        let outside = Path::new("/");
        assert_eq!(
            sdk_source(outside, Some(&root.join("host"))),
            Some(SdkSource::Path(root.join("plugin-sdk").display().to_string()))
        );
        assert_eq!(sdk_source(outside, Some(outside)), None, "outside a tree: the carried SDK");
    }

    #[test]
    fn refuses_an_existing_target_and_leaves_nothing_on_failure() {
        let dir = std::env::temp_dir().join(format!("scaffold-unit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("taken")).unwrap();
        assert!(matches!(create("taken", &dir), Err(ScaffoldError::Exists(_))));
        assert!(matches!(create("Bad", &dir), Err(ScaffoldError::BadName(_))));
        assert!(matches!(create("std", &dir), Err(ScaffoldError::ReservedName(_))));
        for keyword in ["self", "fn", "crate", "match", "async"] {
            assert!(matches!(create(keyword, &dir), Err(ScaffoldError::Keyword(_))), "{keyword}");
        }
        std::fs::write(dir.join("a-file"), "").unwrap();
        assert!(matches!(create("x", &dir.join("a-file")), Err(ScaffoldError::NotAFolder(_))));
        std::fs::remove_file(dir.join("a-file")).unwrap();
        assert!(matches!(create(&"a".repeat(65), &dir), Err(ScaffoldError::LongName(_))));
        let (made, _) = create("x", &dir.join("missing")).unwrap();
        assert!(made.join("Cargo.toml").is_file(), "a missing --dir is made");
        std::fs::remove_dir_all(dir.join("missing")).unwrap();
        let (path, _) = create("fresh", &dir).unwrap();
        assert!(path.join("tests/golden/gradient.expected.png").is_file());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no partial folder left: {names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
