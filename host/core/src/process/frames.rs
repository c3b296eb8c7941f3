//! The frame path: slots and tickets, handing a frame over (by copy into the handle's own lanes,
//! or in place by lane for a chain stage), waiting for it with its deadline, and validating what
//! comes back. Shared memory and the pipe transport differ only here.

use super::PluginProcess;
use super::channel::{FrameBytes, message_kind};
use super::error::{ErrorKind, Misuse, PluginError, Violation};
use super::spec::DEADLINE_GRACE;
use crate::ipc::handoff::{self, Futex, Outcome, WaitError};
use crate::ipc::protocol::{ToHost, ToRunner, Transport};
use crate::ipc::region::{self, Buffer, Lane};
use plugin_sdk::abi::FrameDesc;
use plugin_sdk::{Frame, OwnedFrame, PixelFormat};
use std::time::{Duration, Instant};

/// A submitted frame, to collect with [`PluginProcess::receive`] (or, for a frame submitted with
/// [`PluginProcess::submit_lane`], [`PluginProcess::receive_lane`]). It holds the frame's lane.
#[derive(Debug)]
#[must_use]
pub struct Ticket {
    handed: BandTicket,
    lane: Lane,
    /// The lane belongs to the handle's own pool (frames submitted by copy).
    pooled: bool,
}

impl Ticket {
    /// Time since the frame was submitted.
    pub fn age(&self) -> Duration {
        self.handed.submitted.elapsed()
    }

    /// The frame's number in the stream (see [`PluginProcess::submit_numbered`]).
    pub fn frame(&self) -> u64 {
        self.handed.frame
    }

    pub fn submitted(&self) -> Instant {
        self.handed.submitted
    }
}

/// A frame (or a band of it) handed over from a lane the caller keeps
/// ([`PluginProcess::submit_band`]); collect it with [`PluginProcess::receive_band`].
#[derive(Debug)]
#[must_use]
pub struct BandTicket {
    /// Which process of which `PluginProcess` issued it.
    owner: u64,
    slot: u32,
    frame: u64,
    submitted: Instant,
}

impl BandTicket {
    pub fn frame(&self) -> u64 {
        self.frame
    }

    pub fn submitted(&self) -> Instant {
        self.submitted
    }
}

/// Which slots hold a frame in flight, and the handle's own lanes.
pub(super) struct Slots {
    in_flight: Vec<bool>,
    /// Lanes for frames handed over by copy ([`PluginProcess::submit`]); empty for a stage of a
    /// chain, whose lanes the caller owns.
    pool: Vec<Option<Lane>>,
    next_slot: u32,
    next_frame: u64,
    /// Tells this process's tickets from others' (a new one after every restart).
    serial: u64,
    /// When the host last saw a frame of this process finish (or the process start).
    last_done: Instant,
}

impl Slots {
    pub(super) fn new(slots: usize) -> Self {
        Self {
            in_flight: vec![false; slots],
            pool: Vec::new(),
            next_slot: 0,
            next_frame: 1,
            serial: next_serial(),
            last_done: Instant::now(),
        }
    }

    pub(super) fn own_lanes(&mut self, lanes: Vec<Lane>) {
        self.pool = lanes.into_iter().map(Some).collect();
    }

    /// A new process: nothing in flight, earlier tickets void.
    pub(super) fn renew(&mut self) {
        self.in_flight.iter_mut().for_each(|f| *f = false);
        self.serial = next_serial();
        self.last_done = Instant::now();
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.iter().filter(|&&f| f).count()
    }
}

impl PluginProcess {
    /// Hands one frame to the plugin and waits for the result.
    pub fn process(&mut self, input: &OwnedFrame) -> Result<OwnedFrame, PluginError> {
        let mut output = OwnedFrame::new(0, 0, input.format);
        let ticket = self.submit(&input.view())?;
        self.receive(ticket, &mut output)?;
        Ok(output)
    }

    /// Copies `input` into a free slot and hands it over. Up to the slot count of frames may be
    /// in flight; receive them in the order submitted.
    pub fn submit(&mut self, input: &Frame<'_>) -> Result<Ticket, PluginError> {
        self.submit_numbered(input, self.slots.next_frame)
    }

    /// Like [`PluginProcess::submit`], with the frame's number in the caller's stream, which
    /// every message about the frame uses.
    pub fn submit_numbered(&mut self, input: &Frame<'_>, frame: u64) -> Result<Ticket, PluginError> {
        self.check_running()?;
        // A Frame can be built without checks (OwnedFrame's fields are public): check it here.
        Frame::new(input.data(), input.width(), input.height(), input.stride(), input.format(), input.timestamp_us())
            .map_err(|e| self.error(ErrorKind::BadFrame(e.0)))?;
        let desc = FrameDesc {
            data: 0,
            capacity: self.frame_capacity as u32,
            width: input.width(),
            height: input.height(),
            stride: input.stride(),
            format: input.format() as u32,
            timestamp_us: input.timestamp_us(),
        };
        let bytes = self.check_input(&desc)? as usize;
        let slot = self.slots.next_slot;
        let Some(mut lane) = self.slots.pool.get_mut(slot as usize).and_then(Option::take) else {
            let misuse = match self.slots.pool.len() {
                0 => Misuse::SubmitToStage,
                slots => Misuse::AllSlotsInFlight(slots),
            };
            return Err(self.error(misuse.into()));
        };
        let pixels = &input.data()[..bytes];
        self.region.write_meta(slot, Buffer::Input, input.metadata().encode().as_deref());
        self.region.write_meta(slot, Buffer::Output, None);
        let result = match self.spec.transport {
            Transport::SharedMemory => {
                self.region.write_pixels(&mut lane, Buffer::Input, pixels);
                self.hand_over(&lane, frame, &desc, None, None)
            }
            Transport::Pipe => self.hand_over(&lane, frame, &desc, None, Some(PipeSource::Caller(pixels))),
        };
        match result {
            Ok(handed) => {
                self.slots.next_slot = (slot + 1) % self.slots.pool.len() as u32;
                Ok(Ticket { handed, lane, pooled: true })
            }
            Err(error) => {
                self.slots.pool[slot as usize] = Some(lane);
                Err(error)
            }
        }
    }

    /// Hands over a frame that is already in `lane`'s input buffer (written there by the caller
    /// or, in place, by the previous stage of the chain). `input` describes it (`data` 0). On
    /// error the lane comes back with it.
    pub fn submit_lane(
        &mut self,
        lane: Lane,
        frame: u64,
        input: &FrameDesc,
    ) -> Result<Ticket, Box<(PluginError, Lane)>> {
        if let Err(error) = self.check_running() {
            return Err(Box::new((error, lane)));
        }
        let desc = FrameDesc { data: 0, capacity: self.frame_capacity as u32, ..*input };
        let bytes = match self.check_input(&desc) {
            Ok(bytes) => bytes as usize,
            Err(error) => return Err(Box::new((error, lane))),
        };
        let source = match self.spec.transport {
            Transport::SharedMemory => None,
            Transport::Pipe => Some(PipeSource::Lane(bytes)),
        };
        match self.hand_over(&lane, frame, &desc, None, source) {
            Ok(handed) => Ok(Ticket { handed, lane, pooled: false }),
            Err(error) => Err(Box::new((error, lane))),
        }
    }

    /// Hands over output rows `rows` of a frame already in `lane`'s input buffer, which the
    /// caller keeps: one worker's band when a stage runs as several processes on one frame
    /// ([`PluginProcess::spawn_worker`]); all rows make it a whole frame, on either transport. A
    /// band needs shared memory and a plugin that works on bands ([`PluginProcess::band_context`]).
    pub fn submit_band(
        &mut self,
        lane: &Lane,
        frame: u64,
        input: &FrameDesc,
        rows: std::ops::Range<u32>,
    ) -> Result<BandTicket, PluginError> {
        self.check_running()?;
        let desc = FrameDesc { data: 0, capacity: self.frame_capacity as u32, ..*input };
        let bytes = self.check_input(&desc)? as usize;
        let band = match (rows.start == 0 && rows.end >= desc.height, self.spec.transport) {
            (true, Transport::SharedMemory) => None,
            (true, Transport::Pipe) => return self.hand_over(lane, frame, &desc, None, Some(PipeSource::Lane(bytes))),
            (false, Transport::Pipe) => return Err(self.error(Misuse::BandOnPipe.into())),
            (false, Transport::SharedMemory) if self.band_context().is_none() => {
                return Err(self.error(Misuse::WholeFramesOnly.into()));
            }
            (false, Transport::SharedMemory) if rows.start >= rows.end || rows.end > desc.height => {
                return Err(self.error(Misuse::BadBand(rows).into()));
            }
            (false, Transport::SharedMemory) => Some((rows.start, rows.end - rows.start)),
        };
        self.hand_over(lane, frame, &desc, band, None)
    }

    /// Graph node ([`crate::ipc::region::Region::for_node`]): hands over frame `frame` made of
    /// `inputs`, (boundary, slot, descriptor) each in the plugin's order, all in buffers the
    /// node reads, its output to go to `slot` of the boundary it writes. The caller keeps every
    /// one of those buffers unchanged, and the output one unread, until the frame is collected
    /// with [`PluginProcess::receive_band`].
    pub fn submit_node(
        &mut self,
        slot: u32,
        frame: u64,
        inputs: &[(u32, u32, FrameDesc)],
    ) -> Result<BandTicket, PluginError> {
        self.check_running()?;
        if self.region.node().is_none() || self.spec.transport != Transport::SharedMemory {
            return Err(self.error(Misuse::NotANode.into()));
        }
        if inputs.is_empty() || inputs.len() > region::MAX_INPUTS {
            return Err(self.error(Misuse::InputCount(inputs.len()).into()));
        }
        if slot >= self.region.slot_count() {
            return Err(self.error(Misuse::NoSuchSlot(slot).into()));
        }
        let mut checked = Vec::with_capacity(inputs.len());
        for &(boundary, buffer, desc) in inputs {
            let desc = FrameDesc { data: 0, capacity: self.frame_capacity as u32, ..desc };
            self.check_input(&desc)?;
            checked.push((boundary, buffer, desc));
        }
        self.region.set_inputs(slot, &checked);
        self.ring(slot, frame, &checked[0].2, None)
    }

    /// Checks a frame against the plugin's formats and capacity; returns its length in bytes.
    fn check_input(&self, desc: &FrameDesc) -> Result<u64, PluginError> {
        let format = desc.validate().map_err(|why| self.error(ErrorKind::BadFrame(why.to_string())))?;
        if !self.description().accepts(format) {
            let accepted = self.description().formats.join(", ");
            return Err(self.error(ErrorKind::Format { given: format.name(), accepted }));
        }
        let bytes = desc.byte_len();
        if bytes > self.frame_capacity {
            let (width, height, capacity) = (desc.width, desc.height, self.frame_capacity);
            return Err(self.error(ErrorKind::TooLarge { width, height, format: format.name(), bytes, capacity }));
        }
        Ok(bytes)
    }

    /// Hands the frame in `lane` over; `band` (first row, rows) asks for part of its output.
    fn hand_over(
        &mut self,
        lane: &Lane,
        frame: u64,
        desc: &FrameDesc,
        band: Option<(u32, u32)>,
        pipe: Option<PipeSource<'_>>,
    ) -> Result<BandTicket, PluginError> {
        let slot = lane.slot();
        let Some(source) = pipe else { return self.ring(slot, frame, desc, band) };
        // The frame's time starts here, before a pipe transport's send, which counts against it.
        let submitted = Instant::now();
        if self.slots.in_flight[slot as usize] {
            return Err(self.error(Misuse::SlotInFlight(slot).into()));
        }
        {
            {
                let bytes = match source {
                    PipeSource::Caller(bytes) => FrameBytes::Slice(bytes),
                    PipeSource::Lane(len) => FrameBytes::Lane { region: &self.region, lane, len },
                };
                let mut meta = Vec::new();
                self.region.read_meta(slot, Buffer::Input, &mut meta);
                let message = ToRunner::Frame { frame, slot, desc: desc.to_bytes(), len: bytes.len() as u64, meta };
                let deadline = submitted + self.spec.limits.deadline + DEADLINE_GRACE;
                self.current.channel.await_frame(slot, frame);
                if let Err(kind) = self.current.channel.send_frame(&message, bytes, deadline) {
                    self.current.channel.forget_frame(slot);
                    return Err(self.error(kind));
                }
            }
        }
        self.slots.in_flight[slot as usize] = true;
        self.slots.next_frame = frame + 1;
        Ok(BandTicket { owner: self.slots.serial, slot, frame, submitted })
    }

    /// Shared memory: puts the frame's descriptor, band and number in `slot`'s control and
    /// rings the runner's doorbell.
    fn ring(
        &mut self,
        slot: u32,
        frame: u64,
        desc: &FrameDesc,
        band: Option<(u32, u32)>,
    ) -> Result<BandTicket, PluginError> {
        let submitted = Instant::now();
        if self.slots.in_flight[slot as usize] {
            return Err(self.error(Misuse::SlotInFlight(slot).into()));
        }
        self.region.write_desc(slot, Buffer::Input, desc);
        let (first, rows) = band.unwrap_or((0, 0));
        self.region.set_band(slot, first, rows);
        self.region.set_frame_number(slot, frame);
        handoff::submit(&Futex, self.region.state(slot), self.region.doorbell());
        // Pairs with the reader's store of `gone` before it scans the slots: one of the two
        // sides sees the other.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        if self.current.channel.is_gone() {
            // The reader may have scanned the slots before this submit: end our own wait.
            handoff::abandon(&Futex, self.region.state(slot));
        }
        self.slots.in_flight[slot as usize] = true;
        self.slots.next_frame = frame + 1;
        Ok(BandTicket { owner: self.slots.serial, slot, frame, submitted })
    }

    /// Waits for a frame submitted with [`PluginProcess::submit`] and copies the validated result
    /// into `output`.
    pub fn receive(&mut self, ticket: Ticket, output: &mut OwnedFrame) -> Result<(), PluginError> {
        if !ticket.pooled {
            return Err(self.error(Misuse::LaneTicket.into()));
        }
        let Ticket { handed, lane, .. } = ticket;
        let result = self.wait(handed);
        self.count_snapshot(&result);
        if let Ok((desc, format)) = &result {
            self.region.read_pixels(&lane, Buffer::Output, desc.byte_len() as usize, &mut output.data);
            set_shape(output, desc, *format);
            // The plugin's metadata when it set some that decodes, else its input's.
            let mut bytes = Vec::new();
            let (mut input, mut set) = (Vec::new(), None);
            if self.region.read_meta(lane.slot(), Buffer::Output, &mut bytes) {
                set = plugin_sdk::FrameMeta::decode(&bytes);
            }
            self.region.read_meta(lane.slot(), Buffer::Input, &mut input);
            output.meta = set.or_else(|| plugin_sdk::FrameMeta::decode(&input)).unwrap_or_default();
        }
        let slot = lane.slot() as usize;
        self.slots.pool[slot] = Some(lane);
        result.map(|_| ())
    }

    /// Waits for a frame submitted with [`PluginProcess::submit_lane`]. On success the result is
    /// in the lane's output buffer (which is the next stage's input buffer), described by the
    /// returned, validated descriptor. The lane always comes back.
    pub fn receive_lane(&mut self, ticket: Ticket) -> (Lane, Result<FrameDesc, PluginError>) {
        let Ticket { handed, lane, .. } = ticket;
        (lane, self.receive_band(handed))
    }

    /// Waits for a frame or band submitted with [`PluginProcess::submit_band`]; on success its
    /// rows are in the lane's output buffer, whose validated descriptor this returns.
    pub fn receive_band(&mut self, ticket: BandTicket) -> Result<FrameDesc, PluginError> {
        let result = self.wait(ticket);
        self.count_snapshot(&result);
        result.map(|(desc, _)| desc)
    }

    /// A frame processed from a snapshot of its input cost the runner one copy.
    fn count_snapshot<T, E>(&mut self, result: &Result<T, E>) {
        if result.is_ok() && self.spec.snapshot_input && self.spec.transport == Transport::SharedMemory {
            self.copies += 1;
        }
    }

    fn wait(&mut self, ticket: BandTicket) -> Result<(FrameDesc, PixelFormat), PluginError> {
        let BandTicket { owner, slot, frame, submitted } = ticket;
        if owner != self.slots.serial || !self.slots.in_flight.get(slot as usize).is_some_and(|&f| f) {
            let kind = match self.current.channel.is_running() {
                false => ErrorKind::NotRunning,
                true => Misuse::ForeignTicket.into(),
            };
            return Err(self.error(kind));
        }
        // The runner takes frames in order: this one could start no earlier than the previous
        // one was seen done, so time queued behind it does not count against the plugin.
        let deadline = submitted.max(self.slots.last_done) + self.spec.limits.deadline + DEADLINE_GRACE;
        self.slots.in_flight[slot as usize] = false;
        let result = match self.spec.transport {
            // The bytes are already in the slot's output buffer (the reader put them there).
            Transport::Pipe => self.receive_message(frame, slot, deadline),
            Transport::SharedMemory => {
                let result = match handoff::wait_outcome(&Futex, self.region.state(slot), deadline) {
                    Ok(Outcome::Done) => self.validate_output(slot).inspect_err(|_| self.kill()),
                    Ok(Outcome::Failed) => Err(self.failure_of(frame)),
                    Err(WaitError::TimedOut) => {
                        self.kill();
                        Err(ErrorKind::Deadline { frame, deadline: self.spec.limits.deadline })
                    }
                    Err(WaitError::Abandoned) => Err(self.current.channel.died(Some(frame))),
                    Err(state @ WaitError::BadState(_)) => {
                        self.kill();
                        Err(Violation::SlotState { frame, state }.into())
                    }
                };
                handoff::reclaim(self.region.state(slot));
                result
            }
        };
        self.slots.last_done = Instant::now();
        result.map_err(|kind| self.error(kind))
    }

    /// The output descriptor, copied out once and checked: the frame must start at the buffer's
    /// start (the next stage reads it there) and fit in it.
    fn validate_output(&self, slot: u32) -> Result<(FrameDesc, PixelFormat), ErrorKind> {
        let desc = self.region.read_desc(slot, Buffer::Output);
        let format = region::validate_output(&desc, self.region.slot_capacity())
            .and_then(|format| if desc.data == 0 { Ok(format) } else { Err("the frame does not start at its buffer") })
            .map_err(Violation::OutputDescriptor)?;
        Ok((FrameDesc { capacity: self.frame_capacity as u32, ..desc }, format))
    }

    /// Pipe transport: waits for the frame's message; its bytes are in the slot's output buffer.
    fn receive_message(
        &mut self,
        frame: u64,
        slot: u32,
        deadline: Instant,
    ) -> Result<(FrameDesc, PixelFormat), ErrorKind> {
        let Some(message) = self.current.channel.frame_message(frame, deadline)? else {
            self.kill();
            return Err(ErrorKind::Deadline { frame, deadline: self.spec.limits.deadline });
        };
        match message {
            ToHost::FrameDone { frame: done, slot: done_slot, desc, len, .. } if done == frame => {
                let desc = FrameDesc::from_bytes(&desc);
                let format = region::validate_output(&desc, self.frame_capacity)
                    .ok()
                    .filter(|_| desc.data == 0 && len == desc.byte_len() && done_slot == slot)
                    .ok_or_else(|| {
                        self.kill();
                        Violation::FrameMismatch { frame }
                    })?;
                Ok((FrameDesc { capacity: self.frame_capacity as u32, ..desc }, format))
            }
            ToHost::Failed { frame: Some(f), failure } if f == frame => Err(ErrorKind::Frame { frame, failure }),
            other => {
                self.kill();
                Err(Violation::UnexpectedForFrame { frame, got: message_kind(&other) }.into())
            }
        }
    }

    /// The runner sends the reason before it marks the slot failed; collect it.
    fn failure_of(&mut self, frame: u64) -> ErrorKind {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.current.channel.next_message(deadline) {
                Ok(ToHost::Failed { frame: Some(f), failure }) if f == frame => {
                    return ErrorKind::Frame { frame, failure };
                }
                Ok(_) => continue,
                Err(kind) => return kind,
            }
        }
    }
}

fn next_serial() -> u64 {
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Where a frame's bytes come from on the pipe transport.
enum PipeSource<'a> {
    /// The caller's frame ([`PluginProcess::submit`]).
    Caller(&'a [u8]),
    /// The first so many bytes of the lane's input buffer ([`PluginProcess::submit_lane`]).
    Lane(usize),
}

/// Gives `output` the shape of a validated descriptor.
fn set_shape(output: &mut OwnedFrame, desc: &FrameDesc, format: PixelFormat) {
    output.width = desc.width;
    output.height = desc.height;
    output.stride = desc.stride;
    output.format = format;
    output.timestamp_us = desc.timestamp_us;
}
