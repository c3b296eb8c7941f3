//! Plugin processes killed at random during a run, spawned and killed a thousand times, and a
//! host killed while its plugins run: the host survives, delivers only exact frames, and leaks
//! nothing; no plugin process outlives its host.
//!
//! The tests here measure this process's descriptors, mappings and threads, so they run one at
//! a time (`SERIAL`).

use plugin_host::{ErrorKind, PluginProcess};
use plugin_host_cli::config::Config;
use plugin_host_cli::io::test_pattern;
use plugin_host_cli::pipeline::{Prepared, Progress, RunOptions};
#[path = "support.rs"]
#[allow(dead_code, reason = "shared by the test binaries; each uses a part")]
mod support;

use plugin_sdk::abi::ParamValue;
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::*;

static SERIAL: Mutex<()> = Mutex::new(());

struct Silent;
impl Progress for Silent {
    fn start(&mut self, _: Option<u64>) {}
    fn frame_done(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap().trim().parse().unwrap()
}

/// This process's children that are zombies (dead, not reaped).
fn zombies() -> usize {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let mut rest = stat.rsplit_once(") ").map(|(_, r)| r.split(' ')).into_iter().flatten();
            let state = rest.next();
            let parent = rest.next().and_then(|p| p.parse::<u32>().ok());
            state == Some("Z") && parent == Some(me)
        })
        .count()
}

/// Descriptors, mappings of shared regions (memfds) and threads of this process, after a moment
/// for threads to end. (Other mappings are not compared: glibc keeps the malloc arenas and
/// thread stacks it made for threads that have ended.)
fn footprint() -> (usize, usize, usize) {
    std::thread::sleep(Duration::from_millis(300));
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    (fd_count(), maps.lines().filter(|l| l.contains("/memfd:")).count(), threads())
}

/// Holds the run back until the killer has kept pace: one kill per 8 frames delivered, up to
/// `until` frames. With at most one frame lost per kill, a run of 1,000 frames then ends after
/// at least 122 kills however fast or slow the machine is (a timer alone got 96 on a busy one).
/// The last frames are not held: once the source is done the stages finish and their processes
/// exit, and a killer with nothing left to kill could never catch up.
struct KeepPace<'a> {
    kills: &'a AtomicU64,
    until: u64,
}

impl Progress for KeepPace<'_> {
    fn start(&mut self, _: Option<u64>) {}
    fn frame_done(&mut self, frames_out: u64) {
        if frames_out > self.until {
            return;
        }
        let waiting = Instant::now();
        while self.kills.load(Ordering::Relaxed) < frames_out / 8 {
            // A guard against a hang only, far beyond any kill interval: not a timing assertion.
            assert!(waiting.elapsed() < Duration::from_secs(300), "the killer stopped killing");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    fn finish(&mut self) {}
}

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.99))
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn chaos_config(dir: &std::path::Path, frames: u64) -> Config {
    let plugins: String = [("soft", "blur"), ("neg", "invert")]
        .iter()
        .map(|(name, module)| {
            format!(
                "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\non_error = \"skip\"\nmax_restarts = 100000\n",
                plugin(module).display()
            )
        })
        .collect();
    let text = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 160\nheight = 120\nframes = {frames}\n{plugins}[output]\nkind = \"png\"\npath = \"out\"\n"
    );
    std::fs::write(dir.join("chaos.toml"), text).unwrap();
    Config::load(&dir.join("chaos.toml")).unwrap()
}

fn expected(number: u64) -> OwnedFrame {
    let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    test_pattern(160, 120, number - 1, &mut input);
    let mut blurred = OwnedFrame::new(160, 120, PixelFormat::Rgba8);
    let mut soft =
        <blur::Blur as plugin_sdk::Plugin>::new(&plugin_sdk::testing::params_for::<blur::Blur>(&[])).unwrap();
    plugin_sdk::Plugin::process(&mut soft, &input.view(), &mut blurred.view_mut()).unwrap();
    invert_reference(&blurred)
}

#[test]
fn kill_chaos_a_thousand_frames_and_a_hundred_kills() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch_dir("chaos", "kills");
    let options = RunOptions { max_frames: None, runner: Some(host_bin()), live: None, changes: Vec::new() };
    // A short run first, so that what lives for the whole process (the spawner thread, caches)
    // exists before the baseline.
    let (_, warm) = Prepared::new(&chaos_config(&dir, 5), options.clone()).unwrap().run(&mut Silent);
    warm.unwrap();
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let before = footprint();

    const FRAMES: u64 = 1000;
    let stop = AtomicBool::new(false);
    let kills = AtomicU64::new(0);
    // Kills start once the plugins are up; those that land while a plugin restarts hit start-up.
    let prepared = Prepared::new(&chaos_config(&dir, FRAMES), options.clone()).unwrap();
    let (stats, result) = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(12 + xorshift(&mut seed) % 28));
                let pids = runner_pids(std::process::id());
                if let Some(&pid) = pids.get(xorshift(&mut seed) as usize % pids.len().max(1)) {
                    // SAFETY: kill(2) on one of our own children.
                    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                        kills.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        /// Stops the killer however the run ends.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        // Far more than the frames in flight at once (one per plugin plus the ring).
        prepared.run(&mut KeepPace { kills: &kills, until: FRAMES - 24 })
    });
    result.expect("the run survives every kill");
    let kills = kills.load(Ordering::Relaxed);
    let frames = written_frames(&dir.join("out"));
    for (number, got) in &frames {
        assert!(got.same_pixels(&expected(*number)), "frame {number} was corrupted");
    }
    let lost: u64 = stats.plugins.iter().map(|p| p.skipped).sum();
    let crashes: u64 = stats.plugins.iter().map(|p| p.crashes).sum();
    let restarts: Vec<String> = stats
        .plugins
        .iter()
        .map(|p| format!("{} p50 {} µs p99 {} µs", p.name, p.restart_p50_us, p.restart_p99_us))
        .collect();
    println!(
        "kill chaos: {kills} kills, {crashes} crashes seen mid-frame, {} restarts ({}); {} of {FRAMES} frames delivered, \
         all exact; {lost} lost and counted",
        stats.plugins.iter().map(|p| p.restarts).sum::<u64>(),
        restarts.join(", "),
        frames.len()
    );
    assert!(kills >= 100, "the test must kill at least 100 times (got {kills})");
    assert!(lost <= kills, "at most one frame lost per kill");
    assert_eq!(frames.len() as u64 + lost, FRAMES, "every frame delivered or counted");

    let after = footprint();
    assert_eq!(zombies(), 0, "no zombies");
    assert_eq!(after, before, "descriptors, region mappings and threads are back where they were");
}

#[test]
fn a_thousand_spawns_and_kills_leak_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cycle = || {
        let mut plugin = PluginProcess::spawn(spec("cycle", plugin("invert"), 4096)).unwrap();
        plugin.kill();
    };
    for _ in 0..5 {
        cycle();
    }
    let before = footprint();
    let started = Instant::now();
    for _ in 0..1000 {
        cycle();
    }
    let after = footprint();
    println!(
        "1,000 spawn → kill cycles in {:.1} s: (fds, region mappings, threads) before {before:?}, after {after:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(zombies(), 0);
    assert_eq!(after, before);
}

#[test]
fn a_death_is_noticed_at_once_and_the_standby_restarts_within_milliseconds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut spec = spec("victim", test_plugin("misbehave"), 1 << 16)
        .param("mode", ParamValue::Str("slow".into()))
        .param("spin", ParamValue::Int(1_000_000));
    spec.limits.deadline = Duration::from_secs(60);
    spec.standby = true;
    let mut plugin = PluginProcess::spawn(spec).unwrap();
    let input = noise_frame(16, 16, 0, PixelFormat::Rgba8, 1);
    let (mut detection_ms, mut restart_ms) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(150)); // the standby gets ready
        let ticket = plugin.submit(&input.view()).unwrap();
        std::thread::sleep(Duration::from_millis(5)); // the plugin is mid-frame, spinning
        let pid = plugin.pid().unwrap() as i32;
        let killed = Instant::now();
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let mut out = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
        let err = plugin.receive(ticket, &mut out).unwrap_err();
        detection_ms.push(killed.elapsed().as_secs_f64() * 1e3);
        assert!(matches!(err.kind, ErrorKind::Died { .. }), "{err}");
        let restarting = Instant::now();
        plugin.restart().unwrap();
        restart_ms.push(restarting.elapsed().as_secs_f64() * 1e3);
    }
    let (d50, d99) = percentiles(detection_ms);
    let (r50, r99) = percentiles(restart_ms);
    println!(
        "death mid-frame: detected (SIGKILL → error) p50 {d50:.2} ms, p99 {d99:.2} ms; restart from the standby \
         p50 {r50:.2} ms, p99 {r99:.2} ms"
    );
    assert!(d99 < 60_000.0, "detection comes from the closed pipe, not the 60 s deadline");
}

#[test]
fn no_plugin_process_outlives_a_killed_host() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch_dir("chaos", "host-death");
    let plugins: String = ["invert", "flip", "grayscale", "brightness"]
        .iter()
        .map(|m| format!("[[plugin]]\nname = \"{m}\"\npath = \"{}\"\n", plugin(m).display()))
        .collect();
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 64\nheight = 64\nframes = 100000000\n{plugins}[output]\nkind = \"null\"\n"
    );
    std::fs::write(dir.join("forever.toml"), config).unwrap();
    let mut host = Command::new(host_bin())
        .current_dir(&dir)
        .args(["run", "forever.toml", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut runners = Vec::new();
    while runners.len() < 8 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
        runners = runner_pids(host.id());
    }
    assert!(runners.len() >= 4, "four plugins (and their standbys) run: {runners:?}");
    std::thread::sleep(Duration::from_millis(200));
    host.kill().unwrap();
    let killed = Instant::now();
    host.wait().unwrap();
    let alive = |pid: &i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
    };
    while runners.iter().any(alive) && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_micros(200));
    }
    let gone_after = killed.elapsed();
    println!("host SIGKILLed with {} plugin processes: all gone after {gone_after:?}", runners.len());
    assert!(!runners.iter().any(alive), "plugin processes outlived their host: {runners:?}");
}

#[test]
fn a_thousand_frames_in_a_row_without_leaks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut plugin = PluginProcess::spawn(spec("neg", plugin("invert"), 320 * 240 * 4)).unwrap();
    let frames: Vec<OwnedFrame> = (0..4).map(|i| noise_frame(320, 240, 0, PixelFormat::Rgba8, i)).collect();
    let expected: Vec<OwnedFrame> = frames.iter().map(invert_reference).collect();
    let mut output = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    let mut run = |plugin: &mut PluginProcess, n: usize| {
        for i in 0..n {
            let ticket = plugin.submit(&frames[i % 4].view()).unwrap();
            plugin.receive(ticket, &mut output).unwrap();
            assert!(output.same_pixels(&expected[i % 4]), "frame {i}");
        }
    };
    run(&mut plugin, 10);
    let before = (fd_count(), map_count());
    run(&mut plugin, 1000);
    assert_eq!((fd_count(), map_count()), before, "descriptors or mappings grew over 1,000 frames");
    plugin.shutdown().unwrap();
}
