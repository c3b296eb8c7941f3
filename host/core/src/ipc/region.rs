//! The shared frame region: its layout, defined once for both sides, and a view that reads and
//! writes it without ever trusting what the other process put there.
//!
//! One region serves a whole chain of plugins. Between consecutive stages lies a *boundary*:
//! boundary 0 is what the source writes, boundary k+1 what stage k produces and stage k+1 reads,
//! and the last boundary what the sink reads. Each slot (a *lane*) has one buffer per boundary,
//! so the output of stage k is, in place, the input of stage k+1: frames move along a chain by
//! handing the lane on, never by copying.
//!
//! Who may touch what: stage k's runner maps boundary k read-only and boundary k+1 writable into
//! its plugin's memory, and nothing of any other boundary. A plugin that writes its input or
//! another stage's buffers traps; it can never change a frame it does not produce.
//!
//! A graph ([`Region::for_node`]) uses boundaries as the nodes' outputs: a node's runner maps
//! each boundary it reads read-only and the one it writes writable, and each frame names the slot
//! of every input (the slot table beside the descriptors, [`Region::set_inputs`]), since an
//! input's frame can lie in any slot of its boundary.
//!
//! Control blocks and boundaries are counted apart: a stage run as several workers (processes
//! that each write one band of the same output, [`plugin_sdk::abi::band_rows`]) has a control
//! block per worker, all on the same pair of boundaries. A view names both.
//!
//! ```text
//! 0        RegionHeader (64 B): magic, layout version, slot count, slot capacity, stage count
//! 64       per control block (a stage, or one worker of a stage): StageControl (64 B: doorbell)
//!          then SlotControl × slot_count (768 B each: state word, frame number, input/output
//!          FrameDesc, the band of output rows to write, a graph node's input table)
//! page     buffers, by boundary: boundary 0 of slot 0, of slot 1, …, boundary 1 of slot 0, …
//!          each `slot_capacity` bytes, `boundary_count` boundaries (the last control block
//!          belongs to the consumer of the last boundary)
//! then     frame metadata, in the same order: per boundary and slot [`META_AREA`] bytes, a u32
//!          length (0: not set) and that many bytes of an encoded `FrameMeta` from byte 64
//! ```
//!
//! The host writes a frame's metadata at its input boundary and clears it at the output one
//! before a stage runs; the stage's runner sets the output's only when its plugin does, and the
//! host copies it out once and decodes it (untrusted) when the frame comes back.
//!
//! Descriptors are copied out with one volatile read and validated by the reader before use.
//!
//! One file, past 600 lines on purpose: the layout and every raw access to the mapping (views,
//! copies in and out, the pipe transport's reads and writes) live together, so that all `unsafe`
//! that touches shared memory can be reviewed in one place.

use crate::sys::memfd;
use memmap2::MmapMut;
use plugin_sdk::abi::{FRAME_DESC_SIZE, FrameDesc};
use std::fs::File;
use std::mem::{offset_of, size_of};
use std::ptr::addr_of_mut;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

pub const REGION_MAGIC: u64 = u64::from_le_bytes(*b"PHREGION");
/// 4: control blocks counted apart from boundaries (workers), and a band per slot; 5: frame
/// metadata areas after the buffers; 6: a table of input buffers per slot (graph nodes, which
/// read frames of other boundaries and slots than their output's).
pub const LAYOUT_VERSION: u32 = 6;
/// Bytes of one frame's metadata area: a length word, padding to 64, then the encoded metadata.
pub const META_AREA: u64 = 64 + plugin_sdk::abi::MAX_META_BYTES as u64;
pub const PAGE_SIZE: u64 = 4096;
pub const MIN_SLOTS: u32 = 2;
pub const MAX_SLOTS: u32 = 64;
pub const MAX_STAGES: u32 = 64;
/// Most control blocks a region has: stages times their workers, and the consumer.
pub const MAX_CONTROL_BLOCKS: u32 = 1024;
/// Largest buffer a slot may have: a 8K RGBA frame.
pub const MAX_SLOT_CAPACITY: u64 = 8192 * 8192 * 4;

#[repr(C)]
pub struct RegionHeader {
    pub magic: u64,
    pub layout_version: u32,
    pub slot_count: u32,
    /// Bytes of each buffer (a slot has one per boundary), a multiple of the page.
    pub slot_capacity: u64,
    /// Offset of slot 0's buffer A, page-aligned.
    pub buffers_offset: u64,
    /// Control blocks: the chain's plugins (or their workers) and the consumer of the last
    /// boundary.
    pub stage_count: u32,
    /// Boundaries: one more than the chain has stages.
    pub boundary_count: u32,
    _reserved: [u32; 6],
}

#[repr(C)]
pub struct StageControl {
    /// Bumped by the host on every submit to this stage; its runner sleeps on it.
    pub doorbell: AtomicU32,
    _reserved: [u32; 15],
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
    /// The output rows to write, `band_first..band_first + band_rows` (set by the host; 0 rows:
    /// the whole frame).
    pub band_first: AtomicU32,
    pub band_rows: AtomicU32,
    _reserved: [u8; 36],
    /// Graph nodes: how many of `inputs` the slot's frame has (0: the chain's one input, the
    /// same slot of the view's input boundary).
    pub input_count: AtomicU32,
    pub inputs: [InputRef; MAX_INPUTS],
}

/// One input of a graph node's frame: which buffer holds it, and its descriptor.
#[repr(C)]
pub struct InputRef {
    pub boundary: u32,
    pub slot: u32,
    pub desc: [u8; FRAME_DESC_SIZE],
}

/// Most inputs a frame of a graph node has (the ABI's limit).
pub const MAX_INPUTS: usize = plugin_sdk::abi::MAX_INPUTS;

/// The boundaries a graph node's view covers: the ones it reads (mapped read-only into its
/// plugin's memory, in this order) and the one it writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeBuffers {
    pub reads: Vec<u32>,
    pub write: u32,
}

const _: () = assert!(size_of::<RegionHeader>() == 64);
const _: () = assert!(offset_of!(RegionHeader, stage_count) == 32);
const _: () = assert!(size_of::<StageControl>() == 64);
const _: () = assert!(size_of::<InputRef>() == 40);
const _: () = assert!(size_of::<SlotControl>() == 128 + 40 * MAX_INPUTS);
const _: () = assert!(offset_of!(SlotControl, input_count) == 124);
const _: () = assert!(offset_of!(SlotControl, frame_number) == 8);
const _: () = assert!(offset_of!(SlotControl, input) == 16);
const _: () = assert!(offset_of!(SlotControl, output) == 48);
const _: () = assert!(offset_of!(SlotControl, band_first) == 80);
const _: () = assert!(offset_of!(RegionHeader, boundary_count) == 36);

/// Which of a slot's buffers, as the stage of a view sees them: its input boundary or its output.
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
    #[error("stage {0} is outside the region's stages (at most {MAX_STAGES})")]
    Stage(u32),
    #[error("control block {0} is outside the region's (at most {MAX_CONTROL_BLOCKS})")]
    ControlBlock(u32),
    #[error("a slot of {0} bytes exceeds the limit of {MAX_SLOT_CAPACITY} bytes")]
    Capacity(u64),
    #[error("the shared region is not valid: {0}")]
    Invalid(&'static str),
}

/// The mapping itself, shared by every stage's view of it.
struct Mapping {
    map: MmapMut,
    file: File,
    slot_count: u32,
    stage_count: u32,
    boundary_count: u32,
    slot_capacity: u64,
    buffers_offset: u64,
    /// Whether the lane tokens have been handed out (they exist once per mapping).
    lanes_taken: AtomicBool,
}

/// A mapped region as one stage of the chain sees it, from either side. Cloning gives another
/// view of the same mapping.
#[derive(Clone)]
pub struct Region {
    shared: Arc<Mapping>,
    /// Its control block.
    stage: u32,
    /// Its input boundary (its output is the next), or a graph node's first.
    boundary: u32,
    /// A graph node's boundaries; `None`: a chain's view (`boundary` and the next).
    node: Option<Arc<NodeBuffers>>,
}

/// The right to use one slot's buffers in the host. There is one token per slot, handed out once
/// ([`Region::take_lanes`]); whoever holds it may read and write that slot's pixels, so two host
/// threads never touch the same buffer at once.
#[derive(Debug)]
pub struct Lane {
    slot: u32,
    /// A graph's token is for one boundary's buffer of the slot; a chain's for all of them.
    boundary: Option<u32>,
    /// The mapping the token belongs to (its address), so that it cannot open another region.
    owner: usize,
}

impl Lane {
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

fn page_align(n: u64) -> u64 {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

fn stage_block_len(slot_count: u32) -> u64 {
    size_of::<StageControl>() as u64 + slot_count as u64 * size_of::<SlotControl>() as u64
}

fn buffers_offset(slot_count: u32, stage_count: u32) -> u64 {
    page_align(size_of::<RegionHeader>() as u64 + stage_count as u64 * stage_block_len(slot_count))
}

impl Region {
    /// Host: creates a region for one plugin (see [`Region::create_chain`]): its stage and the
    /// host's view of its output.
    pub fn create(name: &str, slot_count: u32, frame_bytes: u64) -> Result<Self, RegionError> {
        Self::create_chain(name, 2, slot_count, frame_bytes)
    }

    /// Host: creates, sizes, initialises and seals a region for a chain of `stage_count - 1`
    /// plugins and the consumer of their output, with `slot_count` lanes whose buffers hold at
    /// least `frame_bytes` each. Returns the view of stage 0; [`Region::for_stage`] gives the others.
    pub fn create_chain(name: &str, stage_count: u32, slot_count: u32, frame_bytes: u64) -> Result<Self, RegionError> {
        Self::create_with_workers(name, stage_count, stage_count, slot_count, frame_bytes)
    }

    /// Host: like [`Region::create_chain`] with `boundary_count` boundaries and `stage_count`
    /// control blocks, for stages run as several workers ([`Region::for_worker`]).
    pub fn create_with_workers(
        name: &str,
        stage_count: u32,
        boundary_count: u32,
        slot_count: u32,
        frame_bytes: u64,
    ) -> Result<Self, RegionError> {
        if !(MIN_SLOTS..=MAX_SLOTS).contains(&slot_count) {
            return Err(RegionError::SlotCount(slot_count));
        }
        if !(2..=MAX_STAGES).contains(&boundary_count) {
            return Err(RegionError::Stage(boundary_count));
        }
        if !(boundary_count..=MAX_CONTROL_BLOCKS).contains(&stage_count) {
            return Err(RegionError::ControlBlock(stage_count));
        }
        let slot_capacity = page_align(frame_bytes.max(1));
        if slot_capacity > MAX_SLOT_CAPACITY {
            return Err(RegionError::Capacity(frame_bytes));
        }
        let offset = buffers_offset(slot_count, stage_count);
        let size = offset + boundary_count as u64 * slot_count as u64 * (slot_capacity + META_AREA);
        let file = memfd::create_sealed(name, size).map_err(RegionError::Create)?;
        let map = memfd::map_shared(&file).map_err(RegionError::Map)?;
        let region = Region::stage_zero(map, file, [slot_count, stage_count, boundary_count], slot_capacity, offset);
        region.restore_header();
        Ok(region)
    }

    /// Host: writes the header from the host's own figures. A plugin process can scribble over the
    /// header (it maps the region writable); the host never reads it back, but a new runner
    /// checks it, so the host restores it before each start.
    pub fn restore_header(&self) {
        let m = &self.shared;
        let header = self.base() as *mut RegionHeader;
        // SAFETY: the mapping holds a whole header (its size was checked at create) and lives as
        // long as `self`; plain integer fields, written with volatile stores because another
        // process maps them too.
        unsafe {
            addr_of_mut!((*header).magic).write_volatile(REGION_MAGIC);
            addr_of_mut!((*header).layout_version).write_volatile(LAYOUT_VERSION);
            addr_of_mut!((*header).slot_count).write_volatile(m.slot_count);
            addr_of_mut!((*header).slot_capacity).write_volatile(m.slot_capacity);
            addr_of_mut!((*header).buffers_offset).write_volatile(m.buffers_offset);
            addr_of_mut!((*header).stage_count).write_volatile(m.stage_count);
            addr_of_mut!((*header).boundary_count).write_volatile(m.boundary_count);
        }
    }

    /// Runner: maps a region the host created and checks its header against its size. Returns
    /// the view of stage 0; the runner learns its stage at load time.
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
        let (magic, version, slot_count, slot_capacity, offset, stage_count, boundary_count) = unsafe {
            (
                (*header).magic,
                (*header).layout_version,
                (*header).slot_count,
                (*header).slot_capacity,
                (*header).buffers_offset,
                (*header).stage_count,
                (*header).boundary_count,
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
        if !(2..=MAX_STAGES).contains(&boundary_count) {
            return Err(RegionError::Stage(boundary_count));
        }
        if !(boundary_count..=MAX_CONTROL_BLOCKS).contains(&stage_count) {
            return Err(RegionError::ControlBlock(stage_count));
        }
        if slot_capacity == 0 || slot_capacity % PAGE_SIZE != 0 || slot_capacity > MAX_SLOT_CAPACITY {
            return Err(RegionError::Capacity(slot_capacity));
        }
        if offset != buffers_offset(slot_count, stage_count)
            || offset + boundary_count as u64 * slot_count as u64 * (slot_capacity + META_AREA) != map.len() as u64
        {
            return Err(RegionError::Invalid("its size does not match its header"));
        }
        Ok(Region::stage_zero(map, file, [slot_count, stage_count, boundary_count], slot_capacity, offset))
    }

    fn stage_zero(
        map: MmapMut,
        file: File,
        [slot_count, stage_count, boundary_count]: [u32; 3],
        slot_capacity: u64,
        buffers_offset: u64,
    ) -> Self {
        let lanes_taken = AtomicBool::new(false);
        let mapping =
            Mapping { map, file, slot_count, stage_count, boundary_count, slot_capacity, buffers_offset, lanes_taken };
        Region { shared: Arc::new(mapping), stage: 0, boundary: 0, node: None }
    }

    /// The view of another stage of the same mapping: its control block and input boundary `stage`.
    pub fn for_stage(&self, stage: u32) -> Result<Self, RegionError> {
        self.for_worker(stage, stage)
    }

    /// The view of control block `stage` whose input is `boundary`: one worker of the stage
    /// between `boundary` and the next, or (for the last boundary) its consumer.
    pub fn for_worker(&self, stage: u32, boundary: u32) -> Result<Self, RegionError> {
        if stage >= self.shared.stage_count {
            return Err(RegionError::ControlBlock(stage));
        }
        if boundary >= self.shared.boundary_count {
            return Err(RegionError::Stage(boundary));
        }
        Ok(Region { shared: Arc::clone(&self.shared), stage, boundary, node: None })
    }

    /// The view of control block `stage` as a graph node that reads `buffers.reads` and writes
    /// `buffers.write`: each a boundary of the region, the written one not among those read.
    pub fn for_node(&self, stage: u32, buffers: NodeBuffers) -> Result<Self, RegionError> {
        let boundaries = self.shared.boundary_count;
        if buffers.reads.is_empty() || buffers.reads.len() > MAX_STAGES as usize {
            return Err(RegionError::Invalid("a node reads between 1 and 64 boundaries"));
        }
        if let Some(&bad) = buffers.reads.iter().chain([&buffers.write]).find(|&&b| b >= boundaries) {
            return Err(RegionError::Stage(bad));
        }
        if buffers.reads.contains(&buffers.write) {
            return Err(RegionError::Invalid("a node reads the boundary it writes"));
        }
        let mut view = self.for_worker(stage, buffers.reads[0])?;
        view.node = Some(Arc::new(buffers));
        Ok(view)
    }

    /// A graph node's boundaries, for a view made by [`Region::for_node`].
    pub fn node(&self) -> Option<&NodeBuffers> {
        self.node.as_deref()
    }

    /// Host: the lane tokens, one per slot; only the first call gets them.
    pub fn take_lanes(&self) -> Vec<Lane> {
        if self.shared.lanes_taken.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        (0..self.shared.slot_count).map(|slot| Lane { slot, boundary: None, owner: self.owner() }).collect()
    }

    /// Host, for a graph: a token per slot of each boundary (`[boundary][slot]`), so that each
    /// boundary's buffers are handed around on their own. Only the first call (of this or
    /// [`Region::take_lanes`]) gets them.
    pub fn take_buffers(&self) -> Vec<Vec<Lane>> {
        if self.shared.lanes_taken.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        let owner = self.owner();
        (0..self.shared.boundary_count)
            .map(|b| (0..self.shared.slot_count).map(|slot| Lane { slot, boundary: Some(b), owner }).collect())
            .collect()
    }

    fn owner(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    pub fn file(&self) -> &File {
        &self.shared.file
    }
    pub fn stage(&self) -> u32 {
        self.stage
    }
    /// The input boundary of this view.
    pub fn boundary(&self) -> u32 {
        self.boundary
    }
    pub fn stage_count(&self) -> u32 {
        self.shared.stage_count
    }
    pub fn slot_count(&self) -> u32 {
        self.shared.slot_count
    }
    pub fn slot_capacity(&self) -> u64 {
        self.shared.slot_capacity
    }
    pub fn len(&self) -> usize {
        self.shared.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.shared.map.is_empty()
    }

    fn base(&self) -> *mut u8 {
        self.shared.map.as_ptr() as *mut u8
    }

    fn stage_ptr(&self) -> *mut StageControl {
        let offset = size_of::<RegionHeader>() as u64 + self.stage as u64 * stage_block_len(self.shared.slot_count);
        // SAFETY: stage < stage_count (checked by `for_stage`), so its block lies within the
        // control area, which the size check at create/open put inside the mapping.
        unsafe { self.base().add(offset as usize) as *mut StageControl }
    }

    fn slot_ptr(&self, slot: u32) -> *mut SlotControl {
        assert!(slot < self.shared.slot_count, "slot {slot} out of range");
        // SAFETY: slot < slot_count, so the control block lies within this stage's block.
        unsafe {
            (self.stage_ptr() as *mut u8).add(size_of::<StageControl>() + slot as usize * size_of::<SlotControl>())
                as *mut SlotControl
        }
    }

    pub fn doorbell(&self) -> &AtomicU32 {
        // SAFETY: the stage block is in the mapping, which lives as long as `self`; an AtomicU32
        // may be shared and mutated through `&`.
        unsafe { &*addr_of_mut!((*self.stage_ptr()).doorbell) }
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

    /// The output rows the slot's frame asks for, `(first, rows)`; 0 rows: the whole frame.
    /// Written by the host, so the runner takes it as it is (its plugin checks it against the frame).
    pub fn band(&self, slot: u32) -> (u32, u32) {
        let slot = self.slot_ptr(slot);
        // SAFETY: as for `doorbell`.
        let (first, rows) = unsafe { (&*addr_of_mut!((*slot).band_first), &*addr_of_mut!((*slot).band_rows)) };
        (first.load(Ordering::Acquire), rows.load(Ordering::Acquire))
    }

    /// Host: sets the rows the slot's next frame asks for (see [`Region::band`]).
    pub fn set_band(&self, slot: u32, first: u32, rows: u32) {
        let slot = self.slot_ptr(slot);
        // SAFETY: as for `doorbell`.
        let (at, count) = unsafe { (&*addr_of_mut!((*slot).band_first), &*addr_of_mut!((*slot).band_rows)) };
        at.store(first, Ordering::Release);
        count.store(rows, Ordering::Release);
    }

    /// Host, graph nodes: the buffers the slot's next frame reads, as (boundary, slot,
    /// descriptor), at most [`MAX_INPUTS`]; empty: a chain's frame.
    pub fn set_inputs(&self, slot: u32, inputs: &[(u32, u32, FrameDesc)]) {
        assert!(inputs.len() <= MAX_INPUTS, "more than {MAX_INPUTS} inputs");
        let slot = self.slot_ptr(slot);
        for (k, (boundary, buffer, desc)) in inputs.iter().enumerate() {
            let entry = InputRef { boundary: *boundary, slot: *buffer, desc: desc.to_bytes() };
            // SAFETY: k < MAX_INPUTS, so the entry lies within the slot's control, in the
            // mapping; plain integers and bytes, written with a volatile store (another process
            // maps them).
            unsafe { addr_of_mut!((*slot).inputs[k]).write_volatile(entry) };
        }
        // SAFETY: as for `doorbell`.
        unsafe { &*addr_of_mut!((*slot).input_count) }.store(inputs.len() as u32, Ordering::Release);
    }

    /// Runner: the buffers the slot's frame reads (see [`Region::set_inputs`]), copied out
    /// once. Untrusted: the count is cut to [`MAX_INPUTS`]; the caller checks each buffer
    /// against its window ([`Region::window_offset`]) and each descriptor.
    pub fn inputs(&self, slot: u32, into: &mut Vec<(u32, u32, FrameDesc)>) {
        into.clear();
        let slot = self.slot_ptr(slot);
        // SAFETY: as for `doorbell`.
        let count = unsafe { &*addr_of_mut!((*slot).input_count) }.load(Ordering::Acquire) as usize;
        for k in 0..count.min(MAX_INPUTS) {
            // SAFETY: as in `set_inputs`; a torn read gives wrong numbers, which the caller's
            // checks catch, never an invalid value.
            let entry = unsafe { addr_of_mut!((*slot).inputs[k]).read_volatile() };
            into.push((entry.boundary, entry.slot, FrameDesc::from_bytes(&entry.desc)));
        }
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

    /// Offset of the first slot buffer from the start of the region.
    pub fn buffers_offset(&self) -> u64 {
        self.shared.buffers_offset
    }

    /// Offset of the first buffer of `boundary` from the start of the region; the boundary's
    /// buffers, one per slot, follow it contiguously.
    fn boundary_offset(&self, boundary: u32) -> u64 {
        assert!(boundary < self.shared.boundary_count, "boundary {boundary} out of range");
        self.shared.buffers_offset + boundary as u64 * self.boundary_len()
    }

    /// Bytes of one boundary's buffers together.
    pub fn boundary_len(&self) -> u64 {
        self.shared.slot_count as u64 * self.shared.slot_capacity
    }

    /// The boundaries this view reads, in window order, and the one it writes (`None` for the
    /// view of a chain's last boundary, which has no output).
    fn window_boundaries(&self) -> (Vec<u32>, Option<u32>) {
        match &self.node {
            Some(node) => (node.reads.clone(), Some(node.write)),
            None => (vec![self.boundary], Some(self.boundary + 1).filter(|&b| b < self.shared.boundary_count)),
        }
    }

    /// Runner: what this view maps into its plugin's memory, one part after the other, as (offset
    /// in the region, length, writable): each boundary it reads, read-only, then the one it
    /// writes, each [`Region::boundary_len`] bytes. `None` for a view with no output boundary.
    pub fn window_parts(&self) -> Option<Vec<(u64, u64, bool)>> {
        let (reads, write) = self.window_boundaries();
        let write = write?;
        let part = |b: u32, writable| (self.boundary_offset(b), self.boundary_len(), writable);
        Some(reads.into_iter().map(|b| part(b, false)).chain([part(write, true)]).collect())
    }

    /// Runner: where the buffer of `slot` on `boundary` lies in this view's window (see
    /// [`Region::window_parts`]); `None` when the view does not map it, or maps it writable
    /// and `read_only` asks for an input.
    pub fn window_offset(&self, boundary: u32, slot: u32, read_only: bool) -> Option<u64> {
        if slot >= self.shared.slot_count {
            return None;
        }
        let (reads, write) = self.window_boundaries();
        let part = match reads.iter().position(|&b| b == boundary) {
            Some(k) => k,
            None if !read_only && write == Some(boundary) => reads.len(),
            None => return None,
        };
        Some(part as u64 * self.boundary_len() + slot as u64 * self.shared.slot_capacity)
    }

    /// The boundary of `which` buffer as this view sees it.
    fn boundary_of(&self, which: Buffer) -> u32 {
        match (&self.node, which) {
            (Some(node), Buffer::Output) => node.write,
            _ => self.boundary + which as u32,
        }
    }

    /// Offset of a slot buffer from the start of the region: this stage's input boundary or its
    /// output boundary.
    pub fn buffer_offset(&self, slot: u32, which: Buffer) -> u64 {
        assert!(slot < self.shared.slot_count, "slot {slot} out of range");
        self.boundary_offset(self.boundary_of(which)) + slot as u64 * self.shared.slot_capacity
    }

    fn buffer_ptr(&self, slot: u32, which: Buffer, offset: usize, len: usize) -> *mut u8 {
        assert!(offset as u64 + len as u64 <= self.shared.slot_capacity, "access past the slot buffer");
        let start = self.buffer_offset(slot, which) as usize + offset;
        // SAFETY: the range lies within the slot buffer (asserted) and so within the mapping.
        unsafe { self.base().add(start) }
    }

    fn check_lane(&self, lane: &Lane, which: Buffer) {
        assert_eq!(lane.owner, self.owner(), "a lane token used on a region it does not belong to");
        if let Some(boundary) = lane.boundary {
            assert_eq!(boundary, self.boundary_of(which), "a buffer token used for another boundary's buffer");
        }
    }

    /// Host: copies the first `len` bytes of a lane's buffer into `dst` (replacing what it held).
    ///
    /// Buffers are memory a plugin process can write at any time (by breaking the protocol),
    /// so the host never holds a Rust reference to them: it copies out with a raw copy, once,
    /// and works on its own bytes.
    pub fn read_pixels(&self, lane: &Lane, which: Buffer, len: usize, dst: &mut Vec<u8>) {
        self.check_lane(lane, which);
        let src = self.buffer_ptr(lane.slot, which, 0, len);
        dst.clear();
        dst.reserve(len);
        // SAFETY: `src` is valid for `len` bytes (buffer_ptr) and `dst` has room for them after
        // the reserve; the two never overlap (ours vs the mapping). The bytes are plain u8: a
        // concurrent write by the peer can only make them wrong, never invalid.
        unsafe {
            std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), len);
            dst.set_len(len);
        }
    }

    /// Where the metadata area of a slot's buffer starts, from the start of the region.
    fn meta_offset(&self, slot: u32, which: Buffer) -> Option<usize> {
        self.meta_offset_at(self.boundary_of(which), slot)
    }

    fn meta_offset_at(&self, boundary: u32, slot: u32) -> Option<usize> {
        if slot >= self.shared.slot_count || boundary >= self.shared.boundary_count {
            return None;
        }
        let m = &self.shared;
        let areas = m.buffers_offset + m.boundary_count as u64 * m.slot_count as u64 * m.slot_capacity;
        Some((areas + (boundary as u64 * m.slot_count as u64 + slot as u64) * META_AREA) as usize)
    }

    /// Copies the metadata of a slot's buffer into `dst` (cleared first); false when none is
    /// set. Whatever the peer wrote, at most [`plugin_sdk::abi::MAX_META_BYTES`] bytes are read.
    pub fn read_meta(&self, slot: u32, which: Buffer, dst: &mut Vec<u8>) -> bool {
        self.read_meta_at(self.boundary_of(which), slot, dst)
    }

    /// [`Region::read_meta`] of the buffer of `slot` on any `boundary` (a graph node's inputs).
    pub fn read_meta_at(&self, boundary: u32, slot: u32, dst: &mut Vec<u8>) -> bool {
        dst.clear();
        let Some(at) = self.meta_offset_at(boundary, slot) else { return false };
        // SAFETY: the area lies within the mapping (its offset is in range and the mapping's size
        // was checked to hold every area); the length word is 4-aligned (areas and the buffers
        // before them are multiples of 64 bytes) and read once, atomically.
        let len = unsafe { (*(self.base().add(at) as *const AtomicU32)).load(Ordering::Acquire) } as usize;
        if len == 0 || len > plugin_sdk::abi::MAX_META_BYTES {
            return false;
        }
        dst.reserve(len);
        // SAFETY: `len` bytes from byte 64 of the area lie within it (checked above); `dst` has
        // room for them and is the caller's own memory.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base().add(at + 64), dst.as_mut_ptr(), len);
            dst.set_len(len);
        }
        true
    }

    /// Sets the metadata of a slot's buffer (`None`: clears it). Longer bytes than
    /// [`plugin_sdk::abi::MAX_META_BYTES`] are not written; the area is then cleared.
    pub fn write_meta(&self, slot: u32, which: Buffer, bytes: Option<&[u8]>) {
        let Some(at) = self.meta_offset(slot, which) else { return };
        let bytes = bytes.filter(|b| b.len() <= plugin_sdk::abi::MAX_META_BYTES).unwrap_or(&[]);
        // SAFETY: as in `read_meta`: the area lies within the mapping and holds 64 + the
        // maximum bytes; the bytes are the caller's own memory.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base().add(at + 64), bytes.len());
            (*(self.base().add(at) as *const AtomicU32)).store(bytes.len() as u32, Ordering::Release);
        }
    }

    /// Host: copies `src` into the start of a lane's buffer.
    pub fn write_pixels(&self, lane: &mut Lane, which: Buffer, src: &[u8]) {
        self.check_lane(lane, which);
        let dst = self.buffer_ptr(lane.slot, which, 0, src.len());
        // SAFETY: `dst` is valid for `src.len()` bytes (buffer_ptr); `src` is the host's own
        // memory, never the mapping, so they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) }
    }

    /// Host: reads up to `len` bytes from `fd` straight into the start of a lane's buffer (a raw
    /// video source's frame, with no copy in between), until `len` or the end of the input;
    /// returns how many it read.
    pub fn fill_from_fd(
        &self,
        lane: &mut Lane,
        which: Buffer,
        len: usize,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        self.check_lane(lane, which);
        if self.boundary_of(which) >= self.shared.boundary_count {
            return Err(std::io::Error::other("this view of the region has no such buffer"));
        }
        let dst = self.buffer_ptr(lane.slot, which, 0, len);
        // SAFETY: `dst` is valid for `len` bytes (buffer_ptr asserts it lies in the slot buffer).
        unsafe { read_fd(fd.as_raw_fd(), dst, len, Some(crate::sys::signals::stop_requested)) }
    }

    /// Host, pipe transport: reads `len` bytes from the control pipe into the start of a slot's
    /// buffer: first what `reader` has buffered, then straight from its descriptor into the
    /// mapping, with no copy in between. Nothing outside the slot's buffer can be written: `len`
    /// is checked against the slot's capacity first.
    pub fn fill_from_pipe(
        &self,
        slot: u32,
        which: Buffer,
        len: usize,
        reader: &mut std::io::BufReader<File>,
    ) -> std::io::Result<()> {
        use std::io::BufRead;
        use std::os::fd::AsRawFd;
        if slot >= self.shared.slot_count || len as u64 > self.shared.slot_capacity {
            return Err(std::io::Error::other(format!("{len} bytes for slot {slot} do not fit it")));
        }
        if self.boundary_of(which) >= self.shared.boundary_count {
            return Err(std::io::Error::other("this view of the region has no such buffer"));
        }
        let dst = self.buffer_ptr(slot, which, 0, len);
        let buffered = reader.buffer();
        let first = buffered.len().min(len);
        // SAFETY: `dst` is valid for `len` bytes (buffer_ptr, checked above) and `first <= len`;
        // the reader's buffer is our own memory, so the two do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(buffered.as_ptr(), dst, first) };
        reader.consume(first);
        let fd = reader.get_ref().as_raw_fd();
        // SAFETY: `dst + first` is valid for `len - first` bytes (buffer_ptr, checked above).
        let done = first + unsafe { read_fd(fd, dst.add(first), len - first, None) }?;
        if done < len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Host, pipe transport: one `writev` of what is left of `header` and of the first `len`
    /// bytes of a lane's buffer, `sent` bytes of the two already written; returns how many it
    /// wrote. The bytes go from the mapping to the pipe with no copy in user space.
    pub fn write_lane_to_pipe(
        &self,
        lane: &Lane,
        which: Buffer,
        len: usize,
        header: &[u8],
        sent: usize,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        self.check_lane(lane, which);
        let src = self.buffer_ptr(lane.slot, which, 0, len);
        let from_header = sent.min(header.len());
        let from_pixels = (sent - from_header).min(len);
        let iov = [
            libc::iovec {
                iov_base: header[from_header..].as_ptr() as *mut libc::c_void,
                iov_len: header.len() - from_header,
            },
            // SAFETY: `src` is valid for `len` bytes (buffer_ptr) and `from_pixels <= len`.
            libc::iovec { iov_base: unsafe { src.add(from_pixels) }.cast(), iov_len: len - from_pixels },
        ];
        // SAFETY: both vectors describe readable memory for their lengths (our header, the slot
        // buffer); the kernel only reads them.
        let n = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), iov.len() as i32) };
        if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
    }

    /// Host: copies a lane's input buffer into its output buffer (the failure path's one copy,
    /// when a frame passes a stage unchanged).
    pub fn copy_input_to_output(&self, lane: &mut Lane, len: usize) {
        self.check_lane(lane, Buffer::Input);
        self.check_lane(lane, Buffer::Output);
        let src = self.buffer_ptr(lane.slot, Buffer::Input, 0, len);
        let dst = self.buffer_ptr(lane.slot, Buffer::Output, 0, len);
        // SAFETY: both ranges are within the mapping and are the slot's buffers on two distinct
        // boundaries, so they do not overlap; the token is held mutably (see `read_pixels`).
        unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
    }
}

/// Reads from `fd` into `dst` until `len` bytes or the end of the input; returns the count.
/// With `stop`, it waits for input in short polls and gives up (`Interrupted`) once `stop` says
/// so, whichever thread the signal reached: an idle stdin cannot hold a Ctrl-C up.
///
/// # Safety
/// `dst` is valid for writes of `len` bytes, and no Rust reference to them exists meanwhile.
unsafe fn read_fd(
    fd: std::os::fd::RawFd,
    dst: *mut u8,
    len: usize,
    stop: Option<fn() -> bool>,
) -> std::io::Result<usize> {
    let interrupted = || std::io::Error::from(std::io::ErrorKind::Interrupted);
    let mut done = 0;
    while done < len {
        if let Some(stop) = stop {
            loop {
                if stop() {
                    return Err(interrupted());
                }
                // SAFETY: `fd` is open for the duration of this call (the caller's borrow).
                let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let mut fds = [nix::poll::PollFd::new(borrowed, nix::poll::PollFlags::POLLIN)];
                match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
                    Ok(0) | Err(nix::errno::Errno::EINTR) => {}
                    Ok(_) => break,
                    Err(errno) => return Err(errno.into()),
                }
            }
        }
        // SAFETY: the kernel writes at most `len - done` bytes at `dst + done`, within the range
        // this function's contract makes valid.
        let n = unsafe { libc::read(fd, dst.add(done).cast(), len - done) };
        match n {
            0 => break,
            n if n > 0 => done += n as usize,
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(done)
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
        let mut lanes = region.take_lanes();
        region.write_pixels(&mut lanes[1], Buffer::Output, b"abc");
        let mut back = Vec::new();
        region.read_pixels(&lanes[1], Buffer::Output, 3, &mut back);
        assert_eq!(back, b"abc");
        let map = crate::sys::memfd::map_shared(other.file()).unwrap();
        let at = other.buffer_offset(1, Buffer::Output) as usize;
        assert_eq!(&map[at..at + 3], b"abc", "the reopened region sees the same bytes");
    }

    #[test]
    fn pipe_bytes_land_in_their_slot_and_nothing_past_it() {
        use std::io::Write;
        let region = Region::create("test", 2, 4096).unwrap();
        let lanes = region.take_lanes();
        let (reader, mut writer) = std::io::pipe().unwrap();
        let mut reader = std::io::BufReader::new(File::from(std::os::fd::OwnedFd::from(reader)));
        writer.write_all(&[9u8; 4096 + 10]).unwrap();
        region.fill_from_pipe(1, Buffer::Output, 4096, &mut reader).unwrap();
        let mut back = Vec::new();
        region.read_pixels(&lanes[1], Buffer::Output, 4096, &mut back);
        assert!(back.iter().all(|&b| b == 9));
        region.read_pixels(&lanes[0], Buffer::Output, 16, &mut back);
        assert!(back.iter().all(|&b| b == 0), "the other slot is untouched");
        assert!(region.fill_from_pipe(1, Buffer::Output, 4097, &mut reader).is_err(), "past the slot");
        assert!(region.fill_from_pipe(2, Buffer::Output, 1, &mut reader).is_err(), "no such slot");
        let last = region.for_stage(1).unwrap();
        assert!(last.fill_from_pipe(0, Buffer::Output, 1, &mut reader).is_err(), "the last view has no output");
        drop(writer);
        assert!(region.fill_from_pipe(0, Buffer::Output, 11, &mut reader).is_err(), "10 bytes left, then EOF");
    }

    #[test]
    fn a_graph_node_maps_the_boundaries_it_reads_and_the_one_it_writes_only() {
        let region = Region::create_with_workers("test", 5, 5, 2, 4096).unwrap();
        let node = region.for_node(2, NodeBuffers { reads: vec![3, 0], write: 4 }).unwrap();
        let part = |b: u32| (region.for_worker(0, b).unwrap().buffer_offset(0, Buffer::Input), 2 * 4096);
        let parts: Vec<_> = node.window_parts().unwrap();
        assert_eq!(
            parts,
            vec![(part(3).0, part(3).1, false), (part(0).0, part(0).1, false), (part(4).0, part(4).1, true)]
        );
        assert_eq!(node.window_offset(0, 1, true), Some(2 * 4096 + 4096), "boundary 0 is the second part");
        assert_eq!(node.window_offset(4, 1, false), Some(4 * 4096 + 4096), "its output, writable");
        assert_eq!(node.window_offset(4, 1, true), None, "its output is no input");
        assert_eq!(node.window_offset(1, 0, true), None, "a boundary it does not read");
        assert_eq!(node.window_offset(0, 2, true), None, "no such slot");
        assert!(region.for_node(2, NodeBuffers { reads: vec![1], write: 1 }).is_err());
        assert!(region.for_node(2, NodeBuffers { reads: vec![5], write: 1 }).is_err());
        let desc = FrameDesc { data: 0, capacity: 4096, width: 2, height: 2, stride: 8, format: 0, timestamp_us: 7 };
        node.set_inputs(1, &[(3, 0, desc), (0, 1, desc)]);
        let mut inputs = Vec::new();
        region.for_node(2, NodeBuffers { reads: vec![3, 0], write: 4 }).unwrap().inputs(1, &mut inputs);
        assert_eq!(inputs, vec![(3, 0, desc), (0, 1, desc)]);
        let mut tokens = region.take_buffers();
        assert!(region.take_lanes().is_empty(), "tokens are handed out once");
        let view = region.for_worker(4, 1).unwrap();
        view.write_pixels(&mut tokens[1][0], Buffer::Input, b"xy");
        let mut back = Vec::new();
        view.read_pixels(&tokens[1][0], Buffer::Input, 2, &mut back);
        assert_eq!(back, b"xy");
    }

    #[test]
    fn a_stage_output_is_the_next_stage_input_in_place() {
        let region = Region::create_chain("test", 3, 2, 4096).unwrap();
        let views: Vec<Region> = (0..3).map(|k| region.for_stage(k).unwrap()).collect();
        assert!(region.for_stage(3).is_err());
        for k in 0..2 {
            assert_eq!(views[k].buffer_offset(1, Buffer::Output), views[k + 1].buffer_offset(1, Buffer::Input));
            assert_ne!(views[k].buffer_offset(1, Buffer::Input), views[k].buffer_offset(1, Buffer::Output));
        }
        // Each stage has its own control block.
        views[1].state(0).store(5, Ordering::Release);
        assert_eq!(views[0].state(0).load(Ordering::Acquire), 0);
        assert_eq!(views[2].state(0).load(Ordering::Acquire), 0);
        let mut lanes = region.take_lanes();
        assert_eq!(lanes.len(), 2);
        assert!(views[1].take_lanes().is_empty(), "lane tokens exist once per region");
        views[0].write_pixels(&mut lanes[1], Buffer::Output, b"xyz");
        let mut seen = Vec::new();
        views[1].read_pixels(&lanes[1], Buffer::Input, 3, &mut seen);
        assert_eq!(seen, b"xyz");
        views[1].copy_input_to_output(&mut lanes[1], 3);
        views[2].read_pixels(&lanes[1], Buffer::Input, 3, &mut seen);
        assert_eq!(seen, b"xyz");
        // Every boundary is its own buffer: stage 0's input is untouched by all of this.
        views[0].read_pixels(&lanes[1], Buffer::Input, 3, &mut seen);
        assert_eq!(seen, [0, 0, 0]);
        let (input, output) = (views[1].buffer_offset(0, Buffer::Input), views[1].buffer_offset(0, Buffer::Output));
        assert_eq!(views[1].window_parts(), Some(vec![(input, 2 * 4096, false), (output, 2 * 4096, true)]));
        assert_eq!(views[2].window_parts(), None, "the sink's view has no output boundary");
        let reopened = Region::open(region.file().try_clone().unwrap()).unwrap();
        assert_eq!(reopened.stage_count(), 3);
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
