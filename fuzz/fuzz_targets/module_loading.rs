//! Any bytes as a plugin module, loaded as `inspect` loads one: a description or one clear
//! sentence, never a panic or a hang. Needs the plugins and a runner: `cargo xtask build`, then
//! `PLUGIN_HOST_BIN=target/release/plugin-host cargo +nightly fuzz run module_loading`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|module: &[u8]| {
    let dir = std::env::temp_dir().join(format!("plugin-host-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if let Err(message) = plugin_host_tests::load_untrusted_module(&dir, module) {
        assert!(!message.contains('\n'), "one line: {message}");
    }
});
