//! The host's reader of a plugin's control channel, fed through a real pipe in random write
//! splits, a million times: valid messages, then an ending that is clean, oversized, cut short or
//! random. It never panics, delivers exactly the valid messages in order, and the first
//! violation ends the channel.

use plugin_host::ipc::protocol::{self, Failure, ToHost};
use proptest::prelude::*;
use std::io::Write;
use std::sync::mpsc;

const MAX_MESSAGE: usize = 4096;

#[derive(Debug, Clone)]
enum Ending {
    Clean,
    /// A length prefix past the host's limit.
    Oversized(u32),
    /// A valid message cut short by the writer closing the pipe.
    Truncated(ToHost, usize),
    /// Arbitrary bytes: whatever they decode to, the reader must end without panicking.
    Random(Vec<u8>),
}

fn message() -> impl Strategy<Value = ToHost> {
    prop_oneof![
        ".{0,40}".prop_map(|description| ToHost::Loaded { description }),
        (proptest::option::of(any::<u32>()), proptest::option::of(any::<[u8; 32]>()))
            .prop_map(|(band_context, output)| ToHost::Ready { band_context, output }),
        (any::<u64>(), any::<u64>()).prop_map(|(frames, minor_faults)| ToHost::Stats { frames, minor_faults }),
        (any::<i32>(), ".{0,40}").prop_map(|(level, message)| ToHost::Log { level, message }),
        (any::<Option<u64>>(), ".{0,20}")
            .prop_map(|(frame, m)| ToHost::Failed { frame, failure: Failure::Plugin(m.into()) }),
        (any::<u64>(), any::<u32>(), any::<[u8; 32]>(), 0u64..64)
            .prop_map(|(frame, slot, desc, len)| ToHost::FrameDone { frame, slot, desc, len, meta: None }),
    ]
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        Just(Ending::Clean),
        (MAX_MESSAGE as u32 + 1..).prop_map(Ending::Oversized),
        (message(), any::<usize>()).prop_map(|(m, cut)| Ending::Truncated(m, cut)),
        proptest::collection::vec(any::<u8>(), 1..128).prop_map(Ending::Random),
    ]
}

/// A message as a runner writes it: a FrameDone is followed by its raw bytes.
fn framed(message: &ToHost) -> Vec<u8> {
    let mut bytes = Vec::new();
    let pixels = match message {
        ToHost::FrameDone { len, frame, .. } => vec![*frame as u8; *len as usize],
        _ => Vec::new(),
    };
    protocol::write_message_with_bytes(&mut bytes, message, &pixels).unwrap();
    bytes
}

/// One writer thread for all cases: it writes each case's chunks to that case's pipe, then
/// closes it.
fn writer() -> mpsc::Sender<(std::io::PipeWriter, Vec<Vec<u8>>)> {
    let (tx, rx) = mpsc::channel::<(std::io::PipeWriter, Vec<Vec<u8>>)>();
    std::thread::spawn(move || {
        for (mut pipe, chunks) in rx {
            for chunk in chunks {
                if pipe.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    });
    tx
}

/// A million, as the supervision issue asks; `CONTROL_FUZZ_CASES` overrides it for a quick look.
fn cases() -> u32 {
    std::env::var("CONTROL_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_control_reader_takes_anything_through_a_pipe(
        messages in proptest::collection::vec(message(), 0..4),
        end in ending(),
        splits in proptest::collection::vec(1usize..48, 1..6),
    ) {
        thread_local! { static WRITER: mpsc::Sender<(std::io::PipeWriter, Vec<Vec<u8>>)> = writer(); }
        let mut stream = protocol::Hello::OURS.to_bytes().to_vec();
        for m in &messages {
            stream.extend(framed(m));
        }
        match &end {
            Ending::Clean => {}
            Ending::Oversized(len) => stream.extend(len.to_le_bytes()),
            Ending::Truncated(m, cut) => {
                let whole = framed(m);
                stream.extend(&whole[..cut % whole.len()]);
            }
            Ending::Random(bytes) => stream.extend(bytes),
        }
        let mut chunks = Vec::new();
        let mut rest = &stream[..];
        for size in splits.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            chunks.push(chunk.to_vec());
            rest = tail;
        }
        let (reader, pipe) = std::io::pipe().unwrap();
        // Buffered, as the host reads its runners' pipes.
        let mut reader = std::io::BufReader::new(reader);
        WRITER.with(|w| w.send((pipe, chunks)).unwrap());
        let mut delivered = Vec::new();
        let mut hellos = 0;
        let why = protocol::read_control_channel(&mut reader, MAX_MESSAGE, |_| hellos += 1, |m, reader| {
            // As the host's reader does: a FrameDone's bytes are taken before the next message.
            if let ToHost::FrameDone { len, frame, .. } = &m {
                let mut pixels = vec![0u8; *len as usize];
                std::io::Read::read_exact(reader, &mut pixels).map_err(|e| e.to_string())?;
                if pixels.iter().any(|&b| b != *frame as u8) {
                    return Err("a FrameDone's bytes came back wrong".to_string());
                }
            }
            delivered.push(m);
            Ok(())
        });
        prop_assert_eq!(hellos, 1);
        prop_assert!(delivered.len() >= messages.len());
        prop_assert_eq!(&delivered[..messages.len()], &messages[..]);
        match end {
            Ending::Clean => {
                prop_assert_eq!(delivered.len(), messages.len());
                prop_assert_eq!(why, "the control channel closed");
            }
            Ending::Oversized(_) => {
                prop_assert_eq!(delivered.len(), messages.len());
                prop_assert!(why.contains("exceeds"), "{}", why);
            }
            Ending::Truncated(..) => prop_assert_eq!(delivered.len(), messages.len()),
            Ending::Random(_) => {}
        }
    }
}
