//! Write plugin-host plugins in Rust.
//!
//! A plugin is a type that implements [`Plugin`], exported with [`export_plugin!`]:
//!
//! ```
//! use plugin_sdk::{Frame, FrameMut, Params, Plugin, PluginError};
//!
//! struct Invert;
//!
//! impl Plugin for Invert {
//!     fn new(_params: &Params) -> Result<Self, PluginError> {
//!         Ok(Invert)
//!     }
//!     fn process(&mut self, input: &Frame, output: &mut FrameMut) -> Result<(), PluginError> {
//!         for y in 0..input.height() {
//!             for (o, i) in output.row_mut(y).chunks_exact_mut(4).zip(input.row(y).chunks_exact(4)) {
//!                 o.copy_from_slice(&[255 - i[0], 255 - i[1], 255 - i[2], i[3]]);
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! plugin_sdk::export_plugin!(Invert);
//! ```
//!
//! Build it with `cargo build --target wasm32-unknown-unknown --release`; test it natively under
//! `cargo test` with [`testing`]. The guest ABI the macro implements is in [`abi`].

pub mod abi;
pub mod convert;
mod describe;
mod frame;
mod params;
#[doc(hidden)]
pub mod runtime;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use abi::{FrameMeta, PixelFormat};
pub use frame::{Frame, FrameMut, OwnedFrame, PlaneMut, PlaneRef, Shape};
pub use params::{ParamKind, ParamSpec, Params};

use std::fmt;

/// An error a plugin reports; the host logs it with the plugin's name and the frame number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError(pub String);

impl PluginError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PluginError {}

impl From<&str> for PluginError {
    fn from(message: &str) -> Self {
        Self(message.to_string())
    }
}

impl From<String> for PluginError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// What a plugin implements. One value lives per plugin instance; the host calls
/// [`Plugin::process`] once per frame.
pub trait Plugin: Sized + 'static {
    /// The parameters the plugin takes; the host checks a config against them before running.
    fn params() -> Vec<ParamSpec> {
        Vec::new()
    }

    /// The input formats the plugin accepts.
    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8]
    }

    /// The plugin's inputs, in the order [`Plugin::process_many`] gets them. The default, one
    /// input: the plugin implements [`Plugin::process`]. A plugin with several (an overlay, a
    /// transition) lists them and implements `process_many`; its `process` is never called.
    fn inputs() -> &'static [InputSpec] {
        &[InputSpec::MAIN]
    }

    /// Processes one frame of each input (as [`Plugin::inputs`] lists them), each with its
    /// metadata. The default hands the first to [`Plugin::process`].
    fn process_many(&mut self, inputs: &[Frame<'_>], output: &mut FrameMut<'_>) -> Result<(), PluginError> {
        let first = inputs.first().ok_or_else(|| PluginError::new("no input frame"))?;
        self.process(first, output)
    }

    /// [`Plugin::output_shape`] for a plugin with several inputs, given each input's shape. The
    /// default: the output shape of the first.
    fn output_shape_many(&self, inputs: &[Shape]) -> Result<Shape, PluginError> {
        let first = inputs.first().ok_or_else(|| PluginError::new("no input shape"))?;
        self.output_shape(*first)
    }

    /// The shape of the frames [`Plugin::process`] makes from frames of shape `input`, once the
    /// instance exists: the host sizes the next plugin's buffers from it before any frame
    /// moves, and refuses a frame of another shape. The default: the input's.
    fn output_shape(&self, input: Shape) -> Result<Shape, PluginError> {
        Ok(input)
    }

    /// Creates the instance; every parameter of [`Plugin::params`] is present in `params`.
    fn new(params: &Params) -> Result<Self, PluginError>;

    /// Takes new parameters while running, between two frames (every parameter is present, as
    /// in [`Plugin::new`]). The default makes a fresh instance with them; a plugin whose state
    /// should survive a change (a temporal filter) keeps it here. On an error the old values
    /// stay.
    fn set_params(&mut self, params: &Params) -> Result<(), PluginError> {
        *self = Self::new(params)?;
        Ok(())
    }

    /// The instance's state as bytes, for the host to keep (every `snapshot_every` frames of a
    /// config) and give back through [`Plugin::restore`] to the instance that replaces this one
    /// after a crash: a temporal filter then goes on from there instead of from zero. At most
    /// [`abi::MAX_SNAPSHOT_BYTES`]. `None`, the default: no state worth keeping.
    fn snapshot(&self) -> Option<Vec<u8>> {
        None
    }

    /// Takes back state that [`Plugin::snapshot`] gave, right after [`Plugin::new`] (in another
    /// process, maybe another build of the plugin: check what you read). On an error, or a
    /// trap, the instance is made afresh and runs without it.
    fn restore(&mut self, _state: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }

    /// Processes one frame. `output` starts with the input's size and format and a capacity of
    /// at least the input's size; call [`FrameMut::set_shape`] to produce another size or format.
    fn process(&mut self, input: &Frame<'_>, output: &mut FrameMut<'_>) -> Result<(), PluginError>;

    /// Rows of input above and below a band that the band's output reads, once the instance
    /// exists: `Some(0)` for a point filter, `Some(r)` for a neighbourhood of radius `r`,
    /// `Some(u32::MAX)` for rows from anywhere in the frame (a vertical flip). A plugin
    /// that says so implements [`Plugin::process_rows`], and the host may then run it as several
    /// processes on bands of the same frame (`workers` in a config). `None`, the default: it
    /// needs whole frames and gets one process.
    fn band_context(&self) -> Option<u32> {
        None
    }

    /// Writes output rows `rows` only: `input` and `output` are the whole frames, and other
    /// instances write the other rows at the same time. Give `output` the same shape in every
    /// band (its height must stay the input's). A plugin that declares [`Plugin::band_context`]
    /// implements this and makes `process` call it with `0..input.height()`; the default serves
    /// whole frames only.
    fn process_rows(
        &mut self,
        input: &Frame<'_>,
        output: &mut FrameMut<'_>,
        rows: std::ops::Range<u32>,
    ) -> Result<(), PluginError> {
        if rows.start == 0 && rows.end >= input.height() {
            self.process(input, output)
        } else {
            Err(PluginError::new("this plugin processes whole frames only"))
        }
    }
}

/// One input of a plugin: its name (what messages call it) and its role, free text for people
/// (`"background"`, `"overlay"`, `"from"`, `"to"`). Write the list of [`Plugin::inputs`] with
/// struct literals, `&[InputSpec { name: "from", role: "from" }, …]`, which Rust keeps in static
/// memory (a call to `InputSpec::new` there would not be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    pub name: &'static str,
    pub role: &'static str,
}

impl InputSpec {
    /// The one input of an ordinary plugin.
    pub const MAIN: InputSpec = InputSpec { name: "input", role: "main" };

    pub const fn new(name: &'static str, role: &'static str) -> Self {
        Self { name, role }
    }
}

/// BT.709 luma of an RGB pixel, with the coefficients (0.2126, 0.7152, 0.0722) in 16-bit fixed
/// point, rounded: the one definition the example plugins share.
#[inline]
pub fn luma_bt709(r: u8, g: u8, b: u8) -> u8 {
    ((13933 * r as u32 + 46871 * g as u32 + 4732 * b as u32 + 32768) >> 16) as u8
}

/// The error for a call with another number of input frames than [`Plugin::inputs`] lists
/// (`process`, with one, for a plugin that takes several): "this plugin takes 2 inputs
/// (from, to), not 1".
pub fn wrong_input_count<P: Plugin>(given: usize) -> PluginError {
    let names: Vec<&str> = P::inputs().iter().map(|i| i.name).collect();
    PluginError::new(format!("this plugin takes {} inputs ({}), not {given}", names.len(), names.join(", ")))
}

/// Refuses a frame format the plugin did not declare in [`Plugin::formats`].
pub fn check_accepts<P: Plugin>(format: PixelFormat) -> Result<(), PluginError> {
    if P::formats().contains(&format) {
        Ok(())
    } else {
        Err(PluginError::new(format!("this plugin does not accept {} frames", format.name())))
    }
}

/// Logs a line into the host's log, shown with the plugin instance's name.
pub fn log(level: abi::LogLevel, message: &str) {
    runtime::log(level, message);
}

/// `info!("x = {}", x)`: logs at info level. Likewise [`warn!`], [`error!`], [`debug!`].
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::abi::LogLevel::Info, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::abi::LogLevel::Warn, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log($crate::abi::LogLevel::Error, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::abi::LogLevel::Debug, &format!($($arg)*)) };
}

/// Exports a [`Plugin`] type through the guest ABI. Its name, version and description come from
/// the plugin crate's `Cargo.toml`. On targets other than wasm32 the functions are left out, so
/// the same crate builds natively for unit tests; each function's name is checked against its
/// `abi::EXPORT_*` constant on every target, at compile time.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            #[cfg(target_arch = "wasm32")]
            static STATE: $crate::runtime::State<$plugin> = $crate::runtime::State::new();

            // Natively too: the type is a Plugin, and every ABI export below is made (6 of them,
            // and the 8 optional ones).
            const _: fn() = || {
                fn is_a_plugin<P: $crate::Plugin>() {}
                is_a_plugin::<$plugin>();
            };
            const _: () =
                assert!($crate::abi::EXPORTS.len() == 6, "export_plugin! must export every abi::EXPORTS entry");
            const _: () = assert!(
                $crate::abi::OPTIONAL_EXPORTS.len() == 8,
                "export_plugin! must export every abi::OPTIONAL_EXPORTS entry"
            );

            $crate::__export!(plugin_abi_version = EXPORT_ABI_VERSION, fn() -> i32 {
                $crate::abi::ABI_VERSION as i32
            });

            $crate::__export!(plugin_describe = EXPORT_DESCRIBE, fn() -> i32 {
                STATE.describe(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), env!("CARGO_PKG_DESCRIPTION"))
            });

            $crate::__export!(plugin_alloc = EXPORT_ALLOC, fn(size: i32) -> i32 {
                $crate::runtime::alloc(size)
            });

            $crate::__export!(plugin_init = EXPORT_INIT, fn(params: i32, len: i32) -> i32 {
                // SAFETY: per the ABI (`plugin_sdk::abi`) the host calls this with `len` bytes of
                // encoded parameters it wrote at `params`, a buffer it got from `plugin_alloc`, and
                // does not touch our memory while the call runs.
                unsafe { STATE.init(params, len) }
            });

            $crate::__export!(plugin_process = EXPORT_PROCESS, fn(input: i32, output: i32) -> i32 {
                // SAFETY: per the ABI (`plugin_sdk::abi`) the host passes two `FrameDesc`s it wrote
                // into our memory, describing disjoint frame buffers that it checked lie within our
                // memory, and does not touch them while the call runs.
                unsafe { STATE.process(input, output) }
            });

            $crate::__export!(plugin_last_error = EXPORT_LAST_ERROR, fn() -> i32 {
                STATE.last_error()
            });

            $crate::__export!(plugin_band_context = EXPORT_BAND_CONTEXT, fn() -> i32 {
                STATE.band_context()
            });

            $crate::__export!(plugin_process_rows = EXPORT_PROCESS_ROWS, fn(input: i32, output: i32, first: i32, rows: i32) -> i32 {
                // SAFETY: as for `plugin_process`; the rows are checked against the frame.
                unsafe { STATE.process_rows(input, output, first, rows) }
            });

            $crate::__export!(plugin_set_params = EXPORT_SET_PARAMS, fn(params: i32, len: i32) -> i32 {
                // SAFETY: as for `plugin_init`.
                unsafe { STATE.set_params(params, len) }
            });

            $crate::__export!(plugin_snapshot = EXPORT_SNAPSHOT, fn() -> i32 {
                STATE.snapshot()
            });

            $crate::__export!(plugin_restore = EXPORT_RESTORE, fn(state: i32, len: i32) -> i32 {
                // SAFETY: as for `plugin_init`.
                unsafe { STATE.restore(state, len) }
            });

            $crate::__export!(plugin_process_many = EXPORT_PROCESS_MANY, fn(inputs: i32, count: i32, output: i32) -> i32 {
                // SAFETY: per the ABI the host passes `count` input `FrameDesc`s at `inputs` and an
                // output one, in our memory, describing disjoint buffers within our memory, and
                // does not touch them while the call runs.
                unsafe { STATE.process_many(inputs, count, output) }
            });

            $crate::__export!(plugin_output_shape = EXPORT_OUTPUT_SHAPE, fn(input: i32, output: i32) -> i32 {
                // SAFETY: per the ABI the host passes two `FrameDesc`s it wrote into our memory
                // (the output one writable) and does not touch them while the call runs.
                unsafe { STATE.output_shape(input, 1, output) }
            });

            $crate::__export!(plugin_output_shape_many = EXPORT_OUTPUT_SHAPE_MANY, fn(inputs: i32, count: i32, output: i32) -> i32 {
                // SAFETY: per the ABI the host passes `count` input `FrameDesc`s at `inputs` and
                // a writable output one, in our memory, untouched while the call runs.
                unsafe { STATE.output_shape(inputs, count, output) }
            });
        };
    };
}

/// One export of [`export_plugin!`]: the function is named once, and that name is checked
/// against the ABI's constant at compile time (on every target); the function itself exists on
/// wasm32 only.
#[doc(hidden)]
#[macro_export]
macro_rules! __export {
    ($name:ident = $abi:ident, fn($($arg:ident: $ty:ty),*) -> i32 $body:block) => {
        const _: () = assert!(
            $crate::same_str(stringify!($name), $crate::abi::$abi),
            concat!("export_plugin!: `", stringify!($name), "` is not abi::", stringify!($abi))
        );
        const _: () = assert!($crate::in_exports($crate::abi::$abi), "an export missing from abi::EXPORTS");
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        extern "C" fn $name($($arg: $ty),*) -> i32 $body
    };
}

/// Whether `name` is one of [`abi::EXPORTS`] or [`abi::OPTIONAL_EXPORTS`], in a `const` context
/// (for [`export_plugin!`]).
#[doc(hidden)]
pub const fn in_exports(name: &str) -> bool {
    let mut i = 0;
    while i < abi::EXPORTS.len() {
        if same_str(abi::EXPORTS[i], name) {
            return true;
        }
        i += 1;
    }
    let mut i = 0;
    while i < abi::OPTIONAL_EXPORTS.len() {
        if same_str(abi::OPTIONAL_EXPORTS[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether two strings are equal, in a `const` context (for [`export_plugin!`]'s checks).
#[doc(hidden)]
pub const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
