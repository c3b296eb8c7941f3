//! Pixel format conversion: the one converter that the host (between plugins that disagree on a
//! format) and [`crate::testing`] use.
//!
//! It is exact in this sense: every output sample is the real-number formula below, rounded to
//! the nearest integer (ties up) and clamped, computed in 16-bit fixed point whose error is
//! under 1/100 of a step; a unit test checks that against `f64` for every 8-bit RGB triple.
//! The same input gives the same bytes on every machine.
//!
//! - **R'G'B' to Y'CbCr** with `Kr`, `Kb` of [`Matrix`] (`Kg = 1 - Kr - Kb`):
//!   `Y' = Kr R + Kg G + Kb B`, `Pb = (B - Y') / (2 (1 - Kb))`, `Pr = (R - Y') / (2 (1 - Kr))`,
//!   with R, G, B in 0..1. At bit depth `d`, [`Range::Limited`] stores
//!   `Y = (16 + 219 Y') 2^(d-8)`, `C = (128 + 224 P) 2^(d-8)`; [`Range::Full`] stores
//!   `Y = (2^d - 1) Y'`, `C = 2^(d-1) + (2^d - 1) P`. The inverse is the same formula solved for
//!   R, G, B (scaled to 0..255).
//! - **Chroma siting.** A 4:2:0 chroma sample is the mean of the R'G'B' of the (up to) 2×2
//!   pixels it covers, converted (centred siting, as JPEG); going back, each chroma sample is
//!   used for the pixels it covers (box upsampling, ffmpeg's `-sws_flags neighbor`).
//! - **Gray** is full-range luma: to Y'CbCr it is `Y'` with neutral chroma; from Y'CbCr it is
//!   `Y` rescaled to full range, chroma ignored; from RGBA it is `Y'` of the matrix.
//! - **Alpha** is dropped going to gray or Y'CbCr and is 255 coming back.
//! - **Bit depth** between `yuv420p` and `yuv420p10`: `v << 2` up, `(v + 2) >> 2` (at most 255)
//!   down, so 8 → 10 → 8 gives back the same bytes.

use crate::abi::PixelFormat;
use crate::{Frame, FrameMut, PluginError};

/// The Y'CbCr matrix: which luma weights the colours carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Matrix {
    /// Standard definition (`Kr = 0.299`, `Kb = 0.114`).
    Bt601,
    /// High definition (`Kr = 0.2126`, `Kb = 0.0722`).
    #[default]
    Bt709,
    /// Ultra high definition, non-constant luminance (`Kr = 0.2627`, `Kb = 0.0593`).
    Bt2020,
}

/// Which codes a Y'CbCr frame uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Range {
    /// "TV" range: luma 16..235, chroma 16..240 (at 8 bits), as video codecs use.
    #[default]
    Limited,
    /// "PC" or JPEG range: every code.
    Full,
}

/// How Y'CbCr samples relate to R'G'B': a matrix and a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Colour {
    pub matrix: Matrix,
    pub range: Range,
}

impl Matrix {
    fn kr_kb(self) -> (f64, f64) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
            Matrix::Bt2020 => (0.2627, 0.0593),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Matrix::Bt601 => "bt601",
            Matrix::Bt709 => "bt709",
            Matrix::Bt2020 => "bt2020",
        }
    }
}

impl Matrix {
    /// Its [`crate::FrameMeta::matrix`] code.
    pub fn code(self) -> u8 {
        match self {
            Matrix::Bt601 => 1,
            Matrix::Bt709 => 2,
            Matrix::Bt2020 => 3,
        }
    }
}

impl Range {
    /// Its [`crate::FrameMeta::range`] code.
    pub fn code(self) -> u8 {
        match self {
            Range::Limited => 1,
            Range::Full => 2,
        }
    }

    /// The range a [`crate::FrameMeta::range`] code says; `None` for 0 (unknown) or another.
    pub fn from_code(code: u8) -> Option<Self> {
        [Range::Limited, Range::Full].into_iter().find(|r| r.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Range::Limited => "limited",
            Range::Full => "full",
        }
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} range", self.matrix.name(), self.range.name())
    }
}

/// Fixed-point scale of the coefficients.
const SHIFT: u32 = 16;
const ONE: f64 = (1 << SHIFT) as f64;

/// The real-number scale and offset of luma and chroma codes at a bit depth.
#[derive(Debug, Clone, Copy)]
struct Codes {
    luma_scale: f64,
    luma_offset: f64,
    chroma_scale: f64,
    chroma_offset: f64,
    max: i32,
}

impl Codes {
    fn new(range: Range, depth: u32) -> Self {
        let unit = (1u32 << (depth - 8)) as f64;
        let max = (1i32 << depth) - 1;
        match range {
            Range::Limited => Self {
                luma_scale: 219.0 * unit,
                luma_offset: 16.0 * unit,
                chroma_scale: 224.0 * unit,
                chroma_offset: 128.0 * unit,
                max,
            },
            Range::Full => Self {
                luma_scale: max as f64,
                luma_offset: 0.0,
                chroma_scale: max as f64,
                chroma_offset: (1u32 << (depth - 1)) as f64,
                max,
            },
        }
    }
}

/// R'G'B' (0..255) to Y'CbCr codes, in fixed point: `[y, cb, cr]` rows of R, G, B weights.
#[derive(Debug, Clone, Copy)]
struct Forward {
    weights: [[i32; 3]; 3],
    /// Offsets already shifted, with the rounding half added.
    luma_offset: i32,
    chroma_offset: i64,
    max: i32,
}

impl Forward {
    fn new(colour: Colour, depth: u32) -> Self {
        let (kr, kb) = colour.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let codes = Codes::new(colour.range, depth);
        let y = [kr, kg, kb];
        let cb = [-kr / (2.0 * (1.0 - kb)), -kg / (2.0 * (1.0 - kb)), 0.5];
        let cr = [0.5, -kg / (2.0 * (1.0 - kr)), -kb / (2.0 * (1.0 - kr))];
        let fixed = |row: [f64; 3], scale: f64| row.map(|w| (w * scale / 255.0 * ONE).round() as i32);
        Self {
            weights: [fixed(y, codes.luma_scale), fixed(cb, codes.chroma_scale), fixed(cr, codes.chroma_scale)],
            luma_offset: (codes.luma_offset * ONE) as i32 + (1 << (SHIFT - 1)),
            chroma_offset: (codes.chroma_offset * ONE) as i64,
            max: codes.max,
        }
    }

    #[inline]
    fn luma(&self, r: i32, g: i32, b: i32) -> u16 {
        let [wr, wg, wb] = self.weights[0];
        ((wr * r + wg * g + wb * b + self.luma_offset) >> SHIFT).clamp(0, self.max) as u16
    }

    /// Cb and Cr from the sums of R, G and B over `n` pixels (1 to 4).
    #[inline]
    fn chroma(&self, sums: [i32; 3], n: i32) -> [u16; 2] {
        [1, 2].map(|k| {
            let [wr, wg, wb] = self.weights[k];
            let total = wr as i64 * sums[0] as i64 + wg as i64 * sums[1] as i64 + wb as i64 * sums[2] as i64;
            let scaled = self.chroma_offset * n as i64 + total;
            // Round half up: floor((x + n/2) / n) on the fixed-point value, then drop the scale.
            let value = (scaled + (n as i64) * (1 << (SHIFT - 1))).div_euclid((n as i64) << SHIFT);
            value.clamp(0, self.max as i64) as u16
        })
    }
}

/// Y'CbCr codes to R'G'B' (0..255), in fixed point.
#[derive(Debug, Clone, Copy)]
struct Inverse {
    luma: i32,
    luma_offset: i32,
    chroma_offset: i32,
    /// Cr's weight in R, Cb's and Cr's in G, Cb's in B.
    r_cr: i32,
    g_cb: i32,
    g_cr: i32,
    b_cb: i32,
}

impl Inverse {
    fn new(colour: Colour, depth: u32) -> Self {
        let (kr, kb) = colour.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let codes = Codes::new(colour.range, depth);
        let fixed = |w: f64| (w * ONE).round() as i32;
        let per_chroma = 255.0 / codes.chroma_scale;
        Self {
            luma: fixed(255.0 / codes.luma_scale),
            luma_offset: codes.luma_offset as i32,
            chroma_offset: codes.chroma_offset as i32,
            r_cr: fixed(2.0 * (1.0 - kr) * per_chroma),
            g_cb: fixed(-2.0 * kb * (1.0 - kb) / kg * per_chroma),
            g_cr: fixed(-2.0 * kr * (1.0 - kr) / kg * per_chroma),
            b_cb: fixed(2.0 * (1.0 - kb) * per_chroma),
        }
    }

    #[inline]
    fn rgb(&self, y: u16, cb: u16, cr: u16) -> [u8; 3] {
        let base = (y as i32 - self.luma_offset) * self.luma + (1 << (SHIFT - 1));
        let (cb, cr) = (cb as i32 - self.chroma_offset, cr as i32 - self.chroma_offset);
        let clamp = |v: i32| (v >> SHIFT).clamp(0, 255) as u8;
        [clamp(base + self.r_cr * cr), clamp(base + self.g_cb * cb + self.g_cr * cr), clamp(base + self.b_cb * cb)]
    }

    /// Gray (full-range luma) from a luma code.
    #[inline]
    fn gray(&self, y: u16) -> u8 {
        (((y as i32 - self.luma_offset) * self.luma + (1 << (SHIFT - 1))) >> SHIFT).clamp(0, 255) as u8
    }
}

/// A Y'CbCr frame's samples as rows of `u16` codes, whatever its layout.
struct YuvRows<'f, 'a> {
    frame: &'f Frame<'a>,
}

impl YuvRows<'_, '_> {
    fn luma(&self, y: u32, out: &mut [u16]) {
        read_samples(self.frame.plane(0).row(y), self.frame.format(), out);
    }
    fn chroma(&self, y: u32, cb: &mut [u16], cr: &mut [u16]) {
        match self.frame.format() {
            PixelFormat::Nv12 => {
                for ((pair, b), r) in self.frame.plane(1).row(y).chunks_exact(2).zip(cb).zip(cr) {
                    (*b, *r) = (pair[0] as u16, pair[1] as u16);
                }
            }
            format => {
                read_samples(self.frame.plane(1).row(y), format, cb);
                read_samples(self.frame.plane(2).row(y), format, cr);
            }
        }
    }
}

fn read_samples(row: &[u8], format: PixelFormat, out: &mut [u16]) {
    match format.bit_depth() {
        8 => row.iter().zip(out).for_each(|(v, o)| *o = *v as u16),
        _ => row.chunks_exact(2).zip(out).for_each(|(v, o)| *o = u16::from_le_bytes([v[0], v[1]]).min(1023)),
    }
}

fn write_samples(row: &mut [u8], format: PixelFormat, samples: &[u16]) {
    match format.bit_depth() {
        8 => row.iter_mut().zip(samples).for_each(|(o, v)| *o = *v as u8),
        _ => row.chunks_exact_mut(2).zip(samples).for_each(|(o, v)| o.copy_from_slice(&v.to_le_bytes())),
    }
}

fn write_luma(out: &mut FrameMut<'_>, y: u32, samples: &[u16]) {
    let format = out.format();
    write_samples(out.plane_mut(0).row_mut(y), format, samples);
}

fn write_chroma(out: &mut FrameMut<'_>, y: u32, cb: &[u16], cr: &[u16]) {
    let format = out.format();
    match format {
        PixelFormat::Nv12 => {
            let mut plane = out.plane_mut(1);
            for ((pair, b), r) in plane.row_mut(y).chunks_exact_mut(2).zip(cb).zip(cr) {
                pair.copy_from_slice(&[*b as u8, *r as u8]);
            }
        }
        _ => {
            write_samples(out.plane_mut(1).row_mut(y), format, cb);
            write_samples(out.plane_mut(2).row_mut(y), format, cr);
        }
    }
}

/// A code at `from` bits as a code at `to` bits (see the module's rule).
#[inline]
fn rescale(v: u16, from: u32, to: u32) -> u16 {
    match from.cmp(&to) {
        std::cmp::Ordering::Equal => v,
        std::cmp::Ordering::Less => v << (to - from),
        std::cmp::Ordering::Greater => {
            let shift = from - to;
            ((v + (1 << (shift - 1))) >> shift).min((1 << to) - 1)
        }
    }
}

/// The format to give a consumer that takes `accepts` a frame in `from`: `from` itself when it
/// takes it, else the one it takes that loses least: first those that keep every value (a
/// repacking, more bits: gray into RGBA or 10-bit Y'CbCr), then the lossy ones, more precise
/// first. `None` if it takes none.
pub fn nearest(from: PixelFormat, accepts: impl Fn(PixelFormat) -> bool) -> Option<PixelFormat> {
    use PixelFormat::*;
    let order: &[PixelFormat] = match from {
        Rgba8 => &[Rgba8, Yuv420p10, Yuv420p, Nv12, Gray8],
        Gray8 => &[Gray8, Rgba8, Yuv420p10, Yuv420p, Nv12],
        Yuv420p => &[Yuv420p, Nv12, Yuv420p10, Rgba8, Gray8],
        Nv12 => &[Nv12, Yuv420p, Yuv420p10, Rgba8, Gray8],
        Yuv420p10 => &[Yuv420p10, Yuv420p, Nv12, Rgba8, Gray8],
    };
    order.iter().copied().find(|f| accepts(*f))
}

/// Converts `input` into `output`, which takes `format` and the input's size. `colour` says
/// how Y'CbCr relates to RGB on whichever side is Y'CbCr (it is unused between R'G'B' formats).
/// `output` must have room for the frame.
pub fn convert(
    input: &Frame<'_>,
    output: &mut FrameMut<'_>,
    format: PixelFormat,
    colour: Colour,
) -> Result<(), PluginError> {
    let (width, height) = (input.width(), input.height());
    output.set_shape(width, height, format)?;
    let from = input.format();
    if from == format {
        return output.copy_from(input);
    }
    let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2));
    let mut luma = vec![0u16; width as usize];
    let (mut cb, mut cr) = (vec![0u16; cw], vec![0u16; cw]);
    match (from.is_yuv(), format.is_yuv()) {
        (true, true) => {
            let rows = YuvRows { frame: input };
            let (d_in, d_out) = (from.bit_depth(), format.bit_depth());
            for y in 0..height {
                rows.luma(y, &mut luma);
                luma.iter_mut().for_each(|v| *v = rescale(*v, d_in, d_out));
                write_luma(output, y, &luma);
            }
            for y in 0..ch {
                rows.chroma(y, &mut cb, &mut cr);
                cb.iter_mut().chain(cr.iter_mut()).for_each(|v| *v = rescale(*v, d_in, d_out));
                write_chroma(output, y, &cb, &cr);
            }
        }
        (true, false) => {
            let rows = YuvRows { frame: input };
            let inverse = Inverse::new(colour, from.bit_depth());
            for y in 0..height {
                rows.luma(y, &mut luma);
                let out = output.row_mut(y);
                if format == PixelFormat::Gray8 {
                    out.iter_mut().zip(&luma).for_each(|(o, v)| *o = inverse.gray(*v));
                    continue;
                }
                rows.chroma(y / 2, &mut cb, &mut cr);
                for (x, pixel) in out.chunks_exact_mut(4).enumerate() {
                    let [r, g, b] = inverse.rgb(luma[x], cb[x / 2], cr[x / 2]);
                    pixel.copy_from_slice(&[r, g, b, 255]);
                }
            }
        }
        (false, true) => {
            let forward = Forward::new(colour, format.bit_depth());
            let rgb = |frame: &Frame<'_>, y: u32, x: usize| -> [i32; 3] {
                match frame.format() {
                    PixelFormat::Gray8 => [frame.row(y)[x] as i32; 3],
                    _ => {
                        let p = &frame.row(y)[x * 4..x * 4 + 3];
                        [p[0] as i32, p[1] as i32, p[2] as i32]
                    }
                }
            };
            for y in 0..height {
                for (x, v) in luma.iter_mut().enumerate() {
                    let [r, g, b] = rgb(input, y, x);
                    *v = forward.luma(r, g, b);
                }
                write_luma(output, y, &luma);
            }
            for cy in 0..ch {
                let rows = (cy * 2)..(cy * 2 + 2).min(height);
                for cx in 0..cw {
                    let (mut sums, mut n) = ([0i32; 3], 0);
                    for y in rows.clone() {
                        for x in (cx * 2)..(cx * 2 + 2).min(width as usize) {
                            let p = rgb(input, y, x);
                            (0..3).for_each(|k| sums[k] += p[k]);
                            n += 1;
                        }
                    }
                    [cb[cx], cr[cx]] = forward.chroma(sums, n);
                }
                write_chroma(output, cy, &cb, &cr);
            }
        }
        (false, false) => {
            // R'G'B' to R'G'B': gray is full-range luma of the matrix.
            let forward = Forward::new(Colour { matrix: colour.matrix, range: Range::Full }, 8);
            for y in 0..height {
                let row = input.row(y);
                let out = output.row_mut(y);
                match from {
                    PixelFormat::Gray8 => {
                        out.chunks_exact_mut(4).zip(row).for_each(|(o, v)| o.copy_from_slice(&[*v, *v, *v, 255]));
                    }
                    _ => out.iter_mut().zip(row.chunks_exact(4)).for_each(|(o, p)| {
                        *o = forward.luma(p[0] as i32, p[1] as i32, p[2] as i32) as u8;
                    }),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OwnedFrame;

    const COLOURS: [Colour; 6] = [
        Colour { matrix: Matrix::Bt2020, range: Range::Limited },
        Colour { matrix: Matrix::Bt2020, range: Range::Full },
        Colour { matrix: Matrix::Bt601, range: Range::Limited },
        Colour { matrix: Matrix::Bt601, range: Range::Full },
        Colour { matrix: Matrix::Bt709, range: Range::Limited },
        Colour { matrix: Matrix::Bt709, range: Range::Full },
    ];

    /// The module's formula in `f64`, unrounded: Y, Cb, Cr codes at `depth`.
    fn reference(colour: Colour, depth: u32, [r, g, b]: [f64; 3]) -> [f64; 3] {
        let (kr, kb) = colour.matrix.kr_kb();
        let (r, g, b) = (r / 255.0, g / 255.0, b / 255.0);
        let y = kr * r + (1.0 - kr - kb) * g + kb * b;
        let (pb, pr) = ((b - y) / (2.0 * (1.0 - kb)), (r - y) / (2.0 * (1.0 - kr)));
        let c = Codes::new(colour.range, depth);
        [c.luma_offset + c.luma_scale * y, c.chroma_offset + c.chroma_scale * pb, c.chroma_offset + c.chroma_scale * pr]
    }

    #[test]
    fn every_rgb_triple_rounds_as_the_formula_says() {
        for colour in COLOURS {
            for depth in [8, 10] {
                let forward = Forward::new(colour, depth);
                let max = ((1 << depth) - 1) as f64;
                // Every 8-bit triple at 8 bits; a 1-in-5 lattice at 10 bits.
                let step = if depth == 8 { 1 } else { 5 };
                for r in (0..256).step_by(step) {
                    for g in (0..256).step_by(step) {
                        for b in (0..256).step_by(step) {
                            let want = reference(colour, depth, [r as f64, g as f64, b as f64]);
                            let y = forward.luma(r, g, b);
                            let [cb, cr] = forward.chroma([r * 4, g * 4, b * 4], 4);
                            for (got, want) in [y, cb, cr].into_iter().zip(want) {
                                let off = (got as f64 - want.clamp(0.0, max)).abs();
                                assert!(off <= 0.51, "{colour} {depth}-bit rgb({r},{g},{b}): {got} for {want}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_nearest_format_keeps_the_family() {
        let takes = |list: &'static [PixelFormat]| move |f| list.contains(&f);
        use PixelFormat::*;
        assert_eq!(nearest(Yuv420p, takes(&[Rgba8, Gray8])), Some(Rgba8));
        assert_eq!(nearest(Yuv420p10, takes(&[Rgba8, Yuv420p])), Some(Yuv420p));
        assert_eq!(nearest(Rgba8, takes(&[Gray8, Yuv420p])), Some(Yuv420p));
        assert_eq!(nearest(Nv12, takes(&[Nv12])), Some(Nv12));
        assert_eq!(nearest(Gray8, takes(&[])), None);
        assert_eq!(nearest(Gray8, takes(&[Yuv420p, Rgba8])), Some(Rgba8), "lossless before lossy");
        assert_eq!(nearest(Rgba8, takes(&[Yuv420p, Yuv420p10])), Some(Yuv420p10), "more precise first");
    }

    #[test]
    fn known_values() {
        let bt709 = Colour { matrix: Matrix::Bt709, range: Range::Limited };
        let forward = Forward::new(bt709, 8);
        assert_eq!(forward.luma(0, 0, 0), 16);
        assert_eq!(forward.luma(255, 255, 255), 235);
        assert_eq!(forward.chroma([255 * 4, 0, 0], 4), [102, 240], "pure red");
        assert_eq!(Forward::new(bt709, 10).luma(255, 255, 255), 940);
        let inverse = Inverse::new(bt709, 8);
        assert_eq!(inverse.rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(inverse.rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(inverse.gray(235), 255);
    }

    fn pattern(width: u32, height: u32) -> OwnedFrame {
        let mut frame = OwnedFrame::new(width, height, PixelFormat::Rgba8);
        for (i, p) in frame.data.chunks_exact_mut(4).enumerate() {
            let i = i as u32;
            p.copy_from_slice(&[(i * 37 % 256) as u8, (i * 11 % 256) as u8, (i * 101 % 256) as u8, 200]);
        }
        frame
    }

    fn run(input: &OwnedFrame, format: PixelFormat, colour: Colour) -> OwnedFrame {
        let mut out = OwnedFrame::new(input.width, input.height, format);
        convert(&input.view(), &mut out.view_mut(), format, colour).unwrap();
        out
    }

    #[test]
    fn yuv_layouts_and_depths_agree_and_8_10_8_is_lossless() {
        let colour = Colour::default();
        let rgba = pattern(7, 5);
        let planar = run(&rgba, PixelFormat::Yuv420p, colour);
        let nv12 = run(&rgba, PixelFormat::Nv12, colour);
        assert_eq!(run(&nv12, PixelFormat::Yuv420p, colour), planar, "nv12 holds the same samples");
        let ten = run(&planar, PixelFormat::Yuv420p10, colour);
        assert_eq!(run(&ten, PixelFormat::Yuv420p, colour), planar);
        let direct_ten = run(&rgba, PixelFormat::Yuv420p10, colour);
        let back = run(&direct_ten, PixelFormat::Yuv420p, colour);
        let close = back.data.iter().zip(&planar.data).all(|(a, b)| a.abs_diff(*b) <= 1);
        assert!(close, "10-bit conversion rounds to within a step of 8-bit");
    }

    #[test]
    fn round_trips_stay_close_and_flat_colours_survive() {
        for colour in COLOURS {
            // 2x2 blocks of one colour: subsampling loses nothing.
            let mut rgba = OwnedFrame::new(6, 4, PixelFormat::Rgba8);
            for (i, p) in rgba.data.chunks_exact_mut(4).enumerate() {
                let block = (i % 6 / 2 + i / 12 * 3) as u8;
                p.copy_from_slice(&[block * 40, 255 - block * 30, block * 17, 255]);
            }
            let back = run(&run(&rgba, PixelFormat::Yuv420p10, colour), PixelFormat::Rgba8, colour);
            let worst = rgba.data.iter().zip(&back.data).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 1, "{colour}: rgba -> yuv420p10 -> rgba moved a channel by {worst}");
            let gray = run(&rgba, PixelFormat::Gray8, colour);
            let via_yuv = run(&run(&gray, PixelFormat::Yuv420p, colour), PixelFormat::Gray8, colour);
            let worst = gray.data.iter().zip(&via_yuv.data).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 1, "{colour}: gray -> yuv -> gray moved by {worst}");
        }
    }

    #[test]
    fn odd_sizes_average_the_pixels_present() {
        let colour = Colour { matrix: Matrix::Bt601, range: Range::Full };
        let mut rgba = OwnedFrame::new(3, 1, PixelFormat::Rgba8);
        rgba.data.copy_from_slice(&[255, 0, 0, 255, 255, 0, 0, 255, 0, 0, 255, 255]);
        let yuv = run(&rgba, PixelFormat::Yuv420p, colour);
        let forward = Forward::new(colour, 8);
        let planes = yuv.view().planes();
        assert_eq!(yuv.data[planes[1].offset as usize + 1] as u16, forward.chroma([0, 0, 255], 1)[0]);
        assert_eq!(yuv.data[planes[2].offset as usize] as u16, forward.chroma([510, 0, 0], 2)[1]);
    }
}
