//! Starting plugin processes: fork/exec the runner with exactly three inherited descriptors, from
//! one long-lived thread so that the children's parent-death signal is tied to the host process
//! (Linux sends `PR_SET_PDEATHSIG` when the *thread* that forked exits).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// Descriptor numbers the runner finds its channels at.
pub const RUNNER_CONTROL_IN_FD: RawFd = 3;
pub const RUNNER_CONTROL_OUT_FD: RawFd = 4;
pub const RUNNER_REGION_FD: RawFd = 5;

/// A started runner: its process and the host's ends of its two control pipes.
pub struct RunnerProcess {
    pub child: Child,
    /// The host writes here (the runner's descriptor 3).
    pub to_runner: std::fs::File,
    /// The host reads here (the runner's descriptor 4).
    pub from_runner: std::fs::File,
}

/// Starts `program args…` as a runner: makes its two control pipes (1 MiB buffers where the
/// system allows, fewer wake-ups for large messages) and hands it their ends and a handle of
/// Asks for a 1 MiB pipe buffer (the default maximum; 64 KiB otherwise), so that a frame crosses
/// in a few large reads and writes instead of many small ones. Best effort: a pipe keeps its
/// size when the kernel refuses.
pub fn widen_pipe(pipe: std::os::fd::BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

/// `region` as descriptors 3, 4 and 5. With `nonblocking_control` the host's writing end is made
/// non-blocking before the spawn, so no failure after it leaves a child behind.
pub fn spawn_runner(
    program: PathBuf,
    args: Vec<OsString>,
    region: &std::fs::File,
    nonblocking_control: bool,
) -> io::Result<RunnerProcess> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::os::fd::AsFd;
    let pipe = || -> io::Result<(OwnedFd, OwnedFd)> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        widen_pipe(write.as_fd());
        Ok((read, write))
    };
    let (to_runner_read, to_runner_write) = pipe()?;
    if nonblocking_control {
        let flags = OFlag::from_bits_truncate(fcntl(to_runner_write.as_fd(), FcntlArg::F_GETFL)?);
        fcntl(to_runner_write.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    let (from_runner_read, from_runner_write) = pipe()?;
    let region_fd: OwnedFd = region.try_clone()?.into();
    let child = spawn(SpawnRequest { program, args, fds: [to_runner_read, from_runner_write, region_fd] })?;
    Ok(RunnerProcess { child, to_runner: to_runner_write.into(), from_runner: from_runner_read.into() })
}

/// What to start: `program args…` with `fds[i]` at descriptor `3 + i` and nothing else open
/// beyond stdin/stdout/stderr, which are `/dev/null`.
pub struct SpawnRequest {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub fds: [OwnedFd; 3],
}

type Job = (SpawnRequest, mpsc::Sender<io::Result<Child>>);

/// Starts the process from the spawner thread, which lives as long as the host process.
pub fn spawn(request: SpawnRequest) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new().name("plugin-spawner".into()).spawn(move || {
            for (request, reply) in rx {
                let _ = reply.send(spawn_now(request));
            }
        });
        if let Err(err) = spawned {
            tracing::error!("cannot start the plugin spawner thread: {err}");
        }
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    sender
        .lock()
        .map_err(|_| io::Error::other("plugin spawner poisoned"))?
        .send((request, reply_tx))
        .map_err(|_| io::Error::other("plugin spawner thread is gone"))?;
    reply_rx.recv().map_err(|_| io::Error::other("plugin spawner thread is gone"))?
}

fn spawn_now(request: SpawnRequest) -> io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    let sources: Vec<RawFd> = request.fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let mut command = Command::new(&request.program);
    command.args(&request.args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).env_clear();
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (prctl, getppid, setpgid, fcntl, dup2, close_range, _exit); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The host may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            // Its own process group: a Ctrl-C in the host's terminal is for the host, which then
            // shuts its plugins down in order.
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Move the sources out of the way first, so that dup2 onto 3..5 cannot clobber one.
            let mut moved = [0 as RawFd; 3];
            for (slot, &src) in moved.iter_mut().zip(&sources) {
                *slot = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 64);
                if *slot < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (i, &fd) in moved.iter().enumerate() {
                if libc::dup2(fd, RUNNER_CONTROL_IN_FD + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // Every other descriptor, inherited with or without CLOEXEC, is closed by exec. (Not
            // closed here: std's exec-error pipe must stay open until then.)
            if libc::close_range(6, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn();
    drop(request.fds);
    child
}

/// Runner: takes ownership of the three descriptors the host passed (control in, control out,
/// region). Call once, at the start of runner mode.
pub fn take_runner_fds() -> io::Result<[OwnedFd; 3]> {
    use std::os::fd::FromRawFd;
    let fds = [RUNNER_CONTROL_IN_FD, RUNNER_CONTROL_OUT_FD, RUNNER_REGION_FD];
    for fd in fds {
        // SAFETY: F_GETFD only inspects the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(io::Error::other(format!("descriptor {fd} was not passed to the runner")));
        }
    }
    // SAFETY: the descriptors are open (checked above), were set up for us by the host at spawn,
    // and nothing else in this process owns them: runner mode takes them exactly once.
    Ok(fds.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Minor page faults of this process so far (all threads).
pub fn minor_faults() -> io::Result<u64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)?;
    Ok(usage.minor_page_faults() as u64)
}

/// Minor page faults of the calling thread so far (unaffected by the process's other threads).
pub fn thread_minor_faults() -> io::Result<u64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)?;
    Ok(usage.minor_page_faults() as u64)
}
