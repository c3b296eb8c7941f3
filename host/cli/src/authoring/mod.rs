//! Commands for plugin authors: `plugin-host inspect` (what a plugin declares), `plugin-host new` (a plugin crate that builds and passes its tests
//! out of the box) and `plugin-host test` (the real module in its real process against golden
//! images). The image comparison itself is `plugin_sdk::testing`, shared with native unit tests.

pub mod golden;
pub mod inspect;
pub mod scaffold;
mod vendored_sdk;

pub use golden::TestArgs;
pub use scaffold::NewArgs;

/// `plugin "NAME"` for messages about the plugin in `path`: its file name without `.wasm`.
pub(crate) fn plugin_name(path: &std::path::Path) -> String {
    path.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned())
}
