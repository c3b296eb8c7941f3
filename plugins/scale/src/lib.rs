//! `scale`: makes each frame `factor` times wider and higher, every sample repeated (nearest
//! neighbour), in rgba8, gray8 or yuv420p. It declares its output shape
//! ([`Plugin::output_shape`]), so the host sizes the next plugin's buffers for the larger
//! frames before any frame moves.
//!
//! Each plane is scaled on its own: output sample `(x, y)` of a plane is input sample
//! `(x · w / W, y · h / H)` of the same plane, `w × h` and `W × H` the plane's input and output
//! sizes. For luma that is `(x / factor, y / factor)`; 4:2:0 chroma follows its own size.

use plugin_sdk::{Frame, FrameMut, ParamSpec, Params, PixelFormat, Plugin, PluginError, Shape};

pub struct Scale {
    factor: u32,
}

impl Plugin for Scale {
    fn params() -> Vec<ParamSpec> {
        vec![ParamSpec::int("factor", 2, 1..=8).help("how many times wider and higher the output is")]
    }

    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8, PixelFormat::Yuv420p]
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        Ok(Scale { factor: params.int("factor") as u32 })
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, PluginError> {
        let side = |v: u32| v.checked_mul(self.factor).ok_or_else(|| PluginError::new("the scaled frame is too large"));
        Ok(Shape::new(side(input.width)?, side(input.height)?, input.format))
    }

    fn process(&mut self, input: &Frame, output: &mut FrameMut) -> Result<(), PluginError> {
        let shape = self.output_shape(input.shape())?;
        output.set_shape(shape.width, shape.height, shape.format)?;
        for (i, mut to) in output.planes_mut().into_iter().enumerate() {
            let from = input.plane(i);
            let sample = from.row_bytes() / from.width() as usize;
            // Which input sample each output sample repeats, along a row: the same for every row.
            let columns: Vec<usize> =
                (0..to.width() as usize).map(|x| x * from.width() as usize / to.width() as usize * sample).collect();
            for y in 0..to.rows() {
                let src = from.row((y as u64 * from.rows() as u64 / to.rows() as u64) as u32);
                for (dst, &at) in to.row_mut(y).chunks_exact_mut(sample).zip(&columns) {
                    dst.copy_from_slice(&src[at..at + sample]);
                }
            }
        }
        Ok(())
    }
}

plugin_sdk::export_plugin!(Scale);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::abi::ParamValue;
    use plugin_sdk::{OwnedFrame, testing};

    /// Every output pixel is the input pixel it covers, looked up one at a time.
    fn reference(input: &OwnedFrame, factor: u32) -> OwnedFrame {
        let mut out = OwnedFrame::new(input.width * factor, input.height * factor, input.format);
        let mut view = out.view_mut();
        for (i, mut plane) in view.planes_mut().into_iter().enumerate() {
            let from = input.view().plane(i);
            let sample = from.row_bytes() / from.width() as usize;
            for y in 0..plane.rows() {
                let sy = y * from.rows() / plane.rows();
                for x in 0..plane.width() as usize {
                    let sx = x * from.width() as usize / plane.width() as usize;
                    plane.row_mut(y)[x * sample..(x + 1) * sample]
                        .copy_from_slice(&from.row(sy)[sx * sample..(sx + 1) * sample]);
                }
            }
        }
        out
    }

    #[test]
    fn every_format_and_factor_matches_the_reference() {
        for format in Scale::formats() {
            for factor in [1, 2, 3] {
                let input = testing::noise(7, 5, format.row_bytes(7) as u32 + 4, *format, factor);
                let out = testing::run::<Scale>(&[("factor", ParamValue::Int(factor as i64))], &input).unwrap();
                assert_eq!((out.width, out.height), (7 * factor, 5 * factor));
                assert!(out.same_pixels(&reference(&input, factor)), "{format:?} x{factor}");
            }
        }
    }

    #[test]
    fn the_declared_shape_is_the_one_made() {
        let plugin = Scale::new(&testing::params_for::<Scale>(&[("factor", ParamValue::Int(4))])).unwrap();
        let declared = plugin.output_shape(Shape::new(640, 360, PixelFormat::Yuv420p)).unwrap();
        assert_eq!(declared, Shape::new(2560, 1440, PixelFormat::Yuv420p));
        assert!(plugin.output_shape(Shape::new(u32::MAX, 2, PixelFormat::Rgba8)).is_err());
    }
}
