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
