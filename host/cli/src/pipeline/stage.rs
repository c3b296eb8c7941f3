//! One stage of a chain: its plugin process, the thread loop that feeds it lanes and collects
//! them, the `on_error` policy for frames it fails, and restarts with back-off.

use super::stats::PluginStats;
use super::{Carried, Reading, RunOptions, WARM_UP_FRAMES};
use crate::config::{OnError, PluginConfig};
use plugin_host::ipc::region::{Lane, Region};
use plugin_host::process::{ErrorKind, PluginError, PluginProcess, PluginSpec, Ticket};
use plugin_sdk::abi::FrameDesc;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel};
use std::time::{Duration, Instant};

/// One plugin of the chain and what happened to it.
pub(super) struct Stage {
    pub(super) config: PluginConfig,
    pub(super) process: Option<PluginProcess>,
    /// This stage's view of the chain's region (for the failure path's copy).
    pub(super) region: Region,
    pub(super) stats: PluginStats,
    /// The plugin process's counters after warm-up.
    pub(super) warm: Option<plugin_host::process::RunnerStats>,
    /// Failures since the last frame that went well, for the restart back-off.
    pub(super) failures_in_a_row: u32,
    /// When the recent restarts happened (those within the config's window).
    pub(super) recent_restarts: VecDeque<Instant>,
}

/// A frame the plugin is working on.
struct Pending {
    ticket: Ticket,
    frame: u64,
    input: FrameDesc,
    reading: Option<Reading>,
}

/// Back-off before restart number `n` (1-based) of a run of failures: none for the first, then
/// 10 ms doubling up to 1 s.
fn restart_backoff(failures_in_a_row: u32) -> Duration {
    match failures_in_a_row {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(10u64 << (n - 2).min(7)).min(Duration::from_secs(1)),
    }
}

impl Stage {
    pub(super) fn start(
        config: &PluginConfig,
        frame_bytes: u64,
        region: &Region,
        options: &RunOptions,
    ) -> Result<Self, PluginError> {
        let mut spec = PluginSpec::new(&config.name, &config.path, frame_bytes);
        spec.params = config.params.clone();
        spec.limits = config.limits.clone();
        spec.transport = config.transport;
        spec.runner = options.runner.clone();
        spec.sandbox = config.sandbox;
        spec.slots = region.slot_count();
        spec.standby = config.max_restarts > 0;
        spec.snapshot_input = config.snapshot_input;
        let process = PluginProcess::spawn_stage(spec, region)?;
        Ok(Self {
            config: config.clone(),
            process: Some(process),
            region: region.clone(),
            stats: PluginStats::new(&config.name),
            warm: None,
            failures_in_a_row: 0,
            recent_restarts: VecDeque::new(),
        })
    }

    /// Serves frames from `input` to `output` until the input ends or the stage fails.
    pub(super) fn run(
        mut self,
        input: Receiver<Carried>,
        output: SyncSender<Carried>,
        free: Sender<Lane>,
    ) -> (PluginStats, Result<(), PluginError>) {
        let result = self.serve(&input, &output, &free);
        if let Some(process) = self.process.as_mut() {
            if let Some(warm) = self.warm
                && let Ok(now) = process.runner_stats()
                && now.frames > warm.frames
            {
                self.stats.plugin_faults_per_frame =
                    now.minor_faults.saturating_sub(warm.minor_faults) as f64 / (now.frames - warm.frames) as f64;
            }
            self.stats.copies += process.copies();
        }
        if let Some(process) = self.process.take() {
            let _ = process.shutdown();
        }
        (self.stats, result)
    }

    fn serve(
        &mut self,
        input: &Receiver<Carried>,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
    ) -> Result<(), PluginError> {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut ended = false;
        let mut last_done = Instant::now();
        // Whether the current process's death has been counted (by the submit that found it).
        let mut death_counted = false;
        loop {
            // A death noticed outside a frame (a submit, or asking for its counters) is
            // recovered from here.
            if self.is_dead() {
                if !death_counted {
                    self.stats.count_failure(&ErrorKind::NotRunning);
                }
                self.recover(&mut pending, output, free)?;
                death_counted = false;
            }
            // Hand over every frame that has arrived: the plugin works while we wait.
            while !ended {
                let next = if pending.is_empty() {
                    input.recv().map_err(|_| TryRecvError::Disconnected)
                } else {
                    input.try_recv()
                };
                match next {
                    Ok(carried) => {
                        let busy = !pending.is_empty();
                        if let Some(entry) = self.submit(carried, output, free, busy)? {
                            pending.push_back(entry);
                        }
                        if self.is_dead() {
                            // The submit found it dead and counted that: restart before the next frame.
                            death_counted = true;
                            break;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => ended = true,
                }
            }
            if self.is_dead() {
                continue;
            }
            let Some(Pending { ticket, frame, input: input_desc, reading }) = pending.pop_front() else {
                return Ok(());
            };
            // Service time: from when the plugin could start on this frame to when it was done.
            let started = ticket.submitted().max(last_done);
            let (lane, result) = match self.process.as_mut() {
                Some(process) => process.receive_lane(ticket),
                None => unreachable!("a ticket outlived its plugin"),
            };
            last_done = Instant::now();
            // The plugin is done reading its input buffer, whatever the outcome.
            drop(reading);
            let passes_through = result.is_err() && self.config.on_error == OnError::Passthrough;
            if passes_through && !pending.is_empty() && !self.is_dead() {
                // The frame's copy will go where this plugin can write while it runs: let it
                // finish what it holds first, and keep the results for after this frame.
                let mut held = Vec::new();
                while !self.is_dead() {
                    let Some(Pending { ticket, frame, input, reading }) = pending.pop_front() else { break };
                    let started = ticket.submitted().max(last_done);
                    let (lane, result) = self.process.as_mut().expect("a process holds them").receive_lane(ticket);
                    last_done = Instant::now();
                    drop(reading);
                    held.push((Carried { frame, lane, desc: input, reading: None }, result, last_done - started));
                }
                let finished = self.finish(
                    Carried { frame, lane, desc: input_desc, reading: None },
                    result,
                    last_done - started,
                    output,
                    free,
                )?;
                if !finished {
                    return Ok(());
                }
                for (carried, result, took) in held {
                    if !self.finish(carried, result, took, output, free)? {
                        return Ok(());
                    }
                }
            } else if !self.finish(
                Carried { frame, lane, desc: input_desc, reading: None },
                result,
                last_done - started,
                output,
                free,
            )? {
                return Ok(());
            }
            if self.is_dead() {
                self.recover(&mut pending, output, free)?;
            }
        }
    }

    /// Delivers a frame the plugin finished (`result` is its output descriptor), or applies the
    /// policy to one it failed (`carried.desc` is then its input). False when the next stage is
    /// gone.
    fn finish(
        &mut self,
        carried: Carried,
        result: Result<FrameDesc, PluginError>,
        took: Duration,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
    ) -> Result<bool, PluginError> {
        match result {
            Ok(desc) => {
                self.stats.frames += 1;
                self.failures_in_a_row = 0;
                if self.stats.frames == WARM_UP_FRAMES
                    && let Some(process) = self.process.as_mut()
                {
                    self.warm = process.runner_stats().ok();
                }
                self.stats.samples_us.push(took.as_micros() as u64);
                Ok(output.send(Carried { desc, ..carried }).is_ok())
            }
            Err(error) => {
                self.stats.count_failure(&error.kind);
                if self.config.on_error == OnError::Fail {
                    return Err(error);
                }
                // Nothing else is in the plugin's hands here (see `serve`).
                self.apply_policy(&error, carried, output, free, false);
                Ok(true)
            }
        }
    }

    /// Whether the stage has a process and it has died (a disabled stage has none).
    fn is_dead(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.pid().is_none())
    }

    /// After the process died: takes back the lanes of the frames it still held (their inputs
    /// are intact: a plugin only writes its output buffer), restarts it and hands them over again.
    fn recover(
        &mut self,
        pending: &mut VecDeque<Pending>,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
    ) -> Result<(), PluginError> {
        let mut requeue = Vec::new();
        for Pending { ticket, frame, input, reading } in pending.drain(..) {
            let process = self.process.as_mut().expect("pending frames have a process");
            let (lane, _) = process.receive_lane(ticket);
            requeue.push(Carried { frame, lane, desc: input, reading });
        }
        self.restart();
        for carried in requeue {
            let busy = !pending.is_empty();
            if let Some(entry) = self.submit(carried, output, free, busy)? {
                pending.push_back(entry);
            }
        }
        Ok(())
    }

    /// Submits a frame, or applies the policy when the plugin is disabled or refuses it.
    /// Returns the entry to wait for, if the frame went to the plugin.
    fn submit(
        &mut self,
        carried: Carried,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
        busy: bool,
    ) -> Result<Option<Pending>, PluginError> {
        let Carried { frame, lane, desc, reading } = carried;
        let (error, lane) = match self.process.as_mut() {
            Some(process) => match process.submit_lane(lane, frame, &desc) {
                Ok(ticket) => return Ok(Some(Pending { ticket, frame, input: desc, reading })),
                Err(refused) => {
                    let (error, lane) = *refused;
                    self.stats.count_failure(&error.kind);
                    (error, lane)
                }
            },
            None => (PluginError { plugin: self.config.name.clone(), kind: ErrorKind::NotRunning }, lane),
        };
        if self.config.on_error == OnError::Fail {
            return Err(error);
        }
        self.apply_policy(&error, Carried { frame, lane, desc, reading }, output, free, busy);
        Ok(None)
    }

    /// Skips or passes through a frame the plugin could not process (policy skip/passthrough).
    /// `carried` holds the plugin's input; `busy` says other frames are in the plugin's hands.
    fn apply_policy(
        &mut self,
        error: &PluginError,
        carried: Carried,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
        busy: bool,
    ) {
        let Carried { frame, mut lane, desc, reading } = carried;
        // A disabled plugin was reported once, when it was disabled.
        let report = self.process.is_some() || !matches!(error.kind, ErrorKind::NotRunning);
        match self.config.on_error {
            OnError::Fail | OnError::Skip => {
                if report {
                    tracing::warn!("{error}; frame {frame} skipped");
                }
                self.stats.skipped += 1;
                drop(reading);
                let _ = free.send(lane);
            }
            OnError::Passthrough => {
                if report {
                    tracing::warn!("{error}; frame {frame} passed through unchanged");
                }
                self.stats.passed_through += 1;
                // The copy goes into this stage's output boundary, which its plugin can write
                // whenever it runs: while the next reader reads it, no code of this plugin may
                // run. A plugin busy with other frames is killed first (they are handed to its
                // replacement); then this stage waits until the reader is done.
                if busy && let Some(process) = self.process.as_mut() {
                    process.kill();
                    // The host's own doing: its restart needs no back-off (max_restarts still counts it).
                    self.failures_in_a_row = 0;
                }
                // The next stage reads the lane's next boundary: the one copy of the failure path.
                self.region.copy_input_to_output(&mut lane, desc.byte_len() as usize);
                drop(reading);
                self.stats.copies += 1;
                let (done_reading, read) = channel();
                if output.send(Carried { frame, lane, desc, reading: Some(done_reading) }).is_ok() {
                    // Ends with an error when the reader drops its end: it is done.
                    let _ = read.recv();
                }
            }
        }
    }

    /// Starts a fresh process after the old one died (after a back-off when failures repeat);
    /// after `max_restarts`, or when it cannot start, the plugin stays disabled and its policy
    /// handles every further frame.
    fn restart(&mut self) {
        let mut failed_starts = 0u32;
        loop {
            let now = Instant::now();
            let window = self.config.restart_window;
            self.recent_restarts.retain(|&at| now.duration_since(at) < window);
            if self.recent_restarts.len() >= self.config.max_restarts as usize
                || failed_starts >= self.config.max_restarts.max(1)
            {
                if let Some(process) = self.process.take() {
                    self.stats.copies += process.copies();
                }
                tracing::error!(
                    "plugin \"{}\": disabled after {} restarts within {:?}; {} every further frame",
                    self.config.name,
                    self.recent_restarts.len(),
                    window,
                    match self.config.on_error {
                        OnError::Passthrough => "passing through",
                        OnError::Skip | OnError::Fail => "skipping",
                    }
                );
                return;
            }
            let Some(process) = self.process.as_mut() else { return };
            self.recent_restarts.push_back(now);
            self.failures_in_a_row += 1;
            std::thread::sleep(restart_backoff(self.failures_in_a_row));
            self.stats.restarts += 1;
            let started = Instant::now();
            match process.restart() {
                Ok(()) => {
                    self.stats.restart_us.push(started.elapsed().as_micros() as u64);
                    return;
                }
                // A process that dies while it starts is one more failed restart.
                Err(error) => {
                    failed_starts += 1;
                    tracing::warn!("{error}; restarting again");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_exponentially_up_to_a_second() {
        let waits: Vec<u64> = (1..=12).map(|n| restart_backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]);
    }
}
