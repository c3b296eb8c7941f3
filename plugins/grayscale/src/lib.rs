//! `grayscale`: each pixel's red, green and blue become its BT.709 luma; alpha kept.
//!
//! A `yuv420p` frame already carries its luma: it is kept, and every chroma sample becomes 128,
//! no colour, so the output stays `yuv420p` (as ffmpeg's `hue=s=0` does, bit for bit). Under the
//! SDK's convention (BT.709, `plugin_sdk::convert`) that luma is the BT.709 luma the `rgba8` path
//! computes, so both give the same gray picture. Bands: luma rows `rows` and the chroma rows
//! they cover, `abi::chroma_rows(rows)`.

use plugin_sdk::abi::chroma_rows;
use plugin_sdk::{Frame, FrameMut, Params, PixelFormat, Plugin, PluginError};
use std::ops::Range;

pub struct Grayscale;

impl Plugin for Grayscale {
    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Yuv420p]
    }

    fn new(_params: &Params) -> Result<Self, PluginError> {
        Ok(Grayscale)
    }

    fn band_context(&self) -> Option<u32> {
        Some(0)
    }

    fn process(&mut self, input: &Frame, output: &mut FrameMut) -> Result<(), PluginError> {
        self.process_rows(input, output, 0..input.height())
    }

    fn process_rows(&mut self, input: &Frame, output: &mut FrameMut, rows: Range<u32>) -> Result<(), PluginError> {
        output.set_shape(input.width(), input.height(), input.format())?;
        if input.format() == PixelFormat::Yuv420p {
            let (src, mut dst) = (input.plane(0), output.plane_mut(0));
            for y in rows.clone() {
                dst.row_mut(y).copy_from_slice(src.row(y));
            }
            for plane in 1..3 {
                let mut dst = output.plane_mut(plane);
                for y in chroma_rows(rows.clone()) {
                    dst.row_mut(y).fill(128);
                }
            }
            return Ok(());
        }
        for y in rows {
            // Whole pixels of a constant size: the loop vectorises (four pixels a simd128 step).
            let (dst, _) = output.row_mut(y).as_chunks_mut::<4>();
            let (src, _) = input.row(y).as_chunks::<4>();
            for (d, s) in dst.iter_mut().zip(src) {
                let l = plugin_sdk::luma_bt709(s[0], s[1], s[2]);
                *d = [l, l, l, s[3]];
            }
        }
        Ok(())
    }
}

plugin_sdk::export_plugin!(Grayscale);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::{OwnedFrame, PixelFormat, testing};

    #[test]
    fn luma_matches_bt709() {
        for (r, g, b) in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (12, 200, 77)] {
            let exact = 0.2126 * r as f64 + 0.7152 * g as f64 + 0.0722 * b as f64;
            assert!((plugin_sdk::luma_bt709(r, g, b) as f64 - exact).abs() <= 0.5 + 1e-3, "{r},{g},{b}");
        }
    }

    #[test]
    fn grays_each_pixel_and_keeps_alpha() {
        let input = OwnedFrame::from_pixels(2, 1, PixelFormat::Rgba8, vec![255, 0, 0, 9, 255, 255, 255, 200]).unwrap();
        let output = testing::run::<Grayscale>(&[], &input).unwrap();
        assert_eq!(output.packed(), vec![54, 54, 54, 9, 255, 255, 255, 200]);
    }

    #[test]
    fn refuses_gray_input() {
        let input = OwnedFrame::new(2, 2, PixelFormat::Gray8);
        assert!(testing::run::<Grayscale>(&[], &input).is_err());
    }

    #[test]
    fn bands_give_the_whole_frame_result() {
        testing::assert_bands_match::<Grayscale>(&[], &testing::noise(37, 23, 160, PixelFormat::Rgba8, 3));
    }

    /// Sample `(x, y)` of plane `p` of a `yuv420p` frame, found as docs/abi.md lays the planes
    /// out: Y, `stride` bytes a row, then Cb and Cr, `ceil(stride / 2)` bytes a row.
    fn sample(frame: &OwnedFrame, p: usize, x: u32, y: u32) -> u8 {
        let (stride, height) = (frame.stride as usize, frame.height as usize);
        let chroma_stride = stride.div_ceil(2);
        let (start, row) = match p {
            0 => (0, stride),
            1 => (stride * height, chroma_stride),
            _ => (stride * height + chroma_stride * height.div_ceil(2), chroma_stride),
        };
        frame.data[start + y as usize * row + x as usize]
    }

    /// Per sample: luma as it was, every chroma sample 128; the planes packed one after another.
    fn reference(input: &OwnedFrame) -> Vec<u8> {
        let (w, h) = (input.width, input.height);
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                out.push(sample(input, 0, x, y));
            }
        }
        let chroma_samples = 2 * w.div_ceil(2) * h.div_ceil(2);
        out.extend(std::iter::repeat_n(128, chroma_samples as usize));
        out
    }

    /// Odd and even sizes, with and without stride padding (which noise fills too).
    const YUV_SHAPES: [(u32, u32, u32); 6] = [(37, 23, 0), (37, 23, 11), (1, 1, 0), (2, 2, 3), (5, 3, 1), (64, 9, 0)];

    #[test]
    fn yuv420p_matches_the_per_sample_reference() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = testing::noise(w, h, w + pad, PixelFormat::Yuv420p, seed as u32);
            let output = testing::run::<Grayscale>(&[], &input).unwrap();
            assert_eq!(output.format, PixelFormat::Yuv420p);
            assert_eq!(output.packed(), reference(&input), "{w}x{h} + {pad}");
        }
    }

    #[test]
    fn yuv420p_gives_the_gray_picture_of_rgba() {
        // The gradient's luma is BT.709's: shown as RGBA, the yuv420p output is within 1 of
        // graying the RGBA picture (both round; the RGBA path from the exact RGB, this one
        // from the stored luma).
        let input = testing::gradient(37, 23, PixelFormat::Yuv420p);
        let in_yuv = testing::to_rgba(&testing::run::<Grayscale>(&[], &input).unwrap());
        let in_rgba = testing::run::<Grayscale>(&[], &testing::to_rgba(&input)).unwrap();
        testing::assert_frames_match(&in_rgba, &in_yuv, 1);
    }

    #[test]
    fn yuv420p_bands_give_the_whole_frame_result() {
        testing::assert_bands_match::<Grayscale>(&[], &testing::noise(37, 23, 40, PixelFormat::Yuv420p, 5));
        testing::assert_bands_match::<Grayscale>(&[], &testing::noise(6, 7, 6, PixelFormat::Yuv420p, 6));
    }

    /// `input` (yuv420p) through ffmpeg's `-vf filter`, or `None` (said on stdout) when
    /// `ffmpeg` is not on PATH.
    fn ffmpeg_yuv420p(input: &OwnedFrame, filter: &str) -> Option<OwnedFrame> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let size = format!("{}x{}", input.width, input.height);
        let raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p"];
        let child = Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error"])
            .args(raw)
            .args(["-s", &size, "-i", "pipe:0", "-vf", filter])
            .args(raw)
            .arg("pipe:1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                println!("skipped: ffmpeg is not on PATH");
                return None;
            }
            Err(err) => panic!("cannot run ffmpeg: {err}"),
        };
        let (mut stdin, pixels) = (child.stdin.take().unwrap(), input.packed());
        let writer = std::thread::spawn(move || stdin.write_all(&pixels));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(output.status.success(), "ffmpeg -vf {filter}: {}", String::from_utf8_lossy(&output.stderr));
        Some(OwnedFrame::from_pixels(input.width, input.height, PixelFormat::Yuv420p, output.stdout).unwrap())
    }

    #[test]
    fn yuv420p_equals_ffmpeg_hue_s_0() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = testing::noise(w, h, w + pad, PixelFormat::Yuv420p, 20 + seed as u32);
            let Some(expected) = ffmpeg_yuv420p(&input, "hue=s=0") else { return };
            let output = testing::run::<Grayscale>(&[], &input).unwrap();
            assert!(output.same_pixels(&expected), "{w}x{h} + {pad}: {}", testing::compare(&expected, &output, 0));
        }
    }
}
