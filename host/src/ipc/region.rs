//! The shared frame region: its layout, defined once for both sides, and a view that reads and
//! writes it without ever trusting what the other process put there.
//!
//! ```text
//! 0        RegionHeader (64 B): magic, layout version, slot count, slot capacity, doorbell
//! 64       SlotControl × slot_count (128 B each): state word, frame number, input/output FrameDesc
//! page     buffers: slot 0 input, slot 0 output, slot 1 input, … each `slot_capacity` bytes
//! ```
//!
//! Descriptors are copied out with one volatile read and validated by the reader before use.

use crate::sys::memfd;
use memmap2::MmapMut;
use plugin_sdk::abi::{FRAME_DESC_SIZE, FrameDesc};
use std::fs::File;
use std::mem::{offset_of, size_of};
use std::ptr::addr_of_mut;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub const REGION_MAGIC: u64 = u64::from_le_bytes(*b"PHREGION");
pub const LAYOUT_VERSION: u32 = 1;
pub const PAGE_SIZE: u64 = 4096;
pub const MIN_SLOTS: u32 = 2;
pub const MAX_SLOTS: u32 = 64;
/// Largest buffer a slot may have: a 8K RGBA frame.
pub const MAX_SLOT_CAPACITY: u64 = 8192 * 8192 * 4;

#[repr(C)]
pub struct RegionHeader {
    pub magic: u64,
    pub layout_version: u32,
    pub slot_count: u32,
    /// Bytes of each buffer (a slot has an input and an output buffer), a multiple of the page.
    pub slot_capacity: u64,
    /// Offset of slot 0's input buffer, page-aligned.
    pub buffers_offset: u64,
    /// Bumped by the host on every submit; the runner sleeps on it.
    pub doorbell: AtomicU32,
    _reserved: [u32; 7],
}

#[repr(C)]
pub struct SlotControl {
    /// A [`crate::ipc::handoff::state`] value.
    pub state: AtomicU32,
    _pad: u32,
    /// Which frame of the stream the slot holds (set by the host).
    pub frame_number: AtomicU64,
    pub input: [u8; FRAME_DESC_SIZE],
    pub output: [u8; FRAME_DESC_SIZE],
    _reserved: [u8; 48],
}

const _: () = assert!(size_of::<RegionHeader>() == 64);
const _: () = assert!(offset_of!(RegionHeader, doorbell) == 32);
const _: () = assert!(size_of::<SlotControl>() == 128);
const _: () = assert!(offset_of!(SlotControl, frame_number) == 8);
const _: () = assert!(offset_of!(SlotControl, input) == 16);
const _: () = assert!(offset_of!(SlotControl, output) == 48);

/// Which of a slot's two buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    Input = 0,
    Output = 1,
}

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("cannot create the shared frame region: {0}")]
    Create(std::io::Error),
    #[error("cannot map the shared frame region: {0}")]
    Map(std::io::Error),
    #[error("slot count {0} is outside {MIN_SLOTS}..={MAX_SLOTS}")]
    SlotCount(u32),
    #[error("a slot of {0} bytes exceeds the limit of {MAX_SLOT_CAPACITY} bytes")]
    Capacity(u64),
    #[error("the shared region is not valid: {0}")]
    Invalid(&'static str),
}

/// A mapped region, from either side.
pub struct Region {
    map: MmapMut,
    file: File,
    slot_count: u32,
    slot_capacity: u64,
    buffers_offset: u64,
}

fn page_align(n: u64) -> u64 {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

fn buffers_offset(slot_count: u32) -> u64 {
    page_align(size_of::<RegionHeader>() as u64 + slot_count as u64 * size_of::<SlotControl>() as u64)
}

impl Region {
    /// Host: creates, sizes, initialises and seals a region for `slot_count` slots whose buffers
    /// hold at least `frame_bytes` each.
    pub fn create(name: &str, slot_count: u32, frame_bytes: u64) -> Result<Self, RegionError> {
        if !(MIN_SLOTS..=MAX_SLOTS).contains(&slot_count) {
            return Err(RegionError::SlotCount(slot_count));
        }
        let slot_capacity = page_align(frame_bytes.max(1));
        if slot_capacity > MAX_SLOT_CAPACITY {
            return Err(RegionError::Capacity(frame_bytes));
        }
        let offset = buffers_offset(slot_count);
        let size = offset + slot_count as u64 * 2 * slot_capacity;
        let file = memfd::create_sealed(name, size).map_err(RegionError::Create)?;
        let map = memfd::map_shared(&file).map_err(RegionError::Map)?;
        let region = Region { map, file, slot_count, slot_capacity, buffers_offset: offset };
        let header = region.header_ptr();
        // SAFETY: the mapping is fresh, at least a header long, page-aligned, and nobody else has it yet.
        unsafe {
            addr_of_mut!((*header).magic).write(REGION_MAGIC);
            addr_of_mut!((*header).layout_version).write(LAYOUT_VERSION);
            addr_of_mut!((*header).slot_count).write(slot_count);
            addr_of_mut!((*header).slot_capacity).write(slot_capacity);
            addr_of_mut!((*header).buffers_offset).write(offset);
        }
        Ok(region)
    }

    /// Runner: maps a region the host created and checks its header against its size.
    pub fn open(file: File) -> Result<Self, RegionError> {
        if !memfd::is_sealed(&file).map_err(RegionError::Map)? {
            return Err(RegionError::Invalid("the region is not sealed"));
        }
        let map = memfd::map_shared(&file).map_err(RegionError::Map)?;
        if map.len() < size_of::<RegionHeader>() {
            return Err(RegionError::Invalid("smaller than its header"));
        }
        let header = map.as_ptr() as *const RegionHeader;
        // SAFETY: the mapping holds a whole header (checked above) and is page-aligned; the
        // fields are plain integers, read once each.
        let (magic, version, slot_count, slot_capacity, offset) = unsafe {
            (
                (*header).magic,
                (*header).layout_version,
                (*header).slot_count,
                (*header).slot_capacity,
                (*header).buffers_offset,
            )
        };
        if magic != REGION_MAGIC {
            return Err(RegionError::Invalid("bad magic"));
        }
        if version != LAYOUT_VERSION {
            return Err(RegionError::Invalid("unsupported layout version"));
        }
        if !(MIN_SLOTS..=MAX_SLOTS).contains(&slot_count) {
            return Err(RegionError::SlotCount(slot_count));
        }
        if slot_capacity == 0 || slot_capacity % PAGE_SIZE != 0 || slot_capacity > MAX_SLOT_CAPACITY {
            return Err(RegionError::Capacity(slot_capacity));
        }
        if offset != buffers_offset(slot_count) || offset + slot_count as u64 * 2 * slot_capacity != map.len() as u64 {
            return Err(RegionError::Invalid("its size does not match its header"));
        }
        Ok(Region { map, file, slot_count, slot_capacity, buffers_offset: offset })
    }

    pub fn file(&self) -> &File {
        &self.file
    }
    pub fn slot_count(&self) -> u32 {
        self.slot_count
    }
    pub fn slot_capacity(&self) -> u64 {
        self.slot_capacity
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn header_ptr(&self) -> *mut RegionHeader {
        self.map.as_ptr() as *mut RegionHeader
    }

    fn slot_ptr(&self, slot: u32) -> *mut SlotControl {
        assert!(slot < self.slot_count, "slot {slot} out of range");
        // SAFETY: slot < slot_count, so the control block lies within the mapping (checked
        // against the size at create/open).
        unsafe {
            self.map.as_ptr().add(size_of::<RegionHeader>() + slot as usize * size_of::<SlotControl>())
                as *mut SlotControl
        }
    }

    pub fn doorbell(&self) -> &AtomicU32 {
        // SAFETY: the header is in the mapping, which lives as long as `self`; an AtomicU32 may be
        // shared and mutated through `&`.
        unsafe { &*addr_of_mut!((*self.header_ptr()).doorbell) }
    }

    pub fn state(&self, slot: u32) -> &AtomicU32 {
        // SAFETY: as for `doorbell`.
        unsafe { &*addr_of_mut!((*self.slot_ptr(slot)).state) }
    }

    pub fn frame_number(&self, slot: u32) -> u64 {
        // SAFETY: as for `doorbell`.
        unsafe { &*addr_of_mut!((*self.slot_ptr(slot)).frame_number) }.load(Ordering::Acquire)
    }

    pub fn set_frame_number(&self, slot: u32, frame: u64) {
        // SAFETY: as for `doorbell`.
        unsafe { &*addr_of_mut!((*self.slot_ptr(slot)).frame_number) }.store(frame, Ordering::Release);
    }

    /// Copies a descriptor out of the region. The result is untrusted until validated.
    pub fn read_desc(&self, slot: u32, which: Buffer) -> FrameDesc {
        let slot = self.slot_ptr(slot);
        // SAFETY: the descriptor lies within the mapping; a volatile read of plain bytes is
        // fine even while the peer writes them (we may get a torn value, which validation catches).
        let bytes = unsafe {
            match which {
                Buffer::Input => addr_of_mut!((*slot).input).read_volatile(),
                Buffer::Output => addr_of_mut!((*slot).output).read_volatile(),
            }
        };
        FrameDesc::from_bytes(&bytes)
    }

    pub fn write_desc(&self, slot: u32, which: Buffer, desc: &FrameDesc) {
        let slot = self.slot_ptr(slot);
        let bytes = desc.to_bytes();
        // SAFETY: as for `read_desc`.
        unsafe {
            match which {
                Buffer::Input => addr_of_mut!((*slot).input).write_volatile(bytes),
                Buffer::Output => addr_of_mut!((*slot).output).write_volatile(bytes),
            }
        }
    }

    /// Bytes of all slot buffers together (they are contiguous, from slot 0's input buffer).
    pub fn buffers_len(&self) -> usize {
        (self.slot_count as u64 * 2 * self.slot_capacity) as usize
    }

    /// Offset of a slot buffer from the start of the region.
    pub fn buffer_offset(&self, slot: u32, which: Buffer) -> u64 {
        assert!(slot < self.slot_count, "slot {slot} out of range");
        self.buffers_offset + (slot as u64 * 2 + which as u64) * self.slot_capacity
    }

    /// Copies `src` into a slot buffer at `offset`. Panics if it does not fit (a host bug).
    pub fn write_buffer(&self, slot: u32, which: Buffer, offset: usize, src: &[u8]) {
        assert!(offset as u64 + src.len() as u64 <= self.slot_capacity, "write past the slot buffer");
        let start = self.buffer_offset(slot, which) as usize + offset;
        // SAFETY: the range lies within the slot buffer (asserted) and so within the mapping;
        // `src` is our own memory, never the mapping itself. The peer may write the same bytes
        // concurrently only by breaking the protocol, and then gets garbage, not our memory.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.map.as_ptr().add(start) as *mut u8, src.len()) }
    }

    /// Copies a slot buffer's bytes at `offset` into `dst`. Panics if the range does not fit.
    pub fn read_buffer(&self, slot: u32, which: Buffer, offset: usize, dst: &mut [u8]) {
        assert!(offset as u64 + dst.len() as u64 <= self.slot_capacity, "read past the slot buffer");
        let start = self.buffer_offset(slot, which) as usize + offset;
        // SAFETY: as for `write_buffer`, in the other direction.
        unsafe { std::ptr::copy_nonoverlapping(self.map.as_ptr().add(start), dst.as_mut_ptr(), dst.len()) }
    }
}

/// Checks an output descriptor the runner wrote: a known format, a non-empty frame, and all of
/// it within the slot's buffer. `capacity` is the host's own figure, never the peer's.
pub fn validate_output(desc: &FrameDesc, capacity: u64) -> Result<plugin_sdk::PixelFormat, &'static str> {
    if desc.data as u64 >= capacity {
        return Err("frame starts past its buffer");
    }
    let checked = FrameDesc { capacity: (capacity - desc.data as u64).min(u32::MAX as u64) as u32, ..*desc };
    checked.validate()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn created_region_is_sealed_and_reopens() {
        let region = Region::create("test", 2, 10_000).unwrap();
        assert_eq!(region.slot_capacity(), 12_288);
        // SAFETY: ftruncate on our own fd; it is expected to fail.
        let rc = unsafe { libc::ftruncate(region.file().as_raw_fd(), 4096) };
        assert_eq!(rc, -1);
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
        let other = Region::open(region.file().try_clone().unwrap()).unwrap();
        assert_eq!(other.slot_count(), 2);
        region.write_buffer(1, Buffer::Output, 5, b"abc");
        let mut back = [0u8; 3];
        other.read_buffer(1, Buffer::Output, 5, &mut back);
        assert_eq!(&back, b"abc");
    }

    #[test]
    fn output_descriptors_outside_the_buffer_are_refused() {
        let good = FrameDesc { data: 0, capacity: 0, width: 4, height: 4, stride: 16, format: 1, timestamp_us: 0 };
        assert!(validate_output(&good, 64).is_ok());
        assert!(validate_output(&FrameDesc { height: 5, ..good }, 64).is_err());
        assert!(validate_output(&FrameDesc { data: 4, ..good }, 64).is_err());
        assert!(validate_output(&FrameDesc { data: u32::MAX, ..good }, 64).is_err());
        assert!(validate_output(&FrameDesc { stride: u32::MAX, height: u32::MAX, ..good }, 64).is_err());
    }
}
