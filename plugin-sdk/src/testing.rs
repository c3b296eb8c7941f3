//! Run a [`Plugin`] natively under `cargo test`, without wasm or a host.

use crate::abi::ParamValue;
use crate::{OwnedFrame, Params, Plugin, PluginError};

/// Creates `P` with `params` (the rest default) and processes `input` once, as the host would:
/// the output starts with the input's shape and has room for an RGBA frame of the input's size.
pub fn run<P: Plugin>(params: &[(&str, ParamValue)], input: &OwnedFrame) -> Result<OwnedFrame, PluginError> {
    let mut plugin = P::new(&params_for::<P>(params))?;
    process(&mut plugin, input)
}

/// The [`Params`] `P` would receive for `params`, defaults filled in.
pub fn params_for<P: Plugin>(params: &[(&str, ParamValue)]) -> Params {
    let given: Vec<(String, ParamValue)> = params.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
    Params::resolve(&P::params(), &given)
}

/// Processes `input` with an existing instance.
pub fn process<P: Plugin>(plugin: &mut P, input: &OwnedFrame) -> Result<OwnedFrame, PluginError> {
    crate::check_accepts::<P>(input.format)?;
    let capacity = input.data.len().max(input.width as usize * input.height as usize * 4);
    let mut buffer = vec![0u8; capacity];
    let mut output =
        crate::FrameMut::new(&mut buffer, input.width, input.height, input.stride, input.format, input.timestamp_us)?;
    plugin.process(&input.view(), &mut output)?;
    Ok(OwnedFrame::from_view(&output))
}

/// A frame whose every byte, stride padding included, comes from a fixed pseudo-random sequence
/// (xorshift from `seed`): input for tests that compare against a reference.
pub fn noise(width: u32, height: u32, stride: u32, format: crate::PixelFormat, seed: u32) -> OwnedFrame {
    let mut frame = OwnedFrame::with_stride(width, height, stride, format);
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for byte in &mut frame.data {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *byte = (state >> 24) as u8;
    }
    frame
}
