//! Zero-copy frames: a wasm linear memory (through wasmtime's `MemoryCreator`) in which a window
//! maps the shared region's slot buffers. The plugin reads its input and writes its output where
//! the host put them and will read them; nothing is copied in or out.
//!
//! The memory is an ordinary private anonymous reservation (PROT_NONE until grown), except that
//! one grow — the one the runner makes right after instantiation, with the window armed — maps
//! the stage's buffers, shared, at the memory's end, one part after the other: each boundary it
//! reads read-only, then its output boundary writable (see [`crate::ipc::region`]). A guest store into the read-only part faults,
//! and wasmtime turns the fault into a trap. The guest's allocator grows past the window as usual.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Where the region's buffers go and whether the next grow places them.
pub struct Window {
    file: File,
    /// (offset in the file, length, writable), mapped one after the other.
    parts: Vec<(u64, usize, bool)>,
    len: usize,
    armed: AtomicBool,
    /// Offset in linear memory where the window was placed, once placed.
    placed_at: AtomicUsize,
    failure: Mutex<Option<String>>,
}

impl Window {
    /// A window over `parts` of `file`, (offset, length, writable) each, page-aligned, placed
    /// one after the other.
    pub fn new(file: File, parts: Vec<(u64, usize, bool)>) -> Arc<Self> {
        let len = parts.iter().map(|&(_, len, _)| len).sum();
        Arc::new(Self {
            file,
            parts,
            len,
            armed: AtomicBool::new(false),
            placed_at: AtomicUsize::new(usize::MAX),
            failure: Mutex::new(None),
        })
    }

    /// Bytes the window covers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Makes the next grow of a memory from this creator place the window.
    pub fn arm(&self) {
        self.placed_at.store(usize::MAX, Ordering::Release);
        self.armed.store(true, Ordering::Release);
    }

    /// Where the last armed grow placed the window, or why it could not.
    pub fn placed_at(&self) -> Result<usize, String> {
        match self.placed_at.load(Ordering::Acquire) {
            usize::MAX => Err(self
                .failure
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_else(|| "the window was not placed".into())),
            at => Ok(at),
        }
    }
}

/// Creates [`WindowedMemory`]s for one engine.
pub struct WindowCreator(pub Arc<Window>);

// SAFETY: every memory this creator returns reserves `reserved + guard` bytes up front and never
// moves, keeps everything past `byte_size` inaccessible (PROT_NONE), and is zero-filled when
// created (fresh anonymous pages); see `WindowedMemory`.
unsafe impl MemoryCreator for WindowCreator {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let capacity = reserved_size_in_bytes.unwrap_or(4 << 30);
        let total = capacity.checked_add(guard_size_in_bytes).ok_or("reservation overflows")?;
        // SAFETY: a fresh anonymous reservation at an address the kernel picks; nothing aliases it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("cannot reserve {total} bytes for linear memory: {}", std::io::Error::last_os_error()));
        }
        let base = NonNull::new(base as *mut u8).ok_or("mmap returned null")?;
        let mut memory = WindowedMemory { base, total, capacity, size: 0, window: Arc::clone(&self.0) };
        memory.make_accessible(0, minimum).map_err(|e| e.to_string())?;
        memory.size = minimum;
        Ok(Box::new(memory))
    }
}

/// A linear memory whose window maps the shared region. Never moves.
pub struct WindowedMemory {
    base: NonNull<u8>,
    total: usize,
    capacity: usize,
    size: usize,
    window: Arc<Window>,
}

// SAFETY: the memory is a plain mapping owned by this value; wasmtime serialises access to it
// through the store, and the pointer is never shared otherwise.
unsafe impl Send for WindowedMemory {}
// SAFETY: as above; `&self` methods only read sizes and the base pointer.
unsafe impl Sync for WindowedMemory {}

impl WindowedMemory {
    fn make_accessible(&mut self, start: usize, end: usize) -> std::io::Result<()> {
        if end <= start {
            return Ok(());
        }
        // SAFETY: [start, end) lies within our reservation (callers check against `capacity`);
        // both ends are wasm-page multiples, so page-aligned.
        let rc = unsafe {
            libc::mprotect(
                self.base.as_ptr().add(start) as *mut libc::c_void,
                end - start,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
    }

    fn map_window(&mut self, at: usize) -> std::io::Result<()> {
        let window = &self.window;
        let mut offset = 0;
        for &(file_offset, len, writable) in window.parts.iter().filter(|&&(_, len, _)| len > 0) {
            let protection = match writable {
                true => libc::PROT_READ | libc::PROT_WRITE,
                false => libc::PROT_READ,
            };
            // SAFETY: [at + offset, at + offset + len) lies within our reservation (checked by
            // grow_to); MAP_FIXED replaces those PROT_NONE pages of our own reservation with the
            // shared file mapping. The region file is sealed against shrinking, so accesses can
            // never fault with SIGBUS; a store into the read-only part faults, which wasmtime
            // reports as a trap of the guest.
            let rc = unsafe {
                libc::mmap(
                    self.base.as_ptr().add(at + offset) as *mut libc::c_void,
                    len,
                    protection,
                    libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE,
                    window.file.as_raw_fd(),
                    file_offset as libc::off_t,
                )
            };
            if rc == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            offset += len;
        }
        Ok(())
    }
}

// SAFETY: `as_ptr` is stable for the memory's life (the reservation never moves), `byte_size`
// bytes from it are readable and writable, and `byte_capacity` is the reservation, after which
// the guard region stays unmapped-as-PROT_NONE.
unsafe impl LinearMemory for WindowedMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.capacity {
            wasmtime::bail!("cannot grow linear memory to {new_size} bytes: the reservation is {}", self.capacity);
        }
        let old = self.size;
        if self.window.armed.swap(false, Ordering::AcqRel) {
            if old + self.window.len > new_size {
                let message =
                    format!("the frame window of {} bytes does not fit a grow to {new_size}", self.window.len);
                if let Ok(mut failure) = self.window.failure.lock() {
                    *failure = Some(message.clone());
                }
                wasmtime::bail!(message);
            }
            self.map_window(old)?;
            self.make_accessible(old + self.window.len, new_size)?;
            self.window.placed_at.store(old, Ordering::Release);
        } else {
            self.make_accessible(old, new_size)?;
        }
        self.size = new_size;
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }
}

impl Drop for WindowedMemory {
    fn drop(&mut self) {
        // SAFETY: we own the whole reservation (window included) and nothing uses it any more.
        unsafe {
            libc::munmap(self.base.as_ptr() as *mut libc::c_void, self.total);
        }
    }
}
