//! `threshold`: each pixel becomes white when its BT.709 luma is at least `level` (0..=255),
//! else black; alpha kept.
//!
//! Luma is computed exactly as `grayscale` does: `(13933 R + 46871 G + 4732 B + 32768) >> 16`.
//! Level 0 makes every pixel white.

use plugin_sdk::{Frame, FrameMut, ParamSpec, Params, Plugin, PluginError};
use std::ops::Range;

pub struct Threshold {
    level: u8,
}

impl Plugin for Threshold {
    fn params() -> Vec<ParamSpec> {
        vec![ParamSpec::int("level", 128, 0..=255).help("pixels with luma at or above this become white, others black")]
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        let level = params.int("level");
        let level = u8::try_from(level).map_err(|_| PluginError::new(format!("level {level} is outside 0..=255")))?;
        Ok(Threshold { level })
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
            // Whole pixels of a constant size and a branch-free select: the loop vectorises.
            let (dst, _) = output.row_mut(y).as_chunks_mut::<4>();
            let (src, _) = input.row(y).as_chunks::<4>();
            for (d, s) in dst.iter_mut().zip(src) {
                let v = 0u8.wrapping_sub((plugin_sdk::luma_bt709(s[0], s[1], s[2]) >= self.level) as u8);
                *d = [v, v, v, s[3]];
            }
        }
        Ok(())
    }
}

plugin_sdk::export_plugin!(Threshold);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::abi::ParamValue;
    use plugin_sdk::{OwnedFrame, PixelFormat, testing};

    fn reference(input: &OwnedFrame, level: i64) -> Vec<u8> {
        let mut out = Vec::new();
        for y in 0..input.height as usize {
            for x in 0..input.width as usize {
                let i = y * input.stride as usize + x * 4;
                let (r, g, b, a) =
                    (input.data[i] as i64, input.data[i + 1] as i64, input.data[i + 2] as i64, input.data[i + 3]);
                let luma = (13933 * r + 46871 * g + 4732 * b + 32768) >> 16;
                let v = if luma >= level { 255 } else { 0 };
                out.extend_from_slice(&[v, v, v, a]);
            }
        }
        out
    }

    fn level(l: i64) -> [(&'static str, ParamValue); 1] {
        [("level", ParamValue::Int(l))]
    }

    #[test]
    fn matches_reference_on_several_shapes() {
        let shapes = [(1, 1, 0), (3, 2, 0), (5, 7, 6), (16, 4, 0), (31, 9, 13)];
        for (seed, &(width, height, pad)) in shapes.iter().enumerate() {
            let input = testing::noise(width, height, width * 4 + pad, PixelFormat::Rgba8, seed as u32);
            for l in [0, 1, 64, 127, 128, 200, 254, 255] {
                let output = testing::run::<Threshold>(&level(l), &input).unwrap();
                assert_eq!(output.packed(), reference(&input, l), "{width}x{height} pad {pad} level {l}");
            }
            let output = testing::run::<Threshold>(&[], &input).unwrap();
            assert_eq!(output.packed(), reference(&input, 128), "default level");
        }
    }

    #[test]
    fn level_zero_is_all_white() {
        let mut input = testing::noise(6, 5, 6 * 4 + 4, PixelFormat::Rgba8, 9);
        input.data[..4].copy_from_slice(&[0, 0, 0, 77]);
        let output = testing::run::<Threshold>(&level(0), &input).unwrap();
        for (o, i) in output.packed().chunks_exact(4).zip(input.packed().chunks_exact(4)) {
            assert_eq!(o, [255, 255, 255, i[3]]);
        }
    }

    #[test]
    fn boundary_luma_is_white() {
        // Luma of (128, 128, 128) is 128: white at level 128, black at level 129.
        let input =
            OwnedFrame::from_pixels(2, 1, PixelFormat::Rgba8, vec![128, 128, 128, 5, 255, 255, 255, 6]).unwrap();
        assert_eq!(
            testing::run::<Threshold>(&level(128), &input).unwrap().packed(),
            vec![255, 255, 255, 5, 255, 255, 255, 6]
        );
        assert_eq!(
            testing::run::<Threshold>(&level(129), &input).unwrap().packed(),
            vec![0, 0, 0, 5, 255, 255, 255, 6]
        );
        assert_eq!(
            testing::run::<Threshold>(&level(255), &input).unwrap().packed(),
            vec![0, 0, 0, 5, 255, 255, 255, 6]
        );
    }

    #[test]
    fn refuses_gray_input_and_bad_level() {
        let input = OwnedFrame::new(2, 2, PixelFormat::Gray8);
        assert!(testing::run::<Threshold>(&[], &input).is_err());
        let input = OwnedFrame::new(2, 2, PixelFormat::Rgba8);
        assert!(testing::run::<Threshold>(&level(256), &input).is_err());
        assert!(testing::run::<Threshold>(&level(-1), &input).is_err());
    }

    #[test]
    fn bands_give_the_whole_frame_result() {
        testing::assert_bands_match::<Threshold>(&level(90), &testing::noise(37, 23, 160, PixelFormat::Rgba8, 3));
    }
}
