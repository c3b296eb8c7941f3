//! PNG input (a file, or a folder of files in name order) and output (a folder of
//! `frame-000001.png`, …).

use super::{MediaError, Sink, Source, partial_path};
use plugin_sdk::{Frame, OwnedFrame, PixelFormat};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Largest PNG side we decode; bigger images are refused before allocating.
const MAX_SIDE: u32 = crate::config::MAX_SIDE;

pub struct PngSource {
    files: Vec<PathBuf>,
    next: usize,
    shape: (u32, u32),
}

impl PngSource {
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let read_err = |source| MediaError::Read { path: path.to_path_buf(), source };
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_err)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(MediaError::EmptyFolder { path: path.to_path_buf() });
            }
            files
        } else {
            File::open(path).map_err(read_err)?;
            vec![path.to_path_buf()]
        };
        // Decode the first one and read every other header now: a bad file or a size change
        // should be reported before anything starts, not hundreds of frames in.
        let first = decode(&files[0])?;
        let shape = (first.width, first.height);
        for path in &files[1..] {
            let (width, height) = header_size(path)?;
            if (width, height) != shape {
                return Err(MediaError::SizeChanged {
                    path: path.clone(),
                    width,
                    height,
                    first_width: shape.0,
                    first_height: shape.1,
                });
            }
        }
        Ok(Self { files, next: 0, shape })
    }
}

/// A PNG's size from its header, without decoding its pixels.
fn header_size(path: &Path) -> Result<(u32, u32), MediaError> {
    let file = File::open(path).map_err(|source| MediaError::Read { path: path.to_path_buf(), source })?;
    let reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| MediaError::BadPng { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok((reader.info().width, reader.info().height))
}

/// Decodes a PNG into RGBA8 (gray, RGB, palette and 16-bit images are converted), with the
/// SDK's decoder.
pub fn decode(path: &Path) -> Result<OwnedFrame, MediaError> {
    decode_keeping_gray(path).map(to_rgba)
}

/// [`decode`], but a gray PNG stays a gray8 frame (as the SDK's `testing::read_png` reads it).
pub fn decode_keeping_gray(path: &Path) -> Result<OwnedFrame, MediaError> {
    use plugin_sdk::testing::{ImageError, read_png_within};
    read_png_within(path, MAX_SIDE).map_err(|e| match e {
        ImageError::Read { path, source } => MediaError::Read { path, source },
        ImageError::Write { path, source } => MediaError::Write { path, source },
        ImageError::BadPng { path, reason } => MediaError::BadPng { path, reason },
    })
}

/// The frame as rgba8 (gray values become opaque gray pixels), by the SDK's converter.
pub fn to_rgba(frame: OwnedFrame) -> OwnedFrame {
    match frame.format {
        PixelFormat::Rgba8 => frame,
        _ => plugin_sdk::testing::to_rgba(&frame),
    }
}

/// Encodes `frame` as PNG (RGBA or gray) at `path`.
pub fn encode(path: &Path, frame: &Frame<'_>) -> Result<(), MediaError> {
    plugin_sdk::testing::encode_png(path, frame)
        .map_err(|source| MediaError::Write { path: path.to_path_buf(), source })
}

impl Source for PngSource {
    fn len_hint(&self) -> Option<u64> {
        Some(self.files.len() as u64)
    }
    fn shape(&self) -> (u32, u32, PixelFormat) {
        (self.shape.0, self.shape.1, PixelFormat::Rgba8)
    }
    fn next_into(&mut self, frame: &mut OwnedFrame) -> Result<bool, MediaError> {
        let Some(path) = self.files.get(self.next) else { return Ok(false) };
        let decoded = decode(path)?;
        if (decoded.width, decoded.height) != self.shape {
            return Err(MediaError::SizeChanged {
                path: path.clone(),
                width: decoded.width,
                height: decoded.height,
                first_width: self.shape.0,
                first_height: self.shape.1,
            });
        }
        *frame = OwnedFrame { timestamp_us: (self.next as u64 * 1_000_000 / 30) as i64, ..decoded };
        self.next += 1;
        Ok(true)
    }
}

/// Writes into `<folder>.partial-<pid>` and puts it in place at the end.
///
/// An existing folder at the target is only replaced when it looks like an earlier output: a
/// folder holding nothing but regular files named `frame-NNNNNN.png`. Anything else (a file,
/// other names, subfolders, links) is refused, both when the sink is created and again at
/// [`Sink::finish`], so a user's folder that happens to share the name is never deleted.
pub struct PngSink {
    target: PathBuf,
    partial: PathBuf,
    /// Set when `finish` could not move a completed output into place, so `Drop` leaves it.
    keep_partial: bool,
}

impl PngSink {
    pub fn create(target: &Path) -> Result<Self, MediaError> {
        let output = |reason: String| MediaError::Output { path: target.to_path_buf(), reason };
        check_replaceable(target).map_err(output)?;
        let partial = partial_path(target);
        if let Some(parent) = crate::config::missing_folder(target) {
            return Err(output(format!("its folder {} does not exist", parent.display())));
        }
        std::fs::create_dir_all(&partial).map_err(|e| output(format!("cannot create the output folder: {e}")))?;
        Ok(Self { target: target.to_path_buf(), partial, keep_partial: false })
    }

    /// Replaces the target with the partial folder; on failure the partial folder is kept and
    /// the error says where it is.
    fn put_in_place(&mut self) -> Result<(), String> {
        let kept = |partial: &Path, reason: String| format!("{reason}; the new output is in {}", partial.display());
        // Checked again: the folder may have changed since `create`.
        check_replaceable(&self.target).map_err(|reason| kept(&self.partial, reason))?;
        let old = sibling(&self.target, &format!(".old-{}", std::process::id()));
        let had_old = match std::fs::symlink_metadata(&self.target) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(kept(&self.partial, format!("cannot inspect the old output: {e}"))),
        };
        if had_old {
            if std::fs::symlink_metadata(&old).is_ok() {
                let reason = format!("cannot set the old output aside: {} already exists", old.display());
                return Err(kept(&self.partial, reason));
            }
            std::fs::rename(&self.target, &old).map_err(|e| {
                kept(&self.partial, format!("cannot set the old output aside as {}: {e}", old.display()))
            })?;
        }
        if let Err(e) = std::fs::rename(&self.partial, &self.target) {
            let mut reason = format!("cannot move the output into place: {e}");
            if had_old && let Err(back) = std::fs::rename(&old, &self.target) {
                reason.push_str(&format!(
                    "; the old output could not be put back either ({back}) and is in {}",
                    old.display()
                ));
            }
            return Err(kept(&self.partial, reason));
        }
        if had_old && let Err(reason) = remove_old_output(&old) {
            tracing::warn!("{}: the old output was replaced but {reason}", self.target.display());
        }
        Ok(())
    }
}

impl Sink for PngSink {
    fn format_for(&self, format: PixelFormat) -> PixelFormat {
        match format {
            PixelFormat::Gray8 => format,
            _ => PixelFormat::Rgba8,
        }
    }
    fn write(&mut self, index: u64, frame: &Frame<'_>) -> Result<(), MediaError> {
        // Under a temporary name first: a frame that cannot be written whole (a full disk)
        // leaves nothing behind, and every frame file there is complete.
        let name = format!("frame-{:06}.png", index + 1);
        let (temporary, path) = (self.partial.join(format!(".{name}.tmp")), self.partial.join(&name));
        let written = plugin_sdk::testing::encode_png(&temporary, frame)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|source| MediaError::Write { path, source });
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }
    fn finish(mut self: Box<Self>) -> Result<(), MediaError> {
        self.put_in_place().map_err(|reason| {
            self.keep_partial = true;
            MediaError::Output { path: self.target.clone(), reason }
        })
    }
    fn keep_aside(mut self: Box<Self>) -> Result<Option<PathBuf>, MediaError> {
        if std::fs::symlink_metadata(&self.target).is_err() {
            return self.finish().map(|()| None);
        }
        self.keep_partial = true;
        Ok(Some(self.partial.clone()))
    }
}

impl Drop for PngSink {
    fn drop(&mut self) {
        if !self.keep_partial {
            let _ = std::fs::remove_dir_all(&self.partial);
        }
    }
}

/// Whether `name` is one this sink writes: `frame-` and six digits, then `.png`.
fn is_frame_name(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    name.strip_prefix("frame-")
        .and_then(|rest| rest.strip_suffix(".png"))
        .is_some_and(|digits| digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// `Ok` when `target` does not exist or may be replaced: a folder (not a link to one) whose
/// entries are all regular files with [frame names](is_frame_name). Otherwise why not.
fn check_replaceable(target: &Path) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("exists and cannot be inspected: {e}")),
    };
    if meta.is_file() {
        return Err("exists and is a file, not a folder".into());
    }
    if !meta.is_dir() {
        return Err("exists and is not a folder; refusing to replace it".into());
    }
    let unreadable = |e: std::io::Error| format!("exists and cannot be read: {e}");
    for entry in std::fs::read_dir(target).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let is_file = entry.file_type().map_err(unreadable)?.is_file();
        if !is_file || !is_frame_name(&entry.file_name()) {
            return Err("exists and holds files other than frame-NNNNNN.png; refusing to replace it".into());
        }
    }
    Ok(())
}

/// Deletes an old output set aside by [`PngSink::finish`] one frame file at a time, so nothing
/// but frame files is ever deleted; a folder that gained other entries meanwhile stays.
fn remove_old_output(old: &Path) -> Result<(), String> {
    let leave = |e: std::io::Error| format!("{} could not be removed: {e}", old.display());
    for entry in std::fs::read_dir(old).map_err(leave)? {
        let entry = entry.map_err(leave)?;
        if entry.file_type().map_err(leave)?.is_file() && is_frame_name(&entry.file_name()) {
            std::fs::remove_file(entry.path()).map_err(leave)?;
        }
    }
    std::fs::remove_dir(old).map_err(leave)
}

/// `<name><suffix>` next to `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fresh folder under the temp dir, named after the test and this process.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plugin-host-png-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn frame() -> OwnedFrame {
        OwnedFrame::from_pixels(2, 1, PixelFormat::Rgba8, vec![1, 2, 3, 255, 4, 5, 6, 255]).unwrap()
    }

    /// Runs a sink to the end with `frames` frames.
    fn run(target: &Path, frames: u64) -> Result<(), MediaError> {
        let mut sink = Box::new(PngSink::create(target)?);
        for index in 0..frames {
            sink.write(index, &frame().view())?;
        }
        sink.finish()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn frame_names() {
        assert!(is_frame_name("frame-000001.png".as_ref()));
        for name in ["frame-notes.txt", "frame-originals", "frame-00001.png", "frame-0000001.png", "frame-000001.PNG"] {
            assert!(!is_frame_name(name.as_ref()), "{name}");
        }
    }

    #[test]
    fn replaces_a_previous_output() {
        let dir = scratch("replace");
        let target = dir.join("out");
        run(&target, 3).unwrap();
        assert_eq!(names(&target), ["frame-000001.png", "frame-000002.png", "frame-000003.png"]);
        run(&target, 1).unwrap();
        assert_eq!(names(&target), ["frame-000001.png"]);
        assert_eq!(decode(&target.join("frame-000001.png")).unwrap().packed(), frame().packed());
        // Neither the partial nor the old folder is left behind.
        assert_eq!(names(&dir), ["out"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_a_folder_with_other_files_and_leaves_it_alone() {
        let dir = scratch("foreign");
        for foreign in ["notes", "originals"] {
            let target = dir.join(foreign);
            fs::create_dir_all(&target).unwrap();
            fs::write(target.join("frame-000001.png"), b"old").unwrap();
            if foreign == "notes" {
                fs::write(target.join("frame-notes.txt"), b"keep me").unwrap();
            } else {
                fs::create_dir(target.join("frame-originals")).unwrap();
                fs::write(target.join("frame-originals/frame-000001.png"), b"keep me").unwrap();
            }
            let before = names(&target);
            let err = PngSink::create(&target).err().expect("refused").to_string();
            assert!(err.contains("holds files other than frame-NNNNNN.png; refusing to replace it"), "{err}");
            assert_eq!(names(&target), before);
            assert!(!partial_path(&target).exists());
        }
        assert_eq!(fs::read(dir.join("notes/frame-notes.txt")).unwrap(), b"keep me");
        assert_eq!(fs::read(dir.join("originals/frame-originals/frame-000001.png")).unwrap(), b"keep me");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_at_finish_when_the_folder_changed_meanwhile() {
        let dir = scratch("toctou");
        let target = dir.join("out");
        run(&target, 1).unwrap();
        let mut sink = Box::new(PngSink::create(&target).unwrap());
        sink.write(0, &frame().view()).unwrap();
        fs::write(target.join("frame-notes.txt"), b"keep me").unwrap();
        let partial = partial_path(&target);
        let err = sink.finish().unwrap_err().to_string();
        assert!(err.contains("refusing to replace it"), "{err}");
        assert!(err.contains(&partial.display().to_string()), "{err}");
        assert_eq!(names(&target), ["frame-000001.png", "frame-notes.txt"]);
        // The completed output is kept where the error says.
        assert_eq!(names(&partial), ["frame-000001.png"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn puts_the_old_output_back_when_the_new_one_cannot_be_moved() {
        let dir = scratch("rollback");
        let target = dir.join("out");
        run(&target, 2).unwrap();
        let mut sink = Box::new(PngSink::create(&target).unwrap());
        sink.write(0, &frame().view()).unwrap();
        // Makes the final rename fail.
        fs::remove_dir_all(partial_path(&target)).unwrap();
        let err = sink.finish().unwrap_err().to_string();
        assert!(err.contains("cannot move the output into place"), "{err}");
        assert_eq!(names(&target), ["frame-000001.png", "frame-000002.png"]);
        assert_eq!(names(&dir), ["out"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_a_file() {
        let dir = scratch("file");
        let target = dir.join("out");
        fs::write(&target, b"keep me").unwrap();
        let err = PngSink::create(&target).err().expect("refused").to_string();
        assert!(err.contains("exists and is a file, not a folder"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
        assert_eq!(names(&dir), ["out"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
