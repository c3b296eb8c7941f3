//! A run watched while it runs: the metrics endpoint, and the host's memory over a long run.

use crate::support::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// `GET /metrics` at `addr` (`127.0.0.1:PORT`): the body.
fn get_metrics(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"), "{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// The value of a sample line `name value` (no labels).
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

#[test]
fn metrics_count_live_and_the_hosts_memory_stays_flat_over_a_long_run() {
    let dir = scratch_dir("live", "metrics");
    let (mut child, first) = spawn_announced(
        host_command(&dir)
            .args(["run", "-q", "-i", "testsrc:16x16:10000000", "-o", "null", "invert ! flip ! invert"])
            .args(["--metrics", "127.0.0.1:0"])
            .stdout(Stdio::null()),
    );
    let addr = first
        .strip_prefix("metrics: http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the address first: {first}"))
        .to_string();
    // Memory at two points of the run, counted in frames (not seconds): a per-frame leak of a
    // few bytes per stage (as the latency vectors once were) shows as hundreds of KiB here.
    let until = |frames: u64| loop {
        let text = get_metrics(&addr);
        if sample(&text, "plugin_host_output_frames_total") >= frames {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    until(5_000);
    let early = rss_kib(child.id());
    let text = until(60_000);
    let late = rss_kib(child.id());
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(late <= early + 512, "the host grew from {early} KiB to {late} KiB over 55,000 frames");

    assert!(sample(&text, "plugin_host_input_frames_total") >= 60_000);
    assert!(text.contains("plugin_host_plugin_frames_total{plugin=\"flip\"} "), "{text}");
    assert!(text.contains("plugin_host_plugin_latency_seconds_bucket{plugin=\"invert-2\",le=\"+Inf\"} "), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

/// The raw RGBA frames a config over `testsrc` 48x32 (60 frames) gives, with `extra` arguments.
fn frames_of(dir: &std::path::Path, blur_radius: i64, extra: &[&str]) -> Result<Vec<Vec<u8>>, String> {
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 48\nheight = 32\nframes = 60\n\
         [[plugin]]\nname = \"soft\"\npath = \"{}\"\nparams = {{ radius = {blur_radius} }}\n\
         [[plugin]]\nname = \"neg\"\npath = \"{}\"\n[output]\nkind = \"raw\"\npath = \"out.rgba\"\n",
        plugin("blur").display(),
        plugin("invert").display()
    );
    std::fs::write(dir.join("p.toml"), config).unwrap();
    let _ = std::fs::remove_file(dir.join("out.rgba"));
    let output = Command::new(host_bin()).current_dir(dir).args(["run", "-q", "p.toml"]).args(extra).output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(std::fs::read(dir.join("out.rgba")).unwrap().chunks(48 * 32 * 4).map(<[u8]>::to_vec).collect())
}

#[test]
fn parameter_changes_apply_from_their_frame_and_replay_exactly() {
    let dir = scratch_dir("live", "changes");
    // The test pattern runs at 30 frames/s: frame 15 is at 500 ms, frame 30 at 1000 ms.
    let changes = "[[change]]\nat_ms = 500\nplugin = \"soft\"\nparams = { radius = 4 }\n\
                   [[change]]\nat_ms = 1000\nplugin = \"soft\"\nparams = { radius = 0 }\n";
    std::fs::write(dir.join("changes.toml"), changes).unwrap();
    let changed = frames_of(&dir, 1, &["--changes", "changes.toml"]).unwrap();
    let again = frames_of(&dir, 1, &["--changes", "changes.toml"]).unwrap();
    assert_eq!(changed.len(), 60);
    assert!(changed == again, "the same change list gives the same bytes");
    let (one, four, zero) =
        (frames_of(&dir, 1, &[]).unwrap(), frames_of(&dir, 4, &[]).unwrap(), frames_of(&dir, 0, &[]).unwrap());
    for (n, frame) in changed.iter().enumerate() {
        let expected = match n {
            0..15 => &one[n],
            15..30 => &four[n],
            _ => &zero[n],
        };
        assert!(frame == expected, "frame {n} has the parameters of its time");
    }
    // A value the schema refuses: said before any frame, and nothing written.
    std::fs::write(dir.join("bad.toml"), "[[change]]\nat_ms = 10\nplugin = \"soft\"\nparams = { radius = 999 }\n")
        .unwrap();
    let err = frames_of(&dir, 1, &["--changes", "bad.toml"]).unwrap_err();
    assert!(err.contains("the change at 10 ms: plugin \"soft\"") && err.contains("999"), "{err}");
    assert!(!dir.join("out.rgba").exists());
    std::fs::write(dir.join("who.toml"), "[[change]]\nat_ms = 10\nplugin = \"sfot\"\nparams = { radius = 2 }\n")
        .unwrap();
    let err = frames_of(&dir, 1, &["--changes", "who.toml"]).unwrap_err();
    assert!(err.contains("no plugin named \"sfot\" (there are: soft, neg)"), "{err}");
}

/// `POST /params` at `addr` with `token` (or none) and a JSON body: the status line and body.
fn post_params(addr: &str, token: Option<&str>, body: &str) -> (String, String) {
    request(addr, "POST /params", token, body)
}

/// `WHAT` (`POST /pause`) at `addr` with `body`, and the token when given: the status line and
/// the body of the answer.
fn request(addr: &str, what: &str, token: Option<&str>, body: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "{what} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

#[test]
fn a_parameter_posted_while_running_applies_from_one_frame_on_and_needs_the_token() {
    let dir = scratch_dir("live", "control");
    let (w, h, frames) = (16usize, 16usize, 30_000usize);
    let run = |chain: &str| {
        let mut command = host_command(&dir);
        command.args(["run", "-q", "-i", &format!("testsrc:{w}x{h}:{frames}"), "-o", "out.rgba", chain]);
        command.stdout(Stdio::null());
        command
    };
    let frames_of = |file: &str| -> Vec<Vec<u8>> {
        std::fs::read(dir.join(file)).unwrap().chunks(w * h * 4).map(<[u8]>::to_vec).collect()
    };
    for (radius, file) in [(1, "one.rgba"), (4, "four.rgba")] {
        let output = run(&format!("blur radius={radius} ! invert")).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        std::fs::rename(dir.join("out.rgba"), dir.join(file)).unwrap();
    }
    let (mut child, first) = spawn_announced(run("blur radius=1 ! invert").args(["--control", "127.0.0.1:0"]));
    let addr = first.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap().to_string();
    let token = first.rsplit("token: ").next().unwrap().trim().to_string();
    while sample(&get_metrics(&addr), "plugin_host_output_frames_total") < 1_000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let change = r#"{"plugin": "blur", "params": {"radius": 4}}"#;
    let (status, body) = post_params(&addr, None, change);
    assert!(status.contains("401"), "without the token: {status} {body}");
    let (status, body) = post_params(&addr, Some("0123"), change);
    assert!(status.contains("401"), "a wrong token: {status} {body}");
    let (status, body) = post_params(&addr, Some(&token), r#"{"plugin": "blur", "params": {"radius": 400}}"#);
    assert!(status.contains("400") && body.contains("= 400 is out of range 0..=64"), "{status} {body}");
    let (status, body) = post_params(&addr, Some(&token), change);
    assert!(status.contains("202"), "{status} {body}");
    assert!(child.wait().unwrap().success());

    let (changed, one, four) = (frames_of("out.rgba"), frames_of("one.rgba"), frames_of("four.rgba"));
    assert_eq!(changed.len(), frames);
    let from = changed.iter().zip(&one).position(|(a, b)| a != b).expect("the change took effect");
    assert!(from >= 1_000, "not before it was posted: frame {from}");
    assert!(changed[..from] == one[..from], "the frames before it have the old value");
    assert!(changed[from..] == four[from..], "every frame from it on has the new value");
}

/// Runs `misbehave` in `mode` (it counts frames into row 0 and keeps the count as its state,
/// kept every frame) while its processes are killed every 30 ms; returns the counts the output
/// frames carry, in order, the kills and the plugin's statistics.
fn count_through_kills(name: &str, mode: &str) -> (Vec<u32>, u32, serde_json::Value) {
    let dir = scratch_dir("live", name);
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 320\nheight = 240\nframes = 150\n\
         [[plugin]]\nname = \"counter\"\npath = \"{}\"\non_error = \"skip\"\nmax_restarts = 100000\nstate_every = 1\n\
         [plugin.params]\nmode = \"{mode}\"\n[output]\nkind = \"raw\"\npath = \"out.rgba\"\n",
        test_plugin("misbehave").display()
    );
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let mut child = host_command(&dir).args(["run", "run.toml", "-q", "--stats-json", "stats.json"]).spawn().unwrap();
    let kills = kill_until_exit(&mut child, runner_pids, std::time::Duration::from_millis(100));
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let frames = std::fs::read(dir.join("out.rgba")).unwrap();
    let counts = frames.chunks(320 * 240 * 4).map(|f| u32::from_le_bytes(f[..4].try_into().unwrap())).collect();
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap();
    (counts, kills, stats["plugins"][0].clone())
}

#[test]
fn a_counter_plugin_keeps_counting_across_sigkill_through_its_kept_state() {
    let (counts, kills, stats) = count_through_kills("state", "count");
    assert!(kills > 0, "nothing was killed");
    assert!(stats["restores"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(counts.len() as u64 + stats["skipped"].as_u64().unwrap(), 150, "{stats}");
    assert_eq!(counts[0], 1);
    // Each frame counts one more than the one before (a frame lost with a killed process was
    // counted by that process only), except where a kill hit the moment the state was being
    // kept (that frame then counts as the one before): never back to 1, as a fresh instance
    // would start.
    for pair in counts.windows(2) {
        assert!(pair[1] == pair[0] + 1 || pair[1] == pair[0], "counts went {} -> {}: {stats}", pair[0], pair[1]);
    }
    let repeats = counts.windows(2).filter(|p| p[0] == p[1]).count() as u64;
    assert!(repeats <= stats["crashes"].as_u64().unwrap(), "{repeats} repeats: {stats}");
}

#[test]
fn a_restore_that_traps_falls_back_to_a_fresh_instance_and_is_counted() {
    let (counts, kills, stats) = count_through_kills("restore-trap", "restore-trap");
    assert!(kills > 0, "nothing was killed");
    assert!(stats["restore_failures"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["restores"], 0, "{stats}");
    assert_eq!(counts.len() as u64 + stats["skipped"].as_u64().unwrap(), 150, "{stats}");
    assert!(counts.windows(2).any(|p| p[1] == 1), "a fresh instance counts from 1 again: {counts:?}");
}

#[test]
fn pause_step_and_resume_hold_the_input_back_and_state_shows_the_plugins() {
    let dir = scratch_dir("live", "pause");
    let mut command = host_command(&dir);
    command.args(["run", "-q", "-i", "testsrc:16x16:20000", "-o", "out.rgba", "invert", "--control", "127.0.0.1:0"]);
    command.stdout(Stdio::null());
    let (mut child, first) = spawn_announced(&mut command);
    let addr = first.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap().to_string();
    let token = first.rsplit("token: ").next().unwrap().trim().to_string();
    let out = || sample(&get_metrics(&addr), "plugin_host_output_frames_total");
    while out() < 100 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (status, _) = request(&addr, "POST /pause", None, "");
    assert!(status.contains("401"), "pausing needs the token: {status}");
    let (status, body) = request(&addr, "POST /pause", Some(&token), "");
    assert!(status.contains("200") && body.contains("\"paused\":true"), "{status} {body}");
    // The frames already in the pipeline finish; then nothing moves.
    let mut settled = out();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = out();
        if now == settled {
            break;
        }
        settled = now;
    }
    for _ in 0..3 {
        request(&addr, "POST /step", Some(&token), "");
    }
    let mut stepped = out();
    for _ in 0..100 {
        if stepped == settled + 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        stepped = out();
    }
    assert_eq!(stepped, settled + 3, "three steps, three frames");
    let (_, state) = request(&addr, "GET /state", None, "");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["paused"], true, "{state}");
    assert_eq!(state["plugins"][0]["name"], "invert", "{state}");
    assert!(state["plugins"][0]["description"]["formats"].is_array(), "{state}");
    assert_eq!(state["plugins"][0]["stats"]["frames"].as_u64(), Some(stepped), "{state}");
    let (status, body) = request(&addr, "POST /keep-state", Some(&token), r#"{"plugin": "nope"}"#);
    assert!(status.contains("400") && body.contains("no plugin named"), "{status} {body}");
    request(&addr, "POST /resume", Some(&token), "");
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::metadata(dir.join("out.rgba")).unwrap().len(), 20_000 * 16 * 16 * 4);
}

/// The plugin's counters as `GET /state` gives them.
fn plugin_state(addr: &str, index: usize) -> serde_json::Value {
    let (_, state) = request(addr, "GET /state", None, "");
    serde_json::from_str::<serde_json::Value>(&state).unwrap()["plugins"][index]["stats"].clone()
}

#[test]
fn a_module_swapped_while_running_takes_over_at_a_frame_boundary_and_bad_ones_are_refused() {
    let dir = scratch_dir("live", "swap");
    // More frames than the test waits for: it ends the run with Ctrl-C once the swaps are done.
    let (w, h, frames) = (16u32, 16u32, 100_000_000usize);
    std::fs::write(dir.join("garbage.wasm"), b"not a module").unwrap();
    let mut command = host_command(&dir);
    command.args(["run", "-q", "-i", &format!("testsrc:{w}x{h}:{frames}"), "-o", "out.rgba", "invert"]);
    command.args(["--control", "127.0.0.1:0"]).stdout(Stdio::null());
    let (mut child, first) = spawn_announced(&mut command);
    let addr = first.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap().to_string();
    let token = first.rsplit("token: ").next().unwrap().trim().to_string();
    while sample(&get_metrics(&addr), "plugin_host_output_frames_total") < 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let swap = |module: &std::path::Path, counter: &str, expected: u64| {
        let body = serde_json::json!({ "plugin": "invert", "path": module }).to_string();
        let (status, answer) = request(&addr, "POST /swap", Some(&token), &body);
        assert!(status.contains("202"), "{status} {answer}");
        let started = std::time::Instant::now();
        while plugin_state(&addr, 0)[counter].as_u64() != Some(expected) {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "{counter} never reached {expected}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let (status, _) = request(&addr, "POST /swap", None, r#"{"plugin": "invert", "path": "x"}"#);
    assert!(status.contains("401"), "{status}");
    // Not a module, then a module whose output has another shape: refused, invert goes on.
    swap(&dir.join("garbage.wasm"), "swap_failures", 1);
    swap(&plugin("scale"), "swap_failures", 2);
    // Checked against golden cases first: flip fails invert's, and passes its own.
    let golden = |name: &str, expected: fn(&plugin_sdk::OwnedFrame) -> plugin_sdk::OwnedFrame| {
        let cases = dir.join(name);
        std::fs::create_dir_all(&cases).unwrap();
        let input = noise_frame(8, 6, 0, plugin_sdk::PixelFormat::Rgba8, 3);
        plugin_host_cli::io::png_io::encode(&cases.join("noise.in.png"), &input.view()).unwrap();
        plugin_host_cli::io::png_io::encode(&cases.join("noise.expected.png"), &expected(&input).view()).unwrap();
        cases
    };
    let (inverted, flipped) =
        (golden("invert-cases", invert_reference), golden("flip-cases", |f| flip_reference(f, true)));
    let checked = |cases: &std::path::Path| {
        let body = serde_json::json!({ "plugin": "invert", "path": plugin("flip"), "check": cases }).to_string();
        request(&addr, "POST /swap", Some(&token), &body)
    };
    let (status, answer) = checked(&inverted);
    assert!(status.contains("409") && answer.contains("not swapped"), "{status} {answer}");
    let (status, answer) = checked(&flipped);
    assert!(status.contains("202"), "{status} {answer}");
    let started = std::time::Instant::now();
    while plugin_state(&addr, 0)["swaps"].as_u64() != Some(1) {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the checked swap never happened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (_, state) = request(&addr, "GET /state", None, "");
    assert!(state.contains(r#""name":"flip""#), "the controls are the new module's: {state}");
    let after = sample(&get_metrics(&addr), "plugin_host_output_frames_total");
    while sample(&get_metrics(&addr), "plugin_host_output_frames_total") < after + 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: kill(2) on the host this test started: Ctrl-C, which keeps the whole frames.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_invert_then_flip(&std::fs::read(dir.join("out.rgba")).unwrap(), w, h);
}

/// `out` holds 16x16 test pattern frames inverted, then from some frame on (at least 500 in, and
/// 500 before the end) flipped: every frame there, none lost at the switch.
fn assert_invert_then_flip(out: &[u8], w: u32, h: u32) {
    let got: Vec<&[u8]> = out.chunks((w * h * 4) as usize).collect();
    let frames = got.len();
    let pattern = |n: usize| {
        let mut frame = plugin_sdk::OwnedFrame::new(1, 1, plugin_sdk::PixelFormat::Rgba8);
        plugin_host_cli::io::test_pattern(w, h, n as u64, &mut frame);
        frame
    };
    let swapped =
        (0..frames).find(|&n| got[n] != invert_reference(&pattern(n)).data.as_slice()).expect("flip took over");
    assert!(swapped >= 500 && swapped + 500 <= frames, "the swap came when asked for: frame {swapped} of {frames}");
    for (n, frame) in got.iter().enumerate().skip(swapped) {
        assert_eq!(*frame, flip_reference(&pattern(n), true).data.as_slice(), "frame {n} after the swap");
    }
}

#[test]
fn watch_swaps_in_a_module_file_that_changed_on_disk() {
    let dir = scratch_dir("live", "watch");
    std::fs::copy(plugin("invert"), dir.join("mine.wasm")).unwrap();
    let mut command = host_command(&dir);
    command.args(["run", "-q", "-i", "testsrc:16x16:100000000", "-o", "out.rgba", "./mine.wasm", "--watch"]);
    command.args(["--metrics", "127.0.0.1:0"]).stdout(Stdio::null());
    let (mut child, first) = spawn_announced(&mut command);
    let addr = first.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap().to_string();
    let out = || sample(&get_metrics(&addr), "plugin_host_output_frames_total");
    while out() < 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // As a build would: the new module written beside, then renamed over the old one.
    std::fs::copy(plugin("flip"), dir.join("mine.wasm.new")).unwrap();
    std::fs::rename(dir.join("mine.wasm.new"), dir.join("mine.wasm")).unwrap();
    let started = std::time::Instant::now();
    loop {
        let swaps = get_metrics(&addr);
        if swaps.contains("plugin_host_plugin_swaps_total{plugin=\"mine\"} 1") {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "never swapped: {swaps}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let after = out();
    while out() < after + 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: kill(2) on the host this test started: Ctrl-C, which keeps the whole frames.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_invert_then_flip(&std::fs::read(dir.join("out.rgba")).unwrap(), 16, 16);
}

#[test]
fn a_swapped_in_module_that_keeps_crashing_is_swapped_back() {
    let dir = scratch_dir("live", "rollback");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 16\nheight = 16\nframes = 100000000\n\
         [[plugin]]\nname = \"neg\"\npath = \"{}\"\nworkers = 1\nmax_restarts = 2\nrestart_window_s = 600\non_error = \"skip\"\n\
         [output]\nkind = \"null\"\n",
        plugin("invert").display()
    );
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let mut command = host_command(&dir);
    command.args(["run", "-q", "run.toml", "--control", "127.0.0.1:0"]).stdout(Stdio::null());
    let (mut child, first) = spawn_announced(&mut command);
    let addr = first.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap().to_string();
    let token = first.rsplit("token: ").next().unwrap().trim().to_string();
    let wait_for = |counter: &str, what: &dyn Fn()| {
        let started = std::time::Instant::now();
        while plugin_state(&addr, 0)[counter].as_u64() != Some(1) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "{counter} never reached 1: {}",
                plugin_state(&addr, 0)
            );
            what();
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
    };
    while sample(&get_metrics(&addr), "plugin_host_output_frames_total") < 100 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let body = serde_json::json!({ "plugin": "neg", "path": plugin("flip") }).to_string();
    let (status, answer) = request(&addr, "POST /swap", Some(&token), &body);
    assert!(status.contains("202"), "{status} {answer}");
    wait_for("swaps", &|| {});
    // Its processes die again and again (killed): past max_restarts within its first window,
    // the module before comes back instead of the plugin being disabled.
    let host = child.id();
    // A kill every 300 ms: each replacement (and the swap back) has time to start, so the
    // module before comes back rather than being killed while it starts.
    wait_for("rollbacks", &|| {
        for pid in runner_pids(host) {
            // SAFETY: kill(2) on a process the host under test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    });
    let (_, state) = request(&addr, "GET /state", None, "");
    assert!(state.contains(r#""name":"invert""#), "invert is back: {state}");
    // SAFETY: kill(2) on the host this test started: Ctrl-C.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
}
