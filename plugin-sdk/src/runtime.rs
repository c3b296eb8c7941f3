//! The guest side of the ABI behind [`crate::export_plugin!`]: turns the raw exports into calls
//! on a [`Plugin`]. Not for direct use.

use crate::abi::{self, FRAME_DESC_SIZE, FrameDesc, LogLevel, Status};
use crate::{Frame, FrameMut, Params, PixelFormat, Plugin, PluginError};
use std::cell::RefCell;

/// One plugin instance and the strings the exports hand out.
pub struct State<P> {
    inner: RefCell<Inner<P>>,
}

struct Inner<P> {
    plugin: Option<P>,
    describe: Vec<u8>,
    last_error: Vec<u8>,
    /// The last snapshot, length first, where the host reads it.
    snapshot: Vec<u8>,
}

// SAFETY: without the `atomics` target feature a wasm32 module has exactly one thread, so the
// `RefCell` inside is never reached from two threads. `export_plugin!` puts a `State` in a
// `static` only on wasm32; native builds (unit tests) never need it to be `Sync`, and with
// threads (`atomics`) it must not be, so the impl is limited to single-threaded wasm32.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<P> Sync for State<P> {}

impl<P: Plugin> Default for State<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Plugin> State<P> {
    pub const fn new() -> Self {
        Self {
            inner: RefCell::new(Inner {
                plugin: None,
                describe: Vec::new(),
                last_error: Vec::new(),
                snapshot: Vec::new(),
            }),
        }
    }

    pub fn describe(&self, name: &str, version: &str, description: &str) -> i32 {
        let mut inner = self.inner.borrow_mut();
        let json = crate::describe::describe_json(name, version, description, P::formats(), P::inputs(), &P::params());
        inner.describe = json.into_bytes();
        inner.describe.push(0);
        inner.describe.as_ptr() as i32
    }

    /// `plugin_init`: creates the plugin from the encoded parameters at `params`.
    ///
    /// # Safety
    /// Unless `len <= 0`, `params` is the address of `len` initialized bytes in this module's
    /// memory (a buffer from [`alloc`]) that nothing writes to during the call.
    pub unsafe fn init(&self, params: i32, len: i32) -> i32 {
        install_panic_hook();
        // SAFETY: forwarded from this function's contract.
        let bytes = unsafe { guest_bytes(params, len) };
        let result = match abi::decode_params(bytes) {
            Some(values) => P::new(&Params::resolve(&P::params(), &values)),
            None => Err(PluginError::new("the host sent malformed parameters")),
        };
        let mut inner = self.inner.borrow_mut();
        match result {
            Ok(plugin) => {
                inner.plugin = Some(plugin);
                Status::Ok as i32
            }
            Err(err) => inner.fail(err),
        }
    }

    /// `plugin_set_params`: gives the instance new parameters ([`Plugin::set_params`]).
    ///
    /// # Safety
    /// As for [`State::init`].
    pub unsafe fn set_params(&self, params: i32, len: i32) -> i32 {
        // SAFETY: forwarded from this function's contract.
        let bytes = unsafe { guest_bytes(params, len) };
        let mut inner = self.inner.borrow_mut();
        let result = match (abi::decode_params(bytes), inner.plugin.as_mut()) {
            (None, _) => Err(PluginError::new("the host sent malformed parameters")),
            (_, None) => Err(PluginError::new("set_params was called before a successful init")),
            (Some(values), Some(plugin)) => plugin.set_params(&Params::resolve(&P::params(), &values)),
        };
        match result {
            Ok(()) => Status::Ok as i32,
            Err(err) => inner.fail(err),
        }
    }

    /// `plugin_snapshot`: the instance's [`Plugin::snapshot`], length first; 0 without one (or
    /// one over [`abi::MAX_SNAPSHOT_BYTES`], which is left out).
    pub fn snapshot(&self) -> i32 {
        let mut inner = self.inner.borrow_mut();
        let state = inner.plugin.as_ref().and_then(Plugin::snapshot);
        match state.filter(|s| s.len() <= abi::MAX_SNAPSHOT_BYTES) {
            Some(state) => {
                inner.snapshot.clear();
                inner.snapshot.extend_from_slice(&(state.len() as u32).to_le_bytes());
                inner.snapshot.extend_from_slice(&state);
                inner.snapshot.as_ptr() as i32
            }
            None => 0,
        }
    }

    /// `plugin_restore`: gives the instance state an earlier one's [`Plugin::snapshot`] made.
    ///
    /// # Safety
    /// As for [`State::init`].
    pub unsafe fn restore(&self, state: i32, len: i32) -> i32 {
        // SAFETY: forwarded from this function's contract.
        let bytes = unsafe { guest_bytes(state, len) };
        let mut inner = self.inner.borrow_mut();
        let result = match inner.plugin.as_mut() {
            Some(plugin) => plugin.restore(bytes),
            None => Err(PluginError::new("restore was called before a successful init")),
        };
        match result {
            Ok(()) => Status::Ok as i32,
            Err(err) => inner.fail(err),
        }
    }

    /// `plugin_process`: runs the plugin on one frame.
    ///
    /// # Safety
    /// `input` and `output` are the addresses of [`FrameDesc`]s in this module's memory (the
    /// output one writable); the buffers they describe lie within this module's memory, are
    /// valid for their `capacity` (the output one writable), and overlap neither each other nor
    /// the descriptors.
    pub unsafe fn process(&self, input: i32, output: i32) -> i32 {
        // SAFETY: forwarded from this function's contract, which is `run_process`'s.
        unsafe { self.process_band(input, output, None) }
    }

    /// `plugin_process_rows`: writes output rows `first..first + rows` of one frame.
    ///
    /// # Safety
    /// As for [`State::process`].
    pub unsafe fn process_rows(&self, input: i32, output: i32, first: i32, rows: i32) -> i32 {
        let band = (first as u32)..(first as u32).saturating_add(rows as u32);
        // SAFETY: forwarded from this function's contract.
        unsafe { self.process_band(input, output, Some(band)) }
    }

    /// # Safety
    /// As for [`State::process`].
    unsafe fn process_band(&self, input: i32, output: i32, rows: Option<std::ops::Range<u32>>) -> i32 {
        let mut inner = self.inner.borrow_mut();
        // SAFETY: forwarded from this function's contract, which is `run_process`'s.
        let result = unsafe { run_process(&mut inner.plugin, input, output, rows) };
        match result {
            Ok(()) => Status::Ok as i32,
            Err(err) => inner.fail(err),
        }
    }

    /// `plugin_process_many`: runs the plugin on one frame of each of its inputs.
    ///
    /// # Safety
    /// `inputs` is the address of `count` consecutive [`FrameDesc`]s and `output` of one, in this
    /// module's memory (the output one writable); the buffers they describe lie within this
    /// module's memory and overlap neither each other (the output) nor the descriptors.
    pub unsafe fn process_many(&self, inputs: i32, count: i32, output: i32) -> i32 {
        let mut inner = self.inner.borrow_mut();
        // SAFETY: forwarded from this function's contract.
        let result = unsafe { run_process_many(&mut inner.plugin, inputs, count, output) };
        match result {
            Ok(()) => Status::Ok as i32,
            Err(err) => inner.fail(err),
        }
    }

    /// `plugin_output_shape` (`count` 1) and `plugin_output_shape_many`: the instance's
    /// [`Plugin::output_shape`] (or [`Plugin::output_shape_many`]) for the input descriptors'
    /// shapes, written into the output descriptor.
    ///
    /// # Safety
    /// `inputs` is the address of `count` consecutive [`FrameDesc`]s and `output` of one, in
    /// this module's memory, the output one writable, that nothing else touches during the call.
    pub unsafe fn output_shape(&self, inputs: i32, count: i32, output: i32) -> i32 {
        let mut inner = self.inner.borrow_mut();
        let shapes: Result<Vec<crate::Shape>, PluginError> = (0..count.clamp(0, abi::MAX_INPUTS as i32))
            .map(|k| {
                // SAFETY: per this function's contract `count` descriptors are readable.
                let desc = unsafe { read_desc(inputs + k * FRAME_DESC_SIZE as i32) };
                let format = PixelFormat::from_u32(desc.format).ok_or("the host sent an unknown pixel format")?;
                Ok(crate::Shape::new(desc.width, desc.height, format))
            })
            .collect();
        let result = match (inner.plugin.as_ref(), shapes) {
            (None, _) => Err(PluginError::new("output_shape was called before a successful init")),
            (_, Err(e)) => Err(e),
            (Some(plugin), Ok(shapes)) if count == 1 => plugin.output_shape(shapes[0]),
            (Some(plugin), Ok(shapes)) => plugin.output_shape_many(&shapes),
        };
        match result {
            Ok(shape) => {
                let out_ptr = output as usize as *mut [u8; FRAME_DESC_SIZE];
                // SAFETY: the output descriptor is readable and writable per this function's contract.
                let desc = FrameDesc::from_bytes(unsafe { &*out_ptr });
                let desc = FrameDesc { width: shape.width, height: shape.height, format: shape.format as u32, ..desc };
                // SAFETY: as above.
                unsafe { *out_ptr = desc.to_bytes() };
                Status::Ok as i32
            }
            Err(err) => inner.fail(err),
        }
    }

    /// `plugin_band_context`: the instance's [`Plugin::band_context`], or [`abi::WHOLE_FRAME`].
    pub fn band_context(&self) -> i32 {
        let inner = self.inner.borrow();
        let context = inner.plugin.as_ref().and_then(Plugin::band_context);
        context.map_or(abi::WHOLE_FRAME, |rows| rows.min(i32::MAX as u32) as i32)
    }

    pub fn last_error(&self) -> i32 {
        let inner = self.inner.borrow();
        if inner.last_error.is_empty() { 0 } else { inner.last_error.as_ptr() as i32 }
    }
}

impl<P> Inner<P> {
    fn fail(&mut self, err: PluginError) -> i32 {
        self.last_error = err.0.into_bytes();
        self.last_error.retain(|&b| b != 0);
        self.last_error.push(0);
        Status::Error as i32
    }
}

/// Runs the plugin on a frame, or on output rows `rows` of it.
///
/// # Safety
/// `input` and `output` point to [`FrameDesc`]s in this module's memory whose buffers are valid
/// and do not overlap each other or the descriptors.
unsafe fn run_process<P: Plugin>(
    plugin: &mut Option<P>,
    input: i32,
    output: i32,
    rows: Option<std::ops::Range<u32>>,
) -> Result<(), PluginError> {
    let plugin = plugin.as_mut().ok_or("process was called before a successful init")?;
    // SAFETY: per this function's contract both descriptors are readable.
    let (in_desc, out_ptr) = unsafe { (read_desc(input), output as usize as *mut [u8; FRAME_DESC_SIZE]) };
    // SAFETY: as above.
    let out_desc = FrameDesc::from_bytes(unsafe { &*out_ptr });
    let format = PixelFormat::from_u32(in_desc.format).ok_or("the host sent an unknown pixel format")?;
    crate::check_accepts::<P>(format)?;
    let out_format = PixelFormat::from_u32(out_desc.format).unwrap_or(format);
    // SAFETY: per this function's contract the two buffers are valid and disjoint.
    let (in_data, out_data) = unsafe {
        (
            std::slice::from_raw_parts(in_desc.data as usize as *const u8, in_desc.capacity as usize),
            std::slice::from_raw_parts_mut(out_desc.data as usize as *mut u8, out_desc.capacity as usize),
        )
    };
    let frame = Frame::new(in_data, in_desc.width, in_desc.height, in_desc.stride, format, in_desc.timestamp_us)?;
    let mut out =
        FrameMut::new(out_data, out_desc.width, out_desc.height, out_desc.stride, out_format, in_desc.timestamp_us)?;
    match rows {
        None => plugin.process(&frame, &mut out)?,
        Some(rows) => {
            if rows.start > rows.end || rows.end > frame.height() {
                return Err(PluginError::new("the host asked for rows outside the frame"));
            }
            plugin.process_rows(&frame, &mut out, rows)?;
            if out.height() != frame.height() {
                return Err(PluginError::new("a plugin working on bands must keep the frame's height"));
            }
        }
    }
    // SAFETY: the output descriptor is writable per this function's contract.
    unsafe { write_output_desc(out_ptr, out_desc, &out) };
    Ok(())
}

/// Runs a plugin with several inputs on one frame of each.
///
/// # Safety
/// As for [`State::process_many`].
unsafe fn run_process_many<P: Plugin>(
    plugin: &mut Option<P>,
    inputs: i32,
    count: i32,
    output: i32,
) -> Result<(), PluginError> {
    let plugin = plugin.as_mut().ok_or("process was called before a successful init")?;
    let count = usize::try_from(count)
        .ok()
        .filter(|&n| n == P::inputs().len())
        .ok_or_else(|| crate::wrong_input_count::<P>(count.max(0) as usize))?;
    let mut frames = Vec::with_capacity(count);
    for k in 0..count {
        // SAFETY: per this function's contract `count` descriptors follow `inputs`.
        let desc = unsafe { read_desc(inputs + (k * FRAME_DESC_SIZE) as i32) };
        let format = PixelFormat::from_u32(desc.format).ok_or("the host sent an unknown pixel format")?;
        crate::check_accepts::<P>(format)?;
        // SAFETY: per this function's contract the input buffers are valid and not written.
        let data = unsafe { std::slice::from_raw_parts(desc.data as usize as *const u8, desc.capacity as usize) };
        let frame = Frame::new(data, desc.width, desc.height, desc.stride, format, desc.timestamp_us)?;
        frames.push(frame.for_input(k as u32));
    }
    let out_ptr = output as usize as *mut [u8; FRAME_DESC_SIZE];
    // SAFETY: the output descriptor is readable and writable per this function's contract.
    let out_desc = FrameDesc::from_bytes(unsafe { &*out_ptr });
    let out_format = PixelFormat::from_u32(out_desc.format).ok_or("the host sent an unknown pixel format")?;
    // SAFETY: per this function's contract the output buffer is valid, writable and disjoint.
    let out_data =
        unsafe { std::slice::from_raw_parts_mut(out_desc.data as usize as *mut u8, out_desc.capacity as usize) };
    let timestamp = frames[0].timestamp_us();
    let mut out = FrameMut::new(out_data, out_desc.width, out_desc.height, out_desc.stride, out_format, timestamp)?;
    plugin.process_many(&frames, &mut out)?;
    // SAFETY: as above.
    unsafe { write_output_desc(out_ptr, out_desc, &out) };
    Ok(())
}

/// Writes the shape the plugin gave its output into the output descriptor at `out_ptr`.
///
/// # Safety
/// `out_ptr` points to a writable [`FrameDesc`].
unsafe fn write_output_desc(out_ptr: *mut [u8; FRAME_DESC_SIZE], desc: FrameDesc, out: &FrameMut<'_>) {
    let desc = FrameDesc {
        width: out.width(),
        height: out.height(),
        stride: out.stride(),
        format: out.format() as u32,
        ..desc
    };
    // SAFETY: per this function's contract.
    unsafe { *out_ptr = desc.to_bytes() };
}

/// The `len` bytes the host wrote at `ptr` (none when `len <= 0`).
///
/// # Safety
/// Unless `len <= 0`, `len` bytes at `ptr` are readable and not written while the slice lives.
unsafe fn guest_bytes<'a>(ptr: i32, len: i32) -> &'a [u8] {
    match usize::try_from(len) {
        Ok(len) if len > 0 => {
            // SAFETY: per this function's contract.
            unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len) }
        }
        _ => &[],
    }
}

/// # Safety
/// `ptr` points to a readable [`FrameDesc`].
unsafe fn read_desc(ptr: i32) -> FrameDesc {
    // SAFETY: per the contract.
    FrameDesc::from_bytes(unsafe { &*(ptr as usize as *const [u8; FRAME_DESC_SIZE]) })
}

/// `plugin_alloc`: memory the host fills (parameters, frame buffers). Never freed: the host
/// allocates once per instance and reuses it.
pub fn alloc(size: i32) -> i32 {
    let Ok(size) = usize::try_from(size) else { return 0 };
    let Ok(layout) = std::alloc::Layout::from_size_align(size.max(1), 16) else { return 0 };
    // SAFETY: the layout has a non-zero size.
    unsafe { std::alloc::alloc_zeroed(layout) as usize as i32 }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| log(LogLevel::Error, &format!("panic: {info}"))));
}

// The link attributes below need literals; these keep them equal to the ABI's names.
const _: () = assert!(matches!(abi::IMPORT_MODULE.as_bytes(), b"plugin_host"));
const _: () = assert!(matches!(abi::IMPORT_LOG.as_bytes(), b"log"));
const _: () = assert!(matches!(abi::IMPORT_FRAME_META.as_bytes(), b"frame_meta"));
const _: () = assert!(matches!(abi::IMPORT_SET_FRAME_META.as_bytes(), b"set_frame_meta"));

/// Whose metadata [`frame_meta`] reads: `abi::meta_which(k)` for input `k`, or this.
pub const OUTPUT_META: i32 = 1;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "plugin_host")]
unsafe extern "C" {
    #[link_name = "frame_meta"]
    fn host_frame_meta(which: i32, ptr: *mut u8, cap: usize) -> i32;
    #[link_name = "set_frame_meta"]
    fn host_set_frame_meta(ptr: *const u8, len: usize) -> i32;
}

/// The metadata of the frame being processed, from the host.
#[cfg(target_arch = "wasm32")]
pub fn frame_meta(which: i32) -> abi::FrameMeta {
    // Most metadata is a few dozen bytes: ask with room for that, and again with room for all
    // of it only when the host says it is longer.
    let mut buffer = vec![0u8; 256];
    loop {
        // SAFETY: the host writes at most `cap` bytes at `ptr`, a live buffer of that size.
        let len = unsafe { host_frame_meta(which, buffer.as_mut_ptr(), buffer.len()) };
        let len = len.clamp(0, abi::MAX_META_BYTES as i32) as usize;
        if len <= buffer.len() {
            buffer.truncate(len);
            return abi::FrameMeta::decode(&buffer).unwrap_or_default();
        }
        buffer.resize(len, 0);
    }
}

/// Outside wasm a frame without metadata of its own has the default.
#[cfg(not(target_arch = "wasm32"))]
pub fn frame_meta(_which: i32) -> abi::FrameMeta {
    abi::FrameMeta::default()
}

/// Gives the host the output's metadata.
#[cfg(target_arch = "wasm32")]
pub fn set_frame_meta(bytes: &[u8]) -> Result<(), PluginError> {
    // SAFETY: the host reads `len` bytes at `ptr`, a live slice.
    match unsafe { host_set_frame_meta(bytes.as_ptr(), bytes.len()) } {
        0 => Ok(()),
        _ => Err(PluginError::new("the host refused the frame metadata")),
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub fn set_frame_meta(_bytes: &[u8]) -> Result<(), PluginError> {
    Ok(())
}

#[cfg(target_arch = "wasm32")]
pub fn log(level: LogLevel, message: &str) {
    #[link(wasm_import_module = "plugin_host")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn host_log(level: i32, ptr: *const u8, len: usize);
    }
    // SAFETY: the host reads `len` bytes at `ptr`, a live string.
    unsafe { host_log(level as i32, message.as_ptr(), message.len()) }
}

/// Outside wasm (native unit tests) log lines go to stderr.
#[cfg(not(target_arch = "wasm32"))]
pub fn log(level: LogLevel, message: &str) {
    eprintln!("[{level:?}] {message}");
}
