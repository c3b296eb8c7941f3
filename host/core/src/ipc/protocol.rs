//! The control channel: postcard-encoded messages over a pipe each way, each framed by a
//! little-endian `u32` length with a hard cap checked before anything is allocated. A connection
//! starts with a fixed 16-byte handshake (magic, lowest and highest protocol version) from each
//! side, so that a mismatch is a clear error rather than a decoding failure.

use crate::text::PluginText;
use plugin_sdk::abi::FRAME_DESC_SIZE;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

pub const MAGIC: [u8; 8] = *b"PLGHOST\x01";
/// 2: frames by lane (`Load` names the chain stage); 3: the runner reports its sandbox
/// ([`ToHost::Sandboxed`]) before it is sent the module; 4: `Stats` counts the runner's page
/// faults; 5: untrusted modules are compiled in a sandboxed runner ([`ToRunner::Compile`]),
/// never in the host; 6: on the pipe transport a frame's bytes follow its message raw
/// ([`write_message_with_bytes`]), written from and read into their buffers directly; 7: a stage
/// may run as several workers (`Load` names the input boundary apart from the control block,
/// `Ready` says whether the plugin works on bands).
/// 8: `Init` gives the input's shape and `Ready` the output's it declares; frames on the pipe
/// carry their metadata; parameters change while running (`SetParams`).
/// 9: graph nodes (`Load` may name the boundaries a node reads and writes, `Init` the shapes of
/// its other inputs). 10: a plugin's state as bytes (`Snapshot`, `Restore`).
pub const PROTOCOL_VERSION: u32 = 10;
pub const MIN_PROTOCOL_VERSION: u32 = 10;

/// The first argument that puts a binary in runner mode (see `runner::run_if_requested`); the
/// runner then finds its channel and region on descriptors 3, 4 and 5 (`sys::process`).
pub const RUNNER_ARG: &str = "__plugin-host-runner";

/// A runner's arguments: [`RUNNER_ARG`], then the sandbox policy it must apply.
pub fn runner_args(policy: &crate::sys::sandbox::Policy) -> Vec<std::ffi::OsString> {
    let mut args = vec![RUNNER_ARG.into()];
    args.extend(policy.to_args());
    args
}

/// Largest message the host accepts from a plugin process.
pub const MAX_TO_HOST_BYTES: usize = 1 << 20;
/// Largest message a runner accepts from the host (it carries the module).
pub const MAX_TO_RUNNER_BYTES: usize = 512 << 20;

/// Limits the runner enforces inside the plugin process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerLimits {
    /// Cap on the plugin's linear memory.
    pub memory_bytes: u64,
    /// Per-frame deadline enforced with epoch interruption.
    pub deadline_ms: u64,
    /// Deadline for creating the instance (`plugin_init`).
    pub startup_ms: u64,
    /// Copy each input frame into the plugin's private memory before `process` (shared-memory
    /// transport), so that the previous stage cannot change it while the plugin reads it.
    pub snapshot_input: bool,
}

/// How frames travel between host and runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Transport {
    /// Through the shared region, mapped into the plugin's linear memory: no copies.
    #[default]
    SharedMemory,
    /// As messages on the control pipes: the classic message-passing method, and the baseline.
    Pipe,
}

/// Host → runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToRunner {
    /// Compile and instantiate the module; answered by [`ToHost::Loaded`].
    Load {
        plugin: String,
        /// The module: compiled by a compiler runner (`precompiled`), or wasm bytes.
        #[serde(with = "serde_bytes")]
        module: Vec<u8>,
        precompiled: bool,
        limits: RunnerLimits,
        transport: Transport,
        /// Largest frame in bytes (for the pipe transport; the region says it for shared memory).
        frame_capacity: u64,
        /// The runner's control block in the region.
        stage: u32,
        /// Which of each slot's buffers it reads (it writes the next boundary's).
        boundary: u32,
        /// A graph node: the boundaries it reads and writes instead (`boundary` is then the
        /// first it reads), and each frame names its input buffers (`Region::set_inputs`).
        node: Option<crate::ipc::region::NodeBuffers>,
    },
    /// Compile the module (wasm bytes) for the runners' engine; answered by
    /// [`ToHost::Compiled`], after which the runner exits. The host never parses or compiles an
    /// untrusted module itself: this runner does it inside its sandbox and memory limit.
    Compile {
        #[serde(with = "serde_bytes")]
        module: Vec<u8>,
    },
    /// Pipe transport: one frame, in `slot`; `desc` is a `FrameDesc` with `data` 0. Its `len`
    /// bytes follow the message on the pipe, raw.
    /// `meta`: the frame's encoded metadata (empty: none).
    Frame {
        frame: u64,
        slot: u32,
        desc: [u8; FRAME_DESC_SIZE],
        len: u64,
        #[serde(with = "serde_bytes")]
        meta: Vec<u8>,
    },
    /// Create the plugin instance with ABI-encoded parameters; answered by [`ToHost::Ready`].
    /// `input`: the shape (a `FrameDesc`, `data` and `capacity` 0) of the frames it will get,
    /// for which `Ready` says the output's.
    /// `others`: the shapes of a graph node's other inputs, in order.
    Init { params: Vec<u8>, input: Option<[u8; FRAME_DESC_SIZE]>, others: Vec<[u8; FRAME_DESC_SIZE]> },
    /// Between frames (none in flight): take these ABI-encoded parameters, through
    /// `plugin_set_params` or, without it, a fresh instance; answered by [`ToHost::ParamsSet`]
    /// or [`ToHost::Failed`] (the old values then stay).
    SetParams { params: Vec<u8> },
    /// Between frames: the instance's state (`plugin_snapshot`); answered by
    /// [`ToHost::Snapshot`].
    Snapshot,
    /// Right after a start: take this state (`plugin_restore`); answered by
    /// [`ToHost::Restored`], or [`ToHost::Failed`] (the instance is then made afresh).
    Restore {
        #[serde(with = "serde_bytes")]
        state: Vec<u8>,
    },
    /// Report [`ToHost::Stats`].
    Stats,
    /// Exit cleanly.
    Shutdown,
}

/// Runner → host. Everything in here is untrusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToHost {
    /// The module loaded; its ABI description JSON.
    Loaded { description: String },
    /// The instance is created; frames may flow. `band_context`: the rows of context a band
    /// reads, when the plugin can work on bands of a frame (`None`: whole frames only).
    /// `output`: for `Init`'s `input`, the shape the plugin declares its output frames have.
    Ready { band_context: Option<u32>, output: Option<[u8; FRAME_DESC_SIZE]> },
    /// Pipe transport: the processed frame of `slot`; its `len` bytes follow the message on the
    /// pipe, raw (the host reads them straight into the slot's output buffer).
    /// `meta`: the output's encoded metadata, when the plugin set it.
    FrameDone { frame: u64, slot: u32, desc: [u8; FRAME_DESC_SIZE], len: u64, meta: Option<Vec<u8>> },
    /// The answer to [`ToRunner::Compile`]: the compiled module. Native code made from an
    /// untrusted module by a sandboxed process: the host only stores it (authenticated) and
    /// hands it to runners with the same sandbox; it never loads it itself.
    Compiled {
        #[serde(with = "serde_bytes")]
        artifact: Vec<u8>,
    },
    /// The answer to [`ToRunner::SetParams`]: the new parameters are in use.
    ParamsSet,
    /// The answer to [`ToRunner::Snapshot`]: the state, or `None` when the plugin keeps none.
    Snapshot { state: Option<serde_bytes::ByteBuf> },
    /// The answer to [`ToRunner::Restore`]: whether the plugin took the state (false: it has
    /// no `plugin_restore`).
    Restored { taken: bool },
    /// Counters of the plugin process, on request.
    Stats { frames: u64, minor_faults: u64 },
    /// A log line from the plugin.
    Log { level: i32, message: String },
    /// Something failed; `frame` is set when it happened while processing that frame.
    Failed { frame: Option<u64>, failure: Failure },
    /// Right after the handshake, before the module is sent: the sandbox layers this process
    /// got. Sent before any untrusted byte has been read, so the host may act on it (a
    /// `strict` plugin is refused here, before its module runs anywhere).
    Sandboxed { report: crate::sys::sandbox::Report },
}

/// What went wrong inside the plugin process. Every text in here is the plugin process's word:
/// [`PluginText`], shown escaped and cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Failure {
    /// The module is not a usable plugin (does not compile, lacks exports, wrong ABI version).
    Load(PluginText),
    /// The plugin returned an error status with this message.
    Plugin(PluginText),
    /// The wasm code trapped.
    Trap { trap: PluginText, backtrace: PluginText },
    /// The frame missed its deadline (epoch interruption).
    Deadline,
    /// The plugin wanted more memory than its limit.
    MemoryLimit(PluginText),
    /// The host broke the protocol (a runner-side view).
    Protocol(PluginText),
    /// The runner could not apply its OS sandbox; it reads nothing more and exits.
    Sandbox(PluginText),
}

impl Failure {
    /// Bytes of the plugin's text it carries (before any escaping).
    pub fn text_len(&self) -> usize {
        match self {
            Failure::Trap { trap, backtrace } => trap.raw().len() + backtrace.raw().len(),
            Failure::Load(m) | Failure::Plugin(m) | Failure::MemoryLimit(m) | Failure::Protocol(m) => m.raw().len(),
            Failure::Sandbox(m) => m.raw().len(),
            Failure::Deadline => 0,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Load(m) => write!(f, "cannot load: {m}"),
            Failure::Plugin(m) => write!(f, "plugin error: {m}"),
            // One line: the backtrace's own line breaks are escaped like any other.
            Failure::Trap { trap, backtrace } => write!(f, "{trap}; {backtrace}"),
            Failure::Deadline => write!(f, "missed its deadline"),
            Failure::MemoryLimit(m) => write!(f, "memory limit: {m}"),
            Failure::Protocol(m) => write!(f, "protocol violation: {m}"),
            Failure::Sandbox(m) => write!(f, "its OS sandbox could not be applied: {m}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the other side closed the control channel")]
    Closed,
    #[error("control channel I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("a message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("malformed message: {0} bytes after its end")]
    Trailing(usize),
    #[error("the channel closed inside a {0}-byte message")]
    Truncated(usize),
    #[error("the other side is not a plugin-host peer (bad handshake magic {0:02x?})")]
    BadMagic([u8; 8]),
    #[error(
        "protocol versions do not overlap: this side speaks {ours_min}..={ours}, the other side {theirs_min}..={theirs}"
    )]
    VersionMismatch { ours_min: u32, ours: u32, theirs_min: u32, theirs: u32 },
}

/// The 16-byte handshake each side sends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub magic: [u8; 8],
    pub min_version: u32,
    pub version: u32,
}

impl Hello {
    pub const OURS: Hello = Hello { magic: MAGIC, min_version: MIN_PROTOCOL_VERSION, version: PROTOCOL_VERSION };

    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.magic);
        out[8..12].copy_from_slice(&self.min_version.to_le_bytes());
        out[12..].copy_from_slice(&self.version.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&bytes[..8]);
        Hello { magic, min_version: word(8), version: word(12) }
    }

    /// The version both sides speak, the highest they share.
    pub fn negotiate(self, theirs: Hello) -> Result<u32, ProtocolError> {
        if theirs.magic != MAGIC {
            return Err(ProtocolError::BadMagic(theirs.magic));
        }
        let version = self.version.min(theirs.version);
        if version < self.min_version.max(theirs.min_version) {
            return Err(ProtocolError::VersionMismatch {
                ours_min: self.min_version,
                ours: self.version,
                theirs_min: theirs.min_version,
                theirs: theirs.version,
            });
        }
        Ok(version)
    }
}

/// Sends our hello, reads the peer's, and returns the agreed version.
pub fn handshake(ours: Hello, reader: &mut impl Read, writer: &mut impl Write) -> Result<u32, ProtocolError> {
    writer.write_all(&ours.to_bytes()).map_err(closed_or_io)?;
    writer.flush().map_err(closed_or_io)?;
    let mut bytes = [0u8; 16];
    reader.read_exact(&mut bytes).map_err(closed_or_io)?;
    ours.negotiate(Hello::from_bytes(bytes))
}

fn closed_or_io(err: io::Error) -> ProtocolError {
    match err.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => ProtocolError::Closed,
        _ => ProtocolError::Io(err),
    }
}

/// One message, encoded and framed (its length first), ready to write.
pub fn framed<T: Serialize>(message: &T) -> Result<Vec<u8>, ProtocolError> {
    let payload = postcard::to_stdvec(message)?;
    let len = u32::try_from(payload.len())
        .map_err(|_| ProtocolError::TooLarge { len: payload.len(), max: u32::MAX as usize })?;
    let mut framed = Vec::with_capacity(payload.len() + 4);
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(&payload);
    Ok(framed)
}

/// Writes one framed message.
pub fn write_message<T: Serialize>(writer: &mut impl Write, message: &T) -> Result<(), ProtocolError> {
    writer.write_all(&framed(message)?).map_err(closed_or_io)?;
    writer.flush().map_err(closed_or_io)
}

/// Writes one framed message followed by `bytes`, raw, gathered into as few `writev` calls as
/// the pipe takes: the bytes are written from where they are, never copied into a message.
pub fn write_message_with_bytes<T: Serialize>(
    writer: &mut impl Write,
    message: &T,
    bytes: &[u8],
) -> Result<(), ProtocolError> {
    let header = framed(message)?;
    let mut slices = [io::IoSlice::new(&header), io::IoSlice::new(bytes)];
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match writer.write_vectored(slices) {
            Ok(0) => return Err(ProtocolError::Closed),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(closed_or_io(e)),
        }
    }
    writer.flush().map_err(closed_or_io)
}

/// Reads one framed message of at most `max` bytes; the length is checked before allocating.
pub fn read_message<T: for<'de> Deserialize<'de>>(reader: &mut impl Read, max: usize) -> Result<T, ProtocolError> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix).map_err(closed_or_io)?;
    let len = u32::from_le_bytes(prefix) as usize;
    if len > max {
        return Err(ProtocolError::TooLarge { len, max });
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).map_err(|err| match closed_or_io(err) {
        ProtocolError::Closed => ProtocolError::Truncated(len),
        other => other,
    })?;
    decode(&payload)
}

/// The host's reader of a runner's control channel: the 16-byte handshake, then messages, each
/// handed to `on_message`, until the channel ends, breaks the protocol or `on_message` refuses
/// one. Returns why it ended; the first violation ends it (the caller then closes the channel).
/// `on_message` gets the reader too, to take the raw bytes that follow a
/// [`ToHost::FrameDone`].
pub fn read_control_channel<R: Read>(
    reader: &mut R,
    max_message: usize,
    mut on_hello: impl FnMut([u8; 16]),
    mut on_message: impl FnMut(ToHost, &mut R) -> Result<(), String>,
) -> String {
    let mut hello = [0u8; 16];
    if let Err(e) = reader.read_exact(&mut hello) {
        return format!("no handshake: {e}");
    }
    on_hello(hello);
    loop {
        match read_message::<ToHost>(reader, max_message) {
            Ok(message) => {
                if let Err(why) = on_message(message, reader) {
                    return why;
                }
            }
            Err(ProtocolError::Closed) => return "the control channel closed".to_string(),
            Err(e) => return e.to_string(),
        }
    }
}

/// Decodes exactly one message from `bytes`; trailing bytes are an error.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ProtocolError> {
    let (message, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(ProtocolError::Trailing(rest.len()));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip_through_framing() {
        let messages = vec![
            ToHost::Loaded { description: "{}".into() },
            ToHost::Log { level: 3, message: "hello".into() },
            ToHost::Failed {
                frame: Some(7),
                failure: Failure::Trap { trap: "unreachable".into(), backtrace: "0: f".into() },
            },
        ];
        let mut wire = Vec::new();
        for m in &messages {
            write_message(&mut wire, m).unwrap();
        }
        let mut reader = wire.as_slice();
        for m in &messages {
            assert_eq!(&read_message::<ToHost>(&mut reader, MAX_TO_HOST_BYTES).unwrap(), m);
        }
        assert!(matches!(read_message::<ToHost>(&mut reader, MAX_TO_HOST_BYTES), Err(ProtocolError::Closed)));
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_body() {
        let wire = (u32::MAX).to_le_bytes();
        let err = read_message::<ToHost>(&mut wire.as_slice(), MAX_TO_HOST_BYTES).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { len, .. } if len == u32::MAX as usize), "{err}");
    }

    #[test]
    fn version_ranges_must_overlap() {
        let old = Hello { magic: MAGIC, min_version: 0, version: 0 };
        let err = Hello::OURS.negotiate(old).unwrap_err();
        assert!(err.to_string().contains("versions do not overlap"), "{err}");
        let newer = Hello { magic: MAGIC, min_version: 2, version: PROTOCOL_VERSION + 5 };
        assert_eq!(Hello::OURS.negotiate(newer).unwrap(), PROTOCOL_VERSION);
        let stranger = Hello { magic: *b"GET / HT", min_version: 2, version: 2 };
        assert!(matches!(Hello::OURS.negotiate(stranger), Err(ProtocolError::BadMagic(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<ToHost>(&bytes);
            let _ = read_message::<ToHost>(&mut bytes.as_slice(), 64);
        }

        #[test]
        fn any_declared_length_over_the_cap_is_refused(len in 65u32.., tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut wire = len.to_le_bytes().to_vec();
            wire.extend(tail);
            let is_too_large = matches!(read_message::<ToHost>(&mut wire.as_slice(), 64), Err(ProtocolError::TooLarge { .. }));
            prop_assert!(is_too_large);
        }
    }
}
