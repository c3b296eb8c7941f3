//! `stack`: puts its two inputs, `first` and `second`, into one frame: side by side with
//! `direction = "horizontal"` (the default), one above the other with `"vertical"`. A plugin
//! declares a fixed list of inputs, so a stack takes exactly two; chain stacks for more (the
//! output of one as the `first` input of the next stacks three, and so on).
//!
//! - **horizontal:** the output is `w1 + w2` wide and `max(h1, h2)` high; `first`'s pixel
//!   (`x`, `y`) goes to (`x`, `y`), `second`'s to (`w1 + x`, `y`): both top-aligned.
//! - **vertical:** the output is `max(w1, w2)` wide and `h1 + h2` high; `first`'s pixel
//!   (`x`, `y`) goes to (`x`, `y`), `second`'s to (`x`, `h1 + y`): both left-aligned.
//!
//! Pixels are copied exactly. Output pixels neither input covers (below the shorter input, or
//! right of the narrower) are black: `0, 0, 0, 255` in `rgba8`, `0` in `gray8`.
//!
//! Formats: `rgba8` and `gray8`; both inputs must be in the same one, which the output has.
//! [`Plugin::output_shape_many`] refuses inputs in different formats, and a stacked frame whose
//! width or height would not fit in 32 bits, before any frame moves. The output has `first`'s
//! metadata.

use plugin_sdk::{Frame, FrameMut, InputSpec, ParamSpec, Params, PixelFormat, Plugin, PluginError, Shape};

pub struct Stack {
    vertical: bool,
}

impl Plugin for Stack {
    fn params() -> Vec<ParamSpec> {
        vec![
            ParamSpec::choice("direction", "horizontal", &["horizontal", "vertical"])
                .help("horizontal: `second` right of `first`; vertical: `second` below `first`"),
        ]
    }

    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8]
    }

    fn inputs() -> &'static [InputSpec] {
        const INPUTS: &[InputSpec] =
            &[InputSpec::new("first", "left or top"), InputSpec::new("second", "right or bottom")];
        INPUTS
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        Ok(Stack { vertical: params.str("direction") == "vertical" })
    }

    fn output_shape_many(&self, inputs: &[Shape]) -> Result<Shape, PluginError> {
        let [first, second] = inputs else { return Err(plugin_sdk::wrong_input_count::<Self>(inputs.len())) };
        if first.format != second.format {
            return Err(PluginError::new(format!(
                "stack needs its two inputs in one format, but `first` is {} and `second` is {}",
                first.format.name(),
                second.format.name()
            )));
        }
        let sum = |a: u32, b: u32, side: &str| {
            a.checked_add(b)
                .ok_or_else(|| PluginError::new(format!("the stacked frame would be {side} than {} pixels", u32::MAX)))
        };
        Ok(match self.vertical {
            false => {
                Shape::new(sum(first.width, second.width, "wider")?, first.height.max(second.height), first.format)
            }
            true => {
                Shape::new(first.width.max(second.width), sum(first.height, second.height, "higher")?, first.format)
            }
        })
    }

    fn process(&mut self, _input: &Frame, _output: &mut FrameMut) -> Result<(), PluginError> {
        Err(plugin_sdk::wrong_input_count::<Self>(1))
    }

    fn process_many(&mut self, inputs: &[Frame], output: &mut FrameMut) -> Result<(), PluginError> {
        let [first, second] = inputs else { return Err(plugin_sdk::wrong_input_count::<Self>(inputs.len())) };
        let shape = self.output_shape_many(&[first.shape(), second.shape()])?;
        output.set_shape(shape.width, shape.height, shape.format)?;
        match shape.format {
            PixelFormat::Gray8 => self.place::<1>(output, first, second, [0]),
            _ => self.place::<4>(output, first, second, [0, 0, 0, 255]),
        }
        Ok(())
    }
}

impl Stack {
    /// Writes every row of `output`, for pixels of `N` bytes: each row is two pieces, each a
    /// row of an input or `black`.
    fn place<'a, const N: usize>(&self, output: &mut FrameMut, first: &Frame<'a>, second: &Frame<'a>, black: [u8; N]) {
        let row_of = |frame: &Frame<'a>, y: u32| (y < frame.height()).then(|| frame.row(y));
        for y in 0..output.height() {
            let row = output.row_mut(y);
            let pieces = match self.vertical {
                // `first`'s row (or black) as wide as `first`, then `second`'s, as wide as it.
                false => [(row_of(first, y), first.row_bytes()), (row_of(second, y), second.row_bytes())],
                // The row of the input this row falls in, then black to the output's width.
                true => {
                    let src = match y < first.height() {
                        true => first.row(y),
                        false => second.row(y - first.height()),
                    };
                    [(Some(src), src.len()), (None, row.len() - src.len())]
                }
            };
            let mut x = 0;
            for (src, len) in pieces {
                let piece = &mut row[x..x + len];
                match src {
                    Some(src) => piece.copy_from_slice(src),
                    None => piece.as_chunks_mut::<N>().0.fill(black),
                }
                x += len;
            }
        }
    }
}

plugin_sdk::export_plugin!(Stack);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::abi::ParamValue;
    use plugin_sdk::{OwnedFrame, testing};

    fn direction(vertical: bool) -> [(&'static str, ParamValue); 1] {
        [("direction", ParamValue::Str(if vertical { "vertical" } else { "horizontal" }.into()))]
    }

    /// Every output pixel, one at a time: the pixel of the input placed over it (each input at
    /// its offset), else black.
    fn reference(output: (u32, u32), placed: &[(&OwnedFrame, u32, u32)]) -> OwnedFrame {
        let format = placed[0].0.format;
        let n = format.bytes_per_pixel() as usize;
        let black: &[u8] = if n == 4 { &[0, 0, 0, 255] } else { &[0] };
        let mut out = OwnedFrame::new(output.0, output.1, format);
        for oy in 0..output.1 {
            for ox in 0..output.0 {
                let mut value = black;
                for &(frame, px, py) in placed {
                    if (px..px + frame.width).contains(&ox) && (py..py + frame.height).contains(&oy) {
                        let at = ((oy - py) * frame.stride) as usize + (ox - px) as usize * n;
                        value = &frame.data[at..at + n];
                    }
                }
                let at = (oy * output.0) as usize * n + ox as usize * n;
                out.data[at..at + n].copy_from_slice(value);
            }
        }
        out
    }

    #[test]
    fn both_directions_in_both_formats_match_the_reference() {
        let sizes = [((7, 5), (3, 9)), ((5, 9), (6, 4)), ((1, 1), (9, 3)), ((4, 3), (4, 3)), ((11, 2), (1, 7))];
        for (i, format) in Stack::formats().iter().enumerate() {
            for (j, ((w1, h1), (w2, h2))) in sizes.into_iter().enumerate() {
                let seed = (10 * i + j) as u32;
                let first = testing::noise(w1, h1, format.row_bytes(w1) as u32 + 5, *format, seed);
                let second = testing::noise(w2, h2, format.row_bytes(w2) as u32 + 9, *format, seed + 100);
                let out = testing::run_many::<Stack>(&direction(false), &[&first, &second]).unwrap();
                let expected = reference((w1 + w2, h1.max(h2)), &[(&first, 0, 0), (&second, w1, 0)]);
                testing::assert_frames_match(&expected, &out, 0);
                let out = testing::run_many::<Stack>(&direction(true), &[&first, &second]).unwrap();
                let expected = reference((w1.max(w2), h1 + h2), &[(&first, 0, 0), (&second, 0, h1)]);
                testing::assert_frames_match(&expected, &out, 0);
            }
        }
    }

    #[test]
    fn two_stacks_stack_three() {
        let [a, b, c] = [(5, 3), (2, 6), (7, 4)].map(|(w, h)| testing::noise(w, h, w * 4 + 4, PixelFormat::Rgba8, w));
        let ab = testing::run_many::<Stack>(&direction(false), &[&a, &b]).unwrap();
        let abc = testing::run_many::<Stack>(&direction(true), &[&ab, &c]).unwrap();
        let expected = reference((7, 10), &[(&a, 0, 0), (&b, 5, 0), (&c, 0, 6)]);
        testing::assert_frames_match(&expected, &abc, 0);
    }

    #[test]
    fn default_is_horizontal_and_the_output_has_the_first_metadata() {
        let mut first = testing::solid(2, 1, PixelFormat::Gray8, [10; 4]);
        first.meta.pts = 9;
        first.meta.set_property("camera", "a");
        let mut second = testing::solid(1, 2, PixelFormat::Gray8, [20; 4]);
        second.meta.pts = 4;
        let out = testing::run_many::<Stack>(&[], &[&first, &second]).unwrap();
        assert_eq!((out.width, out.height, out.data.as_slice()), (3, 2, &[10, 10, 20, 0, 0, 20][..]));
        assert_eq!(out.meta, first.meta);
    }

    #[test]
    fn inputs_in_different_formats_are_refused() {
        let plugin = Stack::new(&testing::params_for::<Stack>(&[])).unwrap();
        let (rgba, gray) = (Shape::new(4, 4, PixelFormat::Rgba8), Shape::new(4, 4, PixelFormat::Gray8));
        let err = plugin.output_shape_many(&[rgba, gray]).unwrap_err();
        assert_eq!(err.0, "stack needs its two inputs in one format, but `first` is rgba8 and `second` is gray8");
        let (a, b) = (testing::gradient(3, 3, PixelFormat::Gray8), testing::gradient(3, 3, PixelFormat::Rgba8));
        assert!(testing::run_many::<Stack>(&[], &[&a, &b]).is_err());
        // Too large to describe.
        let wide = Shape::new(u32::MAX, 1, PixelFormat::Gray8);
        let err = plugin.output_shape_many(&[wide, Shape::new(1, 1, PixelFormat::Gray8)]).unwrap_err();
        assert!(err.0.starts_with("the stacked frame would be wider than 4294967295 pixels"), "{err}");
        let plugin = Stack::new(&testing::params_for::<Stack>(&direction(true))).unwrap();
        let tall = Shape::new(1, u32::MAX, PixelFormat::Gray8);
        assert!(plugin.output_shape_many(&[Shape::new(1, 1, PixelFormat::Gray8), tall]).is_err());
        assert_eq!(
            plugin.output_shape_many(&[Shape::new(3, 7, PixelFormat::Gray8), Shape::new(5, 2, PixelFormat::Gray8)]),
            Ok(Shape::new(5, 9, PixelFormat::Gray8))
        );
    }

    #[test]
    fn one_input_is_refused() {
        let err = testing::run::<Stack>(&[], &testing::gradient(2, 2, PixelFormat::Rgba8)).unwrap_err();
        assert!(err.0.contains("takes 2 inputs (first, second), not 1"), "{err}");
        assert_eq!(Stack::inputs().iter().map(|i| i.name).collect::<Vec<_>>(), ["first", "second"]);
    }
}
