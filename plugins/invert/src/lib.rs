//! `invert`: 255 − value for red, green and blue (or luma); alpha kept.
//!
//! `yuv420p` frames are inverted as pictures, not as codes, in the range the frame's metadata
//! gives (`FrameMeta::range`, read once per call): 2 is full range; 1 (limited) and 0 (unknown)
//! are taken as limited range, the SDK's and ffmpeg's default for `yuv420p`. The matrix does not
//! matter: inverting `R, G, B` inverts `Y'` and negates `Pb`, `Pr` under every matrix.
//!
//! - **Limited range:** luma `Y` becomes `251 − Y` (`16 + 235 − Y`: black, 16, and white, 235,
//!   trade places) and each chroma sample `C` becomes `256 − C` (`16 + 240 − C`: 128, no colour,
//!   stays 128), clamped to the legal ranges 16..=235 and 16..=240. That is `1 − Y'`, `−Pb`,
//!   `−Pr`: the Y'CbCr of `255 − R, G, B`, so the picture is the `rgba8` result's (converted,
//!   within 1 of rounding). It is bit for bit ffmpeg's `lutyuv=y=negval:u=negval:v=negval`, which
//!   is what `negate` computed while it was built on `lut`. ffmpeg 5.1's `negate` (its own filter
//!   now) stores `255 − v` in every plane instead, whatever the range: white becomes luma 20
//!   rather than 16, black 239 (above white), and the chroma of every neutral pixel 127 rather
//!   than 128, a faint green cast. Sub-black and super-white codes have no inverse inside the
//!   legal range; they become white and black, as they are shown.
//! - **Full range:** the same rule with full range's codes (`Y = 255 Y'`, `C = 128 + 255 P`):
//!   luma `Y` becomes `255 − Y` (`0 + 255 − Y`) and chroma `C` becomes `256 − C` (`128 + 128 −
//!   C`: 128 stays 128), clamped to 0..=255, so chroma 0 (`P = −128/255`, whose negation has no
//!   code) becomes 255. Every luma code is inverted exactly, so gray pixels come out as the
//!   `rgba8` path makes them. ffmpeg has no filter for it: its `negval` and `negate` on
//!   full-range (`yuvj420p`) frames store `255 − v` in chroma too (neutral 128 becomes 127); the
//!   rule here is `lutyuv=y=255-val:u='clip(256-val,0,255)':v='clip(256-val,0,255)'`.
//!
//! Bands: luma rows `rows` and the chroma rows they cover, `abi::chroma_rows(rows)`.

use plugin_sdk::abi::chroma_rows;
use plugin_sdk::{Frame, FrameMut, Params, PixelFormat, Plugin, PluginError};
use std::ops::Range;

pub struct Invert;

impl Plugin for Invert {
    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8, PixelFormat::Yuv420p]
    }

    fn new(_params: &Params) -> Result<Self, PluginError> {
        Ok(Invert)
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
            // One call into the host per call, not per row.
            // Unknown range is limited range.
            match input.metadata().colour_range() {
                Some(plugin_sdk::convert::Range::Full) => invert_yuv420p_full(input, output, rows),
                _ => invert_yuv420p(input, output, rows),
            }
            return Ok(());
        }
        for y in rows {
            let (src, dst) = (input.row(y), output.row_mut(y));
            match input.format() {
                PixelFormat::Rgba8 => {
                    // 16 pixels a step: wasm checks its deadline once per loop turn, not per pixel.
                    let (dst_blocks, dst_rest) = dst.as_chunks_mut::<64>();
                    let (src_blocks, src_rest) = src.as_chunks::<64>();
                    for (d, s) in dst_blocks.iter_mut().zip(src_blocks) {
                        invert_rgba(d, s);
                    }
                    invert_rgba(dst_rest, src_rest);
                }
                _ => dst.iter_mut().zip(src).for_each(|(d, s)| *d = 255 - s),
            }
        }
        Ok(())
    }
}

/// 255 − value for red, green and blue of each RGBA pixel; alpha kept.
fn invert_rgba(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let pixel = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) ^ 0x00ff_ffff;
        d.copy_from_slice(&pixel.to_le_bytes());
    }
}

/// Limited range: luma `16 + 235 − Y` and chroma `16 + 240 − C`, clamped to 16..=235 and
/// 16..=240, for luma rows `rows` and the chroma rows they cover (see the crate doc).
fn invert_yuv420p(input: &Frame, output: &mut FrameMut, rows: Range<u32>) {
    let (src, mut dst) = (input.plane(0), output.plane_mut(0));
    for y in rows.clone() {
        // Saturating, so 252..=255 give 0 and then 16; the loop vectorises.
        let (s, d) = (src.row(y), dst.row_mut(y));
        d.iter_mut().zip(s).for_each(|(d, s)| *d = 251u8.saturating_sub(*s).clamp(16, 235));
    }
    for plane in 1..3 {
        let (src, mut dst) = (input.plane(plane), output.plane_mut(plane));
        for y in chroma_rows(rows.clone()) {
            // 256 − C as (255 − C) + 1, saturating: C = 0 gives 255 and then 240.
            let (s, d) = (src.row(y), dst.row_mut(y));
            d.iter_mut().zip(s).for_each(|(d, s)| *d = (255 - *s).saturating_add(1).clamp(16, 240));
        }
    }
}

/// Full range: luma `255 − Y` and chroma `256 − C` clamped to 0..=255, for luma rows `rows`
/// and the chroma rows they cover (see the crate doc).
fn invert_yuv420p_full(input: &Frame, output: &mut FrameMut, rows: Range<u32>) {
    let (src, mut dst) = (input.plane(0), output.plane_mut(0));
    for y in rows.clone() {
        let (s, d) = (src.row(y), dst.row_mut(y));
        d.iter_mut().zip(s).for_each(|(d, s)| *d = 255 - s);
    }
    for plane in 1..3 {
        let (src, mut dst) = (input.plane(plane), output.plane_mut(plane));
        for y in chroma_rows(rows.clone()) {
            // 256 − C as (255 − C) + 1, saturating: C = 0 gives 255.
            let (s, d) = (src.row(y), dst.row_mut(y));
            d.iter_mut().zip(s).for_each(|(d, s)| *d = (255 - *s).saturating_add(1));
        }
    }
}

plugin_sdk::export_plugin!(Invert);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::{OwnedFrame, testing};

    #[test]
    fn inverts_colour_and_keeps_alpha() {
        let input = OwnedFrame::from_pixels(2, 1, PixelFormat::Rgba8, vec![0, 10, 200, 7, 255, 128, 1, 0]).unwrap();
        let output = testing::run::<Invert>(&[], &input).unwrap();
        assert_eq!(output.packed(), vec![255, 245, 55, 7, 0, 127, 254, 0]);
    }

    #[test]
    fn rows_longer_than_a_block_are_inverted_to_the_last_pixel() {
        // 37 pixels: two 16-pixel blocks and 5 more; rows 160 bytes apart.
        let input = testing::noise(37, 3, 160, PixelFormat::Rgba8, 7);
        let output = testing::run::<Invert>(&[], &input).unwrap();
        let expected: Vec<u8> =
            input.packed().chunks_exact(4).flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], p[3]]).collect();
        assert_eq!(output.packed(), expected);
    }

    #[test]
    fn inverts_gray_and_skips_stride_padding() {
        let mut input = OwnedFrame::with_stride(2, 2, 4, PixelFormat::Gray8);
        input.data = vec![1, 2, 99, 99, 3, 4];
        let output = testing::run::<Invert>(&[], &input).unwrap();
        assert_eq!(output.packed(), vec![254, 253, 252, 251]);
    }

    #[test]
    fn bands_give_the_whole_frame_result() {
        testing::assert_bands_match::<Invert>(&[], &testing::noise(37, 23, 160, PixelFormat::Rgba8, 3));
        testing::assert_bands_match::<Invert>(&[], &testing::noise(37, 23, 40, PixelFormat::Gray8, 4));
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

    /// Per sample: luma `16 + 235 − Y`, chroma `16 + 240 − C`, each clamped to its legal range;
    /// the planes packed one after another.
    fn reference(input: &OwnedFrame) -> Vec<u8> {
        let (w, h) = (input.width, input.height);
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                out.push((16 + 235 - sample(input, 0, x, y) as i32).clamp(16, 235) as u8);
            }
        }
        for p in 1..3 {
            for y in 0..h.div_ceil(2) {
                for x in 0..w.div_ceil(2) {
                    out.push((16 + 240 - sample(input, p, x, y) as i32).clamp(16, 240) as u8);
                }
            }
        }
        out
    }

    /// Odd and even sizes, with and without stride padding (which noise fills too).
    const YUV_SHAPES: [(u32, u32, u32); 6] = [(37, 23, 0), (37, 23, 11), (1, 1, 0), (2, 2, 3), (5, 3, 1), (64, 9, 0)];

    #[test]
    fn yuv420p_matches_the_per_sample_reference() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = testing::noise(w, h, w + pad, PixelFormat::Yuv420p, seed as u32);
            let output = testing::run::<Invert>(&[], &input).unwrap();
            assert_eq!(output.format, PixelFormat::Yuv420p);
            assert_eq!(output.packed(), reference(&input), "{w}x{h} + {pad}");
        }
    }

    #[test]
    fn yuv420p_inverts_the_picture_as_rgba_does() {
        // A picture in the legal range: converted to RGBA, inverted there, it is within 1 of
        // what inverting it in yuv420p shows.
        let input = testing::gradient(37, 23, PixelFormat::Yuv420p);
        let in_yuv = testing::to_rgba(&testing::run::<Invert>(&[], &input).unwrap());
        let in_rgba = testing::run::<Invert>(&[], &testing::to_rgba(&input)).unwrap();
        testing::assert_frames_match(&in_rgba, &in_yuv, 1);
        // Black and white trade places; no colour stays no colour.
        let white = testing::solid(3, 3, PixelFormat::Yuv420p, [255, 255, 255, 255]);
        let black = testing::solid(3, 3, PixelFormat::Yuv420p, [0, 0, 0, 255]);
        assert_eq!(testing::run::<Invert>(&[], &white).unwrap(), black);
        assert_eq!(testing::run::<Invert>(&[], &black).unwrap(), white);
    }

    #[test]
    fn yuv420p_bands_give_the_whole_frame_result() {
        testing::assert_bands_match::<Invert>(&[], &testing::noise(37, 23, 40, PixelFormat::Yuv420p, 5));
        testing::assert_bands_match::<Invert>(&[], &testing::noise(6, 7, 6, PixelFormat::Yuv420p, 6));
    }

    /// `frame` with `meta.range` set to `range`.
    /// `frame` converted to `format` in full range (BT.709), its metadata saying so.
    fn full(frame: &OwnedFrame, format: PixelFormat) -> OwnedFrame {
        use plugin_sdk::convert::{Colour, Matrix, Range};
        testing::to_format_in(frame, format, Colour { matrix: Matrix::Bt709, range: Range::Full })
    }

    fn in_range(mut frame: OwnedFrame, range: u8) -> OwnedFrame {
        frame.meta.range = range;
        frame
    }

    /// Per sample, full range: luma `255 − Y`, chroma `256 − C` clamped to 0..=255; the planes
    /// packed one after another.
    fn full_range_reference(input: &OwnedFrame) -> Vec<u8> {
        let (w, h) = (input.width, input.height);
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                out.push(255 - sample(input, 0, x, y));
            }
        }
        for p in 1..3 {
            for y in 0..h.div_ceil(2) {
                for x in 0..w.div_ceil(2) {
                    out.push((256 - sample(input, p, x, y) as i32).clamp(0, 255) as u8);
                }
            }
        }
        out
    }

    #[test]
    fn full_range_yuv420p_matches_its_per_sample_reference() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = in_range(testing::noise(w, h, w + pad, PixelFormat::Yuv420p, 40 + seed as u32), 2);
            let output = testing::run::<Invert>(&[], &input).unwrap();
            assert_eq!(output.format, PixelFormat::Yuv420p);
            assert_eq!(output.packed(), full_range_reference(&input), "{w}x{h} + {pad}");
            assert_eq!(output.meta.range, 2, "the output is still full range");
        }
        // Every code: luma 0..=255 becomes 255..=0; chroma 0 has no inverse and becomes 255,
        // 1 and 255 trade places, 128 stays.
        // (32x16: every luma code twice, then chroma codes 0..=127 in Cb and 128..=255 in Cr.)
        let mut every_code = in_range(OwnedFrame::new(32, 16, PixelFormat::Yuv420p), 2);
        every_code.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 256) as u8);
        let output = testing::run::<Invert>(&[], &every_code).unwrap().packed();
        assert!((0..512).all(|i| output[i] == 255 - (i % 256) as u8));
        let chroma = &output[512..];
        assert_eq!(
            [chroma[0], chroma[1], chroma[127], chroma[128], chroma[129], chroma[255]],
            [255, 255, 129, 128, 127, 1]
        );
    }

    #[test]
    fn limited_and_unknown_range_give_the_limited_bytes() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let noise = testing::noise(w, h, w + pad, PixelFormat::Yuv420p, 60 + seed as u32);
            let limited = testing::run::<Invert>(&[], &in_range(noise.clone(), 1)).unwrap();
            let unknown = testing::run::<Invert>(&[], &in_range(noise.clone(), 0)).unwrap();
            assert_eq!(limited.packed(), reference(&noise), "{w}x{h} + {pad}");
            assert_eq!(unknown.packed(), reference(&noise), "{w}x{h} + {pad}");
        }
        // Where the two rules differ: black and white codes, and chroma beyond the legal range.
        let input = in_range(OwnedFrame::from_pixels(2, 1, PixelFormat::Yuv420p, vec![16, 0, 0, 255]).unwrap(), 0);
        assert_eq!(testing::run::<Invert>(&[], &input).unwrap().packed(), [235, 235, 240, 16]);
        let input = in_range(input, 2);
        assert_eq!(testing::run::<Invert>(&[], &input).unwrap().packed(), [239, 255, 255, 1]);
    }

    #[test]
    fn full_range_yuv420p_inverts_the_picture_as_rgba_does() {
        // Shown as RGBA (full range), within 1 of inverting the RGBA picture; every gray exactly.
        let input = full(&testing::gradient(37, 23, PixelFormat::Rgba8), PixelFormat::Yuv420p);
        let in_yuv = full(&testing::run::<Invert>(&[], &input).unwrap(), PixelFormat::Rgba8);
        let in_rgba = testing::run::<Invert>(&[], &full(&input, PixelFormat::Rgba8)).unwrap();
        testing::assert_frames_match(&in_rgba, &in_yuv, 1);
        let ramp: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v, 255]).collect();
        let ramp = full(&OwnedFrame::from_pixels(16, 16, PixelFormat::Rgba8, ramp).unwrap(), PixelFormat::Yuv420p);
        let in_yuv = full(&testing::run::<Invert>(&[], &ramp).unwrap(), PixelFormat::Rgba8);
        let in_rgba = testing::run::<Invert>(&[], &full(&ramp, PixelFormat::Rgba8)).unwrap();
        testing::assert_frames_match(&in_rgba, &in_yuv, 0);
        // Black (0) and white (255) trade places; no colour stays no colour.
        let white = full(&testing::solid(3, 3, PixelFormat::Rgba8, [255; 4]), PixelFormat::Yuv420p);
        let black = full(&testing::solid(3, 3, PixelFormat::Rgba8, [0, 0, 0, 255]), PixelFormat::Yuv420p);
        assert_eq!(white.packed(), [&[255; 9][..], &[128; 8]].concat());
        assert_eq!(testing::run::<Invert>(&[], &white).unwrap(), black);
        assert_eq!(testing::run::<Invert>(&[], &black).unwrap(), white);
    }

    #[test]
    fn full_range_yuv420p_bands_give_the_whole_frame_result() {
        for (seed, (w, h, stride)) in [(37, 23, 40), (6, 7, 6), (5, 2, 5)].into_iter().enumerate() {
            let input = in_range(testing::noise(w, h, stride, PixelFormat::Yuv420p, 80 + seed as u32), 2);
            testing::assert_bands_match::<Invert>(&[], &input);
            // And the bands did take the full-range rule.
            let banded = testing::run_in_bands::<Invert>(&[], &input, 3).unwrap();
            assert_eq!(banded.packed(), full_range_reference(&input), "{w}x{h}");
        }
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
    fn yuv420p_equals_ffmpeg_lutyuv_negval() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = testing::noise(w, h, w + pad, PixelFormat::Yuv420p, 20 + seed as u32);
            let Some(expected) = ffmpeg_yuv420p(&input, "lutyuv=y=negval:u=negval:v=negval") else { return };
            let output = testing::run::<Invert>(&[], &input).unwrap();
            assert!(output.same_pixels(&expected), "{w}x{h} + {pad}: {}", testing::compare(&expected, &output, 0));
        }
    }

    #[test]
    fn full_range_yuv420p_equals_ffmpeg_lutyuv_with_the_same_formula() {
        // ffmpeg's negval would store 255 − C in chroma here (see the crate doc): the formula is
        // spelled out.
        let filter = "lutyuv=y=255-val:u='clip(256-val,0,255)':v='clip(256-val,0,255)'";
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = in_range(testing::noise(w, h, w + pad, PixelFormat::Yuv420p, 100 + seed as u32), 2);
            let Some(expected) = ffmpeg_yuv420p(&input, filter) else { return };
            let output = testing::run::<Invert>(&[], &input).unwrap();
            assert!(output.same_pixels(&expected), "{w}x{h} + {pad}: {}", testing::compare(&expected, &output, 0));
        }
    }
}
