//! The compiled form of a module, as host and runners agree on it (kept apart from `ipc`, which
//! has no wasmtime in it): the wasmtime settings every
//! engine shares, so that an artifact compiled by one runner (the sandboxed compiler) deserialises
//! in another, and the host can key its cache by them without ever loading an artifact itself.

use wasmtime::{Config, Engine};

/// The compilation settings of every engine that compiles or runs plugin modules.
pub fn engine_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64));
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config.max_wasm_stack(1 << 20);
    // Copy-on-write memory images assume wasmtime's own mmap memories (see `runner::memory`).
    config.memory_init_cow(false);
    // Explicit, so that WASMTIME_BACKTRACE_DETAILS in the host's environment (the runner's is
    // cleared) cannot make the two compile differently.
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    config
}

/// The engine modules are compiled with (in a compiler runner; it never runs them), also asked by
/// the host for its compatibility hash.
pub fn compiling_engine() -> Result<&'static Engine, String> {
    static ENGINE: std::sync::OnceLock<Result<Engine, String>> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(&engine_config()).map_err(|e| format!("{e:#}"))).as_ref().map_err(Clone::clone)
}

/// A hash of everything that makes artifacts compatible: wasmtime's version, the target and the
/// compilation settings. 0 when no engine can be made here.
pub fn compatibility_hash() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    if let Ok(engine) = compiling_engine() {
        engine.precompile_compatibility_hash().hash(&mut settings);
    }
    settings.finish()
}
