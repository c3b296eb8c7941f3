//! A runner that lies (tests/bin/hostile_runner.rs) never hangs or crashes the host: each lie
//! ends in a typed error within the host's own deadline, and the liar is killed and reaped.

use plugin_host::{ErrorKind, PluginProcess};
use plugin_host_tests::*;
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
    let mut plugin = PluginProcess::spawn(hostile(mode)).unwrap();
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
fn an_oversized_message_is_refused_before_allocation() {
    assert_caught("oversized", |k| matches!(k, ErrorKind::Died { status, .. } if status.contains("exceeds the limit")));
}

#[test]
fn a_message_flood_is_cut_off() {
    assert_caught("flood", |k| matches!(k, ErrorKind::Died { status, .. } if status.contains("more than 64 messages")));
}

#[test]
fn an_impossible_state_word_is_a_protocol_violation() {
    assert_caught("bad-state", |k| matches!(k, ErrorKind::Protocol(m) if m.contains("holds 77")));
}

#[test]
fn an_output_descriptor_past_the_slot_is_refused() {
    assert_caught(
        "bad-descriptor",
        |k| matches!(k, ErrorKind::Protocol(m) if m.contains("output descriptor is invalid")),
    );
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
