//! Compiled modules, so that a plugin's start (and every restart) deserialises instead of
//! compiling. Compiled once per module in the host (cranelift is built for untrusted input),
//! kept in memory for the run and on disk across runs, keyed by the module's SHA-256 and the
//! engine's compatibility hash (wasmtime's version, the target and the compilation settings).
//!
//! `Module::deserialize` runs whatever machine code it is given, so an entry is trusted only if
//! it carries our magic, its key, and the SHA-256 of its contents; anything else is recompiled
//! and overwritten.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

const ENTRY_MAGIC: &[u8; 8] = b"PHCACHE1";

/// The compiled form of one module.
pub type Artifact = Arc<Vec<u8>>;

/// Why a module could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("not a valid WebAssembly module: {0}")]
pub struct CompileError(pub String);

/// The folder: `$PLUGIN_HOST_CACHE`, else `$XDG_CACHE_HOME/plugin-host`, else
/// `~/.cache/plugin-host`. `None` (no disk cache) when none can be found.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PLUGIN_HOST_CACHE") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("plugin-host"))
}

/// The cache key of `module` for this build's engine.
pub fn key(module: &[u8]) -> String {
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    if let Ok(engine) = crate::runner::engine_for_precompile() {
        engine.precompile_compatibility_hash().hash(&mut settings);
    }
    let digest = Sha256::digest(module);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    // The compatibility hash covers wasmtime's version, target and compilation settings.
    format!("{hex}-{:016x}", settings.finish())
}

/// Statistics of one process's cache use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub memory_hits: u64,
    pub disk_hits: u64,
    pub compiled: u64,
    pub refused_entries: u64,
}

struct Cache {
    memory: HashMap<String, Artifact>,
    counts: CacheCounts,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache { memory: HashMap::new(), counts: CacheCounts::default() }))
}

/// Counts since the process started.
pub fn counts() -> CacheCounts {
    cache().lock().map(|c| c.counts).unwrap_or_default()
}

/// The compiled form of `module`: from memory, from `dir`, or compiled now (and stored in both).
pub fn artifact(module: &[u8], dir: Option<&Path>) -> Result<Artifact, CompileError> {
    let key = key(module);
    let mut cache = cache().lock().map_err(|_| CompileError("the module cache is poisoned".into()))?;
    if let Some(found) = cache.memory.get(&key) {
        let found = Arc::clone(found);
        cache.counts.memory_hits += 1;
        return Ok(found);
    }
    let path = dir.map(|d| d.join(format!("{key}.cwasm")));
    if let Some(path) = &path {
        match read_entry(path, &key) {
            Ok(Some(artifact)) => {
                let artifact = Arc::new(artifact);
                cache.counts.disk_hits += 1;
                cache.memory.insert(key, Arc::clone(&artifact));
                return Ok(artifact);
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!("ignoring cache entry {}: {reason}", path.display());
                cache.counts.refused_entries += 1;
            }
        }
    }
    let engine = crate::runner::engine_for_precompile().map_err(CompileError)?;
    let compiled = engine.precompile_module(module).map_err(|e| CompileError(format!("{e:#}")))?;
    let artifact = Arc::new(compiled);
    cache.counts.compiled += 1;
    cache.memory.insert(key.clone(), Arc::clone(&artifact));
    if let Some(path) = &path
        && let Err(e) = write_entry(path, &key, &artifact)
    {
        tracing::debug!("cannot write cache entry {}: {e}", path.display());
    }
    Ok(artifact)
}

/// Reads and checks an entry: `None` if there is none, `Err` if it is not to be trusted.
fn read_entry(path: &Path, key: &str) -> Result<Option<Vec<u8>>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let header = ENTRY_MAGIC.len() + 2 + key.len() + 32;
    if bytes.len() < header || &bytes[..8] != ENTRY_MAGIC {
        return Err("not a plugin-host cache entry".into());
    }
    let key_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    if key_len != key.len() || &bytes[10..10 + key_len] != key.as_bytes() {
        return Err("its key does not match its name".into());
    }
    let (digest, body) = bytes[10 + key_len..].split_at(32);
    if Sha256::digest(body).as_slice() != digest {
        return Err("its contents do not match their checksum (tampered or damaged)".into());
    }
    Ok(Some(body.to_vec()))
}

/// Writes an entry atomically (temporary file, then rename) in a private folder.
fn write_entry(path: &Path, key: &str, artifact: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = path.parent().ok_or_else(|| std::io::Error::other("no folder"))?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mut entry = Vec::with_capacity(artifact.len() + 128);
    entry.extend_from_slice(ENTRY_MAGIC);
    entry.extend_from_slice(&(key.len() as u16).to_le_bytes());
    entry.extend_from_slice(key.as_bytes());
    entry.extend_from_slice(&Sha256::digest(artifact));
    entry.extend_from_slice(artifact);
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&temporary, &entry)?;
    std::fs::rename(&temporary, path)
}

/// Forgets the in-memory entries (for tests and benchmarks of cold starts).
pub fn clear_memory() {
    if let Ok(mut cache) = cache().lock() {
        cache.memory.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_tampering_is_refused() {
        let dir = std::env::temp_dir().join(format!("plugin-host-cache-test-{}", std::process::id()));
        let path = dir.join("k.cwasm");
        write_entry(&path, "k", b"machine code").unwrap();
        assert_eq!(read_entry(&path, "k").unwrap().unwrap(), b"machine code");
        assert!(read_entry(&path, "other").is_err(), "an entry under another key is refused");
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_entry(&path, "k").unwrap_err().contains("tampered"));
        assert_eq!(read_entry(&dir.join("missing.cwasm"), "k").unwrap(), None);
        std::fs::write(&path, b"junk").unwrap();
        assert!(read_entry(&path, "k").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
