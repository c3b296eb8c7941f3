//! YUV4MPEG2 (`.y4m`, ffmpeg's `-f yuv4mpegpipe`): a one-line header with the size, frame rate
//! and chroma layout, then frames, each after a `FRAME` line. It carries `yuv420p` (`C420jpeg`,
//! `C420mpeg2`, `C420paldv`, `C420`), `yuv420p10` (`C420p10`) and `gray8` (`Cmono`), and the
//! range in ffmpeg's `XCOLORRANGE` extension; the matrix is not in the format (see
//! [`StreamInfo::guess_colour`]).

use super::{MediaError, StreamInfo};
use plugin_sdk::convert::Range;
use plugin_sdk::{OwnedFrame, PixelFormat};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

/// Longest header or `FRAME` line read: a longer one is not y4m.
const MAX_LINE: usize = 4096;
const MAGIC: &str = "YUV4MPEG2";

/// What a y4m stream's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub info: StreamInfo,
}

/// Reads frames from a y4m stream.
pub struct Y4mReader {
    reader: BufReader<Box<dyn Read + Send>>,
    name: String,
    pub header: Header,
    next: u64,
    line: Vec<u8>,
}

fn bad(name: &str, reason: impl Into<String>) -> MediaError {
    MediaError::Invalid { name: name.to_string(), reason: reason.into() }
}

/// Reads one line (without its `\n`), at most [`MAX_LINE`] bytes; `false` at a clean end.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>, name: &str) -> Result<bool, MediaError> {
    line.clear();
    let read = reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', line);
    read.map_err(|source| MediaError::Read { path: PathBuf::from(name), source })?;
    if line.is_empty() {
        return Ok(false);
    }
    if line.pop() != Some(b'\n') {
        return Err(bad(name, format!("a y4m line is longer than {MAX_LINE} bytes or cut short")));
    }
    Ok(true)
}

impl Y4mReader {
    /// Reads and checks the header of `reader`; `name` names it in errors.
    pub fn new(reader: Box<dyn Read + Send>, name: String) -> Result<Self, MediaError> {
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let mut line = Vec::new();
        if !read_line(&mut reader, &mut line, &name)? {
            return Err(bad(&name, "is empty, not a y4m stream"));
        }
        // Escaped before anything of it can reach an error message (a terminal).
        let text = plugin_host::text::terminal_safe(&String::from_utf8_lossy(&line));
        let header = parse_header(&text).map_err(|reason| bad(&name, reason))?;
        Ok(Self { reader, name, header, next: 0, line })
    }

    /// Bytes of one frame's samples.
    fn frame_bytes(&self) -> usize {
        self.header.format.packed_len(self.header.width, self.header.height) as usize
    }

    /// Reads the next frame into `frame`; false at the end.
    pub fn next_into(&mut self, frame: &mut OwnedFrame) -> Result<bool, MediaError> {
        let name = self.name.clone();
        let frame_number = self.next + 1;
        let not_a_frame = || {
            let Header { width, height, format, .. } = self.header;
            let bytes = format.packed_len(width, height);
            bad(
                &name,
                format!(
                    "frame {frame_number} does not start with a FRAME line: the frames are not the {bytes} bytes \
                     of a {width}x{height} {} frame that the header says",
                    format.name()
                ),
            )
        };
        match read_line(&mut self.reader, &mut self.line, &name) {
            Ok(false) => return Ok(false),
            Ok(true) if self.line.starts_with(b"FRAME") => {}
            Ok(true) | Err(MediaError::Invalid { .. }) => return Err(not_a_frame()),
            Err(e) => return Err(e),
        }
        let Header { width, height, format, info } = self.header;
        *frame = OwnedFrame { data: std::mem::take(&mut frame.data), ..OwnedFrame::new(0, 0, format) };
        let need = self.frame_bytes();
        frame.data.resize(need, 0);
        let got = super::read_full(&mut self.reader, &mut frame.data)
            .map_err(|source| MediaError::Read { path: PathBuf::from(&name), source })?;
        if got < need {
            return Err(bad(&name, format!("ends inside frame {frame_number}: {got} of its {need} bytes")));
        }
        (frame.width, frame.height, frame.stride, frame.format) =
            (width, height, format.row_bytes(width) as u32, format);
        frame.timestamp_us = info.timestamp_us(self.next);
        self.next += 1;
        Ok(true)
    }
}

/// The header line's fields, checked.
pub fn parse_header(line: &str) -> Result<Header, String> {
    // A header written on Windows ends in CR LF.
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = line.split(' ');
    if fields.next() != Some(MAGIC) {
        return Err("does not start with YUV4MPEG2: not a y4m stream".into());
    }
    let (mut width, mut height, mut rate, mut format, mut range) = (None, None, (25, 1), PixelFormat::Yuv420p, None);
    for field in fields.filter(|f| !f.is_empty()) {
        // The tag is one character, which need not be ASCII in a file that is not y4m.
        let mut chars = field.chars();
        let tag = chars.next().map(String::from).unwrap_or_default();
        let value = chars.as_str();
        match tag.as_str() {
            "W" => width = Some(value.parse::<u32>().map_err(|_| format!("width W{value} is not a number"))?),
            "H" => height = Some(value.parse::<u32>().map_err(|_| format!("height H{value} is not a number"))?),
            "F" => rate = parse_ratio(value).ok_or_else(|| format!("frame rate F{value} is not n:d"))?,
            "C" => {
                format = match value {
                    "420jpeg" | "420paldv" | "420mpeg2" | "420" => PixelFormat::Yuv420p,
                    "420p10" => PixelFormat::Yuv420p10,
                    "mono" => PixelFormat::Gray8,
                    other => {
                        return Err(format!(
                            "chroma layout C{other} is not one we read (4:2:0 at 8 or 10 bits, or mono: \
                             add -pix_fmt yuv420p to the ffmpeg that writes it)"
                        ));
                    }
                }
            }
            "X" => match value {
                "COLORRANGE=FULL" => range = Some(Range::Full),
                "COLORRANGE=LIMITED" => range = Some(Range::Limited),
                _ => {}
            },
            "I" if value != "p" && value != "?" => {
                return Err(format!("interlaced frames (I{value}) are not supported; deinterlace first (-vf yadif)"));
            }
            _ => {}
        }
    }
    let (Some(width), Some(height)) = (width, height) else { return Err("the header has no W or H".into()) };
    crate::config::check_size("the y4m header", width, height)?;
    let mut info = StreamInfo::new(rate, height);
    if let Some(range) = range {
        info.colour.range = range;
    }
    Ok(Header { width, height, format, info })
}

fn parse_ratio(value: &str) -> Option<(u32, u32)> {
    let (n, d) = value.split_once(':')?;
    let (n, d) = (n.parse().ok()?, d.parse().ok()?);
    (n > 0 && d > 0).then_some((n, d))
}

/// The y4m format a frame of `format` is written in: the formats y4m carries stay as they are,
/// `nv12` becomes `yuv420p`, RGBA `yuv420p`.
pub fn y4m_format(format: PixelFormat) -> PixelFormat {
    match format {
        PixelFormat::Yuv420p | PixelFormat::Yuv420p10 | PixelFormat::Gray8 => format,
        _ => PixelFormat::Yuv420p,
    }
}

/// The header line for frames of this shape.
pub fn header_line(width: u32, height: u32, format: PixelFormat, info: &StreamInfo) -> String {
    let chroma = match format {
        PixelFormat::Yuv420p10 => "C420p10 XYSCSS=420P10",
        PixelFormat::Gray8 => "Cmono",
        _ => "C420jpeg XYSCSS=420JPEG",
    };
    let range = match info.colour.range {
        Range::Full => "FULL",
        Range::Limited => "LIMITED",
    };
    let (n, d) = info.rate;
    format!("{MAGIC} W{width} H{height} F{n}:{d} Ip A1:1 {chroma} XCOLORRANGE={range}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_refuse_in_one_sentence() {
        let h = parse_header("YUV4MPEG2 W640 H480 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG").unwrap();
        assert_eq!((h.width, h.height, h.format, h.info.rate), (640, 480, PixelFormat::Yuv420p, (30000, 1001)));
        assert_eq!(h.info.colour.range, Range::Limited);
        let h = parse_header("YUV4MPEG2 W1920 H1080 F25:1 C420p10 XCOLORRANGE=FULL").unwrap();
        assert_eq!((h.format, h.info.colour.range), (PixelFormat::Yuv420p10, Range::Full));
        assert!(parse_header("YUV4MPEG2 W8 H8 C444").unwrap_err().contains("C444"));
        assert!(parse_header("YUV4MPEG2 W8 H8 It").unwrap_err().contains("interlaced"));
        assert!(parse_header("YUV4MPEG2 W0 H8").unwrap_err().contains("not a frame size"));
        assert!(parse_header("YUV4MPEG2 H8").unwrap_err().contains("no W"));
        assert!(parse_header("RIFF").unwrap_err().contains("not a y4m"));
        assert!(parse_header("YUV4MPEG2 W8 H8 F0:1").unwrap_err().contains("frame rate"));
    }

    #[test]
    fn frames_round_trip_and_cut_frames_are_named() {
        let info = StreamInfo::new((24, 1), 4);
        let frame = plugin_sdk::testing::gradient(6, 4, PixelFormat::Yuv420p);
        let mut bytes = header_line(6, 4, PixelFormat::Yuv420p, &info).into_bytes();
        for _ in 0..2 {
            bytes.extend_from_slice(b"FRAME\n");
            bytes.extend_from_slice(&frame.packed());
        }
        let mut reader = Y4mReader::new(Box::new(std::io::Cursor::new(bytes.clone())), "t.y4m".into()).unwrap();
        let mut read = OwnedFrame::new(0, 0, PixelFormat::Rgba8);
        assert!(reader.next_into(&mut read).unwrap());
        assert!(read.same_pixels(&frame));
        assert!(reader.next_into(&mut read).unwrap());
        assert_eq!(read.timestamp_us, 1_000_000 / 24);
        assert!(!reader.next_into(&mut read).unwrap());
        bytes.truncate(bytes.len() - 5);
        let mut reader = Y4mReader::new(Box::new(std::io::Cursor::new(bytes)), "t.y4m".into()).unwrap();
        assert!(reader.next_into(&mut read).unwrap());
        let err = reader.next_into(&mut read).unwrap_err().to_string();
        assert!(err.contains("ends inside frame 2"), "{err}");
    }
}
