//! A runner that lies (tests/bin/hostile_runner.rs) never hangs or crashes the host: each lie
//! ends in a typed error within the host's own deadline, and the liar is killed and reaped.

use crate::support::*;
use plugin_host::ipc::handoff::WaitError;
use plugin_host::process::Violation;
use plugin_host::{ErrorKind, PluginProcess};
use plugin_sdk::PixelFormat;
use std::time::{Duration, Instant};

/// A spec whose runner is the hostile runner in `mode`.
fn hostile(mode: &str) -> plugin_host::PluginSpec {
    let dir = std::env::temp_dir().join(format!("plugin-host-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(format!("hostile-runner-{mode}"));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hostile-runner"), &link).unwrap();
    let mut spec = spec(mode, plugin("invert"), 1 << 16);
    spec.runner = Some(link);
    spec.limits.deadline = Duration::from_millis(200);
    spec
}

/// Submits frames until the first error; returns it and how long that frame took.
fn first_error(plugin: &mut PluginProcess) -> (plugin_host::PluginError, Duration) {
    let input = noise_frame(16, 16, 0, PixelFormat::Rgba8, 1);
    for _ in 0..100_000 {
        let started = Instant::now();
        if let Err(err) = plugin.process(&input) {
            return (err, started.elapsed());
        }
    }
    panic!("the hostile runner never caused an error");
}

fn assert_caught(mode: &str, expect: impl Fn(&ErrorKind) -> bool) {
    assert_caught_with(hostile(mode), mode, expect);
}

fn assert_caught_with(spec: plugin_host::PluginSpec, mode: &str, expect: impl Fn(&ErrorKind) -> bool) {
    let mut plugin = PluginProcess::spawn(spec).unwrap();
    let (err, took) = first_error(&mut plugin);
    println!("{mode}: {err} (after {took:?})");
    assert!(expect(&err.kind), "{mode}: unexpected error {err}");
    assert!(took < Duration::from_secs(2), "{mode}: took {took:?}; the host must not wait past its deadline");
    assert_eq!(plugin.pid(), None, "{mode}: the liar must be killed and reaped");
}

#[test]
fn garbage_on_the_control_channel_ends_the_plugin() {
    assert_caught("garbage", |k| matches!(k, ErrorKind::Died { .. }));
}

#[test]
fn pipe_bytes_for_a_frame_the_host_never_sent_end_the_channel_unwritten() {
    let mut spec = hostile("stray-frame");
    spec.transport = plugin_host::ipc::protocol::Transport::Pipe;
    assert_caught_with(
        spec,
        "stray-frame",
        |k| matches!(k, ErrorKind::Died { status, .. } if status.contains("which the host was not waiting for")),
    );
}

#[test]
fn pipe_bytes_for_a_frame_that_already_failed_end_the_channel_unwritten() {
    let mut spec = hostile("fail-then-frame");
    spec.transport = plugin_host::ipc::protocol::Transport::Pipe;
    let mut plugin = PluginProcess::spawn(spec).unwrap();
    let input = noise_frame(16, 16, 0, PixelFormat::Rgba8, 1);
    let first = plugin.process(&input).unwrap_err();
    assert!(matches!(first.kind, ErrorKind::Frame { .. }), "{first}");
    let second = plugin.process(&input).unwrap_err();
    assert!(
        matches!(&second.kind, ErrorKind::Died { status, .. } if status.contains("which the host was not waiting for")),
        "{second}"
    );
}

#[test]
fn an_oversized_message_is_refused_before_allocation() {
    assert_caught("oversized", |k| matches!(k, ErrorKind::Died { status, .. } if status.contains("exceeds the limit")));
}

#[test]
fn a_message_flood_is_cut_off() {
    assert_caught("flood", |k| matches!(k, ErrorKind::Died { status, .. } if status.contains("more than 64 messages")));
}

#[test]
fn a_flood_of_large_messages_is_cut_off_by_bytes() {
    assert_caught(
        "heavy-flood",
        |k| matches!(k, ErrorKind::Died { status, .. } if status.contains("bytes of messages the host had not asked for")),
    );
}

#[test]
fn an_impossible_state_word_is_a_protocol_violation() {
    assert_caught("bad-state", |k| {
        matches!(k, ErrorKind::Protocol(Violation::SlotState { state: WaitError::BadState(77), .. }))
    });
}

#[test]
fn an_output_descriptor_past_the_slot_is_refused() {
    assert_caught("bad-descriptor", |k| matches!(k, ErrorKind::Protocol(Violation::OutputDescriptor(_))));
}

#[test]
fn a_runner_that_never_answers_is_killed_at_the_deadline() {
    assert_caught("never-wake", |k| matches!(k, ErrorKind::Deadline { .. }));
    assert_caught("wake-storm", |k| matches!(k, ErrorKind::Deadline { .. }));
}

#[test]
fn a_log_flood_neither_stalls_frames_nor_grows_without_bound() {
    let mut plugin = PluginProcess::spawn(hostile("log-flood")).unwrap();
    let input = noise_frame(16, 16, 0, PixelFormat::Rgba8, 1);
    for _ in 0..500 {
        let output = plugin.process(&input).unwrap();
        assert!(output.same_pixels(&input));
    }
}

#[test]
fn a_random_liar_never_panics_the_host_and_every_lie_ends_its_process() {
    let mut spec = hostile("random");
    spec.limits.deadline = Duration::from_millis(20);
    spec.standby = true;
    let mut plugin = PluginProcess::spawn(spec).unwrap();
    let input = noise_frame(16, 16, 0, PixelFormat::Rgba8, 1);
    let started = Instant::now();
    let (mut frames, mut good, mut lies) = (0u64, 0u64, std::collections::BTreeMap::<String, u64>::new());
    while frames < 1_000_000 && started.elapsed() < Duration::from_secs(60) {
        frames += 1;
        match plugin.process(&input) {
            Ok(_) => good += 1,
            Err(err) => {
                let kind = match &err.kind {
                    ErrorKind::Protocol(_) => "protocol violation",
                    ErrorKind::Deadline { .. } => "deadline",
                    ErrorKind::Died { .. } => "died",
                    other => panic!("unexpected error from a liar: {other}"),
                };
                *lies.entry(kind.to_string()).or_default() += 1;
                assert_eq!(plugin.pid(), None, "a liar is killed and reaped ({err})");
                plugin.restart().unwrap();
            }
        }
    }
    println!(
        "random liar: {frames} frames in {:.1} s, {good} served, lies caught: {lies:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(lies.values().sum::<u64>() > 0, "the liar must have lied");
    assert!(good > 0);
}

#[test]
fn a_stopped_plugin_misses_its_deadline_is_killed_and_restarts() {
    let mut spec = spec("stopped", plugin("invert"), 1 << 16);
    spec.limits.deadline = Duration::from_millis(100);
    let mut plugin = PluginProcess::spawn(spec).unwrap();
    let input = noise_frame(16, 16, 0, PixelFormat::Rgba8, 1);
    plugin.process(&input).unwrap();
    let pid = plugin.pid().unwrap() as i32;
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let started = Instant::now();
    let err = plugin.process(&input).unwrap_err();
    println!("SIGSTOP: {err} after {:?}", started.elapsed());
    assert!(matches!(err.kind, ErrorKind::Deadline { .. }), "{err}");
    assert_eq!(plugin.pid(), None, "the stopped process is killed and reaped");
    plugin.restart().unwrap();
    assert!(plugin.process(&input).unwrap().same_pixels(&invert_reference(&input)));
}

#[test]
fn the_hosts_wait_ends_at_its_deadline_whatever_the_peer_does() {
    use plugin_host::ipc::handoff::{self, Futex, WaitError, state};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    for (peer, wake_every) in [("never wakes", None), ("wakes every millisecond", Some(Duration::from_millis(1)))] {
        let word = std::sync::Arc::new(AtomicU32::new(state::TAKEN));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let waker = wake_every.map(|period| {
            let (word, stop) = (word.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    handoff::Waiter::wake(&Futex, &word);
                    std::thread::sleep(period);
                }
            })
        });
        let mut overruns_us: Vec<u64> = (0..50)
            .map(|_| {
                let deadline = Instant::now() + Duration::from_millis(20);
                assert_eq!(handoff::wait_outcome(&Futex, &word, deadline), Err(WaitError::TimedOut));
                Instant::now().duration_since(deadline).as_micros() as u64
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        if let Some(waker) = waker {
            waker.join().unwrap();
        }
        overruns_us.sort_unstable();
        println!(
            "futex wait past its absolute deadline, peer {peer}: overrun p50 {} µs, p99 {} µs, max {} µs",
            overruns_us[overruns_us.len() / 2],
            overruns_us[overruns_us.len() * 99 / 100],
            overruns_us[overruns_us.len() - 1]
        );
    }
}

// ---- Hostile modules: compile bombs, planted files, escapes in every text channel ----

mod modules {
    use crate::support::*;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    fn scratch(name: &str) -> PathBuf {
        scratch_dir("hostile-modules", name)
    }

    /// A module with one function of `depth` nested `if … else` blocks with block parameters:
    /// tiny, valid, and ruinous for cranelift (20,000 levels asked for 4 GB, 100,000 for tens).
    fn compile_bomb(depth: usize) -> Vec<u8> {
        let mut body = String::from("local.get 0\n");
        for _ in 0..depth {
            body.push_str("local.get 0\nif (param i32) (result i32)\n");
        }
        for _ in 0..depth {
            body.push_str("else\nend\n");
        }
        wat::parse_str(format!("(module (func (export \"f\") (param i32) (result i32)\n{body}))")).unwrap()
    }

    /// A plugin written in WAT that implements the ABI and then misbehaves with `init` and
    /// `process` as given; `extra` adds functions or imports.
    fn wat_plugin(init: &str, process: &str, extra: &str) -> Vec<u8> {
        let description =
            r#"{\"name\":\"evil\",\"version\":\"1\",\"description\":\"\",\"formats\":[\"rgba8\"],\"params\":[]}"#;
        wat::parse_str(format!(
            r#"(module
              {extra}
              (memory (export "memory") 2)
              (data (i32.const 1024) "{description}\00")
              (data (i32.const 4096) "\1b]0;pwned\07\1b[2J\nerror: forged by the plugin\e2\80\ae gnp.exe\00")
              (global $next (mut i32) (i32.const 8192))
              (func (export "plugin_abi_version") (result i32) i32.const 1)
              (func (export "plugin_describe") (result i32) i32.const 1024)
              (func (export "plugin_alloc") (param i32) (result i32) (local i32)
                global.get $next local.set 1
                global.get $next local.get 0 i32.add i32.const 15 i32.add i32.const -16 i32.and global.set $next
                local.get 1)
              (func (export "plugin_init") (param i32 i32) (result i32) {init})
              (func (export "plugin_process") (param i32 i32) (result i32) {process})
              (func (export "plugin_last_error") (result i32) i32.const 4096))"#
        ))
        .unwrap()
    }

    /// `plugin-host run` on a 4-frame test pattern through `module`, with `extra` in its table,
    /// ready to start (its cache in `dir`).
    fn run_command(dir: &Path, module: &Path, extra: &str) -> Command {
        let config = format!(
            "[input]\nkind = \"testsrc\"\nwidth = 32\nheight = 16\nframes = 4\n[[plugin]]\nname = \"evil\"\npath = \"{}\"\n{extra}[output]\nkind = \"null\"\n",
            module.display()
        );
        std::fs::write(dir.join("run.toml"), config).unwrap();
        let mut command = Command::new(host_bin());
        command.current_dir(dir).env("PLUGIN_HOST_CACHE", dir.join("cache")).args(["run", "run.toml", "-q"]);
        command.stdin(Stdio::null()).stderr(Stdio::piped());
        command
    }

    fn run_module(dir: &Path, module: &Path, extra: &str) -> Output {
        run_command(dir, module, extra).output().unwrap()
    }

    /// Nothing a plugin wrote reached the terminal raw: no ESC, no bell, no bidi override, no
    /// line of its own.
    fn assert_clean(stderr: &str) {
        for bad in ['\x1b', '\x07', '\u{202E}', '\r'] {
            assert!(!stderr.contains(bad), "{bad:?} reached stderr: {stderr:?}");
        }
        assert!(!stderr.lines().any(|l| l.starts_with("error: forged")), "a forged line: {stderr}");
    }

    /// Children's peak RSS (of every child waited for so far), in bytes.
    fn children_peak_rss() -> u64 {
        // SAFETY: getrusage writes into the struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; RUSAGE_CHILDREN is valid.
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
        usage.ru_maxrss as u64 * 1024
    }

    #[test]
    fn a_compile_bomb_hits_the_compile_memory_limit_in_a_child_not_the_host() {
        let dir = scratch("bomb");
        let bomb = dir.join("bomb.wasm");
        std::fs::write(&bomb, compile_bomb(100_000)).unwrap();
        let started = Instant::now();
        let output = run_module(&dir, &bomb, "compile_memory_mb = 300\nstartup_ms = 120000\n");
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("compile bomb: {:?} in {:?}: {stderr}", output.status.code(), started.elapsed());
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("plugin \"evil\""), "{stderr}");
        assert!(stderr.contains("compile memory limit of 300 MiB"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
        // The host (and its compiler child, under RLIMIT_DATA) stayed far below what the
        // module asks for; before, the host itself grew to 23.6 GB.
        assert!(children_peak_rss() < 1 << 30, "a child peaked at {} MiB", children_peak_rss() >> 20);
    }

    #[test]
    fn a_compile_bomb_is_killed_at_the_startup_deadline() {
        let dir = scratch("bomb-deadline");
        let bomb = dir.join("bomb.wasm");
        std::fs::write(&bomb, compile_bomb(100_000)).unwrap();
        let output = run_module(&dir, &bomb, "compile_memory_mb = 8192\nstartup_ms = 300\n");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("start-up limit of 300ms"), "{stderr}");
    }

    #[test]
    fn sigint_while_a_module_compiles_ends_the_run_with_130() {
        let dir = scratch("sigint-compile");
        let bomb = dir.join("bomb.wasm");
        std::fs::write(&bomb, compile_bomb(100_000)).unwrap();
        let child = run_command(&dir, &bomb, "compile_memory_mb = 3000\nstartup_ms = 600000\n").spawn().unwrap();
        // Event: the compiler process is running.
        let waiting = Instant::now();
        while runner_pids(child.id()).is_empty() {
            assert!(waiting.elapsed() < Duration::from_secs(60), "no compiler process started");
            std::thread::sleep(Duration::from_millis(5));
        }
        let signalled = Instant::now();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let output = child.wait_with_output().unwrap();
        println!("SIGINT during compilation: exit {:?} after {:?}", output.status.code(), signalled.elapsed());
        assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    }

    #[test]
    fn sigint_while_a_plugin_starts_ends_the_run_with_130() {
        let dir = scratch("sigint-init");
        // `init` never returns.
        let module = dir.join("hang.wasm");
        std::fs::write(&module, wat_plugin("(loop br 0) i32.const 0", "i32.const 0", "")).unwrap();
        let child = run_command(&dir, &module, "startup_ms = 600000\n").spawn().unwrap();
        // Event: the plugin process (not the compiler, which exits) has been running a while.
        let waiting = Instant::now();
        let mut seen = 0;
        while seen < 2 {
            assert!(waiting.elapsed() < Duration::from_secs(60), "no plugin process started");
            let pids = runner_pids(child.id());
            if let Some(pid) = pids.first() {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // Running its init loop: state R, past the compiler (which exits at once).
                if stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('R')) {
                    seen += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    }

    #[test]
    fn special_files_and_huge_files_as_plugin_paths_are_refused_at_once() {
        let dir = scratch("files");
        let fifo = dir.join("fifo.wasm");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let sparse = dir.join("sparse.wasm");
        let file = std::fs::File::create(&sparse).unwrap();
        file.set_len(2 << 30).unwrap();
        let cases: [(&Path, &str, &str); 4] = [
            (&fifo, "", "is a FIFO"),
            (Path::new("/dev/zero"), "", "is a device"),
            (&dir, "", "is a folder"),
            (&sparse, "", "more than the module size limit of 64 MiB (module_max_mb)"),
        ];
        for (path, extra, expected) in cases {
            let output = run_module(&dir, path, extra);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{}: {stderr}", path.display());
            assert!(stderr.contains(expected), "{}: {stderr}", path.display());
        }
        let small_cap = run_module(&dir, &plugin("invert"), "module_max_mb = 2\n");
        assert!(small_cap.status.success(), "{}", String::from_utf8_lossy(&small_cap.stderr));
    }

    #[test]
    fn plugin_text_never_reaches_the_terminal_raw() {
        let dir = scratch("escapes");
        let cases = [
            ("init-error", wat_plugin("i32.const 1", "i32.const 0", "")),
            ("process-error", wat_plugin("i32.const 0", "i32.const 1", "")),
            (
                "trap-name",
                wat_plugin(
                    "i32.const 0",
                    "call $evil i32.const 0",
                    "(func $evil (@name \"\\1b]0;pwned\\07\\nerror: forged by the plugin\\e2\\80\\ae\") unreachable)",
                ),
            ),
            (
                "import-name",
                wat_plugin(
                    "i32.const 0",
                    "i32.const 0",
                    "(import \"plugin_host\" \"\\1b[2J\\nerror: forged by the plugin\" (func))",
                ),
            ),
        ];
        for (name, module) in cases {
            let path = dir.join(format!("{name}.wasm"));
            std::fs::write(&path, module).unwrap();
            for policy in ["on_error = \"fail\"\n", "on_error = \"skip\"\n", "on_error = \"passthrough\"\n"] {
                let output = run_module(&dir, &path, policy);
                let stderr = String::from_utf8_lossy(&output.stderr);
                println!("{name}, {}: {stderr}", policy.trim());
                assert_clean(&stderr);
                assert_clean(&String::from_utf8_lossy(&output.stdout));
            }
            let inspect = Command::new(host_bin()).arg("inspect").arg(&path).output().unwrap();
            assert_clean(&String::from_utf8_lossy(&inspect.stderr));
            assert_clean(&String::from_utf8_lossy(&inspect.stdout));
        }
    }

    #[test]
    fn a_tampered_cache_entry_is_ignored_and_recompiled() {
        let dir = scratch("cache");
        let first = run_module(&dir, &plugin("invert"), "");
        assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
        let entries: Vec<PathBuf> = std::fs::read_dir(dir.join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        assert_eq!(entries.len(), 1, "one entry: {entries:?}");
        // Rewrite the code part; whatever checksum an attacker adds, the MAC needs the key.
        let mut bytes = std::fs::read(&entries[0]).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&entries[0], &bytes).unwrap();
        let second = run_module(&dir, &plugin("invert"), "");
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert!(second.status.success(), "{stderr}");
        assert!(stderr.contains("ignoring compiled-module cache entry"), "one warning: {stderr}");
        // A FIFO planted as the entry neither hangs the run nor is used.
        std::fs::remove_file(&entries[0]).unwrap();
        nix::unistd::mkfifo(&entries[0], nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let third = run_module(&dir, &plugin("invert"), "");
        assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
        // A folder others may write is not used at all, and the run goes on.
        let shared = dir.join("cache");
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let fourth = run_module(&dir, &plugin("invert"), "");
        let stderr = String::from_utf8_lossy(&fourth.stderr);
        assert!(fourth.status.success(), "{stderr}");
        assert!(stderr.contains("not using the compiled-module cache"), "{stderr}");
    }

    /// `[forger, invert]` on `frames` frames of 160x120, raw output; returns them and the stats.
    fn forging_chain(dir: &Path, forger: &[u8], policy: &str, frames: u64) -> (Vec<Vec<u8>>, serde_json::Value) {
        std::fs::write(dir.join("forger.wasm"), forger).unwrap();
        let config = format!(
            "ring = 8\n[input]\nkind = \"testsrc\"\nwidth = 160\nheight = 120\nframes = {frames}\n[[plugin]]\nname = \"forger\"\npath = \"forger.wasm\"\n{policy}max_restarts = 100000\n[[plugin]]\nname = \"neg\"\npath = \"{}\"\n[output]\nkind = \"raw\"\npath = \"out.rgba\"\n",
            plugin("invert").display()
        );
        std::fs::write(dir.join("chain.toml"), config).unwrap();
        let output = Command::new(host_bin())
            .current_dir(dir)
            .env("PLUGIN_HOST_CACHE", dir.join("cache"))
            .args(["run", "chain.toml", "-q", "--stats-json", "stats.json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let raw = std::fs::read(dir.join("out.rgba")).unwrap();
        let frames = raw.chunks(160 * 120 * 4).map(<[u8]>::to_vec).collect();
        (frames, serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap())
    }

    /// What the forger's `process` starts with: copy the input to the output and describe it.
    const COPY_THROUGH: &str = "(local i32 i32 i32)
        local.get 0 i32.load local.set 2
        local.get 1 i32.load local.set 3
        local.get 3 local.get 2 local.get 0 i32.load offset=16 local.get 0 i32.load offset=12 i32.mul memory.copy
        local.get 1 i32.const 8 i32.add local.get 0 i32.const 8 i32.add i32.const 24 memory.copy";

    #[test]
    fn a_stage_cannot_stamp_frames_of_other_boundaries() {
        let dir = scratch("forger");
        // Copies its frame through, then, from the top of its memory down, stamps a marker on
        // every page it can reach except its own two buffers: before, these were every lane's
        // buffers of the whole chain, and the marker reached the output un-inverted.
        let process = format!(
            "{COPY_THROUGH}
            memory.size i32.const 65536 i32.mul local.set 4
            (block (loop
              local.get 4 i32.const 4096 i32.sub local.tee 4
              i32.const 131072 i32.lt_u br_if 1
              (block
                local.get 4 local.get 2 i32.ge_u local.get 4 local.get 2 local.get 0 i32.load offset=4 i32.add i32.lt_u i32.and br_if 0
                local.get 4 local.get 3 i32.ge_u local.get 4 local.get 3 local.get 0 i32.load offset=4 i32.add i32.lt_u i32.and br_if 0
                local.get 4 i32.const 0xdeadbeef i32.store)
              br 0))
            i32.const 0"
        );
        let forger = wat_plugin("i32.const 0", &process.replace("(local i32 i32 i32)", "(local i32 i32 i32 i32)"), "");
        let (frames, stats) = forging_chain(&dir, &forger, "on_error = \"skip\"\n", 300);
        let marker = 0xdeadbeef_u32.to_le_bytes();
        let stamped = frames.iter().filter(|f| f.chunks(4).any(|p| p == marker)).count();
        println!("forger: {} frames out, {stamped} stamped; {}", frames.len(), stats["plugins"][0]);
        assert_eq!(stamped, 0, "a frame the forger does not produce carries its marker");
        // Its stores into its read-only input boundary end as traps, counted, never as frames.
        let traps = stats["plugins"][0]["traps"].as_u64().unwrap();
        assert_eq!(traps + frames.len() as u64, 300, "{stats}");
        assert!(traps > 0, "a store into the input boundary traps: {stats}");
    }

    #[test]
    fn a_passed_through_frame_is_the_input_as_the_previous_stage_delivered_it() {
        let dir = scratch("zeroer");
        // Zeroes its input, then traps. `memory.fill` runs in the runner's native code, so its
        // store into the read-only input kills the process (a crash, restarted after a back-off)
        // rather than trapping: a few frames show it.
        let process = format!(
            "{COPY_THROUGH}
            local.get 2 i32.const 0 local.get 0 i32.load offset=16 local.get 0 i32.load offset=12 i32.mul memory.fill
            unreachable"
        );
        let zeroer = wat_plugin("i32.const 0", &process, "");
        let (frames, stats) = forging_chain(&dir, &zeroer, "on_error = \"passthrough\"\n", 3);
        assert_eq!(frames.len(), 3, "{stats}");
        let mut input = plugin_sdk::OwnedFrame::new(1, 1, plugin_sdk::PixelFormat::Rgba8);
        for (n, got) in frames.iter().enumerate() {
            plugin_host_cli::io::test_pattern(160, 120, n as u64, &mut input);
            assert_eq!(got, &invert_reference(&input).data, "frame {} was changed by the stage that failed", n + 1);
        }
        assert_eq!(stats["plugins"][0]["passed_through"], 3, "{stats}");
    }

    #[test]
    fn a_stage_that_fails_cannot_change_the_frames_it_passes_through() {
        let dir = scratch("stamper");
        // Found by an attacker: fails every frame (so each is passed through, copied into its
        // output boundary), and on each call, for a few milliseconds, stamps every other lane of
        // that boundary (its upper half of the window), where the frames it passed through
        // before wait for the next stage.
        let process = format!(
            "{COPY_THROUGH}
            memory.size i32.const 65536 i32.mul local.set 7
            local.get 7 i32.const 131072 i32.sub i32.const 1 i32.shr_u i32.const 131072 i32.add local.set 6
            i32.const 20000 local.set 5
            (block (loop
              local.get 5 i32.eqz br_if 1
              local.get 6 local.set 4
              (block (loop
                local.get 4 local.get 7 i32.ge_u br_if 1
                (block
                  local.get 4 local.get 3 i32.ge_u local.get 4 local.get 3 local.get 0 i32.load offset=4 i32.add i32.lt_u i32.and br_if 0
                  local.get 4 i32.const 0xdeadbeef i32.store)
                local.get 4 i32.const 4096 i32.add local.set 4
                br 0))
              local.get 5 i32.const 1 i32.sub local.set 5
              br 0))
            i32.const 1"
        );
        let stamper =
            wat_plugin("i32.const 0", &process.replace("(local i32 i32 i32)", "(local i32 i32 i32 i32 i32 i32)"), "");
        let (frames, stats) = forging_chain(&dir, &stamper, "on_error = \"passthrough\"\n", 20);
        assert_eq!(frames.len(), 20, "{stats}");
        let mut input = plugin_sdk::OwnedFrame::new(1, 1, plugin_sdk::PixelFormat::Rgba8);
        for (n, got) in frames.iter().enumerate() {
            plugin_host_cli::io::test_pattern(160, 120, n as u64, &mut input);
            assert_eq!(got, &invert_reference(&input).data, "frame {} was changed by the stage that failed", n + 1);
        }
        assert_eq!(stats["plugins"][0]["passed_through"], 20, "{stats}");
    }

    fn mutated_module() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let valid = std::fs::read(plugin("invert")).unwrap();
        let len = valid.len();
        prop_oneof![
            // A few bytes changed anywhere.
            proptest::collection::vec((0..len, any::<u8>()), 1..8).prop_map(move |edits| {
                let mut module = valid.clone();
                for (at, byte) in edits {
                    module[at] = byte;
                }
                module
            }),
            // Cut short.
            (8..len).prop_map({
                let valid = std::fs::read(plugin("invert")).unwrap();
                move |end| valid[..end].to_vec()
            }),
            // Noise after a valid header.
            proptest::collection::vec(any::<u8>(), 0..4096).prop_map(|noise| {
                let mut module = b"\0asm\x01\0\0\0".to_vec();
                module.extend(noise);
                module
            }),
        ]
    }

    /// The bounded form of `fuzz/fuzz_targets/module_loading.rs`.
    #[test]
    fn random_and_mutated_modules_end_in_a_clear_error_or_a_description() {
        use proptest::test_runner::{Config, TestRunner};
        let dir = scratch("fuzz-modules");
        let mut runner = TestRunner::new(Config { cases: 200, failure_persistence: None, ..Config::default() });
        let (loaded, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        runner
            .run(&mutated_module(), |module| {
                let started = Instant::now();
                match load_untrusted_module(&dir, &module) {
                    Ok(_) => loaded.set(loaded.get() + 1),
                    Err(message) => {
                        refused.set(refused.get() + 1);
                        assert!(!message.contains('\n'), "one line: {message}");
                        assert!(message.starts_with("plugin \"fuzzed\": "), "{message}");
                    }
                }
                // A guard against a hang only: the start-up limit is 5 s.
                assert!(started.elapsed() < Duration::from_secs(30), "a module hung its load");
                Ok(())
            })
            .unwrap();
        println!("module fuzz: {} loaded, {} refused with one sentence", loaded.get(), refused.get());
    }
}
