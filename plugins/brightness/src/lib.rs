//! `brightness`: brightness and contrast of red, green and blue (or luma); alpha kept.
//!
//! Parameters `brightness` (int, −255..=255) and `contrast` (float, 0..=4). Each value `v`
//! becomes `(v − 128) × contrast + 128 + brightness`, computed in `f64`, rounded to the nearest
//! integer (halves away from zero) and clamped to 0..=255. The mapping is a 256-entry table built
//! once in `new`. Where a 16.16 fixed-point form reproduces all 256 entries exactly (1,114 of
//! 1,116 parameter pairs in the test grid), a frame is arithmetic that vectorises instead of a
//! lookup per byte: 2.7–3.0 ms a 1080p frame here against 3.7–4.0 ms; else the table.
//!
//! `yuv420p` frames: the same adjustment, in the same units, of luma only; chroma is copied.
//! The range of the luma codes comes from the frame's metadata (`FrameMeta::range`, read once
//! per call): 2 is full range; 1 (limited) and 0 (unknown) are taken as limited range, the
//! SDK's and ffmpeg's default for `yuv420p`. The matrix does not matter (luma only).
//!
//! - **Limited range:** a code `Y` stands for the value `v = (Y − 16) × 255 / 219` on the
//!   0..=255 scale the parameters use, and becomes `((v − 128) × contrast + 128 + brightness) ×
//!   219 / 255 + 16`, computed in `f64` in that order, rounded as above and clamped to 0..=255
//!   ([`adjust_luma`]: a second table, with its own arithmetic form, which fits every pair in the
//!   test grid).
//! - **Full range:** 255 codes a unit, not 219, from code 0: a code `Y` is the value `v = Y`
//!   itself, so it becomes `(Y − 128) × contrast + 128 + brightness`, rounded and clamped: the
//!   first table and its arithmetic form, exactly what a `gray8` frame gets.
//!
//! How it relates to the `rgba8` path: a gray pixel comes out as that path makes it, and with
//! `contrast` 1 so does any pixel that path does not clip, because adding the same amount to
//! red, green and blue adds it to luma and leaves chroma as it was (shown as RGBA, within 1 of
//! rounding; the tests check both). Contrast is where the two differ: on `rgba8` it scales each
//! pixel's distance from gray too, so colours grow more or less vivid; here colour is kept, as
//! ffmpeg's `eq` keeps it. In limited range, codes outside 16..=235 stay codes (they are not
//! clamped to the legal range), so the defaults change nothing; shown as RGBA they clip where
//! the `rgba8` path would. In full range every code is a value, and a gray pixel's luma code is
//! its `rgba8` value, so gray comes out exactly as that path makes it (shown as RGBA in full
//! range; the tests check every gray).
//!
//! How it relates to ffmpeg: in limited range it is bit for bit
//! `lutyuv=y='clip(round((((val-16)*255/219-128)*CONTRAST+128+BRIGHTNESS)*219/255+16),0,255)':u=val:v=val`,
//! in full range `lutyuv=y='clip(round((val-128)*CONTRAST+128+BRIGHTNESS),0,255)':u=val:v=val`.
//! `eq=brightness=B:contrast=C`, the nearest built-in filter, also changes luma only, but it
//! works on the codes as they are: it adds about `255 × B` codes (16 % more than the same step
//! here, since the limited range spans 219 codes, not 255), pivots contrast on code 128 instead
//! of mid-gray (125.9) and rounds in its own fixed point, so it is close but not the same.
//!
//! Bands: luma rows `rows`, and the chroma rows they cover, `abi::chroma_rows(rows)`, copied.

use plugin_sdk::abi::chroma_rows;
use plugin_sdk::{Frame, FrameMut, ParamSpec, Params, PixelFormat, Plugin, PluginError};
use std::ops::Range;

pub struct Brightness {
    table: [u8; 256],
    /// The table as arithmetic, when that reproduces it exactly.
    linear: Option<Linear>,
    /// The table of limited-range luma codes ([`adjust_luma`]), for `yuv420p` (full-range luma
    /// uses `table`).
    luma_table: [u8; 256],
    /// That table as arithmetic, when that reproduces it exactly.
    luma_linear: Option<Linear>,
}

/// The table as `clamp((v × m + k) >> 16, 0, 255)`: per byte a multiply, an add and a shift,
/// which vectorise, where a lookup per byte cannot (wasm has no gather). Used only when it
/// gives every one of the 256 entries exactly (checked in `new`); else the table is used.
#[derive(Clone, Copy, Debug)]
struct Linear {
    m: i32,
    k: i32,
}

impl Linear {
    /// The fixed-point form of `(v − 128) × contrast + 128 + brightness`, rounded half up, if one
    /// of the nearest offsets matches `table` everywhere.
    fn of(table: &[u8; 256], brightness: i64, contrast: f64) -> Option<Linear> {
        Linear::fit(table, contrast, 128.0 + brightness as f64 - 128.0 * contrast)
    }

    /// The fixed-point form of `v × slope + offset`, rounded half up, if one of the nearest
    /// offsets matches `table` everywhere.
    fn fit(table: &[u8; 256], slope: f64, offset: f64) -> Option<Linear> {
        let m = (slope * 65536.0).round() as i32;
        let k = ((offset + 0.5) * 65536.0).floor() as i32;
        [k, k - 1, k + 1]
            .into_iter()
            .map(|k| Linear { m, k })
            .find(|f| (0..=255u8).all(|v| f.apply(v) == table[v as usize]))
    }

    #[inline(always)]
    fn apply(self, v: u8) -> u8 {
        ((v as i32 * self.m + self.k) >> 16).clamp(0, 255) as u8
    }
}

/// The adjusted value of `v`: `(v − 128) × contrast + 128 + brightness`, rounded, clamped.
pub fn adjust(v: u8, brightness: i64, contrast: f64) -> u8 {
    let value = (v as f64 - 128.0) * contrast + 128.0 + brightness as f64;
    value.round().clamp(0.0, 255.0) as u8
}

/// The adjusted value of a limited-range luma code `y`: the code as a value on 0..=255,
/// `v = (y − 16) × 255 / 219`, adjusted as [`adjust`] does, `(v − 128) × contrast + 128 +
/// brightness`, and back to a code, `× 219 / 255 + 16`; rounded, clamped to 0..=255.
pub fn adjust_luma(y: u8, brightness: i64, contrast: f64) -> u8 {
    let value = ((y as f64 - 16.0) * 255.0 / 219.0 - 128.0) * contrast + 128.0 + brightness as f64;
    (value * 219.0 / 255.0 + 16.0).round().clamp(0.0, 255.0) as u8
}

impl Plugin for Brightness {
    fn params() -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("brightness", 0, -255..=255).help("added to red, green and blue after contrast"),
            ParamSpec::float("contrast", 1.0, 0.0..=4.0)
                .help("scales each value's distance from 128; 1 keeps it, 0 makes everything 128"),
        ]
    }

    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8, PixelFormat::Yuv420p]
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        let (brightness, contrast) = (params.int("brightness"), params.float("contrast"));
        let mut table = [0u8; 256];
        for (v, entry) in table.iter_mut().enumerate() {
            *entry = adjust(v as u8, brightness, contrast);
        }
        let luma_table: [u8; 256] = std::array::from_fn(|y| adjust_luma(y as u8, brightness, contrast));
        // `v × contrast + offset` in codes: the formula of `adjust_luma` multiplied out.
        let (mid, scale) = (16.0 + 128.0 * 219.0 / 255.0, 219.0 / 255.0);
        let luma_offset = 16.0 + (128.0 + brightness as f64) * scale - mid * contrast;
        Ok(Brightness {
            linear: Linear::of(&table, brightness, contrast),
            table,
            luma_linear: Linear::fit(&luma_table, contrast, luma_offset),
            luma_table,
        })
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
            self.process_yuv420p(input, output, rows);
            return Ok(());
        }
        let table = &self.table;
        for y in rows {
            let (src, dst) = (input.row(y), output.row_mut(y));
            if let Some(f) = self.linear {
                match input.format() {
                    PixelFormat::Rgba8 => {
                        let (dst, _) = dst.as_chunks_mut::<4>();
                        let (src, _) = src.as_chunks::<4>();
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d = [f.apply(s[0]), f.apply(s[1]), f.apply(s[2]), s[3]];
                        }
                    }
                    _ => dst.iter_mut().zip(src).for_each(|(d, s)| *d = f.apply(*s)),
                }
                continue;
            }
            match input.format() {
                PixelFormat::Rgba8 => {
                    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                        d[0] = table[s[0] as usize];
                        d[1] = table[s[1] as usize];
                        d[2] = table[s[2] as usize];
                        d[3] = s[3];
                    }
                }
                _ => dst.iter_mut().zip(src).for_each(|(d, s)| *d = table[*s as usize]),
            }
        }
        Ok(())
    }
}

impl Brightness {
    /// Luma rows `rows` through the table of the frame's range (limited: the luma table; full:
    /// the table of values); the chroma rows they cover copied.
    fn process_yuv420p(&self, input: &Frame, output: &mut FrameMut, rows: Range<u32>) {
        // One call into the host per call, not per row.
        // Unknown range is limited range.
        let (table, linear) = match input.metadata().colour_range() {
            Some(plugin_sdk::convert::Range::Full) => (&self.table, self.linear),
            _ => (&self.luma_table, self.luma_linear),
        };
        let (src, mut dst) = (input.plane(0), output.plane_mut(0));
        for y in rows.clone() {
            let (s, d) = (src.row(y), dst.row_mut(y));
            match linear {
                Some(f) => d.iter_mut().zip(s).for_each(|(d, s)| *d = f.apply(*s)),
                None => d.iter_mut().zip(s).for_each(|(d, s)| *d = table[*s as usize]),
            }
        }
        for plane in 1..3 {
            let (src, mut dst) = (input.plane(plane), output.plane_mut(plane));
            for y in chroma_rows(rows.clone()) {
                dst.row_mut(y).copy_from_slice(src.row(y));
            }
        }
    }
}

plugin_sdk::export_plugin!(Brightness);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::abi::ParamValue;
    use plugin_sdk::{OwnedFrame, testing};

    /// Per pixel, straight from the formula, no table.
    fn reference(input: &OwnedFrame, brightness: i64, contrast: f64) -> Vec<u8> {
        let bpp = input.format.bytes_per_pixel() as usize;
        let mut out = Vec::new();
        for y in 0..input.height as usize {
            for x in 0..input.width as usize {
                for c in 0..bpp {
                    let v = input.data[y * input.stride as usize + x * bpp + c];
                    if bpp == 4 && c == 3 {
                        out.push(v);
                    } else {
                        let exact = (v as f64 - 128.0) * contrast + 128.0 + brightness as f64;
                        out.push(exact.round().clamp(0.0, 255.0) as u8);
                    }
                }
            }
        }
        out
    }

    fn params(brightness: i64, contrast: f64) -> [(&'static str, ParamValue); 2] {
        [("brightness", ParamValue::Int(brightness)), ("contrast", ParamValue::Float(contrast))]
    }

    #[test]
    fn the_arithmetic_form_equals_the_table_whenever_it_is_used() {
        let mut found = 0;
        for brightness in (-255..=255).step_by(17) {
            for contrast in (0..=40).map(|c| c as f64 / 10.0).chain([0.33, 1.07, 2.5]) {
                let table: [u8; 256] = std::array::from_fn(|v| adjust(v as u8, brightness, contrast));
                if let Some(f) = Linear::of(&table, brightness, contrast) {
                    found += 1;
                    assert!((0..=255u8).all(|v| f.apply(v) == table[v as usize]), "{brightness} {contrast}");
                }
            }
        }
        println!("arithmetic form for {found} of the parameter pairs");
        for (brightness, contrast) in [(0, 1.0), (20, 1.2), (-40, 0.8)] {
            let table: [u8; 256] = std::array::from_fn(|v| adjust(v as u8, brightness, contrast));
            assert!(Linear::of(&table, brightness, contrast).is_some(), "{brightness} {contrast}");
        }
    }

    #[test]
    fn defaults_change_nothing() {
        let input = testing::noise(7, 5, 7 * 4 + 12, PixelFormat::Rgba8, 1);
        let output = testing::run::<Brightness>(&[], &input).unwrap();
        assert_eq!(output.packed(), input.packed());
    }

    #[test]
    fn matches_reference_on_several_shapes() {
        let shapes = [(1, 1, 0), (3, 2, 0), (7, 5, 9), (16, 3, 3), (33, 4, 17)];
        let settings = [(0, 1.0), (40, 1.0), (-75, 1.5), (10, 0.5), (-255, 4.0), (255, 0.0), (3, 0.37)];
        for (seed, &(width, height, pad)) in shapes.iter().enumerate() {
            for format in [PixelFormat::Rgba8, PixelFormat::Gray8] {
                let stride = width * format.bytes_per_pixel() + pad;
                let input = testing::noise(width, height, stride, format, seed as u32);
                for &(b, c) in &settings {
                    let output = testing::run::<Brightness>(&params(b, c), &input).unwrap();
                    assert_eq!(output.format, format);
                    assert_eq!(output.packed(), reference(&input, b, c), "{width}x{height} {format:?} b={b} c={c}");
                }
            }
        }
    }

    #[test]
    fn known_values() {
        let input =
            OwnedFrame::from_pixels(3, 1, PixelFormat::Rgba8, vec![0, 128, 255, 7, 100, 129, 200, 0, 1, 2, 3, 4])
                .unwrap();
        // contrast 0.5: 0 → 64, 128 → 128, 255 → 191.5 → 192, 100 → 114, 129 → 128.5 → 129, 200 → 164,
        // 1 → 64.5 → 65, 2 → 65, 3 → 65.5 → 66.
        let output = testing::run::<Brightness>(&params(0, 0.5), &input).unwrap();
        assert_eq!(output.packed(), vec![64, 128, 192, 7, 114, 129, 164, 0, 65, 65, 66, 4]);
    }

    #[test]
    fn full_brightness_saturates_and_keeps_alpha() {
        let input = testing::noise(5, 3, 5 * 4 + 4, PixelFormat::Rgba8, 7);
        let output = testing::run::<Brightness>(&params(255, 1.0), &input).unwrap();
        for (o, i) in output.packed().chunks_exact(4).zip(input.packed().chunks_exact(4)) {
            assert_eq!(o, [255, 255, 255, i[3]]);
        }
        let output = testing::run::<Brightness>(&params(-255, 1.0), &input).unwrap();
        for (o, i) in output.packed().chunks_exact(4).zip(input.packed().chunks_exact(4)) {
            assert_eq!(o, [0, 0, 0, i[3]]);
        }
    }

    #[test]
    fn zero_contrast_gives_128_everywhere() {
        let input = testing::noise(6, 4, 6 * 4 + 8, PixelFormat::Rgba8, 3);
        let output = testing::run::<Brightness>(&params(0, 0.0), &input).unwrap();
        for (o, i) in output.packed().chunks_exact(4).zip(input.packed().chunks_exact(4)) {
            assert_eq!(o, [128, 128, 128, i[3]]);
        }
        let gray = testing::noise(5, 3, 7, PixelFormat::Gray8, 4);
        let output = testing::run::<Brightness>(&params(0, 0.0), &gray).unwrap();
        assert!(output.packed().iter().all(|&v| v == 128));
    }

    #[test]
    fn bands_give_the_whole_frame_result() {
        let input = testing::noise(37, 23, 160, PixelFormat::Rgba8, 3);
        for contrast in [1.0, 1.7] {
            let params = [("brightness", ParamValue::Int(20)), ("contrast", ParamValue::Float(contrast))];
            testing::assert_bands_match::<Brightness>(&params, &input);
        }
    }

    #[test]
    fn the_luma_arithmetic_form_equals_the_luma_table_whenever_it_is_used() {
        let (mut found, mut pairs) = (0, 0);
        for brightness in (-255..=255).step_by(17) {
            for contrast in (0..=40).map(|c| c as f64 / 10.0).chain([0.33, 1.07, 2.5]) {
                let plugin =
                    Brightness::new(&testing::params_for::<Brightness>(&params(brightness, contrast))).unwrap();
                pairs += 1;
                if let Some(f) = plugin.luma_linear {
                    found += 1;
                    assert!(
                        (0..=255u8).all(|v| f.apply(v) == plugin.luma_table[v as usize]),
                        "{brightness} {contrast}"
                    );
                }
            }
        }
        println!("luma arithmetic form for {found} of {pairs} parameter pairs");
        for (brightness, contrast) in [(0, 1.0), (20, 1.2), (-40, 0.8)] {
            let plugin = Brightness::new(&testing::params_for::<Brightness>(&params(brightness, contrast))).unwrap();
            assert!(plugin.luma_linear.is_some(), "{brightness} {contrast}");
        }
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

    /// Per sample, straight from the formula, no table: luma code to a 0..=255 value, adjusted
    /// as on RGB, back to a code; chroma as it was. The planes packed one after another.
    fn yuv_reference(input: &OwnedFrame, brightness: i64, contrast: f64) -> Vec<u8> {
        let (w, h) = (input.width, input.height);
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let value = (sample(input, 0, x, y) as f64 - 16.0) * 255.0 / 219.0;
                let adjusted = (value - 128.0) * contrast + 128.0 + brightness as f64;
                out.push((adjusted * 219.0 / 255.0 + 16.0).round().clamp(0.0, 255.0) as u8);
            }
        }
        for p in 1..3 {
            for y in 0..h.div_ceil(2) {
                for x in 0..w.div_ceil(2) {
                    out.push(sample(input, p, x, y));
                }
            }
        }
        out
    }

    /// Odd and even sizes, with and without stride padding (which noise fills too).
    const YUV_SHAPES: [(u32, u32, u32); 6] = [(37, 23, 0), (37, 23, 11), (1, 1, 0), (2, 2, 3), (5, 3, 1), (64, 9, 0)];
    const SETTINGS: [(i64, f64); 8] =
        [(0, 1.0), (40, 1.0), (-75, 1.5), (10, 0.5), (-255, 4.0), (255, 0.0), (3, 0.37), (20, 1.07)];

    #[test]
    fn yuv420p_matches_the_per_sample_reference() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = testing::noise(w, h, w + pad, PixelFormat::Yuv420p, seed as u32);
            for (b, c) in SETTINGS {
                let output = testing::run::<Brightness>(&params(b, c), &input).unwrap();
                assert_eq!(output.format, PixelFormat::Yuv420p);
                assert_eq!(output.packed(), yuv_reference(&input, b, c), "{w}x{h} + {pad}, b={b} c={c}");
            }
        }
        let input = testing::noise(37, 23, 40, PixelFormat::Yuv420p, 1);
        assert!(testing::run::<Brightness>(&[], &input).unwrap().same_pixels(&input), "the defaults change nothing");
    }

    /// Every gray (16x16), and colours in 2x2 blocks within 60..196 (so that 4:2:0 loses
    /// nothing): the pictures the yuv420p path is compared with the RGBA path on.
    fn ramp_and_blocks() -> (OwnedFrame, OwnedFrame) {
        let ramp: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v, 255]).collect();
        let ramp = OwnedFrame::from_pixels(16, 16, PixelFormat::Rgba8, ramp).unwrap();
        let mut blocks = OwnedFrame::new(38, 24, PixelFormat::Rgba8);
        for (i, p) in blocks.data.chunks_exact_mut(4).enumerate() {
            let (bx, by) = ((i % 38 / 2) as u32, (i / 38 / 2) as u32);
            let channel = |k: u32| (60 + k % 136) as u8;
            p.copy_from_slice(&[channel(bx * 13), channel(by * 29), channel((bx + by) * 7), 255]);
        }
        (ramp, blocks)
    }

    #[test]
    fn yuv420p_shows_what_rgba_shows() {
        // Shown as RGBA, the yuv420p output is the RGBA output of the same picture, within the
        // rounding of the conversions (which contrast above 1 magnifies, as the RGBA path starts
        // from rounded RGB): on a ramp of every gray for every setting, and with contrast 1 on
        // colours in 2x2 blocks (so that 4:2:0 loses nothing) that stay within 0..=255.
        let (ramp, blocks) = ramp_and_blocks();
        let settings: [(i64, f64); 8] =
            [(0, 1.0), (40, 1.0), (-60, 1.0), (20, 1.2), (-40, 0.8), (10, 0.5), (0, 0.0), (255, 1.0)];
        for (b, c) in settings {
            for (what, picture) in [("gray", &ramp), ("colour", &blocks)] {
                if what == "colour" && (c != 1.0 || b.abs() > 60) {
                    continue; // the RGBA path scales or clips colour here; this one cannot
                }
                let input = testing::to_format(picture, PixelFormat::Yuv420p);
                let in_yuv = testing::to_rgba(&testing::run::<Brightness>(&params(b, c), &input).unwrap());
                let in_rgba = testing::run::<Brightness>(&params(b, c), &testing::to_rgba(&input)).unwrap();
                let tolerance = if c > 1.0 { 2 } else { 1 };
                let report = testing::compare(&in_rgba, &in_yuv, tolerance);
                assert!(report.matches(), "{what}, b={b} c={c}: {report}");
            }
        }
    }

    #[test]
    fn yuv420p_bands_give_the_whole_frame_result() {
        for (b, c) in [(20, 1.0), (20, 1.7), (-3, 0.37)] {
            let input = testing::noise(37, 23, 40, PixelFormat::Yuv420p, 5);
            testing::assert_bands_match::<Brightness>(&params(b, c), &input);
            testing::assert_bands_match::<Brightness>(&params(b, c), &testing::noise(6, 7, 6, PixelFormat::Yuv420p, 6));
        }
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

    /// Per sample, full range, straight from the formula, no table: the luma code is the value,
    /// adjusted as on RGB; chroma as it was. The planes packed one after another.
    fn full_range_reference(input: &OwnedFrame, brightness: i64, contrast: f64) -> Vec<u8> {
        let (w, h) = (input.width, input.height);
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let adjusted = (sample(input, 0, x, y) as f64 - 128.0) * contrast + 128.0 + brightness as f64;
                out.push(adjusted.round().clamp(0.0, 255.0) as u8);
            }
        }
        for p in 1..3 {
            for y in 0..h.div_ceil(2) {
                for x in 0..w.div_ceil(2) {
                    out.push(sample(input, p, x, y));
                }
            }
        }
        out
    }

    #[test]
    fn full_range_yuv420p_matches_its_per_sample_reference() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let input = in_range(testing::noise(w, h, w + pad, PixelFormat::Yuv420p, 40 + seed as u32), 2);
            for (b, c) in SETTINGS {
                let output = testing::run::<Brightness>(&params(b, c), &input).unwrap();
                assert_eq!(output.format, PixelFormat::Yuv420p);
                let expected = full_range_reference(&input, b, c);
                assert_eq!(output.packed(), expected, "{w}x{h} + {pad}, b={b} c={c}");
            }
        }
        // 40 is 40 codes in full range, 34 (40 × 219 / 255, rounded) in limited.
        let gray = OwnedFrame::from_pixels(2, 2, PixelFormat::Yuv420p, vec![100, 100, 100, 100, 128, 128]).unwrap();
        let full = testing::run::<Brightness>(&params(40, 1.0), &in_range(gray.clone(), 2)).unwrap();
        let limited = testing::run::<Brightness>(&params(40, 1.0), &gray).unwrap();
        assert_eq!((full.packed()[0], limited.packed()[0]), (140, 134));
        let input = in_range(testing::noise(37, 23, 40, PixelFormat::Yuv420p, 1), 2);
        assert!(testing::run::<Brightness>(&[], &input).unwrap().same_pixels(&input), "the defaults change nothing");
    }

    #[test]
    fn limited_and_unknown_range_give_the_limited_bytes() {
        for (seed, (w, h, pad)) in YUV_SHAPES.into_iter().enumerate() {
            let noise = testing::noise(w, h, w + pad, PixelFormat::Yuv420p, 60 + seed as u32);
            for (b, c) in SETTINGS {
                let expected = yuv_reference(&noise, b, c);
                for range in [0, 1] {
                    let output = testing::run::<Brightness>(&params(b, c), &in_range(noise.clone(), range)).unwrap();
                    assert_eq!(output.packed(), expected, "{w}x{h} + {pad}, b={b} c={c}, range {range}");
                }
            }
        }
    }

    #[test]
    fn full_range_yuv420p_shows_what_rgba_shows() {
        // As `yuv420p_shows_what_rgba_shows`, with full-range frames shown as RGBA in full range:
        // every gray within 1 for every setting, and colours in 2x2 blocks with contrast 1.
        let (ramp, blocks) = ramp_and_blocks();
        for (b, c) in SETTINGS.into_iter().chain([(-60, 1.0), (255, 1.0), (0, 0.0), (-40, 0.8)]) {
            for (what, picture) in [("gray", &ramp), ("colour", &blocks)] {
                if what == "colour" && (c != 1.0 || b.abs() > 60) {
                    continue; // the RGBA path scales or clips colour here; this one cannot
                }
                let input = full(picture, PixelFormat::Yuv420p);
                let in_yuv = full(&testing::run::<Brightness>(&params(b, c), &input).unwrap(), PixelFormat::Rgba8);
                let in_rgba = testing::run::<Brightness>(&params(b, c), &full(&input, PixelFormat::Rgba8)).unwrap();
                let report = testing::compare(&in_rgba, &in_yuv, 1);
                assert!(report.matches(), "{what}, b={b} c={c}: {report}");
                if what == "gray" {
                    // Gray survives the full-range conversions unchanged, so it matches exactly.
                    assert!(in_rgba.same_pixels(&testing::run::<Brightness>(&params(b, c), &ramp).unwrap()));
                    assert!(testing::compare(&in_rgba, &in_yuv, 0).matches(), "gray, b={b} c={c}");
                }
            }
        }
    }

    #[test]
    fn full_range_yuv420p_bands_give_the_whole_frame_result() {
        for (b, c) in [(20, 1.0), (20, 1.7), (-3, 0.37)] {
            for (seed, (w, h, stride)) in [(37, 23, 40), (6, 7, 6), (5, 2, 5)].into_iter().enumerate() {
                let input = in_range(testing::noise(w, h, stride, PixelFormat::Yuv420p, 80 + seed as u32), 2);
                testing::assert_bands_match::<Brightness>(&params(b, c), &input);
                // And the bands did take the full-range rule.
                let banded = testing::run_in_bands::<Brightness>(&params(b, c), &input, 3).unwrap();
                assert_eq!(banded.packed(), full_range_reference(&input, b, c), "{w}x{h}, b={b} c={c}");
            }
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
    fn yuv420p_equals_ffmpeg_lutyuv_with_the_same_formula() {
        // A 16x16 frame holds every luma code once; chroma codes 0..=127 and 128..=255.
        let mut every_code = OwnedFrame::new(16, 16, PixelFormat::Yuv420p);
        every_code.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 256) as u8);
        let inputs = [every_code, testing::noise(37, 23, 48, PixelFormat::Yuv420p, 7)];
        for (b, c) in SETTINGS {
            let filter =
                format!("lutyuv=y='clip(round((((val-16)*255/219-128)*{c}+128+({b}))*219/255+16),0,255)':u=val:v=val");
            for input in &inputs {
                let Some(expected) = ffmpeg_yuv420p(input, &filter) else { return };
                let output = testing::run::<Brightness>(&params(b, c), input).unwrap();
                let report = testing::compare(&expected, &output, 0);
                assert!(output.same_pixels(&expected), "{}x{}, {filter}: {report}", input.width, input.height);
            }
        }
    }

    #[test]
    fn full_range_yuv420p_equals_ffmpeg_lutyuv_with_the_same_formula() {
        // 32x16: every luma code twice, chroma codes 0..=127 in Cb and 128..=255 in Cr.
        let mut every_code = in_range(OwnedFrame::new(32, 16, PixelFormat::Yuv420p), 2);
        every_code.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 256) as u8);
        let inputs = [every_code, in_range(testing::noise(37, 23, 48, PixelFormat::Yuv420p, 7), 2)];
        for (b, c) in SETTINGS {
            let filter = format!("lutyuv=y='clip(round((val-128)*{c}+128+({b})),0,255)':u=val:v=val");
            for input in &inputs {
                let Some(expected) = ffmpeg_yuv420p(input, &filter) else { return };
                let output = testing::run::<Brightness>(&params(b, c), input).unwrap();
                let report = testing::compare(&expected, &output, 0);
                assert!(output.same_pixels(&expected), "{}x{}, {filter}: {report}", input.width, input.height);
            }
        }
    }
}
