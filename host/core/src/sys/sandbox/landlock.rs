//! Landlock with an empty ruleset: every filesystem access right the kernel knows is handled and
//! none is granted, TCP bind and connect likewise (ABI 4+), and abstract Unix sockets and
//! signals are scoped to the process's own domain (ABI 6+).

use super::names::LANDLOCK;
use super::privileges::errno_name;
use super::{Layer, State};
use std::io;

#[repr(C)]
#[derive(Default)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

const CREATE_RULESET_VERSION: libc::c_ulong = 1;
/// ABI 1: execute … make_sym (13 rights); 2: refer; 3: truncate; 5: ioctl_dev.
const FS_ABI1: u64 = (1 << 13) - 1;
const FS_REFER: u64 = 1 << 13;
const FS_TRUNCATE: u64 = 1 << 14;
const FS_IOCTL_DEV: u64 = 1 << 15;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// The Landlock ABI version of this kernel.
pub fn abi() -> io::Result<i64> {
    // SAFETY: with a null attribute and the VERSION flag the call only returns a number.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if abi < 0 { Err(io::Error::last_os_error()) } else { Ok(abi) }
}

pub fn restrict() -> Layer {
    let abi = match abi() {
        Ok(abi) => abi,
        Err(err) => return Layer::new(LANDLOCK, State::Unavailable, errno_name(&err)),
    };
    let mut attr = RulesetAttr { handled_access_fs: FS_ABI1, ..RulesetAttr::default() };
    let mut covers = vec!["no filesystem access"];
    if abi >= 2 {
        attr.handled_access_fs |= FS_REFER;
    }
    if abi >= 3 {
        attr.handled_access_fs |= FS_TRUNCATE;
    }
    if abi >= 5 {
        attr.handled_access_fs |= FS_IOCTL_DEV;
    }
    if abi >= 4 {
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP;
        covers.push("no TCP bind or connect");
    }
    if abi >= 6 {
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;
        covers.push("no abstract Unix sockets or signals outside the process");
    }
    // SAFETY: `attr` is a valid ruleset attribute of the size passed; fields this kernel does
    // not know are zero, which the kernel accepts.
    let ruleset = unsafe {
        libc::syscall(libc::SYS_landlock_create_ruleset, &attr as *const RulesetAttr, size_of::<RulesetAttr>(), 0u32)
    };
    if ruleset < 0 {
        let err = io::Error::last_os_error();
        return Layer::new(LANDLOCK, State::Unavailable, format!("ABI {abi}: {}", errno_name(&err)));
    }
    // SAFETY: `ruleset` is the descriptor just returned; restrict_self applies it to this
    // (single-threaded) process, which no_new_privs allows.
    let restricted = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset as libc::c_int, 0u32) };
    let err = io::Error::last_os_error();
    // SAFETY: closes the ruleset descriptor this function owns.
    unsafe { libc::close(ruleset as libc::c_int) };
    if restricted != 0 {
        return Layer::new(LANDLOCK, State::Unavailable, format!("ABI {abi}: {}", errno_name(&err)));
    }
    let state = if abi >= 6 { State::On } else { State::Partial };
    Layer::new(LANDLOCK, state, format!("ABI {abi}: {}", covers.join(", ")))
}
