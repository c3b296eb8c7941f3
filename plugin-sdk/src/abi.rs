//! The guest ABI: the one definition of what a plugin module exports and imports.
//!
//! It is plain core WebAssembly (i32 values, little-endian structs in linear memory), so a plugin
//! can be written in any language that compiles to `wasm32`; `docs/abi.md` restates it for them.
//! The host's runner uses the names, constants and layouts below; nothing here is spelled twice.
//!
//! Exports a plugin module provides:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `memory` | memory | the linear memory |
//! | [`EXPORT_ABI_VERSION`] | `() -> i32` | must return [`ABI_VERSION`] |
//! | [`EXPORT_DESCRIBE`] | `() -> i32` | pointer to a NUL-terminated UTF-8 JSON [description](#description) |
//! | [`EXPORT_ALLOC`] | `(size: i32) -> i32` | allocate `size` bytes (16-aligned) for the host; 0 on failure |
//! | [`EXPORT_INIT`] | `(params: i32, len: i32) -> i32` | create the instance from [encoded parameters](encode_params) |
//! | [`EXPORT_PROCESS`] | `(input: i32, output: i32) -> i32` | process one frame: two [`FrameDesc`] pointers |
//! | [`EXPORT_LAST_ERROR`] | `() -> i32` | pointer to a NUL-terminated message for the last non-zero status, or 0 |
//!
//! Optional exports ([`OPTIONAL_EXPORTS`]; a module without them gets whole frames, one process):
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | [`EXPORT_BAND_CONTEXT`] | `() -> i32` | after init: rows of input above and below a band that a band's output reads, or [`WHOLE_FRAME`] |
//! | [`EXPORT_PROCESS_ROWS`] | `(input: i32, output: i32, first_row: i32, rows: i32) -> i32` | like `plugin_process`, but write only output rows `first_row..first_row + rows` (see [`band_rows`]); the descriptors describe the whole frames |
//! | [`EXPORT_PROCESS_MANY`] | `(inputs: i32, count: i32, output: i32) -> i32` | for a plugin whose description lists several `inputs`: process one frame of each, `inputs` pointing to `count` consecutive [`FrameDesc`]s in the order of the description |
//! | [`EXPORT_SET_PARAMS`] | `(params: i32, len: i32) -> i32` | between frames: take new [encoded parameters](encode_params), every parameter of the schema, as `plugin_init` does; a status |
//! | [`EXPORT_OUTPUT_SHAPE`] | `(input: i32, output: i32) -> i32` | after init: given an input [`FrameDesc`] (`data` and `capacity` 0), set the output one's `width`, `height` and `format` (preset to the input's) to what `plugin_process` will make of such frames; without it, output = input |
//!
//! Imports the host provides, in module [`IMPORT_MODULE`]:
//!
//! | import | signature | meaning |
//! |---|---|---|
//! | [`IMPORT_LOG`] | `(level: i32, ptr: i32, len: i32)` | one UTF-8 log line at a [`LogLevel`] |
//!
//! # Description
//!
//! `{"name": str, "version": str, "description": str, "formats": ["rgba8"|"gray8"|"yuv420p"|"nv12"|"yuv420p10", …],
//! "inputs": [{"name": str, "role": str}, …] (optional: absent, one input; at most [`MAX_INPUTS`]),
//! "params": [{"name": str, "type": "int"|"float"|"bool"|"enum"|"string", "default": value,
//! "min": number?, "max": number?, "choices": [str]?, "help": str}, …]}`

/// Version of this ABI: 2 added plugins with several inputs (`inputs` in the description and
/// `plugin_process_many`). The host runs modules built for [`MIN_ABI_VERSION`] up to this one,
/// so a version-1 module keeps working without a rebuild; any other version is refused at load.
pub const ABI_VERSION: u32 = 2;
/// The oldest ABI version the host still runs.
pub const MIN_ABI_VERSION: u32 = 1;
/// Most inputs a plugin may declare.
pub const MAX_INPUTS: usize = 16;

pub const EXPORT_MEMORY: &str = "memory";
pub const EXPORT_ABI_VERSION: &str = "plugin_abi_version";
pub const EXPORT_DESCRIBE: &str = "plugin_describe";
pub const EXPORT_ALLOC: &str = "plugin_alloc";
pub const EXPORT_INIT: &str = "plugin_init";
pub const EXPORT_PROCESS: &str = "plugin_process";
pub const EXPORT_LAST_ERROR: &str = "plugin_last_error";
/// Every function a plugin exports (the memory aside): `export_plugin!` exports exactly these.
pub const EXPORTS: [&str; 6] =
    [EXPORT_ABI_VERSION, EXPORT_DESCRIBE, EXPORT_ALLOC, EXPORT_INIT, EXPORT_PROCESS, EXPORT_LAST_ERROR];
pub const EXPORT_BAND_CONTEXT: &str = "plugin_band_context";
pub const EXPORT_PROCESS_ROWS: &str = "plugin_process_rows";
pub const EXPORT_OUTPUT_SHAPE: &str = "plugin_output_shape";
pub const EXPORT_PROCESS_MANY: &str = "plugin_process_many";
pub const EXPORT_SET_PARAMS: &str = "plugin_set_params";
pub const EXPORT_OUTPUT_SHAPE_MANY: &str = "plugin_output_shape_many";
/// `plugin_snapshot() -> i32`: the instance's state as bytes, at the returned address: a
/// little-endian u32 length, then that many bytes (at most [`MAX_SNAPSHOT_BYTES`]); 0 when it
/// keeps none.
pub const EXPORT_SNAPSHOT: &str = "plugin_snapshot";
/// `plugin_restore(ptr, len) -> i32`: after `plugin_init`, takes back state that
/// `plugin_snapshot` gave (maybe in another process); a status like `plugin_init`'s.
pub const EXPORT_RESTORE: &str = "plugin_restore";
/// Most bytes of a plugin's state the host keeps (it crosses the control pipe in one message).
pub const MAX_SNAPSHOT_BYTES: usize = 512 << 10;
/// Exports the host uses when present: a plugin with the first two can be run as several
/// processes, each on a horizontal band of the same frame; one with the third makes frames of
/// another size or format, which the host learns before any frame moves. `export_plugin!`
/// exports these too.
/// The fourth serves plugins with several inputs; the fifth changes parameters while running
/// (without it the host makes a fresh instance with the new ones, in the same process); the
/// sixth is the third for plugins with several inputs (`inputs, count, output`, as
/// `plugin_process_many`); the last two keep a plugin's state across a restart.
pub const OPTIONAL_EXPORTS: [&str; 8] = [
    EXPORT_BAND_CONTEXT,
    EXPORT_PROCESS_ROWS,
    EXPORT_OUTPUT_SHAPE,
    EXPORT_PROCESS_MANY,
    EXPORT_SET_PARAMS,
    EXPORT_OUTPUT_SHAPE_MANY,
    EXPORT_SNAPSHOT,
    EXPORT_RESTORE,
];
/// `plugin_band_context`'s answer for a plugin that needs whole frames.
pub const WHOLE_FRAME: i32 = -1;

/// The output rows of band `index` of `count` in a frame `height` rows high: the one way host
/// and SDK split a frame. Band edges fall on even rows (so that 4:2:0 chroma rows are never
/// split) and the bands cover every row once; a band may be empty when the frame is short.
pub fn band_rows(height: u32, index: u32, count: u32) -> std::ops::Range<u32> {
    let edge = |i: u32| match i >= count {
        true => height,
        false => ((height as u64 * i as u64 / count.max(1) as u64) as u32) & !1,
    };
    edge(index)..edge(index + 1)
}

pub const IMPORT_MODULE: &str = "plugin_host";
pub const IMPORT_LOG: &str = "log";
/// `frame_meta(which: i32, ptr: i32, cap: i32) -> i32`: during `plugin_process`, copies the
/// [encoded](FrameMeta::encode) metadata of the input (`which` 0) or the output as it stands
/// (`which` 1) to `ptr` when it fits in `cap` bytes; returns its length either way. With several
/// inputs, input `k` ≥ 1 is `which` = `k + 1` (see [`meta_which`]).
pub const IMPORT_FRAME_META: &str = "frame_meta";
/// `set_frame_meta(ptr: i32, len: i32) -> i32`: during `plugin_process`, makes the encoded
/// metadata at `ptr` the output's; 0 when taken, 1 when malformed or too long (then nothing
/// changes). In a band that does not start at row 0 it is ignored: one band speaks for the frame.
pub const IMPORT_SET_FRAME_META: &str = "set_frame_meta";

/// Longest description JSON the host reads.
pub const MAX_DESCRIBE_BYTES: usize = 64 * 1024;
/// Longest error message or log line the host reads; longer ones are cut.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Status returned by `plugin_init` and `plugin_process`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    /// The plugin reports an error; `plugin_last_error` says which.
    Error = 1,
}

impl Status {
    pub const ALL: [Status; 2] = [Status::Ok, Status::Error];
}

/// Log levels for the `log` import.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
    pub fn from_i32(value: i32) -> Option<Self> {
        Some(match value {
            1 => Self::Error,
            2 => Self::Warn,
            3 => Self::Info,
            4 => Self::Debug,
            5 => Self::Trace,
            _ => return None,
        })
    }
}

/// Pixel formats, as stored in [`FrameDesc::format`].
///
/// Packed formats have one plane. Planar formats keep their planes one after another in the
/// frame's buffer, luma first; [`PixelFormat::planes`] is the one definition of where each lies.
/// Chroma of the 4:2:0 formats covers 2×2 luma samples: `ceil(width / 2)` × `ceil(height / 2)`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// 4 bytes per pixel: red, green, blue, alpha.
    Rgba8 = 1,
    /// 1 byte per pixel: luma.
    Gray8 = 2,
    /// 8-bit planar Y'CbCr 4:2:0: a Y plane, then Cb, then Cr (ffmpeg's `yuv420p`).
    Yuv420p = 3,
    /// 8-bit Y'CbCr 4:2:0: a Y plane, then one plane of interleaved Cb, Cr pairs.
    Nv12 = 4,
    /// 10-bit planar Y'CbCr 4:2:0: like [`PixelFormat::Yuv420p`], each sample a little-endian
    /// `u16` holding 0..=1023 (ffmpeg's `yuv420p10le`).
    Yuv420p10 = 5,
}

/// Where one plane of a frame lies in the frame's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plane {
    /// Byte offset of the plane's first row from the frame's first byte.
    pub offset: u64,
    /// Bytes from one row to the next.
    pub stride: u32,
    /// Bytes of one row's samples (without padding).
    pub row_bytes: u32,
    /// Rows in the plane.
    pub rows: u32,
    /// Samples across one row (pixels for luma; chroma positions for chroma).
    pub width: u32,
}

impl Plane {
    /// Bytes from the plane's first byte to the end of its last row.
    pub fn len(&self) -> u64 {
        match self.rows {
            0 => 0,
            rows => self.stride as u64 * (rows as u64 - 1) + self.row_bytes as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0 || self.row_bytes == 0
    }

    /// The byte range of row `y` within the frame.
    pub fn row_range(&self, y: u32) -> std::ops::Range<usize> {
        let start = (self.offset + y as u64 * self.stride as u64) as usize;
        start..start + self.row_bytes as usize
    }
}

/// The planes of a frame: up to three, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planes {
    planes: [Plane; 3],
    count: usize,
}

impl std::ops::Deref for Planes {
    type Target = [Plane];
    fn deref(&self) -> &[Plane] {
        &self.planes[..self.count]
    }
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 5] =
        [PixelFormat::Rgba8, PixelFormat::Gray8, PixelFormat::Yuv420p, PixelFormat::Nv12, PixelFormat::Yuv420p10];

    pub fn from_u32(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|f| *f as u32 == value)
    }

    /// Bytes of one luma (or packed) sample: 4 for `rgba8`, 2 for `yuv420p10`, else 1.
    pub fn bytes_per_pixel(self) -> u32 {
        match self {
            Self::Rgba8 => 4,
            Self::Gray8 | Self::Yuv420p | Self::Nv12 => 1,
            Self::Yuv420p10 => 2,
        }
    }

    /// Whether the format is Y'CbCr with subsampled chroma (several planes).
    pub fn is_yuv(self) -> bool {
        matches!(self, Self::Yuv420p | Self::Nv12 | Self::Yuv420p10)
    }

    /// Bits per sample: 10 for `yuv420p10`, else 8.
    pub fn bit_depth(self) -> u32 {
        match self {
            Self::Yuv420p10 => 10,
            _ => 8,
        }
    }

    /// The name used in descriptions and configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rgba8 => "rgba8",
            Self::Gray8 => "gray8",
            Self::Yuv420p => "yuv420p",
            Self::Nv12 => "nv12",
            Self::Yuv420p10 => "yuv420p10",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Bytes of one row of luma (or packed pixels) `width` pixels wide: the least stride.
    pub fn row_bytes(self, width: u32) -> u64 {
        width as u64 * self.bytes_per_pixel() as u64
    }

    /// Bytes of a frame with packed rows (stride = [`PixelFormat::row_bytes`]).
    pub fn packed_len(self, width: u32, height: u32) -> u64 {
        let stride = self.row_bytes(width).min(u32::MAX as u64) as u32;
        self.planes(width, height, stride).map_or(u64::MAX, |p| frame_len(&p))
    }

    /// The planes of a `width`×`height` frame whose luma rows are `stride` bytes apart, or
    /// why that shape is impossible. Chroma rows are `ceil(stride / 2)` bytes apart for
    /// `yuv420p` (in whole samples for `yuv420p10`), and twice that for `nv12`'s pairs.
    pub fn planes(self, width: u32, height: u32, stride: u32) -> Result<Planes, &'static str> {
        if width == 0 || height == 0 {
            return Err("zero width or height");
        }
        let sample = self.bytes_per_pixel();
        let row_bytes = width as u64 * sample as u64;
        if (stride as u64) < row_bytes {
            return Err("stride smaller than a row");
        }
        if !stride.is_multiple_of(sample) {
            return Err("stride not a whole number of samples");
        }
        let luma = Plane { offset: 0, stride, row_bytes: row_bytes as u32, rows: height, width };
        let mut planes = Planes { planes: [luma, Plane::default(), Plane::default()], count: 1 };
        if self.is_yuv() {
            let (chroma_width, rows) = (width.div_ceil(2), height.div_ceil(2));
            let pairs = if self == Self::Nv12 { 2 } else { 1 };
            let chroma_stride = (stride / sample).div_ceil(2) * sample * pairs;
            let chroma_row = chroma_width * sample * pairs;
            let first = stride as u64 * height as u64;
            let size = chroma_stride as u64 * rows as u64;
            let chroma =
                |offset| Plane { offset, stride: chroma_stride, row_bytes: chroma_row, rows, width: chroma_width };
            planes.planes[1] = chroma(first);
            planes.planes[2] = chroma(first + size);
            planes.count = if self == Self::Nv12 { 2 } else { 3 };
        }
        Ok(planes)
    }
}

/// Bytes a frame with these planes covers: up to the end of its last plane's last row.
pub fn frame_len(planes: &[Plane]) -> u64 {
    planes.last().map_or(0, |p| p.offset + p.len())
}

/// The chroma rows of a 4:2:0 frame that luma rows `rows` cover (bands start on even rows).
pub fn chroma_rows(rows: std::ops::Range<u32>) -> std::ops::Range<u32> {
    rows.start / 2..rows.end.div_ceil(2)
}

/// A frame in linear memory, as passed to `plugin_process` (32 bytes, little-endian).
///
/// For the input, every field is set by the host. For the output, the host sets `data` and
/// `capacity` and presets the other fields to the input's; the plugin may change `width`,
/// `height`, `stride` and `format` as long as `stride * height` stays within `capacity`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameDesc {
    /// Offset of the first row in linear memory.
    pub data: u32,
    /// Bytes available at `data`.
    pub capacity: u32,
    pub width: u32,
    pub height: u32,
    /// Bytes from one luma (or packed) row to the next; at least `width * bytes_per_pixel`
    /// (see [`PixelFormat::planes`] for the chroma planes).
    pub stride: u32,
    /// A [`PixelFormat`] value.
    pub format: u32,
    /// Presentation time in microseconds.
    pub timestamp_us: i64,
}

const _: () = assert!(core::mem::size_of::<FrameDesc>() == FRAME_DESC_SIZE);
const _: () = assert!(core::mem::offset_of!(FrameDesc, timestamp_us) == 24);

/// Size of [`FrameDesc`] in linear memory.
pub const FRAME_DESC_SIZE: usize = 32;

impl FrameDesc {
    pub fn to_bytes(&self) -> [u8; FRAME_DESC_SIZE] {
        let mut out = [0u8; FRAME_DESC_SIZE];
        let words = [self.data, self.capacity, self.width, self.height, self.stride, self.format];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out[24..].copy_from_slice(&self.timestamp_us.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8; FRAME_DESC_SIZE]) -> Self {
        let word = |i: usize| u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]));
        Self {
            data: word(0),
            capacity: word(1),
            width: word(2),
            height: word(3),
            stride: word(4),
            format: word(5),
            timestamp_us: i64::from_le_bytes(bytes[24..32].try_into().unwrap_or([0; 8])),
        }
    }

    /// Checks that the descriptor describes a frame that lies within its buffer.
    pub fn validate(&self) -> Result<PixelFormat, &'static str> {
        let format = PixelFormat::from_u32(self.format).ok_or("unknown pixel format")?;
        let planes = format.planes(self.width, self.height, self.stride)?;
        if frame_len(&planes) > self.capacity as u64 {
            return Err("frame larger than its buffer");
        }
        Ok(format)
    }

    /// The frame's planes, if its format and shape are valid.
    pub fn planes(&self) -> Option<Planes> {
        PixelFormat::from_u32(self.format)?.planes(self.width, self.height, self.stride).ok()
    }

    /// Bytes the frame covers: up to the end of its last plane's last row (0 if invalid).
    pub fn byte_len(&self) -> u64 {
        self.planes().map_or(0, |p| frame_len(&p))
    }
}

/// The `which` of [`IMPORT_FRAME_META`] for input `k` (0-based).
pub const fn meta_which(input: u32) -> i32 {
    match input {
        0 => 0,
        k => k as i32 + 1,
    }
}

/// Longest encoded [`FrameMeta`].
pub const MAX_META_BYTES: usize = 4096;
/// Most named properties a frame carries.
pub const MAX_PROPERTIES: usize = 32;

/// What a frame carries besides its pixels: its time, its colour, and named properties that
/// plugins can read and set. The host carries it through every plugin; a plugin that does not
/// set it passes its input's on unchanged. Codes of 0 mean unknown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// Presentation time in `time_base` units.
    pub pts: i64,
    /// Seconds per `pts` unit, as a ratio (`1/30000`).
    pub time_base: (u32, u32),
    /// How long the frame shows, in `time_base` units.
    pub duration: i64,
    /// Frames per second of the stream, as a ratio (`30000/1001`).
    pub frame_rate: (u32, u32),
    /// Y'CbCr matrix: 1 BT.601, 2 BT.709, 3 BT.2020.
    pub matrix: u8,
    /// 1 limited ("TV"), 2 full ("PC").
    pub range: u8,
    /// Colour primaries: 1 BT.709, 2 BT.601 525-line, 3 BT.601 625-line, 4 BT.2020.
    pub primaries: u8,
    /// Transfer: 1 BT.709, 2 sRGB, 3 PQ, 4 HLG.
    pub transfer: u8,
    /// Named values (at most [`MAX_PROPERTIES`], names unique), in the order set.
    pub properties: Vec<(String, String)>,
}

impl FrameMeta {
    /// The value of property `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Sets property `name` (replacing its value if it has one).
    pub fn set_property(&mut self, name: &str, value: &str) {
        match self.properties.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.properties.push((name.to_string(), value.to_string())),
        }
    }

    /// The range `range` says ([`crate::convert::Range::code`]); `None` when unknown.
    pub fn colour_range(&self) -> Option<crate::convert::Range> {
        crate::convert::Range::from_code(self.range)
    }

    /// Presentation time in microseconds (0 when the time base is unknown).
    pub fn pts_us(&self) -> i64 {
        let (num, den) = self.time_base;
        if den == 0 {
            return 0;
        }
        (self.pts as i128 * 1_000_000 * num as i128 / den as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// Little-endian: `pts` i64, `time_base` 2 × u32, `duration` i64, `frame_rate` 2 × u32, the
    /// four colour codes as u8, `u32 count`, then per property `u32 len` + UTF-8 name and
    /// `u32 len` + UTF-8 value. `None` if that is longer than [`MAX_META_BYTES`] or has more
    /// than [`MAX_PROPERTIES`] properties.
    pub fn encode(&self) -> Option<Vec<u8>> {
        if self.properties.len() > MAX_PROPERTIES {
            return None;
        }
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&self.pts.to_le_bytes());
        out.extend_from_slice(&self.time_base.0.to_le_bytes());
        out.extend_from_slice(&self.time_base.1.to_le_bytes());
        out.extend_from_slice(&self.duration.to_le_bytes());
        out.extend_from_slice(&self.frame_rate.0.to_le_bytes());
        out.extend_from_slice(&self.frame_rate.1.to_le_bytes());
        out.extend_from_slice(&[self.matrix, self.range, self.primaries, self.transfer]);
        out.extend_from_slice(&(self.properties.len() as u32).to_le_bytes());
        for (name, value) in &self.properties {
            put_bytes(&mut out, name.as_bytes());
            put_bytes(&mut out, value.as_bytes());
        }
        (out.len() <= MAX_META_BYTES).then_some(out)
    }

    /// Decodes what [`FrameMeta::encode`] wrote; `None` if the bytes are malformed, too long,
    /// or name a property twice.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_META_BYTES {
            return None;
        }
        let mut r = Reader(bytes);
        let i64_ = |r: &mut Reader<'_>| r.array().map(i64::from_le_bytes);
        let pts = i64_(&mut r)?;
        let time_base = (r.u32()?, r.u32()?);
        let duration = i64_(&mut r)?;
        let frame_rate = (r.u32()?, r.u32()?);
        let [matrix, range, primaries, transfer]: [u8; 4] = r.array()?;
        let count = r.u32()? as usize;
        if count > MAX_PROPERTIES {
            return None;
        }
        let mut properties: Vec<(String, String)> = Vec::with_capacity(count);
        for _ in 0..count {
            let (name, value) = (r.string()?, r.string()?);
            if properties.iter().any(|(n, _)| *n == name) {
                return None;
            }
            properties.push((name, value));
        }
        r.0.is_empty().then_some(Self {
            pts,
            time_base,
            duration,
            frame_rate,
            matrix,
            range,
            primaries,
            transfer,
            properties,
        })
    }
}

/// Type tags of encoded parameter values.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamTag {
    Int = 1,
    Float = 2,
    Bool = 3,
    /// Strings and enum choices.
    Str = 4,
}

impl ParamTag {
    pub const ALL: [ParamTag; 4] = [ParamTag::Int, ParamTag::Float, ParamTag::Bool, ParamTag::Str];
}

/// A parameter value as it crosses the ABI.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

/// Encodes parameters for `plugin_init`: `u32 count`, then per parameter `u32 name_len`, name
/// bytes, `u8 tag` ([`ParamTag`]), and the value (`i64`, `f64`, `u8` 0/1, or `u32 len` + UTF-8).
/// All integers little-endian. The host always passes every parameter of the schema.
pub fn encode_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a ParamValue)>) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut count = 0u32;
    for (name, value) in params {
        count += 1;
        put_bytes(&mut entries, name.as_bytes());
        match value {
            ParamValue::Int(v) => {
                entries.push(ParamTag::Int as u8);
                entries.extend_from_slice(&v.to_le_bytes());
            }
            ParamValue::Float(v) => {
                entries.push(ParamTag::Float as u8);
                entries.extend_from_slice(&v.to_le_bytes());
            }
            ParamValue::Bool(v) => {
                entries.push(ParamTag::Bool as u8);
                entries.push(u8::from(*v));
            }
            ParamValue::Str(v) => {
                entries.push(ParamTag::Str as u8);
                put_bytes(&mut entries, v.as_bytes());
            }
        }
    }
    let mut out = count.to_le_bytes().to_vec();
    out.extend_from_slice(&entries);
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Decodes what [`encode_params`] wrote; `None` if the bytes are malformed.
pub fn decode_params(bytes: &[u8]) -> Option<Vec<(String, ParamValue)>> {
    let mut reader = Reader(bytes);
    let count = reader.u32()?;
    let mut out = Vec::new();
    for _ in 0..count {
        let name = reader.string()?;
        let value = match reader.take(1)?[0] {
            t if t == ParamTag::Int as u8 => ParamValue::Int(i64::from_le_bytes(reader.array()?)),
            t if t == ParamTag::Float as u8 => ParamValue::Float(f64::from_le_bytes(reader.array()?)),
            t if t == ParamTag::Bool as u8 => ParamValue::Bool(reader.take(1)?[0] != 0),
            t if t == ParamTag::Str as u8 => ParamValue::Str(reader.string()?),
            _ => return None,
        };
        out.push((name, value));
    }
    reader.0.is_empty().then_some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_every_row_once_on_even_edges() {
        for height in [0, 1, 2, 7, 480, 1080, 1081] {
            for count in 1..=9 {
                let bands: Vec<_> = (0..count).map(|i| band_rows(height, i, count)).collect();
                assert_eq!(bands[0].start, 0);
                assert_eq!(bands[count as usize - 1].end, height);
                for pair in bands.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{height} rows in {count} bands");
                    assert!(pair[0].end % 2 == 0 && pair[0].start <= pair[0].end);
                }
            }
        }
        assert_eq!(band_rows(1080, 1, 2), 540..1080);
    }

    #[test]
    fn metadata_round_trips_and_refuses_what_is_malformed() {
        let mut meta = FrameMeta {
            pts: 1001,
            time_base: (1, 30000),
            duration: 1001,
            frame_rate: (30000, 1001),
            matrix: 2,
            range: 1,
            ..Default::default()
        };
        meta.set_property("scene", "3");
        meta.set_property("scene", "4");
        assert_eq!(meta.property("scene"), Some("4"));
        assert_eq!(meta.pts_us(), 33_366);
        let bytes = meta.encode().unwrap();
        assert_eq!(FrameMeta::decode(&bytes), Some(meta.clone()));
        assert_eq!(FrameMeta::decode(&bytes[..bytes.len() - 1]), None);
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes[40..]);
        twice[36..40].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(FrameMeta::decode(&twice), None, "a name given twice");
        meta.properties = (0..=MAX_PROPERTIES).map(|i| (i.to_string(), String::new())).collect();
        assert_eq!(meta.encode(), None);
        meta.properties = vec![("big".into(), "x".repeat(MAX_META_BYTES))];
        assert_eq!(meta.encode(), None);
    }

    #[test]
    fn params_round_trip() {
        let values = [
            ("radius".to_string(), ParamValue::Int(-3)),
            ("gain".to_string(), ParamValue::Float(1.5)),
            ("on".to_string(), ParamValue::Bool(true)),
            ("axis".to_string(), ParamValue::Str("vertical".into())),
        ];
        let bytes = encode_params(values.iter().map(|(n, v)| (n.as_str(), v)));
        assert_eq!(decode_params(&bytes).unwrap(), values.to_vec());
        assert_eq!(decode_params(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn frame_desc_round_trip_and_validation() {
        let desc = FrameDesc {
            data: 64,
            capacity: 4 * 3 * 2,
            width: 3,
            height: 2,
            stride: 12,
            format: PixelFormat::Rgba8 as u32,
            timestamp_us: -7,
        };
        assert_eq!(FrameDesc::from_bytes(&desc.to_bytes()), desc);
        assert!(desc.validate().is_ok());
        assert!(FrameDesc { stride: 11, ..desc }.validate().is_err());
        assert!(FrameDesc { height: 3, ..desc }.validate().is_err());
        assert!(FrameDesc { format: 9, ..desc }.validate().is_err());
    }
}
