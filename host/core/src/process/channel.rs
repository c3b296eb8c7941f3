//! One spawned plugin process and its control channel: the child, the pipe to it, the thread that
//! reads its messages into a bounded queue, and the waits on that queue with their deadlines.
//! Nothing here knows about frames; it carries messages and says when the process has ended.

use super::error::{ErrorKind, NoAnswer, Violation};
use super::logs::LogLimiter;
use crate::ipc::handoff::{self, Futex};
use crate::ipc::protocol::{self, ToHost, ToRunner};
use crate::ipc::region::{Buffer, Lane, Region};
use crate::sys::process::spawn_runner;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a start-up wait looks at SIGINT/SIGTERM.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Messages (other than logs) a plugin process may have queued before the host reads them;
/// more is a flood and ends the channel.
const EVENT_QUEUE: usize = 64;

/// What the control-reader thread hands over.
pub(super) enum Event {
    Hello([u8; 16]),
    /// A message and the bytes it holds (see [`weight`]), counted against the queue's budget.
    Message(ToHost, usize),
    /// The channel ended: EOF, I/O error or a protocol violation (the reason is kept in
    /// [`Channel::died`]'s status).
    Closed,
}

/// A running plugin process and its control channel.
pub(super) struct Channel {
    child: Option<Child>,
    control: File,
    events: EventQueue,
    /// What the handle and the reader thread share.
    shared: Shared,
    reader: Option<JoinHandle<()>>,
    /// Messages read while waiting for another one (a frame's result that arrived before the
    /// answer to a Stats request), in order, for whoever waits for them next.
    stash: VecDeque<ToHost>,
    /// Loading or creating the instance: SIGINT/SIGTERM end the wait.
    pub(super) starting: bool,
}

/// What the handle and its reader thread share.
#[derive(Clone)]
struct Shared {
    /// Set by the reader thread when the channel has ended.
    gone: Arc<AtomicBool>,
    /// Whether this process's in-flight slots are abandoned when its channel ends (a standby
    /// process holds none).
    active: Arc<AtomicBool>,
    /// Why the control channel ended, once it has.
    closed_because: Arc<Mutex<Option<String>>>,
    /// Pipe transport: per slot, the frame whose bytes the host waits for. The reader writes a
    /// FrameDone's bytes into its slot only when they match, so a process cannot touch a lane it
    /// does not hold at that moment (one a later stage or the sink is reading).
    awaited: Awaited,
}

/// How to start one runner.
pub(super) struct Launch<'a> {
    pub name: &'a str,
    pub program: PathBuf,
    /// Its arguments ([`protocol::runner_args`]).
    pub args: Vec<OsString>,
    /// The region whose descriptor the runner gets, and whose slots are abandoned when the
    /// channel ends.
    pub region: &'a Region,
    /// Largest message accepted from the process.
    pub max_message: usize,
}

impl Channel {
    /// Spawns the runner with its pipes and region and starts reading its messages.
    pub(super) fn open(launch: Launch<'_>) -> io::Result<Self> {
        let runner = spawn_runner(launch.program, launch.args, launch.region.file(), true)?;
        // What the host keeps of unread messages: a reply for every frame in flight, and a
        // couple more; past that, bytes, not only the count, say it is a flood.
        let budget = launch.max_message.saturating_mul(launch.region.slot_count() as usize + 2);
        let (tx, events) = event_queue(budget);
        let shared = Shared {
            gone: Arc::new(AtomicBool::new(false)),
            active: Arc::new(AtomicBool::new(false)),
            closed_because: Arc::new(Mutex::new(None)),
            awaited: Arc::new(Mutex::new(vec![None; launch.region.slot_count() as usize])),
        };
        let reader = start_reader(
            launch.name.to_string(),
            runner.from_runner,
            launch.max_message,
            tx,
            launch.region.clone(),
            shared.clone(),
        );
        Ok(Self {
            child: Some(runner.child),
            control: runner.to_runner,
            events,
            shared,
            reader: Some(reader),
            stash: VecDeque::new(),
            starting: true,
        })
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(super) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the channel has ended (the reader has seen EOF or a violation).
    pub(super) fn is_gone(&self) -> bool {
        self.shared.gone.load(Ordering::SeqCst)
    }

    /// Makes this process the one whose in-flight slots are abandoned when its channel ends.
    pub(super) fn set_active(&self) {
        self.shared.active.store(true, Ordering::SeqCst);
    }

    /// Keeps a message for whoever waits for the next one.
    pub(super) fn stash(&mut self, message: ToHost) {
        self.stash.push_back(message);
    }

    pub(super) fn stashed(&self) -> usize {
        self.stash.len()
    }

    /// Pipe transport: the host now waits for `frame`'s bytes in `slot` (set before it is sent).
    pub(super) fn await_frame(&self, slot: u32, frame: u64) {
        if let Ok(mut awaited) = self.shared.awaited.lock()
            && let Some(entry) = awaited.get_mut(slot as usize)
        {
            *entry = Some(frame);
        }
    }

    /// Pipe transport: `slot`'s frame is no longer awaited (its send failed).
    pub(super) fn forget_frame(&self, slot: u32) {
        if let Ok(mut awaited) = self.shared.awaited.lock()
            && let Some(entry) = awaited.get_mut(slot as usize)
        {
            *entry = None;
        }
    }

    /// Kills the process at once and reaps it.
    pub(super) fn kill(&mut self) {
        // Nothing the dead process left in the pipe may reach a slot.
        if let Ok(mut awaited) = self.shared.awaited.lock() {
            awaited.iter_mut().for_each(|entry| *entry = None);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Waits up to a second for the process to exit by itself (after a Shutdown); kills it
    /// after that. `Ok`: it exited cleanly.
    pub(super) fn wait_exit(&mut self) -> Result<(), ErrorKind> {
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Some(child) = self.child.as_mut() {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {
                    self.child = None;
                }
                Ok(Some(status)) => {
                    self.child = None;
                    return Err(ErrorKind::Died { frame: None, status: status.to_string() });
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                _ => {
                    self.kill();
                    return Err(Violation::DidNotExit.into());
                }
            }
        }
        Ok(())
    }

    /// The control channel ended: reap the process, killing it if it is still running (a
    /// process that closes its channel but lives on is misbehaving, and must never make the
    /// host wait).
    pub(super) fn died(&mut self, frame: Option<u64>) -> ErrorKind {
        let status = match self.child.take() {
            Some(mut child) => {
                let grace = Instant::now() + Duration::from_millis(100);
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break status.to_string(),
                        Ok(None) if Instant::now() < grace => std::thread::sleep(Duration::from_millis(1)),
                        _ => {
                            let _ = child.kill();
                            let status = child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
                            break format!("{status} (killed: its control channel ended while it kept running)");
                        }
                    }
                }
            }
            None => "already reaped".to_string(),
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let status = if status.contains("SIGSYS") {
            format!("{status} (the sandbox killed it: a system call outside its seccomp allowlist)")
        } else {
            status
        };
        let status = match self.shared.closed_because.lock().ok().and_then(|r| r.clone()) {
            Some(reason) => format!("{status}; {reason}"),
            None => status,
        };
        ErrorKind::Died { frame, status }
    }

    pub(super) fn next_event(&mut self, deadline: Instant) -> Result<Event, ErrorKind> {
        let start = Instant::now();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // While it starts, a SIGINT/SIGTERM ends the wait at once; later the run drains.
            let slice = if self.starting { left.min(STOP_POLL) } else { left };
            match self.events.recv_timeout(slice) {
                Ok(Event::Closed) => return Err(self.died(None)),
                Ok(event) => return Ok(event),
                Err(mpsc::RecvTimeoutError::Timeout) if self.starting && crate::sys::signals::stop_requested() => {
                    self.kill();
                    return Err(ErrorKind::Interrupted);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.kill();
                    return Err(NoAnswer::Within(deadline - start).into());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.died(None)),
            }
        }
    }

    /// The next message: a stashed one first.
    pub(super) fn next_message(&mut self, deadline: Instant) -> Result<ToHost, ErrorKind> {
        match self.stash.pop_front() {
            Some(message) => Ok(message),
            None => self.fresh_message(deadline),
        }
    }

    /// The next message from the channel itself.
    pub(super) fn fresh_message(&mut self, deadline: Instant) -> Result<ToHost, ErrorKind> {
        match self.next_event(deadline)? {
            Event::Message(message, _) => Ok(message),
            Event::Hello(_) => Err(Violation::SecondHandshake.into()),
            Event::Closed => Err(self.died(None)),
        }
    }

    /// A frame's answer on the pipe transport: a stashed message first, else the next event;
    /// `None` when the deadline passed (the caller kills and reports the frame).
    pub(super) fn frame_message(&mut self, frame: u64, deadline: Instant) -> Result<Option<ToHost>, ErrorKind> {
        if let Some(message) = self.stash.pop_front() {
            return Ok(Some(message));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(left) {
            Ok(Event::Message(message, _)) => Ok(Some(message)),
            Ok(Event::Hello(_)) => Err(Violation::SecondHandshake.into()),
            Ok(Event::Closed) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.died(Some(frame))),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
        }
    }

    /// Pipe transport: a frame's message and then its bytes, raw, from where they are (the
    /// caller's frame or a lane's buffer), never copied into a message.
    pub(super) fn send_frame(
        &mut self,
        message: &ToRunner,
        pixels: FrameBytes<'_>,
        deadline: Instant,
    ) -> Result<(), ErrorKind> {
        let header = protocol::framed(message).map_err(Violation::Encode)?;
        let total = header.len() + pixels.len();
        let mut sent = 0;
        while sent < total {
            let written = match pixels {
                FrameBytes::Slice(bytes) => {
                    let from_header = sent.min(header.len());
                    let from_bytes = sent - from_header;
                    let slices = [io::IoSlice::new(&header[from_header..]), io::IoSlice::new(&bytes[from_bytes..])];
                    self.control.write_vectored(&slices)
                }
                FrameBytes::Lane { region, lane, len } => {
                    region.write_lane_to_pipe(lane, Buffer::Input, len, &header, sent, self.control.as_fd())
                }
            };
            match written {
                Ok(n) => sent += n,
                Err(e) => self.wait_writable(e, deadline)?,
            }
        }
        Ok(())
    }

    pub(super) fn send_message(&mut self, message: &ToRunner, deadline: Instant) -> Result<(), ErrorKind> {
        let mut framed = Vec::new();
        protocol::write_message(&mut framed, message).map_err(Violation::Encode)?;
        self.send(&framed, deadline)
    }

    /// Writes to the control pipe without ever blocking past `deadline`.
    pub(super) fn send(&mut self, mut bytes: &[u8], deadline: Instant) -> Result<(), ErrorKind> {
        while !bytes.is_empty() {
            match self.control.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) => self.wait_writable(e, deadline)?,
            }
        }
        Ok(())
    }

    /// After a failed write to the control pipe: waits until it takes more (a full pipe), or
    /// says why it never will (deadline passed: killed; pipe broken: the process died).
    fn wait_writable(&mut self, error: io::Error, deadline: Instant) -> Result<(), ErrorKind> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        match error.kind() {
            io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    self.kill();
                    return Err(NoAnswer::StoppedReading.into());
                }
                let timeout =
                    PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(self.control.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, timeout);
                Ok(())
            }
            io::ErrorKind::Interrupted => Ok(()),
            _ => Err(self.died(None)),
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Per slot, the frame whose bytes the host awaits (pipe transport).
type Awaited = Arc<Mutex<Vec<Option<u64>>>>;

/// Where a frame's bytes are sent from, on the pipe transport.
#[derive(Clone, Copy)]
pub(super) enum FrameBytes<'a> {
    /// The caller's own frame.
    Slice(&'a [u8]),
    /// The first `len` bytes of a lane's input buffer in the region (peer-writable memory: never
    /// a Rust reference, the kernel reads it).
    Lane { region: &'a Region, lane: &'a Lane, len: usize },
}

impl FrameBytes<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            FrameBytes::Slice(bytes) => bytes.len(),
            FrameBytes::Lane { len, .. } => *len,
        }
    }
}

/// Reads the runner's messages: logs go to `tracing` under the plugin's name, the rest to the
/// handle. When the channel ends, every in-flight slot is abandoned so no wait lasts longer.
fn start_reader(
    name: String,
    pipe: File,
    max_message: usize,
    events: EventSender,
    region: Region,
    shared: Shared,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut logs = LogLimiter::default();
        let closed = protocol::read_control_channel(
            &mut reader,
            max_message,
            |hello| {
                let _ = events.sender.send(Event::Hello(hello));
            },
            |message, reader| match message {
                ToHost::Log { level, message } => {
                    logs.forward(&name, level, &message);
                    Ok(())
                }
                // Pipe transport: the frame's bytes follow, straight into the slot's output
                // buffer, but only for the frame the host waits for in that slot (taken, so once);
                // the handle checks the rest.
                // A frame that failed is no longer awaited: bytes sent for it afterwards would
                // land in a buffer the host may already have handed on (a passed-through frame).
                ToHost::Failed { frame: Some(failed), .. } => {
                    if let Ok(mut awaited) = shared.awaited.lock() {
                        awaited.iter_mut().filter(|entry| **entry == Some(failed)).for_each(|entry| *entry = None);
                    }
                    events.queue(message)
                }
                ToHost::FrameDone { frame, slot, len, .. } => {
                    let expected =
                        shared.awaited.lock().ok().and_then(|mut a| a.get_mut(slot as usize).and_then(Option::take));
                    if expected != Some(frame) {
                        return Err(format!(
                            "it sent frame {frame} for slot {slot}, which the host was not waiting for"
                        ));
                    }
                    let len = usize::try_from(len).map_err(|_| format!("a frame of {len} bytes"))?;
                    region
                        .fill_from_pipe(slot, Buffer::Output, len, reader)
                        .map_err(|e| format!("its frame's bytes could not be read: {e}"))?;
                    // Over the pipe as through shared memory, the metadata lands beside the frame.
                    if let ToHost::FrameDone { meta: Some(meta), .. } = &message {
                        region.write_meta(slot, Buffer::Output, Some(meta));
                    }
                    events.queue(message)
                }
                message => events.queue(message),
            },
        );
        logs.report_dropped(&name);
        shared.gone.store(true, Ordering::SeqCst);
        for slot in (0..region.slot_count()).filter(|_| shared.active.load(Ordering::SeqCst)) {
            let state = region.state(slot);
            for expected in [handoff::state::SUBMITTED, handoff::state::TAKEN] {
                if state
                    .compare_exchange(expected, handoff::state::ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    handoff::Waiter::wake(&Futex, state);
                }
            }
        }
        if let Ok(mut reason) = shared.closed_because.lock() {
            *reason = Some(closed);
        }
        // Never blocks: a full queue must not keep this thread (and so `died`) waiting.
        let _ = events.sender.try_send(Event::Closed);
    })
}

/// The handle's end of the reader thread's queue: bounded by count and by bytes.
struct EventQueue {
    receiver: mpsc::Receiver<Event>,
    queued_bytes: Arc<AtomicUsize>,
}

/// The reader thread's end.
struct EventSender {
    sender: mpsc::SyncSender<Event>,
    queued_bytes: Arc<AtomicUsize>,
    budget: usize,
}

fn event_queue(budget: usize) -> (EventSender, EventQueue) {
    let (sender, receiver) = mpsc::sync_channel(EVENT_QUEUE);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (EventSender { sender, queued_bytes: Arc::clone(&queued_bytes), budget }, EventQueue { receiver, queued_bytes })
}

/// Bytes a queued message holds (its variable parts, and a little for the rest).
fn weight(message: &ToHost) -> usize {
    64 + match message {
        ToHost::Loaded { description } => description.len(),
        ToHost::Compiled { artifact } => artifact.len(),
        ToHost::Log { message, .. } => message.len(),
        ToHost::Failed { failure, .. } => failure.text_len(),
        ToHost::Snapshot { state } => state.as_ref().map_or(0, |s| s.len()),
        ToHost::Ready { .. }
        | ToHost::Stats { .. }
        | ToHost::Sandboxed { .. }
        | ToHost::FrameDone { .. }
        | ToHost::ParamsSet
        | ToHost::Restored { .. } => 0,
    }
}

impl EventSender {
    /// Queues a message for the handle, or says why the channel must end.
    fn queue(&self, message: ToHost) -> Result<(), String> {
        let bytes = weight(&message);
        let queued = self.queued_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if queued > self.budget {
            return Err(format!("it sent more than {} bytes of messages the host had not asked for", self.budget));
        }
        match self.sender.try_send(Event::Message(message, bytes)) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(_)) => {
                Err(format!("it sent more than {EVENT_QUEUE} messages the host had not asked for"))
            }
            Err(mpsc::TrySendError::Disconnected(_)) => Err("the host closed the handle".into()),
        }
    }
}

impl EventQueue {
    fn recv_timeout(&self, timeout: Duration) -> Result<Event, mpsc::RecvTimeoutError> {
        let event = self.receiver.recv_timeout(timeout)?;
        if let Event::Message(_, bytes) = &event {
            self.queued_bytes.fetch_sub(*bytes, Ordering::SeqCst);
        }
        Ok(event)
    }
}

/// A message's name, for errors (never its untrusted contents in full).
pub(super) fn message_kind(message: &ToHost) -> &'static str {
    match message {
        ToHost::Loaded { .. } => "Loaded",
        ToHost::Ready { .. } => "Ready",
        ToHost::Stats { .. } => "Stats",
        ToHost::FrameDone { .. } => "FrameDone for another frame",
        ToHost::Log { .. } => "Log",
        ToHost::Failed { .. } => "Failed for another frame",
        ToHost::Sandboxed { .. } => "Sandboxed",
        ToHost::Compiled { .. } => "Compiled",
        ToHost::ParamsSet => "ParamsSet",
        ToHost::Snapshot { .. } => "Snapshot",
        ToHost::Restored { .. } => "Restored",
    }
}
