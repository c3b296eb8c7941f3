//! Raw video, as `ffmpeg -f rawvideo -pix_fmt rgba|gray` reads and writes it: frames of
//! width × height pixels back to back, no header.

use super::{MediaError, Sink, Source, partial_path};
use plugin_sdk::{Frame, OwnedFrame, PixelFormat};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

pub struct RawSource {
    reader: Box<dyn Read + Send>,
    name: String,
    width: u32,
    height: u32,
    format: PixelFormat,
    next: u64,
}

impl RawSource {
    pub fn open(path: &Path, width: u32, height: u32, format: PixelFormat) -> Result<Self, MediaError> {
        let (reader, name): (Box<dyn Read + Send>, String) = if path == Path::new("-") {
            (Box::new(std::io::stdin()), "stdin".into())
        } else {
            if path.is_dir() {
                return Err(MediaError::Output {
                    path: path.to_path_buf(),
                    reason: "is a folder, not a raw video file".into(),
                });
            }
            let file = File::open(path).map_err(|source| MediaError::Read { path: path.to_path_buf(), source })?;
            (Box::new(std::io::BufReader::with_capacity(1 << 20, file)), path.display().to_string())
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
        let need = (self.width * self.height * self.format.bytes_per_pixel()) as usize;
        frame.data.resize(need, 0);
        let mut got = 0;
        while got < need {
            match self.reader.read(&mut frame.data[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => return Err(MediaError::Read { path: PathBuf::from(&self.name), source }),
            }
        }
        if got == 0 {
            return Ok(false);
        }
        if got < need {
            return Err(MediaError::Truncated { source_name: self.name.clone(), frame: self.next + 1, got, need });
        }
        frame.width = self.width;
        frame.height = self.height;
        frame.stride = self.width * self.format.bytes_per_pixel();
        frame.format = self.format;
        frame.timestamp_us = (self.next * 1_000_000 / 30) as i64;
        self.next += 1;
        Ok(true)
    }
}

/// Writes packed frames to stdout, or to `<file>.partial-<pid>` renamed into place at the end.
pub struct RawSink {
    writer: BufWriter<Box<dyn Write>>,
    /// (partial, target) for a file.
    file: Option<(PathBuf, PathBuf)>,
}

impl RawSink {
    pub fn create(path: &Path) -> Result<Self, MediaError> {
        if path == Path::new("-") {
            return Ok(Self { writer: BufWriter::with_capacity(1 << 20, Box::new(std::io::stdout())), file: None });
        }
        if path.is_dir() {
            return Err(MediaError::Output { path: path.to_path_buf(), reason: "is a folder, not a file".into() });
        }
        let partial = partial_path(path);
        let file = File::create(&partial).map_err(|source| MediaError::Write { path: path.to_path_buf(), source })?;
        Ok(Self {
            writer: BufWriter::with_capacity(1 << 20, Box::new(file)),
            file: Some((partial, path.to_path_buf())),
        })
    }

    fn name(&self) -> PathBuf {
        self.file.as_ref().map_or_else(|| PathBuf::from("stdout"), |(_, target)| target.clone())
    }
}

impl Sink for RawSink {
    fn write(&mut self, _index: u64, frame: &Frame<'_>) -> Result<(), MediaError> {
        let result = self.writer.write_all(&frame.packed());
        result.map_err(|source| MediaError::Write { path: self.name(), source })
    }
    fn finish(mut self: Box<Self>) -> Result<(), MediaError> {
        self.writer.flush().map_err(|source| MediaError::Write { path: self.name(), source })?;
        if let Some((partial, target)) = &self.file {
            std::fs::rename(partial, target).map_err(|source| MediaError::Write { path: target.clone(), source })?;
            self.file = None;
        }
        Ok(())
    }
    fn uses_stdout(&self) -> bool {
        self.file.is_none()
    }
}

impl Drop for RawSink {
    fn drop(&mut self) {
        if let Some((partial, _)) = &self.file {
            let _ = std::fs::remove_file(partial);
        }
    }
}
