//! SIGINT and SIGTERM end a run cleanly: the source stops, frames in flight drain, and the output
//! is put in place with what was completed.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handlers (without SA_RESTART, so that blocking reads return early).
pub fn install_stop_handlers() -> std::io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(SigHandler::Handler(request_stop), SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since the handlers were installed.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Gives SIGPIPE its default action back, so that a command whose reader goes away
/// (`plugin-host list | head -1`) ends quietly as Unix tools do, instead of failing a write (and
/// `print!` panicking). Rust's runtime ignores SIGPIPE; `plugin-host run` keeps that, because it
/// reports a closed output itself and keeps the frames it completed.
pub fn default_sigpipe() -> std::io::Result<()> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installs no handler, only the default action.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map(|_| ()).map_err(std::io::Error::from)
}
