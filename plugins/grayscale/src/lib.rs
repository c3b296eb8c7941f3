//! `grayscale`: each pixel's red, green and blue become its BT.709 luma; alpha kept.

use plugin_sdk::{Frame, FrameMut, Params, Plugin, PluginError};
use std::ops::Range;

pub struct Grayscale;

impl Plugin for Grayscale {
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
}
