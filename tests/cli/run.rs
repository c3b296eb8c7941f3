//! `plugin-host run` end to end through the binary: real inputs and outputs compared pixel by
//! pixel with the operations done natively here, every config error, media errors, and a long
//! run's statistics.

use crate::support::*;
use plugin_host_cli::io::png_io;
use plugin_host_cli::io::test_pattern;
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-host-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn plugin_line(name: &str, module: &str) -> String {
    format!("[[plugin]]\nname = \"{name}\"\npath = \"{}\"\n", plugin(module).display())
}

fn run_config(dir: &Path, config: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(host_bin())
        .arg("run")
        .arg(&path)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn png_frames(dir: &Path) -> Vec<OwnedFrame> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| png_io::decode(f).unwrap()).collect()
}

#[test]
fn testsrc_through_three_plugins_to_png() {
    let dir = scratch("testsrc");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 96\nheight = 54\nframes = 5\n{}{}[plugin.params]\naxis = \"vertical\"\n{}[output]\nkind = \"png\"\npath = \"out\"\n",
        plugin_line("neg", "invert"),
        plugin_line("mirror", "flip"),
        plugin_line("gray", "grayscale"),
    );
    let output = run_config(&dir, &config, &[], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let frames = png_frames(&dir.join("out"));
    assert_eq!(frames.len(), 5);
    for (i, got) in frames.iter().enumerate() {
        let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
        test_pattern(96, 54, i as u64, &mut input);
        let expected = grayscale_reference(&flip_reference(&invert_reference(&input), false));
        assert!(got.same_pixels(&expected), "frame {i} differs");
    }
    let table = String::from_utf8_lossy(&output.stdout);
    for name in ["neg", "mirror", "gray"] {
        assert!(table.contains(name), "the table names every plugin:\n{table}");
    }
}

#[test]
fn png_folder_in_png_folder_out() {
    let dir = scratch("png");
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let inputs: Vec<OwnedFrame> = (0..3).map(|i| noise_frame(31, 17, 0, PixelFormat::Rgba8, i)).collect();
    for (i, frame) in inputs.iter().enumerate() {
        png_io::encode(&dir.join(format!("in/{i:03}.png")), &frame.view()).unwrap();
    }
    let config = format!(
        "[input]\nkind = \"png\"\npath = \"in\"\n{}[output]\nkind = \"png\"\npath = \"out\"\n",
        plugin_line("neg", "invert")
    );
    let output = run_config(&dir, &config, &["-q"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let frames = png_frames(&dir.join("out"));
    assert_eq!(frames.len(), 3);
    for (got, input) in frames.iter().zip(&inputs) {
        assert!(got.same_pixels(&invert_reference(input)));
    }
}

#[test]
fn raw_stdin_to_raw_stdout_like_ffmpeg() {
    let dir = scratch("raw");
    let inputs: Vec<OwnedFrame> = (0..4).map(|i| noise_frame(40, 30, 0, PixelFormat::Rgba8, i)).collect();
    let stdin: Vec<u8> = inputs.iter().flat_map(|f| f.data.clone()).collect();
    let config = format!(
        "[input]\nkind = \"raw\"\npath = \"-\"\nwidth = 40\nheight = 30\n{}{}[output]\nkind = \"raw\"\npath = \"-\"\n",
        plugin_line("mirror", "flip"),
        plugin_line("neg", "invert"),
    );
    let output = run_config(&dir, &config, &[], Some(stdin));
    assert!(output.status.success(), "{}", stderr(&output));
    let expected: Vec<u8> = inputs.iter().flat_map(|f| invert_reference(&flip_reference(f, true)).data).collect();
    assert_eq!(output.stdout.len(), expected.len(), "stdout carries exactly the frames, nothing else");
    assert!(output.stdout == expected, "raw output differs");
}

#[test]
fn a_reader_that_closes_stdout_early_is_named_and_no_frames_are_claimed() {
    use std::io::Read;
    let dir = scratch("reader-gone");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 320\nheight = 240\nframes = 10000\n{}[output]\nkind = \"raw\"\npath = \"-\"\n",
        plugin_line("neg", "invert"),
    );
    std::fs::write(dir.join("pipeline.toml"), config).unwrap();
    let mut child = Command::new(host_bin())
        .args(["run", "-q", dir.join("pipeline.toml").to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = vec![0u8; 1000];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap(); // like `| head -c 1000`, then closed
    let output = child.wait_with_output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("error: the reader of stdout closed it (broken pipe)"), "{message}");
    assert!(!message.contains("the output holds"), "a stream holds nothing afterwards: {message}");
}

#[test]
fn gray_raw_video_round_trips() {
    let dir = scratch("gray");
    let input = noise_frame(16, 8, 0, PixelFormat::Gray8, 3);
    let config = format!(
        "[input]\nkind = \"raw\"\npath = \"-\"\nwidth = 16\nheight = 8\nformat = \"gray\"\n{}[output]\nkind = \"raw\"\npath = \"out.gray\"\n",
        plugin_line("neg", "invert")
    );
    let output = run_config(&dir, &config, &["-q"], Some(input.data.clone()));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read(dir.join("out.gray")).unwrap(), invert_reference(&input).data);
}

/// Runs a bad config: exit code 2, the message names `culprit`, no output appears.
fn assert_config_error(name: &str, config: &str, culprit: &str) {
    let dir = scratch(name);
    std::fs::write(dir.join("in.png"), b"not a png").unwrap();
    let output = run_config(&dir, config, &[], None);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{name}: {message}");
    assert!(message.contains(culprit), "{name}: the message must name {culprit:?}: {message}");
    assert!(message.lines().filter(|l| l.starts_with("error")).count() == 1, "{name}: one error line: {message}");
    let left: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(left.iter().all(|f| f == "pipeline.toml" || f == "in.png"), "{name}: output was written: {left:?}");
}

#[test]
fn every_config_error_is_one_clear_sentence_and_writes_nothing() {
    let input = "[input]\nkind = \"testsrc\"\nframes = 2\n";
    let output = "[output]\nkind = \"png\"\npath = \"out\"\n";
    let cases: Vec<(&str, String, String)> = vec![
        ("syntax", format!("{input}width = = 3\n{output}"), "line 4, column".into()),
        ("unknown-key", format!("{input}colour = 3\n{output}"), "unknown field `colour`".into()),
        ("missing-key", input.to_string(), "missing field `output`".into()),
        (
            "missing-plugin",
            format!("{input}[[plugin]]\nname = \"p\"\npath = \"nope.wasm\"\n{output}"),
            "plugin \"p\": cannot read".into(),
        ),
        (
            "not-wasm",
            format!("{input}[[plugin]]\nname = \"p\"\npath = \"pipeline.toml\"\n{output}"),
            "is not a WebAssembly module".into(),
        ),
        (
            "param-typo",
            format!("{input}{}[plugin.params]\nradus = 3\n{output}", plugin_line("soft", "blur")),
            "plugin \"soft\": unknown parameter \"radus\" (did you mean \"radius\"?)".into(),
        ),
        (
            "param-range",
            format!("{input}{}[plugin.params]\nradius = 200\n{output}", plugin_line("soft", "blur")),
            "plugin \"soft\": parameter \"radius\" = 200 is out of range 0..=64".into(),
        ),
        (
            "param-type",
            format!("{input}{}[plugin.params]\naxis = 4\n{output}", plugin_line("m", "flip")),
            "plugin \"m\": parameter \"axis\" must be one of".into(),
        ),
        ("input-missing", format!("[input]\nkind = \"png\"\npath = \"nothing-here\"\n{output}"), "nothing-here".into()),
        ("input-bad-png", format!("[input]\nkind = \"png\"\npath = \"in.png\"\n{output}"), "in.png: not a PNG".into()),
        (
            "output-unwritable",
            format!("{input}[output]\nkind = \"raw\"\npath = \"/proc/no/such/dir/out.raw\"\n"),
            "output: cannot write /proc/no/such/dir/out.raw".into(),
        ),
        (
            "output-is-config",
            format!("{input}[output]\nkind = \"raw\"\npath = \"pipeline.toml\"\n"),
            "pipeline.toml is the config file itself; the run would overwrite it".into(),
        ),
        (
            "output-is-input",
            "[input]\nkind = \"raw\"\npath = \"in.png\"\nwidth = 1\nheight = 1\n[output]\nkind = \"raw\"\npath = \"in.png\"\n"
                .into(),
            "in.png is the input; the run would overwrite it".into(),
        ),
        (
            "output-is-a-module",
            format!("{input}[[plugin]]\nname = \"p\"\npath = \"in.png\"\n[output]\nkind = \"raw\"\npath = \"in.png\"\n"),
            "in.png is plugin \"p\"'s module; the run would overwrite it".into(),
        ),
        (
            "input-raw-length",
            format!("[input]\nkind = \"raw\"\npath = \"in.png\"\nwidth = 2\nheight = 1\n{output}"),
            "in.png: 9 bytes is not a whole number of 2x1 rgba8 frames of 8 bytes (1 and 1 bytes over)".into(),
        ),
        (
            "png-input-stdin",
            format!("[input]\nkind = \"png\"\npath = \"-\"\n{output}"),
            "input.path: a png input is a folder or a file, not stdin".into(),
        ),
        (
            "png-output-no-folder",
            format!("{input}[output]\nkind = \"png\"\npath = \"no/such/out\"\n"),
            "no/such/out: its folder".into(),
        ),
        (
            "output-holds-the-input",
            "[input]\nkind = \"png\"\npath = \"in.png\"\n[output]\nkind = \"png\"\npath = \".\"\n".into(),
            "is a folder that holds the input; the run would overwrite it".into(),
        ),
        (
            "startup-timeout",
            format!("{input}{}startup_ms = 1\n{output}", plugin_line("slow", "invert")),
            "plugin \"slow\": it was not ready within the startup limit of 1ms".into(),
        ),
        ("output-empty", format!("{input}[output]\nkind = \"raw\"\npath = \"\"\n"), "output.path is empty".into()),
        ("input-empty", format!("[input]\nkind = \"png\"\npath = \"\"\n{output}"), "input.path is empty".into()),
        (
            "graph-cycle",
            format!("{input}[[plugin]]\nname = \"a\"\npath = \"a.wasm\"\ninputs = [\"input\", \"a\"]\n{output}"),
            "pipeline.toml: a cycle: a -> a".into(),
        ),
    ];
    for (name, config, culprit) in cases {
        assert_config_error(name, &config, &culprit);
    }
}

#[test]
fn truncated_raw_input_names_the_frame_and_keeps_the_complete_ones() {
    let dir = scratch("truncated");
    let frame = noise_frame(8, 8, 0, PixelFormat::Rgba8, 1);
    let mut stdin = frame.data.repeat(2);
    stdin.extend_from_slice(&frame.data[..100]);
    let config = format!(
        "[input]\nkind = \"raw\"\npath = \"-\"\nwidth = 8\nheight = 8\n{}[output]\nkind = \"raw\"\npath = \"out.raw\"\n",
        plugin_line("neg", "invert")
    );
    let output = run_config(&dir, &config, &["-q"], Some(stdin));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("raw input stdin ends inside frame 3: 100 of 256 bytes"), "{}", stderr(&output));
    assert_eq!(std::fs::read(dir.join("out.raw")).unwrap(), invert_reference(&frame).data.repeat(2));
}

#[test]
fn a_failed_run_leaves_an_existing_output_untouched_and_says_where_its_frames_are() {
    let dir = scratch("keep-old");
    let frame = noise_frame(8, 8, 0, PixelFormat::Rgba8, 1);
    let mut stdin = frame.data.repeat(2);
    stdin.extend_from_slice(&frame.data[..100]);
    let old_raw = b"an earlier run's output".to_vec();
    std::fs::write(dir.join("out.raw"), &old_raw).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let old_png = noise_frame(4, 4, 0, PixelFormat::Rgba8, 9);
    png_io::encode(&dir.join("out/frame-000001.png"), &old_png.view()).unwrap();
    for (kind, path) in [("raw", "out.raw"), ("png", "out")] {
        let config = format!(
            "[input]\nkind = \"raw\"\npath = \"-\"\nwidth = 8\nheight = 8\n{}[output]\nkind = \"{kind}\"\npath = \"{path}\"\n",
            plugin_line("neg", "invert")
        );
        let output = run_config(&dir, &config, &["-q"], Some(stdin.clone()));
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{message}");
        let kept = message
            .lines()
            .find_map(|line| line.strip_prefix("the output that was already there is untouched; the 2 frame(s) completed before the failure are in "))
            .unwrap_or_else(|| panic!("{kind}: where are the frames? {message}"));
        let kept = Path::new(kept);
        assert!(kept.starts_with(&dir), "{kind}: kept beside the output, in {}", kept.display());
        if kind == "raw" {
            assert_eq!(std::fs::read(dir.join("out.raw")).unwrap(), old_raw);
            assert_eq!(std::fs::read(kept).unwrap(), invert_reference(&frame).data.repeat(2));
        } else {
            let pixels = |frames: Vec<OwnedFrame>| frames.into_iter().map(|f| f.data).collect::<Vec<_>>();
            assert_eq!(pixels(png_frames(&dir.join("out"))), vec![old_png.data.clone()]);
            assert_eq!(pixels(png_frames(kept)), vec![invert_reference(&frame).data; 2]);
        }
    }
}

#[test]
fn stats_json_never_overwrites_the_runs_own_files() {
    let dir = scratch("stats-json");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let config = "[input]\nkind = \"testsrc\"\nframes = 1\n[output]\nkind = \"png\"\npath = \"out\"\n";
    for (target, what) in [
        ("pipeline.toml", "is the config file itself"),
        ("out", "is a folder; give a file name"),
        ("out/stats.json", "is inside the output folder"),
    ] {
        let json = dir.join(target);
        let output = run_config(&dir, config, &["-q", "--stats-json", json.to_str().unwrap()], None);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{target}: {message}");
        assert!(message.contains(what), "{target}: {message}");
        assert_eq!(std::fs::read_to_string(dir.join("pipeline.toml")).unwrap(), config, "{target}");
        assert!(!dir.join("out/stats.json").exists());
    }
}

#[test]
fn png_folder_with_mixed_sizes_names_the_file() {
    let dir = scratch("mixed");
    std::fs::create_dir_all(dir.join("in")).unwrap();
    png_io::encode(&dir.join("in/a.png"), &noise_frame(8, 8, 0, PixelFormat::Rgba8, 1).view()).unwrap();
    png_io::encode(&dir.join("in/b.png"), &noise_frame(9, 8, 0, PixelFormat::Rgba8, 2).view()).unwrap();
    let config = "[input]\nkind = \"png\"\npath = \"in\"\n[output]\nkind = \"null\"\n";
    let output = run_config(&dir, config, &["-q"], None);
    assert_eq!(output.status.code(), Some(2), "found before the run: a config-time error");
    assert!(stderr(&output).contains("b.png: 9x8, but the first frame was 8x8"), "{}", stderr(&output));
}

#[test]
fn two_thousand_hd_frames_through_three_plugins_stats_add_up() {
    let dir = scratch("long");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 1280\nheight = 720\nframes = 2000\n{}{}{}[output]\nkind = \"null\"\n",
        plugin_line("neg", "invert"),
        plugin_line("mirror", "flip"),
        plugin_line("gray", "grayscale"),
    );
    let stats_path = dir.join("stats.json");
    let output = run_config(&dir, &config, &["-q", "--stats-json", stats_path.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    assert_eq!(stats["frames_in"], 2000);
    assert_eq!(stats["frames_out"], 2000);
    assert!(stats["wall_s"].as_f64().unwrap() > 0.0);
    let plugins = stats["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 3);
    for p in plugins {
        assert_eq!(p["frames"], 2000, "{p}");
        assert_eq!(p["errors"], 0);
        assert_eq!(p["restarts"], 0);
        let (p50, p99, max) =
            (p["p50_us"].as_u64().unwrap(), p["p99_us"].as_u64().unwrap(), p["max_us"].as_u64().unwrap());
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{p}");
    }
    println!(
        "2,000 frames of 1280x720 through three plugins: {:.1} frames/s",
        2000.0 / stats["wall_s"].as_f64().unwrap()
    );
}

#[test]
fn plugin_log_lines_reach_the_hosts_log_under_the_instance_name() {
    let dir = scratch("log");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 8\nheight = 8\nframes = 2\n[[plugin]]\nname = \"chatty\"\npath = \"{}\"\n[plugin.params]\nmode = \"log\"\n[output]\nkind = \"null\"\n",
        test_plugin("misbehave").display()
    );
    let output = run_config(&dir, &config, &[], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(log.contains("INFO chatty: frame 1 of 8x8"), "{log}");
}

#[test]
fn a_chain_of_zero_plugins_copies_input_to_output() {
    let dir = scratch("empty-chain");
    let config = "[input]\nkind = \"testsrc\"\nwidth = 20\nheight = 10\nframes = 3\n[output]\nkind = \"raw\"\npath = \"out.raw\"\n";
    let output = run_config(&dir, config, &["-q"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut expected = Vec::new();
    let mut frame = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    for i in 0..3 {
        test_pattern(20, 10, i, &mut frame);
        expected.extend_from_slice(&frame.data);
    }
    assert!(std::fs::read(dir.join("out.raw")).unwrap() == expected, "the output is the input, byte for byte");
}

/// A tmpfs of `kib` KiB mounted at `dir` for the guard's life; `None` (with the reason printed)
/// where this process may not mount one.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, kib: u32, test: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"]).arg(dir).output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk(dir.to_path_buf())),
            Ok(out) => {
                println!("SKIPPED {test}: cannot mount a small tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim());
                None
            }
            Err(e) => {
                println!("SKIPPED {test}: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The number in "the output holds the N frame(s) completed" or "the N frame(s) completed
/// before the failure are in …".
fn frames_said_kept(stderr: &str) -> u64 {
    let at = stderr.find(" frame(s) completed").unwrap_or_else(|| panic!("no count of kept frames: {stderr}"));
    stderr[..at].rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_full_disk_keeps_exactly_the_frames_it_says_whole() {
    let test = "a_full_disk_keeps_exactly_the_frames_it_says_whole";
    let dir = scratch("full-disk");
    let Some(disk) = SmallDisk::mount(&dir.join("disk"), 512, test) else { return };
    let (width, height) = (64u32, 48u32);
    let frame_bytes = (width * height * 4) as usize;
    let input = format!("[input]\nkind = \"testsrc\"\nwidth = {width}\nheight = {height}\nframes = 5000\n");
    let neg = plugin_line("neg", "invert");
    let expected = |n: u64| {
        let mut frame = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
        test_pattern(width, height, n, &mut frame);
        invert_reference(&frame)
    };

    // Raw: the file holds whole frames only, exactly as many as the message says.
    let raw = disk.0.join("out.rgba");
    let output = run_config(
        &dir,
        &format!("{input}{neg}[output]\nkind = \"raw\"\npath = \"{}\"\n", raw.display()),
        &["-q"],
        None,
    );
    let message = stderr(&output);
    println!("raw: {message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("No space left on device"), "{message}");
    let kept = frames_said_kept(&message);
    let bytes = std::fs::read(&raw).expect("the completed frames are kept in place");
    assert!(kept > 0, "{message}");
    assert_eq!(bytes.len(), kept as usize * frame_bytes, "the file holds exactly the frames said");
    for (n, got) in bytes.chunks(frame_bytes).enumerate() {
        assert_eq!(got, &expected(n as u64).data[..], "frame {} is not whole", n + 1);
    }
    std::fs::remove_file(&raw).unwrap();

    // PNG: every file there is a whole frame, as many as the message says, none cut short.
    let folder = disk.0.join("frames");
    let output = run_config(
        &dir,
        &format!("{input}{neg}[output]\nkind = \"png\"\npath = \"{}\"\n", folder.display()),
        &["-q"],
        None,
    );
    let message = stderr(&output);
    println!("png: {message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    let kept = frames_said_kept(&message);
    let names: Vec<String> =
        std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len() as u64, kept, "as many files as frames said kept: {names:?}");
    for frame in png_frames(&folder).iter().enumerate().map(|(n, f)| (n as u64, f)) {
        assert!(frame.1.same_pixels(&expected(frame.0)), "frame {} is not whole", frame.0 + 1);
    }
}

#[test]
fn what_a_killed_run_left_is_named_with_how_to_remove_it() {
    let dir = scratch("leftover");
    // Above the kernel's largest pid (2^22): no process has it.
    std::fs::create_dir_all(dir.join("out.partial-4194305")).unwrap();
    std::fs::create_dir_all(dir.join("out.partial-notapid")).unwrap();
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 8\nheight = 8\nframes = 1\n{}[output]\nkind = \"png\"\npath = \"out\"\n",
        plugin_line("neg", "invert")
    );
    let output = run_config(&dir, &config, &["-q"], None);
    let message = stderr(&output);
    assert!(output.status.success(), "{message}");
    let leftover = dir.join("out.partial-4194305");
    assert!(
        message.contains(&format!("{} was left by an earlier run", leftover.display()))
            && message.contains(&format!("remove it with: rm -r {}", leftover.display())),
        "{message}"
    );
    assert!(!message.contains("notapid"), "only what a run of ours leaves: {message}");
    assert!(leftover.is_dir(), "named, not removed: it may hold frames someone wants");
}

/// `plugin-host` with `args` in `dir`, `env` set, stdin closed.
fn host_in(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(host_bin());
    command.args(args).current_dir(dir).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[test]
fn a_chain_on_the_command_line_runs_like_its_config() {
    let dir = scratch("one-line");
    let plugins = root().join("target/plugins");
    let chain = "blur radius=3 ! flip axis=vertical ! invert";
    let args = ["run", "-i", "testsrc:64x48:4", "-o", "frames", chain, "-q", "--plugin-path"];
    let output = host_in(&dir, &[&args[..], &[plugins.to_str().unwrap()]].concat(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let frames = png_frames(&dir.join("frames"));
    assert_eq!(frames.len(), 4);
    let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    for (n, got) in frames.iter().enumerate() {
        test_pattern(64, 48, n as u64, &mut input);
        let soft = plugin_sdk::testing::run::<blur::Blur>(&[("radius", plugin_sdk::abi::ParamValue::Int(3))], &input);
        let expected = invert_reference(&flip_reference(&soft.unwrap(), false));
        assert!(got.same_pixels(&expected), "frame {}", n + 1);
    }
    // Found by name through $PLUGIN_HOST_PATH too; bad parts named in one sentence, exit 2.
    let own = dir.join("own");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::copy(plugins.join("invert.wasm"), own.join("neg.wasm")).unwrap();
    let neg = host_in(&dir, &["run", "-i", "testsrc:8x8:1", "-o", "null", "neg", "-q"], &[("PLUGIN_HOST_PATH", &own)]);
    assert!(neg.status.success(), "{}", stderr(&neg));
    for (args, culprit) in [
        (vec!["-i", "testsrc:8x8:1", "-o", "null", "nosuch"], "no plugin \"nosuch\" on the search path"),
        (vec!["-i", "testsrc:8x8:1", "-o", "null", "blur radius=300"], "\"radius\" = 300 is out of range 0..=64"),
        (vec!["-i", "testsrc:8x8:1", "-o", "null", "blur ! ! invert"], "element 2 is empty"),
        (vec!["-i", "testsrc:8x8:1", "-o", "one.png", "invert"], "a png output is a folder"),
        (vec!["-i", "clip.xyz", "-o", "null", "invert"], "-i clip.xyz: cannot tell what it is"),
        (vec!["-i", "clip.mov", "-o", "null", "invert"], "input: clip.mov: does not exist"),
        (vec!["-i", "frames", "-o", "frames", "invert"], "-o frames is the input"),
        (vec!["-i", "testsrc:8x8:1", "-o", "null", "blurr"], "(did you mean \"blur\"?)"),
        (vec!["-i", "testsrc:8x8:1", "-o", "null", "blur radius=1 radius=2"], "\"radius\" is given twice"),
        (vec!["-i", "testsrc:8x8:1", "--size", "8x8", "-o", "null", "invert"], "--size is for raw frames"),
    ] {
        let output = host_in(&dir, &[&["run"][..], &args].concat(), &[]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.starts_with("error: the command line: ") && message.contains(culprit), "{args:?}: {message}");
    }
}

#[test]
fn set_overrides_a_parameter_of_a_config_and_list_shows_the_search_path() {
    let dir = scratch("set-and-list");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 16\nheight = 8\nframes = 1\n{}[plugin.params]\naxis = \"vertical\"\n[output]\nkind = \"png\"\npath = \"out\"\n",
        plugin_line("mirror", "flip")
    );
    std::fs::write(dir.join("c.toml"), config).unwrap();
    let set = host_in(&dir, &["run", "c.toml", "-q", "--set", "mirror.axis=horizontal"], &[]);
    assert!(set.status.success(), "{}", stderr(&set));
    let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    test_pattern(16, 8, 0, &mut input);
    assert!(png_frames(&dir.join("out"))[0].same_pixels(&flip_reference(&input, true)), "the override won");
    let wrong = host_in(&dir, &["run", "c.toml", "--set", "mirrors.axis=horizontal"], &[]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("--set mirrors.axis=horizontal: no plugin named \"mirrors\" (there are: mirror)"));

    let plugins = root().join("target/plugins");
    let list = host_in(&dir, &["list", "--json", "--plugin-path", plugins.to_str().unwrap()], &[]);
    assert!(list.status.success(), "{}", stderr(&list));
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for name in ["blur", "brightness", "flip", "grayscale", "invert", "sobel", "threshold"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let text = host_in(&dir, &["list", "--plugin-path", plugins.to_str().unwrap()], &[]);
    let line = String::from_utf8_lossy(&text.stdout).lines().find(|l| l.starts_with("sobel ")).unwrap().to_string();
    assert!(line.contains("rgba8") && line.contains("Sobel edge magnitude"), "{line}");
}

#[test]
fn completions_and_man_page_come_from_the_arguments_and_a_closed_reader_is_no_panic() {
    let dir = scratch("completions");
    let bash = host_in(&dir, &["completions", "bash"], &[]);
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(bash.status.success() && script.contains("plugin-host") && script.contains("--plugin-path"), "{script}");
    let man = host_in(&dir, &["man"], &[]);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success() && page.contains(".TH plugin-host 1") && page.contains("completions"), "{page}");
    let run_page = host_in(&dir, &["man", "run"], &[]);
    assert!(String::from_utf8_lossy(&run_page.stdout).contains(".TH plugin-host-run 1"), "the run page it refers to");
    // `list | head -c 1`: the reader goes after one byte.
    let plugins = root().join("target/plugins");
    let mut child = Command::new(host_bin())
        .args(["list", "--plugin-path", plugins.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}

#[test]
fn a_raw_output_named_gray_gets_gray_frames_and_the_conversion_is_said() {
    let dir = scratch("gray-name");
    let args = ["run", "-i", "testsrc:8x8:2", "-o", "out.gray", "invert"];
    let output = host_in(&dir, &args, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The summary goes to stdout when the frames do not.
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("converted 2 frames rgba8 -> gray8 before the output"), "{summary}");
    assert_eq!(std::fs::metadata(dir.join("out.gray")).unwrap().len(), 2 * 8 * 8);
    let rgba = host_in(&dir, &["run", "-i", "testsrc:8x8:2", "-o", "out.rgba", "invert"], &[]);
    assert!(rgba.status.success(), "{}", stderr(&rgba));
    assert!(!String::from_utf8_lossy(&rgba.stdout).contains("converted"), "{}", stderr(&rgba));
    assert_eq!(std::fs::metadata(dir.join("out.rgba")).unwrap().len(), 2 * 8 * 8 * 4);
}
