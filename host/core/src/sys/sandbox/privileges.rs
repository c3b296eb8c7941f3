//! The process-level layers: descriptors, environment, no_new_privs, the death signal,
//! capabilities, rlimits and namespaces.

use super::names::*;
use super::{Layer, State};
use crate::sys::process::{RUNNER_CONTROL_IN_FD, RUNNER_REGION_FD};
use std::io;

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1)
}

/// Closes every descriptor but 3, 4 and 5, stdin/stdout/stderr included (they are `/dev/null`
/// and nothing in the runner writes to them; std ignores writes to a closed stderr).
pub fn close_other_descriptors() -> io::Result<()> {
    let last_kept = RUNNER_REGION_FD as libc::c_uint;
    // SAFETY: close_range only changes the descriptor table; the runner owns no descriptor above
    // 5 yet (its own are taken after the sandbox), and 0..=2 are not used by Rust code.
    let above = unsafe { libc::close_range(last_kept + 1, libc::c_uint::MAX, 0) };
    if above != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above, for 0..=2.
    let below = unsafe { libc::close_range(0, RUNNER_CONTROL_IN_FD as libc::c_uint - 1, 0) };
    if below != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes every environment variable (the host already starts runners with none; an embedder's
/// runner may not).
pub fn clear_environment() {
    for (key, _) in std::env::vars_os() {
        // SAFETY: `apply` checked that this process has a single thread, so nothing can read the
        // environment concurrently.
        unsafe { std::env::remove_var(key) };
    }
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The errno's name (and what it means here), for the report.
pub fn errno_name(err: &io::Error) -> String {
    let Some(symbol) = err.raw_os_error().and_then(errno_symbol) else {
        return err.to_string();
    };
    match err.raw_os_error() {
        Some(libc::ENOSPC) => format!("{symbol} (namespace limit reached)"),
        Some(libc::ENOSYS) => format!("{symbol} (not in this kernel)"),
        Some(libc::EOPNOTSUPP) => format!("{symbol} (disabled in this kernel)"),
        _ => symbol.into(),
    }
}

/// The symbol of an errno the sandbox meets or returns.
pub fn errno_symbol(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EACCES => "EACCES",
        _ => return None,
    })
}

pub fn no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only changes this process's attributes.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) })
}

pub fn death_signal() -> io::Result<()> {
    // SAFETY: as above.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Empties the bounding and ambient sets (where allowed: that needs `CAP_SETPCAP`), then the
/// effective, permitted and inheritable sets.
pub fn drop_capabilities() -> Layer {
    let mut bounding_kept = 0;
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only changes this process's capability sets.
        let dropped = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if dropped != 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINVAL) => break, // past the last capability this kernel knows
                _ => bounding_kept += 1,
            }
        }
    }
    // SAFETY: as above.
    let ambient =
        unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    // A host run as root would otherwise leave its plugin processes root outside their user
    // namespace (no uid_map maps them anywhere else). Leaving uid 0 also empties the permitted
    // set; the bounding set is already dropped above, while CAP_SETPCAP was still there.
    let left_root = leave_root();
    let header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads a valid version-3 header and two data words, which is what it
    // expects; it only lowers this process's capabilities.
    let set = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if set != 0 {
        let err = io::Error::last_os_error();
        return Layer::new(CAPABILITIES, State::Unavailable, format!("capset failed: {}", errno_name(&err)));
    }
    let mut detail = String::from("effective, permitted and inheritable empty");
    match left_root {
        Ok(true) => detail.push_str(&format!("; uid and gid {NOBODY} instead of root")),
        Ok(false) => {}
        Err(err) => {
            return Layer::new(CAPABILITIES, State::Unavailable, format!("cannot leave root: {}", errno_name(&err)));
        }
    }
    if ambient != 0 {
        detail.push_str("; ambient set not cleared (kernel too old)");
    }
    if bounding_kept == 0 {
        detail.push_str("; bounding set empty");
        Layer::new(CAPABILITIES, State::On, detail)
    } else {
        // Without CAP_SETPCAP the bounding set stays, which only matters for exec of a
        // privileged file: no_new_privs and seccomp forbid that.
        detail.push_str(&format!("; bounding set keeps {bounding_kept} (no CAP_SETPCAP to drop them)"));
        Layer::new(CAPABILITIES, State::On, detail)
    }
}

/// The unprivileged user and group a runner started as root becomes ("nobody").
const NOBODY: u32 = 65534;

/// As root: no supplementary groups, then gid and uid [`NOBODY`] (real, effective and saved).
/// `Ok(false)` when not root.
fn leave_root() -> io::Result<bool> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(false);
    }
    // SAFETY: setgroups with a count of 0 reads nothing; setresgid and setresuid take integers
    // and only change this (single-threaded) process's credentials.
    unsafe {
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setresgid(NOBODY, NOBODY, NOBODY))?;
        check(libc::setresuid(NOBODY, NOBODY, NOBODY))?;
    }
    Ok(true)
}

/// Descriptors the runner may hold: 3, 4, 5, the region's second mapping handle, and a few for
/// the Landlock ruleset while it is built.
pub const NOFILE_LIMIT: u64 = 16;

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: setrlimit reads one valid rlimit struct.
    check(unsafe { libc::setrlimit(resource, &limit) })
}

/// `RLIMIT_NOFILE`, `RLIMIT_CORE` and `RLIMIT_DATA`. Not `RLIMIT_AS`: wasmtime reserves
/// gigabytes of address space it never touches. Not `RLIMIT_NPROC`: it counts every process of
/// the user with the runner's own threads, and root ignores it; seccomp refuses new processes
/// instead. Not `RLIMIT_CPU`: a long run legitimately uses unbounded CPU time, and a plugin that
/// spins is ended per frame by its deadline.
pub fn set_rlimits(data_limit: Option<u64>) -> Layer {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut one = |name: &str, resource, value: u64| match set_limit(resource, value) {
        Ok(()) => done.push(format!("{name} {}", human(value))),
        Err(err) => failed.push(format!("{name}: {}", errno_name(&err))),
    };
    one("NOFILE", libc::RLIMIT_NOFILE, NOFILE_LIMIT);
    one("CORE", libc::RLIMIT_CORE, 0);
    if let Some(limit) = data_limit {
        one("DATA", libc::RLIMIT_DATA, limit);
    }
    let mut detail = done.join(", ");
    if data_limit.is_none() {
        detail.push_str("; DATA not set (no memory limit given)");
    }
    detail.push_str("; no NPROC (seccomp refuses new processes) or CPU limit (deadlines end a spinning frame)");
    if failed.is_empty() {
        Layer::new(RLIMITS, if data_limit.is_some() { State::On } else { State::Partial }, detail)
    } else {
        Layer::new(RLIMITS, State::Partial, format!("{detail}; failed: {}", failed.join(", ")))
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { bytes.to_string() }
}

/// New user, network, IPC and mount namespaces, each tried on its own so that the report says
/// which ones the machine allows. The user namespace comes first: in it, creating the others
/// needs no privilege outside.
pub fn enter_namespaces() -> Vec<Layer> {
    let namespaces = [
        (USER_NS, libc::CLONE_NEWUSER, "uid and capabilities of the host mean nothing inside"),
        (NET_NS, libc::CLONE_NEWNET, "no interfaces, not even a working loopback"),
        (IPC_NS, libc::CLONE_NEWIPC, "no System V IPC or POSIX queues shared with the host"),
        (MOUNT_NS, libc::CLONE_NEWNS, "its own mount table"),
    ];
    namespaces
        .into_iter()
        .map(|(name, flag, what)| {
            // SAFETY: unshare only moves this (single-threaded) process into new namespaces.
            match check(unsafe { libc::unshare(flag) }) {
                Ok(()) if flag == libc::CLONE_NEWNS => match empty_root() {
                    Ok(at) => {
                        Layer::new(name, State::On, format!("{what}; its root is an empty read-only tmpfs (on {at})"))
                    }
                    Err(err) => {
                        Layer::new(name, State::Partial, format!("{what}, but the root stays: {}", errno_name(&err)))
                    }
                },
                Ok(()) => Layer::new(name, State::On, what),
                Err(err) => Layer::new(name, State::Unavailable, errno_name(&err)),
            }
        })
        .collect()
}

/// In the new mount namespace: an empty, read-only tmpfs becomes the process's root, so that
/// no path leads anywhere (Landlock forbids opening files, but not looking them up: stat would
/// still tell which exist). Needs the capabilities the new user namespace gave.
fn empty_root() -> io::Result<&'static str> {
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL in a constant");
    let (root, tmpfs, none) = (c("/"), c("tmpfs"), c("plugin-host-empty"));
    // SAFETY: valid C strings and null data; the change stays in this process's mount namespace.
    check(unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })?;
    let mut last = io::Error::from_raw_os_error(libc::ENOENT);
    for at in ["/tmp", "/dev", "/proc"] {
        let target = c(at);
        let options = c("size=4k,nr_inodes=1,mode=0555");
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;
        // SAFETY: as above; `options` is a valid C string tmpfs parses.
        let mounted =
            unsafe { libc::mount(none.as_ptr(), target.as_ptr(), tmpfs.as_ptr(), flags, options.as_ptr().cast()) };
        if mounted != 0 {
            last = io::Error::last_os_error();
            continue;
        }
        // SAFETY: chroot and chdir take valid C strings; they change only this process's view.
        check(unsafe { libc::chroot(target.as_ptr()) })?;
        // SAFETY: as above.
        check(unsafe { libc::chdir(root.as_ptr()) })?;
        return Ok(at);
    }
    Err(last)
}
