//! Compiled modules, so that a plugin's start (and every restart) deserialises instead of
//! compiling. A module is compiled once, by a sandboxed compiler process (see
//! [`crate::compile`]); the result is kept in memory for the run and on disk across runs, keyed by
//! the module's SHA-256 and the engine's compatibility hash (wasmtime's version, the target and
//! the compilation settings).
//!
//! A disk entry is native code that a runner will execute, so it is trusted only when it carries
//! a valid HMAC-SHA256 made with this user's secret key (`mac.key` in the cache folder, mode
//! 0600, created once with `O_EXCL`): a checksum would prove nothing, anyone who can write the
//! file can recompute it. The folder is used only when it is this user's and writable by nobody
//! else; entries and the key are opened relative to the folder's descriptor with `O_NOFOLLOW`
//! and `O_NONBLOCK` and must be regular files under a size cap, so a planted symlink, FIFO or
//! device is refused, never followed or waited on. New entries go through a temporary created
//! with `O_EXCL|O_NOFOLLOW` under a random name. Anything refused is recompiled (one warning).

use hmac::{Hmac, KeyInit, Mac};
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstat};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

const ENTRY_MAGIC: &[u8; 8] = b"PHCACHE2";
const KEY_FILE: &str = "mac.key";
const KEY_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// Largest entry read back: far above any compiled plugin, far below what would hurt the host.
pub const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// The compiled form of one module.
pub type Artifact = Arc<Vec<u8>>;

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

/// The cache key of `module` for this build's engine. Hashes the bytes; never parses them.
pub fn key(module: &[u8]) -> String {
    let digest = Sha256::digest(module);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    // The compatibility hash covers wasmtime's version, target and compilation settings.
    format!("{hex}-{:016x}", crate::artifact::compatibility_hash())
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
    /// Folders already warned about, so that each is reported once per process.
    warned: Vec<PathBuf>,
}

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            Mutex::new(Cache { memory: HashMap::new(), counts: CacheCounts::default(), warned: Vec::new() })
        })
        .lock()
        // The cache holds only finished values: one left by a panicking thread is still whole.
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts since the process started.
pub fn counts() -> CacheCounts {
    cache().counts
}

/// The compiled form of `module`: from memory, from an authenticated entry in `dir`, or made now
/// by `compile`, which is handed the module (and stored in both). An entry larger than `max_entry` bytes (the compiler's
/// memory limit: it could not have made a larger one) is refused before it is read. The lock is
/// not held while `compile` runs.
pub fn artifact<E>(
    module: Vec<u8>,
    dir: Option<&Path>,
    max_entry: u64,
    compile: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, E>,
) -> Result<Artifact, E> {
    let key = key(&module);
    {
        let mut cache = cache();
        if let Some(found) = cache.memory.get(&key).cloned() {
            cache.counts.memory_hits += 1;
            return Ok(found);
        }
    }
    let disk = dir.and_then(|dir| match DiskCache::open(dir) {
        Ok(disk) => Some(disk),
        Err(reason) => {
            warn_once(dir, &reason);
            None
        }
    });
    if let Some(disk) = &disk {
        match disk.read(&key, max_entry.min(MAX_ENTRY_BYTES)) {
            Ok(Some(artifact)) => {
                let artifact = Arc::new(artifact);
                let mut cache = cache();
                cache.counts.disk_hits += 1;
                cache.memory.insert(key, Arc::clone(&artifact));
                return Ok(artifact);
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!("ignoring compiled-module cache entry {}/{key}.cwasm: {reason}; recompiling", disk.path);
                cache().counts.refused_entries += 1;
            }
        }
    }
    let artifact = Arc::new(compile(module)?);
    {
        let mut cache = cache();
        cache.counts.compiled += 1;
        cache.memory.insert(key.clone(), Arc::clone(&artifact));
    }
    if let Some(disk) = &disk
        && let Err(e) = disk.write(&key, &artifact)
    {
        tracing::debug!("cannot write cache entry {}/{key}.cwasm: {e}", disk.path);
    }
    Ok(artifact)
}

fn warn_once(dir: &Path, reason: &str) {
    let mut cache = cache();
    if !cache.warned.iter().any(|d| d == dir) {
        cache.warned.push(dir.to_path_buf());
        tracing::warn!("not using the compiled-module cache in {}: {reason}", dir.display());
    }
}

/// Forgets the in-memory entries (for tests and benchmarks of cold starts).
pub fn clear_memory() {
    cache().memory.clear();
}

/// An open, checked cache folder and this user's key.
struct DiskCache {
    folder: OwnedFd,
    path: String,
    key: [u8; KEY_LEN],
}

impl DiskCache {
    /// Opens (creating it, mode 0700, if missing) and checks the folder, then reads or creates
    /// the key. `Err` says why the folder is not to be used.
    fn open(dir: &Path) -> Result<Self, String> {
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| e.to_string())?;
        }
        let folder = nix::fcntl::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| format!("cannot open it: {e}"))?;
        let stat = fstat(&folder).map_err(|e| e.to_string())?;
        let me = nix::unistd::geteuid().as_raw();
        if stat.st_uid != me {
            return Err(format!("it belongs to uid {}, not to this user (uid {me})", stat.st_uid));
        }
        if stat.st_mode & 0o022 != 0 {
            return Err(format!("others may write to it (mode {:o}); make it 0700", stat.st_mode & 0o7777));
        }
        let path = dir.display().to_string();
        if let Ok(stat) = nix::sys::stat::fstatat(&folder, KEY_FILE, AtFlags::AT_SYMLINK_NOFOLLOW)
            && stat.st_mode & 0o077 != 0
        {
            return Err(format!(
                "its {KEY_FILE} may be read by others (mode {:o}); make it 0600",
                stat.st_mode & 0o777
            ));
        }
        let key = match read_private(&folder, KEY_FILE, KEY_LEN as u64) {
            Ok(Some(bytes)) if bytes.len() == KEY_LEN => bytes,
            Ok(Some(_)) => return Err(format!("its {KEY_FILE} is not a {KEY_LEN}-byte key")),
            Ok(None) => create_key(&folder)?,
            Err(reason) => return Err(format!("its {KEY_FILE}: {reason}")),
        };
        let mut fixed = [0u8; KEY_LEN];
        fixed.copy_from_slice(&key);
        Ok(Self { folder, path, key: fixed })
    }

    fn mac(&self, key: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(ENTRY_MAGIC);
        mac.update(&(key.len() as u64).to_le_bytes());
        mac.update(key.as_bytes());
        mac.update(body);
        mac
    }

    /// Reads and authenticates an entry: `None` if there is none, `Err` if it is not to be trusted.
    /// The header (magic and MAC) is read and checked before the body, which is read only when
    /// the whole entry is at most `max` bytes.
    fn read(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, String> {
        let Some((mut file, size)) = open_private(&self.folder, &format!("{key}.cwasm"), max)? else {
            return Ok(None);
        };
        let mut header = [0u8; ENTRY_MAGIC.len() + MAC_LEN];
        if file.read_exact(&mut header).is_err() || &header[..ENTRY_MAGIC.len()] != ENTRY_MAGIC {
            return Err("not a plugin-host cache entry".into());
        }
        let body_len = size - header.len() as u64;
        let mut body = Vec::with_capacity(body_len as usize);
        file.take(body_len + 1).read_to_end(&mut body).map_err(|e| e.to_string())?;
        if body.len() as u64 != body_len {
            return Err("it changed while it was read".into());
        }
        self.mac(key, &body)
            .verify_slice(&header[ENTRY_MAGIC.len()..])
            .map_err(|_| "its authentication code is wrong (tampered, damaged, or made with another key)")?;
        Ok(Some(body))
    }

    /// Writes an entry atomically: a fresh temporary (`O_EXCL|O_NOFOLLOW`), then a rename.
    fn write(&self, key: &str, artifact: &[u8]) -> std::io::Result<()> {
        let tag = self.mac(key, artifact).finalize().into_bytes();
        let (temporary, mut file) = create_temporary(&self.folder)?;
        let written = file
            .write_all(ENTRY_MAGIC)
            .and_then(|()| file.write_all(&tag))
            .and_then(|()| file.write_all(artifact))
            .and_then(|()| file.sync_all());
        let renamed = written.and_then(|()| {
            renameat(self.folder.as_fd(), temporary.as_str(), self.folder.as_fd(), format!("{key}.cwasm").as_str())
                .map_err(std::io::Error::from)
        });
        if renamed.is_err() {
            let _ =
                nix::unistd::unlinkat(self.folder.as_fd(), temporary.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        renamed
    }
}

/// Reads `name` in `folder` if it is a regular file of this user's, at most `max` bytes, never
/// following a symlink or waiting on a FIFO. `Ok(None)` when there is no such name.
fn read_private(folder: &OwnedFd, name: &str, max: u64) -> Result<Option<Vec<u8>>, String> {
    let Some((file, size)) = open_private(folder, name, max)? else { return Ok(None) };
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err("it grew while it was read".into());
    }
    Ok(Some(bytes))
}

/// Opens `name` in `folder` as [`read_private`] reads it: the file and its size.
fn open_private(folder: &OwnedFd, name: &str, max: u64) -> Result<Option<(File, u64)>, String> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = match openat(folder.as_fd(), name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(nix::errno::Errno::ELOOP) => return Err("it is a symbolic link".into()),
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let stat = fstat(&fd).map_err(|e| e.to_string())?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("it is not a regular file".into());
    }
    if stat.st_uid != nix::unistd::geteuid().as_raw() {
        return Err(format!("it belongs to uid {}, not to this user", stat.st_uid));
    }
    if stat.st_size as u64 > max {
        return Err(format!("it is {} bytes, more than the {max} allowed", stat.st_size));
    }
    Ok(Some((File::from(fd), stat.st_size as u64)))
}

/// A new file in `folder` under a random name, mode 0600, created with `O_EXCL|O_NOFOLLOW`.
fn create_temporary(folder: &OwnedFd) -> std::io::Result<(String, File)> {
    let mut random = [0u8; 12];
    File::open("/dev/urandom")?.read_exact(&mut random)?;
    let name = format!(".tmp-{}", random.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(folder.as_fd(), name.as_str(), flags, Mode::from_bits_truncate(0o600))?;
    Ok((name, File::from(fd)))
}

/// Makes this user's key: random bytes in a fresh temporary, linked (never renamed, so an
/// existing key is never replaced) to `mac.key`. If another process won the race, its key is read.
fn create_key(folder: &OwnedFd) -> Result<Vec<u8>, String> {
    let mut key = vec![0u8; KEY_LEN];
    let made = (|| -> std::io::Result<String> {
        File::open("/dev/urandom")?.read_exact(&mut key)?;
        let (temporary, mut file) = create_temporary(folder)?;
        file.write_all(&key).and_then(|()| file.sync_all())?;
        Ok(temporary)
    })()
    .map_err(|e| format!("cannot create its key: {e}"))?;
    let linked = nix::unistd::linkat(folder.as_fd(), made.as_str(), folder.as_fd(), KEY_FILE, AtFlags::empty());
    let _ = nix::unistd::unlinkat(folder.as_fd(), made.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    match linked {
        Ok(()) => Ok(key),
        Err(nix::errno::Errno::EEXIST) => match read_private(folder, KEY_FILE, KEY_LEN as u64)? {
            Some(bytes) if bytes.len() == KEY_LEN => Ok(bytes),
            _ => Err(format!("its {KEY_FILE} is not a {KEY_LEN}-byte key")),
        },
        Err(e) => Err(format!("cannot create its key: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plugin-host-cache-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn entries_round_trip_and_tampering_is_refused() {
        let dir = folder("tamper");
        let disk = DiskCache::open(&dir).unwrap();
        let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
        disk.write("k", b"machine code").unwrap();
        assert_eq!(disk.read("k", MAX_ENTRY_BYTES).unwrap().unwrap(), b"machine code");
        std::fs::rename(dir.join("k.cwasm"), dir.join("other.cwasm")).unwrap();
        assert!(disk.read("other", MAX_ENTRY_BYTES).is_err(), "an entry under another key is refused");
        let path = dir.join("k.cwasm");
        disk.write("k", b"machine code").unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(disk.read("k", MAX_ENTRY_BYTES).unwrap_err().contains("authentication"));
        assert_eq!(disk.read("missing", MAX_ENTRY_BYTES).unwrap(), None);
        std::fs::write(&path, b"junk").unwrap();
        assert!(disk.read("k", MAX_ENTRY_BYTES).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_entry_made_with_another_key_is_refused_even_with_a_fresh_checksum() {
        let dir = folder("foreign");
        let disk = DiskCache::open(&dir).unwrap();
        disk.write("k", b"real code").unwrap();
        // An attacker who can write the folder but not read the key writes their own code with
        // a MAC under a key of theirs, the strongest "checksum" they can make.
        let forger = DiskCache { folder: disk.folder.try_clone().unwrap(), path: String::new(), key: [7; KEY_LEN] };
        forger.write("k", b"evil code").unwrap();
        assert!(disk.read("k", MAX_ENTRY_BYTES).is_err(), "a forged entry is never returned");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn planted_files_are_refused_not_followed_or_waited_on() {
        let dir = folder("planted");
        let disk = DiskCache::open(&dir).unwrap();
        let target = dir.join("elsewhere");
        disk.write("k", b"code").unwrap();
        std::fs::rename(dir.join("k.cwasm"), &target).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("k.cwasm")).unwrap();
        assert!(disk.read("k", MAX_ENTRY_BYTES).unwrap_err().contains("symbolic link"));
        nix::unistd::mkfifo(&dir.join("fifo.cwasm"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(
            disk.read("fifo", MAX_ENTRY_BYTES).unwrap_err().contains("not a regular file"),
            "a FIFO is refused at once"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_huge_or_foreign_entry_is_refused_before_its_body_is_read() {
        let dir = folder("huge");
        let disk = DiskCache::open(&dir).unwrap();
        std::fs::write(dir.join("k.cwasm"), vec![7u8; 1 << 20]).unwrap();
        assert!(disk.read("k", 4096).unwrap_err().contains("more than the 4096 allowed"));
        assert!(disk.read("k", MAX_ENTRY_BYTES).unwrap_err().contains("not a plugin-host cache entry"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_key_others_may_read_turns_the_disk_cache_off() {
        let dir = folder("open-key");
        DiskCache::open(&dir).unwrap();
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(DiskCache::open(&dir).err().unwrap().contains("may be read by others"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_second_request_is_served_from_memory_without_compiling() {
        let module = b"\0asm-a-test-module-asked-for-twice";
        let first = artifact(module.to_vec(), None, MAX_ENTRY_BYTES, |_| Ok::<_, ()>(vec![3])).unwrap();
        let compile_again = |_| -> Result<Vec<u8>, ()> { panic!("compiled twice") };
        let second = artifact(module.to_vec(), None, MAX_ENTRY_BYTES, compile_again).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn a_folder_others_may_write_is_not_used() {
        let dir = folder("shared");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = DiskCache::open(&dir).err().expect("a world-writable folder is refused");
        assert!(refused.contains("others may write"), "{refused}");
        let module = b"\0asm-a-test-module-for-the-shared-folder".to_vec();
        let compiled = artifact(module, Some(&dir), MAX_ENTRY_BYTES, |_| Ok::<_, ()>(vec![1, 2]));
        assert_eq!(*compiled.unwrap(), vec![1, 2], "the run goes on without the disk cache");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing was written there");
        let _ = std::fs::remove_dir_all(dir);
    }
}
