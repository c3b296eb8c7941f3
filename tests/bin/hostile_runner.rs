//! A runner that speaks the protocol but lies, for the supervision tests. Its mode is the suffix
//! of the name it is started under (`hostile-runner-MODE`, via a symlink), because the host
//! starts runners with an empty environment and fixed arguments.
//!
//! Every mode completes the handshake, Load and Init like a real runner, then:
//! - `garbage`: writes bytes that are not a message, then lives on;
//! - `flood`: sends unrequested messages without end;
//! - `heavy-flood`: the same with messages of 900 KB, under the size limit of each;
//! - `log-flood`: sends log lines without end, while also serving frames correctly (identity);
//! - `bad-state`: writes a state value no runner may write into each submitted slot;
//! - `bad-descriptor`: marks slots done with an output descriptor past the slot's end;
//! - `never-wake`: takes each slot and never completes it;
//! - `wake-storm`: takes each slot, never completes it, and wakes the host's futex constantly;
//! - `oversized`: announces a message larger than the host's limit;
//! - `stray-frame`: (pipe transport) sends a finished frame for a slot and frame the host never
//!   sent, with its bytes, then lives on;
//! - `fail-then-frame`: (pipe transport) answers the first frame with `Failed`, then sends that
//!   frame's result anyway, then lives on;
//! - `random`: serves frames (identity), but on about one frame in ten lies at random: random
//!   values written anywhere in the region's header and control blocks, state words and output
//!   descriptors, a slot never completed, or a burst of wake-ups.

use plugin_host::ipc::handoff::{self, Futex, Outcome};
use plugin_host::ipc::protocol::{self, Hello, MAX_TO_RUNNER_BYTES, ToHost, ToRunner};
use plugin_host::ipc::region::{Buffer, Region};
use plugin_sdk::abi::FrameDesc;
use std::fs::File;
use std::io::{BufReader, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn main() {
    let name = std::env::args().next().unwrap_or_default();
    let mode = name.rsplit("hostile-runner-").next().unwrap_or("garbage").to_string();
    // Lies from inside the same sandbox as a real runner.
    let policy = plugin_host::sys::sandbox::Policy::from_args(std::env::args_os().skip(2));
    let report = plugin_host::sys::sandbox::apply(&policy).expect("sandbox");
    let [control_in, control_out, region_fd] = plugin_host::sys::process::take_runner_fds().expect("runner fds");
    let mut input = BufReader::new(File::from(control_in));
    let mut output = File::from(control_out);
    protocol::handshake(Hello::OURS, &mut input, &mut output).expect("handshake");
    protocol::write_message(&mut output, &ToHost::Sandboxed { report }).expect("sandbox report");
    let region = Region::open(File::from(region_fd)).expect("region");
    let load: ToRunner = protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES).expect("load");
    if let ToRunner::Compile { module } = load {
        // Started to compile the module: honestly, like a real runner; the lies come later.
        let _ = protocol::write_message(&mut output, &plugin_host::runner::compile(module));
        return;
    }
    let description = r#"{"name":"hostile","version":"1","description":"","formats":["rgba8","gray8"],"params":[]}"#;
    protocol::write_message(&mut output, &ToHost::Loaded { description: description.into() }).expect("loaded");
    let init: ToRunner = protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES).expect("init");
    // Declares the input's shape for its output, as a plugin without plugin_output_shape does.
    let shape = match init {
        ToRunner::Init { input, .. } => input,
        _ => None,
    };
    protocol::write_message(&mut output, &ToHost::Ready { band_context: None, output: shape }).expect("ready");

    match mode.as_str() {
        "garbage" => {
            let _ = output.write_all(&[0xff; 64]);
            sleep_forever()
        }
        "flood" => loop {
            if protocol::write_message(&mut output, &ToHost::Loaded { description: "x".repeat(1000) }).is_err() {
                sleep_forever()
            }
        },
        "heavy-flood" => loop {
            // Each under the message limit; together far past what the host keeps unread.
            if protocol::write_message(&mut output, &ToHost::Loaded { description: "x".repeat(900_000) }).is_err() {
                sleep_forever()
            }
        },
        "fail-then-frame" => {
            if let Ok(ToRunner::Frame { frame, slot, desc, len, .. }) =
                protocol::read_message(&mut input, MAX_TO_RUNNER_BYTES)
            {
                let mut bytes = vec![0u8; len as usize];
                let _ = std::io::Read::read_exact(&mut input, &mut bytes);
                let failure = protocol::Failure::Plugin("refused".into());
                let _ = protocol::write_message(&mut output, &ToHost::Failed { frame: Some(frame), failure });
                let late = ToHost::FrameDone { frame, slot, desc, len, meta: None };
                let _ = protocol::write_message_with_bytes(&mut output, &late, &bytes);
            }
            sleep_forever()
        }
        "stray-frame" => {
            let stray = ToHost::FrameDone {
                frame: 999,
                slot: 1,
                desc: [0; plugin_sdk::abi::FRAME_DESC_SIZE],
                len: 64,
                meta: None,
            };
            let _ = protocol::write_message_with_bytes(&mut output, &stray, &[0xee; 64]);
            sleep_forever()
        }
        "oversized" => {
            let _ = output.write_all(&u32::MAX.to_le_bytes());
            sleep_forever()
        }
        "log-flood" => {
            let writer = std::thread::spawn(move || {
                let mut n = 0u64;
                while protocol::write_message(&mut output, &ToHost::Log { level: 3, message: format!("line {n}") })
                    .is_ok()
                {
                    n += 1;
                }
            });
            let mut map = map_region(&region);
            serve(&region, |region, slot| {
                serve_identity(region, &mut map, slot);
                handoff::complete(&Futex, region.state(slot), Outcome::Done);
            });
            let _ = writer.join();
        }
        "bad-state" => serve(&region, |region, slot| region.state(slot).store(77, Ordering::Release)),
        "bad-descriptor" => serve(&region, |region, slot| {
            let desc = region.read_desc(slot, Buffer::Input);
            region.write_desc(slot, Buffer::Output, &FrameDesc { height: desc.height * 1000, ..desc });
            handoff::complete(&Futex, region.state(slot), Outcome::Done);
        }),
        "never-wake" => serve(&region, |_, _| {}),
        "wake-storm" => serve(&region, |region, slot| {
            loop {
                handoff::Waiter::wake(&Futex, region.state(slot));
                std::thread::sleep(Duration::from_micros(500));
            }
        }),
        "random" => {
            let seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
            let rng = std::cell::Cell::new(seed);
            let next = || {
                let mut x = rng.get();
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                rng.set(x);
                x
            };
            let mut raw = map_region(&region);
            let control_len = region.buffers_offset() as usize;
            serve(&region, |region, slot| {
                serve_identity(region, &mut raw, slot);
                match next() % 100 {
                    0..=2 => {
                        for _ in 0..1 + next() % 8 {
                            let at = (next() as usize % control_len) & !7;
                            raw[at..at + 8].copy_from_slice(&next().to_le_bytes());
                        }
                    }
                    3..=4 => region.state(slot).store(next() as u32, Ordering::Release),
                    5..=6 => {
                        let mut bytes = [0u8; plugin_sdk::abi::FRAME_DESC_SIZE];
                        bytes.iter_mut().for_each(|b| *b = next() as u8);
                        region.write_desc(slot, Buffer::Output, &FrameDesc::from_bytes(&bytes));
                    }
                    7 => return,
                    8 => {
                        for _ in 0..1000 {
                            handoff::Waiter::wake(&Futex, region.state(slot));
                        }
                    }
                    _ => {}
                }
                handoff::complete(&Futex, region.state(slot), Outcome::Done);
            });
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Takes each submitted slot and lets `act` do with it what the mode says.
fn serve(region: &Region, mut act: impl FnMut(&Region, u32)) {
    let mut seen = region.doorbell().load(Ordering::Acquire);
    loop {
        for slot in 0..region.slot_count() {
            if handoff::take(region.state(slot)) {
                act(region, slot);
            }
        }
        seen = handoff::wait_doorbell(&Futex, region.doorbell(), seen, None);
    }
}

/// The whole region, mapped as a runner maps it.
fn map_region(region: &Region) -> memmap2::MmapMut {
    plugin_host::sys::memfd::map_shared(region.file()).expect("map the region")
}

/// Does what a correct identity plugin would to `slot`, short of marking it done.
fn serve_identity(region: &Region, map: &mut [u8], slot: u32) {
    let desc = region.read_desc(slot, Buffer::Input);
    let len = (desc.byte_len() as usize).min(region.slot_capacity() as usize);
    let input = region.buffer_offset(slot, Buffer::Input) as usize;
    let output = region.buffer_offset(slot, Buffer::Output) as usize;
    map.copy_within(input..input + len, output);
    region.write_desc(slot, Buffer::Output, &FrameDesc { data: 0, ..desc });
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
