//! `flip`: mirrors the frame; parameter `axis` = `"horizontal"` (left↔right) or `"vertical"`
//! (top↔bottom).

use plugin_sdk::{Frame, FrameMut, ParamSpec, Params, PixelFormat, Plugin, PluginError};

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
        &[PixelFormat::Rgba8, PixelFormat::Gray8]
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        Ok(Flip { horizontal: params.str("axis") == "horizontal" })
    }

    fn process(&mut self, input: &Frame, output: &mut FrameMut) -> Result<(), PluginError> {
        output.set_shape(input.width(), input.height(), input.format())?;
        let bpp = input.format().bytes_per_pixel() as usize;
        for y in 0..input.height() {
            if self.horizontal {
                let dst = output.row_mut(y);
                for (d, s) in dst.chunks_exact_mut(bpp).zip(input.row(y).chunks_exact(bpp).rev()) {
                    d.copy_from_slice(s);
                }
            } else {
                output.row_mut(y).copy_from_slice(input.row(input.height() - 1 - y));
            }
        }
        Ok(())
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
}
