//! Video people's formats end to end: y4m in and out (size, rate and range from the stream, no
//! flags), Y'CbCr frames through plugins that take them and converted, exactly and said, for
//! those that do not.

use crate::support::*;
use plugin_sdk::convert::{Colour, Matrix, Range, convert};
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn scratch(name: &str) -> PathBuf {
    scratch_dir("media", name)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `plugin-host ARGS` in `dir`, example plugins on the search path, `stdin` fed to it.
fn host(dir: &Path, args: &[&str], stdin: Vec<u8>) -> Output {
    let mut child = host_command(dir).args(args).stdin(Stdio::piped()).spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    child.wait_with_output().unwrap()
}

fn y4m(header: &str, frames: &[OwnedFrame]) -> Vec<u8> {
    let mut bytes = format!("{header}\n").into_bytes();
    for frame in frames {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend_from_slice(&frame.packed());
    }
    bytes
}

fn to(frame: &OwnedFrame, format: PixelFormat, colour: Colour) -> OwnedFrame {
    let mut out = OwnedFrame::new(frame.width, frame.height, format);
    convert(&frame.view(), &mut out.view_mut(), format, colour).unwrap();
    out
}

/// Splits a y4m stream into its header line and its frames' bytes.
fn frames_of(stream: &[u8], frame_bytes: usize) -> (String, Vec<Vec<u8>>) {
    let end = stream.iter().position(|&b| b == b'\n').expect("a header line");
    let header = String::from_utf8(stream[..end].to_vec()).unwrap();
    let mut rest = &stream[end + 1..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        assert!(rest.starts_with(b"FRAME\n"), "a frame starts with FRAME");
        frames.push(rest[6..6 + frame_bytes].to_vec());
        rest = &rest[6 + frame_bytes..];
    }
    (header, frames)
}

#[test]
fn y4m_through_an_rgba_plugin_keeps_size_rate_and_range_and_converts_exactly() {
    let dir = scratch("y4m-rgba");
    let (width, height) = (33, 17);
    // Any bytes are valid 8-bit Y'CbCr samples.
    let inputs: Vec<OwnedFrame> = (0..3).map(|i| noise_frame(width, height, 0, PixelFormat::Yuv420p, i)).collect();
    let stream = y4m(&format!("YUV4MPEG2 W{width} H{height} F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG"), &inputs);
    let output = host(&dir, &["run", "-i", "-", "-o", "-", "--format", "y4m", "threshold level=100"], stream);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("converted 3 frames yuv420p -> rgba8 before \"threshold\" (bt601 limited range)"), "{said}");
    assert!(said.contains("converted 3 frames rgba8 -> yuv420p before the output (bt601 limited range)"), "{said}");

    // Below 720 rows and without a colour tag: BT.601, limited range.
    let colour = Colour { matrix: Matrix::Bt601, range: Range::Limited };
    let frame_bytes = PixelFormat::Yuv420p.packed_len(width, height) as usize;
    let (header, frames) = frames_of(&output.stdout, frame_bytes);
    assert!(header.starts_with(&format!("YUV4MPEG2 W{width} H{height} F30000:1001 ")), "{header}");
    assert!(header.contains("C420jpeg") && header.contains("XCOLORRANGE=LIMITED"), "{header}");
    assert_eq!(frames.len(), 3);
    for (input, got) in inputs.iter().zip(&frames) {
        let mut rgba = to(input, PixelFormat::Rgba8, colour);
        for pixel in rgba.data.chunks_exact_mut(4) {
            let white = plugin_sdk::luma_bt709(pixel[0], pixel[1], pixel[2]) >= 100;
            pixel[..3].fill(if white { 255 } else { 0 });
        }
        let expected = to(&rgba, PixelFormat::Yuv420p, colour);
        assert!(got == &expected.data, "the frame is the reference's, byte for byte");
    }
}

#[test]
fn a_full_range_ten_bit_y4m_file_goes_to_png_in_its_own_colours() {
    let dir = scratch("y4m-10bit");
    let (width, height) = (10, 6);
    let rgba = plugin_sdk::testing::gradient(width, height, PixelFormat::Rgba8);
    let colour = Colour { matrix: Matrix::Bt601, range: Range::Full };
    let ten = to(&rgba, PixelFormat::Yuv420p10, colour);
    let stream =
        y4m(&format!("YUV4MPEG2 W{width} H{height} F25:1 Ip C420p10 XCOLORRANGE=FULL"), std::slice::from_ref(&ten));
    std::fs::write(dir.join("in.y4m"), stream).unwrap();
    // Zero plugins: the output's conversion alone.
    let config = "[input]\nkind = \"y4m\"\npath = \"in.y4m\"\n[output]\nkind = \"png\"\npath = \"frames\"\n";
    std::fs::write(dir.join("p.toml"), config).unwrap();
    let output = host(&dir, &["run", "p.toml"], Vec::new());
    assert!(output.status.success(), "{}", stderr(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("converted 1 frame yuv420p10 -> rgba8 before the output (bt601 full range)"), "{said}");
    let written = written_frames(&dir.join("frames"));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].1, to(&ten, PixelFormat::Rgba8, colour));
}

#[test]
fn bad_y4m_is_one_sentence_exit_2_and_no_output() {
    let dir = scratch("y4m-bad");
    let cases: [(&str, &[u8]); 4] = [
        ("C444", b"YUV4MPEG2 W8 H8 F25:1 C444\nFRAME\n"),
        ("not a y4m stream", b"RIFF....WAVEfmt \n"),
        ("no W or H", b"YUV4MPEG2 H8 F25:1\n"),
        ("interlaced", b"YUV4MPEG2 W8 H8 It\n"),
    ];
    for (culprit, bytes) in cases {
        std::fs::write(dir.join("in.y4m"), bytes).unwrap();
        let output = host(&dir, &["run", "-i", "in.y4m", "-o", "out.y4m", "invert"], Vec::new());
        assert_eq!(output.status.code(), Some(2), "{culprit}: {}", stderr(&output));
        let said = stderr(&output);
        assert!(said.contains("in.y4m") && said.contains(culprit), "{culprit}: {said}");
        assert_eq!(said.trim().lines().count(), 1, "one sentence: {said}");
        assert!(!said.contains("panicked"));
        assert!(!dir.join("out.y4m").exists(), "{culprit}: nothing written");
    }
    // A frame cut short: the complete frames stay, the cut one is named.
    let frame = noise_frame(8, 8, 0, PixelFormat::Yuv420p, 1);
    let mut bytes = y4m("YUV4MPEG2 W8 H8 F25:1 C420jpeg", &[frame.clone(), frame]);
    bytes.truncate(bytes.len() - 10);
    std::fs::write(dir.join("in.y4m"), bytes).unwrap();
    let output = host(&dir, &["run", "-i", "in.y4m", "-o", "out.y4m", "flip"], Vec::new());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("ends inside frame 2"), "{}", stderr(&output));
}

/// Whether `ffmpeg` and `ffprobe` run here; CI installs them, so only a local run skips.
fn have_ffmpeg(test: &str) -> bool {
    let runs = |tool: &str| Command::new(tool).arg("-version").output().is_ok_and(|o| o.status.success());
    let have = runs("ffmpeg") && runs("ffprobe");
    if !have {
        eprintln!("{test}: skipped: ffmpeg/ffprobe are not installed (apt-get install -y ffmpeg)");
    }
    have
}

fn ffmpeg(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("ffmpeg").args(["-nostdin", "-v", "error"]).args(args).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "ffmpeg {args:?}: {}", stderr(&output));
    output.stdout
}

fn probe(dir: &Path, file: &str, entries: &str) -> String {
    let args = ["-v", "error", "-show_entries", entries, "-of", "compact=p=0:nk=1", file];
    let output = Command::new("ffprobe").args(args).current_dir(dir).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_video_file_in_a_video_file_out_keeps_rate_frames_and_audio() {
    if !have_ffmpeg("a_video_file_in_a_video_file_out_keeps_rate_frames_and_audio") {
        return;
    }
    let dir = scratch("video");
    let make = "testsrc2=size=96x64:rate=30000/1001";
    let sine = "sine=frequency=440";
    let tags = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"];
    let encode = [&tags[..], &["-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "in.mp4"]].concat();
    ffmpeg(&dir, &[&["-f", "lavfi", "-i", make, "-f", "lavfi", "-i", sine][..], &encode].concat());
    // A lossless encoder, so that the output's pixels can be compared.
    let config = format!(
        "[input]\nkind = \"video\"\npath = \"in.mp4\"\n[[plugin]]\nname = \"mirror\"\npath = \"{}\"\nparams = {{ axis = \"horizontal\" }}\n\
         [output]\nkind = \"video\"\npath = \"out.mkv\"\nencoder_args = [\"-c:v\", \"ffv1\"]\n",
        plugin("flip").display()
    );
    std::fs::write(dir.join("p.toml"), config).unwrap();
    let output = host(&dir, &["run", "p.toml"], Vec::new());
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(!summary.contains("converted"), "flip takes yuv420p: nothing converted\n{summary}");

    assert_eq!(probe(&dir, "out.mkv", "stream=codec_type"), "video\naudio");
    assert_eq!(probe(&dir, "out.mkv", "stream=r_frame_rate").lines().next(), Some("30000/1001"));
    assert_eq!(probe(&dir, "out.mkv", "stream=codec_name").lines().nth(1), Some("aac"), "audio copied, not re-encoded");
    let colour = probe(&dir, "out.mkv", "stream=color_space,color_primaries,color_transfer,color_range");
    assert_eq!(colour.lines().next(), Some("tv|bt709|bt709|bt709"), "the input's colour tags are kept");
    let decode = |file: &str, filter: &str| {
        // Every decoded frame once (mkv's millisecond timestamps would make a constant-rate
        // output repeat one).
        let raw = ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"];
        ffmpeg(&dir, &[&["-i", file, "-map", "0:v", "-vf", filter][..], &raw].concat())
    };
    let expected = decode("in.mp4", "hflip");
    let got = decode("out.mkv", "null");
    assert_eq!(got.len(), expected.len(), "every frame, no more");
    assert_eq!(got.len(), 30 * PixelFormat::Yuv420p.packed_len(96, 64) as usize);
    assert!(got == expected, "the output is the input mirrored, sample for sample");
}

#[test]
fn a_video_file_ffmpeg_cannot_read_or_write_is_named_with_its_reason() {
    if !have_ffmpeg("a_video_file_ffmpeg_cannot_read_or_write_is_named_with_its_reason") {
        return;
    }
    let dir = scratch("video-bad");
    std::fs::write(dir.join("bad.mp4"), b"not a video at all").unwrap();
    let output = host(&dir, &["run", "-i", "bad.mp4", "-o", "out.mp4", "invert"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("bad.mp4: ffmpeg cannot read it: ") && said.contains("Invalid data"), "{said}");
    assert!(!dir.join("out.mp4").exists());

    ffmpeg(&dir, &["-f", "lavfi", "-i", "testsrc2=size=32x32:rate=10", "-t", "1", "-pix_fmt", "yuv420p", "in.mp4"]);
    let config = format!(
        "[input]\nkind = \"video\"\npath = \"in.mp4\"\n[[plugin]]\nname = \"invert\"\npath = \"{}\"\n\
         [output]\nkind = \"video\"\npath = \"out.mp4\"\nencoder_args = [\"-c:v\", \"no-such-encoder\"]\n",
        plugin("invert").display()
    );
    std::fs::write(dir.join("p.toml"), config).unwrap();
    let output = host(&dir, &["run", "p.toml", "-q"], Vec::new());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("out.mp4: ffmpeg could not encode it: Unknown encoder 'no-such-encoder'"), "{said}");
    assert!(!said.contains("the output holds"), "no frames are claimed for a file that is not there: {said}");
    assert!(!dir.join("out.mp4").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().contains("partial")), "{leftovers:?}");
    // The same over an output that was there: it stays as it was, and nothing is claimed.
    std::fs::copy(dir.join("in.mp4"), dir.join("out.mp4")).unwrap();
    let output = host(&dir, &["run", "p.toml", "-q"], Vec::new());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(!stderr(&output).contains("frame(s) completed"), "{}", stderr(&output));
    assert_eq!(std::fs::read(dir.join("out.mp4")).unwrap(), std::fs::read(dir.join("in.mp4")).unwrap());
}

#[test]
fn an_upscaler_declares_its_larger_frames_and_the_chain_after_it_gets_them() {
    let dir = scratch("upscale");
    let output = host(&dir, &["run", "-i", "testsrc:32x24:3", "-o", "frames", "scale factor=3 ! invert"], Vec::new());
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("frames: input 32x24 rgba8 -> scale 96x72 rgba8 -> invert 96x72 rgba8"), "{summary}");
    let written = written_frames(&dir.join("frames"));
    assert_eq!(written.len(), 3);
    for (n, frame) in &written {
        let mut input = OwnedFrame::new(32, 24, PixelFormat::Rgba8);
        plugin_host_cli::io::test_pattern(32, 24, *n - 1, &mut input);
        let mut scaled = OwnedFrame::new(96, 72, PixelFormat::Rgba8);
        for (i, pixel) in scaled.data.chunks_exact_mut(4).enumerate() {
            let (x, y) = (i % 96 / 3, i / 96 / 3);
            pixel.copy_from_slice(&input.data[(y * 32 + x) * 4..(y * 32 + x) * 4 + 4]);
        }
        assert!(frame.same_pixels(&invert_reference(&scaled)), "frame {n}");
    }

    // Larger than the config allows: refused before any frame, naming the plugin.
    let config = format!(
        "max_frame_bytes = 100000\n[input]\nkind = \"testsrc\"\nwidth = 64\nheight = 48\nframes = 2\n\
         [[plugin]]\nname = \"up\"\npath = \"{}\"\nparams = {{ factor = 4 }}\n[output]\nkind = \"null\"\n",
        plugin("scale").display()
    );
    std::fs::write(dir.join("big.toml"), config).unwrap();
    let output = host(&dir, &["run", "big.toml"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("plugin \"up\" makes 256x192 rgba8 frames of 64x48 rgba8 ones"), "{said}");
    assert!(said.contains("max_frame_bytes = 100000"), "{said}");
}

#[test]
fn frame_metadata_set_by_one_plugin_reaches_the_plugins_after_it_through_one_that_ignores_it() {
    let dir = scratch("metadata");
    let misbehave = test_plugin("misbehave");
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 48\nheight = 8\nframes = 3\n\
         [[plugin]]\nname = \"stamp\"\npath = \"{m}\"\nparams = {{ mode = \"meta-stamp\" }}\n\
         [[plugin]]\nname = \"invert\"\npath = \"{}\"\nworkers = 2\n\
         [[plugin]]\nname = \"show\"\npath = \"{m}\"\nparams = {{ mode = \"meta-show\" }}\n\
         [output]\nkind = \"raw\"\npath = \"-\"\n",
        plugin("invert").display(),
        m = misbehave.display(),
    );
    std::fs::write(dir.join("p.toml"), config).unwrap();
    for transport in ["", "pipe"] {
        let config = std::fs::read_to_string(dir.join("p.toml")).unwrap();
        let config = match transport {
            "pipe" => {
                config.replace("[[plugin]]\nname = \"show\"", "[[plugin]]\nname = \"show\"\ntransport = \"pipe\"")
            }
            _ => config,
        };
        std::fs::write(dir.join("q.toml"), config).unwrap();
        let output = host(&dir, &["run", "q.toml"], Vec::new());
        assert!(output.status.success(), "{}", stderr(&output));
        let frame_bytes = 48 * 8 * 4;
        assert_eq!(output.stdout.len(), 3 * frame_bytes);
        for n in 0..3 {
            let row = &output.stdout[n * frame_bytes..n * frame_bytes + 48 * 4];
            let text = String::from_utf8_lossy(&row[..row.iter().position(|&b| b == b'|').unwrap() + 9]).into_owned();
            // pts n in units of 1/30 s, the rate the test pattern runs at, one property.
            assert!(text.starts_with(&format!("{n} 1/30|30/1|1|")), "frame {n} {transport}: {text}");
        }
    }
}

#[test]
fn a_playlist_named_like_a_video_cannot_make_ffmpeg_read_other_files() {
    if !have_ffmpeg("a_playlist_named_like_a_video_cannot_make_ffmpeg_read_other_files") {
        return;
    }
    let dir = scratch("playlist");
    ffmpeg(
        &dir,
        &["-f", "lavfi", "-i", "testsrc2=size=32x32:rate=10", "-t", "1", "-pix_fmt", "yuv420p", "private.mkv"],
    );
    let private = dir.join("private.mkv");
    let playlist = format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{}\n#EXT-X-ENDLIST\n", private.display());
    std::fs::write(dir.join("holiday.mp4"), playlist).unwrap();
    let output = host(&dir, &["run", "-i", "holiday.mp4", "-o", "out.mkv", "invert"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("holiday.mp4: is a hls file, which names other files"), "{}", stderr(&output));
    assert!(!dir.join("out.mkv").exists());
}

#[test]
fn bad_shapes_and_empty_runs_leave_nothing_that_looks_like_output() {
    let dir = scratch("empty");
    // Not ASCII where a header field's tag goes: one sentence, no panic.
    std::fs::write(dir.join("odd.y4m"), "YUV4MPEG2 W8 H8 \u{e9}x\n").unwrap();
    let output = host(&dir, &["run", "-i", "odd.y4m", "-o", "out.y4m", "invert"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"));
    // A header and no frame: nothing is written, and the run says so.
    std::fs::write(dir.join("none.y4m"), "YUV4MPEG2 W8 H8 F25:1 C420jpeg\n").unwrap();
    let output = host(&dir, &["run", "-i", "none.y4m", "-o", "out.y4m", "invert"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "a file shorter than one frame: {}", stderr(&output));
    assert!(stderr(&output).contains("cannot hold one 8x8 yuv420p frame"), "{}", stderr(&output));
    let empty_stream = b"YUV4MPEG2 W8 H8 F25:1 C420jpeg\n".to_vec();
    let output = host(&dir, &["run", "-i", "-", "--format", "y4m", "-o", "out.y4m", "invert"], empty_stream);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("the input gave no frames: nothing was written"), "{}", stderr(&output));
    assert!(!dir.join("out.y4m").exists());
    // A plugin that changes the shape cannot pass its input through in place of its output.
    let config = format!(
        "[input]\nkind = \"testsrc\"\nwidth = 16\nheight = 8\nframes = 2\n[[plugin]]\nname = \"up\"\npath = \"{}\"\n\
         on_error = \"passthrough\"\n[output]\nkind = \"null\"\n",
        plugin("scale").display()
    );
    std::fs::write(dir.join("pt.toml"), config).unwrap();
    let output = host(&dir, &["run", "pt.toml"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("on_error = \"passthrough\" cannot pass a failed frame on"),
        "{}",
        stderr(&output)
    );
    // A stream whose header claims frames beyond max_frame_bytes: refused before any buffer.
    let config = "max_frame_bytes = 1000000\n[input]\nkind = \"y4m\"\npath = \"-\"\n[output]\nkind = \"null\"\n";
    std::fs::write(dir.join("lim.toml"), config).unwrap();
    let output = host(&dir, &["run", "lim.toml"], b"YUV4MPEG2 W8192 H8192 F25:1\nFRAME\nabc".to_vec());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("its 8192x8192 frames are 268435456 bytes as RGBA"), "{}", stderr(&output));
    // An output name that says nothing about what it is.
    let output = host(&dir, &["run", "-i", "testsrc:8x8:1", "-o", "out.gif2", "invert"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("-o out.gif2: cannot tell what it is"), "{}", stderr(&output));
}

#[test]
fn interlaced_video_is_refused_with_the_deinterlacer_to_add_and_runs_with_it() {
    if !have_ffmpeg("interlaced_video_is_refused_with_the_deinterlacer_to_add_and_runs_with_it") {
        return;
    }
    let dir = scratch("interlaced");
    let make = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-t", "0.4", "-pix_fmt", "yuv420p"];
    ffmpeg(&dir, &[&make[..], &["-flags", "+ildct+ilme", "-c:v", "mpeg2video", "-top", "1", "in.mkv"]].concat());
    let output = host(&dir, &["run", "-i", "in.mkv", "-o", "out.mkv", "invert"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("decoder_args = [\"-vf\", \"yadif\"]"), "{}", stderr(&output));
    let config = format!(
        "[input]\nkind = \"video\"\npath = \"in.mkv\"\ndecoder_args = [\"-vf\", \"yadif\"]\n\
         [[plugin]]\nname = \"invert\"\npath = \"{}\"\n[output]\nkind = \"video\"\npath = \"out.mkv\"\n",
        plugin("invert").display()
    );
    std::fs::write(dir.join("p.toml"), config).unwrap();
    let output = host(&dir, &["run", "p.toml", "-q"], Vec::new());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(probe(&dir, "out.mkv", "stream=codec_type"), "video");
}

#[test]
fn a_file_name_cannot_be_an_ffmpeg_protocol_and_a_planted_link_is_not_followed() {
    if !have_ffmpeg("a_file_name_cannot_be_an_ffmpeg_protocol_and_a_planted_link_is_not_followed") {
        return;
    }
    let dir = scratch("protocol");
    std::fs::create_dir_all(dir.join("secret")).unwrap();
    std::fs::write(dir.join("secret/s.txt"), "TOPSECRET").unwrap();
    std::fs::write(dir.join("hdr.y4m"), "YUV4MPEG2 W16 H16 F1:1 Ip Cmono\nFRAME\n").unwrap();
    // A name ffmpeg would read as its concat protocol, made to exist as a file.
    let name = format!("concat:hdr.y4m|{}|hdr.mp4", dir.join("secret/s.txt").display());
    std::fs::create_dir_all(dir.join(&name).parent().unwrap()).unwrap();
    std::fs::write(dir.join(&name), b"").unwrap();
    let output = host(&dir, &["run", "-i", &name, "-o", "leak.gray", "invert"], Vec::new());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(!dir.join("leak.gray").exists());
    // A link planted where the output's work-in-progress file will be: removed, not followed.
    std::fs::write(dir.join("victim.txt"), "keep").unwrap();
    let script = "ln -s victim.txt out.y4m.partial-$$ && exec \"$0\" run -q -i testsrc:16x16:2 -o out.y4m invert";
    let status = Command::new("sh")
        .args(["-c", script, host_bin().to_str().unwrap()])
        .current_dir(&dir)
        .env("PLUGIN_HOST_PATH", root().join("target/plugins"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(dir.join("victim.txt")).unwrap(), "keep");
    assert!(std::fs::symlink_metadata(dir.join("out.y4m")).unwrap().is_file());
}
