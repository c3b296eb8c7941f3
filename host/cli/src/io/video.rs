//! Video files, by running `ffmpeg` (found on `PATH`) as a child process with y4m in between:
//! a decoder whose y4m the pipeline reads, an encoder that reads the pipeline's y4m. The frame
//! rate and the colour range cross in the y4m header, the matrix and the frame count come from
//! `ffprobe`, and the input's audio is copied into the output untouched when the output's
//! container can hold it. A decoder or encoder that fails is named with ffmpeg's last error line.
//!
//! ffmpeg runs as the user, outside the plugins' sandbox, on files the user names. So that a file
//! cannot make it read others (an HLS playlist or a concat list named `.mp4` that lists private
//! files), only demuxers that read one file are allowed ([`DEMUXERS`]). The children run in their
//! own process group: Ctrl-C reaches the host, which ends them in order (the encoder finishes the
//! file), not in the middle of a write.

use super::raw::{RawSink, Y4mSource};
use super::{MediaError, Sink, Source, StreamInfo, partial_path};
use plugin_sdk::convert::{Matrix, Range};
use plugin_sdk::{Frame, OwnedFrame, PixelFormat};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

const INSTALL: &str = "install it (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)";

fn failed(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Output { path: path.to_path_buf(), reason: reason.into() }
}

/// Starts `program` with `args`, or says that it is missing and how to get it.
fn spawn(program: &str, args: &[&std::ffi::OsStr], stdin: Stdio, path: &Path) -> Result<Child, MediaError> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    command.args(args).process_group(0).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => failed(path, format!("video files need {program} on PATH; {INSTALL}")),
        _ => failed(path, format!("cannot start {program}: {e}")),
    })
}

/// The last non-empty line a child wrote to stderr (kept as it runs, at most 1 KiB of it).
#[derive(Debug, Clone, Default)]
struct LastLine(Arc<Mutex<String>>, Arc<Mutex<Option<std::thread::JoinHandle<()>>>>);

impl LastLine {
    fn follow(child: &mut Child) -> Self {
        let last = LastLine::default();
        if let Some(stderr) = child.stderr.take() {
            let keep = last.clone();
            let reader = std::thread::spawn(move || {
                // Lines of at most 1 KiB (a longer one counts as several): whatever the media
                // makes ffmpeg say, this holds one short line.
                let mut reader = BufReader::new(stderr);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.by_ref().take(1024).read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim();
                    if !text.is_empty()
                        && let Ok(mut kept) = keep.0.lock()
                    {
                        *kept = plugin_host::text::terminal_safe(text);
                    }
                }
            });
            if let Ok(mut slot) = last.1.lock() {
                *slot = Some(reader);
            }
        }
        last
    }

    /// The last line, once the child has exited: everything it wrote is read first.
    fn get(&self) -> String {
        if let Some(reader) = self.1.lock().ok().and_then(|mut r| r.take()) {
            let _ = reader.join();
        }
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The demuxers ffmpeg may use on an input: containers and streams that read one file. Playlists
/// and lists of other files (hls, dash, concat, image2 patterns, tee) are not among them.
pub const DEMUXERS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mxf,flv,mpeg,mpegvideo,ogg,\
                            yuv4mpegpipe,h264,hevc,m4v,ivf,gif,asf,nut,dv,rawvideo,obu,av1";

/// What `ffprobe` says of a file's first video stream.
#[derive(Debug, Clone, Default)]
struct Probe {
    frames: Option<u64>,
    ten_bit: bool,
    gray: bool,
    matrix: Option<Matrix>,
    range: Option<Range>,
    /// `FrameMeta` codes of the primaries and transfer (0: unknown).
    primaries: u8,
    transfer: u8,
    /// The first audio stream's codec, when there is one.
    audio: Option<String>,
}

/// How ffmpeg gets a file name: as a file, never a protocol (`concat:a|b`, `subfile:` and the
/// like would make it read other files), and only with the file protocol allowed.
fn as_file(path: &Path) -> std::ffi::OsString {
    let mut name = std::ffi::OsString::from("file:");
    name.push(path.as_os_str());
    name
}

/// ffmpeg options that keep it to local files and the one-file demuxers, before an `-i`.
const INPUT_LIMITS: [&str; 4] = ["-protocol_whitelist", "file,pipe", "-format_whitelist", DEMUXERS];

/// Most bytes kept of a short-lived child's stdout or stderr (ffprobe's JSON, a trial mux's
/// complaint); the rest is read and dropped, so the child never blocks on a full pipe.
const MAX_CHILD_OUTPUT: u64 = 4 << 20;

/// Waits for a child's output; a stop request (Ctrl-C) ends the child and the wait.
fn output_or_stop(mut child: Child, path: &Path) -> Result<std::process::Output, MediaError> {
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let readers = [stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>), stderr.take().map(|s| Box::new(s) as _)]
        .map(|pipe| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.by_ref().take(MAX_CHILD_OUTPUT).read_to_end(&mut bytes);
                    let _ = std::io::copy(&mut pipe, &mut std::io::sink());
                }
                bytes
            })
        });
    let status = loop {
        if plugin_host::sys::signals::stop_requested() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(path, "stopped"));
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(failed(path, format!("waiting for ffprobe: {e}"))),
        }
    };
    let [out, err] = readers.map(|r| r.join().unwrap_or_default());
    Ok(std::process::Output { status, stdout: out, stderr: err })
}

fn probe(path: &Path) -> Result<Probe, MediaError> {
    let mut args: Vec<std::ffi::OsString> = ["-v", "error"].map(Into::into).to_vec();
    args.extend(INPUT_LIMITS.map(Into::into));
    args.extend(["-show_streams", "-of", "json"].map(Into::into));
    args.push(as_file(path));
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let child = spawn("ffprobe", &args, Stdio::null(), path)?;
    let output = output_or_stop(child, path)?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        // `[hls @ 0x…] Format not on whitelist …`: a playlist or list of other files.
        if let Some(line) = said.lines().find(|l| l.contains("not on whitelist")) {
            let demuxer = line.trim_start_matches('[').split(' ').next().unwrap_or("?");
            let demuxer = plugin_host::text::terminal_safe(demuxer);
            return Err(failed(
                path,
                format!(
                    "is a {demuxer} file, which names other files to read; only files that hold their video are read"
                ),
            ));
        }
        let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no reason given");
        return Err(failed(path, format!("ffmpeg cannot read it: {}", plugin_host::text::terminal_safe(last.trim()))));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| failed(path, format!("ffprobe's answer is not JSON: {e}")))?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let Some(video) = streams.iter().find(|s| s["codec_type"] == "video") else {
        return Err(failed(path, "has no video stream"));
    };
    let text = |key: &str| video[key].as_str().unwrap_or("").to_string();
    let pix_fmt = text("pix_fmt");
    Ok(Probe {
        frames: text("nb_frames").parse().ok(),
        ten_bit: ["10le", "10be", "12le", "12be", "16le", "16be"].iter().any(|s| pix_fmt.contains(s)),
        gray: pix_fmt.starts_with("gray"),
        matrix: match text("color_space").as_str() {
            "bt709" => Some(Matrix::Bt709),
            "smpte170m" | "bt470bg" | "fcc" => Some(Matrix::Bt601),
            "bt2020nc" | "bt2020c" => Some(Matrix::Bt2020),
            _ => None,
        },
        range: match text("color_range").as_str() {
            "pc" | "jpeg" => Some(Range::Full),
            "tv" | "mpeg" => Some(Range::Limited),
            _ => None,
        },
        primaries: PRIMARIES.iter().position(|p| *p == text("color_primaries")).map_or(0, |i| i as u8 + 1),
        transfer: TRANSFERS.iter().position(|t| *t == text("color_transfer")).map_or(0, |i| i as u8 + 1),
        audio: streams
            .iter()
            .find(|s| s["codec_type"] == "audio")
            .map(|s| s["codec_name"].as_str().unwrap_or("unknown").to_string()),
    })
}

/// ffmpeg's names of the colour primaries and transfers with a `FrameMeta` code (code = index + 1).
const PRIMARIES: [&str; 4] = ["bt709", "smpte170m", "bt470bg", "bt2020"];
const TRANSFERS: [&str; 4] = ["bt709", "iec61966-2-1", "smpte2084", "arib-std-b67"];

/// The encoder options that tag the output with the frames' colour, as far as it is known.
fn colour_tags(info: &StreamInfo) -> Vec<String> {
    let matrix = match info.colour.matrix {
        Matrix::Bt601 => "smpte170m",
        Matrix::Bt709 => "bt709",
        Matrix::Bt2020 => "bt2020nc",
    };
    let range = match info.colour.range {
        Range::Limited => "tv",
        Range::Full => "pc",
    };
    let mut tags = vec!["-colorspace".to_string(), matrix.into(), "-color_range".into(), range.into()];
    if let Some(p) = PRIMARIES.get((info.primaries as usize).wrapping_sub(1)) {
        tags.extend(["-color_primaries".to_string(), p.to_string()]);
    }
    if let Some(t) = TRANSFERS.get((info.transfer as usize).wrapping_sub(1)) {
        tags.extend(["-color_trc".to_string(), t.to_string()]);
    }
    tags
}

/// Frames decoded from a video file by an `ffmpeg` child.
pub struct VideoSource {
    frames: Y4mSource,
    child: Child,
    path: PathBuf,
    last_line: LastLine,
    probe: Probe,
}

impl VideoSource {
    /// `decoder_args`: ffmpeg output options for the decoded frames (`-vf yadif`).
    pub fn open(path: &Path, decoder_args: &[String]) -> Result<Self, MediaError> {
        match std::fs::metadata(path) {
            Err(_) => return Err(failed(path, "does not exist")),
            Ok(meta) if meta.is_dir() => return Err(failed(path, "is a folder, not a video file")),
            Ok(meta) if !meta.is_file() => {
                return Err(failed(path, "is not a regular file; for a stream of frames use kind = \"y4m\""));
            }
            Ok(_) => {}
        }
        let probe = probe(path)?;
        let pix_fmt = match (probe.gray, probe.ten_bit) {
            (true, _) => "gray",
            (_, true) => "yuv420p10le",
            _ => "yuv420p",
        };
        let mut args: Vec<std::ffi::OsString> = ["-nostdin", "-v", "error"].map(Into::into).to_vec();
        args.extend(INPUT_LIMITS.map(Into::into));
        args.push("-i".into());
        args.push(as_file(path));
        args.extend(["-map", "0:v:0"].map(Into::into));
        args.extend(decoder_args.iter().map(Into::into));
        args.extend(["-pix_fmt", pix_fmt, "-strict", "-1", "-f", "yuv4mpegpipe", "-"].map(Into::into));
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let mut child = spawn("ffmpeg", &args, Stdio::null(), path)?;
        let last_line = LastLine::follow(&mut child);
        let stdout = child.stdout.take().expect("stdout is piped");
        plugin_host::sys::process::widen_pipe(std::os::fd::AsFd::as_fd(&stdout));
        let stdout: Box<dyn Read + Send> = Box::new(super::StopAware(stdout));
        let name = format!("ffmpeg decoding {}", path.display());
        let frames = match Y4mSource::from_reader(stdout, name) {
            Ok(frames) => frames,
            // What ffmpeg made is not something we read (too large, interlaced): our reason.
            Err(MediaError::Invalid { reason, .. }) => {
                let _ = child.kill();
                let _ = child.wait();
                let hint = match reason.contains("interlaced") {
                    true => " (in a config, decoder_args = [\"-vf\", \"yadif\"] deinterlaces)",
                    false => "",
                };
                return Err(failed(path, format!("its decoded frames: {reason}{hint}")));
            }
            Err(e) => {
                let _ = child.wait();
                let said = last_line.get();
                return Err(if said.is_empty() { e } else { failed(path, format!("ffmpeg cannot decode it: {said}")) });
            }
        };
        Ok(Self { frames, child, path: path.to_path_buf(), last_line, probe })
    }

    /// After the frames end or break off: ffmpeg's own error, if it failed.
    fn decoder_error(&mut self) -> Option<MediaError> {
        let status = self.child.wait().ok()?;
        (!status.success()).then(|| {
            let said = self.last_line.get();
            let said = if said.is_empty() { format!("ffmpeg exited with {status}") } else { said };
            failed(&self.path, format!("ffmpeg could not decode it: {said}"))
        })
    }
}

impl Source for VideoSource {
    fn audio_codec(&self) -> Option<String> {
        self.probe.audio.clone()
    }
    fn len_hint(&self) -> Option<u64> {
        self.probe.frames
    }
    fn shape(&self) -> (u32, u32, PixelFormat) {
        self.frames.shape()
    }
    fn info(&self) -> StreamInfo {
        let mut info = self.frames.info();
        if let Some(matrix) = self.probe.matrix {
            info.colour.matrix = matrix;
        }
        if let Some(range) = self.probe.range {
            info.colour.range = range;
        }
        (info.primaries, info.transfer) = (self.probe.primaries, self.probe.transfer);
        info
    }
    fn next_into(&mut self, frame: &mut OwnedFrame) -> Result<bool, MediaError> {
        match self.frames.next_into(frame) {
            Ok(true) => Ok(true),
            Ok(false) => self.decoder_error().map_or(Ok(false), Err),
            Err(e) => {
                // ffmpeg's own failure explains a stream cut short; otherwise the reason is ours
                // (a stop request, frames we refuse), and ffmpeg, blocked writing to a reader
                // that has stopped, is ended.
                if matches!(self.child.try_wait(), Ok(Some(status)) if !status.success()) {
                    return Err(self.decoder_error().unwrap_or(e));
                }
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(e)
            }
        }
    }
}

impl Drop for VideoSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Frames encoded into a video file by an `ffmpeg` child, written under a temporary name
/// (with the same extension, so that ffmpeg picks the same container) and renamed at the end.
pub struct VideoSink {
    /// Created with the first frame, when the frames' shape is known.
    encoder: Option<(RawSink, Child)>,
    target: PathBuf,
    partial: PathBuf,
    info: StreamInfo,
    /// The input file whose audio is copied, when the output's container takes it.
    audio: Option<PathBuf>,
    args: Vec<String>,
    last_line: LastLine,
    /// The shape of the frames it encodes, once the first came.
    shape: Option<(u32, u32)>,
    /// The encoder failed: nothing it wrote is a video.
    failed: bool,
}

impl VideoSink {
    /// `audio_from`: the input video file and the codec of its audio (as its source probed it),
    /// which the output gets when it can.
    pub fn create(
        path: &Path,
        info: StreamInfo,
        audio_from: Option<(&Path, &str)>,
        args: &[String],
    ) -> Result<Self, MediaError> {
        if path.is_dir() {
            return Err(failed(path, "is a folder, not a video file"));
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if extension.is_empty() {
            return Err(failed(path, "a video output needs an extension that names its container (.mp4, .mkv, …)"));
        }
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !folder.is_dir() {
            return Err(failed(path, format!("its folder {} does not exist", folder.display())));
        }
        // ffmpeg must be there before any frame moves.
        let mut check = spawn("ffmpeg", &[std::ffi::OsStr::new("-version")], Stdio::null(), path)?;
        let _ = check.wait();
        let mut partial = partial_path(path);
        if !extension.is_empty() {
            partial
                .set_extension(format!("{}.{extension}", partial.extension().and_then(|e| e.to_str()).unwrap_or("")));
        }
        // Ours, made here: ffmpeg then writes this file, not whatever a link there pointed to.
        super::create_partial(&partial).map_err(|source| MediaError::Write { path: partial.clone(), source })?;
        let audio = match audio_from {
            Some((input, codec)) => match audio_fits(input, extension) {
                Ok(()) => Some(input.to_path_buf()),
                Err(why) => {
                    let out = path.display();
                    tracing::warn!(
                        "{out}: the input's {codec} audio does not fit a .{extension} file unconverted, so \
                         the output has no audio (ffmpeg: {why})"
                    );
                    None
                }
            },
            None => None,
        };
        Ok(Self {
            encoder: None,
            target: path.to_path_buf(),
            partial,
            info,
            audio,
            args: args.to_vec(),
            last_line: LastLine::default(),
            shape: None,
            failed: false,
        })
    }

    fn start(&mut self) -> Result<&mut RawSink, MediaError> {
        if self.encoder.is_none() {
            let mut args: Vec<std::ffi::OsString> =
                ["-nostdin", "-v", "error", "-f", "yuv4mpegpipe", "-i", "-"].map(Into::into).to_vec();
            if let Some(audio) = &self.audio {
                args.extend(INPUT_LIMITS.map(Into::into));
                args.extend(["-i".into(), as_file(audio)]);
                args.extend(["-map", "0:v:0", "-map", "1:a", "-c:a", "copy", "-shortest"].map(Into::into));
            }
            // The frames' colour first, so that the config's encoder_args can override it.
            args.extend(colour_tags(&self.info).into_iter().map(Into::into));
            args.extend(self.args.iter().map(Into::into));
            // The partial file exists already (made exclusively, see `create`): ffmpeg writes it.
            args.extend(["-y".into(), as_file(&self.partial)]);
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            let mut child = spawn("ffmpeg", &args, Stdio::piped(), &self.target)?;
            self.last_line = LastLine::follow(&mut child);
            let stdin: ChildStdin = child.stdin.take().expect("stdin is piped");
            plugin_host::sys::process::widen_pipe(std::os::fd::AsFd::as_fd(&stdin));
            let name = PathBuf::from(format!("ffmpeg encoding {}", self.target.display()));
            self.encoder = Some((RawSink::y4m_into(Box::new(stdin), name, self.info), child));
        }
        Ok(&mut self.encoder.as_mut().expect("started above").0)
    }

    /// Closes the encoder's input and waits for it; its error, if it failed (then nothing it
    /// wrote counts).
    fn close(&mut self) -> Result<(), MediaError> {
        let Some((sink, mut child)) = self.encoder.take() else {
            return match self.failed {
                true => Err(failed(&self.target, "ffmpeg could not encode it")),
                false => Ok(()),
            };
        };
        let flushed = Box::new(sink).finish();
        let status = child.wait().map_err(|e| failed(&self.target, format!("waiting for ffmpeg: {e}")))?;
        if !status.success() {
            self.failed = true;
            let said = self.last_line.get();
            let said = if said.is_empty() { format!("ffmpeg exited with {status}") } else { said };
            let odd = self.shape.is_some_and(|(w, h)| w % 2 == 1 || h % 2 == 1);
            let hint = match odd && self.args.is_empty() {
                true => {
                    " (the frames have an odd width or height, which the default encoder of 4:2:0 video \
                         refuses: give encoder_args in a config, for example [\"-c:v\", \"ffv1\"], or make the size even)"
                }
                false => "",
            };
            return Err(failed(&self.target, format!("ffmpeg could not encode it: {said}{hint}")));
        }
        flushed
    }
}

/// Whether `input`'s audio can be copied into a file named `.extension`: a trial mux of its
/// first tenth of a second into a scratch file, in a folder of our own that nobody else can
/// have put a link in.
fn audio_fits(input: &Path, extension: &str) -> Result<(), String> {
    let folder = private_folder().map_err(|e| format!("cannot make a scratch folder: {e}"))?;
    let result = trial_mux(input, &folder.join(format!("audio.{extension}")));
    let _ = std::fs::remove_dir_all(&folder);
    result
}

/// A new folder under the temporary directory, readable by us only; created, never reused.
fn private_folder() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for attempt in 0..16u32 {
        let name = format!("plugin-host-{}-{nanos:x}-{attempt}", std::process::id());
        let folder = std::env::temp_dir().join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&folder) {
            Ok(()) => return Ok(folder),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("every name tried was taken"))
}

fn trial_mux(input: &Path, scratch: &Path) -> Result<(), String> {
    let mut args: Vec<std::ffi::OsString> = ["-nostdin", "-v", "error"].map(Into::into).to_vec();
    args.extend(INPUT_LIMITS.map(Into::into));
    args.extend(["-i".into(), as_file(input)]);
    args.extend(["-map", "0:a", "-c", "copy", "-t", "0.1", "-y"].map(Into::into));
    args.push(as_file(scratch));
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let child = spawn("ffmpeg", &args, Stdio::null(), input).map_err(|e| e.to_string())?;
    let output = output_or_stop(child, input).map_err(|e| e.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = said.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // ffmpeg's first line says why ("codec not currently supported in container"); the last
    // one only that it stopped.
    let why = lines.iter().find(|l| l.contains("codec") || l.contains("support")).or(lines.first());
    Err(plugin_host::text::terminal_safe(why.unwrap_or(&"the container refuses it")))
}

impl Sink for VideoSink {
    fn tags_colour(&self) -> bool {
        true
    }
    fn format_for(&self, format: PixelFormat) -> PixelFormat {
        super::y4m::y4m_format(format)
    }
    fn write(&mut self, index: u64, frame: &Frame<'_>) -> Result<(), MediaError> {
        self.shape.get_or_insert((frame.width(), frame.height()));
        let written = self.start()?.write(index, frame);
        // A write that fails because ffmpeg stopped reading: ffmpeg's reason is the news.
        self.failed |= written.is_err();
        written.map_err(|e| match self.close() {
            Err(ffmpeg) => ffmpeg,
            Ok(()) => e,
        })
    }
    fn finish(mut self: Box<Self>) -> Result<(), MediaError> {
        self.close()?;
        if self.shape.is_none() {
            // No frame: no video (ffmpeg would have made an empty, unplayable file).
            return Ok(());
        }
        if self.partial.exists() {
            std::fs::rename(&self.partial, &self.target)
                .map_err(|source| MediaError::Write { path: self.target.clone(), source })?;
        }
        Ok(())
    }
    fn keep_aside(mut self: Box<Self>) -> Result<Option<PathBuf>, MediaError> {
        if std::fs::symlink_metadata(&self.target).is_err() {
            return self.finish().map(|()| None);
        }
        self.close()?;
        match self.shape {
            None => Ok(None),
            Some(_) => Ok(Some(std::mem::take(&mut self.partial))),
        }
    }
}

impl Drop for VideoSink {
    fn drop(&mut self) {
        if let Some((_, mut child)) = self.encoder.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.partial.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
