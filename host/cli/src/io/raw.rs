//! Raw video, as `ffmpeg -f rawvideo -pix_fmt rgba|gray|yuv420p|…` reads and writes it: frames
//! of width × height pixels back to back, no header; and y4m streams, which are raw frames with
//! a header line and a line before each frame (see [`super::y4m`]).

use super::y4m::{self, Header, Y4mReader};
use super::{DirectRead, FrameShape, MediaError, Sink, Source, StreamInfo, partial_path};
use plugin_sdk::{Frame, OwnedFrame, PixelFormat};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Frames read with plain `read(2)` calls of a frame's size, unbuffered (stdin through a
/// duplicate of its descriptor), so that the pipeline can read them straight into its lanes.
pub struct RawSource {
    reader: File,
    name: String,
    width: u32,
    height: u32,
    format: PixelFormat,
    next: u64,
}

/// Opens `path` (`-`: a duplicate of stdin's descriptor) to read a stream of `what`.
fn open_input(path: &Path, what: &str) -> Result<(File, String), MediaError> {
    if path == Path::new("-") {
        let stdin = std::io::stdin().as_fd().try_clone_to_owned();
        let stdin = stdin.map_err(|source| MediaError::Read { path: PathBuf::from("stdin"), source })?;
        return Ok((File::from(stdin), "stdin".into()));
    }
    if path.is_dir() {
        return Err(MediaError::Output { path: path.to_path_buf(), reason: format!("is a folder, not {what}") });
    }
    // Without waiting for a writer (a FIFO): the reads wait, and a stop request ends them.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .and_then(|file| {
            use nix::fcntl::{FcntlArg, OFlag, fcntl};
            let flags = OFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GETFL)?);
            fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
            Ok(file)
        })
        .map_err(|source| MediaError::Read { path: path.to_path_buf(), source })?;
    Ok((file, path.display().to_string()))
}

/// Opens a device or FIFO to write, waiting for a FIFO's reader in short polls that a stop
/// request (Ctrl-C) ends.
fn open_stream(path: &Path) -> std::io::Result<File> {
    loop {
        match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path) {
            Ok(file) => {
                use nix::fcntl::{FcntlArg, OFlag, fcntl};
                let flags = OFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GETFL)?);
                fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
                return Ok(file);
            }
            // A FIFO with no reader yet.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if plugin_host::sys::signals::stop_requested() {
                    return Err(std::io::Error::other("stopped while waiting for a reader"));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Frames of a y4m stream (a file, or `-` for stdin).
pub struct Y4mSource {
    reader: Y4mReader,
}

impl Y4mSource {
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let (file, name) = open_input(path, "a y4m file")?;
        let length = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        let reader = Y4mReader::new(Box::new(super::StopAware(file)), name.clone())?;
        // A file shorter than its first frame says so before buffers are made for its size.
        let Header { width, height, format, .. } = reader.header;
        if let Some(length) = length
            && length < format.packed_len(width, height)
        {
            let reason =
                format!("{length} bytes cannot hold one {width}x{height} {} frame its header promises", format.name());
            return Err(MediaError::Invalid { name, reason });
        }
        Ok(Self { reader })
    }

    /// Frames from a y4m stream another program writes.
    pub fn from_reader(reader: Box<dyn Read + Send>, name: String) -> Result<Self, MediaError> {
        Ok(Self { reader: Y4mReader::new(reader, name)? })
    }
}

impl Source for Y4mSource {
    fn len_hint(&self) -> Option<u64> {
        None
    }
    fn shape(&self) -> (u32, u32, PixelFormat) {
        let h = &self.reader.header;
        (h.width, h.height, h.format)
    }
    fn info(&self) -> StreamInfo {
        self.reader.header.info
    }
    fn next_into(&mut self, frame: &mut OwnedFrame) -> Result<bool, MediaError> {
        self.reader.next_into(frame)
    }
}

impl RawSource {
    pub fn open(path: &Path, width: u32, height: u32, format: PixelFormat) -> Result<Self, MediaError> {
        let (reader, name) = if path == Path::new("-") {
            open_input(path, "a raw video file")?
        } else {
            let (file, name) = open_input(path, "a raw video file")?;
            let frame = format.packed_len(width, height);
            // A file's length is known before any frame moves; a stream's end is found at the end.
            if let Ok(meta) = file.metadata()
                && meta.is_file()
                && meta.len() % frame != 0
            {
                let (len, format) = (meta.len(), format.name());
                let reason = if len < frame {
                    format!("{len} bytes is shorter than one {width}x{height} {format} frame of {frame} bytes")
                } else {
                    format!(
                        "{len} bytes is not a whole number of {width}x{height} {format} frames of {frame} bytes ({} and \
                         {} bytes over)",
                        len / frame,
                        len % frame
                    )
                };
                return Err(MediaError::Output { path: path.to_path_buf(), reason });
            }
            (file, name)
        };
        Ok(Self { reader, name, width, height, format, next: 0 })
    }
}

impl Source for RawSource {
    fn len_hint(&self) -> Option<u64> {
        None
    }
    fn shape(&self) -> (u32, u32, PixelFormat) {
        (self.width, self.height, self.format)
    }
    fn next_into(&mut self, frame: &mut OwnedFrame) -> Result<bool, MediaError> {
        let need = self.frame_bytes();
        frame.data.resize(need, 0);
        let got = super::read_full(&mut super::StopAware(&mut self.reader), &mut frame.data)
            .map_err(|source| MediaError::Read { path: PathBuf::from(&self.name), source })?;
        let Some(shape) = self.frame_read(got)? else { return Ok(false) };
        (frame.width, frame.height, frame.stride, frame.format) =
            (shape.width, shape.height, shape.stride, shape.format);
        frame.timestamp_us = shape.timestamp_us;
        Ok(true)
    }

    fn next_direct(&mut self, read: &mut DirectRead<'_>) -> Option<Result<Option<FrameShape>, MediaError>> {
        let got = read(self.reader.as_fd(), self.frame_bytes());
        Some(
            got.map_err(|source| MediaError::Read { path: PathBuf::from(&self.name), source })
                .and_then(|got| self.frame_read(got)),
        )
    }
}

impl RawSource {
    fn frame_bytes(&self) -> usize {
        self.format.packed_len(self.width, self.height) as usize
    }

    /// After reading `got` bytes of the next frame: its shape, `None` at the end, or an error
    /// for a frame cut short.
    fn frame_read(&mut self, got: usize) -> Result<Option<FrameShape>, MediaError> {
        let need = self.frame_bytes();
        if got == 0 {
            return Ok(None);
        }
        if got < need {
            return Err(MediaError::Truncated { source_name: self.name.clone(), frame: self.next + 1, got, need });
        }
        let shape = FrameShape {
            width: self.width,
            height: self.height,
            stride: self.format.row_bytes(self.width) as u32,
            format: self.format,
            timestamp_us: (self.next * 1_000_000 / 30) as i64,
        };
        self.next += 1;
        Ok(Some(shape))
    }
}

/// Writes packed frames to stdout, or to `<file>.partial-<pid>` renamed into place at the end.
/// An output that exists and is not a regular file (`/dev/null`, a FIFO, a socket) is a stream,
/// written in place: renaming over it would replace the device or pipe with a plain file.
pub struct RawSink {
    writer: BufWriter<Box<dyn Write + Send>>,
    destination: Destination,
    /// For a file: a handle to cut it back to `complete` bytes after a failed write.
    file: Option<File>,
    /// Bytes of the frames written whole (each is flushed before it counts).
    complete: u64,
    /// A write failed: the file may end in part of a frame, and the buffer hold another part.
    failed: bool,
    /// The format frames are written in: the config's, or what a file named `.rgba` or
    /// `.gray` promises its reader; `None`: as they come.
    promised: Option<PixelFormat>,
    /// For a y4m stream: its rate and colour, and whether the header is written.
    y4m: Option<(StreamInfo, bool)>,
    /// The first frame's shape: every frame of a stream has it.
    shape: Option<plugin_sdk::Shape>,
}

enum Destination {
    Stdout,
    /// An existing device, FIFO or socket, written in place.
    Stream(PathBuf),
    /// A regular file: written as `partial`, renamed to `target` by `finish`; `None` once done.
    File(Option<(PathBuf, PathBuf)>),
}

impl RawSink {
    /// Raw frames in `format` (by default, what a `.rgba` or `.gray` name promises, else as
    /// the chain gives them).
    pub fn create(path: &Path, format: Option<PixelFormat>) -> Result<Self, MediaError> {
        let promised = format.or(match path.extension().and_then(|e| e.to_str()) {
            Some("rgba") => Some(PixelFormat::Rgba8),
            Some("gray") => Some(PixelFormat::Gray8),
            _ => None,
        });
        Self::open(path, promised, None)
    }

    /// A y4m stream of the chain's frames.
    pub fn create_y4m(path: &Path, info: StreamInfo) -> Result<Self, MediaError> {
        Self::open(path, None, Some((info, false)))
    }

    /// A y4m stream into a program's input (ffmpeg encoding it).
    pub fn y4m_into(writer: Box<dyn Write + Send>, name: PathBuf, info: StreamInfo) -> Self {
        let writer = BufWriter::with_capacity(1 << 20, writer);
        let (destination, y4m) = (Destination::Stream(name), Some((info, false)));
        Self { writer, destination, file: None, complete: 0, failed: false, promised: None, y4m, shape: None }
    }

    fn open(path: &Path, promised: Option<PixelFormat>, y4m: Option<(StreamInfo, bool)>) -> Result<Self, MediaError> {
        let buffered = |writer: Box<dyn Write + Send>| BufWriter::with_capacity(1 << 20, writer);
        let sink = |writer, destination, file| Self {
            writer,
            destination,
            file,
            complete: 0,
            failed: false,
            promised,
            y4m,
            shape: None,
        };
        if path == Path::new("-") {
            // Frames are bytes a plugin chose: on a terminal they would be escape sequences.
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(MediaError::Output {
                    path: PathBuf::from("stdout"),
                    reason: "is a terminal; raw frames go to a file or a program (`| ffmpeg -f rawvideo …`)".into(),
                });
            }
            return Ok(sink(buffered(Box::new(std::io::stdout())), Destination::Stdout, None));
        }
        let write_err = |source| MediaError::Write { path: path.to_path_buf(), source };
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(MediaError::Output { path: path.to_path_buf(), reason: "is a folder, not a file".into() });
            }
            Ok(meta) if !meta.is_file() => {
                let stream = open_stream(path).map_err(write_err)?;
                return Ok(sink(buffered(Box::new(stream)), Destination::Stream(path.into()), None));
            }
            _ => {}
        }
        let partial = partial_path(path);
        let file = super::create_partial(&partial).map_err(write_err)?;
        let handle = file.try_clone().map_err(write_err)?;
        Ok(sink(buffered(Box::new(file)), Destination::File(Some((partial, path.into()))), Some(handle)))
    }

    /// After a failed write: forgets what the buffer still holds and cuts the file back to the
    /// frames written whole (which frees space, so it works on a full disk too).
    fn keep_whole_frames(&mut self) -> std::io::Result<()> {
        if !self.failed {
            return self.writer.flush();
        }
        let discarded = std::mem::replace(&mut self.writer, BufWriter::new(Box::new(std::io::sink())));
        drop(discarded.into_parts());
        match &self.file {
            Some(file) => file.set_len(self.complete),
            None => Ok(()),
        }
    }

    fn name(&self) -> PathBuf {
        match &self.destination {
            Destination::Stdout => PathBuf::from("stdout"),
            Destination::Stream(path) | Destination::File(Some((_, path))) => path.clone(),
            Destination::File(None) => PathBuf::new(),
        }
    }
}

impl Sink for RawSink {
    fn format_for(&self, format: PixelFormat) -> PixelFormat {
        match self.y4m {
            Some(_) => y4m::y4m_format(format),
            None => self.promised.unwrap_or(format),
        }
    }
    fn write(&mut self, index: u64, frame: &Frame<'_>) -> Result<(), MediaError> {
        let first = *self.shape.get_or_insert(frame.shape());
        if frame.shape() != first {
            let reason = format!("it is {}, but the stream's frames are {first}", frame.shape());
            return Err(MediaError::Frame { frame: index + 1, reason });
        }
        let mut header = String::new();
        if let Some((info, written)) = &mut self.y4m
            && !*written
        {
            header = y4m::header_line(frame.width(), frame.height(), frame.format(), info);
            *written = true;
        }
        let packed = frame.packed();
        let framing: &[u8] = if self.y4m.is_some() { b"FRAME\n" } else { b"" };
        // Flushed frame by frame, so that a frame counts only once it is in the file whole.
        let result = (self.writer.write_all(header.as_bytes()))
            .and_then(|()| self.writer.write_all(framing))
            .and_then(|()| self.writer.write_all(&packed))
            .and_then(|()| self.writer.flush());
        match result {
            Ok(()) => self.complete += (header.len() + framing.len() + packed.len()) as u64,
            Err(_) => self.failed = true,
        }
        result.map_err(|source| MediaError::Write { path: self.name(), source })
    }
    fn finish(mut self: Box<Self>) -> Result<(), MediaError> {
        self.keep_whole_frames().map_err(|source| MediaError::Write { path: self.name(), source })?;
        if let Destination::File(Some((partial, target))) = &self.destination {
            std::fs::rename(partial, target).map_err(|source| MediaError::Write { path: target.clone(), source })?;
            self.destination = Destination::File(None);
        }
        Ok(())
    }
    fn keep_aside(mut self: Box<Self>) -> Result<Option<PathBuf>, MediaError> {
        let Destination::File(Some((partial, target))) = &self.destination else { return self.finish().map(|()| None) };
        if std::fs::symlink_metadata(target).is_err() {
            return self.finish().map(|()| None);
        }
        let partial = partial.clone();
        self.keep_whole_frames().map_err(|source| MediaError::Write { path: partial.clone(), source })?;
        self.destination = Destination::File(None);
        Ok(Some(partial))
    }
    fn uses_stdout(&self) -> bool {
        matches!(self.destination, Destination::Stdout)
    }
}

impl Drop for RawSink {
    fn drop(&mut self) {
        if let Destination::File(Some((partial, _))) = &self.destination {
            let _ = std::fs::remove_file(partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn an_existing_fifo_is_written_in_place_and_stays_a_fifo() {
        let dir = std::env::temp_dir().join(format!("plugin-host-raw-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("out.rgba");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let frame = OwnedFrame::from_pixels(2, 1, PixelFormat::Rgba8, vec![1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let mut sink = Box::new(RawSink::create(&fifo, None).unwrap());
        assert!(!sink.uses_stdout());
        sink.write(0, &frame.view()).unwrap();
        sink.write(1, &frame.view()).unwrap();
        sink.finish().unwrap();

        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced by a file");
        assert_eq!(reader.join().unwrap(), [frame.data.clone(), frame.data].concat());
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries, ["out.rgba"], "no partial file is left beside it");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
