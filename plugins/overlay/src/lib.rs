//! `overlay`: draws its `foreground` input over its `background` input, the foreground's
//! top-left corner at (`x`, `y`) of the background, through the foreground's alpha times an
//! `opacity`: Porter–Duff "over" on straight (not premultiplied) alpha, in exact integer
//! arithmetic. The output has the background's shape (size and format) and metadata.
//!
//! Inputs, in order: `background` (role "background") and `foreground` (role "overlay"). Both
//! must be `rgba8`: it is the one format taken (the host converts other frames to it); a
//! `yuv420p` background has no alpha to composite into, and a foreground in it none to composite
//! with.
//!
//! Foreground pixel (`i`, `j`) lands on background pixel (`x + i`, `y + j`). `x` and `y` may be
//! negative or beyond the background's edges: what falls outside the background is clipped, and
//! background pixels the foreground does not cover are copied unchanged.
//!
//! Where the foreground covers the background, with foreground pixel `F` (alpha `F.a`) and
//! background pixel `B` (alpha `b`), every division an integer division (rounding down):
//!
//! - `k = round(opacity × 255)`, once per instance, halves away from zero (0.5 gives 128);
//! - `a = (F.a × k + 127) / 255`: the foreground's effective alpha, `F.a × opacity` rounded to
//!   the nearest integer (a tie cannot occur);
//! - where `a = 0` the output pixel is `B`, unchanged;
//! - otherwise, with the weights `wf = 255 × a` and `wb = b × (255 − a)` (alphas in 255ths, so
//!   the weights are in 255²ths) and `total = wf + wb`:
//!   - each of red, green and blue: `(F.c × wf + B.c × wb + total / 2) / total`, the exact
//!     weighted mean rounded to nearest, halves up;
//!   - alpha: `(total + 127) / 255`, that is `a + b × (255 − a) / 255` rounded to nearest.
//!
//! Over an opaque background (`b = 255`) this is exactly `out.c = (F.c × a + B.c × (255 − a) +
//! 127) / 255` with alpha 255, which is how it is computed there (the unit tests check the two
//! forms agree for every value). With `a = 255` the output is `F`'s colour with alpha 255.

use plugin_sdk::{Frame, FrameMut, InputSpec, ParamSpec, Params, PixelFormat, Plugin, PluginError, Shape};

pub struct Overlay {
    x: i64,
    y: i64,
    /// `round(opacity × 255)`.
    opacity: u32,
}

impl Plugin for Overlay {
    fn params() -> Vec<ParamSpec> {
        let (min, max) = (i32::MIN as i64, i32::MAX as i64);
        vec![
            ParamSpec::int("x", 0, min..=max).help("column of the background where the foreground's left edge goes"),
            ParamSpec::int("y", 0, min..=max).help("row of the background where the foreground's top edge goes"),
            ParamSpec::float("opacity", 1.0, 0.0..=1.0).help("multiplies the foreground's alpha"),
        ]
    }

    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8]
    }

    fn inputs() -> &'static [InputSpec] {
        const INPUTS: &[InputSpec] =
            &[InputSpec::new("background", "background"), InputSpec::new("foreground", "overlay")];
        INPUTS
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        let opacity = (params.float("opacity").clamp(0.0, 1.0) * 255.0).round() as u32;
        Ok(Overlay { x: params.int("x"), y: params.int("y"), opacity })
    }

    fn output_shape_many(&self, inputs: &[Shape]) -> Result<Shape, PluginError> {
        match inputs {
            [background, _foreground] => Ok(*background),
            _ => Err(plugin_sdk::wrong_input_count::<Self>(inputs.len())),
        }
    }

    fn process(&mut self, _input: &Frame, _output: &mut FrameMut) -> Result<(), PluginError> {
        Err(plugin_sdk::wrong_input_count::<Self>(1))
    }

    fn process_many(&mut self, inputs: &[Frame], output: &mut FrameMut) -> Result<(), PluginError> {
        let [background, foreground] = inputs else { return Err(plugin_sdk::wrong_input_count::<Self>(inputs.len())) };
        output.copy_from(background)?;
        // The rectangle of the background that the foreground covers, in background pixels.
        let span = |at: i64, inner: u32, outer: u32| at.max(0)..(at + inner as i64).min(outer as i64);
        let (columns, rows) =
            (span(self.x, foreground.width(), output.width()), span(self.y, foreground.height(), output.height()));
        if columns.is_empty() || rows.is_empty() {
            return Ok(());
        }
        // Byte ranges of a covered row, in the output and in the foreground.
        let out_bytes = columns.start as usize * 4..columns.end as usize * 4;
        let fg_start = (columns.start - self.x) as usize * 4;
        let fg_bytes = fg_start..fg_start + out_bytes.len();
        for y in rows {
            let fg = &foreground.row((y - self.y) as u32)[fg_bytes.clone()];
            let out = &mut output.row_mut(y as u32)[out_bytes.clone()];
            let (out, _) = out.as_chunks_mut::<4>();
            let (fg, _) = fg.as_chunks::<4>();
            for (o, f) in out.iter_mut().zip(fg) {
                *o = over(*f, *o, self.opacity);
            }
        }
        Ok(())
    }
}

/// `fg` over `bg` with the foreground's alpha scaled by `opacity` (0..=255), as the crate doc
/// says.
#[inline]
pub fn over(fg: [u8; 4], bg: [u8; 4], opacity: u32) -> [u8; 4] {
    let a = (fg[3] as u32 * opacity + 127) / 255;
    if a == 0 {
        return bg;
    }
    if bg[3] == 255 {
        let mix = |f: u8, b: u8| ((f as u32 * a + b as u32 * (255 - a) + 127) / 255) as u8;
        return [mix(fg[0], bg[0]), mix(fg[1], bg[1]), mix(fg[2], bg[2]), 255];
    }
    let (wf, wb) = (255 * a, bg[3] as u32 * (255 - a));
    // Not 0: a > 0.
    let total = wf + wb;
    let mix = |f: u8, b: u8| ((f as u32 * wf + b as u32 * wb + total / 2) / total) as u8;
    [mix(fg[0], bg[0]), mix(fg[1], bg[1]), mix(fg[2], bg[2]), ((total + 127) / 255) as u8]
}

plugin_sdk::export_plugin!(Overlay);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::abi::ParamValue;
    use plugin_sdk::{OwnedFrame, testing};

    /// The crate doc's formula for one pixel, in its general form only.
    fn over_reference(f: [u8; 4], b: [u8; 4], k: u32) -> [u8; 4] {
        let a = (f[3] as u32 * k + 127) / 255;
        let wf = 255 * a;
        let wb = b[3] as u32 * (255 - a);
        let total = wf + wb;
        if a == 0 {
            return b;
        }
        let mut out = [0u8; 4];
        for c in 0..3 {
            out[c] = ((f[c] as u32 * wf + b[c] as u32 * wb + total / 2) / total) as u8;
        }
        out[3] = ((total + 127) / 255) as u8;
        out
    }

    fn pixel(frame: &OwnedFrame, x: u32, y: u32) -> [u8; 4] {
        let at = (y * frame.stride + x * 4) as usize;
        frame.data[at..at + 4].try_into().unwrap()
    }

    /// Every background pixel, looked up one at a time: the foreground pixel over it if one
    /// lands there, else itself.
    fn reference(bg: &OwnedFrame, fg: &OwnedFrame, x: i64, y: i64, opacity: f64) -> OwnedFrame {
        let k = (opacity * 255.0).round() as u32;
        let mut out = OwnedFrame::new(bg.width, bg.height, PixelFormat::Rgba8);
        for oy in 0..bg.height {
            for ox in 0..bg.width {
                let (fx, fy) = (ox as i64 - x, oy as i64 - y);
                let inside = (0..fg.width as i64).contains(&fx) && (0..fg.height as i64).contains(&fy);
                let value = match inside {
                    true => over_reference(pixel(fg, fx as u32, fy as u32), pixel(bg, ox, oy), k),
                    false => pixel(bg, ox, oy),
                };
                let at = ((oy * bg.width + ox) * 4) as usize;
                out.data[at..at + 4].copy_from_slice(&value);
            }
        }
        out
    }

    fn run(bg: &OwnedFrame, fg: &OwnedFrame, x: i64, y: i64, opacity: f64) -> OwnedFrame {
        let params = [("x", ParamValue::Int(x)), ("y", ParamValue::Int(y)), ("opacity", ParamValue::Float(opacity))];
        testing::run_many::<Overlay>(&params, &[bg, fg]).unwrap()
    }

    #[test]
    fn noise_at_every_placement_matches_the_reference() {
        // Odd sizes and padded rows; every byte (alpha too) is noise, so every case of the
        // formula occurs: transparent, opaque and translucent on both sides.
        let bg = testing::noise(23, 17, 23 * 4 + 12, PixelFormat::Rgba8, 1);
        let fg = testing::noise(9, 7, 9 * 4 + 20, PixelFormat::Rgba8, 2);
        let placements = [
            (0, 0),
            (5, 3),
            (-4, -3),   // clipped at the top left
            (18, 13),   // clipped at the bottom right
            (-4, 12),   // clipped left and bottom
            (20, -5),   // clipped right and top
            (-9, 0),    // just off the left edge
            (23, 17),   // just off the bottom right
            (-100, 50), // far away
            (-1, -1),
            (14, 10), // the foreground's last column and row on the background's
        ];
        for (x, y) in placements {
            for opacity in [1.0, 0.5, 0.3, 0.0] {
                let out = run(&bg, &fg, x, y, opacity);
                assert_eq!(out.shape(), bg.shape());
                testing::assert_frames_match(&reference(&bg, &fg, x, y, opacity), &out, 0);
            }
        }
    }

    #[test]
    fn a_foreground_larger_than_the_background_covers_all_of_it() {
        let bg = testing::noise(5, 3, 5 * 4 + 4, PixelFormat::Rgba8, 3);
        let fg = testing::noise(11, 9, 11 * 4, PixelFormat::Rgba8, 4);
        for (x, y) in [(-3, -2), (0, 0), (-6, -6)] {
            testing::assert_frames_match(&reference(&bg, &fg, x, y, 0.8), &run(&bg, &fg, x, y, 0.8), 0);
        }
    }

    #[test]
    fn the_opaque_background_shortcut_is_the_general_formula() {
        for k in [255, 128, 77, 1] {
            for fa in 0..=255u8 {
                for f in 0..=255u8 {
                    for b in [0, 1, 17, 128, 200, 254, 255] {
                        let (fg, bg) = ([f, 255 - f, f / 2, fa], [b, 255 - b, b / 3, 255]);
                        assert_eq!(over(fg, bg, k), over_reference(fg, bg, k), "{fg:?} over {bg:?}, k {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_alpha_pair_is_porter_duff_over_within_rounding() {
        for fa in 0..=255u32 {
            for ba in 0..=255u32 {
                let (fg, bg) = ([250, 10, 128, fa as u8], [3, 240, 77, ba as u8]);
                let got = over(fg, bg, 255);
                assert_eq!(got, over_reference(fg, bg, 255));
                let (af, ab) = (fa as f64 / 255.0, ba as f64 / 255.0);
                let alpha = af + ab * (1.0 - af);
                assert!((got[3] as f64 - alpha * 255.0).abs() <= 0.5 + 1e-9, "{fa} over {ba}: alpha {}", got[3]);
                if alpha > 0.0 {
                    for c in 0..3 {
                        let exact = (fg[c] as f64 * af + bg[c] as f64 * ab * (1.0 - af)) / alpha;
                        assert!((got[c] as f64 - exact).abs() <= 0.5 + 1e-9, "{fa} over {ba}: {got:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn opacity_ends_and_alpha_ends() {
        let bg = testing::solid(4, 4, PixelFormat::Rgba8, [10, 20, 30, 255]);
        let fg = testing::solid(2, 2, PixelFormat::Rgba8, [200, 100, 50, 255]);
        // Opaque foreground at full opacity: its pixels, exactly.
        let out = run(&bg, &fg, 1, 1, 1.0);
        assert_eq!(pixel(&out, 1, 1), [200, 100, 50, 255]);
        assert_eq!(pixel(&out, 0, 0), [10, 20, 30, 255]);
        // Opacity 0: the background, exactly.
        assert!(run(&bg, &fg, 1, 1, 0.0).same_pixels(&bg));
        // Half: k = 128, (200·128 + 10·127 + 127) / 255 = 105.
        assert_eq!(pixel(&run(&bg, &fg, 1, 1, 0.5), 2, 2), [105, 60, 40, 255]);
        // A transparent foreground leaves even a transparent background's colour as it was.
        let clear = testing::solid(4, 4, PixelFormat::Rgba8, [9, 8, 7, 0]);
        let ghost = testing::solid(4, 4, PixelFormat::Rgba8, [1, 2, 3, 0]);
        assert!(run(&clear, &ghost, 0, 0, 1.0).same_pixels(&clear));
    }

    #[test]
    fn the_output_is_the_background_shape_and_metadata() {
        let mut bg = testing::noise(7, 5, 28, PixelFormat::Rgba8, 5);
        bg.meta.pts = 42;
        bg.meta.set_property("scene", "a");
        let mut fg = testing::noise(3, 9, 12, PixelFormat::Rgba8, 6);
        fg.meta.pts = 7;
        let out = run(&bg, &fg, 2, 2, 1.0);
        assert_eq!(out.shape(), Shape::new(7, 5, PixelFormat::Rgba8));
        assert_eq!(out.meta, bg.meta);
        let plugin = Overlay::new(&testing::params_for::<Overlay>(&[])).unwrap();
        let shapes = [Shape::new(640, 360, PixelFormat::Rgba8), Shape::new(64, 64, PixelFormat::Rgba8)];
        assert_eq!(plugin.output_shape_many(&shapes).unwrap(), shapes[0]);
        assert!(plugin.output_shape_many(&shapes[..1]).is_err());
    }

    #[test]
    fn one_input_is_refused() {
        let input = testing::solid(2, 2, PixelFormat::Rgba8, [0, 0, 0, 255]);
        let err = testing::run::<Overlay>(&[], &input).unwrap_err();
        assert!(err.0.contains("takes 2 inputs (background, foreground), not 1"), "{err}");
        let gray = testing::solid(2, 2, PixelFormat::Gray8, [0; 4]);
        assert!(testing::run_many::<Overlay>(&[], &[&input, &gray]).is_err());
        assert_eq!(
            Overlay::inputs().iter().map(|i| (i.name, i.role)).collect::<Vec<_>>(),
            [("background", "background"), ("foreground", "overlay")]
        );
    }
}
