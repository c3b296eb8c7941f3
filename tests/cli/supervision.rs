//! Supervision through `plugin-host run`: every way a plugin misbehaves, under every `on_error`
//! policy, ends as the policy says, with exact counts and exact frames.

use crate::support::*;
use plugin_host_cli::io::test_pattern;
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FRAMES: u64 = 200;
/// The instance's frame on which the plugin misbehaves; a re-instantiated plugin counts afresh.
const EVERY: u64 = 50;
const WIDTH: u32 = 32;
const HEIGHT: u32 = 24;

fn scratch(name: &str) -> PathBuf {
    scratch_dir("supervision", name)
}

fn run(dir: &Path, mode: &str, policy: &str, extra: &str) -> Output {
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = {WIDTH}\nheight = {HEIGHT}\nframes = {FRAMES}\n[[plugin]]\nname = \"bad\"\npath = \"{}\"\non_error = \"{policy}\"\ndeadline_ms = 100\nmemory_mb = 16\n{extra}[plugin.params]\nmode = \"{mode}\"\nframe = {EVERY}\n[output]\nkind = \"png\"\npath = \"out\"\n",
        test_plugin("misbehave").display()
    );
    std::fs::write(dir.join("run.toml"), config).unwrap();
    Command::new(host_bin()).current_dir(dir).args(["run", "run.toml", "--stats-json", "stats.json"]).output().unwrap()
}

fn input(number: u64) -> OwnedFrame {
    let mut frame = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    test_pattern(WIDTH, HEIGHT, number - 1, &mut frame);
    frame
}

/// Runs `mode` under each policy and checks the outcome. `counter` is the stats field its
/// failures count under; `resets` says whether the plugin is re-instantiated after a failure
/// (and so misbehaves again `EVERY` frames later).
fn misbehave_under_every_policy(mode: &str, counter: &str, resets: bool) {
    let failing: Vec<u64> = if resets { (1..=FRAMES / EVERY).map(|k| k * EVERY).collect() } else { vec![EVERY] };
    let failures = failing.len() as u64;

    let dir = scratch(&format!("{mode}-fail"));
    let output = run(&dir, mode, "fail", "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{mode}/fail: {stderr}");
    assert!(stderr.contains(&format!("frame {EVERY}")), "{mode}/fail names the frame: {stderr}");
    assert!(stderr.contains(&format!("the output holds the {} frame(s)", EVERY - 1)), "{mode}/fail: {stderr}");
    let frames = written_frames(&dir.join("out"));
    assert_eq!(frames.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (1..EVERY).collect::<Vec<_>>());
    for (n, got) in &frames {
        assert!(got.same_pixels(&invert_reference(&input(*n))), "{mode}/fail: frame {n}");
    }

    let dir = scratch(&format!("{mode}-skip"));
    let output = run(&dir, mode, "skip", "");
    assert!(output.status.success(), "{mode}/skip: {}", String::from_utf8_lossy(&output.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap();
    let p = &stats["plugins"][0];
    assert_eq!(p[counter], failures, "{mode}/skip: {p}");
    assert_eq!(p["errors"], failures, "{mode}/skip: {p}");
    assert_eq!(p["skipped"], failures, "{mode}/skip: {p}");
    assert_eq!(p["crashes"], 0, "{mode}/skip: {p}");
    assert_eq!(stats["frames_out"], FRAMES - failures);
    let frames = written_frames(&dir.join("out"));
    let expected: Vec<u64> = (1..=FRAMES).filter(|n| !failing.contains(n)).collect();
    assert_eq!(frames.iter().map(|(n, _)| *n).collect::<Vec<_>>(), expected, "{mode}/skip drops exactly those");
    for (n, got) in &frames {
        assert!(got.same_pixels(&invert_reference(&input(*n))), "{mode}/skip: frame {n}");
    }

    let dir = scratch(&format!("{mode}-passthrough"));
    let output = run(&dir, mode, "passthrough", "");
    assert!(output.status.success(), "{mode}/passthrough: {}", String::from_utf8_lossy(&output.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap();
    let p = &stats["plugins"][0];
    assert_eq!(p[counter], failures, "{mode}/passthrough: {p}");
    assert_eq!(p["passed_through"], failures, "{mode}/passthrough: {p}");
    assert_eq!(stats["frames_out"], FRAMES);
    let frames = written_frames(&dir.join("out"));
    assert_eq!(frames.len() as u64, FRAMES);
    for (n, got) in &frames {
        let want = if failing.contains(n) { input(*n) } else { invert_reference(&input(*n)) };
        assert!(got.same_pixels(&want), "{mode}/passthrough: frame {n}");
    }
    println!("{mode}: {failures} failures in {FRAMES} frames, counted as {counter}; fail/skip/passthrough as expected");
}

#[test]
fn a_panic_is_a_trap() {
    misbehave_under_every_policy("panic", "traps", true);
}

#[test]
fn unreachable_is_a_trap() {
    misbehave_under_every_policy("unreachable", "traps", true);
}

#[test]
fn division_by_zero_is_a_trap() {
    misbehave_under_every_policy("divide", "traps", true);
}

#[test]
fn stack_overflow_is_a_trap() {
    misbehave_under_every_policy("recurse", "traps", true);
}

#[test]
fn an_out_of_bounds_access_is_a_trap() {
    misbehave_under_every_policy("out-of-bounds", "traps", true);
}

#[test]
fn an_endless_loop_misses_its_deadline() {
    misbehave_under_every_policy("loop", "deadline_misses", true);
}

#[test]
fn a_slow_frame_misses_its_deadline() {
    misbehave_under_every_policy("slow", "deadline_misses", true);
}

#[test]
fn endless_allocation_hits_the_memory_limit() {
    misbehave_under_every_policy("alloc", "memory_limit_hits", true);
}

#[test]
fn a_plugin_error_is_counted_as_one() {
    misbehave_under_every_policy("error", "plugin_errors", false);
}

#[test]
fn a_slow_plugin_within_a_long_deadline_is_not_a_failure() {
    let dir = scratch("slow-long-deadline");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 8\nheight = 8\nframes = 3\n[[plugin]]\nname = \"slow\"\npath = \"{}\"\ndeadline_ms = 60000\n[plugin.params]\nmode = \"slow\"\nframe = 2\nspin = 50\n[output]\nkind = \"null\"\n",
        test_plugin("misbehave").display()
    );
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let output = Command::new(host_bin()).current_dir(&dir).args(["run", "run.toml", "-q"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_plugin_that_fails_in_init_stops_the_run_before_any_frame() {
    let dir = scratch("init-error");
    let output = run(&dir, "init-error", "skip", "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("plugin \"bad\"") && stderr.contains("init refused on purpose"), "{stderr}");
    assert!(!dir.join("out").exists(), "nothing is written");
}

#[test]
fn a_log_flood_is_rate_limited_and_frames_stay_exact() {
    let dir = scratch("flood");
    let output = run(&dir, "flood", "fail", "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines = stderr.lines().filter(|l| l.contains("of a flood")).count();
    let dropped = stderr.lines().filter(|l| l.contains("dropped")).count();
    println!("log flood: {} lines sent, {lines} forwarded, {dropped} drop reports", FRAMES * 1000);
    assert!(lines < (FRAMES * 1000) as usize / 10, "the flood must be cut down, {lines} lines got through");
    assert!(dropped > 0, "the drops are reported: {stderr}");
    let frames = written_frames(&dir.join("out"));
    assert_eq!(frames.len() as u64, FRAMES);
    for (n, got) in &frames {
        assert!(got.same_pixels(&invert_reference(&input(*n))), "frame {n}");
    }
}
