//! Pixel format conversions the host makes where two neighbours disagree (the input and the
//! first plugin, two plugins, the last plugin and the output): which format to convert to, the
//! conversion (the SDK's exact converter), and the count of frames per place, which the run's
//! summary prints. Nothing is converted silently.

use super::stats::Conversion;
use plugin_sdk::convert::Colour;
use plugin_sdk::{Frame, OwnedFrame, PixelFormat};
use std::sync::{Arc, Mutex};

/// Every conversion of a run, shared by the threads that make them.
#[derive(Debug, Clone, Default)]
pub(super) struct ConversionLog(Arc<Mutex<Vec<Conversion>>>);

impl ConversionLog {
    fn record(&self, place: &str, from: PixelFormat, to: PixelFormat, colour: Colour) {
        let Ok(mut all) = self.0.lock() else { return };
        let (from, to) = (from.name(), to.name());
        match all.iter_mut().find(|c| c.place == place && c.from == from && c.to == to) {
            Some(c) => c.frames += 1,
            None => all.push(Conversion {
                place: place.to_string(),
                from: from.to_string(),
                to: to.to_string(),
                colour: colour.to_string(),
                frames: 1,
            }),
        }
    }

    pub(super) fn take(&self) -> Vec<Conversion> {
        self.0.lock().map(|mut all| std::mem::take(&mut *all)).unwrap_or_default()
    }
}

/// Converts frames for one place of the chain and counts them.
#[derive(Debug)]
pub(super) struct Converter {
    place: String,
    colour: Colour,
    log: ConversionLog,
    out: OwnedFrame,
}

impl Converter {
    pub(super) fn new(place: String, colour: Colour, log: ConversionLog) -> Self {
        Self { place, colour, log, out: OwnedFrame::new(0, 0, PixelFormat::Rgba8) }
    }

    /// `input` in `to`, rows packed; counted.
    pub(super) fn convert(&mut self, input: &Frame<'_>, to: PixelFormat) -> Result<&OwnedFrame, String> {
        let (width, height) = (input.width(), input.height());
        let len = to.packed_len(width, height) as usize;
        let mut data = std::mem::take(&mut self.out.data);
        data.resize(len, 0);
        self.out = OwnedFrame::from_pixels(width, height, to, data).map_err(|e| e.0)?;
        self.out.timestamp_us = input.timestamp_us();
        plugin_sdk::convert::convert(input, &mut self.out.view_mut(), to, self.colour).map_err(|e| e.0)?;
        self.log.record(&self.place, input.format(), to, self.colour);
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_counted_by_place() {
        let log = ConversionLog::default();
        let mut before_blur = Converter::new("before \"blur\"".into(), Colour::default(), log.clone());
        let frame = plugin_sdk::testing::gradient(5, 3, PixelFormat::Yuv420p);
        for _ in 0..3 {
            let out = before_blur.convert(&frame.view(), PixelFormat::Rgba8).unwrap();
            assert_eq!(*out, plugin_sdk::testing::to_rgba(&frame));
        }
        let all = log.take();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].frames, all[0].from.as_str(), all[0].to.as_str()), (3, "yuv420p", "rgba8"));
    }
}
