//! `flip`: mirrors the frame; parameter `axis` = `"horizontal"` (left↔right) or `"vertical"`
//! (top↔bottom).
//!
//! `yuv420p` frames are flipped plane by plane, and every plane is mirrored at its own size:
//! luma rows at the frame's width, chroma rows at the chroma width `ceil(width / 2)`, and
//! vertically luma row `y` from row `height − 1 − y`, chroma row `y` from `ceil(height / 2) − 1 − y`
//! (as ffmpeg's `hflip` and `vflip` do, bit for bit). Along an odd width or height the last
//! chroma sample covers one luma pixel, not two, so mirrored colour lands one luma pixel away
//! from where it was sited: no better is possible without resampling chroma. Bands: luma rows
//! `rows` and the chroma rows they cover, `abi::chroma_rows(rows)`.

use plugin_sdk::abi::chroma_rows;
use plugin_sdk::{Frame, FrameMut, ParamSpec, Params, PixelFormat, PlaneMut, PlaneRef, Plugin, PluginError};
use std::ops::Range;

pub struct Flip {
    horizontal: bool,
}

impl Plugin for Flip {
    fn params() -> Vec<ParamSpec> {
        vec![
            ParamSpec::choice("axis", "horizontal", &["horizontal", "vertical"])
                .help("horizontal mirrors left and right; vertical mirrors top and bottom"),
        ]
    }

    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8, PixelFormat::Yuv420p]
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        Ok(Flip { horizontal: params.str("axis") == "horizontal" })
    }

    fn band_context(&self) -> Option<u32> {
        // Vertically, a band's rows come from the other end of the frame: its context is all of
        // it (the host maps the whole input anyway, and bands still share out the copying).
        Some(if self.horizontal { 0 } else { u32::MAX })
    }

    fn process(&mut self, input: &Frame, output: &mut FrameMut) -> Result<(), PluginError> {
        self.process_rows(input, output, 0..input.height())
    }

    fn process_rows(&mut self, input: &Frame, output: &mut FrameMut, rows: Range<u32>) -> Result<(), PluginError> {
        output.set_shape(input.width(), input.height(), input.format())?;
        let format = input.format();
        if format == PixelFormat::Yuv420p {
            for plane in 0..3 {
                let rows = if plane == 0 { rows.clone() } else { chroma_rows(rows.clone()) };
                self.flip_plane(input.plane(plane), output.plane_mut(plane), rows);
            }
            return Ok(());
        }
        for y in rows {
            if self.horizontal {
                match format {
                    PixelFormat::Rgba8 => mirror_pixels::<4>(output.row_mut(y), input.row(y)),
                    _ => mirror_pixels::<1>(output.row_mut(y), input.row(y)),
                }
            } else {
                output.row_mut(y).copy_from_slice(input.row(input.height() - 1 - y));
            }
        }
        Ok(())
    }
}

impl Flip {
    /// Rows `rows` of one plane of one-byte samples, mirrored within the plane.
    fn flip_plane(&self, src: PlaneRef, mut dst: PlaneMut, rows: Range<u32>) {
        for y in rows {
            match self.horizontal {
                true => mirror_pixels::<1>(dst.row_mut(y), src.row(y)),
                false => dst.row_mut(y).copy_from_slice(src.row(src.rows() - 1 - y)),
            }
        }
    }
}

/// `dst` = `src`'s pixels of `N` bytes in reverse order. With the pixel size a constant, the
/// compiler turns the loop into vector loads, one whole-pixel shuffle (`i8x16.shuffle` with
/// simd128) and vector stores; a pixel size known only at run time made it one small `memcpy`
/// call per pixel: 9.6 ms a 1080p RGBA frame against 2.0 ms this way, measured on this machine.
#[inline(always)]
fn mirror_pixels<const N: usize>(dst: &mut [u8], src: &[u8]) {
    let (dst, _) = dst.as_chunks_mut::<N>();
    let (src, _) = src.as_chunks::<N>();
    for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
        *d = *s;
    }
}

plugin_sdk::export_plugin!(Flip);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::abi::ParamValue;
    use plugin_sdk::{OwnedFrame, testing};

    fn two_by_two() -> OwnedFrame {
        OwnedFrame::from_pixels(2, 2, PixelFormat::Gray8, vec![1, 2, 3, 4]).unwrap()
    }

    #[test]
    fn flips_horizontally_by_default() {
        assert_eq!(testing::run::<Flip>(&[], &two_by_two()).unwrap().packed(), vec![2, 1, 4, 3]);
    }

    #[test]
    fn flips_vertically() {
        let params = [("axis", ParamValue::Str("vertical".into()))];
        assert_eq!(testing::run::<Flip>(&params, &two_by_two()).unwrap().packed(), vec![3, 4, 1, 2]);
    }

    #[test]
    fn keeps_rgba_pixels_whole() {
        let input = OwnedFrame::from_pixels(2, 1, PixelFormat::Rgba8, vec![1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        assert_eq!(testing::run::<Flip>(&[], &input).unwrap().packed(), vec![5, 6, 7, 8, 1, 2, 3, 4]);
    }

    #[test]
    fn bands_give_the_whole_frame_result() {
        testing::assert_bands_match::<Flip>(&[], &testing::noise(37, 23, 160, PixelFormat::Rgba8, 3));
        let vertical = [("axis", ParamValue::Str("vertical".into()))];
        testing::assert_bands_match::<Flip>(&vertical, &testing::noise(37, 23, 160, PixelFormat::Rgba8, 3));
    }

    fn axis(name: &str) -> [(&'static str, ParamValue); 1] {
        [("axis", ParamValue::Str(name.into()))]
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

    /// Per sample: each plane's sample `(x, y)` from `(w − 1 − x, y)` or `(x, h − 1 − y)` of the
    /// same plane, `w` and `h` that plane's size; the planes packed one after another.
    fn reference(input: &OwnedFrame, horizontal: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for p in 0..3 {
            let (w, h) = match p {
                0 => (input.width, input.height),
                _ => (input.width.div_ceil(2), input.height.div_ceil(2)),
            };
            for y in 0..h {
                for x in 0..w {
                    let (sx, sy) = if horizontal { (w - 1 - x, y) } else { (x, h - 1 - y) };
                    out.push(sample(input, p, sx, sy));
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
            for horizontal in [true, false] {
                let params = axis(if horizontal { "horizontal" } else { "vertical" });
                let output = testing::run::<Flip>(&params, &input).unwrap();
                assert_eq!(output.format, PixelFormat::Yuv420p);
                assert_eq!(output.packed(), reference(&input, horizontal), "{w}x{h} + {pad}, {params:?}");
            }
        }
    }

    #[test]
    fn yuv420p_flipped_twice_is_the_input() {
        let input = testing::noise(37, 23, 40, PixelFormat::Yuv420p, 9);
        for name in ["horizontal", "vertical"] {
            let once = testing::run::<Flip>(&axis(name), &input).unwrap();
            assert!(testing::run::<Flip>(&axis(name), &once).unwrap().same_pixels(&input), "{name}");
        }
    }

    #[test]
    fn yuv420p_bands_give_the_whole_frame_result() {
        for name in ["horizontal", "vertical"] {
            testing::assert_bands_match::<Flip>(&axis(name), &testing::noise(37, 23, 40, PixelFormat::Yuv420p, 5));
            testing::assert_bands_match::<Flip>(&axis(name), &testing::noise(6, 7, 6, PixelFormat::Yuv420p, 6));
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
    fn yuv420p_equals_ffmpeg_hflip_and_vflip() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = testing::noise(w, h, w + pad, PixelFormat::Yuv420p, 20 + seed as u32);
            for (name, filter) in [("horizontal", "hflip"), ("vertical", "vflip")] {
                let Some(expected) = ffmpeg_yuv420p(&input, filter) else { return };
                let output = testing::run::<Flip>(&axis(name), &input).unwrap();
                let report = testing::compare(&expected, &output, 0);
                assert!(output.same_pixels(&expected), "{w}x{h} + {pad}, {filter}: {report}");
            }
        }
    }
}
