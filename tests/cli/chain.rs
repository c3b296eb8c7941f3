//! A chain in `plugin-host run` hands frames from stage to stage without copying them, and a
//! stage killed mid-run never corrupts a delivered frame.

use crate::support::*;
use plugin_host_cli::io::test_pattern;
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

/// Runs `config` in `dir` with its stats in `stats.json`; it must succeed. Returns its stderr.
fn run_quietly(dir: &Path, config: &str) -> String {
    std::fs::write(dir.join("chain.toml"), config).unwrap();
    let output = Command::new(host_bin())
        .current_dir(dir)
        .args(["run", "chain.toml", "-q", "--stats-json", "stats.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// Starts `config` in `dir` reading raw frames from a pipe the caller writes; stats in
/// `stats.json`, stderr in `stderr.txt`.
fn spawn_on_stdin(dir: &Path, config: &str) -> std::process::Child {
    std::fs::write(dir.join("chain.toml"), config).unwrap();
    Command::new(host_bin())
        .current_dir(dir)
        .args(["run", "chain.toml", "-q", "--stats-json", "stats.json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
        .spawn()
        .unwrap()
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
fn a_worker_killed_mid_run_costs_at_most_its_frame() {
    // Three stages of two workers each: a kill lands on one band of one frame.
    kill_stages_at_random("killed-workers", "workers = 2\n");
}

#[test]
fn a_pipe_transport_stage_killed_between_frames_is_restarted_too() {
    // Found by a user test: a pipe-transport stage killed while idle was never restarted, and
    // every later frame was skipped as a crash.
    kill_stages_at_random("killed-pipe", "transport = \"pipe\"\n");
}

/// Kills stage processes of a 3-stage chain (`extra` in each plugin's table) throughout its run: every delivered frame is exact,
/// every frame is delivered or skipped, and a kill costs at most the one frame the process was
/// working on. Driven by events, not by a timer: the test feeds the frames on stdin itself and
/// kills a stage after every `EVERY` frames it has written, so the number of kills does not
/// depend on how fast the machine is.
fn kill_stages_at_random(name: &str, extra: &str) {
    const TOTAL: u64 = 800;
    const EVERY: u64 = 40;
    let dir = scratch(name);
    let (width, height) = (160, 120);
    let extra = format!("on_error = \"skip\"\nmax_restarts = 1000\n{extra}");
    let config = chain_config(width, height, TOTAL, &extra).replace(
        &format!("kind = \"testsrc\"\nwidth = {width}\nheight = {height}\nframes = {TOTAL}\n"),
        &format!("kind = \"raw\"\npath = \"-\"\nwidth = {width}\nheight = {height}\n"),
    );
    let mut child = spawn_on_stdin(&dir, &config);
    let host = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut kills = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut frame = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    for number in 0..TOTAL {
        test_pattern(width, height, number, &mut frame);
        std::io::Write::write_all(&mut stdin, &frame.data).expect("the host reads every frame");
        if number % EVERY != EVERY / 2 {
            continue;
        }
        // Kill one stage process; while all are restarting there is none yet: wait for one.
        let waiting = Instant::now();
        loop {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pids = runner_pids(host);
            let killed = match pids.get((seed >> 32) as usize % pids.len().max(1)) {
                // SAFETY: kill(2) on a process id; it may already be gone, then we pick again.
                Some(&pid) => (unsafe { libc::kill(pid, libc::SIGKILL) }) == 0,
                None => false,
            };
            if killed {
                kills += 1;
                break;
            }
            assert!(child.try_wait().unwrap().is_none(), "the host ended while frames were still coming");
            // A guard against a hang only, far beyond any restart: not a timing assertion.
            assert!(waiting.elapsed() < Duration::from_secs(300), "no stage process came back in 5 minutes");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    drop(stdin);
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
    assert_eq!(kills, TOTAL / EVERY, "one kill per {EVERY} frames fed");
    assert_eq!(frames.len() as u64 + skipped, TOTAL, "every frame is delivered or counted as skipped");
    assert!(skipped <= kills, "{skipped} frames skipped for {kills} kills");
    assert_eq!(stats["frames_out"], frames.len() as u64);
}

#[test]
fn a_chain_of_pipe_transport_plugins_gives_the_same_frames_and_copies_nothing_in_user_space() {
    let dir = scratch("pipe");
    run_quietly(&dir, &chain_config(64, 48, 60, "transport = \"pipe\"\n"));
    let frames = written_frames(&dir.join("out"));
    assert_eq!(frames.len(), 60);
    for (number, got) in &frames {
        assert!(got.same_pixels(&expected(64, 48, *number)), "frame {number} differs");
    }
    // Each frame goes from its lane to the pipe and from the pipe into the next lane, through
    // the kernel only: the host copies nothing.
    let stats = stats(&dir.join("stats.json"));
    assert_eq!(stats["copies"], 0, "{stats}");
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

#[test]
fn a_snapshot_stage_reads_a_private_copy_and_counts_it() {
    let dir = scratch("snapshot");
    let config = chain_config(64, 48, 12, "").replacen(
        &format!("path = \"{}\"\n", plugin("flip").display()),
        &format!("path = \"{}\"\ninput = \"snapshot\"\n", plugin("flip").display()),
        1,
    );
    assert!(config.contains("input = \"snapshot\""));
    run_quietly(&dir, &config);
    let frames = written_frames(&dir.join("out"));
    assert_eq!(frames.len(), 12);
    for (number, got) in &frames {
        assert!(got.same_pixels(&expected(64, 48, *number)), "frame {number} differs");
    }
    let stats = stats(&dir.join("stats.json"));
    let workers = stats["plugins"][1]["workers"].as_u64().unwrap();
    assert_eq!(
        stats["plugins"][1]["copies"],
        12 * workers,
        "one copy a frame per worker of the snapshot stage: {stats}"
    );
    assert_eq!(stats["plugins"][0]["copies"], 0, "{stats}");
}

/// blur (radius 3) → sobel → invert, each stage as `workers` processes, on a frame whose height
/// the bands cannot share out evenly: each band reads rows of context across its edges.
fn banded_chain(workers: u32, output: &str) -> String {
    let plugins: String =
        [("soft", "blur", "[plugin.params]\nradius = 3\n"), ("edges", "sobel", ""), ("neg", "invert", "")]
            .iter()
            .map(|(name, module, params)| {
                format!(
                    "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\nworkers = {workers}\n{params}",
                    plugin(module).display()
                )
            })
            .collect();
    format!(
        "[input]\nkind = \"testsrc\"\nwidth = 96\nheight = 61\nframes = 4\n{plugins}[output]\nkind = \"raw\"\npath = \"{output}\"\n"
    )
}

#[test]
fn every_worker_count_gives_the_same_bytes() {
    let dir = scratch("workers");
    // The plugins' own code, natively, on the same frames.
    let mut reference = Vec::new();
    let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    for number in 0..4 {
        test_pattern(96, 61, number, &mut input);
        let radius = [("radius", plugin_sdk::abi::ParamValue::Int(3))];
        let soft = plugin_sdk::testing::run::<blur::Blur>(&radius, &input).unwrap();
        let edges = plugin_sdk::testing::run::<sobel::Sobel>(&[], &soft).unwrap();
        reference.extend(invert_reference(&edges).packed());
    }
    for workers in [1, 2, 3, 4] {
        let output = format!("out-{workers}.rgba");
        run_quietly(&dir, &banded_chain(workers, &output));
        let stats = stats(&dir.join("stats.json"));
        for p in stats["plugins"].as_array().unwrap() {
            assert_eq!(p["workers"], workers, "{p}");
            assert_eq!(p["frames"], 4, "{p}");
        }
        assert_eq!(stats["copies"], 0, "bands are written in place: {stats}");
        let bytes = std::fs::read(dir.join(&output)).unwrap();
        assert!(bytes == reference, "{workers} workers per stage give other bytes than the plugins' own code");
    }
}

#[test]
fn a_plugin_that_needs_whole_frames_gets_one_worker_and_says_so() {
    let dir = scratch("whole-frames");
    // misbehave in its plain mode inverts whole frames and declares no band context.
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 32\nheight = 16\nframes = 3\n[[plugin]]\nname = \"whole\"\npath = \"{}\"\nworkers = 3\n[output]\nkind = \"png\"\npath = \"out\"\n",
        test_plugin("misbehave").display()
    );
    let stderr = run_quietly(&dir, &config);
    assert!(stderr.contains("works on whole frames only: 1 worker, not 3"), "{stderr}");
    assert_eq!(stats(&dir.join("stats.json"))["plugins"][0]["workers"], 1);
    let frames = written_frames(&dir.join("out"));
    let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    test_pattern(32, 16, 2, &mut input);
    assert!(frames[2].1.same_pixels(&invert_reference(&input)));
}

/// testsrc of `height` rows (`frames` of them) through misbehave in `mode` as `workers` workers,
/// with `extra` in its table.
fn misbehave_bands(height: u32, frames: u32, workers: u32, mode: &str, extra: &str) -> String {
    format!(
        "[input]\nkind = \"testsrc\"\nwidth = 8\nheight = {height}\nframes = {frames}\n[[plugin]]\nname = \"rows\"\npath = \"{}\"\nworkers = {workers}\n{extra}[plugin.params]\nmode = \"{mode}\"\n[output]\nkind = \"png\"\npath = \"out\"\n",
        test_plugin("misbehave").display()
    )
}

#[test]
fn each_worker_writes_its_own_band_of_the_frame() {
    // 12 rows in 3 bands of 4; 3 rows for 4 workers: two bands are empty, and nobody gets the
    // whole frame for one (found by a review: an empty band once meant "all rows").
    for (height, workers, frames) in [(12u32, 3u32, 2u32), (3, 4, 30)] {
        let dir = scratch(&format!("bands-{height}-{workers}"));
        run_quietly(&dir, &misbehave_bands(height, frames, workers, "bands", ""));
        let bands: Vec<_> = (0..workers).map(|k| plugin_sdk::abi::band_rows(height, k, workers)).collect();
        for (number, frame) in written_frames(&dir.join("out")) {
            for y in 0..height {
                let band = bands.iter().find(|b| b.contains(&y)).unwrap();
                let row = &frame.data[(y * frame.stride) as usize..][..4];
                assert_eq!(row, [band.start as u8, band.end as u8, y as u8, 255], "frame {number} row {y}");
            }
        }
        assert_eq!(stats(&dir.join("stats.json"))["plugins"][0]["workers"], workers);
    }
}

#[test]
fn a_worker_that_lies_about_the_shape_is_the_one_killed_and_the_others_take_its_rows() {
    let dir = scratch("band-liar");
    let extra = "on_error = \"skip\"\nmax_restarts = 2\n";
    let stderr = run_quietly(&dir, &misbehave_bands(12, 20, 3, "band-shape", extra));
    let stats = stats(&dir.join("stats.json"));
    let p = &stats["plugins"][0];
    // Its first frame and two restarts' first frames; then it is disabled and the two honest
    // workers share every frame.
    assert_eq!(p["skipped"], 3, "{p}\n{stderr}");
    assert_eq!(p["protocol_violations"], 3, "{p}");
    assert_eq!(p["crashes"], 0, "a killed liar is its frame's violation, not a crash too: {p}");
    assert_eq!(p["frames"], 17, "{p}");
    assert!(stderr.contains("(worker 1): disabled"), "{stderr}");
    assert!(!stderr.contains("(worker 2)") && !stderr.contains("(worker 3)"), "the honest workers stay: {stderr}");
    for (number, frame) in written_frames(&dir.join("out")) {
        assert_eq!(frame.width, 8, "frame {number} has the agreed shape");
    }
}

#[test]
fn a_killed_worker_under_passthrough_leaves_the_others_running() {
    // Found by a review: the host's own kills (to pass a frame through safely) counted against
    // every worker's max_restarts, so one death disabled all three.
    const TOTAL: u64 = 60;
    let dir = scratch("passthrough-workers");
    let (width, height) = (32, 24);
    let config = format!(
        "[input]\nkind = \"raw\"\npath = \"-\"\nwidth = {width}\nheight = {height}\n[[plugin]]\nname = \"neg\"\npath = \"{}\"\nworkers = 3\non_error = \"passthrough\"\nmax_restarts = 0\n[output]\nkind = \"png\"\npath = \"out\"\n",
        plugin("invert").display()
    );
    let mut child = spawn_on_stdin(&dir, &config);
    let mut stdin = child.stdin.take().unwrap();
    let mut frame = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    for number in 0..TOTAL {
        test_pattern(width, height, number, &mut frame);
        std::io::Write::write_all(&mut stdin, &frame.data).unwrap();
        if number == TOTAL / 2 {
            let pids = runner_pids(child.id());
            assert_eq!(pids.len(), 3, "three workers and no standby (max_restarts = 0)");
            // SAFETY: kill(2) on a child of the host we started.
            assert_eq!(unsafe { libc::kill(pids[1], libc::SIGKILL) }, 0);
        }
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let stderr = std::fs::read_to_string(dir.join("stderr.txt")).unwrap();
    let stats = stats(&dir.join("stats.json"));
    let p = &stats["plugins"][0];
    assert_eq!(stderr.matches("disabled").count(), 1, "only the killed worker: {stderr}");
    assert!(stderr.contains("its other workers take its bands"), "{stderr}");
    let passed = p["passed_through"].as_u64().unwrap();
    assert!(passed <= 2, "at most the frames it held: {p}");
    assert_eq!(p["frames"].as_u64().unwrap() + passed, TOTAL, "{p}");
    for (number, got) in written_frames(&dir.join("out")) {
        test_pattern(width, height, number - 1, &mut frame);
        assert!(got.same_pixels(&invert_reference(&frame)) || got.same_pixels(&frame), "frame {number}");
    }
}
