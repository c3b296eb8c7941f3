//! Frame sources and sinks: the built-in test pattern, PNG files, raw video (ffmpeg's
//! `rawvideo`), y4m, video files (through ffmpeg), and the null sink. Sinks write to a temporary name and only put the result in
//! place when the run ends, so an aborted run never leaves output that looks complete; a failed
//! run never replaces an output that was already there.

pub mod png_io;
mod raw;
mod testsrc;
mod video;
pub mod y4m;

use crate::config::{InputConfig, OutputConfig};
use plugin_sdk::convert::{Colour, Matrix, Range};
use plugin_sdk::{Frame, OwnedFrame, PixelFormat};
use std::path::PathBuf;

pub use testsrc::test_pattern;

/// A media problem: which file or frame, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{}: not a PNG file we can decode: {reason}", path.display())]
    BadPng { path: PathBuf, reason: String },
    #[error("{}: {width}x{height}, but the first frame was {first_width}x{first_height}; all frames must have one size", path.display())]
    SizeChanged { path: PathBuf, width: u32, height: u32, first_width: u32, first_height: u32 },
    #[error("{}: no PNG files in the folder", path.display())]
    EmptyFolder { path: PathBuf },
    #[error(
        "raw input {source_name} ends inside frame {frame}: {got} of {need} bytes (are the size and format those of the frames?)"
    )]
    Truncated { source_name: String, frame: u64, got: usize, need: usize },
    #[error("{}: {reason}", path.display())]
    Output { path: PathBuf, reason: String },
    #[error("frame {frame} cannot be written: {reason}")]
    Frame { frame: u64, reason: String },
    #[error("{name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// What a stream's frames share: their rate, and how their Y'CbCr relates to RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// Frames per second as a ratio (`30000:1001`).
    pub rate: (u32, u32),
    pub colour: Colour,
    /// Colour primaries and transfer, as [`plugin_sdk::FrameMeta`] codes (0: unknown).
    pub primaries: u8,
    pub transfer: u8,
}

impl StreamInfo {
    /// A stream at `rate` whose frames are `height` rows, colour as [`StreamInfo::guess_colour`].
    pub fn new(rate: (u32, u32), height: u32) -> Self {
        Self { rate, colour: Self::guess_colour(height), primaries: 0, transfer: 0 }
    }

    /// For video that does not say: BT.601 below 720 rows, BT.709 from 720 up, limited range
    /// (what players such as mpv and browsers assume).
    pub fn guess_colour(height: u32) -> Colour {
        let matrix = if height < 720 { Matrix::Bt601 } else { Matrix::Bt709 };
        Colour { matrix, range: Range::Limited }
    }

    /// The metadata frame `n` (0-based) starts with: its time in units of one frame
    /// (`time_base` = 1 / rate), and the stream's colour.
    pub fn frame_meta(&self, n: u64) -> plugin_sdk::FrameMeta {
        let (num, den) = self.rate;
        plugin_sdk::FrameMeta {
            pts: n.min(i64::MAX as u64) as i64,
            time_base: (den, num),
            duration: 1,
            frame_rate: (num, den),
            matrix: self.colour.matrix.code(),
            range: self.colour.range.code(),
            primaries: self.primaries,
            transfer: self.transfer,
            ..Default::default()
        }
    }

    /// Presentation time of frame `n` (0-based), in microseconds.
    pub fn timestamp_us(&self, n: u64) -> i64 {
        let (num, den) = (self.rate.0.max(1) as u128, self.rate.1 as u128);
        (n as u128 * 1_000_000 * den / num).min(i64::MAX as u128) as i64
    }
}

/// Produces frames in order; `None` at the end.
pub trait Source: Send {
    /// Frames this source will produce, when known.
    fn len_hint(&self) -> Option<u64>;
    /// Width, height and format of the frames.
    fn shape(&self) -> (u32, u32, plugin_sdk::PixelFormat);
    /// The codec of the input's audio, for a video file that has some (its output may copy it).
    fn audio_codec(&self) -> Option<String> {
        None
    }
    /// Their rate and colour: 30 frames/s and [`StreamInfo::guess_colour`] unless the source says.
    fn info(&self) -> StreamInfo {
        StreamInfo::new((30, 1), self.shape().1)
    }
    /// Fills `frame` with the next frame; false at the end.
    fn next_into(&mut self, frame: &mut OwnedFrame) -> Result<bool, MediaError>;
    /// For a source that reads frames as they are from a descriptor: reads the next one with
    /// `read` (given the descriptor and the frame's byte count, it reads straight into the frame's
    /// lane and returns the bytes read) and returns its shape, or `None` at the end. `None` from
    /// this method itself: the source cannot, use [`Source::next_into`].
    fn next_direct(&mut self, _read: &mut DirectRead<'_>) -> Option<Result<Option<FrameShape>, MediaError>> {
        None
    }
}

/// Reads `len` bytes from a descriptor to where a frame goes; returns how many it read.
pub type DirectRead<'a> = dyn FnMut(std::os::fd::BorrowedFd<'_>, usize) -> std::io::Result<usize> + 'a;

/// A frame's shape and time, without its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub format: plugin_sdk::PixelFormat,
    pub timestamp_us: i64,
}

impl FrameShape {
    pub fn of(frame: &OwnedFrame) -> Self {
        FrameShape {
            width: frame.width,
            height: frame.height,
            stride: frame.stride,
            format: frame.format,
            timestamp_us: frame.timestamp_us,
        }
    }
}

/// Consumes frames in order.
pub trait Sink: Send {
    /// Writes the frame that was frame `index` (0-based) of the input.
    fn write(&mut self, index: u64, frame: &Frame<'_>) -> Result<(), MediaError>;
    /// Puts the output in place. Not called when the run fails before its first frame.
    fn finish(self: Box<Self>) -> Result<(), MediaError>;
    /// After a failed run: where an output already exists, leaves it as it was and keeps what
    /// this run wrote under its temporary name, which it returns; otherwise as [`Sink::finish`].
    fn keep_aside(self: Box<Self>) -> Result<Option<PathBuf>, MediaError> {
        self.finish().map(|()| None)
    }
    /// Whether the sink writes to stdout (so nothing else may).
    fn uses_stdout(&self) -> bool {
        false
    }
    /// Whether the sink throws frames away unread (then the pipeline does not copy them out).
    fn discards(&self) -> bool {
        false
    }
    /// Whether the output says which Y'CbCr matrix its frames use (a tagged video file); when it
    /// does not, frames converted for it use the matrix a reader will assume for their size.
    fn tags_colour(&self) -> bool {
        false
    }
    /// The format the sink writes frames of `format` in: the pipeline converts those that
    /// differ before [`Sink::write`].
    fn format_for(&self, format: PixelFormat) -> PixelFormat {
        format
    }
}

/// Opens the configured input, checking that it is readable.
pub fn open_source(input: &InputConfig) -> Result<Box<dyn Source>, MediaError> {
    Ok(match input {
        InputConfig::Testsrc { width, height, frames } => Box::new(testsrc::TestSource::new(*width, *height, *frames)),
        InputConfig::Png { path } => Box::new(png_io::PngSource::open(path)?),
        InputConfig::Raw { path, width, height, format } => {
            Box::new(raw::RawSource::open(path, *width, *height, format.pixel_format())?)
        }
        InputConfig::Y4m { path } => Box::new(raw::Y4mSource::open(path)?),
        InputConfig::Video { path, decoder_args } => Box::new(video::VideoSource::open(path, decoder_args)?),
    })
}

/// Prepares the configured output, checking that it is writable; nothing appears at the
/// output path until [`Sink::finish`].
/// `audio`: the input video file and its audio codec, when it has audio a video output may copy.
pub fn open_sink(
    output: &OutputConfig,
    info: &StreamInfo,
    audio: Option<(&std::path::Path, &str)>,
) -> Result<Box<dyn Sink>, MediaError> {
    Ok(match output {
        OutputConfig::Png { path } => Box::new(png_io::PngSink::create(path)?),
        OutputConfig::Raw { path, format } => Box::new(raw::RawSink::create(path, format.map(|f| f.pixel_format()))?),
        OutputConfig::Y4m { path } => Box::new(raw::RawSink::create_y4m(path, *info)?),
        OutputConfig::Video { path, encoder_args } => {
            Box::new(video::VideoSink::create(path, *info, audio, encoder_args)?)
        }
        OutputConfig::Null => Box::new(NullSink),
    })
}

struct NullSink;

impl Sink for NullSink {
    fn write(&mut self, _index: u64, _frame: &Frame<'_>) -> Result<(), MediaError> {
        Ok(())
    }
    fn discards(&self) -> bool {
        true
    }
    fn finish(self: Box<Self>) -> Result<(), MediaError> {
        Ok(())
    }
}

/// A reader of a descriptor (stdin, a FIFO, a child's output) that waits for data in short
/// polls, so that a stop request (Ctrl-C, SIGTERM) ends a read that would otherwise wait for a
/// writer forever: it then fails with "stopped".
pub struct StopAware<R>(pub R);

impl<R: std::io::Read + std::os::fd::AsFd> std::io::Read for StopAware<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        loop {
            if plugin_host::sys::signals::stop_requested() {
                return Err(std::io::Error::other("stopped"));
            }
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(errno) => return Err(errno.into()),
            }
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                result => return result,
            }
        }
    }
}

/// Creates a work-in-progress file as a new file of our own: whatever is at its name (a link
/// someone planted to make us write elsewhere, or a leftover) is removed first, never followed.
fn create_partial(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let create = || std::fs::OpenOptions::new().write(true).create_new(true).open(path);
    match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            create()
        }
        result => result,
    }
}

/// Reads until `buffer` is full or the input ends; how many bytes it read.
fn read_full(reader: &mut impl std::io::Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buffer.len() {
        match reader.read(&mut buffer[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A sibling path for work in progress: `<name>.partial-<pid>`.
fn partial_path(path: &std::path::Path) -> PathBuf {
    for leftover in leftover_partials(path) {
        let remove = if leftover.is_dir() { "rm -r" } else { "rm" };
        tracing::warn!(
            "{} was left by an earlier run that did not finish (its process is gone); remove it with: {remove} {}",
            leftover.display(),
            leftover.display()
        );
    }
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}

/// `<path>.partial-PID` files or folders beside `path` whose process no longer runs.
fn leftover_partials(path: &std::path::Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return Vec::new() };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let prefix = format!("{name}.partial-");
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            let rest = file.strip_prefix(&prefix)?;
            // A video's partial keeps its extension after the pid (`out.mkv.partial-7.mkv`).
            let rest = match path.extension().and_then(|e| e.to_str()) {
                Some(ext) => rest.strip_suffix(&format!(".{ext}")).unwrap_or(rest),
                None => rest,
            };
            let pid: u32 = rest.parse().ok()?;
            let gone = pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists();
            gone.then(|| path.with_file_name(file))
        })
        .collect();
    found.sort();
    found
}
