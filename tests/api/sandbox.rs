//! The OS sandbox around plugin processes. A compromised runner (tests/bin/compromised_runner.rs)
//! applies the real sandbox and then attacks the host as escaped plugin code would; every attack
//! must end in EPERM/EACCES or in the process being killed by SIGSYS, and the host keeps running.
//! The real runner is checked from outside (/proc) and must still run plugins, traps, deadlines
//! and memory limits as before.
//!
//! A test that needs a layer this machine lacks says so and counts itself skipped; it never
//! passes silently.

use crate::support::*;
use plugin_host::sys::sandbox::{self, Level, Report, State};
use plugin_host::{ErrorKind, PluginError, PluginProcess, PluginSpec};
use plugin_sdk::PixelFormat;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// Prints the number of skipped tests when the test binary exits, whatever passed or failed.
extern "C" fn print_skip_count() {
    let line = format!("sandbox tests skipped for a missing layer: {}\n", SKIPPED.load(Ordering::SeqCst));
    // SAFETY: writes a valid buffer to stdout; nothing else writes at process exit.
    unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
}

/// What a plugin process gets on this machine (a probe runner's report).
fn machine() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        // SAFETY: registers a handler that only formats and writes.
        unsafe { libc::atexit(print_skip_count) };
        let policy = sandbox::Policy::for_plugin(Level::Standard, 256 << 20, 0, 0, false);
        plugin_host::probe::probe(&host_bin(), &policy).expect("probe the sandbox")
    })
}

/// Whether every named layer is on here; if not, prints why the test is skipped and counts it.
fn have(test: &str, layers: &[&str]) -> bool {
    for name in layers {
        let layer = machine().layer(name).unwrap_or_else(|| panic!("no layer {name} in the report"));
        if layer.state != State::On {
            let skipped = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
            println!(
                "SKIPPED {test}: {name} is {:?} on this machine ({}); {skipped} skipped in this binary so far",
                layer.state, layer.detail
            );
            return false;
        }
    }
    true
}

/// A spec whose runner is the compromised runner in `mode`.
fn compromised(mode: &str) -> PluginSpec {
    let dir = std::env::temp_dir().join(format!("plugin-host-compromised-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(format!("compromised-runner-{mode}"));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_compromised-runner"), &link).unwrap();
    let mut spec = spec(mode, plugin("invert"), 1 << 16);
    spec.runner = Some(link);
    spec
}

/// How an attack ended, as the host saw it.
fn outcome(err: &PluginError) -> Result<String, String> {
    match &err.kind {
        ErrorKind::Died { status, .. } if status.contains("SIGSYS") => Ok("killed by SIGSYS".into()),
        ErrorKind::NotAPlugin { reason, .. } if reason.raw().starts_with("ATTACK refused: EPERM") => Ok("EPERM".into()),
        ErrorKind::NotAPlugin { reason, .. } if reason.raw().starts_with("ATTACK refused: EACCES") => {
            Ok("EACCES".into())
        }
        _ => Err(err.to_string()),
    }
}

/// Runs `mode` in a compromised runner; `Ok` says how it was stopped.
fn attack(mode: &str) -> Result<String, String> {
    match PluginProcess::spawn(compromised(mode)) {
        Ok(_) => Err("the compromised runner loaded as if nothing happened".into()),
        // Abstract Unix sockets belong to the network namespace: without seccomp, the host's
        // listener is simply not there (and Landlock's scope would refuse it if it were).
        Err(err)
            if mode == "nosec-unix-abstract"
                && matches!(&err.kind, ErrorKind::NotAPlugin { reason, .. } if reason.raw() == "ATTACK refused: ECONNREFUSED") =>
        {
            Ok("ECONNREFUSED: not in its network namespace".into())
        }
        // With namespaces, the root is an empty tmpfs: a path lookup finds nothing.
        Err(err)
            if mode.starts_with("nosec-")
                && !mode.starts_with("nosec-nons-")
                && matches!(&err.kind, ErrorKind::NotAPlugin { reason, .. } if reason.raw() == "ATTACK refused: ENOENT") =>
        {
            Ok("ENOENT: its root is empty".into())
        }
        Err(err) => outcome(&err),
    }
}

/// The host can still run a real plugin.
fn assert_host_usable() {
    let mut plugin = PluginProcess::spawn(spec("after", plugin("invert"), 4096)).unwrap();
    let input = noise_frame(8, 8, 0, PixelFormat::Rgba8, 3);
    assert!(plugin.process(&input).unwrap().same_pixels(&invert_reference(&input)));
}

/// Runs every attack, prints each outcome, and fails with the list of those that got through.
fn attacks(test: &str, modes: &[String]) {
    let mut failures = Vec::new();
    for mode in modes {
        match attack(mode) {
            Ok(how) => println!("{test}: {mode}: stopped ({how})"),
            Err(what) => {
                println!("{test}: {mode}: NOT STOPPED: {what}");
                failures.push(format!("{mode}: {what}"));
            }
        }
    }
    println!("{test}: {} attacks, {} stopped, 0 skipped", modes.len(), modes.len() - failures.len());
    assert!(failures.is_empty(), "attacks that were not stopped:\n{}", failures.join("\n"));
    assert_host_usable();
}

/// Listeners an attack may try to reach; each must see nothing.
struct Bait {
    tcp: std::net::TcpListener,
    udp: std::net::UdpSocket,
    unix: std::os::unix::net::UnixListener,
    secret: PathBuf,
}

/// One bait at a time: the names it listens on are per host process.
static BAIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Bait {
    fn new() -> Bait {
        use std::os::linux::net::SocketAddrExt;
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        let name = format!("plugin-host-sandbox-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        let unix = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        unix.set_nonblocking(true).unwrap();
        let dir = PathBuf::from(format!("/tmp/plugin-host-sandbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret.toml");
        std::fs::write(&secret, "password = \"hunter2\"\n").unwrap();
        Bait { tcp, udp, unix, secret }
    }

    fn modes(&self) -> Vec<String> {
        let tcp = self.tcp.local_addr().unwrap().port();
        let udp = self.udp.local_addr().unwrap().port();
        vec![format!("tcp-{tcp}"), format!("udp-{udp}")]
    }

    /// Nothing reached any listener, and nothing was created in /tmp.
    fn assert_untouched(&self) {
        let tcp = self.tcp.accept();
        assert!(matches!(&tcp, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "TCP listener got {tcp:?}");
        let mut buf = [0u8; 64];
        let udp = self.udp.recv_from(&mut buf);
        assert!(matches!(&udp, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "UDP socket got {udp:?}");
        let unix = self.unix.accept();
        assert!(matches!(&unix, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "Unix listener got a peer");
        let escaped = PathBuf::from(format!("/tmp/plugin-host-escaped-{}", std::process::id()));
        assert!(!escaped.exists(), "{} was created", escaped.display());
        println!("listeners: 0 TCP connections, 0 UDP datagrams, 0 Unix connections; nothing created in /tmp");
    }
}

impl Drop for Bait {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.secret.parent().unwrap());
    }
}

const ATTACKS: &[&str] = &[
    "open-passwd",
    "open-config",
    "create-tmp",
    "proc-mem",
    "stat-passwd",
    "unix-abstract",
    "netlink",
    "kill-host",
    "stop-host",
    "tgkill-host",
    "ptrace-host",
    "pidfd-host",
    "fork",
    "clone",
    "execve",
    "unshare",
    "mount",
    "bpf",
    "io-uring",
    "userfaultfd",
    "perf-event",
    "process-vm-readv",
    "ftruncate-region",
    "seal-region",
    "mmap-wx",
    "shared-anon",
    "futex-pi",
    "thread-after-start",
];

#[test]
fn every_attack_from_an_escaped_plugin_fails_and_the_host_keeps_running() {
    let test = "every_attack";
    if !have(test, &["seccomp"]) {
        return;
    }
    let _one = BAIT.lock().unwrap_or_else(|e| e.into_inner());
    let bait = Bait::new();
    let mut modes: Vec<String> = ATTACKS.iter().map(|s| s.to_string()).collect();
    modes.extend(bait.modes());
    attacks(test, &modes);
    bait.assert_untouched();
}

/// Without seccomp, Landlock and the namespaces still stop what they cover on their own.
#[test]
fn landlock_and_namespaces_stop_attacks_without_seccomp() {
    let test = "without_seccomp";
    if !have(test, &["landlock", "network namespace", "user namespace", "mount namespace"]) {
        return;
    }
    let _one = BAIT.lock().unwrap_or_else(|e| e.into_inner());
    let bait = Bait::new();
    let mut modes: Vec<String> = [
        "open-passwd",
        "open-config",
        "create-tmp",
        "proc-mem",
        "stat-passwd",
        "unix-abstract",
        "kill-host",
        "stop-host",
        "ptrace-host",
        "pidfd-host",
        "mount",
        "ftruncate-region",
        "seal-region",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let tcp: Vec<String> = bait.modes().into_iter().filter(|m| m.starts_with("tcp")).collect();
    modes.extend(tcp.clone());
    // Landlock alone (no namespaces either): its scopes and TCP rules.
    for alone in ["unix-abstract", "kill-host", "ptrace-host", "open-passwd", &tcp[0]] {
        modes.push(format!("nons-{alone}"));
    }
    let modes: Vec<String> = modes.into_iter().map(|m| format!("nosec-{m}")).collect();
    attacks(test, &modes);
    bait.assert_untouched();
}

/// Fields of /proc/PID/status.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field}"));
    line[field.len() + 1..].trim().to_string()
}

#[test]
fn a_real_plugin_process_is_confined_even_when_the_host_leaks_descriptors() {
    let test = "real_runner_confined";
    if !have(test, &["seccomp", "no_new_privs", "capabilities"]) {
        return;
    }
    // 100 descriptors opened without CLOEXEC, as careless host code (or a library) might.
    let leaked: Vec<i32> = (0..100)
        .map(|_| {
            // SAFETY: opens /dev/null with a valid C string; closed below.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
            assert!(fd >= 0);
            fd
        })
        .collect();
    let mut plugin = PluginProcess::spawn(spec("confined", plugin("invert"), 4096)).unwrap();
    let bare = PluginProcess::spawn(compromised("idle")).unwrap();
    for fd in leaked {
        // SAFETY: closes a descriptor this test opened.
        unsafe { libc::close(fd) };
    }
    let pid = plugin.pid().unwrap();
    assert_eq!(status_field(pid, "Seccomp"), "2");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(status_field(pid, "CapEff"), "0000000000000000");
    assert_eq!(status_field(pid, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(pid, "CapBnd"), "0000000000000000");
    // 3, 4, 5 and the runner's second handle on the region (its memory window), nothing else.
    let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, [3, 4, 5, 6], "open descriptors of the plugin process");
    let target = |fd: u32| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap().display().to_string();
    assert!(target(3).starts_with("pipe:") && target(4).starts_with("pipe:"), "{} {}", target(3), target(4));
    assert!(target(5).starts_with("/memfd:plugin-host:confined"), "{}", target(5));
    assert_eq!(target(6), target(5));
    // A runner that opens nothing of its own keeps exactly its three.
    let bare_pid = bare.pid().unwrap();
    let mut bare_fds: Vec<u32> = std::fs::read_dir(format!("/proc/{bare_pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    bare_fds.sort_unstable();
    assert_eq!(bare_fds, [3, 4, 5], "open descriptors of the compromised runner");
    assert_eq!(status_field(bare_pid, "Seccomp"), "2");
    bare.shutdown().unwrap();
    let mut environ = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/environ")).unwrap().read_to_end(&mut environ).unwrap();
    assert!(environ.is_empty(), "environment: {:?}", String::from_utf8_lossy(&environ));
    println!(
        "plugin process {pid}: Seccomp 2, NoNewPrivs 1, CapEff 0, fds {fds:?}, empty environment; report: {}",
        plugin.sandbox().summary()
    );
    // And it still works.
    let input = noise_frame(8, 8, 0, PixelFormat::Rgba8, 1);
    assert!(plugin.process(&input).unwrap().same_pixels(&invert_reference(&input)));
    assert_eq!(plugin.sandbox(), machine(), "the plugin reports what the machine gives");
}

#[test]
fn every_plugin_reports_its_layers_before_it_is_sent_the_module() {
    let plugin = PluginProcess::spawn(spec("reports", plugin("invert"), 4096)).unwrap();
    let report = plugin.sandbox();
    assert_eq!(report.level, Level::Standard);
    for name in ["descriptors", "no_new_privs", "capabilities", "rlimits", "landlock", "seccomp", "user namespace"] {
        let layer = report.layer(name).unwrap_or_else(|| panic!("{name} missing from {report:?}"));
        println!("{name}: {:?} ({})", layer.state, layer.detail);
    }
    let rlimits = report.layer("rlimits").unwrap();
    assert!(rlimits.detail.contains("NOFILE 16") && rlimits.detail.contains("CORE 0"), "{}", rlimits.detail);
    assert!(rlimits.detail.contains("DATA"), "{}", rlimits.detail);
}

#[test]
fn private_memory_is_capped_by_rlimit_data() {
    let mut spec = compromised("data-hog");
    spec.limits.memory_bytes = 16 << 20;
    let err = PluginProcess::spawn(spec).unwrap_err();
    println!("data-hog: {err}");
    assert!(
        matches!(&err.kind, ErrorKind::NotAPlugin { reason, .. } if reason.raw() == "ATTACK refused: ENOMEM"),
        "a 2 GiB private mapping must fail: {err}"
    );
}

#[test]
fn a_panic_after_the_sandbox_ends_as_a_panic_and_an_abort_as_an_abort() {
    let test = "panic_and_abort";
    if !have(test, &["seccomp"]) {
        return;
    }
    for (mode, expected) in [("panic", "exit status: 101"), ("abort", "SIGABRT")] {
        let err = PluginProcess::spawn(compromised(mode)).unwrap_err();
        println!("{mode}: {err}");
        match &err.kind {
            ErrorKind::Died { status, .. } => {
                assert!(status.contains(expected), "{mode}: {status}");
                assert!(!status.contains("SIGSYS"), "{mode}: killed by seccomp: {status}");
            }
            _ => panic!("{mode}: expected the process to die, got {err}"),
        }
    }
}

#[test]
fn strict_refuses_a_process_without_every_layer() {
    // A runner that leaves out the namespaces, as one in a restrictive container would get.
    let mut spec = compromised("nons-idle");
    spec.sandbox = Level::Strict;
    let err = PluginProcess::spawn(spec).unwrap_err();
    println!("{err}");
    assert!(matches!(err.kind, ErrorKind::Sandbox(_)), "{err}");
    assert!(err.to_string().contains("sandbox = \"strict\" needs every sandbox layer"), "{err}");
    assert!(err.to_string().contains("user namespace (off"), "{err}");
    // The same runner is accepted at the standard level, and its report says what it lacks.
    let plugin = PluginProcess::spawn(compromised("nons-idle")).unwrap();
    assert_eq!(plugin.sandbox().layer("network namespace").unwrap().state, State::Off);
    plugin.shutdown().unwrap();
}

#[test]
fn a_sandbox_that_cannot_be_applied_is_reported_with_its_reason() {
    // The real runner, started with a second thread already running: it must not serve.
    let err = PluginProcess::spawn(compromised("threaded")).unwrap_err();
    println!("{err}");
    assert!(matches!(err.kind, ErrorKind::Sandbox(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("its OS sandbox could not be applied"), "{message}");
    assert!(message.contains("before the runner starts threads (2 are running)"), "{message}");
}

#[test]
fn strict_runs_where_every_layer_is_available() {
    let test = "strict_runs";
    let names: Vec<&str> = machine().layers.iter().map(|l| l.name.as_str()).collect();
    if !have(test, &names.iter().copied().filter(|n| *n != "PID namespace").collect::<Vec<_>>()) {
        return;
    }
    let mut spec = spec("strict", plugin("invert"), 4096);
    spec.sandbox = Level::Strict;
    let mut plugin = PluginProcess::spawn(spec).unwrap();
    let input = noise_frame(8, 8, 0, PixelFormat::Gray8, 2);
    assert!(plugin.process(&input).unwrap().same_pixels(&invert_reference(&input)));
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-host-sandbox-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn run_says_the_level_and_strict_config_is_refused_with_exit_2() {
    let dir = scratch("run");
    let config = |sandbox: &str| {
        format!(
            "{sandbox}[input]\nkind = \"testsrc\"\nwidth = 32\nheight = 16\nframes = 3\n[[plugin]]\nname = \"neg\"\npath = \"{}\"\n[output]\nkind = \"null\"\n",
            plugin("invert").display()
        )
    };
    let path = dir.join("standard.toml");
    std::fs::write(&path, config("")).unwrap();
    let output = Command::new(host_bin()).arg("run").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().find(|l| l.starts_with("sandbox: ")).expect("a sandbox line in the summary");
    println!("{line}");
    assert!(line.starts_with("sandbox: standard for 1 plugin(s)"), "{line}");
    if machine().missing().is_empty() {
        assert!(line.contains("every layer on"), "{line}");
    } else {
        assert!(line.contains("missing: "), "{line}");
    }

    // strict, with a runner that lacks the namespaces: one sentence, exit 2.
    let path = dir.join("strict.toml");
    std::fs::write(&path, config("sandbox = \"strict\"\n")).unwrap();
    let runner = compromised("nons-idle").runner.unwrap();
    let output = Command::new(host_bin()).arg("run").arg(&path).env("PLUGIN_HOST_RUNNER", &runner).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stderr}");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error: ")).expect("an error line");
    assert!(error.contains("strict.toml: plugin \"neg\": sandbox = \"strict\" needs every sandbox layer"), "{error}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "{stderr}");
}

#[test]
fn the_sandbox_command_prints_every_layer_for_this_machine() {
    let output = Command::new(host_bin()).args(["sandbox", "--syscalls"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for layer in &machine().layers {
        let row = stdout.lines().find(|l| l.trim_start().starts_with(&format!("{}:", layer.name)));
        assert!(row.is_some(), "no row for {}", layer.name);
    }
    let seccomp = stdout.lines().find(|l| l.trim_start().starts_with("seccomp:")).unwrap();
    if machine().layer("seccomp").unwrap().state == State::On {
        let count = sandbox::seccomp::RULES.len();
        assert!(seccomp.contains(&format!("on (allowlist, {count} syscalls")), "{seccomp}");
    }
    assert!(stdout.contains("  futex "), "the allowlist is listed");
}

/// Spawn → ready with and without the sandbox. A measurement, not a test: run with
/// `cargo test --release -p plugin-host-tests --test sandbox spawn_to_ready -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run it on a quiet machine"]
fn spawn_to_ready_with_and_without_the_sandbox() {
    let rounds = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(50);
    // Warm the compiled-module cache first.
    drop(PluginProcess::spawn(spec("warm", plugin("invert"), 4096)).unwrap());
    for (slots, frame_bytes) in [("4 KiB", 4096), ("1280x720", 1280 * 720 * 4)] {
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..rounds {
            // Interleaved, so that a busy moment on the machine hits both alike.
            for (i, level) in [Level::Standard, Level::Off].into_iter().enumerate() {
                let mut spec = spec("timed", plugin("invert"), frame_bytes);
                spec.sandbox = level;
                let started = std::time::Instant::now();
                let plugin = PluginProcess::spawn(spec).unwrap();
                times[i].push(started.elapsed());
                drop(plugin);
            }
        }
        for (i, name) in ["standard", "off     "].iter().enumerate() {
            times[i].sort_unstable();
            let at = |q: f64| times[i][((times[i].len() as f64 * q).ceil() as usize).clamp(1, times[i].len()) - 1];
            println!(
                "spawn to ready, {slots} slots, sandbox {name}: p50 {:.1} ms, p99 {:.1} ms ({rounds} spawns)",
                at(0.5).as_secs_f64() * 1e3,
                at(0.99).as_secs_f64() * 1e3
            );
        }
    }
}

#[test]
fn a_host_run_as_root_runs_its_plugins_as_nobody() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED a_host_run_as_root_runs_its_plugins_as_nobody: this test process is not root");
        return;
    }
    if !have("as_nobody", &["capabilities"]) {
        return;
    }
    let plugin = PluginProcess::spawn(spec("nobody", plugin("invert"), 4096)).unwrap();
    let pid = plugin.pid().unwrap();
    // The kernel shows the ids as the reader (the host's namespace) sees them: the real ones.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ids = |key: &str| {
        status.lines().find_map(|l| l.strip_prefix(key)).unwrap().split_whitespace().collect::<Vec<_>>().join(" ")
    };
    println!("plugin process {pid}: Uid {}, Gid {}", ids("Uid:"), ids("Gid:"));
    assert_eq!(ids("Uid:"), "65534 65534 65534 65534");
    assert_eq!(ids("Gid:"), "65534 65534 65534 65534");
    assert!(plugin.sandbox().layer("capabilities").unwrap().detail.contains("instead of root"));
}
