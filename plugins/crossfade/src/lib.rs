//! `crossfade`: a transition from its `from` input to its `to` input over a time window, by
//! timestamp. Inputs, in order: `from` (role "from") and `to` (role "to"), which must have the
//! same shape (size and format; [`Plugin::output_shape_many`] refuses others before any frame
//! moves). The output has that shape, and `from`'s metadata.
//!
//! **Time.** A pair of frames is at time `t`, in microseconds: the `from` frame's
//! `metadata().pts_us()`, or, where its metadata has no time base (`time_base` with a 0
//! numerator or denominator), its `timestamp_us()`. The `to` frame's time is not read.
//!
//! **Weight.** With `start = start_ms × 1000` and `duration = duration_ms × 1000` (µs), the
//! weight of `to` is `w = clamp((t − start) / duration, 0, 1)`, taken in 65536ths and rounded to
//! nearest, halves up: `W = 0` for `t ≤ start`, `W = 65536` for `t ≥ start + duration`, and in
//! between `W = ((t − start) × 65536 + duration / 2) / duration` (integer division, rounding
//! down, of non-negative numbers).
//!
//! **Mix.** Every sample (every byte of every row of every plane: red, green, blue and alpha of
//! `rgba8`, luma of `gray8`, Y, Cb and Cr of `yuv420p`) is
//! `out = (from × (65536 − W) + to × W + 32768) >> 16`: the weighted mean rounded to nearest,
//! halves up. So before and at the start the output is `from` exactly, at and after the end `to`
//! exactly, and midway (`W = 32768`) `(from + to + 1) >> 1`. Y'CbCr codes are mixed as they are
//! (both inputs should share a range and matrix); neutral chroma (128) stays neutral. Alpha is
//! mixed like any channel: this is not compositing.

use plugin_sdk::{Frame, FrameMut, InputSpec, ParamSpec, Params, PixelFormat, Plugin, PluginError, Shape};

pub struct Crossfade {
    start_us: i64,
    duration_us: i64,
}

/// `W` for the whole of `to`.
pub const ONE: u32 = 1 << 16;

impl Plugin for Crossfade {
    fn params() -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("start_ms", 0, i32::MIN as i64..=i32::MAX as i64)
                .help("when the transition begins, in milliseconds of the `from` frames' time; until then, all `from`"),
            ParamSpec::int("duration_ms", 1000, 1..=i32::MAX as i64)
                .help("how long the transition takes, in milliseconds; from start_ms + duration_ms on, all `to`"),
        ]
    }

    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8, PixelFormat::Yuv420p]
    }

    fn inputs() -> &'static [InputSpec] {
        const INPUTS: &[InputSpec] = &[InputSpec::new("from", "from"), InputSpec::new("to", "to")];
        INPUTS
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        Ok(Crossfade {
            start_us: params.int("start_ms").saturating_mul(1000),
            duration_us: params.int("duration_ms").clamp(1, i32::MAX as i64) * 1000,
        })
    }

    fn output_shape_many(&self, inputs: &[Shape]) -> Result<Shape, PluginError> {
        match inputs {
            [from, to] if from == to => Ok(*from),
            [from, to] => Err(PluginError::new(format!(
                "crossfade needs its two inputs in the same shape, but `from` is {from} and `to` is {to}"
            ))),
            _ => Err(plugin_sdk::wrong_input_count::<Self>(inputs.len())),
        }
    }

    fn process(&mut self, _input: &Frame, _output: &mut FrameMut) -> Result<(), PluginError> {
        Err(plugin_sdk::wrong_input_count::<Self>(1))
    }

    fn process_many(&mut self, inputs: &[Frame], output: &mut FrameMut) -> Result<(), PluginError> {
        let [from, to] = inputs else { return Err(plugin_sdk::wrong_input_count::<Self>(inputs.len())) };
        let shape = self.output_shape_many(&[from.shape(), to.shape()])?;
        output.set_shape(shape.width, shape.height, shape.format)?;
        let w = self.weight(time_us(from));
        for (i, mut plane) in output.planes_mut().into_iter().enumerate() {
            let (a, b) = (from.plane(i), to.plane(i));
            for y in 0..plane.rows() {
                mix_row(plane.row_mut(y), a.row(y), b.row(y), w);
            }
        }
        Ok(())
    }
}

impl Crossfade {
    /// `W`, the weight of `to` in 65536ths, for a pair of frames at `t` µs (see the crate doc).
    pub fn weight(&self, t: i64) -> u32 {
        let (elapsed, duration) = (t as i128 - self.start_us as i128, self.duration_us as i128);
        match elapsed {
            ..=0 => 0,
            e if e >= duration => ONE,
            e => ((e * ONE as i128 + duration / 2) / duration) as u32,
        }
    }
}

/// The time of a `from` frame, in µs: its metadata's, or its timestamp where that has no time
/// base.
pub fn time_us(frame: &Frame) -> i64 {
    let meta = frame.metadata();
    match meta.time_base {
        (0, _) | (_, 0) => frame.timestamp_us(),
        _ => meta.pts_us(),
    }
}

/// `out = (from × (65536 − w) + to × w + 32768) >> 16` for every byte of a row.
fn mix_row(out: &mut [u8], from: &[u8], to: &[u8], w: u32) {
    match w {
        0 => out.copy_from_slice(from),
        ONE => out.copy_from_slice(to),
        _ => {
            let (from, to) = (&from[..out.len()], &to[..out.len()]);
            for ((o, &f), &t) in out.iter_mut().zip(from).zip(to) {
                *o = ((f as u32 * (ONE - w) + t as u32 * w + (ONE / 2)) >> 16) as u8;
            }
        }
    }
}

plugin_sdk::export_plugin!(Crossfade);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::abi::ParamValue;
    use plugin_sdk::{OwnedFrame, testing};

    fn params(start_ms: i64, duration_ms: i64) -> [(&'static str, ParamValue); 2] {
        [("start_ms", ParamValue::Int(start_ms)), ("duration_ms", ParamValue::Int(duration_ms))]
    }

    /// `from` at `t_us` by its metadata: pts in 90 kHz units where that is exact, else µs.
    fn at(mut frame: OwnedFrame, t_us: i64) -> OwnedFrame {
        frame.meta.time_base = match t_us % 100 {
            0 => (1, 90_000),
            _ => (1, 1_000_000),
        };
        frame.meta.pts = t_us * frame.meta.time_base.1 as i64 / 1_000_000;
        frame
    }

    /// Every sample of every plane, one at a time, by the crate doc's formulas.
    fn reference(from: &OwnedFrame, to: &OwnedFrame, t_us: i64, start_ms: i64, duration_ms: i64) -> OwnedFrame {
        let (start, duration) = (start_ms * 1000, duration_ms * 1000);
        let w: i64 = if t_us <= start {
            0
        } else if t_us >= start + duration {
            65536
        } else {
            ((t_us - start) * 65536 + duration / 2) / duration
        };
        let mut out = OwnedFrame::new(from.width, from.height, from.format);
        let mut view = out.view_mut();
        for (i, mut plane) in view.planes_mut().into_iter().enumerate() {
            let (a, b) = (from.view().plane(i), to.view().plane(i));
            for y in 0..plane.rows() {
                for x in 0..plane.row_bytes() {
                    let mixed = (a.row(y)[x] as i64 * (65536 - w) + b.row(y)[x] as i64 * w + 32768) / 65536;
                    plane.row_mut(y)[x] = mixed as u8;
                }
            }
        }
        out
    }

    #[test]
    fn every_format_at_every_boundary_time_matches_the_reference() {
        // start 2000 ms, duration 1000 ms.
        let times = [
            -5_000_000, // long before the start
            1_999_000,  // just before the start
            2_000_000,  // at the start: all `from`
            2_000_001,  // W = round(65536 / 1e6) = 0
            2_000_008,  // W = round(0.524288) = 1
            2_250_000,  // a quarter
            2_333_333,  // a third
            2_500_000,  // midway
            2_999_999,  // W = 65536 − round(0.065536) = 65536: all `to`, one µs early
            3_000_000,  // at the end: all `to`
            9_000_000,  // after the end
        ];
        for (n, format) in Crossfade::formats().iter().enumerate() {
            let row = format.row_bytes(13) as u32;
            let from = testing::noise(13, 9, row + 7, *format, 10 + n as u32);
            let to = testing::noise(13, 9, row + 3, *format, 20 + n as u32);
            for t in times {
                let out = testing::run_many::<Crossfade>(&params(2000, 1000), &[&at(from.clone(), t), &to]).unwrap();
                assert_eq!(out.shape(), from.shape());
                testing::assert_frames_match(&reference(&from, &to, t, 2000, 1000), &out, 0);
            }
        }
    }

    #[test]
    fn the_ends_are_the_inputs_and_the_middle_rounds_halves_up() {
        let from = testing::noise(5, 3, 5 * 4 + 4, PixelFormat::Rgba8, 1);
        let to = testing::noise(5, 3, 5 * 4, PixelFormat::Rgba8, 2);
        let run = |t| testing::run_many::<Crossfade>(&params(0, 1000), &[&at(from.clone(), t), &to]).unwrap();
        assert!(run(-1).same_pixels(&from));
        assert!(run(0).same_pixels(&from));
        assert!(run(1_000_000).same_pixels(&to));
        assert!(run(1_000_001).same_pixels(&to));
        let midway: Vec<u8> =
            from.packed().iter().zip(to.packed()).map(|(&f, t)| ((f as u16 + t as u16 + 1) >> 1) as u8).collect();
        assert_eq!(run(500_000).packed(), midway);
    }

    #[test]
    fn weights() {
        let fade = Crossfade::new(&testing::params_for::<Crossfade>(&params(1000, 3))).unwrap();
        // 65536 × elapsed / 3000 µs, rounded to nearest: 1000 µs is 21845.33, 2000 µs 43690.67.
        let expected = [(0, 0), (999_999, 0), (1_000_000, 0), (1_000_001, 22), (1_001_000, 21845), (1_001_500, 32768)];
        for (t, w) in expected.into_iter().chain([(1_002_000, 43691), (1_002_999, 65514), (1_003_000, ONE)]) {
            assert_eq!(fade.weight(t), w, "t = {t}");
        }
        assert_eq!(fade.weight(i64::MAX), ONE);
        assert_eq!(fade.weight(i64::MIN), 0);
        // The widest window and the extreme times stay exact.
        let long = params(i32::MIN as i64, i32::MAX as i64);
        let fade = Crossfade::new(&testing::params_for::<Crossfade>(&long)).unwrap();
        assert_eq!(fade.weight(i32::MIN as i64 * 1000 + i32::MAX as i64 * 500), ONE / 2);
    }

    #[test]
    fn time_comes_from_the_metadata_else_the_timestamp() {
        let from = testing::solid(3, 3, PixelFormat::Gray8, [0; 4]);
        let to = testing::solid(3, 3, PixelFormat::Gray8, [200; 4]);
        let run = |f: &OwnedFrame| testing::run_many::<Crossfade>(&params(0, 1000), &[f, &to]).unwrap().data[0];
        // No time base: timestamp_us, 250 ms, a quarter: (200 × 16384 + 32768) >> 16 = 50.
        let mut frame = from.clone();
        frame.timestamp_us = 250_000;
        assert_eq!(run(&frame), 50);
        // A time base: pts wins, 45000 / 90000 s is midway, 100.
        frame.meta.time_base = (1, 90_000);
        frame.meta.pts = 45_000;
        assert_eq!(run(&frame), 100);
        // A 0 numerator is no time base either.
        frame.meta.time_base = (0, 90_000);
        assert_eq!(run(&frame), 50);
        // The `to` frame's time does not count.
        let mut late = to.clone();
        late.meta.time_base = (1, 1);
        late.meta.pts = 100;
        assert_eq!(testing::run_many::<Crossfade>(&[], &[&from, &late]).unwrap().data[0], 0);
    }

    #[test]
    fn the_output_has_the_from_frame_metadata() {
        let mut from = at(testing::noise(4, 4, 16, PixelFormat::Rgba8, 3), 300_000);
        from.meta.set_property("scene", "one");
        let to = at(testing::noise(4, 4, 16, PixelFormat::Rgba8, 4), 0);
        assert_eq!(testing::run_many::<Crossfade>(&[], &[&from, &to]).unwrap().meta, from.meta);
    }

    #[test]
    fn inputs_of_different_shapes_are_refused() {
        let plugin = Crossfade::new(&testing::params_for::<Crossfade>(&[])).unwrap();
        let a = Shape::new(64, 48, PixelFormat::Rgba8);
        for b in [Shape::new(32, 48, PixelFormat::Rgba8), Shape::new(64, 47, PixelFormat::Rgba8)] {
            let err = plugin.output_shape_many(&[a, b]).unwrap_err();
            assert_eq!(
                err.0,
                format!("crossfade needs its two inputs in the same shape, but `from` is {a} and `to` is {b}")
            );
        }
        let err = plugin.output_shape_many(&[a, Shape::new(64, 48, PixelFormat::Yuv420p)]).unwrap_err();
        assert!(err.0.ends_with("`from` is 64x48 rgba8 and `to` is 64x48 yuv420p"), "{err}");
        assert!(plugin.output_shape_many(&[a]).is_err());
        let (from, to) = (testing::gradient(5, 4, PixelFormat::Gray8), testing::gradient(5, 5, PixelFormat::Gray8));
        assert!(testing::run_many::<Crossfade>(&[], &[&from, &to]).is_err());
    }

    #[test]
    fn one_input_is_refused() {
        let err = testing::run::<Crossfade>(&[], &testing::gradient(2, 2, PixelFormat::Rgba8)).unwrap_err();
        assert!(err.0.contains("takes 2 inputs (from, to), not 1"), "{err}");
        assert_eq!(
            Crossfade::inputs().iter().map(|i| (i.name, i.role)).collect::<Vec<_>>(),
            [("from", "from"), ("to", "to")]
        );
    }
}
