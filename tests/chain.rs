//! A chain in `plugin-host run` hands frames from stage to stage without copying them, and a
//! stage killed mid-run never corrupts a delivered frame.

use plugin_host::io::test_pattern;
use plugin_host_tests::*;
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    scratch_dir("chain", name)
}

/// invert → flip (horizontal) → grayscale, with `extra` in each plugin's table.
fn chain_config(width: u32, height: u32, frames: u64, extra: &str) -> String {
    let plugins: String = [("neg", "invert"), ("mirror", "flip"), ("gray", "grayscale")]
        .iter()
        .map(|(name, module)| {
            format!("[[plugin]]\nname = \"{name}\"\npath = \"{}\"\n{extra}", plugin(module).display())
        })
        .collect();
    format!(
        "[input]\nkind = \"testsrc\"\nwidth = {width}\nheight = {height}\nframes = {frames}\n{plugins}[output]\nkind = \"png\"\npath = \"out\"\n"
    )
}

fn expected(width: u32, height: u32, number: u64) -> OwnedFrame {
    let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    test_pattern(width, height, number - 1, &mut input);
    grayscale_reference(&flip_reference(&invert_reference(&input), true))
}

/// Runs `config` in `dir` with its stats in `stats.json`; it must succeed.
fn run_quietly(dir: &Path, config: &str) {
    std::fs::write(dir.join("chain.toml"), config).unwrap();
    let output = Command::new(host_bin())
        .current_dir(dir)
        .args(["run", "chain.toml", "-q", "--stats-json", "stats.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn stats(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_chain_hands_frames_on_without_copying() {
    let dir = scratch("zero-copy");
    run_quietly(&dir, &chain_config(64, 48, 60, ""));
    let frames = written_frames(&dir.join("out"));
    assert_eq!(frames.len(), 60);
    for (number, got) in &frames {
        assert!(got.same_pixels(&expected(64, 48, *number)), "frame {number} differs");
    }
    let stats = stats(&dir.join("stats.json"));
    assert_eq!(stats["copies"], 0, "frames must move along the chain by lane, not by copy: {stats}");
    for p in stats["plugins"].as_array().unwrap() {
        assert_eq!(p["copies"], 0, "{p}");
        assert_eq!(p["frames"], 60, "{p}");
    }
}

#[test]
fn a_passed_through_frame_is_the_one_counted_copy() {
    let dir = scratch("passthrough-copy");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 32\nheight = 16\nframes = 6\n[[plugin]]\nname = \"neg\"\npath = \"{}\"\n[[plugin]]\nname = \"odd\"\npath = \"{}\"\non_error = \"passthrough\"\n[plugin.params]\nmode = \"error\"\nframe = 4\n[output]\nkind = \"png\"\npath = \"out\"\n",
        plugin("invert").display(),
        test_plugin("misbehave").display()
    );
    run_quietly(&dir, &config);
    let stats = stats(&dir.join("stats.json"));
    assert_eq!(stats["copies"], 1, "{stats}");
    assert_eq!(stats["plugins"][1]["passed_through"], 1, "{stats}");
    // Frame 4 left the failing stage as it came in: inverted by the first stage.
    let frames = written_frames(&dir.join("out"));
    let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    test_pattern(32, 16, 3, &mut input);
    assert!(frames[3].1.same_pixels(&invert_reference(&input)));
}

#[test]
fn a_stage_killed_mid_run_never_corrupts_a_delivered_frame() {
    kill_stages_at_random("killed", "");
}

#[test]
fn a_pipe_transport_stage_killed_between_frames_is_restarted_too() {
    // Found by a user test: a pipe-transport stage killed while idle was never restarted, and
    // every later frame was skipped as a crash.
    kill_stages_at_random("killed-pipe", "transport = \"pipe\"\n");
}

/// Kills random stage processes of a 3-stage chain for its whole run: every delivered frame
/// is exact, every frame is delivered or skipped, and a kill costs at most the one frame the
/// process was working on.
fn kill_stages_at_random(name: &str, transport: &str) {
    let dir = scratch(name);
    let (width, height, total) = (160, 120, 800);
    let extra = format!("on_error = \"skip\"\nmax_restarts = 1000\n{transport}");
    let extra = extra.as_str();
    std::fs::write(dir.join("chain.toml"), chain_config(width, height, total, extra)).unwrap();
    let mut child = Command::new(host_bin())
        .current_dir(&dir)
        .args(["run", "chain.toml", "-q", "--stats-json", "stats.json"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
        .spawn()
        .unwrap();
    let host = child.id();
    let started = Instant::now();
    let mut kills = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(120) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 60));
        let pids = runner_pids(host);
        if let Some(&pid) = pids.get((seed >> 32) as usize % pids.len().max(1)) {
            // SAFETY: kill(2) on a process id; it may already be gone, which is fine.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                kills += 1;
            }
        }
    }
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("stderr.txt")).unwrap();
    for line in log.lines().filter(|l| !l.contains("died during")) {
        println!("host: {line}");
    }
    assert!(status.success(), "the run must survive the kills: {status}");
    let stats = stats(&dir.join("stats.json"));
    let frames = written_frames(&dir.join("out"));
    for (number, got) in &frames {
        assert!(got.same_pixels(&expected(width, height, *number)), "frame {number} was corrupted");
    }
    let skipped: u64 = stats["plugins"].as_array().unwrap().iter().map(|p| p["skipped"].as_u64().unwrap()).sum();
    println!("{kills} kills; {} frames delivered, all exact; {skipped} skipped; {stats}", frames.len());
    assert!(kills >= 5, "the test must actually kill stages (got {kills})");
    assert_eq!(frames.len() as u64 + skipped, total, "every frame is delivered or counted as skipped");
    assert!(skipped <= kills, "{skipped} frames skipped for {kills} kills");
    assert_eq!(stats["frames_out"], frames.len() as u64);
}

#[test]
fn a_chain_of_pipe_transport_plugins_gives_the_same_frames_and_counts_its_copies() {
    let dir = scratch("pipe");
    run_quietly(&dir, &chain_config(64, 48, 60, "transport = \"pipe\"\n"));
    let frames = written_frames(&dir.join("out"));
    assert_eq!(frames.len(), 60);
    for (number, got) in &frames {
        assert!(got.same_pixels(&expected(64, 48, *number)), "frame {number} differs");
    }
    // Each plugin's result comes back as a message and is written into its lane: one copy each.
    let stats = stats(&dir.join("stats.json"));
    assert_eq!(stats["copies"], 3 * 60, "{stats}");
}

/// Runs `config` in `dir`; the run must end within two minutes. Returns its exit code.
fn run_bounded(dir: &Path, config: &str) -> Option<i32> {
    std::fs::write(dir.join("chain.toml"), config).unwrap();
    let mut child = Command::new(host_bin())
        .current_dir(dir)
        .args(["run", "chain.toml", "-q", "--stats-json", "stats.json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the run hung");
}

#[test]
fn a_late_stage_that_fails_ends_the_run_instead_of_hanging_it() {
    // The first stage is fast, the second fails: the source must not wait for lanes forever.
    let dir = scratch("late-failure");
    let config = format!(
        "ring = 4\n[input]\nkind = \"testsrc\"\nwidth = 64\nheight = 48\nframes = 100000\n[[plugin]]\nname = \"neg\"\npath = \"{}\"\n[[plugin]]\nname = \"bad\"\npath = \"{}\"\non_error = \"fail\"\n[plugin.params]\nmode = \"error\"\nframe = 20\n[output]\nkind = \"null\"\n",
        plugin("invert").display(),
        test_plugin("misbehave").display()
    );
    assert_eq!(run_bounded(&dir, &config), Some(1));
}

#[test]
fn time_queued_behind_other_frames_does_not_count_against_the_deadline() {
    // Eighteen frames in flight at ~35 ms each: the last waits far longer than its 250 ms
    // deadline since it was handed over, but the plugin takes only ~35 ms for it.
    let dir = scratch("queued");
    let config = format!(
        "ring = 16\n[input]\nkind = \"testsrc\"\nwidth = 1280\nheight = 720\nframes = 40\n[[plugin]]\nname = \"soft\"\npath = \"{}\"\ndeadline_ms = 250\n[output]\nkind = \"null\"\n",
        plugin("blur").display()
    );
    assert_eq!(run_bounded(&dir, &config), Some(0));
    let stats = stats(&dir.join("stats.json"));
    assert_eq!(stats["plugins"][0]["deadline_misses"], 0, "{stats}");
    assert_eq!(stats["frames_out"], 40);
}
