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

/// The same plugin, once over shared memory and once over the pipe, must give the same bytes.
fn transports_agree(name: &str, module: std::path::PathBuf, params: &[(&str, ParamValue)], format: PixelFormat) {
    let start = |transport| {
        let mut spec = spec(name, module.clone(), 1 << 20);
        spec.transport = transport;
        for (k, v) in params {
            spec = spec.param(k, v.clone());
        }
        PluginProcess::spawn(spec).unwrap()
    };
    let mut shm = start(plugin_host::ipc::protocol::Transport::SharedMemory);
    let mut pipe = start(plugin_host::ipc::protocol::Transport::Pipe);
    assert_eq!(pipe.transport(), plugin_host::ipc::protocol::Transport::Pipe);
    for (i, (w, h, padding)) in [(1, 1, 0), (33, 17, 4), (256, 200, 0)].into_iter().enumerate() {
        let input = noise_frame(w, h, padding, format, 70 + i as u64);
        let (a, b) = (shm.process(&input).unwrap(), pipe.process(&input).unwrap());
        assert!(a.same_pixels(&b), "{name} {w}x{h}: shm and pipe transports differ");
        assert_eq!(a.timestamp_us, b.timestamp_us);
    }
}

#[test]
fn shared_memory_and_pipe_transports_give_identical_output() {
    let rgba = PixelFormat::Rgba8;
    transports_agree("invert", plugin("invert"), &[], rgba);
    transports_agree("invert", plugin("invert"), &[], PixelFormat::Gray8);
    transports_agree("grayscale", plugin("grayscale"), &[], rgba);
    transports_agree("flip", plugin("flip"), &[("axis", ParamValue::Str("vertical".into()))], rgba);
    transports_agree("brightness", plugin("brightness"), &[("contrast", ParamValue::Float(2.5))], rgba);
    transports_agree("blur", plugin("blur"), &[("radius", ParamValue::Int(4))], rgba);
    transports_agree("sobel", plugin("sobel"), &[], rgba);
    transports_agree("threshold", plugin("threshold"), &[("level", ParamValue::Int(60))], rgba);
}

#[test]
fn pipe_transport_reports_failures_like_shared_memory() {
    let mut spec = spec("err", test_plugin("misbehave"), 1 << 16)
        .param("mode", ParamValue::Str("error".into()))
        .param("frame", ParamValue::Int(2));
    spec.transport = plugin_host::ipc::protocol::Transport::Pipe;
    let mut plugin = PluginProcess::spawn(spec).unwrap();
    let input = noise_frame(8, 8, 0, PixelFormat::Rgba8, 1);
    plugin.process(&input).unwrap();
    let err = plugin.process(&input).unwrap_err();
    assert_eq!(err.to_string(), "plugin \"err\": frame 2: plugin error: refusing frame 2 on purpose");
    assert!(plugin.process(&input).unwrap().same_pixels(&invert_reference(&input)));
}
