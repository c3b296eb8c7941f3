//! Frame views a plugin reads and writes, and an owned frame for tests and hosts.

use crate::PluginError;
use crate::abi::{self, FrameMeta, PixelFormat};

/// A frame's size and format, without its pixels: what [`crate::Plugin::output_shape`] maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
}

impl Shape {
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Self {
        Self { width, height, format }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} {}", self.width, self.height, self.format.name())
    }
}

/// A frame to read: `height` rows of `width` pixels, `stride` bytes apart.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    stride: u32,
    format: PixelFormat,
    timestamp_us: i64,
    /// The metadata, when it lives beside the frame (tests); in a module, the host has it.
    meta: Option<&'a FrameMeta>,
    /// Which input of the plugin the frame is (for its metadata in a module).
    input: u32,
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
    meta: Option<&'a mut FrameMeta>,
}

fn check_shape(len: usize, width: u32, height: u32, stride: u32, format: PixelFormat) -> Result<(), PluginError> {
    if width == 0 || height == 0 {
        return Err(PluginError::new(format!("frame of {width}x{height} pixels is empty")));
    }
    let planes = format.planes(width, height, stride).map_err(|e| {
        PluginError::new(format!("a {width}x{height} {} frame with stride {stride}: {e}", format.name()))
    })?;
    let needed = abi::frame_len(&planes);
    if needed > len as u64 {
        return Err(PluginError::new(format!(
            "a {width}x{height} {} frame needs {needed} bytes, the buffer has {len}",
            format.name()
        )));
    }
    Ok(())
}

/// One plane of a frame to read: `rows()` rows of `row_bytes()` bytes, `stride()` apart.
#[derive(Debug, Clone, Copy)]
pub struct PlaneRef<'a> {
    data: &'a [u8],
    layout: abi::Plane,
}

/// One plane of a frame to write.
#[derive(Debug)]
pub struct PlaneMut<'a> {
    data: &'a mut [u8],
    layout: abi::Plane,
}

macro_rules! plane_shape {
    () => {
        /// Samples across a row: pixels for luma, chroma positions for chroma.
        pub fn width(&self) -> u32 {
            self.layout.width
        }
        pub fn rows(&self) -> u32 {
            self.layout.rows
        }
        pub fn stride(&self) -> u32 {
            self.layout.stride
        }
        /// Bytes of one row's samples (without padding).
        pub fn row_bytes(&self) -> usize {
            self.layout.row_bytes as usize
        }
    };
}

impl<'a> PlaneRef<'a> {
    plane_shape!();
    /// The samples of row `y`.
    pub fn row(&self, y: u32) -> &'a [u8] {
        let start = (y * self.layout.stride) as usize;
        &self.data[start..start + self.layout.row_bytes as usize]
    }
}

impl PlaneMut<'_> {
    plane_shape!();
    pub fn row(&self, y: u32) -> &[u8] {
        let start = (y * self.layout.stride) as usize;
        &self.data[start..start + self.layout.row_bytes as usize]
    }
    /// The samples of row `y`, to write.
    pub fn row_mut(&mut self, y: u32) -> &mut [u8] {
        let start = (y * self.layout.stride) as usize;
        &mut self.data[start..start + self.layout.row_bytes as usize]
    }
}

/// The planes of a frame of this shape; its buffer was checked to hold them.
fn layout(width: u32, height: u32, stride: u32, format: PixelFormat) -> abi::Planes {
    format.planes(width, height, stride).expect("the shape was checked when the frame was made")
}

/// A plane's bytes, from its first byte to the end of its last row.
fn plane_bytes(plane: &abi::Plane) -> std::ops::Range<usize> {
    plane.offset as usize..(plane.offset + plane.len()) as usize
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
        Ok(Self { data, width, height, stride, format, timestamp_us, meta: None, input: 0 })
    }

    /// The same frame as input `k` of a plugin with several inputs.
    pub(crate) fn for_input(self, k: u32) -> Self {
        Self { input: k, ..self }
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
    pub fn shape(&self) -> Shape {
        Shape::new(self.width, self.height, self.format)
    }
    /// The frame's metadata: its time, colour and named properties (a copy; reading it costs a
    /// call into the host, so read it once per frame).
    pub fn metadata(&self) -> FrameMeta {
        match self.meta {
            Some(meta) => meta.clone(),
            None => crate::runtime::frame_meta(abi::meta_which(self.input)),
        }
    }
    /// The same frame with `meta` as its metadata (for tests and hosts).
    pub fn with_metadata(self, meta: &'a FrameMeta) -> Self {
        Self { meta: Some(meta), ..self }
    }
    /// Bytes of one row's pixels (without stride padding).
    pub fn row_bytes(&self) -> usize {
        (self.width * self.format.bytes_per_pixel()) as usize
    }
    /// Row `y` of the first plane: the packed pixels, or luma.
    pub fn row(&self, y: u32) -> &'a [u8] {
        let start = (y * self.stride) as usize;
        &self.data[start..start + self.row_bytes()]
    }
    /// The whole buffer, padding included.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
    /// How many planes the format has: 1 for packed formats, 3 for `yuv420p`, 2 for `nv12`.
    pub fn plane_count(&self) -> usize {
        self.planes().len()
    }
    /// Where each plane lies in [`Frame::data`].
    pub fn planes(&self) -> abi::Planes {
        layout(self.width, self.height, self.stride, self.format)
    }
    /// Plane `i` (0 is luma, or the packed pixels). Panics if the format has no such plane.
    pub fn plane(&self, i: usize) -> PlaneRef<'a> {
        let layout = self.planes()[i];
        PlaneRef { data: &self.data[plane_bytes(&layout)], layout }
    }
    /// Width and height of each chroma plane: `ceil(width / 2)` × `ceil(height / 2)` for the
    /// 4:2:0 formats; `None` for formats without chroma planes.
    pub fn chroma_size(&self) -> Option<(u32, u32)> {
        self.format.is_yuv().then(|| (self.width.div_ceil(2), self.height.div_ceil(2)))
    }
    /// The pixels with rows packed (stride padding dropped, planes one after another): borrowed
    /// when there is no padding.
    pub fn packed(&self) -> std::borrow::Cow<'a, [u8]> {
        let planes = self.planes();
        if planes.iter().all(|p| p.stride == p.row_bytes) {
            let len = abi::frame_len(&planes) as usize;
            return std::borrow::Cow::Borrowed(&self.data[..len]);
        }
        let mut out = Vec::new();
        for i in 0..planes.len() {
            let plane = self.plane(i);
            (0..plane.rows()).for_each(|y| out.extend_from_slice(plane.row(y)));
        }
        std::borrow::Cow::Owned(out)
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
        Ok(Self { data, width, height, stride, format, timestamp_us, meta: None })
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
    /// The output's metadata as it stands: the input's, unless set.
    pub fn metadata(&self) -> FrameMeta {
        match &self.meta {
            Some(meta) => (*meta).clone(),
            None => crate::runtime::frame_meta(crate::runtime::OUTPUT_META),
        }
    }
    /// Makes `meta` the output's metadata; the next plugins and the output get it. Fails if it
    /// does not encode (more than [`abi::MAX_PROPERTIES`] properties, or longer than
    /// [`abi::MAX_META_BYTES`]). In a band that does not start at row 0 it changes nothing:
    /// the band at row 0 speaks for the frame.
    pub fn set_metadata(&mut self, meta: &FrameMeta) -> Result<(), PluginError> {
        let bytes = meta.encode().ok_or_else(|| PluginError::new("the frame metadata is too large"))?;
        match &mut self.meta {
            Some(own) => {
                **own = meta.clone();
                Ok(())
            }
            None => crate::runtime::set_frame_meta(&bytes),
        }
    }
    /// The same frame with `meta` as its metadata (for tests and hosts).
    pub fn with_metadata(self, meta: &'a mut FrameMeta) -> Self {
        Self { meta: Some(meta), ..self }
    }
    /// Bytes available for the frame.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Makes the output `width`×`height` in `format`, rows packed (`stride` = luma row bytes).
    /// Fails if that does not fit the buffer.
    pub fn set_shape(&mut self, width: u32, height: u32, format: PixelFormat) -> Result<(), PluginError> {
        let stride = u32::try_from(format.row_bytes(width))
            .map_err(|_| PluginError::new(format!("frame width {width} is too large")))?;
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
    /// Row `y` of the first plane, to write.
    pub fn row_mut(&mut self, y: u32) -> &mut [u8] {
        let start = (y * self.stride) as usize;
        let len = self.row_bytes();
        &mut self.data[start..start + len]
    }
    /// The whole buffer, padding included.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.data
    }
    /// Where each plane lies in the buffer, for the current shape.
    pub fn planes(&self) -> abi::Planes {
        layout(self.width, self.height, self.stride, self.format)
    }
    pub fn plane_count(&self) -> usize {
        self.planes().len()
    }
    /// Plane `i` to read. Panics if the format has no such plane.
    pub fn plane(&self, i: usize) -> PlaneRef<'_> {
        let layout = self.planes()[i];
        PlaneRef { data: &self.data[plane_bytes(&layout)], layout }
    }
    /// Plane `i` to write. Panics if the format has no such plane.
    pub fn plane_mut(&mut self, i: usize) -> PlaneMut<'_> {
        let layout = self.planes()[i];
        PlaneMut { data: &mut self.data[plane_bytes(&layout)], layout }
    }
    /// Every plane to write at once, in order.
    pub fn planes_mut(&mut self) -> Vec<PlaneMut<'_>> {
        let planes = self.planes();
        let mut rest: &mut [u8] = self.data;
        let mut taken = 0usize;
        let mut out = Vec::with_capacity(planes.len());
        for layout in planes.iter() {
            let range = plane_bytes(layout);
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(range.start - taken);
            let (data, tail) = tail.split_at_mut(range.len());
            taken = range.end;
            rest = tail;
            out.push(PlaneMut { data, layout: *layout });
        }
        out
    }
    /// Width and height of each chroma plane; `None` for formats without chroma planes.
    pub fn chroma_size(&self) -> Option<(u32, u32)> {
        self.format.is_yuv().then(|| (self.width.div_ceil(2), self.height.div_ceil(2)))
    }
    /// Copies `input`'s pixels and shape.
    pub fn copy_from(&mut self, input: &Frame<'_>) -> Result<(), PluginError> {
        self.set_shape(input.width(), input.height(), input.format())?;
        for (i, mut plane) in self.planes_mut().into_iter().enumerate() {
            let from = input.plane(i);
            (0..from.rows()).for_each(|y| plane.row_mut(y).copy_from_slice(from.row(y)));
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
    pub meta: FrameMeta,
}

impl OwnedFrame {
    /// A zeroed frame with packed rows.
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Self {
        Self::with_stride(width, height, width * format.bytes_per_pixel(), format)
    }

    /// A zeroed frame whose rows are `stride` bytes apart (at least a row).
    pub fn with_stride(width: u32, height: u32, stride: u32, format: PixelFormat) -> Self {
        let row = width * format.bytes_per_pixel();
        // Whole samples: a 10-bit frame's stride is even.
        let stride = stride.max(row).next_multiple_of(format.bytes_per_pixel());
        let len = format.planes(width, height, stride).map_or(0, |p| abi::frame_len(&p)) as usize;
        Self { data: vec![0; len], width, height, stride, format, timestamp_us: 0, meta: FrameMeta::default() }
    }

    pub fn shape(&self) -> Shape {
        Shape::new(self.width, self.height, self.format)
    }

    /// A frame from packed pixel bytes (planes one after another, rows without padding).
    pub fn from_pixels(width: u32, height: u32, format: PixelFormat, data: Vec<u8>) -> Result<Self, PluginError> {
        let stride = width * format.bytes_per_pixel();
        check_shape(data.len(), width, height, stride, format)?;
        Ok(Self { data, width, height, stride, format, timestamp_us: 0, meta: FrameMeta::default() })
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
            meta: Some(&self.meta),
            input: 0,
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
            meta: Some(&mut self.meta),
        }
    }

    /// The pixels with rows packed (stride padding dropped, planes one after another).
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

    /// Copies the shape, the pixels and the metadata that `frame` describes.
    pub fn from_view(frame: &FrameMut<'_>) -> Self {
        let mut out = Self::new(frame.width(), frame.height(), frame.format());
        out.timestamp_us = frame.timestamp_us();
        out.meta = frame.metadata();
        let mut view = out.view_mut();
        for (i, mut plane) in view.planes_mut().into_iter().enumerate() {
            let from = frame.plane(i);
            (0..from.rows()).for_each(|y| plane.row_mut(y).copy_from_slice(from.row(y)));
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
    fn yuv_planes_follow_luma() {
        // 5x3 yuv420p with a stride of 8: chroma is 3x2, 4 bytes apart.
        let mut frame = OwnedFrame::with_stride(5, 3, 8, PixelFormat::Yuv420p);
        assert_eq!(frame.data.len(), 8 * 3 + 4 * 2 + 4 + 3, "the last row is not padded");
        assert_eq!(frame.view().chroma_size(), Some((3, 2)));
        {
            let mut view = frame.view_mut();
            let mut planes = view.planes_mut();
            planes[1].row_mut(1).copy_from_slice(&[1, 2, 3]);
            planes[2].row_mut(0).copy_from_slice(&[4, 5, 6]);
        }
        assert_eq!(&frame.data[24 + 4..24 + 7], &[1, 2, 3]);
        assert_eq!(&frame.data[24 + 8..24 + 11], &[4, 5, 6]);
        assert_eq!(frame.packed().len(), 15 + 6 + 6);
        let nv12 = OwnedFrame::new(5, 3, PixelFormat::Nv12);
        assert_eq!(nv12.view().planes()[1].row_bytes, 6, "cb, cr pairs for 3 chroma positions");
        let ten = OwnedFrame::with_stride(3, 2, 7, PixelFormat::Yuv420p10);
        assert_eq!(ten.stride, 8, "a 10-bit stride is whole samples");
        assert_eq!(ten.view().planes()[2].row_bytes, 4);
    }

    #[test]
    fn packed_drops_padding() {
        let mut frame = OwnedFrame::with_stride(1, 2, 8, PixelFormat::Rgba8);
        frame.data[..4].copy_from_slice(&[1, 2, 3, 4]);
        frame.data[8..12].copy_from_slice(&[5, 6, 7, 8]);
        assert_eq!(frame.packed(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
