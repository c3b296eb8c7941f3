//! Frame views a plugin reads and writes, and an owned frame for tests and hosts.

use crate::PluginError;
use crate::abi::PixelFormat;

/// A frame to read: `height` rows of `width` pixels, `stride` bytes apart.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    stride: u32,
    format: PixelFormat,
    timestamp_us: i64,
}

/// A frame to write. Its shape can change within the buffer's capacity.
#[derive(Debug)]
pub struct FrameMut<'a> {
    data: &'a mut [u8],
    width: u32,
    height: u32,
    stride: u32,
    format: PixelFormat,
    timestamp_us: i64,
}

fn check_shape(len: usize, width: u32, height: u32, stride: u32, format: PixelFormat) -> Result<(), PluginError> {
    let row = width as u64 * format.bytes_per_pixel() as u64;
    if width == 0 || height == 0 {
        return Err(PluginError::new(format!("frame of {width}x{height} pixels is empty")));
    }
    if (stride as u64) < row {
        return Err(PluginError::new(format!("stride {stride} is smaller than a row of {row} bytes")));
    }
    let needed = stride as u64 * (height as u64 - 1) + row;
    if needed > len as u64 {
        return Err(PluginError::new(format!(
            "a {width}x{height} {} frame needs {needed} bytes, the buffer has {len}",
            format.name()
        )));
    }
    Ok(())
}

impl<'a> Frame<'a> {
    /// A view of `data` with the given shape, checked to fit.
    pub fn new(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: u32,
        format: PixelFormat,
        timestamp_us: i64,
    ) -> Result<Self, PluginError> {
        check_shape(data.len(), width, height, stride, format)?;
        Ok(Self { data, width, height, stride, format, timestamp_us })
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn stride(&self) -> u32 {
        self.stride
    }
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    pub fn timestamp_us(&self) -> i64 {
        self.timestamp_us
    }
    /// Bytes of one row's pixels (without stride padding).
    pub fn row_bytes(&self) -> usize {
        (self.width * self.format.bytes_per_pixel()) as usize
    }
    /// The pixels of row `y`.
    pub fn row(&self, y: u32) -> &'a [u8] {
        let start = (y * self.stride) as usize;
        &self.data[start..start + self.row_bytes()]
    }
    /// The whole buffer, padding included.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
    /// The pixels with rows packed (stride padding dropped): borrowed when there is no padding.
    pub fn packed(&self) -> std::borrow::Cow<'a, [u8]> {
        let rows = self.row_bytes() * self.height as usize;
        if self.stride as usize == self.row_bytes() {
            std::borrow::Cow::Borrowed(&self.data[..rows])
        } else {
            std::borrow::Cow::Owned((0..self.height).flat_map(|y| self.row(y).iter().copied()).collect())
        }
    }
}

impl<'a> FrameMut<'a> {
    /// A writable view of `data` with the given shape, checked to fit.
    pub fn new(
        data: &'a mut [u8],
        width: u32,
        height: u32,
        stride: u32,
        format: PixelFormat,
        timestamp_us: i64,
    ) -> Result<Self, PluginError> {
        check_shape(data.len(), width, height, stride, format)?;
        Ok(Self { data, width, height, stride, format, timestamp_us })
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn stride(&self) -> u32 {
        self.stride
    }
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    pub fn timestamp_us(&self) -> i64 {
        self.timestamp_us
    }
    pub fn row_bytes(&self) -> usize {
        (self.width * self.format.bytes_per_pixel()) as usize
    }
    /// Bytes available for the frame.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Makes the output `width`×`height` in `format`, rows packed (`stride` = row bytes).
    /// Fails if that does not fit the buffer.
    pub fn set_shape(&mut self, width: u32, height: u32, format: PixelFormat) -> Result<(), PluginError> {
        let stride = width
            .checked_mul(format.bytes_per_pixel())
            .ok_or_else(|| PluginError::new(format!("frame width {width} is too large")))?;
        check_shape(self.data.len(), width, height, stride, format)?;
        self.width = width;
        self.height = height;
        self.stride = stride;
        self.format = format;
        Ok(())
    }

    pub fn row(&self, y: u32) -> &[u8] {
        let start = (y * self.stride) as usize;
        &self.data[start..start + self.row_bytes()]
    }
    /// The pixels of row `y`, to write.
    pub fn row_mut(&mut self, y: u32) -> &mut [u8] {
        let start = (y * self.stride) as usize;
        let len = self.row_bytes();
        &mut self.data[start..start + len]
    }
    /// The whole buffer, padding included.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.data
    }
    /// Copies `input`'s pixels and shape.
    pub fn copy_from(&mut self, input: &Frame<'_>) -> Result<(), PluginError> {
        self.set_shape(input.width(), input.height(), input.format())?;
        for y in 0..input.height() {
            self.row_mut(y).copy_from_slice(input.row(y));
        }
        Ok(())
    }
}

/// A frame that owns its pixels: for tests, hosts and reference implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub format: PixelFormat,
    pub timestamp_us: i64,
}

impl OwnedFrame {
    /// A zeroed frame with packed rows.
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Self {
        Self::with_stride(width, height, width * format.bytes_per_pixel(), format)
    }

    /// A zeroed frame whose rows are `stride` bytes apart (at least a row).
    pub fn with_stride(width: u32, height: u32, stride: u32, format: PixelFormat) -> Self {
        let stride = stride.max(width * format.bytes_per_pixel());
        let len = if height == 0 {
            0
        } else {
            stride as usize * (height as usize - 1) + (width * format.bytes_per_pixel()) as usize
        };
        Self { data: vec![0; len], width, height, stride, format, timestamp_us: 0 }
    }

    /// A frame from packed pixel bytes.
    pub fn from_pixels(width: u32, height: u32, format: PixelFormat, data: Vec<u8>) -> Result<Self, PluginError> {
        let stride = width * format.bytes_per_pixel();
        check_shape(data.len(), width, height, stride, format)?;
        Ok(Self { data, width, height, stride, format, timestamp_us: 0 })
    }

    pub fn row_bytes(&self) -> usize {
        (self.width * self.format.bytes_per_pixel()) as usize
    }

    pub fn view(&self) -> Frame<'_> {
        Frame {
            data: &self.data,
            width: self.width,
            height: self.height,
            stride: self.stride,
            format: self.format,
            timestamp_us: self.timestamp_us,
        }
    }

    pub fn view_mut(&mut self) -> FrameMut<'_> {
        FrameMut {
            data: &mut self.data,
            width: self.width,
            height: self.height,
            stride: self.stride,
            format: self.format,
            timestamp_us: self.timestamp_us,
        }
    }

    /// The pixels with rows packed (stride padding dropped).
    pub fn packed(&self) -> Vec<u8> {
        self.view().packed().into_owned()
    }

    /// Same size, format and pixels (stride padding and timestamps aside).
    pub fn same_pixels(&self, other: &OwnedFrame) -> bool {
        self.width == other.width
            && self.height == other.height
            && self.format == other.format
            && self.packed() == other.packed()
    }

    /// Copies the shape and the pixels that `frame` describes.
    pub fn from_view(frame: &FrameMut<'_>) -> Self {
        let mut out = Self::new(frame.width(), frame.height(), frame.format());
        out.timestamp_us = frame.timestamp_us();
        for y in 0..frame.height() {
            let row = out.row_bytes();
            let start = y as usize * row;
            out.data[start..start + row].copy_from_slice(frame.row(y));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked() {
        let data = [0u8; 16];
        assert!(Frame::new(&data, 2, 2, 8, PixelFormat::Rgba8, 0).is_ok());
        assert!(Frame::new(&data, 2, 2, 7, PixelFormat::Rgba8, 0).is_err());
        assert!(Frame::new(&data, 3, 2, 12, PixelFormat::Rgba8, 0).is_err());
        assert!(Frame::new(&data, 0, 2, 8, PixelFormat::Rgba8, 0).is_err());
        let mut out = [0u8; 16];
        let mut frame = FrameMut::new(&mut out, 2, 2, 8, PixelFormat::Rgba8, 0).unwrap();
        assert!(frame.set_shape(4, 4, PixelFormat::Gray8).is_ok());
        assert!(frame.set_shape(5, 4, PixelFormat::Gray8).is_err());
        assert_eq!(frame.width(), 4, "a failed set_shape keeps the previous shape");
    }

    #[test]
    fn packed_drops_padding() {
        let mut frame = OwnedFrame::with_stride(1, 2, 8, PixelFormat::Rgba8);
        frame.data[..4].copy_from_slice(&[1, 2, 3, 4]);
        frame.data[8..12].copy_from_slice(&[5, 6, 7, 8]);
        assert_eq!(frame.packed(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
