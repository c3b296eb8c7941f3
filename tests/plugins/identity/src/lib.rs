//! `identity`: does no work at all, so that a round trip through it measures the hand-off alone.

use plugin_sdk::{Frame, FrameMut, Params, PixelFormat, Plugin, PluginError};

pub struct Identity;

impl Plugin for Identity {
    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8]
    }
    fn new(_params: &Params) -> Result<Self, PluginError> {
        Ok(Identity)
    }
    fn process(&mut self, _input: &Frame, _output: &mut FrameMut) -> Result<(), PluginError> {
        Ok(())
    }
}

plugin_sdk::export_plugin!(Identity);
