//! Golden images: small pictures made from `testing::gradient` inputs, composited and compared
//! with `tests/golden/NAME.expected.png`. On a mismatch the test writes `NAME.actual.png` and
//! `NAME.diff.png` beside them; `UPDATE_GOLDEN=1 cargo test -p overlay` rewrites the expected
//! images from the current output (look at them before committing).

use overlay::Overlay;
use plugin_sdk::abi::ParamValue;
use plugin_sdk::{OwnedFrame, PixelFormat, testing};
use std::path::Path;

/// A 20×14 foreground: the gradient with its colours inverted, alpha rising from 64 at the left
/// edge to 255 at the right.
fn foreground() -> OwnedFrame {
    let mut fg = testing::gradient(20, 14, PixelFormat::Rgba8);
    for (i, pixel) in fg.data.chunks_exact_mut(4).enumerate() {
        let x = (i % 20) as u32;
        for c in &mut pixel[..3] {
            *c = 255 - *c;
        }
        pixel[3] = (64 + x * 191 / 19) as u8;
    }
    fg
}

/// A 48×32 gradient background, with alpha falling from 255 at the top to 63 at the bottom
/// when `translucent`.
fn background(translucent: bool) -> OwnedFrame {
    let mut bg = testing::gradient(48, 32, PixelFormat::Rgba8);
    if translucent {
        for (i, pixel) in bg.data.chunks_exact_mut(4).enumerate() {
            pixel[3] = (255 - (i / 48) as u32 * 192 / 31) as u8;
        }
    }
    bg
}

fn case(name: &str, translucent: bool, x: i64, y: i64, opacity: f64) {
    let params = [("x", ParamValue::Int(x)), ("y", ParamValue::Int(y)), ("opacity", ParamValue::Float(opacity))];
    let out = testing::run_many::<Overlay>(&params, &[&background(translucent), &foreground()]).unwrap();
    testing::assert_png(
        &out,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.expected.png")),
        0,
    );
}

#[test]
fn inside() {
    case("inside", false, 14, 9, 1.0);
}

#[test]
fn clipped_top_left_at_partial_opacity() {
    case("clipped", false, -7, -5, 0.6);
}

#[test]
fn beyond_the_bottom_right_of_a_translucent_background() {
    case("translucent", true, 32, 22, 1.0);
}
