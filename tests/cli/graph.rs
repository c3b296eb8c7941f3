//! Graphs through `plugin-host run`: several inputs and outputs, compositing pixel-exact against
//! references computed here, fan-out and fan-in with no copies, inputs at different frame rates
//! paired by the documented rule, a branch whose processes are killed at random, and the
//! checks made when the plugins start.

use crate::support::*;
use plugin_host_cli::io::{png_io, test_pattern};
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::path::{Path, PathBuf};
use std::process::Output;

fn scratch(name: &str) -> PathBuf {
    scratch_dir("graph", name)
}

fn run(dir: &Path, config: &str) -> Output {
    std::fs::write(dir.join("graph.toml"), config).unwrap();
    host_command(dir).args(["run", "graph.toml", "-q", "--stats-json", "stats.json"]).output().unwrap()
}

fn stats(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap()
}

fn plugin_path(name: &str) -> String {
    plugin(name).display().to_string()
}

fn pattern(width: u32, height: u32, number: u64) -> OwnedFrame {
    let mut frame = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
    test_pattern(width, height, number - 1, &mut frame);
    frame
}

/// `foreground` over the opaque `background` at (`x`, `y`) with `opacity`, by the formula the
/// overlay plugin documents for an opaque background.
fn overlay_reference(background: &OwnedFrame, foreground: &OwnedFrame, x: i64, y: i64, opacity: f64) -> OwnedFrame {
    let mut out = background.clone();
    let k = (opacity * 255.0).round() as u32;
    for j in 0..foreground.height as i64 {
        for i in 0..foreground.width as i64 {
            let (bx, by) = (x + i, y + j);
            if bx < 0 || by < 0 || bx >= background.width as i64 || by >= background.height as i64 {
                continue;
            }
            let f = &foreground.data[(j as usize * foreground.stride as usize) + i as usize * 4..][..4];
            let at = by as usize * out.stride as usize + bx as usize * 4;
            assert_eq!(out.data[at + 3], 255, "the reference needs an opaque background");
            let a = (f[3] as u32 * k + 127) / 255;
            if a == 0 {
                continue;
            }
            for (c, &fc) in f.iter().enumerate().take(3) {
                let b = out.data[at + c] as u32;
                out.data[at + c] = ((fc as u32 * a + b * (255 - a) + 127) / 255) as u8;
            }
        }
    }
    out
}

/// `first` and `second` side by side (same height here).
fn stack_reference(first: &OwnedFrame, second: &OwnedFrame) -> OwnedFrame {
    assert_eq!(first.height, second.height);
    let mut data = Vec::new();
    for row in 0..first.height as usize {
        data.extend_from_slice(&first.data[row * first.stride as usize..][..first.width as usize * 4]);
        data.extend_from_slice(&second.data[row * second.stride as usize..][..second.width as usize * 4]);
    }
    OwnedFrame::from_pixels(first.width + second.width, first.height, PixelFormat::Rgba8, data).unwrap()
}

#[test]
fn overlay_and_stack_are_exact_with_fan_out_fan_in_a_still_logo_and_no_copies() {
    let dir = scratch("compose");
    let logo: Vec<u8> = (0..8u32)
        .flat_map(|y| (0..16u32).flat_map(move |x| [x as u8 * 16, y as u8 * 30, 200, (x * 16 + y * 2) as u8]))
        .collect();
    let logo = OwnedFrame::from_pixels(16, 8, PixelFormat::Rgba8, logo).unwrap();
    png_io::encode(&dir.join("logo.png"), &logo.view()).unwrap();
    // main feeds mix and side (fan-out); side takes main and mix (fan-in); mix feeds side and
    // an output (fan-out again).
    let config = format!(
        "[[input]]\nname = \"main\"\nkind = \"testsrc\"\nwidth = 64\nheight = 48\nframes = 12\n\
         [[input]]\nname = \"logo\"\nkind = \"png\"\npath = \"logo.png\"\n\
         [[plugin]]\nname = \"mix\"\npath = \"{}\"\ninputs = [\"main\", \"logo\"]\n[plugin.params]\nx = 50\ny = -3\nopacity = 0.75\n\
         [[plugin]]\nname = \"side\"\npath = \"{}\"\ninputs = [\"main\", \"mix\"]\n\
         [[output]]\nfrom = \"side\"\nkind = \"png\"\npath = \"side\"\n\
         [[output]]\nfrom = \"mix\"\nkind = \"png\"\npath = \"mix\"\n",
        plugin_path("overlay"),
        plugin_path("stack")
    );
    let output = run(&dir, &config);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mixed = written_frames(&dir.join("mix"));
    let sides = written_frames(&dir.join("side"));
    assert_eq!(mixed.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
    assert_eq!(sides.len(), 12);
    for ((n, mix), (_, side)) in mixed.iter().zip(&sides) {
        let main = pattern(64, 48, *n);
        let expected = overlay_reference(&main, &logo, 50, -3, 0.75);
        assert!(mix.same_pixels(&expected), "mix frame {n}");
        assert!(side.same_pixels(&stack_reference(&main, &expected)), "side frame {n}");
    }
    let stats = stats(&dir);
    assert_eq!(stats["copies"], 0, "{stats}");
    assert_eq!(stats["conversions"], serde_json::json!([]), "{stats}");
    assert_eq!(stats["frames_out"], 24, "{stats}");
    for plugin in stats["plugins"].as_array().unwrap() {
        assert_eq!(plugin["frames"], 12, "{plugin}");
        assert_eq!(plugin["copies"], 0, "{plugin}");
    }
}

/// A y4m stream of `Cmono` frames `width` x `height` at `rate` fps, frame `k` all `value(k)`.
fn mono_y4m(path: &Path, rate: u32, frames: u64, value: impl Fn(u64) -> u8) {
    let mut bytes = format!("YUV4MPEG2 W4 H2 F{rate}:1 Ip A1:1 Cmono\n").into_bytes();
    for k in 0..frames {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend_from_slice(&[value(k); 8]);
    }
    std::fs::write(path, bytes).unwrap();
}

/// The frames of a `Cmono` y4m file 8 x 2, each as its two halves' first values.
fn stacked_frames(path: &Path) -> Vec<(u8, u8)> {
    let bytes = std::fs::read(path).unwrap();
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes[header..].chunks(6 + 16).map(|frame| (frame[6], frame[6 + 4])).collect()
}

#[test]
fn inputs_at_different_rates_pair_the_latest_frame_at_or_before_and_end_as_configured() {
    let dir = scratch("rates");
    mono_y4m(&dir.join("fast.y4m"), 30, 30, |k| k as u8);
    mono_y4m(&dir.join("slow.y4m"), 10, 5, |j| 100 + j as u8);
    let config = |on_end: &str| {
        format!(
            "[[input]]\nname = \"fast\"\nkind = \"y4m\"\npath = \"fast.y4m\"\n\
             [[input]]\nname = \"slow\"\nkind = \"y4m\"\npath = \"slow.y4m\"\non_end = \"{on_end}\"\n\
             [[plugin]]\nname = \"both\"\npath = \"{}\"\ninputs = [\"fast\", \"slow\"]\n\
             [[output]]\nkind = \"y4m\"\npath = \"out.y4m\"\n",
            plugin_path("stack")
        )
    };
    // 30 fps beside 10 fps: each slow frame stands for three fast ones (fast frame k at k/30 s
    // pairs with slow frame floor(k / 3) at floor(k / 3) / 10 s).
    let output = run(&dir, &config("hold_last"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got = stacked_frames(&dir.join("out.y4m"));
    let held: Vec<(u8, u8)> = (0..30u64).map(|k| (k as u8, 100 + (k / 3).min(4) as u8)).collect();
    assert_eq!(got, held, "hold_last: the slow input's last frame stays valid");
    // stop: the slow input's last frame (at 0.4 s, 0.1 s long) stands until 0.5 s; the graph
    // ends at the first fast frame from then on, and says so.
    let output = run(&dir, &config("stop"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got = stacked_frames(&dir.join("out.y4m"));
    assert_eq!(got, held[..15].to_vec(), "stop: frames before 0.5 s");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("plugin \"both\" ends at 0.500 s, where its input \"slow\" ended"), "{said}");
}

#[test]
fn a_fan_out_branch_killed_at_random_loses_only_counted_frames_and_the_other_branch_none() {
    let dir = scratch("fan-out-kills");
    const FRAMES: u64 = 120;
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 160\nheight = 120\nframes = {FRAMES}\n\
         [[plugin]]\nname = \"fragile\"\npath = \"{}\"\ninputs = [\"input\"]\non_error = \"skip\"\n\
         max_restarts = 100000\nmemory_mb = 48\n\
         [[plugin]]\nname = \"steady\"\npath = \"{}\"\ninputs = [\"input\"]\n\
         [[output]]\nfrom = \"fragile\"\nkind = \"png\"\npath = \"fragile\"\n\
         [[output]]\nfrom = \"steady\"\nkind = \"png\"\npath = \"steady\"\n",
        plugin_path("invert"),
        plugin_path("flip")
    );
    std::fs::write(dir.join("graph.toml"), &config).unwrap();
    let mut child = host_command(&dir).args(["run", "graph.toml", "-q", "--stats-json", "stats.json"]).spawn().unwrap();
    // The fragile plugin's processes are those with the smaller memory limit (memory_mb 48).
    let fragile = |host: u32| {
        let mut runners: Vec<(u64, i32)> = runner_pids(host)
            .into_iter()
            .filter_map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let text = String::from_utf8_lossy(&cmdline).into_owned();
                let limit = text.split('\0').find_map(|a| a.strip_prefix("--data-limit=")?.parse().ok())?;
                Some((limit, pid))
            })
            .collect();
        runners.sort();
        let smallest = runners.first().map(|r| r.0);
        let distinct = runners.iter().any(|r| Some(r.0) != smallest);
        runners.into_iter().filter(|r| distinct && Some(r.0) == smallest).map(|r| r.1).collect::<Vec<_>>()
    };
    // Once both plugins run (the fragile one with its standby), kill its processes every 20 ms.
    let kills = kill_until_exit(&mut child, fragile, std::time::Duration::from_millis(20));
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(kills > 0, "the killer never found the fragile plugin's processes");
    let steady = written_frames(&dir.join("steady"));
    assert_eq!(steady.len() as u64, FRAMES, "the other branch loses nothing");
    for (n, frame) in &steady {
        assert!(frame.same_pixels(&flip_reference(&pattern(160, 120, *n), true)), "steady frame {n}");
    }
    let fragile_frames = written_frames(&dir.join("fragile"));
    for (n, frame) in &fragile_frames {
        assert!(frame.same_pixels(&invert_reference(&pattern(160, 120, *n))), "fragile frame {n}");
    }
    let stats = stats(&dir);
    let counted = &stats["plugins"][0];
    assert_eq!(counted["name"], "fragile");
    let lost = FRAMES - fragile_frames.len() as u64;
    assert_eq!(counted["skipped"], lost, "every lost frame is counted: {counted}");
    assert_eq!(counted["frames"], fragile_frames.len() as u64, "{counted}");
}

#[test]
fn graphs_that_cannot_run_are_refused_at_start_with_one_sentence() {
    let dir = scratch("refused");
    ffmpeg_free_y4m(&dir.join("yuv.y4m"));
    let two = "[[input]]\nname = \"main\"\nkind = \"testsrc\"\nwidth = 32\nheight = 16\nframes = 2\n\
               [[input]]\nname = \"other\"\nkind = \"testsrc\"\nwidth = 32\nheight = 16\nframes = 2\n";
    let null = "[[output]]\nkind = \"null\"\n";
    let cases = [
        (
            format!(
                "{two}[[plugin]]\nname = \"mix\"\npath = \"{}\"\ninputs = [\"main\"]\n[[output]]\nfrom = \"other\"\nkind = \"null\"\n{null}",
                plugin_path("overlay")
            ),
            "plugin \"mix\" is given 1 input (main), but it takes 2 (background, foreground)",
        ),
        (
            format!(
                "{two}[[plugin]]\nname = \"side\"\npath = \"{}\"\ninputs = [\"main\", \"other\"]\non_error = \"passthrough\"\n{null}",
                plugin_path("stack")
            ),
            "plugin \"side\" makes 64x16 rgba8 frames of 32x16 rgba8 ones, so on_error = \"passthrough\" cannot pass",
        ),
    ];
    for (config, sentence) in cases {
        let output = run(&dir, &config);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{sentence}: {stderr}");
        assert!(stderr.contains(sentence), "expected {sentence:?} in: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn plugins_that_take_other_formats_get_frames_converted_once_and_counted() {
    // main (yuv420p) goes to neg as it is and to mix as rgba8; neg's yuv420p frames go to mix
    // as rgba8 too: two converters. mix puts neg, opaque, over main: its output is neg's.
    let (dir, stats) = yuv_into_two_plugins(
        "converted",
        ("neg", "invert"),
        ("mix", "overlay"),
        "from = \"mix\"\nkind = \"raw\"\npath = \"graph.rgba\"",
    );
    let conversions = stats["conversions"].as_array().unwrap();
    assert_eq!(conversions.len(), 2, "{stats}");
    for conversion in conversions {
        assert_eq!(
            (&conversion["from"], &conversion["to"], &conversion["frames"]),
            (&"yuv420p".into(), &"rgba8".into(), &2.into())
        );
    }
    assert_eq!(stats["copies"], 0, "{stats}");
    let chain = format!(
        "[input]\nkind = \"y4m\"\npath = \"yuv.y4m\"\n[[plugin]]\nname = \"neg\"\npath = \"{}\"\n\
         [output]\nkind = \"raw\"\npath = \"chain.rgba\"\nformat = \"rgba\"\n",
        plugin_path("invert")
    );
    let output = run(&dir, &chain);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (graph, chain) =
        (std::fs::read(dir.join("graph.rgba")).unwrap(), std::fs::read(dir.join("chain.rgba")).unwrap());
    assert_eq!(graph.len(), 2 * 16 * 8 * 4);
    assert!(graph == chain, "the graph's converted frames are the chain's");
}

/// A two-frame 16x8 yuv420p y4m file.
fn ffmpeg_free_y4m(path: &Path) {
    let mut bytes = b"YUV4MPEG2 W16 H8 F25:1 Ip A1:1 C420jpeg\n".to_vec();
    for _ in 0..2 {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend_from_slice(&[120; 16 * 8 + 2 * 8 * 4]);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_plugin_that_skips_every_frame_holds_no_other_branch_up() {
    let dir = scratch("skips");
    // bad fails every frame (each trap makes a fresh instance, which fails its first frame);
    // side pairs main with bad's latest frame, of which there is none: it makes none either,
    // and the preview of main beside them loses nothing.
    let config = format!(
        "[[input]]\nname = \"main\"\nkind = \"testsrc\"\nwidth = 32\nheight = 16\nframes = 40\n\
         [[plugin]]\nname = \"bad\"\npath = \"{}\"\ninputs = [\"main\"]\non_error = \"skip\"\n\
         [plugin.params]\nmode = \"panic\"\nframe = 1\n\
         [[plugin]]\nname = \"side\"\npath = \"{}\"\ninputs = [\"main\", \"bad\"]\n\
         [[output]]\nfrom = \"side\"\nkind = \"null\"\n\
         [[output]]\nname = \"preview\"\nfrom = \"main\"\nkind = \"png\"\npath = \"preview\"\n",
        test_plugin("misbehave").display(),
        plugin_path("stack")
    );
    let output = run(&dir, &config);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stats = stats(&dir);
    assert_eq!(stats["plugins"][0]["skipped"], 40, "{stats}");
    assert_eq!(stats["plugins"][1]["frames"], 0, "{stats}");
    assert_eq!(written_frames(&dir.join("preview")).len(), 40);
}

#[test]
fn inputs_that_meet_in_different_formats_come_as_rgba8() {
    // crossfade takes yuv420p and rgba8 but needs one format: main (yuv420p) and edges (rgba8)
    // both reach it as rgba8.
    let (_, stats) =
        yuv_into_two_plugins("mixed-formats", ("edges", "sobel"), ("fade", "crossfade"), "kind = \"null\"");
    assert_eq!(stats["plugins"][1]["frames"], 2, "{stats}");
    assert_eq!(stats["conversions"][0]["to"], "rgba8", "{stats}");
}

/// Runs a graph of a two-frame yuv420p input `main`, plugin `first` (name, module) taking it,
/// plugin `second` taking `main` and `first`, and one output (`output`'s keys); returns the
/// run's folder and its statistics, the run having succeeded.
fn yuv_into_two_plugins(
    name: &str,
    first: (&str, &str),
    second: (&str, &str),
    output: &str,
) -> (PathBuf, serde_json::Value) {
    let dir = scratch(name);
    ffmpeg_free_y4m(&dir.join("yuv.y4m"));
    let config = format!(
        "[[input]]\nname = \"main\"\nkind = \"y4m\"\npath = \"yuv.y4m\"\n\
         [[plugin]]\nname = \"{}\"\npath = \"{}\"\ninputs = [\"main\"]\n\
         [[plugin]]\nname = \"{}\"\npath = \"{}\"\ninputs = [\"main\", \"{}\"]\n\
         [[output]]\n{output}\n",
        first.0,
        plugin_path(first.1),
        second.0,
        plugin_path(second.1),
        first.0
    );
    let ran = run(&dir, &config);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let stats = stats(&dir);
    (dir, stats)
}
