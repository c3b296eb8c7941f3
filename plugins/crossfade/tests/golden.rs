//! Golden images: small pictures made from `testing::gradient` inputs, mixed at a time within
//! the window and compared with `tests/golden/NAME.expected.png`. On a mismatch the test writes
//! `NAME.actual.png` and `NAME.diff.png` beside them; `UPDATE_GOLDEN=1 cargo test -p crossfade`
//! rewrites the expected images from the current output (look at them before committing).

use crossfade::Crossfade;
use plugin_sdk::abi::ParamValue;
use plugin_sdk::{OwnedFrame, PixelFormat, testing};
use std::path::Path;

/// The gradient, at `t_ms` (a 1/1000 s time base), and the same picture with the colours of
/// every other 8×8 square inverted (alpha kept).
fn inputs(format: PixelFormat, t_ms: i64) -> (OwnedFrame, OwnedFrame) {
    let mut from = testing::gradient(48, 32, format);
    from.meta.time_base = (1, 1000);
    from.meta.pts = t_ms;
    let mut to = from.clone();
    let n = format.bytes_per_pixel() as usize;
    for (i, pixel) in to.data.chunks_exact_mut(n).enumerate() {
        if (i % 48 / 8 + i / 48 / 8) % 2 == 1 {
            pixel[..n.min(3)].iter_mut().for_each(|c| *c = 255 - *c);
        }
    }
    (from, to)
}

fn case(name: &str, format: PixelFormat, t_ms: i64) {
    let (from, to) = inputs(format, t_ms);
    let params = [("start_ms", ParamValue::Int(1000)), ("duration_ms", ParamValue::Int(2000))];
    let out = testing::run_many::<Crossfade>(&params, &[&from, &to]).unwrap();
    testing::assert_png(
        &out,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.expected.png")),
        0,
    );
}

#[test]
fn midway_in_rgba() {
    case("midway", PixelFormat::Rgba8, 2000);
}

#[test]
fn a_quarter_in_gray() {
    case("quarter-gray", PixelFormat::Gray8, 1500);
}
