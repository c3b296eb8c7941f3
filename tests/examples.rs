//! Each example plugin added for `run` (brightness, blur, sobel, threshold) through its real
//! process gives exactly what the same plugin code gives natively in this test.

use plugin_host::PluginProcess;
use plugin_host_tests::*;
use plugin_sdk::abi::ParamValue;
use plugin_sdk::{OwnedFrame, PixelFormat, Plugin, testing};

fn same_as_native<P: Plugin>(name: &str, params: &[(&str, ParamValue)], formats: &[PixelFormat]) {
    let mut spec = spec(name, plugin(name), 1 << 20);
    for (k, v) in params {
        spec = spec.param(k, v.clone());
    }
    let mut process = PluginProcess::spawn(spec).unwrap();
    for &format in formats {
        for (i, (w, h, padding)) in [(1, 1, 0), (13, 7, 8), (64, 40, 0)].into_iter().enumerate() {
            let input = noise_frame(w, h, padding, format, 40 + i as u64);
            let native: OwnedFrame = testing::run::<P>(params, &input).unwrap();
            let remote = process.process(&input).unwrap();
            assert!(remote.same_pixels(&native), "{name} {w}x{h}+{padding} {format:?}: process and native differ");
        }
    }
    process.shutdown().unwrap();
}

#[test]
fn brightness_through_its_process() {
    let params = [("brightness", ParamValue::Int(-40)), ("contrast", ParamValue::Float(1.7))];
    same_as_native::<brightness::Brightness>("brightness", &params, &[PixelFormat::Rgba8, PixelFormat::Gray8]);
}

#[test]
fn blur_through_its_process() {
    let params = [("radius", ParamValue::Int(3))];
    same_as_native::<blur::Blur>("blur", &params, &[PixelFormat::Rgba8, PixelFormat::Gray8]);
}

#[test]
fn sobel_through_its_process() {
    same_as_native::<sobel::Sobel>("sobel", &[], &[PixelFormat::Rgba8]);
}

#[test]
fn threshold_through_its_process() {
    same_as_native::<threshold::Threshold>("threshold", &[("level", ParamValue::Int(90))], &[PixelFormat::Rgba8]);
}
