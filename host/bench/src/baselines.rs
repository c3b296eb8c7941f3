//! The raw baselines: a pipe round trip, a futex round trip, the hand-off between threads.

use super::*;

/// 1 byte there and back between two threads over two pipes.
pub(crate) fn pipe_round_trip(plan: &Plan) -> anyhow::Result<Latency> {
    let (mut there_read, mut there_write) = std::io::pipe()?;
    let (mut back_read, mut back_write) = std::io::pipe()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut byte = [0u8; 1];
        loop {
            match there_read.read(&mut byte)? {
                0 => return Ok(()),
                _ => back_write.write_all(&byte)?,
            }
        }
    });
    let mut byte = [7u8; 1];
    let result = sample(plan, || {
        there_write.write_all(&byte)?;
        back_read.read_exact(&mut byte)?;
        Ok(())
    });
    drop(there_write);
    echo.join().map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    result
}

/// `bytes` there and back between two threads over two plain pipes (1 MiB buffers, as the
/// control pipes): written from one buffer, read into another, no framing. What the pipe
/// transport's round trip of a frame that size is compared with.
pub(crate) fn pipe_bytes_round_trip(plan: &Plan, bytes: usize) -> anyhow::Result<Latency> {
    use std::os::fd::AsFd;
    let (mut there_read, mut there_write) = std::io::pipe()?;
    let (mut back_read, mut back_write) = std::io::pipe()?;
    for pipe in [there_write.as_fd(), back_write.as_fd()] {
        plugin_host::sys::process::widen_pipe(pipe);
    }
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buffer = vec![0u8; bytes];
        loop {
            match there_read.read_exact(&mut buffer) {
                Ok(()) => back_write.write_all(&buffer)?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    let source = vec![7u8; bytes];
    let mut back = vec![0u8; bytes];
    let result = sample(plan, || {
        there_write.write_all(black_box(&source))?;
        back_read.read_exact(&mut back)?;
        Ok(())
    });
    drop(there_write);
    echo.join().map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    result
}

/// Plain futex wait/wake between two threads on one word, no spinning.
pub(crate) fn futex_round_trip(plan: &Plan) -> Latency {
    const IDLE: u32 = 0;
    const REQUEST: u32 = 1;
    const REPLY: u32 = 2;
    const STOP: u32 = 3;
    let word = Arc::new(AtomicU32::new(IDLE));
    let peer = Arc::clone(&word);
    let echo = std::thread::spawn(move || {
        loop {
            match peer.load(Ordering::Acquire) {
                REQUEST => {
                    peer.store(REPLY, Ordering::Release);
                    futex::wake(&peer);
                }
                STOP => return,
                other => {
                    futex::wait(&peer, other, None);
                }
            }
        }
    });
    let result = sample(plan, || {
        word.store(REQUEST, Ordering::Release);
        futex::wake(&word);
        loop {
            let now = word.load(Ordering::Acquire);
            if now == REPLY {
                return Ok(());
            }
            futex::wait(&word, now, None);
        }
    });
    word.store(STOP, Ordering::Release);
    futex::wake(&word);
    let _ = echo.join();
    result.expect("the futex round trip cannot fail")
}

/// The hand-off algorithm PluginProcess and the runner use (spin, then futex), between threads.
pub(crate) fn handoff_round_trip(plan: &Plan) -> Latency {
    struct Shared {
        state: AtomicU32,
        doorbell: AtomicU32,
        stop: AtomicU32,
    }
    let shared = Arc::new(Shared {
        state: AtomicU32::new(handoff::state::FREE),
        doorbell: AtomicU32::new(0),
        stop: AtomicU32::new(0),
    });
    let peer = Arc::clone(&shared);
    let runner = std::thread::spawn(move || {
        let mut seen = peer.doorbell.load(Ordering::Acquire);
        while peer.stop.load(Ordering::Acquire) == 0 {
            if handoff::take(&peer.state) {
                handoff::complete(&Futex, &peer.state, Outcome::Done);
            } else {
                let deadline = Instant::now() + Duration::from_millis(50);
                seen = handoff::wait_doorbell(&Futex, &peer.doorbell, seen, Some(deadline));
            }
        }
    });
    let result = sample(plan, || {
        handoff::submit(&Futex, &shared.state, &shared.doorbell);
        let outcome = handoff::wait_outcome(&Futex, &shared.state, Instant::now() + DEADLINE);
        handoff::reclaim(&shared.state);
        ensure!(outcome == Ok(Outcome::Done), "hand-off between threads: {outcome:?}");
        Ok(())
    });
    shared.stop.store(1, Ordering::Release);
    handoff::ring_doorbell(&Futex, &shared.doorbell);
    let _ = runner.join();
    result.expect("the hand-off between threads failed")
}
