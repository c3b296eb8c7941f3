//! The frame hand-off: a small state machine on one 32-bit word per slot, plus a doorbell word
//! the runner sleeps on. Written once, generic over how to wait and wake, so threads can test it
//! without processes; [`Futex`] is the real waiter.
//!
//! ```text
//!  host: FREE ──submit──► SUBMITTED ──runner takes──► TAKEN ──runner──► DONE | FAILED ──host reclaims──► FREE
//! ```
//!
//! The host never trusts the word: any value it did not expect is a protocol violation, and every
//! wait it makes has an absolute deadline that wakes from the peer cannot extend.
//!
//! Ordering: whoever hands a slot over has written its descriptor and pixels before a `Release`
//! store of the state (`submit`, `complete`); whoever receives it reads the state with `Acquire`
//! (the runner's `take` is an `AcqRel` exchange, the host's waits load with `Acquire`, including
//! the value a spin returns) before it reads anything else. So every write of the data
//! happens-before every read of it, whether the reader spun or slept; the futex calls carry no
//! ordering of their own and need none, and no separate fence is missing on either side.

use crate::sys::futex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Values of a slot's state word.
pub mod state {
    /// Owned by the host; nothing in flight.
    pub const FREE: u32 = 0;
    /// The host wrote an input frame; the runner may take it.
    pub const SUBMITTED: u32 = 1;
    /// The runner is processing it.
    pub const TAKEN: u32 = 2;
    /// The runner wrote the output frame; owned by the host again.
    pub const DONE: u32 = 3;
    /// The runner could not process the frame (details on the control channel).
    pub const FAILED: u32 = 4;
    /// Set by the host itself when the runner is gone, to end its own wait at once.
    pub const ABANDONED: u32 = 5;
}

/// How a wait sleeps and how a completion wakes the sleeper.
pub trait Waiter {
    /// Sleeps while `word == expected`, at most until `deadline`; may return early.
    fn wait(&self, word: &AtomicU32, expected: u32, deadline: Option<Instant>);
    fn wake(&self, word: &AtomicU32);
}

/// Shared futexes: works across processes on a shared mapping.
#[derive(Debug, Clone, Copy, Default)]
pub struct Futex;

impl Waiter for Futex {
    fn wait(&self, word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
        futex::wait(word, expected, deadline);
    }
    fn wake(&self, word: &AtomicU32) {
        futex::wake(word);
    }
}

/// How a submitted frame ended, from the host's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
}

/// Why the host's wait for a frame ended without an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("the deadline passed")]
    TimedOut,
    #[error("the plugin process is gone")]
    Abandoned,
    #[error("the slot's state word holds {0}, which is not a state the plugin may set")]
    BadState(u32),
}

/// Spins this many times re-reading the word before sleeping: a cross-core wake-up costs
/// tens of microseconds on a VM, a spin costs nothing when the answer is that close.
pub const SPIN_LIMIT: u32 = 2_000;
/// Every this many spins the spinner yields its core. When the scheduler has put host and
/// runner on the same core, the side it waits for can only run then: without the yield, each
/// hand-off cost two whole spins (about 130 µs instead of 1 µs, seen in `plugin-host-bench`).
const SPINS_PER_YIELD: u32 = 64;

fn spin_while(word: &AtomicU32, value: u32) -> u32 {
    for spin in 1..=SPIN_LIMIT {
        let now = word.load(Ordering::Acquire);
        if now != value {
            return now;
        }
        if spin % SPINS_PER_YIELD == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    word.load(Ordering::Acquire)
}

/// Host: hands the slot's input to the runner. The caller owns the slot (state FREE, DONE or
/// FAILED) and has written the input buffer and descriptor.
pub fn submit(waiter: &impl Waiter, slot_state: &AtomicU32, doorbell: &AtomicU32) {
    slot_state.store(state::SUBMITTED, Ordering::Release);
    ring_doorbell(waiter, doorbell);
}

/// Host: wakes the runner (after a submit, or to make it look at the control channel).
pub fn ring_doorbell(waiter: &impl Waiter, doorbell: &AtomicU32) {
    doorbell.fetch_add(1, Ordering::Release);
    waiter.wake(doorbell);
}

/// Host: waits until the runner finishes the slot, or `deadline`.
pub fn wait_outcome(waiter: &impl Waiter, slot_state: &AtomicU32, deadline: Instant) -> Result<Outcome, WaitError> {
    let mut seen = slot_state.load(Ordering::Acquire);
    loop {
        match seen {
            state::DONE => return Ok(Outcome::Done),
            state::FAILED => return Ok(Outcome::Failed),
            state::ABANDONED => return Err(WaitError::Abandoned),
            state::SUBMITTED | state::TAKEN => {}
            other => return Err(WaitError::BadState(other)),
        }
        if Instant::now() >= deadline {
            return Err(WaitError::TimedOut);
        }
        let spun = spin_while(slot_state, seen);
        if spun == seen {
            waiter.wait(slot_state, seen, Some(deadline));
            seen = slot_state.load(Ordering::Acquire);
        } else {
            seen = spun;
        }
    }
}

/// Host: takes the slot back after reading the outcome (or after the runner is gone).
pub fn reclaim(slot_state: &AtomicU32) {
    slot_state.store(state::FREE, Ordering::Release);
}

/// Host, from the thread that sees the runner die: ends any wait on the slot at once.
pub fn abandon(waiter: &impl Waiter, slot_state: &AtomicU32) {
    slot_state.store(state::ABANDONED, Ordering::Release);
    waiter.wake(slot_state);
}

/// Runner: claims a submitted slot; false if it was not submitted.
pub fn take(slot_state: &AtomicU32) -> bool {
    slot_state.compare_exchange(state::SUBMITTED, state::TAKEN, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// Runner: publishes the outcome of a taken slot and wakes the host.
pub fn complete(waiter: &impl Waiter, slot_state: &AtomicU32, outcome: Outcome) {
    let value = match outcome {
        Outcome::Done => state::DONE,
        Outcome::Failed => state::FAILED,
    };
    slot_state.store(value, Ordering::Release);
    waiter.wake(slot_state);
}

/// Runner: sleeps until the doorbell moves past `seen` (or `deadline`); returns its new value.
pub fn wait_doorbell(waiter: &impl Waiter, doorbell: &AtomicU32, seen: u32, deadline: Option<Instant>) -> u32 {
    let now = spin_while(doorbell, seen);
    if now != seen {
        return now;
    }
    waiter.wait(doorbell, seen, deadline);
    doorbell.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    /// Waits by yielding: shows the algorithm does not depend on futexes.
    #[derive(Clone, Copy)]
    struct Yield;
    impl Waiter for Yield {
        fn wait(&self, word: &AtomicU32, expected: u32, _deadline: Option<Instant>) {
            if word.load(Ordering::Acquire) == expected {
                std::thread::yield_now();
            }
        }
        fn wake(&self, _word: &AtomicU32) {}
    }

    struct Shared {
        doorbell: AtomicU32,
        states: [AtomicU32; 2],
        payload: [AtomicU64; 2],
        stop: AtomicU32,
    }

    /// A host thread and a runner thread exchange `count` frames over two slots; the runner
    /// doubles each payload, the host checks every answer.
    fn exchange(waiter: impl Waiter + Send + Sync + Copy + 'static, count: u64) {
        let shared = Arc::new(Shared {
            doorbell: AtomicU32::new(0),
            states: [AtomicU32::new(state::FREE), AtomicU32::new(state::FREE)],
            payload: [AtomicU64::new(0), AtomicU64::new(0)],
            stop: AtomicU32::new(0),
        });
        let runner_side = Arc::clone(&shared);
        let runner = std::thread::spawn(move || {
            let s = runner_side;
            let mut seen = s.doorbell.load(Ordering::Acquire);
            while s.stop.load(Ordering::Acquire) == 0 {
                let mut worked = false;
                for (slot, word) in s.states.iter().enumerate() {
                    if take(word) {
                        let v = s.payload[slot].load(Ordering::Relaxed);
                        s.payload[slot].store(v * 2, Ordering::Relaxed);
                        complete(&waiter, word, Outcome::Done);
                        worked = true;
                    }
                }
                if !worked {
                    seen = wait_doorbell(&waiter, &s.doorbell, seen, Some(Instant::now() + Duration::from_millis(50)));
                }
            }
        });
        // Keep both slots in flight: submit n+1 before waiting for n.
        let deadline = || Instant::now() + Duration::from_secs(30);
        shared.payload[0].store(1, Ordering::Relaxed);
        submit(&waiter, &shared.states[0], &shared.doorbell);
        for n in 1..=count {
            let slot = (n % 2) as usize;
            shared.payload[slot].store(n + 1, Ordering::Relaxed);
            submit(&waiter, &shared.states[slot], &shared.doorbell);
            let previous = 1 - slot;
            assert_eq!(wait_outcome(&waiter, &shared.states[previous], deadline()), Ok(Outcome::Done));
            assert_eq!(shared.payload[previous].load(Ordering::Relaxed), n * 2, "hand-off {n}");
            reclaim(&shared.states[previous]);
        }
        let last = (count % 2) as usize;
        assert_eq!(wait_outcome(&waiter, &shared.states[last], deadline()), Ok(Outcome::Done));
        shared.stop.store(1, Ordering::Release);
        ring_doorbell(&waiter, &shared.doorbell);
        runner.join().unwrap();
    }

    #[test]
    fn a_million_futex_hand_offs_lose_nothing() {
        exchange(Futex, 1_000_000);
    }

    #[test]
    fn the_algorithm_works_with_any_waiter() {
        exchange(Yield, 100_000);
    }

    #[test]
    fn unexpected_state_values_are_violations() {
        let word = AtomicU32::new(77);
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(wait_outcome(&Futex, &word, deadline), Err(WaitError::BadState(77)));
        word.store(state::FREE, Ordering::Relaxed);
        assert_eq!(wait_outcome(&Futex, &word, deadline), Err(WaitError::BadState(state::FREE)));
    }

    #[test]
    fn a_peer_that_keeps_waking_does_not_extend_the_deadline() {
        let word = Arc::new(AtomicU32::new(state::TAKEN));
        let stop = Arc::new(AtomicU32::new(0));
        let (w, s) = (Arc::clone(&word), Arc::clone(&stop));
        let noisy = std::thread::spawn(move || {
            while s.load(Ordering::Relaxed) == 0 {
                futex::wake(&w);
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let deadline = Instant::now() + Duration::from_millis(100);
        assert_eq!(wait_outcome(&Futex, &word, deadline), Err(WaitError::TimedOut));
        assert!(Instant::now() >= deadline);
        stop.store(1, Ordering::Relaxed);
        noisy.join().unwrap();
    }
}
