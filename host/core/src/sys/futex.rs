//! Shared (not `_PRIVATE`) futex wait and wake on 32-bit words in a mapping that several
//! processes see.

use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// Why a wait returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Woken, the value changed before the wait, or a signal interrupted it: re-check the word.
    Recheck,
    /// The absolute deadline has passed.
    TimedOut,
}

/// Sleeps while `word == expected`, until woken or until `deadline` (absolute, monotonic).
pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    let timeout = match deadline {
        Some(deadline) => {
            let now = Instant::now();
            if now >= deadline {
                return Wake::TimedOut;
            }
            // FUTEX_WAIT takes a relative timeout; the caller's loop re-derives it from the
            // absolute deadline after every wake, so spurious or hostile wakes never extend it.
            let left = deadline - now;
            Some(libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            })
        }
        None => None,
    };
    let timeout_ptr = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32; the kernel only reads it and the timespec.
    let rc = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, timeout_ptr, 0, 0) };
    if rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        return Wake::TimedOut;
    }
    Wake::Recheck
}

/// Wakes every waiter on `word`.
pub fn wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not dereference it in user space.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0, 0, 0);
    }
}
