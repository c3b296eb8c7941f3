//! A runner whose wasm sandbox has been "escaped": it applies the same OS sandbox as the real
//! runner (through the library, with the policy the host passed), then runs native attack code
//! instead of a plugin. For tests/api/sandbox.rs.
//!
//! Its mode is the suffix of the name it is started under (`compromised-runner-MODE`, via a
//! symlink), because the host starts runners with an empty environment and fixed arguments.
//! A mode may start with `nosec-` (no seccomp: shows what Landlock and the namespaces stop on
//! their own) or `nons-` (no namespaces: a sandbox that falls short of `strict`).
//!
//! After the handshake, its sandbox report and the host's Load:
//! - `idle`: answers Loaded and Ready like a plugin and then only waits for Shutdown (for
//!   looking at the process from outside);
//! - `panic`, `abort`: panics or aborts, as runner code might;
//! - `threaded` (before all of this): starts a thread, then runs the real runner, whose
//!   sandbox must then refuse to go up;
//! - any other mode is an attack: it runs it and reports `ATTACK refused: ERRNO` or
//!   `ATTACK SUCCEEDED: …` as a load failure (if seccomp kills it first, the host sees SIGSYS).

use plugin_host::ipc::protocol::{self, Failure, Hello, MAX_TO_RUNNER_BYTES, ToHost, ToRunner};
use plugin_host::sys::sandbox::{Policy, apply};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufReader};

fn main() {
    let name = std::env::args().next().unwrap_or_default();
    let mut mode = name.rsplit("compromised-runner-").next().unwrap_or_default().to_string();
    // What an attacker learns before the escape anyway.
    // SAFETY: getppid has no preconditions.
    let host = unsafe { libc::getppid() };
    if mode == "threaded" {
        // Runner code that started a thread before its sandbox: the real runner must refuse.
        std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(60)));
        let _ = plugin_host::runner::main();
        return;
    }
    let mut policy = Policy::from_args(std::env::args_os().skip(2));
    if let Some(rest) = mode.strip_prefix("nosec-") {
        policy.skip_seccomp = true;
        mode = rest.to_string();
    }
    if let Some(rest) = mode.strip_prefix("nons-") {
        policy.skip_namespaces = true;
        mode = rest.to_string();
    }
    let report = apply(&policy).expect("sandbox");
    let [control_in, control_out, _region] = plugin_host::sys::process::take_runner_fds().expect("runner fds");
    let mut input = BufReader::new(File::from(control_in));
    let mut output = File::from(control_out);
    protocol::handshake(Hello::OURS, &mut input, &mut output).expect("handshake");
    protocol::write_message(&mut output, &ToHost::Sandboxed { report }).expect("sandbox report");
    let load: ToRunner = protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES).expect("load");
    if let ToRunner::Compile { module } = load {
        // Started to compile the module: honestly, like a real runner.
        let _ = protocol::write_message(&mut output, &plugin_host::runner::compile(module));
        return;
    }

    match mode.as_str() {
        "idle" => {
            let description =
                r#"{"name":"idle","version":"1","description":"","formats":["rgba8","gray8"],"params":[]}"#;
            protocol::write_message(&mut output, &ToHost::Loaded { description: description.into() }).expect("loaded");
            let init: ToRunner = protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES).expect("init");
            // Declares the input's shape for its output, as a plugin without plugin_output_shape does.
            let shape = match init {
                ToRunner::Init { input, .. } => input,
                _ => None,
            };
            protocol::write_message(&mut output, &ToHost::Ready { band_context: None, output: shape }).expect("ready");
            while let Ok(message) = protocol::read_message::<ToRunner>(&mut input, MAX_TO_RUNNER_BYTES) {
                if message == ToRunner::Shutdown {
                    return;
                }
            }
        }
        "panic" => panic!("runner code panicked after the sandbox went up"),
        "abort" => std::process::abort(),
        attack => {
            let outcome = match run(attack, host) {
                Ok(what) => format!("ATTACK SUCCEEDED: {what}"),
                Err(err) => format!("ATTACK refused: {}", errno_name(&err)),
            };
            let failed = ToHost::Failed { frame: None, failure: Failure::Load(outcome.into()) };
            let _ = protocol::write_message(&mut output, &failed);
        }
    }
}

fn errno_name(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::ENOSYS) => "ENOSYS".into(),
        Some(libc::ECONNREFUSED) => "ECONNREFUSED".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::ENOMEM) => "ENOMEM".into(),
        _ => format!("other error: {err}"),
    }
}

fn check(result: i64) -> io::Result<i64> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

fn open(path: &str, flags: libc::c_int) -> io::Result<i64> {
    let path = CString::new(path).expect("path");
    // SAFETY: a valid C string; the attack only needs the call's result.
    check(unsafe { libc::open(path.as_ptr(), flags, 0o600) } as i64)
}

fn socket(domain: libc::c_int, kind: libc::c_int, protocol: libc::c_int) -> io::Result<i64> {
    // SAFETY: socket takes integers only.
    check(unsafe { libc::socket(domain, kind, protocol) } as i64)
}

fn inet(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
        sin_zero: [0; 8],
    }
}

fn port_of(mode: &str) -> u16 {
    mode.rsplit('-').next().and_then(|p| p.parse().ok()).expect("a port at the end of the mode")
}

/// Runs one attack; `Ok` says what the attacker got.
fn run(attack: &str, host: libc::pid_t) -> io::Result<String> {
    let syscall0 = |nr: libc::c_long| -> io::Result<i64> {
        // SAFETY: a raw system call with no pointer arguments.
        check(unsafe { libc::syscall(nr, 0, 0, 0, 0, 0) })
    };
    match attack {
        "open-passwd" => open("/etc/passwd", libc::O_RDONLY).map(|fd| format!("opened /etc/passwd as fd {fd}")),
        "open-config" => {
            let path = format!("/tmp/plugin-host-sandbox-{host}/secret.toml");
            open(&path, libc::O_RDONLY).map(|fd| format!("opened {path} as fd {fd}"))
        }
        "create-tmp" => {
            let path = format!("/tmp/plugin-host-escaped-{host}");
            open(&path, libc::O_CREAT | libc::O_WRONLY).map(|_| format!("created {path}"))
        }
        "stat-passwd" => {
            let path = CString::new("/etc/passwd").expect("path");
            // SAFETY: stat is plain data; all zeros is valid, and the call writes it.
            let mut buf: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: a valid C string and a valid stat buffer.
            check(unsafe { libc::stat(path.as_ptr(), &mut buf) } as i64).map(|_| "saw that /etc/passwd exists".into())
        }
        "proc-mem" => open(&format!("/proc/{host}/mem"), libc::O_RDONLY).map(|_| "opened the host's memory".into()),
        a if a.starts_with("tcp-") => {
            let fd = socket(libc::AF_INET, libc::SOCK_STREAM, 0)?;
            let addr = inet(port_of(a));
            // SAFETY: a valid sockaddr_in of the size passed.
            check(unsafe {
                libc::connect(fd as i32, &addr as *const _ as *const libc::sockaddr, size_of_val(&addr) as u32)
            } as i64)
            .map(|_| "connected to the host's listener".into())
        }
        a if a.starts_with("udp-") => {
            let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
            let addr = inet(port_of(a));
            // SAFETY: a valid buffer and sockaddr_in of the sizes passed.
            check(unsafe {
                libc::sendto(
                    fd as i32,
                    b"escaped".as_ptr().cast(),
                    7,
                    0,
                    &addr as *const _ as *const libc::sockaddr,
                    size_of_val(&addr) as u32,
                )
            } as i64)
            .map(|_| "sent a datagram".into())
        }
        "unix-abstract" => {
            let fd = socket(libc::AF_UNIX, libc::SOCK_STREAM, 0)?;
            // SAFETY: sockaddr_un is plain data; all zeros is valid.
            let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
            addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let name = format!("plugin-host-sandbox-{host}");
            for (dst, src) in addr.sun_path[1..].iter_mut().zip(name.bytes()) {
                *dst = src as libc::c_char;
            }
            let len = (size_of::<libc::sa_family_t>() + 1 + name.len()) as u32;
            // SAFETY: a valid sockaddr_un of at least `len` bytes.
            check(unsafe { libc::connect(fd as i32, &addr as *const _ as *const libc::sockaddr, len) } as i64)
                .map(|_| "connected to the host's abstract socket".into())
        }
        "netlink" => socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE).map(|_| "opened netlink".into()),
        "kill-host" => {
            // SAFETY: kill takes integers only.
            check(unsafe { libc::kill(host, libc::SIGKILL) } as i64).map(|_| "killed the host".into())
        }
        "stop-host" => {
            // SAFETY: kill takes integers only.
            check(unsafe { libc::kill(host, libc::SIGSTOP) } as i64).map(|_| "stopped the host".into())
        }
        "tgkill-host" => {
            // SAFETY: tgkill takes integers only.
            check(unsafe { libc::syscall(libc::SYS_tgkill, host, host, libc::SIGKILL) })
                .map(|_| "killed the host".into())
        }
        "ptrace-host" => {
            // SAFETY: PTRACE_ATTACH with null address and data.
            check(unsafe { libc::ptrace(libc::PTRACE_ATTACH, host, 0usize, 0usize) })
                .map(|_| "attached to the host".into())
        }
        "pidfd-host" => {
            // SAFETY: pidfd_open and pidfd_send_signal with integer arguments and a null siginfo.
            let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, host, 0) })?;
            // SAFETY: as above.
            check(unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, libc::SIGKILL, 0usize, 0) })
                .map(|_| "killed the host through a pidfd".into())
        }
        "fork" => {
            // SAFETY: the child only calls _exit.
            let pid = check(unsafe { libc::fork() } as i64)?;
            if pid == 0 {
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(0) };
            }
            Ok(format!("forked {pid}"))
        }
        "clone" => {
            // SAFETY: a fork-like raw clone (no CLONE_VM); the child only calls _exit.
            let pid = check(unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) })?;
            if pid == 0 {
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(0) };
            }
            Ok(format!("cloned {pid}"))
        }
        "execve" => {
            let path = CString::new("/bin/true").expect("path");
            let argv = [path.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: null-terminated argument and environment arrays of valid C strings.
            check(unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) } as i64)
                .map(|_| "executed /bin/true".into())
        }
        "unshare" => {
            // SAFETY: unshare takes flags only.
            check(unsafe { libc::unshare(libc::CLONE_NEWUSER) } as i64).map(|_| "unshared".into())
        }
        "mount" => {
            let (src, target, kind) =
                (CString::new("none").unwrap(), CString::new("/tmp").unwrap(), CString::new("tmpfs").unwrap());
            // SAFETY: valid C strings and null data.
            check(unsafe { libc::mount(src.as_ptr(), target.as_ptr(), kind.as_ptr(), 0, std::ptr::null()) } as i64)
                .map(|_| "mounted".into())
        }
        "bpf" => {
            let attr = [0u8; 128];
            // SAFETY: BPF_MAP_CREATE (0) reads `attr`, valid for the size passed.
            check(unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_ptr(), attr.len()) })
                .map(|_| "created a BPF map".into())
        }
        "io-uring" => {
            let mut params = [0u8; 120];
            // SAFETY: io_uring_setup writes `params`, valid for the struct's size.
            check(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) })
                .map(|_| "set up an io_uring".into())
        }
        "userfaultfd" => syscall0(libc::SYS_userfaultfd).map(|_| "opened a userfaultfd".into()),
        "perf-event" => {
            let mut attr = [0u8; 128];
            attr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size
            // SAFETY: perf_event_open reads `attr`, valid for its declared size.
            check(unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 0) })
                .map(|_| "opened a perf event".into())
        }
        "process-vm-readv" => {
            let mut buf = [0u8; 8];
            let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: 8 };
            let remote = libc::iovec { iov_base: 0x400000 as *mut libc::c_void, iov_len: 8 };
            // SAFETY: valid iovecs; the remote one names the host's memory, which is the attack.
            check(unsafe { libc::process_vm_readv(host, &local, 1, &remote, 1, 0) } as i64)
                .map(|_| "read the host's memory".into())
        }
        "ftruncate-region" => {
            // SAFETY: ftruncate takes integers; 5 is the shared region.
            check(unsafe { libc::ftruncate(5, 0) } as i64).map(|_| "truncated the region".into())
        }
        "seal-region" => {
            // SAFETY: fcntl with integer arguments on the region's descriptor.
            check(unsafe { libc::fcntl(5, libc::F_ADD_SEALS, libc::F_SEAL_WRITE) } as i64)
                .map(|_| "sealed the region".into())
        }
        "data-hog" => {
            // Private writable memory well past RLIMIT_DATA (the host asked for 16 MiB of wasm
            // memory); without the limit, overcommit would grant it.
            // SAFETY: a fresh anonymous mapping; nothing else refers to it.
            let at = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    2 << 30,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if at == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok("mapped 2 GiB".into()) }
        }
        "mmap-wx" => {
            // SAFETY: a fresh anonymous mapping; nothing else refers to it.
            let at = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if at == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok("mapped memory W+X".into()) }
        }
        "shared-anon" => {
            // Shared anonymous memory is not private writable memory: RLIMIT_DATA would not count it.
            // SAFETY: a fresh anonymous mapping; nothing else refers to it.
            let at = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    1536 << 20,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if at == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok("mapped 1.5 GiB shared".into()) }
        }
        "futex-pi" => {
            let word = std::sync::atomic::AtomicU32::new(0);
            // SAFETY: a live, aligned futex word; a PI lock on an unowned word just takes it.
            check(unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_LOCK_PI, 0, 0, 0, 0) })
                .map(|_| "took a PI futex".into())
        }
        "thread-after-start" => {
            // The real runner forbids new threads once its watchdog runs; do as it does, then try.
            plugin_host::sys::sandbox::seccomp::forbid_new_threads()?;
            std::thread::Builder::new().spawn(|| ()).map(|_| "started a thread".into())
        }
        other => panic!("unknown attack {other}"),
    }
}
