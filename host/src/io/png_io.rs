//! PNG input (a file, or a folder of files in name order) and output (a folder of
//! `frame-000001.png`, …).

use super::{MediaError, Sink, Source, partial_path};
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Largest PNG side we decode; bigger images are refused before allocating.
const MAX_SIDE: u32 = crate::config::MAX_SIDE;

pub struct PngSource {
    files: Vec<PathBuf>,
    next: usize,
    shape: (u32, u32),
}

impl PngSource {
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let read_err = |source| MediaError::Read { path: path.to_path_buf(), source };
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_err)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(MediaError::EmptyFolder { path: path.to_path_buf() });
            }
            files
        } else {
            File::open(path).map_err(read_err)?;
            vec![path.to_path_buf()]
        };
        // Decode the first one now: the size is needed before the run, and a bad file should
        // be reported before anything starts.
        let first = decode(&files[0])?;
        Ok(Self { files, next: 0, shape: (first.width, first.height) })
    }
}

/// Decodes a PNG into RGBA8 (gray, RGB, palette and 16-bit images are converted).
pub fn decode(path: &Path) -> Result<OwnedFrame, MediaError> {
    let bad = |reason: String| MediaError::BadPng { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|source| MediaError::Read { path: path.to_path_buf(), source })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(bad(format!("{width}x{height} exceeds the largest frame of {MAX_SIDE}x{MAX_SIDE}")));
    }
    let size = reader.output_buffer_size().ok_or_else(|| bad("image too large".into()))?;
    let mut buffer = vec![0; size];
    let info = reader.next_frame(&mut buffer).map_err(|e| bad(e.to_string()))?;
    buffer.truncate(info.buffer_size());
    let pixels: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => buffer,
        png::ColorType::Rgb => buffer.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        png::ColorType::Grayscale => buffer.iter().flat_map(|&v| [v, v, v, 255]).collect(),
        png::ColorType::GrayscaleAlpha => buffer.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        png::ColorType::Indexed => return Err(bad("palette was not expanded".into())),
    };
    OwnedFrame::from_pixels(width, height, PixelFormat::Rgba8, pixels).map_err(|e| bad(e.to_string()))
}

/// Encodes `frame` as PNG (RGBA or gray) at `path`.
pub fn encode(path: &Path, frame: &OwnedFrame) -> Result<(), MediaError> {
    let write_err = |e: std::io::Error| MediaError::Write { path: path.to_path_buf(), source: e };
    let file = File::create(path).map_err(write_err)?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), frame.width, frame.height);
    encoder.set_color(match frame.format {
        PixelFormat::Rgba8 => png::ColorType::Rgba,
        PixelFormat::Gray8 => png::ColorType::Grayscale,
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let to_io = |e: png::EncodingError| std::io::Error::other(e.to_string());
    let mut writer = encoder.write_header().map_err(to_io).map_err(write_err)?;
    writer.write_image_data(&frame.packed()).map_err(to_io).map_err(write_err)?;
    writer.finish().map_err(to_io).map_err(write_err)
}

impl Source for PngSource {
    fn len_hint(&self) -> Option<u64> {
        Some(self.files.len() as u64)
    }
    fn shape(&self) -> (u32, u32, PixelFormat) {
        (self.shape.0, self.shape.1, PixelFormat::Rgba8)
    }
    fn next_into(&mut self, frame: &mut OwnedFrame) -> Result<bool, MediaError> {
        let Some(path) = self.files.get(self.next) else { return Ok(false) };
        let decoded = decode(path)?;
        if (decoded.width, decoded.height) != self.shape {
            return Err(MediaError::SizeChanged {
                path: path.clone(),
                width: decoded.width,
                height: decoded.height,
                first_width: self.shape.0,
                first_height: self.shape.1,
            });
        }
        *frame = OwnedFrame { timestamp_us: (self.next as u64 * 1_000_000 / 30) as i64, ..decoded };
        self.next += 1;
        Ok(true)
    }
}

/// Writes into `<folder>.partial-<pid>` and renames it into place at the end.
pub struct PngSink {
    target: PathBuf,
    partial: PathBuf,
}

impl PngSink {
    pub fn create(target: &Path) -> Result<Self, MediaError> {
        let output = |reason: String| MediaError::Output { path: target.to_path_buf(), reason };
        if target.exists() {
            let foreign = std::fs::read_dir(target)
                .map_err(|e| output(format!("exists and cannot be read: {e}")))?
                .filter_map(Result::ok)
                .any(|e| !e.file_name().to_string_lossy().starts_with("frame-"));
            if foreign {
                return Err(output("exists and holds files other than frame-*.png; refusing to replace it".into()));
            }
        }
        let partial = partial_path(target);
        std::fs::create_dir_all(&partial).map_err(|e| output(format!("cannot create the output folder: {e}")))?;
        Ok(Self { target: target.to_path_buf(), partial })
    }
}

impl Sink for PngSink {
    fn write(&mut self, index: u64, frame: &OwnedFrame) -> Result<(), MediaError> {
        encode(&self.partial.join(format!("frame-{:06}.png", index + 1)), frame)
    }
    fn finish(self: Box<Self>) -> Result<(), MediaError> {
        let output = |reason: String| MediaError::Output { path: self.target.clone(), reason };
        if self.target.exists() {
            std::fs::remove_dir_all(&self.target).map_err(|e| output(format!("cannot replace the old output: {e}")))?;
        }
        std::fs::rename(&self.partial, &self.target)
            .map_err(|e| output(format!("cannot move the output into place: {e}")))
    }
}

impl Drop for PngSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.partial);
    }
}
