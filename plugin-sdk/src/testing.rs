//! Test plugins natively, without wasm or a host (native targets only): run a [`Plugin`] under
//! `cargo test`, make frames ([`solid`], [`gradient`], [`noise`], [`read_png`]), and compare
//! against an expected frame or PNG with a tolerance ([`compare`], [`check_png`], [`assert_png`]).
//! On a mismatch the report names the first differing pixel, the largest difference and the PSNR,
//! and the actual output and a diff image are written beside the expected file.
//!
//! `plugin-host test` uses the same comparison and report for the real module in its real process.
//!
//! ```no_run
//! use plugin_sdk::{PixelFormat, testing};
//! # struct Dim;
//! # impl plugin_sdk::Plugin for Dim {
//! #     fn new(_: &plugin_sdk::Params) -> Result<Self, plugin_sdk::PluginError> { Ok(Dim) }
//! #     fn process(&mut self, i: &plugin_sdk::Frame, o: &mut plugin_sdk::FrameMut) -> Result<(), plugin_sdk::PluginError> { o.copy_from(i) }
//! # }
//! let input = testing::gradient(64, 48, PixelFormat::Rgba8);
//! let output = testing::run::<Dim>(&[], &input).unwrap();
//! testing::assert_png(&output, std::path::Path::new("tests/golden/gradient.expected.png"), 0);
//! ```

use crate::abi::ParamValue;
use crate::{OwnedFrame, Params, PixelFormat, Plugin, PluginError};
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Creates `P` with `params` (the rest default) and processes `input` once, as the host would:
/// the output starts with the input's shape and has room for an RGBA frame of the input's size.
pub fn run<P: Plugin>(params: &[(&str, ParamValue)], input: &OwnedFrame) -> Result<OwnedFrame, PluginError> {
    let mut plugin = P::new(&params_for::<P>(params))?;
    process(&mut plugin, input)
}

/// Creates `P` with `params` and processes one frame of each of its inputs, as the host would
/// for a plugin with several ([`Plugin::inputs`]): the output starts with the first input's
/// shape and metadata, and has room for an RGBA frame of the largest of the inputs and the
/// shape [`Plugin::output_shape_many`] declares, which the output must have.
pub fn run_many<P: Plugin>(params: &[(&str, ParamValue)], inputs: &[&OwnedFrame]) -> Result<OwnedFrame, PluginError> {
    let plugin = &mut P::new(&params_for::<P>(params))?;
    process_frames(plugin, inputs, true)
}

/// The [`Params`] `P` would receive for `params`, defaults filled in.
pub fn params_for<P: Plugin>(params: &[(&str, ParamValue)]) -> Params {
    let given: Vec<(String, ParamValue)> = params.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
    Params::resolve(&P::params(), &given)
}

/// Processes `input` with an existing instance.
pub fn process<P: Plugin>(plugin: &mut P, input: &OwnedFrame) -> Result<OwnedFrame, PluginError> {
    process_frames(plugin, &[input], false)
}

/// One call of `process` (or, `many`, of `process_many` with every input), as the host makes
/// it: formats checked, the output starting with the first input's shape and metadata, room for
/// an RGBA frame of the largest of the inputs and the declared output, and the output refused
/// unless it has the declared shape.
fn process_frames<P: Plugin>(plugin: &mut P, inputs: &[&OwnedFrame], many: bool) -> Result<OwnedFrame, PluginError> {
    let Some(first) = inputs.first().filter(|_| !many || inputs.len() == P::inputs().len()) else {
        return Err(crate::wrong_input_count::<P>(inputs.len()));
    };
    for input in inputs {
        crate::check_accepts::<P>(input.format)?;
    }
    let shapes: Vec<crate::Shape> = inputs.iter().map(|f| f.shape()).collect();
    let declared = match many {
        true => plugin.output_shape_many(&shapes)?,
        false => plugin.output_shape(shapes[0])?,
    };
    let rgba = |s: &crate::Shape| s.width as usize * s.height as usize * 4;
    let capacity = shapes.iter().chain([&declared]).map(rgba).chain([first.data.len()]).max().unwrap_or(0);
    let mut buffer = vec![0u8; capacity];
    let mut meta = first.meta.clone();
    let mut output =
        crate::FrameMut::new(&mut buffer, first.width, first.height, first.stride, first.format, first.timestamp_us)?
            .with_metadata(&mut meta);
    match many {
        true => plugin.process_many(&inputs.iter().map(|f| f.view()).collect::<Vec<_>>(), &mut output)?,
        false => plugin.process(&first.view(), &mut output)?,
    }
    let made = crate::Shape::new(output.width(), output.height(), output.format());
    if made != declared {
        let of: Vec<String> = shapes.iter().map(|s| s.to_string()).collect();
        return Err(PluginError::new(format!(
            "the plugin declares {declared} output for {} frames, but made {made}",
            of.join(" and ")
        )));
    }
    Ok(OwnedFrame::from_view(&output))
}

/// Processes `input` as the host does with `bands` workers: one instance of `P` per band (each
/// created with `params`), each writing its band's rows ([`crate::abi::band_rows`]) of one
/// shared output. Every band sees the input's metadata, and its output's starts as the input's;
/// as in the host, the band at row 0 speaks for the frame: the result has the metadata that band
/// left. For a plugin that declares [`Plugin::band_context`], the result must equal [`run`]'s
/// for every `bands`: test that it does.
pub fn run_in_bands<P: Plugin>(
    params: &[(&str, ParamValue)],
    input: &OwnedFrame,
    bands: u32,
) -> Result<OwnedFrame, PluginError> {
    crate::check_accepts::<P>(input.format)?;
    let capacity = input.data.len().max(input.width as usize * input.height as usize * 4);
    let mut buffer = vec![0u8; capacity];
    let (mut shape, mut frame_meta) = (None, None);
    for band in 0..bands.max(1) {
        let mut plugin = P::new(&params_for::<P>(params))?;
        if plugin.band_context().is_none() {
            return Err(PluginError::new("this plugin does not declare a band context"));
        }
        let rows = crate::abi::band_rows(input.height, band, bands.max(1));
        let mut meta = input.meta.clone();
        let mut output = crate::FrameMut::new(
            &mut buffer,
            input.width,
            input.height,
            input.stride,
            input.format,
            input.timestamp_us,
        )?
        .with_metadata(&mut meta);
        // The host gives no work to an empty band (a frame shorter than twice the bands).
        let speaks = rows.start == 0 && !rows.is_empty();
        plugin.process_rows(&input.view(), &mut output, rows)?;
        let this = (output.width(), output.height(), output.stride(), output.format());
        if shape.is_some_and(|s| s != this) || this.1 != input.height {
            return Err(PluginError::new("the bands gave the output different shapes"));
        }
        shape = Some(this);
        if speaks {
            frame_meta = Some(meta);
        }
    }
    let (width, height, stride, format) = shape.expect("at least one band");
    let mut meta = frame_meta.unwrap_or_else(|| input.meta.clone());
    let output =
        crate::FrameMut::new(&mut buffer, width, height, stride, format, input.timestamp_us)?.with_metadata(&mut meta);
    Ok(OwnedFrame::from_view(&output))
}

/// Asserts that `P` gives the same bytes on `input` in 2, 3, 4 and 7 bands as in one call.
pub fn assert_bands_match<P: Plugin>(params: &[(&str, ParamValue)], input: &OwnedFrame) {
    let whole = run::<P>(params, input).expect("the whole frame is processed");
    for bands in [2, 3, 4, 7] {
        let banded = run_in_bands::<P>(params, input, bands).expect("every band is processed");
        assert!(
            (banded.width, banded.height, banded.format) == (whole.width, whole.height, whole.format)
                && banded.packed() == whole.packed(),
            "{bands} bands of a {}x{} frame differ from the whole frame",
            input.width,
            input.height
        );
    }
}

/// A frame whose every byte, stride padding included, comes from a fixed pseudo-random sequence
/// (xorshift from `seed`): input for tests that compare against a reference.
pub fn noise(width: u32, height: u32, stride: u32, format: crate::PixelFormat, seed: u32) -> OwnedFrame {
    let mut frame = OwnedFrame::with_stride(width, height, stride, format);
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for byte in &mut frame.data {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *byte = (state >> 24) as u8;
    }
    frame
}

/// Largest PNG side [`read_png`] decodes; bigger images are refused before allocating.
pub const MAX_PNG_SIDE: u32 = 16384;

/// A frame of one colour: `pixel` is RGBA (for [`PixelFormat::Gray8`] its first byte is used;
/// for the Y'CbCr formats it is converted, BT.709 limited range).
pub fn solid(width: u32, height: u32, format: PixelFormat, pixel: [u8; 4]) -> OwnedFrame {
    match format {
        PixelFormat::Rgba8 | PixelFormat::Gray8 => {
            let bpp = format.bytes_per_pixel() as usize;
            let data = pixel[..bpp].repeat(width as usize * height as usize);
            OwnedFrame { data, ..OwnedFrame::new(width, height, format) }
        }
        _ => to_format(&solid(width, height, PixelFormat::Rgba8, pixel), format),
    }
}

/// A smooth test picture: red grows left to right, green top to bottom, blue along the diagonal,
/// alpha opaque; in gray, the mean of red and green; in Y'CbCr, the RGBA picture converted
/// (BT.709 limited range). Every value is exact integer arithmetic, so the same call makes the
/// same frame everywhere.
pub fn gradient(width: u32, height: u32, format: PixelFormat) -> OwnedFrame {
    let ramp = |v: u32, n: u32| if n <= 1 { 0 } else { (v * 255 / (n - 1)) as u8 };
    if format.is_yuv() {
        return to_format(&gradient(width, height, PixelFormat::Rgba8), format);
    }
    let mut frame = OwnedFrame::new(width, height, format);
    let bpp = format.bytes_per_pixel() as usize;
    for y in 0..height {
        for x in 0..width {
            let (r, g, b) = (ramp(x, width), ramp(y, height), ramp(x + y, width + height - 1));
            let at = (y as usize * width as usize + x as usize) * bpp;
            match format {
                PixelFormat::Gray8 => frame.data[at] = ((r as u16 + g as u16) / 2) as u8,
                _ => frame.data[at..at + 4].copy_from_slice(&[r, g, b, 255]),
            }
        }
    }
    frame
}

/// The frame in `format` by [`crate::convert`] (BT.709 limited range for Y'CbCr), rows packed.
pub fn to_format(frame: &OwnedFrame, format: PixelFormat) -> OwnedFrame {
    let mut out = OwnedFrame::new(frame.width, frame.height, format);
    out.timestamp_us = frame.timestamp_us;
    crate::convert::convert(&frame.view(), &mut out.view_mut(), format, Default::default())
        .expect("a packed frame of the input's size holds the converted frame");
    out
}

/// The frame in `format` by [`crate::convert`] with `colour`, rows packed; a Y'CbCr result's
/// metadata says its matrix and range, as a host's source would.
pub fn to_format_in(frame: &OwnedFrame, format: PixelFormat, colour: crate::convert::Colour) -> OwnedFrame {
    let mut out = OwnedFrame::new(frame.width, frame.height, format);
    out.timestamp_us = frame.timestamp_us;
    crate::convert::convert(&frame.view(), &mut out.view_mut(), format, colour)
        .expect("a packed frame of the input's size holds the converted frame");
    if format.is_yuv() {
        (out.meta.matrix, out.meta.range) = (colour.matrix.code(), colour.range.code());
    }
    out
}

/// The frame as RGBA (gray `v` becomes `v, v, v, 255`; Y'CbCr as [`to_format`]), rows packed.
pub fn to_rgba(frame: &OwnedFrame) -> OwnedFrame {
    to_format(frame, PixelFormat::Rgba8)
}

fn rgba_frame(width: u32, height: u32, pixels: Vec<u8>) -> OwnedFrame {
    let mut frame = OwnedFrame::new(width, height, PixelFormat::Rgba8);
    frame.data = pixels;
    frame
}

/// Why an image could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is not a usable PNG: {reason}", path.display())]
    BadPng { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// Reads a PNG: gray images become [`PixelFormat::Gray8`] frames, everything else (RGB, RGBA,
/// gray with alpha, palette, 16-bit) [`PixelFormat::Rgba8`].
pub fn read_png(path: &Path) -> Result<OwnedFrame, ImageError> {
    read_png_within(path, MAX_PNG_SIDE)
}

/// [`read_png`] for images of at most `max_side` pixels a side, refused from the header, before
/// any pixel is decoded.
pub fn read_png_within(path: &Path, max_side: u32) -> Result<OwnedFrame, ImageError> {
    let bad = |reason: String| ImageError::BadPng { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|source| ImageError::Read { path: path.to_path_buf(), source })?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width > max_side || height > max_side {
        return Err(bad(format!("{width}x{height} is larger than {max_side}x{max_side}")));
    }
    let size = reader.output_buffer_size().ok_or_else(|| bad("the image is too large".into()))?;
    let mut buffer = vec![0; size];
    let info = reader.next_frame(&mut buffer).map_err(|e| bad(e.to_string()))?;
    buffer.truncate(info.buffer_size());
    let (format, pixels) = match info.color_type {
        png::ColorType::Grayscale => (PixelFormat::Gray8, buffer),
        png::ColorType::Rgba => (PixelFormat::Rgba8, buffer),
        png::ColorType::Rgb => {
            (PixelFormat::Rgba8, buffer.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect())
        }
        png::ColorType::GrayscaleAlpha => {
            (PixelFormat::Rgba8, buffer.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect())
        }
        png::ColorType::Indexed => return Err(bad("its palette was not expanded".into())),
    };
    OwnedFrame::from_pixels(width, height, format, pixels).map_err(|e| bad(e.to_string()))
}

/// Writes `frame` as a PNG (RGBA or gray). The file appears whole or not at all: it is written
/// under a temporary name beside `path` and then renamed.
pub fn write_png(path: &Path, frame: &OwnedFrame) -> Result<(), ImageError> {
    let write_err = |source: std::io::Error| ImageError::Write { path: path.to_path_buf(), source };
    let name = path.file_name().ok_or_else(|| write_err(std::io::Error::other("the path names no file")))?;
    let mut partial_name = name.to_os_string();
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = path.with_file_name(partial_name);
    let result = encode_png(&partial, &frame.view()).and_then(|()| std::fs::rename(&partial, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map_err(write_err)
}

/// Encodes `frame` as a PNG (RGBA or gray; Y'CbCr as RGBA, BT.709 limited range) at `path`, written in place (see [`write_png`] for a
/// file that appears whole or not at all).
pub fn encode_png(path: &Path, frame: &crate::Frame<'_>) -> std::io::Result<()> {
    if frame.format().is_yuv() {
        let mut rgba = OwnedFrame::new(frame.width(), frame.height(), PixelFormat::Rgba8);
        crate::convert::convert(frame, &mut rgba.view_mut(), PixelFormat::Rgba8, Default::default())
            .map_err(|e| std::io::Error::other(e.0))?;
        return encode_png(path, &rgba.view());
    }
    let to_io = |e: png::EncodingError| std::io::Error::other(e.to_string());
    // Encoded in memory, then written with one call that reports every error: a buffered
    // writer dropped at the end would swallow the last one (a full disk), leaving a cut file.
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, frame.width(), frame.height());
    encoder.set_color(match frame.format() {
        PixelFormat::Gray8 => png::ColorType::Grayscale,
        _ => png::ColorType::Rgba,
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(to_io)?;
    writer.write_image_data(&frame.packed()).map_err(to_io)?;
    writer.finish().map_err(to_io)?;
    std::fs::write(path, &encoded)
}

/// The first pixel whose difference exceeds the tolerance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelDiff {
    pub x: u32,
    pub y: u32,
    /// The pixel's channels in the expected and the actual frame.
    pub expected: Vec<u8>,
    pub actual: Vec<u8>,
}

/// How an actual frame compares to an expected one. Frames of different formats are compared
/// as RGBA; frames of different sizes are not compared pixel by pixel. In a Y'CbCr frame a
/// "pixel" is a position in one plane (luma positions first, then chroma), and `first_difference`
/// gives its place in that plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Largest per-channel difference allowed.
    pub tolerance: u8,
    /// `Some("expected 64x48, got 32x48")` when the sizes differ.
    pub size_mismatch: Option<String>,
    /// Pixels with a channel differing by more than the tolerance.
    pub differing_pixels: u64,
    pub total_pixels: u64,
    pub first_difference: Option<PixelDiff>,
    /// Largest per-channel difference anywhere.
    pub max_difference: u8,
    /// Peak signal-to-noise ratio over every channel, in dB; infinite for identical frames.
    pub psnr_db: f64,
}

impl Comparison {
    pub fn matches(&self) -> bool {
        self.size_mismatch.is_none() && self.differing_pixels == 0
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(size) = &self.size_mismatch {
            return write!(f, "the sizes differ: {size}");
        }
        let psnr = if self.psnr_db.is_infinite() { "inf".to_string() } else { format!("{:.2}", self.psnr_db) };
        match &self.first_difference {
            None => write!(f, "match (max difference {}, PSNR {psnr} dB)", self.max_difference),
            Some(first) => write!(
                f,
                "{} of {} pixels differ by more than {}; first at (x {}, y {}): expected {:?}, got {:?}; \
                 max difference {}; PSNR {psnr} dB",
                self.differing_pixels,
                self.total_pixels,
                self.tolerance,
                first.x,
                first.y,
                first.expected,
                first.actual,
                self.max_difference
            ),
        }
    }
}

/// Compares `actual` with `expected`, allowing each channel to differ by `tolerance`.
pub fn compare(expected: &OwnedFrame, actual: &OwnedFrame, tolerance: u8) -> Comparison {
    let mut result = Comparison {
        tolerance,
        size_mismatch: None,
        differing_pixels: 0,
        total_pixels: expected.width as u64 * expected.height as u64,
        first_difference: None,
        max_difference: 0,
        psnr_db: f64::INFINITY,
    };
    if (expected.width, expected.height) != (actual.width, actual.height) {
        result.size_mismatch =
            Some(format!("expected {}x{}, got {}x{}", expected.width, expected.height, actual.width, actual.height));
        return result;
    }
    let (e, a) = comparable(expected, actual);
    let peak = ((1u32 << e.format.bit_depth()) - 1) as f64;
    let mut squared_error = 0u64;
    let mut samples = 0u64;
    result.total_pixels = 0;
    for ((e_plane, a_plane), (width, per_pixel)) in
        samples_by_plane(&e).into_iter().zip(samples_by_plane(&a)).zip(plane_shapes(&e))
    {
        result.total_pixels += (e_plane.len() / per_pixel) as u64;
        samples += e_plane.len() as u64;
        for (i, (pe, pa)) in e_plane.chunks_exact(per_pixel).zip(a_plane.chunks_exact(per_pixel)).enumerate() {
            let diff = pe.iter().zip(pa).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
            squared_error += pe.iter().zip(pa).map(|(x, y)| (x.abs_diff(*y) as u64).pow(2)).sum::<u64>();
            result.max_difference = result.max_difference.max(diff.min(255) as u8);
            if diff > tolerance as u16 {
                result.differing_pixels += 1;
                if result.first_difference.is_none() {
                    let width = width as usize;
                    result.first_difference = Some(PixelDiff {
                        x: (i % width) as u32,
                        y: (i / width) as u32,
                        expected: pe.iter().map(|v| *v as u8).collect(),
                        actual: pa.iter().map(|v| *v as u8).collect(),
                    });
                }
            }
        }
    }
    if squared_error > 0 {
        let mse = squared_error as f64 / samples as f64;
        result.psnr_db = 10.0 * (peak * peak / mse).log10();
    }
    result
}

/// Each plane's samples in order (10-bit samples as their values).
fn samples_by_plane(frame: &OwnedFrame) -> Vec<Vec<u16>> {
    let view = frame.view();
    (0..view.plane_count())
        .map(|i| {
            let plane = view.plane(i);
            let mut out = Vec::with_capacity(plane.row_bytes() * plane.rows() as usize);
            for y in 0..plane.rows() {
                match frame.format.bit_depth() {
                    8 => out.extend(plane.row(y).iter().map(|v| *v as u16)),
                    _ => out.extend(plane.row(y).chunks_exact(2).map(|v| u16::from_le_bytes([v[0], v[1]]))),
                }
            }
            out
        })
        .collect()
}

/// Each plane's width in positions and samples per position.
fn plane_shapes(frame: &OwnedFrame) -> Vec<(u32, usize)> {
    let view = frame.view();
    (0..view.plane_count())
        .map(|i| {
            let plane = view.plane(i);
            let samples = plane.row_bytes() / (frame.format.bit_depth() as usize).div_ceil(8);
            (plane.width(), samples / plane.width().max(1) as usize)
        })
        .collect()
}

/// Both frames in one format: as they are when the formats agree, else both as RGBA.
fn comparable(expected: &OwnedFrame, actual: &OwnedFrame) -> (OwnedFrame, OwnedFrame) {
    if expected.format == actual.format {
        (expected.clone(), actual.clone())
    } else {
        (to_rgba(expected), to_rgba(actual))
    }
}

/// A picture of where two same-sized frames differ: pixels within `tolerance` are the expected
/// frame's, dimmed to a quarter; pixels beyond it are red, brighter the larger the difference.
/// `None` when the sizes differ.
pub fn diff_image(expected: &OwnedFrame, actual: &OwnedFrame, tolerance: u8) -> Option<OwnedFrame> {
    if (expected.width, expected.height) != (actual.width, actual.height) {
        return None;
    }
    let (e, a) = (to_rgba(expected), to_rgba(actual));
    let (e_pixels, a_pixels) = (e.packed(), a.packed());
    let pixels = e_pixels
        .chunks_exact(4)
        .zip(a_pixels.chunks_exact(4))
        .flat_map(|(pe, pa)| {
            let diff = pe.iter().zip(pa).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
            if diff > tolerance {
                [128 + diff / 2, 0, 0, 255]
            } else {
                let luma = crate::luma_bt709(pe[0], pe[1], pe[2]) / 4;
                [luma, luma, luma, 255]
            }
        })
        .collect();
    Some(rgba_frame(e.width, e.height, pixels))
}

/// A golden comparison that failed, with the files written to look at.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{} does not match: {comparison}; actual output written to {}{}", expected.display(), actual.display(),
        diff.as_ref().map(|d| format!(", differences to {}", d.display())).unwrap_or_default())]
    Mismatch { expected: PathBuf, comparison: Box<Comparison>, actual: PathBuf, diff: Option<PathBuf> },
}

/// Where a failed comparison against `expected` (`NAME.expected.png` or `NAME.png`) writes the
/// actual output and the diff: `NAME.actual.png` and `NAME.diff.png`, in `report_dir` or beside
/// the expected file.
pub fn report_paths(expected: &Path, report_dir: Option<&Path>) -> (PathBuf, PathBuf) {
    let name = expected.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".png").unwrap_or(&name);
    let stem = stem.strip_suffix(".expected").unwrap_or(stem);
    let dir = match report_dir {
        Some(dir) => dir.to_path_buf(),
        None => expected.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    (dir.join(format!("{stem}.actual.png")), dir.join(format!("{stem}.diff.png")))
}

/// Compares `actual` with the PNG at `expected`. On a mismatch writes the actual frame and a
/// [`diff_image`] (see [`report_paths`]) and returns [`GoldenError::Mismatch`] saying where the
/// first differing pixel is, the largest difference and the PSNR.
pub fn check_png(
    actual: &OwnedFrame,
    expected: &Path,
    tolerance: u8,
    report_dir: Option<&Path>,
) -> Result<Comparison, GoldenError> {
    let expected_frame = read_png(expected)?;
    let comparison = compare(&expected_frame, actual, tolerance);
    if comparison.matches() {
        return Ok(comparison);
    }
    let (actual_path, diff_path) = report_paths(expected, report_dir);
    if let Some(dir) = report_dir {
        std::fs::create_dir_all(dir).map_err(|source| ImageError::Write { path: dir.to_path_buf(), source })?;
    }
    write_png(&actual_path, actual)?;
    let diff = match diff_image(&expected_frame, actual, tolerance) {
        Some(image) => {
            write_png(&diff_path, &image)?;
            Some(diff_path)
        }
        None => None,
    };
    Err(GoldenError::Mismatch {
        expected: expected.to_path_buf(),
        comparison: Box::new(comparison),
        actual: actual_path,
        diff,
    })
}

/// One case of a folder of golden images, as `plugin-host test FOLDER` reads the same folder:
/// `NAME.in.png`, `NAME.expected.png` and the parameters in `NAME.params.toml`, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldenCase {
    pub name: String,
    pub input: PathBuf,
    pub expected: PathBuf,
    pub params: Vec<(String, ParamValue)>,
}

impl GoldenCase {
    /// The parameters as [`run`] takes them.
    pub fn params(&self) -> Vec<(&str, ParamValue)> {
        self.params.iter().map(|(name, value)| (name.as_str(), value.clone())).collect()
    }
}

/// Every case in `folder` (files named `NAME.in.png`), by name, with the parameters of its
/// `NAME.params.toml` (numbers, booleans and strings).
pub fn golden_cases(folder: &Path) -> Result<Vec<GoldenCase>, String> {
    let entries = std::fs::read_dir(folder).map_err(|e| format!("cannot read {}: {e}", folder.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".in.png")).map(str::to_string))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let params_file = folder.join(format!("{name}.params.toml"));
            let params = match params_file.exists() {
                true => read_params(&params_file)?,
                false => Vec::new(),
            };
            let (input, expected) =
                (folder.join(format!("{name}.in.png")), folder.join(format!("{name}.expected.png")));
            Ok(GoldenCase { name, input, expected, params })
        })
        .collect()
}

/// A case's parameter file (see [`golden_cases`]): a TOML table of numbers, booleans and strings.
fn read_params(path: &Path) -> Result<Vec<(String, ParamValue)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.message()))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::Integer(v) => ParamValue::Int(v),
                toml::Value::Float(v) => ParamValue::Float(v),
                toml::Value::Boolean(v) => ParamValue::Bool(v),
                toml::Value::String(v) => ParamValue::Str(v),
                other => {
                    let kind = other.type_str();
                    let path = path.display();
                    return Err(format!(
                        "{path}: {key} is of type {kind}; parameters are numbers, booleans or strings"
                    ));
                }
            };
            Ok((key, value))
        })
        .collect()
}

/// [`check_png`] for tests: panics with the report on a mismatch. With the environment variable
/// `UPDATE_GOLDEN=1` it (re)writes the expected file instead, to bless a new output.
#[track_caller]
pub fn assert_png(actual: &OwnedFrame, expected: &Path, tolerance: u8) {
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        if let Err(err) = write_png(expected, actual) {
            panic!("{err}");
        }
        return;
    }
    if !expected.exists() {
        panic!(
            "{} does not exist yet: `UPDATE_GOLDEN=1 cargo test` writes it from the current output \
             (look at the picture before you commit it)",
            expected.display()
        );
    }
    if let Err(err) = check_png(actual, expected, tolerance, None) {
        panic!("{err}");
    }
}

/// Panics with the [`Comparison`] report unless `actual` matches `expected` within `tolerance`.
#[track_caller]
pub fn assert_frames_match(expected: &OwnedFrame, actual: &OwnedFrame, tolerance: u8) {
    let comparison = compare(expected, actual, tolerance);
    assert!(comparison.matches(), "frames differ: {comparison}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two inputs: the output is `a` where `b` is brighter, else `b` (per byte), and carries
    /// `b`'s metadata property "from" as its own.
    struct Brighter;

    impl Plugin for Brighter {
        fn inputs() -> &'static [crate::InputSpec] {
            &[crate::InputSpec { name: "a", role: "first" }, crate::InputSpec { name: "b", role: "second" }]
        }
        fn new(_: &Params) -> Result<Self, PluginError> {
            Ok(Brighter)
        }
        fn process(&mut self, _: &crate::Frame, _: &mut crate::FrameMut) -> Result<(), PluginError> {
            Err(PluginError::new("takes two inputs"))
        }
        fn process_many(&mut self, inputs: &[crate::Frame], output: &mut crate::FrameMut) -> Result<(), PluginError> {
            let (a, b) = (&inputs[0], &inputs[1]);
            output.set_shape(a.width(), a.height(), a.format())?;
            for y in 0..a.height() {
                let row: Vec<u8> = a.row(y).iter().zip(b.row(y)).map(|(x, y)| (*x).max(*y)).collect();
                output.row_mut(y).copy_from_slice(&row);
            }
            let mut meta = output.metadata();
            meta.set_property("from", b.metadata().property("name").unwrap_or("?"));
            output.set_metadata(&meta)
        }
    }

    #[test]
    fn a_plugin_with_two_inputs_gets_both_frames_with_their_metadata() {
        let mut a = noise(5, 3, 20, PixelFormat::Rgba8, 1);
        let mut b = noise(5, 3, 20, PixelFormat::Rgba8, 2);
        a.meta.set_property("name", "a");
        b.meta.set_property("name", "b");
        let out = run_many::<Brighter>(&[], &[&a, &b]).unwrap();
        let expected: Vec<u8> = a.packed().iter().zip(b.packed()).map(|(x, y)| (*x).max(y)).collect();
        assert_eq!(out.packed(), expected);
        assert_eq!(out.meta.property("from"), Some("b"));
        assert_eq!(out.meta.property("name"), Some("a"), "the output starts with the first input's metadata");
        assert!(run_many::<Brighter>(&[], &[&a]).unwrap_err().0.contains("takes 2"));
        let json = crate::describe::describe_json("b", "1", "", Brighter::formats(), Brighter::inputs(), &[]);
        assert!(json.contains(r#""inputs":[{"name":"a","role":"first"},{"name":"b","role":"second"}]"#), "{json}");
    }

    /// Fills each row of its band with the input's `range` and the output's as it finds it, and
    /// names its band in the output's metadata (which only the band at row 0 gets to keep).
    struct MetaProbe;

    impl Plugin for MetaProbe {
        fn formats() -> &'static [PixelFormat] {
            &[PixelFormat::Rgba8]
        }
        fn new(_params: &crate::Params) -> Result<Self, PluginError> {
            Ok(MetaProbe)
        }
        fn band_context(&self) -> Option<u32> {
            Some(0)
        }
        fn process(&mut self, input: &crate::Frame, output: &mut crate::FrameMut) -> Result<(), PluginError> {
            self.process_rows(input, output, 0..input.height())
        }
        fn process_rows(
            &mut self,
            input: &crate::Frame,
            output: &mut crate::FrameMut,
            rows: std::ops::Range<u32>,
        ) -> Result<(), PluginError> {
            let (seen, mut meta) = (input.metadata(), output.metadata());
            for y in rows.clone() {
                output.row_mut(y).chunks_exact_mut(4).for_each(|p| p.copy_from_slice(&[seen.range, meta.range, 0, 0]));
            }
            meta.set_property("band", &format!("{rows:?}"));
            output.set_metadata(&meta)
        }
    }

    #[test]
    fn bands_see_the_frame_metadata_and_the_band_at_row_0_keeps_the_output_metadata() {
        let mut input = solid(3, 9, PixelFormat::Rgba8, [1, 2, 3, 4]);
        input.meta.range = 2;
        input.meta.set_property("source", "test");
        let whole = run::<MetaProbe>(&[], &input).unwrap();
        assert!(whole.packed().chunks_exact(4).all(|p| p == [2, 2, 0, 0]));
        assert_eq!(whole.meta.property("band"), Some("0..9"));
        for bands in [1, 2, 3, 7] {
            let banded = run_in_bands::<MetaProbe>(&[], &input, bands).unwrap();
            assert_eq!(banded.packed(), whole.packed(), "{bands} bands: every band sees range 2");
            // The band that starts at row 0 and has rows (9 rows in 7 bands: band 0 has none).
            let first = (0..bands).map(|k| crate::abi::band_rows(9, k, bands)).find(|r| !r.is_empty()).unwrap();
            assert_eq!(banded.meta.property("band"), Some(format!("{first:?}").as_str()), "{bands} bands");
            assert_eq!((banded.meta.range, banded.meta.property("source")), (2, Some("test")), "{bands} bands");
        }
        // 2 rows in 7 bands: only the last band has rows, and it speaks for the frame.
        let short = OwnedFrame { meta: input.meta.clone(), ..solid(3, 2, PixelFormat::Rgba8, [0; 4]) };
        let banded = run_in_bands::<MetaProbe>(&[], &short, 7).unwrap();
        assert_eq!(banded.meta.property("band"), Some("0..2"));
        assert_eq!(banded.packed(), run::<MetaProbe>(&[], &short).unwrap().packed());
    }

    #[test]
    fn golden_cases_read_their_parameter_files() {
        let dir = std::env::temp_dir().join(format!("golden-cases-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["b.in.png", "a.in.png", "a.expected.png"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        std::fs::write(dir.join("b.params.toml"), "# cool\namount = -60\nmode = \"fast\" # c\nk = 0.5\non = true\n")
            .unwrap();
        let cases = golden_cases(&dir).unwrap();
        assert_eq!(cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(cases[0].params.is_empty());
        let mut params = cases[1].params();
        params.sort_by(|a, b| a.0.cmp(b.0));
        let expected = [
            ("amount", ParamValue::Int(-60)),
            ("k", ParamValue::Float(0.5)),
            ("mode", ParamValue::Str("fast".into())),
            ("on", ParamValue::Bool(true)),
        ];
        assert_eq!(params, expected);
        std::fs::write(dir.join("b.params.toml"), "amount = [1, 2]\n").unwrap();
        let err = golden_cases(&dir).unwrap_err();
        assert!(err.contains("b.params.toml: amount is of type array; parameters are numbers"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identical_frames_match_with_infinite_psnr() {
        let frame = gradient(7, 5, PixelFormat::Rgba8);
        let comparison = compare(&frame, &frame, 0);
        assert!(comparison.matches());
        assert!(comparison.psnr_db.is_infinite());
        assert_eq!(comparison.to_string(), "match (max difference 0, PSNR inf dB)");
    }

    #[test]
    fn reports_first_pixel_max_difference_and_psnr() {
        let expected = solid(4, 3, PixelFormat::Rgba8, [10, 20, 30, 255]);
        let mut actual = expected.clone();
        actual.data[(4 + 2) * 4 + 1] = 60; // (x 2, y 1), green off by 40
        actual.data[(2 * 4 + 3) * 4] = 13; // (x 3, y 2), red off by 3
        let strict = compare(&expected, &actual, 0);
        assert!(!strict.matches());
        assert_eq!(strict.differing_pixels, 2);
        assert_eq!(
            strict.first_difference,
            Some(PixelDiff { x: 2, y: 1, expected: vec![10, 20, 30, 255], actual: vec![10, 60, 30, 255] })
        );
        assert_eq!(strict.max_difference, 40);
        let mse = (40.0f64 * 40.0 + 9.0) / 48.0;
        assert!((strict.psnr_db - 10.0 * (65025.0 / mse).log10()).abs() < 1e-9);
        let loose = compare(&expected, &actual, 3);
        assert_eq!(loose.differing_pixels, 1);
        assert!(compare(&expected, &actual, 40).matches());
    }

    #[test]
    fn sizes_and_formats() {
        let a = solid(4, 3, PixelFormat::Gray8, [9, 0, 0, 0]);
        let b = solid(4, 3, PixelFormat::Rgba8, [9, 9, 9, 255]);
        assert!(compare(&a, &b, 0).matches(), "gray compares as RGBA against RGBA");
        let c = solid(3, 4, PixelFormat::Gray8, [9, 0, 0, 0]);
        assert_eq!(compare(&a, &c, 0).to_string(), "the sizes differ: expected 4x3, got 3x4");
        assert!(diff_image(&a, &c, 0).is_none());
    }

    #[test]
    fn gradient_spans_the_range() {
        let frame = gradient(3, 2, PixelFormat::Rgba8);
        assert_eq!(&frame.data[..4], &[0, 0, 0, 255]);
        assert_eq!(&frame.data[20..24], &[255, 255, 255, 255]);
    }

    #[test]
    fn png_round_trip_and_golden_report() {
        let dir = std::env::temp_dir().join(format!("sdk-testing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let expected_path = dir.join("case.expected.png");
        for format in [PixelFormat::Rgba8, PixelFormat::Gray8] {
            let frame = gradient(9, 4, format);
            write_png(&expected_path, &frame).unwrap();
            assert_eq!(read_png(&expected_path).unwrap(), frame);
        }
        // Y'CbCr goes to PNG as RGBA, and compares equal to itself through it.
        let yuv = gradient(9, 4, PixelFormat::Yuv420p);
        write_png(&expected_path, &yuv).unwrap();
        assert_eq!(read_png(&expected_path).unwrap(), to_rgba(&yuv));
        assert!(check_png(&yuv, &expected_path, 0, None).is_ok());
        let frame = gradient(9, 4, PixelFormat::Rgba8);
        write_png(&expected_path, &frame).unwrap();
        assert!(check_png(&frame, &expected_path, 0, None).is_ok());
        let mut wrong = frame.clone();
        wrong.data[0] = 200;
        let err = check_png(&wrong, &expected_path, 0, None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("first at (x 0, y 0): expected [0, 0, 0, 255], got [200, 0, 0, 255]"), "{text}");
        assert_eq!(read_png(&dir.join("case.actual.png")).unwrap(), wrong);
        let diff = read_png(&dir.join("case.diff.png")).unwrap();
        assert_eq!(&diff.data[..4], &[228, 0, 0, 255]);
        assert!(matches!(read_png(&dir.join("missing.png")), Err(ImageError::Read { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
