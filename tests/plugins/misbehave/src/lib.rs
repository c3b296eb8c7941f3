//! `misbehave`: a test plugin that inverts frames until frame `frame` (counted per instance,
//! from 1, like the host counts frames), where it misbehaves as `mode` says: `panic`, `unreachable`, `divide` (by zero),
//! `recurse` (stack overflow), `out-of-bounds`, `loop` (forever), `alloc` (without end),
//! `error` (returns an error), `log` (logs a line per frame), `flood` (logs 1,000 lines per frame),
//! `slow` (spins `spin` million iterations, then inverts: over a short deadline, within a long
//! one). `init-error` fails in `new`. `bands` works on bands of a frame and writes each row of
//! its band as pixels `[first row, end row, row, 255]` of the band (so a test sees how the host cut
//! the frame). `band-shape` does the same, except that an instance whose only bands so far start
//! at row 0 and end above the middle gives its output half the width: a worker that lies about
//! the frame's shape while the others agree. `meta-stamp` inverts and sets the output's property
//! `stamp` to `"<pts> <time base>"` of its input; `meta-show` inverts, then writes its input's
//! `stamp` property, its frame rate and its property count as text into the start of row 0 (so
//! that a test reads what reached it in the pixels). `count` inverts and writes how many frames
//! it has processed, this one included, as a little-endian u32 into the start of row 0, and keeps
//! that count as its state (`snapshot`/`restore`), so a test sees whether a replacement process
//! went on counting; `restore-trap` counts likewise but traps in `restore`.

use plugin_sdk::{Frame, FrameMut, ParamSpec, Params, PixelFormat, Plugin, PluginError};

pub struct Misbehave {
    mode: String,
    frame: i64,
    spin: i64,
    seen: i64,
    hoard: Vec<Vec<u8>>,
    /// Whether this instance has written a band that does not start at row 0.
    other_bands: bool,
}

const MODES: &[&str] = &[
    "ok",
    "panic",
    "unreachable",
    "divide",
    "recurse",
    "out-of-bounds",
    "loop",
    "alloc",
    "error",
    "log",
    "flood",
    "slow",
    "init-error",
    "bands",
    "band-shape",
    "meta-stamp",
    "meta-show",
    "count",
    "restore-trap",
];

/// Recursion that keeps everything in wasm locals, so it exhausts the wasm call stack rather
/// than Rust's shadow stack in linear memory.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(std::hint::black_box(depth))
}

impl Plugin for Misbehave {
    fn params() -> Vec<ParamSpec> {
        vec![
            ParamSpec::choice("mode", "ok", MODES).help("how to misbehave"),
            ParamSpec::int("frame", 1, 1..=i64::MAX).help("on which frame of the instance"),
            ParamSpec::int("spin", 500, 0..=1_000_000).help("millions of iterations `slow` spins"),
        ]
    }

    fn formats() -> &'static [PixelFormat] {
        &[PixelFormat::Rgba8, PixelFormat::Gray8]
    }

    fn new(params: &Params) -> Result<Self, PluginError> {
        let mode = params.str("mode").to_string();
        if mode == "init-error" {
            return Err(PluginError::new("init refused on purpose"));
        }
        Ok(Self {
            mode,
            frame: params.int("frame"),
            spin: params.int("spin"),
            seen: 0,
            hoard: Vec::new(),
            other_bands: false,
        })
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        matches!(self.mode.as_str(), "count" | "restore-trap").then(|| self.seen.to_le_bytes().to_vec())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        if self.mode == "restore-trap" {
            panic!("restore traps on purpose");
        }
        let bytes: [u8; 8] = state.try_into().map_err(|_| PluginError::new("a state of another size"))?;
        self.seen = i64::from_le_bytes(bytes);
        Ok(())
    }

    fn band_context(&self) -> Option<u32> {
        matches!(self.mode.as_str(), "bands" | "band-shape").then_some(0)
    }

    fn process_rows(
        &mut self,
        input: &Frame,
        output: &mut FrameMut,
        rows: std::ops::Range<u32>,
    ) -> Result<(), PluginError> {
        if !matches!(self.mode.as_str(), "bands" | "band-shape") {
            return self.process(input, output);
        }
        self.other_bands |= rows.start > 0;
        let lie = self.mode == "band-shape" && !self.other_bands && rows.end < input.height() / 2;
        let width = if lie { (input.width() / 2).max(1) } else { input.width() };
        output.set_shape(width, input.height(), PixelFormat::Rgba8)?;
        for y in rows.clone() {
            for pixel in output.row_mut(y).chunks_exact_mut(4) {
                pixel.copy_from_slice(&[rows.start as u8, rows.end as u8, y as u8, 255]);
            }
        }
        Ok(())
    }

    fn process(&mut self, input: &Frame, output: &mut FrameMut) -> Result<(), PluginError> {
        if matches!(self.mode.as_str(), "bands" | "band-shape") {
            return self.process_rows(input, output, 0..input.height());
        }
        self.seen += 1;
        let now = self.seen;
        if self.mode == "log" {
            plugin_sdk::info!("frame {now} of {}x{}", input.width(), input.height());
        }
        if self.mode == "flood" {
            for line in 0..1000 {
                plugin_sdk::info!("frame {now}, line {line} of a flood");
            }
        }
        if now == self.frame {
            match self.mode.as_str() {
                "panic" => panic!("misbehaving on purpose at frame {now}"),
                "unreachable" => std::process::abort(),
                "divide" => {
                    let zero = std::hint::black_box(0u32);
                    // SAFETY: a lie, so that the compiler drops its own check and the wasm
                    // division traps.
                    unsafe { std::hint::assert_unchecked(zero != 0) };
                    output.row_mut(0)[0] = (input.width() / zero) as u8;
                }
                "recurse" => {
                    output.row_mut(0)[0] = recurse(0) as u8;
                }
                "out-of-bounds" => {
                    let address = std::hint::black_box(usize::MAX - 16) as *const u8;
                    // SAFETY: not safe at all: the point is to make the wasm load trap.
                    output.row_mut(0)[0] = unsafe { address.read_volatile() };
                }
                "loop" => loop {
                    std::hint::black_box(&mut self.seen);
                },
                "alloc" => loop {
                    self.hoard.push(vec![1u8; 1 << 20]);
                },
                "error" => return Err(PluginError::new(format!("refusing frame {now} on purpose"))),
                "slow" => {
                    let mut x = 0u64;
                    for i in 0..self.spin as u64 * 1_000_000 {
                        x = std::hint::black_box(x.wrapping_add(i));
                    }
                    output.row_mut(0)[0] = x as u8;
                }
                _ => {}
            }
        }
        output.set_shape(input.width(), input.height(), input.format())?;
        let bpp = input.format().bytes_per_pixel() as usize;
        for y in 0..input.height() {
            for (o, i) in output.row_mut(y).chunks_exact_mut(bpp).zip(input.row(y).chunks_exact(bpp)) {
                for c in 0..bpp.min(3) {
                    o[c] = 255 - i[c];
                }
                if bpp == 4 {
                    o[3] = i[3];
                }
            }
        }
        match self.mode.as_str() {
            "meta-stamp" => {
                let mut meta = input.metadata();
                let stamp = format!("{} {}/{}", meta.pts, meta.time_base.0, meta.time_base.1);
                meta.set_property("stamp", &stamp);
                output.set_metadata(&meta)?;
            }
            "count" | "restore-trap" => {
                output.row_mut(0)[..4].copy_from_slice(&(now as u32).to_le_bytes());
            }
            "meta-show" => {
                let meta = input.metadata();
                let (num, den) = meta.frame_rate;
                let text =
                    format!("{}|{num}/{den}|{}|", meta.property("stamp").unwrap_or("none"), meta.properties.len());
                let row = output.row_mut(0);
                let n = text.len().min(row.len());
                row[..n].copy_from_slice(&text.as_bytes()[..n]);
            }
            _ => {}
        }
        Ok(())
    }
}

plugin_sdk::export_plugin!(Misbehave);
