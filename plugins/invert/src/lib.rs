//! `invert`: 255 − value for red, green and blue (or luma); alpha kept.

use plugin_sdk::{Frame, FrameMut, Params, PixelFormat, Plugin, PluginError};

pub struct Invert;

impl Plugin for Invert {
    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8]
    }

    fn new(_params: &Params) -> Result<Self, PluginError> {
        Ok(Invert)
    }

    fn process(&mut self, input: &Frame, output: &mut FrameMut) -> Result<(), PluginError> {
        output.set_shape(input.width(), input.height(), input.format())?;
        for y in 0..input.height() {
            let (src, dst) = (input.row(y), output.row_mut(y));
            match input.format() {
                PixelFormat::Rgba8 => {
                    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                        d[0] = 255 - s[0];
                        d[1] = 255 - s[1];
                        d[2] = 255 - s[2];
                        d[3] = s[3];
                    }
                }
                PixelFormat::Gray8 => dst.iter_mut().zip(src).for_each(|(d, s)| *d = 255 - s),
            }
        }
        Ok(())
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
    fn inverts_gray_and_skips_stride_padding() {
        let mut input = OwnedFrame::with_stride(2, 2, 4, PixelFormat::Gray8);
        input.data = vec![1, 2, 99, 99, 3, 4];
        let output = testing::run::<Invert>(&[], &input).unwrap();
        assert_eq!(output.packed(), vec![254, 253, 252, 251]);
    }
}
