//! Each example plugin added for `run` (brightness, blur, sobel, threshold) through its real
//! process gives exactly what the same plugin code gives natively in this test.

use crate::support::*;
use plugin_host::PluginProcess;
use plugin_sdk::abi::ParamValue;
use plugin_sdk::{Frame, FrameMut, OwnedFrame, PixelFormat, Plugin, testing};

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

/// Runs `plugin` on `input` into `buffer` (reused), returning the output's shape.
fn native_stage<P: Plugin>(plugin: &mut P, input: Frame<'_>, buffer: &mut Vec<u8>) -> (u32, u32, u32, PixelFormat) {
    buffer.resize(input.width() as usize * input.height() as usize * 4, 0);
    let mut out = FrameMut::new(buffer, input.width(), input.height(), input.stride(), input.format(), 0).unwrap();
    plugin.process(&input, &mut out).unwrap();
    (out.width(), out.height(), out.stride(), out.format())
}

/// The demo chain's operations done natively in one process, one after another, with buffers
/// reused: the baseline for `plugin-host run examples/demo.toml`. A measurement, not a test:
/// `cargo test --release -p plugin-host-tests --test examples -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run it in release by hand"]
fn native_demo_chain_frames_per_second() {
    for (width, height) in [(1280, 720), (1920, 1080)] {
        let mut blur = blur::Blur::new(&testing::params_for::<blur::Blur>(&[("radius", ParamValue::Int(1))])).unwrap();
        let mut sobel = sobel::Sobel::new(&testing::params_for::<sobel::Sobel>(&[])).unwrap();
        let level = [("level", ParamValue::Int(8))];
        let mut threshold = threshold::Threshold::new(&testing::params_for::<threshold::Threshold>(&level)).unwrap();
        let mut invert = invert::Invert::new(&testing::params_for::<invert::Invert>(&[])).unwrap();
        let mut input = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
        let mut buffers = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        let frames = 120;
        let (mut generate, mut chain) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        for i in 0..frames {
            let t0 = std::time::Instant::now();
            plugin_host_cli::io::test_pattern(width, height, i, &mut input);
            let t1 = std::time::Instant::now();
            let [b0, b1, b2, b3] = &mut buffers;
            let s = native_stage(&mut blur, input.view(), b0);
            let s = native_stage(&mut sobel, Frame::new(b0, s.0, s.1, s.2, s.3, 0).unwrap(), b1);
            let s = native_stage(&mut threshold, Frame::new(b1, s.0, s.1, s.2, s.3, 0).unwrap(), b2);
            native_stage(&mut invert, Frame::new(b2, s.0, s.1, s.2, s.3, 0).unwrap(), b3);
            std::hint::black_box(&b3);
            generate += t1 - t0;
            chain += t1.elapsed();
        }
        let fps = |d: std::time::Duration| frames as f64 / d.as_secs_f64();
        println!(
            "native demo chain at {width}x{height}: {:.1} frames/s with the test pattern, {:.1} frames/s for the four plugins alone",
            fps(generate + chain),
            fps(chain)
        );
    }
}
