//! Golden images: small pictures made from `testing::gradient` inputs of different sizes,
//! stacked and compared with `tests/golden/NAME.expected.png`. On a mismatch the test writes
//! `NAME.actual.png` and `NAME.diff.png` beside them; `UPDATE_GOLDEN=1 cargo test -p stack`
//! rewrites the expected images from the current output (look at them before committing).

use plugin_sdk::abi::ParamValue;
use plugin_sdk::{PixelFormat, testing};
use stack::Stack;
use std::path::Path;

fn case(name: &str, format: PixelFormat, direction: &str) {
    let (first, second) = (testing::gradient(30, 20, format), testing::gradient(18, 28, format));
    let params = [("direction", ParamValue::Str(direction.into()))];
    let out = testing::run_many::<Stack>(&params, &[&first, &second]).unwrap();
    testing::assert_png(
        &out,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.expected.png")),
        0,
    );
}

#[test]
fn horizontal_in_rgba() {
    case("horizontal", PixelFormat::Rgba8, "horizontal");
}

#[test]
fn vertical_in_gray() {
    case("vertical-gray", PixelFormat::Gray8, "vertical");
}
