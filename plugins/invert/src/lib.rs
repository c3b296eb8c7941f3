//! `invert`: 255 − value for red, green and blue (or luma); alpha kept.

use plugin_sdk::{Frame, FrameMut, Params, PixelFormat, Plugin, PluginError};
use std::ops::Range;

pub struct Invert;

impl Plugin for Invert {
    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8]
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
}
