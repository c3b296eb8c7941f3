//! The plugin module inside the runner: wasmtime setup, the guest ABI calls, the frame copy in
//! and out of linear memory, and the classification of what went wrong.

use super::memory::{Window, WindowCreator};
use crate::ipc::protocol::{Failure, RunnerLimits};
use plugin_sdk::abi::{self, FRAME_DESC_SIZE, FrameDesc, Status};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::{
    Caller, Engine, Instance, Linker, Memory, Module, ResourceLimiter, Store, Trap, TypedFunc, WasmBacktrace,
};

/// Called with each log line the plugin writes.
pub type LogSink = Arc<dyn Fn(i32, String) + Send + Sync>;

/// Per-store data: the memory cap and the log sink.
pub struct StoreData {
    memory_cap: usize,
    /// Set when a `memory.grow` was refused, so a trap right after is reported as the limit.
    memory_denied: Arc<AtomicBool>,
    log: LogSink,
    /// The metadata of the frame being processed, for the `frame_meta` imports.
    meta: FrameMetaCall,
}

/// One frame's metadata while the plugin processes it: the input's (encoded, as the host wrote
/// it) and the output's once the plugin sets it.
#[derive(Default)]
struct FrameMetaCall {
    input: Vec<u8>,
    /// A graph node's other inputs' metadata (input `k` ≥ 1 is `others[k - 1]`).
    others: Vec<Vec<u8>>,
    output: Option<Vec<u8>>,
    /// False in a band that does not start at row 0: only one band speaks for the frame.
    settable: bool,
}

impl ResourceLimiter for StoreData {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_denied.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The engine a runner uses; with a window, linear memories map the shared region's buffers
/// (zero-copy frames).
pub fn engine(window: Option<Arc<Window>>) -> wasmtime::Result<Engine> {
    let mut config = crate::artifact::engine_config();
    if let Some(window) = window {
        config.with_host_memory(Arc::new(WindowCreator(window)));
    }
    Engine::new(&config)
}

/// Why a frame's bytes could not be read in (pipe transport); the channel is then unusable.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the instance has no buffers of its own")]
    NotHeap,
    #[error("the frame's descriptor does not fit the instance's input buffer")]
    Descriptor,
    #[error("reading the frame's bytes failed: {0}")]
    Io(std::io::Error),
}

/// A compiled plugin module, checked to implement our ABI.
pub struct PluginModule {
    engine: Engine,
    module: Module,
    linker: Linker<StoreData>,
}

struct Exports {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    init: TypedFunc<(i32, i32), i32>,
    process: TypedFunc<(i32, i32), i32>,
    last_error: TypedFunc<(), i32>,
    describe: TypedFunc<(), i32>,
    /// The optional band exports (`abi::OPTIONAL_EXPORTS`), present together or not used.
    bands: Option<(TypedFunc<(), i32>, ProcessRows)>,
    /// `plugin_output_shape(input, output)`, when the plugin makes frames of another shape.
    output_shape: Option<TypedFunc<(i32, i32), i32>>,
    /// `plugin_set_params(params, len)`, when the plugin takes new parameters itself.
    set_params: Option<TypedFunc<(i32, i32), i32>>,
    /// `plugin_process_many(inputs, count, output)`, for plugins with several inputs.
    process_many: Option<ManyFrames>,
    /// `plugin_output_shape_many(inputs, count, output)`.
    output_shape_many: Option<ManyFrames>,
    /// `plugin_snapshot()` and `plugin_restore(state, len)`, when the plugin keeps state.
    snapshot: Option<TypedFunc<(), i32>>,
    restore: Option<TypedFunc<(i32, i32), i32>>,
}

/// An export taking `count` input descriptors at an address and an output descriptor.
type ManyFrames = TypedFunc<(i32, i32, i32), i32>;

/// `plugin_process_rows(input, output, first_row, rows)`.
type ProcessRows = TypedFunc<(i32, i32, i32, i32), i32>;

/// Where an instance's frames live in its linear memory.
enum Buffers {
    /// The region's buffers, mapped at this offset (zero-copy).
    Window { base: u32, len: u32 },
    /// Buffers of its own that frames are copied into and out of.
    Heap { input: u32, output: u32 },
}

/// How one frame reaches the plugin.
pub enum FrameIo {
    /// In place: the input and output buffers at these offsets within the window.
    InPlace { input: u32, output: u32 },
    /// In the instance's own buffers: the input was read in with
    /// [`PluginInstance::read_input`], the output is taken with [`PluginInstance::heap_output`].
    Heap,
}

/// One instance with its frame buffers in linear memory.
pub struct PluginInstance {
    store: Store<StoreData>,
    exports: Exports,
    buffers: Buffers,
    window: Option<Arc<Window>>,
    /// The two frame descriptors.
    descs: u32,
    capacity: u32,
    /// With `input = "snapshot"`: a private buffer the input is copied into before `process`,
    /// so that the previous stage cannot change it while this plugin reads it.
    snapshot: Snapshot,
    /// The ABI version the module was built for (checked to be one this host runs).
    abi_version: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    Off,
    Wanted,
    At(u32),
}

impl PluginModule {
    /// From a compiled artifact (see `crate::compile` and `crate::cache`), or from wasm bytes.
    pub fn load(engine: &Engine, bytes: &[u8], precompiled: bool) -> Result<Self, Failure> {
        let module = if precompiled {
            // SAFETY: a sandboxed compiler runner produced these bytes with
            // `Engine::precompile_module` under the same settings (`base_config`); from disk, the
            // host checked their MAC under this user's key. They are only ever loaded here, in a
            // sandboxed process; `deserialize` checks engine compatibility itself.
            unsafe { Module::deserialize(engine, bytes) }
                .map_err(|e| Failure::Load(format!("cannot load the compiled module: {e:#}").into()))?
        } else {
            Module::new(engine, bytes)
                .map_err(|e| Failure::Load(format!("not a valid WebAssembly module: {e:#}").into()))?
        };
        let mut linker = Linker::new(engine);
        linker
            .func_wrap(
                abi::IMPORT_MODULE,
                abi::IMPORT_LOG,
                |mut caller: Caller<'_, StoreData>, level: i32, ptr: i32, len: i32| {
                    let message =
                        read_guest_bytes(&mut caller, ptr, len.clamp(0, abi::MAX_MESSAGE_BYTES as i32) as u32);
                    let message = String::from_utf8_lossy(&message).into_owned();
                    (caller.data().log)(level, message);
                },
            )
            .map_err(|e| Failure::Load(e.to_string().into()))?;
        linker
            .func_wrap(
                abi::IMPORT_MODULE,
                abi::IMPORT_FRAME_META,
                |mut caller: Caller<'_, StoreData>, which: i32, ptr: i32, cap: i32| -> i32 {
                    let meta = &caller.data().meta;
                    let bytes = match (which, &meta.output) {
                        (1, Some(output)) => output.clone(),
                        (2.., _) => meta.others.get(which as usize - 2).cloned().unwrap_or_default(),
                        _ => meta.input.clone(),
                    };
                    if bytes.len() <= cap.max(0) as usize {
                        let memory = caller.get_export(abi::EXPORT_MEMORY).and_then(|e| e.into_memory());
                        if let Some(memory) = memory {
                            // Out of bounds: nothing is written, as the ABI says of any bad range.
                            let _ = GuestMemory::of(memory, &caller).write(ptr as u32 as usize, &bytes);
                        }
                    }
                    bytes.len() as i32
                },
            )
            .map_err(|e| Failure::Load(e.to_string().into()))?;
        linker
            .func_wrap(
                abi::IMPORT_MODULE,
                abi::IMPORT_SET_FRAME_META,
                |mut caller: Caller<'_, StoreData>, ptr: i32, len: i32| -> i32 {
                    if !(0..=abi::MAX_META_BYTES as i32).contains(&len) {
                        return 1;
                    }
                    let bytes = read_guest_bytes(&mut caller, ptr, len as u32);
                    if bytes.len() != len as usize || abi::FrameMeta::decode(&bytes).is_none() {
                        return 1;
                    }
                    let meta = &mut caller.data_mut().meta;
                    if meta.settable {
                        meta.output = Some(bytes);
                    }
                    0
                },
            )
            .map_err(|e| Failure::Load(e.to_string().into()))?;
        Ok(Self { engine: engine.clone(), module, linker })
    }

    /// Instantiates, checks the ABI version, and returns the description JSON.
    pub fn instantiate(
        &self,
        limits: &RunnerLimits,
        frame_capacity: u32,
        window: Option<Arc<Window>>,
        log: LogSink,
    ) -> Result<PluginInstance, Failure> {
        let frame_bytes = window.as_ref().map_or(2 * frame_capacity as usize, |w| w.len().next_multiple_of(WASM_PAGE));
        let memory_cap = (limits.memory_bytes as usize).saturating_add(frame_bytes + 2 * WASM_PAGE);
        let data = StoreData {
            memory_cap,
            memory_denied: Arc::new(AtomicBool::new(false)),
            log,
            meta: FrameMetaCall::default(),
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| data);
        store.set_epoch_deadline(u64::MAX / 2);
        let instance =
            self.linker.instantiate(&mut store, &self.module).map_err(|e| Failure::Load(format!("{e:#}").into()))?;
        let version = func::<(), i32>(&instance, &mut store, abi::EXPORT_ABI_VERSION)?
            .call(&mut store, ())
            .map_err(|e| classify(&store, e))?;
        if !(abi::MIN_ABI_VERSION..=abi::ABI_VERSION).contains(&(version as u32)) {
            return Err(Failure::Load(
                format!(
                    "it was built for plugin ABI version {version}; this host speaks versions {} to {}",
                    abi::MIN_ABI_VERSION,
                    abi::ABI_VERSION
                )
                .into(),
            ));
        }
        let exports = Exports {
            memory: instance
                .get_memory(&mut store, abi::EXPORT_MEMORY)
                .ok_or_else(|| Failure::Load("it does not export its memory as \"memory\"".into()))?,
            alloc: func(&instance, &mut store, abi::EXPORT_ALLOC)?,
            init: func(&instance, &mut store, abi::EXPORT_INIT)?,
            process: func(&instance, &mut store, abi::EXPORT_PROCESS)?,
            last_error: func(&instance, &mut store, abi::EXPORT_LAST_ERROR)?,
            describe: func(&instance, &mut store, abi::EXPORT_DESCRIBE)?,
            bands: match (
                instance.get_export(&mut store, abi::EXPORT_BAND_CONTEXT).is_some(),
                instance.get_export(&mut store, abi::EXPORT_PROCESS_ROWS).is_some(),
            ) {
                (true, true) => Some((
                    func(&instance, &mut store, abi::EXPORT_BAND_CONTEXT)?,
                    func(&instance, &mut store, abi::EXPORT_PROCESS_ROWS)?,
                )),
                _ => None,
            },
            output_shape: optional(&instance, &mut store, abi::EXPORT_OUTPUT_SHAPE)?,
            set_params: optional(&instance, &mut store, abi::EXPORT_SET_PARAMS)?,
            process_many: optional(&instance, &mut store, abi::EXPORT_PROCESS_MANY)?,
            output_shape_many: optional(&instance, &mut store, abi::EXPORT_OUTPUT_SHAPE_MANY)?,
            snapshot: optional(&instance, &mut store, abi::EXPORT_SNAPSHOT)?,
            restore: optional(&instance, &mut store, abi::EXPORT_RESTORE)?,
        };
        let buffers = Buffers::Heap { input: 0, output: 0 };
        let snapshot = if limits.snapshot_input && window.is_some() { Snapshot::Wanted } else { Snapshot::Off };
        let mut instance = PluginInstance {
            store,
            exports,
            buffers,
            window,
            descs: 0,
            capacity: frame_capacity,
            snapshot,
            abi_version: version as u32,
        };
        if let Some(window) = &instance.window {
            window.arm();
            let pages = window.len().div_ceil(WASM_PAGE) as u64;
            instance.exports.memory.grow(&mut instance.store, pages).map_err(|e| {
                Failure::MemoryLimit(format!("cannot map the frame window into linear memory: {e:#}").into())
            })?;
            let base = window.placed_at().map_err(|e| Failure::Load(e.into()))?;
            let base =
                u32::try_from(base).map_err(|_| Failure::MemoryLimit("the frame window lies past 4 GiB".into()))?;
            instance.buffers = Buffers::Window { base, len: window.len() as u32 };
        }
        Ok(instance)
    }
}

const WASM_PAGE: usize = 65536;

fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<StoreData>,
    name: &str,
) -> Result<TypedFunc<P, R>, Failure> {
    instance.get_typed_func::<P, R>(&mut *store, name).map_err(|_| {
        Failure::Load(format!(
            "it does not export `{name}` with the ABI's signature: is it built with plugin_sdk::export_plugin! (ABI version {})?",
            abi::ABI_VERSION
        ).into())
    })
}

/// An optional export: `None` when the module lacks it, an error when it has it with another
/// signature.
fn optional<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<StoreData>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, Failure> {
    match instance.get_export(&mut *store, name) {
        Some(_) => func(instance, store, name).map(Some),
        None => Ok(None),
    }
}

fn read_guest_bytes(caller: &mut Caller<'_, StoreData>, ptr: i32, len: u32) -> Vec<u8> {
    let Some(memory) = caller.get_export(abi::EXPORT_MEMORY).and_then(|e| e.into_memory()) else { return Vec::new() };
    GuestMemory::of(memory, caller).read(ptr as u32 as usize, len as usize).unwrap_or_default()
}

/// A linear memory, read and written only by raw copies. Part of it (the frame window) is a
/// mapping other processes write, so no Rust reference to its bytes is ever made: a `&[u8]`
/// over memory that changes under it is undefined behaviour, even if it is only bytes.
struct GuestMemory {
    base: *mut u8,
    size: usize,
}

impl GuestMemory {
    fn of(memory: Memory, store: impl wasmtime::AsContext) -> Self {
        Self { base: memory.data_ptr(&store), size: memory.data_size(&store) }
    }

    /// A pointer to `len` bytes at `at`, if they lie within the memory.
    fn range(&self, at: usize, len: usize) -> Option<*mut u8> {
        let end = at.checked_add(len)?;
        // SAFETY: `at <= end <= size`, so the offset stays within the memory's mapping.
        (end <= self.size).then(|| unsafe { self.base.add(at) })
    }

    fn read(&self, at: usize, len: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(at, len, &mut out)?;
        Some(out)
    }

    /// Replaces `out`'s contents with the `len` bytes at `at`.
    fn read_into(&self, at: usize, len: usize, out: &mut Vec<u8>) -> Option<()> {
        let src = self.range(at, len)?;
        out.clear();
        out.reserve(len);
        // SAFETY: `src` is valid for `len` bytes (range), `out` has room for them; our own
        // allocation never overlaps the linear memory. Bytes have no invalid values.
        unsafe {
            std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), len);
            out.set_len(len);
        }
        Some(())
    }

    fn write(&self, at: usize, bytes: &[u8]) -> Option<()> {
        let dst = self.range(at, bytes.len())?;
        // SAFETY: `dst` is valid for `bytes.len()` bytes (range); `bytes` is ours, not the memory.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        Some(())
    }

    /// Copies `len` bytes from `from` to `to` within the memory (the ranges may overlap).
    fn copy_within(&self, from: usize, to: usize, len: usize) -> Option<()> {
        let (src, dst) = (self.range(from, len)?, self.range(to, len)?);
        // SAFETY: both ranges lie within the memory (range); `copy` allows overlap.
        unsafe { std::ptr::copy(src, dst, len) };
        Some(())
    }

    /// The NUL-terminated string of at most `max` bytes at `at`.
    fn c_string(&self, at: usize, max: usize) -> Option<Vec<u8>> {
        let len = self.size.checked_sub(at)?.min(max);
        let bytes = self.read(at, len)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        Some(bytes[..end].to_vec())
    }
}

/// Turns a wasmtime error into the failure we report.
fn classify(store: &Store<StoreData>, error: wasmtime::Error) -> Failure {
    // Function names come from the module's name section: cut here, so that a report always
    // fits a control message (9 names of 100 KB once made a trap look like a crash).
    let backtrace = error.downcast_ref::<WasmBacktrace>().map(|b| cut(b.to_string())).unwrap_or_default();
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Deadline,
        Some(trap) if store.data().memory_denied.load(Ordering::Relaxed) => Failure::MemoryLimit(
            format!(
                "a memory.grow past the limit of {} bytes was refused, then the plugin trapped: {trap}\n{backtrace}",
                store.data().memory_cap
            )
            .into(),
        ),
        Some(trap) => Failure::Trap { trap: trap.to_string().into(), backtrace: backtrace.into() },
        None => Failure::Trap { trap: cut(format!("{error:#}")).into(), backtrace: backtrace.into() },
    }
}

/// Longest text of a failure report, in bytes; far below the host's message limit.
const MAX_REPORT_BYTES: usize = 16 << 10;

/// `text` cut to [`MAX_REPORT_BYTES`] at a character boundary, saying so.
fn cut(mut text: String) -> String {
    if text.len() > MAX_REPORT_BYTES {
        let mut end = MAX_REPORT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let dropped = text.len() - end;
        text.truncate(end);
        text.push_str(&format!("… ({dropped} more bytes)"));
    }
    text
}

impl PluginInstance {
    /// The description JSON the plugin exports.
    pub fn describe(&mut self) -> Result<String, Failure> {
        let ptr = self.exports.describe.call(&mut self.store, ()).map_err(|e| classify(&self.store, e))?;
        let text = self
            .c_string(ptr, abi::MAX_DESCRIBE_BYTES)
            .ok_or_else(|| Failure::Load("its description is not a NUL-terminated string in its memory".into()))?;
        let text = String::from_utf8(text).map_err(|_| Failure::Load("its description is not UTF-8".into()))?;
        // The version it was built for, said by the runner (the module's own word is replaced).
        let mut json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Failure::Load(format!("its description is not valid: {e}").into()))?;
        if let Some(object) = json.as_object_mut() {
            object.insert("abi_version".into(), self.abi_version.into());
        }
        Ok(json.to_string())
    }

    /// Creates the plugin instance with ABI-encoded parameters and allocates the frame buffers.
    pub fn init(&mut self, params: &[u8], deadline_ticks: u64) -> Result<(), Failure> {
        let params_ptr = self.alloc(params.len() as u32)?;
        self.memory()
            .write(params_ptr as usize, params)
            .ok_or_else(|| Failure::Protocol("the parameters do not fit the plugin's memory".into()))?;
        self.store.set_epoch_deadline(deadline_ticks);
        let status = self.exports.init.call(&mut self.store, (params_ptr as i32, params.len() as i32));
        self.check_status(status)?;
        if let Buffers::Heap { .. } = self.buffers {
            self.buffers = Buffers::Heap { input: self.alloc(self.capacity)?, output: self.alloc(self.capacity)? };
        }
        if self.snapshot == Snapshot::Wanted {
            self.snapshot = Snapshot::At(self.alloc(self.capacity)?);
        }
        // The output's descriptor, then room for every input's.
        self.descs = self.alloc(((1 + abi::MAX_INPUTS) * FRAME_DESC_SIZE) as u32)?;
        Ok(())
    }

    fn alloc(&mut self, size: u32) -> Result<u32, Failure> {
        let ptr = self.exports.alloc.call(&mut self.store, size as i32).map_err(|e| classify(&self.store, e))?;
        let end = (ptr as u32 as usize).checked_add(size as usize);
        if ptr == 0 || end.is_none_or(|end| end > self.exports.memory.data_size(&self.store)) {
            return Err(Failure::MemoryLimit(
                format!("plugin_alloc could not provide {size} bytes for frame buffers").into(),
            ));
        }
        Ok(ptr as u32)
    }

    fn check_status(&mut self, status: wasmtime::Result<i32>) -> Result<(), Failure> {
        match status {
            Ok(s) if s == Status::Ok as i32 => Ok(()),
            Ok(_) => {
                let ptr = self.exports.last_error.call(&mut self.store, ()).map_err(|e| classify(&self.store, e))?;
                let message =
                    self.c_string(ptr, abi::MAX_MESSAGE_BYTES).map(|b| String::from_utf8_lossy(&b).into_owned());
                Err(Failure::Plugin(
                    message.unwrap_or_else(|| "the plugin reported an error without a message".into()).into(),
                ))
            }
            Err(e) => Err(classify(&self.store, e)),
        }
    }

    /// Reads a NUL-terminated string of at most `max` bytes at `ptr`.
    fn c_string(&self, ptr: i32, max: usize) -> Option<Vec<u8>> {
        self.memory().c_string(ptr as u32 as usize, max)
    }

    fn memory(&self) -> GuestMemory {
        GuestMemory::of(self.exports.memory, &self.store)
    }

    /// Pipe transport: reads the frame `input` describes (`data` 0) from `from` straight into the
    /// instance's own input buffer. Its memory is this process's alone (no window is mapped in
    /// pipe mode), so it is an ordinary slice.
    pub fn read_input(&mut self, input: &FrameDesc, from: &mut impl std::io::Read) -> Result<(), ReadError> {
        let len = input.byte_len();
        let Buffers::Heap { input: at, .. } = self.buffers else { return Err(ReadError::NotHeap) };
        if input.validate().is_err() || input.data != 0 || len > self.capacity as u64 {
            return Err(ReadError::Descriptor);
        }
        let memory = self.exports.memory.data_mut(&mut self.store);
        let buffer = memory.get_mut(at as usize..at as usize + len as usize).ok_or(ReadError::Descriptor)?;
        from.read_exact(buffer).map_err(ReadError::Io)
    }

    /// Pipe transport: the bytes of the frame `output` describes (as [`PluginInstance::process`]
    /// returned it), in place in the instance's own output buffer.
    pub fn heap_output(&self, output: &FrameDesc) -> Option<&[u8]> {
        let Buffers::Heap { output: at, .. } = self.buffers else { return None };
        let len = output.byte_len() as usize;
        self.exports.memory.data(&self.store).get(at as usize..(at as usize).checked_add(len)?)
    }

    /// Rows of context a band reads, from `plugin_band_context` after init; `None` when the
    /// plugin needs whole frames (it says so, or lacks the band exports).
    pub fn band_context(&mut self) -> Result<Option<u32>, Failure> {
        let Some((band_context, _)) = &self.exports.bands else { return Ok(None) };
        self.store.set_epoch_deadline(1);
        let rows = band_context.call(&mut self.store, ()).map_err(|e| classify(&self.store, e))?;
        Ok(u32::try_from(rows).ok())
    }

    /// The shape (width, height, format; packed stride) of the plugin's output for frames of
    /// `input`'s shape, from `plugin_output_shape` after init; `input`'s own without it.
    pub fn output_shape(&mut self, input: &FrameDesc) -> Result<FrameDesc, Failure> {
        let input = FrameDesc { data: 0, capacity: 0, ..*input };
        let Some(output_shape) = self.exports.output_shape.clone() else { return Ok(input) };
        self.ask_shape(&[input], |store, inputs, output| output_shape.call(store, (inputs, output)))
    }

    /// [`PluginInstance::output_shape`] for a graph node's inputs, from
    /// `plugin_output_shape_many`; the first input's shape without it.
    pub fn output_shape_many(&mut self, inputs: &[FrameDesc]) -> Result<FrameDesc, Failure> {
        let inputs: Vec<FrameDesc> = inputs.iter().map(|d| FrameDesc { data: 0, capacity: 0, ..*d }).collect();
        let first = *inputs.first().ok_or_else(|| Failure::Protocol("a node with no inputs".into()))?;
        let Some(output_shape) = self.exports.output_shape_many.clone() else { return Ok(first) };
        let count = inputs.len() as i32;
        self.ask_shape(&inputs, |store, at, output| output_shape.call(store, (at, count, output)))
    }

    /// Writes `inputs`' descriptors (and the first as the output's), calls `ask` with their
    /// address and the output's, and checks the shape it wrote into the output.
    fn ask_shape(
        &mut self,
        inputs: &[FrameDesc],
        ask: impl FnOnce(&mut Store<StoreData>, i32, i32) -> wasmtime::Result<i32>,
    ) -> Result<FrameDesc, Failure> {
        let input = inputs[0];
        let descs = self.descs as usize;
        let misplaced = || Failure::Protocol("the shape descriptors lie outside the plugin's memory".into());
        let memory = self.memory();
        memory.write(descs, &input.to_bytes()).ok_or_else(misplaced)?;
        for (k, desc) in inputs.iter().enumerate().take(abi::MAX_INPUTS) {
            memory.write(descs + (k + 1) * FRAME_DESC_SIZE, &desc.to_bytes()).ok_or_else(misplaced)?;
        }
        self.store.set_epoch_deadline(1);
        let status = ask(&mut self.store, (descs + FRAME_DESC_SIZE) as i32, descs as i32);
        self.check_status(status)?;
        let bytes = self.memory().read(descs, FRAME_DESC_SIZE).ok_or_else(misplaced)?;
        let out = FrameDesc::from_bytes(bytes.as_slice().try_into().map_err(|_| misplaced())?);
        let format = abi::PixelFormat::from_u32(out.format)
            .ok_or_else(|| Failure::Plugin("plugin_output_shape gave an unknown pixel format".into()))?;
        let stride = u32::try_from(format.row_bytes(out.width))
            .map_err(|_| Failure::Plugin("plugin_output_shape gave a width too large".into()))?;
        let shape = FrameDesc {
            data: 0,
            capacity: 0,
            width: out.width,
            height: out.height,
            stride,
            format: out.format,
            ..input
        };
        format
            .planes(shape.width, shape.height, shape.stride)
            .map_err(|why| Failure::Plugin(format!("plugin_output_shape gave an impossible shape: {why}").into()))?;
        Ok(shape)
    }

    /// Gives the instance new ABI-encoded parameters through `plugin_set_params`; `Ok(false)`
    /// when the module has no such export (the caller then makes a fresh instance).
    pub fn set_params(&mut self, params: &[u8]) -> Result<bool, Failure> {
        let export = self.exports.set_params.clone();
        self.call_with_bytes(export, params, "the parameters")
    }

    /// Calls `export(ptr, len)` with `bytes` copied into a buffer from `plugin_alloc`, and
    /// checks its status; `Ok(false)` when the module has no such export.
    fn call_with_bytes(
        &mut self,
        export: Option<TypedFunc<(i32, i32), i32>>,
        bytes: &[u8],
        what: &str,
    ) -> Result<bool, Failure> {
        let Some(export) = export else { return Ok(false) };
        let ptr = self.alloc(bytes.len() as u32)?;
        self.memory()
            .write(ptr as usize, bytes)
            .ok_or_else(|| Failure::Protocol(format!("{what} do not fit the plugin's memory").into()))?;
        self.store.set_epoch_deadline(1);
        let status = export.call(&mut self.store, (ptr as i32, bytes.len() as i32));
        self.check_status(status)?;
        Ok(true)
    }

    /// The instance's state from `plugin_snapshot`: `None` without the export, or when it keeps
    /// none. Copied out once; longer than [`abi::MAX_SNAPSHOT_BYTES`] is the plugin's error.
    pub fn snapshot(&mut self) -> Result<Option<Vec<u8>>, Failure> {
        let Some(snapshot) = self.exports.snapshot.clone() else { return Ok(None) };
        self.store.set_epoch_deadline(1);
        let at = snapshot.call(&mut self.store, ()).map_err(|e| classify(&self.store, e))? as u32 as usize;
        if at == 0 {
            return Ok(None);
        }
        let misplaced = || Failure::Plugin("its snapshot lies outside its memory".into());
        let memory = self.memory();
        let len = memory.read(at, 4).ok_or_else(misplaced)?;
        let len = u32::from_le_bytes(len.as_slice().try_into().map_err(|_| misplaced())?) as usize;
        if len > abi::MAX_SNAPSHOT_BYTES {
            let most = abi::MAX_SNAPSHOT_BYTES;
            return Err(Failure::Plugin(format!("its snapshot of {len} bytes is over the limit of {most}").into()));
        }
        Ok(Some(memory.read(at + 4, len).ok_or_else(misplaced)?))
    }

    /// Gives the instance `state` through `plugin_restore`; `Ok(false)` without the export.
    pub fn restore(&mut self, state: &[u8]) -> Result<bool, Failure> {
        let export = self.exports.restore.clone();
        self.call_with_bytes(export, state, "the state's bytes")
    }

    /// Gives the next `process` call the input's encoded metadata; `settable`: whether the
    /// plugin may set the output's (a whole frame, or the band at row 0).
    pub fn set_input_meta(&mut self, input: &[u8], settable: bool) {
        let meta = &mut self.store.data_mut().meta;
        meta.input.clear();
        meta.input.extend_from_slice(input);
        meta.others.clear();
        meta.output = None;
        meta.settable = settable;
    }

    /// [`PluginInstance::set_input_meta`] for a graph node's frame: each input's, in order.
    pub fn set_input_metas(&mut self, inputs: &[Vec<u8>]) {
        self.set_input_meta(inputs.first().map_or(&[][..], |m| m.as_slice()), true);
        self.store.data_mut().meta.others.extend(inputs.iter().skip(1).cloned());
    }

    /// The output's encoded metadata, when the last `process` call set it.
    pub fn take_output_meta(&mut self) -> Option<Vec<u8>> {
        self.store.data_mut().meta.output.take()
    }

    /// Processes one frame of each of a graph node's inputs, `(descriptor, offset of its buffer
    /// in the window)` each, into the output buffer at `output` in the window, through
    /// `plugin_process_many`; returns the validated output descriptor (`data` 0). The output
    /// starts as the first input's shape.
    pub fn process_many(&mut self, inputs: &[(FrameDesc, u32)], output: u32) -> Result<FrameDesc, Failure> {
        let Some(process_many) = self.exports.process_many.clone() else {
            return Err(Failure::Plugin("it takes one input (it has no plugin_process_many)".into()));
        };
        let Buffers::Window { base, len } = self.buffers else {
            return Err(Failure::Protocol("a graph node's frames are in the window".into()));
        };
        if inputs.is_empty() || inputs.len() > abi::MAX_INPUTS {
            return Err(Failure::Protocol("a node's frame has no inputs or too many".into()));
        }
        let capacity = self.capacity;
        let fits = |at: u32| at.checked_add(capacity).is_some_and(|end| end <= len);
        if !fits(output) || inputs.iter().any(|&(_, at)| !fits(at)) {
            return Err(Failure::Protocol("a slot buffer lies outside the frame window".into()));
        }
        let descs = self.descs as usize;
        let memory = self.memory();
        let misplaced = || Failure::Protocol("a frame buffer lies outside the plugin's memory".into());
        for (k, (desc, at)) in inputs.iter().enumerate() {
            if desc.validate().is_err() || desc.data as u64 + desc.byte_len() > capacity as u64 {
                return Err(Failure::Protocol(format!("the host sent an invalid descriptor for input {k}").into()));
            }
            let placed = FrameDesc { data: base + at + desc.data, capacity: capacity - desc.data, ..*desc };
            memory.write(descs + (k + 1) * FRAME_DESC_SIZE, &placed.to_bytes()).ok_or_else(misplaced)?;
        }
        let first = inputs[0].0;
        let out_buf = base + output;
        let out_desc = FrameDesc { data: out_buf, capacity, ..first };
        memory.write(descs, &out_desc.to_bytes()).ok_or_else(misplaced)?;
        self.store.set_epoch_deadline(1);
        let call = (descs as i32 + FRAME_DESC_SIZE as i32, inputs.len() as i32, descs as i32);
        let status = process_many.call(&mut self.store, call);
        self.check_status(status)?;
        self.take_output(descs, out_buf, first.timestamp_us)
    }

    /// The output descriptor the plugin wrote at `at`, checked: still in its buffer at
    /// `out_buf`, and a valid frame; `data` made 0 and the input's time kept.
    fn take_output(&mut self, at: usize, out_buf: u32, timestamp_us: i64) -> Result<FrameDesc, Failure> {
        let misplaced = || Failure::Protocol("a frame buffer lies outside the plugin's memory".into());
        // The call may have grown the memory: look again.
        let bytes = self.memory().read(at, FRAME_DESC_SIZE).ok_or_else(misplaced)?;
        let out = FrameDesc::from_bytes(bytes.as_slice().try_into().map_err(|_| misplaced())?);
        if out.data != out_buf || out.capacity != self.capacity {
            return Err(Failure::Plugin("the plugin moved its output buffer".into()));
        }
        out.validate()
            .map_err(|why| Failure::Plugin(format!("the plugin's output descriptor is invalid: {why}").into()))?;
        Ok(FrameDesc { data: 0, timestamp_us, ..out })
    }

    /// Processes one frame whose descriptor is `input` (`data` relative to its buffer), or only
    /// output rows `band` = (first, count) of it, and returns the validated output descriptor
    /// (`data` relative to the output buffer).
    pub fn process(
        &mut self,
        input: &FrameDesc,
        deadline_ticks: u64,
        io: FrameIo,
        band: Option<(u32, u32)>,
    ) -> Result<FrameDesc, Failure> {
        let in_len = input.byte_len();
        if input.validate().is_err() || input.data as u64 + in_len > self.capacity as u64 {
            return Err(Failure::Protocol("the host sent an invalid input descriptor".into()));
        }
        let (in_buf, out_buf) = match (&self.buffers, &io) {
            (Buffers::Window { base, len }, FrameIo::InPlace { input, output }) => {
                if input.max(output).saturating_add(self.capacity) > *len {
                    return Err(Failure::Protocol("a slot buffer lies outside the frame window".into()));
                }
                (base + input, base + output)
            }
            (Buffers::Heap { input, output }, FrameIo::Heap) => (*input, *output),
            _ => return Err(Failure::Protocol("frame transport does not match the instance's buffers".into())),
        };
        let mut in_desc = FrameDesc { data: in_buf + input.data, capacity: self.capacity - input.data, ..*input };
        let out_desc = FrameDesc { data: out_buf, capacity: self.capacity, ..*input };
        let descs = self.descs as usize;
        let memory = self.memory();
        let misplaced = || Failure::Protocol("a frame buffer lies outside the plugin's memory".into());
        if let Snapshot::At(private) = self.snapshot {
            memory.copy_within(in_desc.data as usize, private as usize, in_len as usize).ok_or_else(misplaced)?;
            in_desc = FrameDesc { data: private, capacity: self.capacity, ..in_desc };
        }
        memory.write(descs, &in_desc.to_bytes()).ok_or_else(misplaced)?;
        memory.write(descs + FRAME_DESC_SIZE, &out_desc.to_bytes()).ok_or_else(misplaced)?;
        self.store.set_epoch_deadline(deadline_ticks);
        let (in_ptr, out_ptr) = (descs as i32, (descs + FRAME_DESC_SIZE) as i32);
        let status = match (band, &self.exports.bands) {
            (None, _) => self.exports.process.call(&mut self.store, (in_ptr, out_ptr)),
            (Some((first, rows)), Some((_, process_rows))) => {
                let (first, rows) = (first.min(i32::MAX as u32) as i32, rows.min(i32::MAX as u32) as i32);
                process_rows.call(&mut self.store, (in_ptr, out_ptr, first, rows))
            }
            (Some(_), None) => {
                return Err(Failure::Protocol("the host asked for a band of a whole-frame plugin".into()));
            }
        };
        self.check_status(status)?;
        self.take_output(descs + FRAME_DESC_SIZE, out_buf, input.timestamp_us)
    }
}
