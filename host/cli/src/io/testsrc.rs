//! The built-in moving test pattern: colour bars, a gradient band and a bouncing box, so that
//! every plugin's effect is visible and consecutive frames differ.

use super::{MediaError, Source};
use plugin_sdk::{OwnedFrame, PixelFormat};

pub struct TestSource {
    width: u32,
    height: u32,
    frames: u64,
    next: u64,
}

impl TestSource {
    pub fn new(width: u32, height: u32, frames: u64) -> Self {
        Self { width, height, frames, next: 0 }
    }
}

const BARS: [[u8; 3]; 8] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [16, 16, 16],
];

/// Frame `index` of the pattern at 30 frames per second.
pub fn test_pattern(width: u32, height: u32, index: u64, frame: &mut OwnedFrame) {
    let (w, h) = (width as usize, height as usize);
    frame.width = width;
    frame.height = height;
    frame.stride = width * 4;
    frame.format = PixelFormat::Rgba8;
    frame.timestamp_us = (index * 1_000_000 / 30) as i64;
    frame.data.resize(w * h * 4, 0);
    let box_size = (w.min(h) / 5).max(1);
    let travel_x = (w - box_size).max(1) as u64;
    let travel_y = (h - box_size).max(1) as u64;
    let bounce = |t: u64, span: u64| -> usize {
        let p = t % span;
        (if (t / span).is_multiple_of(2) { p } else { span - p }) as usize
    };
    let (bx, by) = (bounce(index * 7, travel_x), bounce(index * 5, travel_y));
    // The first row of each band (the bars, the gradient) is computed in place and copied down
    // its band, then the box is drawn over them: no allocation, and the source costs about a
    // memcpy of the frame, so a pipeline's figures measure its plugins rather than the pattern.
    let pixel = |rgb: [u8; 3]| [rgb[0], rgb[1], rgb[2], 255];
    let row_bytes = w * 4;
    let split = h * 2 / 3;
    for (first, end) in [(0, split), (split, h)].into_iter().filter(|(first, end)| first < end) {
        let (row, _) = frame.data[first * row_bytes..(first + 1) * row_bytes].as_chunks_mut::<4>();
        for (x, px) in row.iter_mut().enumerate() {
            *px = if first < split {
                pixel(BARS[x * 8 / w])
            } else {
                let v = ((x * 255 / w.max(1)) as u64 + index * 4) as u8;
                pixel([v, v, v])
            };
        }
        for y in first + 1..end {
            frame.data.copy_within(first * row_bytes..(first + 1) * row_bytes, y * row_bytes);
        }
    }
    let box_pixel = pixel([255, (index * 3) as u8, 0]);
    for row in frame.data.chunks_exact_mut(row_bytes).skip(by).take(box_size) {
        let (pixels, _) = row.as_chunks_mut::<4>();
        pixels[bx.min(w)..(bx + box_size).min(w)].fill(box_pixel);
    }
}

impl Source for TestSource {
    fn len_hint(&self) -> Option<u64> {
        Some(self.frames)
    }
    fn shape(&self) -> (u32, u32, PixelFormat) {
        (self.width, self.height, PixelFormat::Rgba8)
    }
    fn next_into(&mut self, frame: &mut OwnedFrame) -> Result<bool, MediaError> {
        if self.next >= self.frames {
            return Ok(false);
        }
        test_pattern(self.width, self.height, self.next, frame);
        self.next += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern's definition, pixel by pixel.
    fn reference(width: u32, height: u32, index: u64) -> Vec<u8> {
        let (w, h) = (width as usize, height as usize);
        let box_size = (w.min(h) / 5).max(1);
        let bounce = |t: u64, span: u64| -> usize {
            let p = t % span;
            (if (t / span).is_multiple_of(2) { p } else { span - p }) as usize
        };
        let (bx, by) =
            (bounce(index * 7, (w - box_size).max(1) as u64), bounce(index * 5, (h - box_size).max(1) as u64));
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let rgb = if y < h * 2 / 3 {
                    BARS[x * 8 / w]
                } else {
                    let v = ((x * 255 / w) as u64 + index * 4) as u8;
                    [v, v, v]
                };
                let in_box = (bx..bx + box_size).contains(&x) && (by..by + box_size).contains(&y);
                let rgb = if in_box { [255, (index * 3) as u8, 0] } else { rgb };
                data.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
            }
        }
        data
    }

    #[test]
    fn the_pattern_is_its_definition_at_every_size() {
        let mut frame = OwnedFrame::new(1, 1, PixelFormat::Rgba8);
        for (w, h) in [(1, 1), (2, 3), (5, 5), (17, 9), (64, 48), (320, 180)] {
            for index in [0, 1, 7, 99, 1000] {
                test_pattern(w, h, index, &mut frame);
                assert!(frame.data == reference(w, h, index), "{w}x{h} frame {index}");
            }
        }
    }
}
