//! One stage of a chain: its plugin's processes (one, or several workers that each write a band
//! of the same frame), the thread loop that feeds them lanes and collects them, the `on_error`
//! policy for frames they fail, and restarts with back-off, per worker.
//!
//! A frame counts once whatever the number of workers: it is done when every band is, and it
//! fails (and goes to the policy) when any band fails. A worker that dies is restarted and given
//! its bands of the frames still in flight again; the other workers' bands stand. A worker that
//! stays down is left out, and the bands are cut among those that run.

use super::convert::{ConversionLog, Converter};
use super::stats::PluginStats;
use super::{Carried, Reading, RunOptions, WARM_UP_FRAMES};
use crate::config::{OnError, PluginConfig};
use plugin_host::ipc::region::{Buffer, Lane, Region};
use plugin_host::process::{BandTicket, ErrorKind, PluginError, PluginProcess, PluginSpec, RunnerStats, Violation};
use plugin_sdk::abi::{FrameDesc, band_rows};
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel};
use std::time::{Duration, Instant};

/// One plugin of the chain and what happened to it.
pub(super) struct Stage {
    pub(super) config: PluginConfig,
    workers: Vec<Worker>,
    /// This stage's view of the chain's region (for the failure path's copy).
    region: Region,
    pub(super) stats: PluginStats,
    /// Band lists of collected frames, for the next ones: no allocation per frame.
    spare_bands: Vec<Vec<Band>>,
    /// The output descriptors of a frame's bands as they come back (reused likewise).
    band_outputs: Vec<(usize, FrameDesc)>,
    /// Converts frames in a format the plugin does not take (see [`Stage::convert_with`]).
    converter: Option<Converter>,
    /// A frame's pixels copied out of the lane to be converted.
    unconverted: Vec<u8>,
    /// The metadata a plugin set, copied out to be checked (reused from frame to frame).
    meta_scratch: Vec<u8>,
    /// Whether undecodable metadata from the plugin has been said already.
    bad_meta_said: bool,
    /// The shape of its output frames, as its plugin declared it: frames of another are refused.
    output_shape: plugin_sdk::Shape,
    /// The format its plugin gets frames in (the nearest it takes to what comes in).
    takes: plugin_sdk::PixelFormat,
    /// Where its statistics are published while it runs, as which stage, and when last.
    live: Option<(super::Live, usize, Instant)>,
    /// Parameter changes still to come, in time order.
    changes: VecDeque<crate::config::ParamChange>,
    /// New values sent while running (the control API): applied from the next frame.
    live_changes: Option<Receiver<super::LiveRequest>>,
    /// The plugin's last kept state (`state_every`), for a process that replaces a crashed one.
    state: super::KeptState,
    /// A new module asked for while running.
    swapper: super::Swapper,
    /// When its last frame was kept for a preview.
    last_preview: Option<Instant>,
}

/// One process of a stage, and its own restart history.
struct Worker {
    /// `None` once disabled (or for a stage that could not keep it running).
    process: Option<PluginProcess>,
    /// Its counters after warm-up.
    warm: Option<RunnerStats>,
    /// Failures since the last frame that went well, for the restart back-off.
    failures_in_a_row: u32,
    /// When its recent restarts happened (those within the config's window).
    recent_restarts: VecDeque<Instant>,
    /// Whether its death has been counted already (by the frame that found it).
    death_counted: bool,
    /// Killed by the host for its own reasons: the restart does not count against `max_restarts`.
    killed_by_host: bool,
}

/// A frame the workers are working on.
struct Pending {
    frame: u64,
    lane: Lane,
    input: FrameDesc,
    meta: Vec<u8>,
    reading: Option<Reading>,
    bands: Vec<Band>,
    /// The first failure among its bands: the frame goes to the policy once all are back.
    error: Option<PluginError>,
    submitted: Instant,
}

/// One worker's share of a frame.
struct Band {
    worker: usize,
    rows: Range<u32>,
    /// `None` once collected (or when it could not be handed over).
    ticket: Option<BandTicket>,
    /// Its worker was disabled while the frame was in flight: another worker takes the rows.
    orphan: bool,
}

/// Back-off before restart number `n` (1-based) of a run of failures: none for the first, then
/// 10 ms doubling up to 1 s.
pub(super) fn restart_backoff(failures_in_a_row: u32) -> Duration {
    match failures_in_a_row {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(10u64 << (n - 2).min(7)).min(Duration::from_secs(1)),
    }
}

impl Worker {
    fn new(process: PluginProcess) -> Self {
        Worker {
            process: Some(process),
            warm: None,
            failures_in_a_row: 0,
            recent_restarts: VecDeque::new(),
            death_counted: false,
            killed_by_host: false,
        }
    }

    /// Whether it has a process and that process has died (a disabled worker has none).
    fn is_dead(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.pid().is_none())
    }
}

impl Stage {
    /// Starts the plugin on `views[0]`, and when it works on bands, up to `views.len()` workers
    /// in all (one per view, each its own control block on the same boundaries). `input` is
    /// the shape of the frames it will get; it declares its output's ([`Stage::output_shape`]).
    pub(super) fn start(
        config: &PluginConfig,
        frame_bytes: u64,
        views: &[Region],
        options: &RunOptions,
        input: plugin_sdk::Shape,
    ) -> Result<Self, PluginError> {
        let mut spec = PluginSpec::new(&config.name, &config.path, frame_bytes);
        spec.params = config.params.clone();
        spec.limits = config.limits.clone();
        spec.transport = config.transport;
        spec.runner = options.runner.clone();
        spec.sandbox = config.sandbox;
        spec.slots = views[0].slot_count();
        spec.standby = config.max_restarts > 0;
        spec.snapshot_input = config.snapshot_input;
        spec.input = Some(input);
        let first = PluginProcess::spawn_stage(spec, &views[0])?;
        let output_shape = first.output_shape().ok_or_else(|| first_error(&first, "it declared no output shape"))?;
        // The format its frames are converted to when they come in another, fixed at start.
        let takes = first.input_shape().map_or(input.format, |shape| shape.format);
        let wanted = views.len();
        let mut workers = vec![];
        let resizes = output_shape.height != input.height;
        if wanted > 1 && (first.band_context().is_none() || resizes) {
            if config.workers.is_some() {
                let why = if resizes { "changes the frame's height" } else { "works on whole frames only" };
                tracing::warn!("plugin \"{}\" {why}: 1 worker, not {wanted}", config.name);
            }
        } else if wanted > 1 {
            // The others start together: each is a process start and an instance, nothing to compile.
            let starter = first.worker_starter();
            let started: Vec<Result<PluginProcess, PluginError>> = std::thread::scope(|scope| {
                let starter = &starter;
                let handles: Vec<_> = views[1..].iter().map(|view| scope.spawn(move || starter.spawn(view))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(first_error(&first, "a worker's start panicked"))))
                    .collect()
            });
            for worker in started {
                let worker = worker?;
                if worker.output_shape() != Some(output_shape) {
                    return Err(first_error(&first, "its workers declared different output shapes"));
                }
                workers.push(Worker::new(worker));
            }
        }
        workers.insert(0, Worker::new(first));
        let stats = PluginStats { workers: workers.len() as u32, ..PluginStats::new(&config.name) };
        let (spare_bands, band_outputs) = (Vec::new(), Vec::new());
        Ok(Self {
            config: config.clone(),
            workers,
            region: views[0].clone(),
            stats,
            spare_bands,
            band_outputs,
            converter: None,
            unconverted: Vec::new(),
            meta_scratch: Vec::new(),
            bad_meta_said: false,
            output_shape,
            takes,
            live: None,
            changes: VecDeque::new(),
            live_changes: None,
            state: super::KeptState::new(config),
            swapper: super::Swapper::default(),
            last_preview: None,
        })
    }

    /// Parameter changes for this stage, in time order, applied as frames reach their times.
    pub(super) fn change_at(&mut self, changes: Vec<crate::config::ParamChange>) {
        self.changes = changes.into();
    }

    /// Takes new values sent while running from `receiver`.
    pub(super) fn take_live_changes(&mut self, receiver: Receiver<super::LiveRequest>) {
        self.live_changes = Some(receiver);
    }

    /// Values sent while running become changes due at the next frame, before any later one.
    fn queue_live_changes(&mut self) {
        while let Some(request) = self.live_changes.as_ref().and_then(|r| r.try_recv().ok()) {
            match request {
                super::LiveRequest::Params(params) => {
                    let plugin = self.config.name.clone();
                    self.changes.push_front(crate::config::ParamChange { at_us: i64::MIN, plugin, params });
                }
                super::LiveRequest::KeepState => self.state.ask(),
                super::LiveRequest::Swap(module) => match self.workers.first().and_then(|w| w.process.as_ref()) {
                    Some(process) => self.swapper.ask(process, module),
                    None => tracing::warn!("plugin \"{}\" is disabled: nothing to swap", self.config.name),
                },
            }
        }
    }

    /// Gives every running worker the changes due by `timestamp_us` (none of them has a frame
    /// in flight). A change a worker refuses leaves it with its old values, and is said.
    fn apply_changes(&mut self, timestamp_us: i64) {
        while let Some(change) = self.changes.front().filter(|c| c.at_us <= timestamp_us).cloned() {
            self.changes.pop_front();
            for worker in &mut self.workers {
                if let Some(process) = worker.process.as_mut()
                    && let Err(e) = process.set_params(&change.params)
                {
                    tracing::warn!("the change at {} ms was not applied: {e}", change.at_us / 1000);
                }
            }
            self.stats.param_changes += 1;
        }
    }

    /// With no frame in flight: the parameter changes due by `timestamp_us`, and the plugin's
    /// state when it is due to be kept (a plugin run as one process: workers each have their own).
    fn between_frames(&mut self, timestamp_us: i64) {
        if self.swapper.due()
            && let Some(first) = self.workers.first_mut().and_then(|w| w.process.as_mut())
            && self.swapper.swap(first, &mut self.stats, &mut self.state)
        {
            if let Some((live, _, _)) = &self.live {
                live.described(&self.config.name, first.description().clone(), first.sandbox().summary());
            }
            // The other workers take the same module (compiled already); one that cannot, or a
            // module that works on whole frames only, leaves its bands to the others.
            let module = first.module().to_path_buf();
            let bands = first.band_context().is_some();
            for worker in self.workers.iter_mut().skip(1) {
                let swapped = worker.process.as_mut().filter(|_| bands).map(|process| {
                    let candidate = process.prepare_swap(module.clone());
                    process.swap(candidate).is_ok()
                });
                if (swapped == Some(false) || !bands)
                    && let Some(process) = worker.process.take()
                {
                    let _ = process.shutdown();
                }
            }
        }
        self.apply_changes(timestamp_us);
        if self.state.due()
            && let [worker] = self.workers.as_mut_slice()
            && let Some(process) = worker.process.as_mut()
        {
            self.state.keep(process, &mut self.stats);
        }
    }

    /// Publishes the stage's statistics to `live`, as stage `index`, while it runs.
    pub(super) fn publish_to(&mut self, live: super::Live, index: usize) {
        live.publish(index, &self.stats);
        self.live = Some((live, index, Instant::now()));
    }

    /// Publishes the statistics if the last time was a while ago (or `now` says so).
    fn publish(&mut self, now: bool) {
        const EVERY: Duration = Duration::from_millis(250);
        if let Some((live, index, last)) = &mut self.live
            && (now || last.elapsed() >= EVERY)
        {
            live.publish(*index, &self.stats);
            *last = Instant::now();
        }
    }

    /// The shape of the frames this stage makes, as its plugin declared it at start.
    pub(super) fn output_shape(&self) -> plugin_sdk::Shape {
        self.output_shape
    }

    /// Frames that arrive in a format the plugin does not take are converted (with `colour`
    /// for Y'CbCr) and counted in `log`.
    pub(super) fn convert_with(&mut self, colour: plugin_sdk::convert::Colour, log: ConversionLog) {
        self.converter = Some(Converter::new(format!("before \"{}\"", self.config.name), colour, log));
    }

    /// Converts the lane's input in place to a format the plugin takes, when it takes another:
    /// copied out once, converted, written back (the lane's buffers hold any format of the
    /// frame's size). `None`: it cannot be (the plugin then refuses the frame).
    fn convert_input(&mut self, lane: &mut Lane, desc: FrameDesc) -> Option<FrameDesc> {
        let to = self.takes;
        if desc.format == to as u32 {
            return None;
        }
        let format = plugin_sdk::PixelFormat::from_u32(desc.format)?;
        let converter = self.converter.as_mut()?;
        self.region.read_pixels(lane, Buffer::Input, desc.byte_len() as usize, &mut self.unconverted);
        let frame =
            plugin_sdk::Frame::new(&self.unconverted, desc.width, desc.height, desc.stride, format, desc.timestamp_us)
                .ok()?;
        let converted = converter.convert(&frame, to).ok()?;
        self.region.write_pixels(lane, Buffer::Input, &converted.data);
        let stride = converted.stride;
        Some(FrameDesc { stride, format: to as u32, ..desc })
    }

    /// The running processes (for descriptions and sandbox reports).
    pub(super) fn processes(&self) -> impl Iterator<Item = &PluginProcess> {
        self.workers.iter().filter_map(|w| w.process.as_ref())
    }

    /// Serves frames from `input` to `output` until the input ends or the stage fails.
    pub(super) fn run(
        mut self,
        input: Receiver<Carried>,
        output: SyncSender<Carried>,
        free: Sender<Lane>,
    ) -> (PluginStats, Result<(), PluginError>) {
        let result = self.serve(&input, &output, &free);
        self.publish(true);
        for worker in &mut self.workers {
            if let Some(process) = worker.process.as_mut() {
                if let Some(warm) = worker.warm
                    && let Ok(now) = process.runner_stats()
                    && now.frames > warm.frames
                {
                    // Every worker serves every frame (its band of it): their faults add up.
                    self.stats.plugin_faults_per_frame +=
                        now.minor_faults.saturating_sub(warm.minor_faults) as f64 / (now.frames - warm.frames) as f64;
                }
                self.stats.copies += process.copies();
            }
            if let Some(process) = worker.process.take() {
                let _ = process.shutdown();
            }
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
        // A frame held back until the frames before it are done, for a parameter change.
        let mut waiting: Option<Carried> = None;
        loop {
            self.publish(false);
            // A death noticed outside a frame (a submit, or asking for counters) is recovered
            // from here, as is one a frame found.
            self.recover(&mut pending);
            if pending.is_empty()
                && let Some(carried) = waiting.take()
            {
                self.between_frames(carried.desc.timestamp_us);
                if let Some(entry) = self.submit(carried, output, free, false)? {
                    pending.push_back(entry);
                }
            }
            // Hand over every frame that has arrived: the plugin works while we wait.
            while !ended && waiting.is_none() {
                let next = if pending.is_empty() {
                    // Idle until the next frame (the run may be paused): the figures as they stand.
                    self.publish(true);
                    input.recv().map_err(|_| TryRecvError::Disconnected)
                } else {
                    input.try_recv()
                };
                match next {
                    Ok(carried) => {
                        self.queue_live_changes();
                        // New parameters apply from the first frame at or after their time: the
                        // frames before it finish with the old ones first.
                        if self.changes.front().is_some_and(|c| c.at_us <= carried.desc.timestamp_us)
                            || self.state.due()
                            || self.swapper.due()
                        {
                            if !pending.is_empty() {
                                waiting = Some(carried);
                                break;
                            }
                            self.between_frames(carried.desc.timestamp_us);
                        }
                        let busy = !pending.is_empty();
                        if let Some(entry) = self.submit(carried, output, free, busy)? {
                            pending.push_back(entry);
                        }
                        if self.any_dead() {
                            // Restart before the next frame.
                            break;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => ended = true,
                }
            }
            if self.any_dead() {
                continue;
            }
            let Some(entry) = pending.pop_front() else {
                if waiting.is_some() {
                    continue;
                }
                return Ok(());
            };
            // Service time: from when the plugin could start on this frame to when it was done.
            let started = entry.submitted.max(last_done);
            let (carried, result) = self.collect(entry);
            last_done = Instant::now();
            let passes_through = result.is_err() && self.config.on_error == OnError::Passthrough;
            if passes_through && !pending.is_empty() {
                // The frame's copy will go where this plugin can write while it runs: let it
                // finish what it holds first, and keep the results for after this frame.
                let mut held = Vec::new();
                while !self.any_dead() {
                    let Some(entry) = pending.pop_front() else { break };
                    let started = entry.submitted.max(last_done);
                    let (carried, result) = self.collect(entry);
                    last_done = Instant::now();
                    held.push((carried, result, last_done - started));
                }
                // A worker died meanwhile: the others must not run either while the copy is read.
                if !pending.is_empty() {
                    self.kill_all();
                }
                if !self.finish(carried, result, last_done - started, output, free)? {
                    return Ok(());
                }
                for (carried, result, took) in held {
                    if !self.finish(carried, result, took, output, free)? {
                        return Ok(());
                    }
                }
            } else if !self.finish(carried, result, last_done - started, output, free)? {
                return Ok(());
            }
        }
    }

    fn any_dead(&self) -> bool {
        self.workers.iter().any(Worker::is_dead)
    }

    /// Kills every running worker (the host's own doing: their restarts need no back-off, though
    /// `max_restarts` still counts them).
    fn kill_all(&mut self) {
        for worker in &mut self.workers {
            // One that died by itself keeps its count and back-off.
            if let Some(process) = worker.process.as_mut()
                && process.pid().is_some()
            {
                process.kill();
                worker.failures_in_a_row = 0;
                // Not the plugin's failure: nothing to count, and no restart to charge it.
                worker.death_counted = true;
                worker.killed_by_host = true;
            }
        }
    }

    /// Waits for every band of a frame. The result is the frame's output descriptor, or the
    /// first failure (the frame then carries its input descriptor to the policy).
    fn collect(&mut self, entry: Pending) -> (Carried, Result<FrameDesc, PluginError>) {
        let Pending { frame, lane, input, meta, reading, mut bands, mut error, .. } = entry;
        let mut outputs = std::mem::take(&mut self.band_outputs);
        outputs.clear();
        for band in &mut bands {
            if let Some(ticket) = band.ticket.take() {
                match self.receive(band.worker, ticket) {
                    Ok(desc) => outputs.push((band.worker, desc)),
                    Err(failure) => {
                        error.get_or_insert(failure);
                    }
                }
            }
        }
        // Rows whose worker was disabled while the frame was in flight: a running worker takes
        // them now (its own band of this frame is back, so the frame's slot is free in it).
        for band in bands.iter().filter(|b| b.orphan) {
            if error.is_some() {
                break;
            }
            let running = self.workers.iter().position(|w| w.process.as_ref().is_some_and(|p| p.pid().is_some()));
            let Some(index) = running else {
                error = Some(self.not_running());
                break;
            };
            let process = self.workers[index].process.as_mut().expect("a running worker has a process");
            let done = process.submit_band(&lane, frame, &input, band.rows.clone());
            match done.and_then(|ticket| self.receive(index, ticket)) {
                Ok(desc) => outputs.push((index, desc)),
                Err(failure) => error = Some(failure),
            }
        }
        if error.is_none() {
            error = self.check_shapes(&outputs);
        }
        let done = outputs.first().map(|&(_, desc)| desc);
        bands.clear();
        self.spare_bands.push(bands);
        self.band_outputs = outputs;
        // The plugin is done reading its input buffer, whatever the outcome.
        drop(reading);
        let result = match (error, done) {
            (Some(error), _) => Err(error),
            (None, Some(desc)) => Ok(desc),
            (None, None) => Err(self.not_running()),
        };
        (Carried { frame, lane, desc: input, meta, reading: None }, result)
    }

    /// Waits for one worker's band.
    fn receive(&mut self, index: usize, ticket: BandTicket) -> Result<FrameDesc, PluginError> {
        let plugin = &self.config.name;
        let worker = &mut self.workers[index];
        let result = match worker.process.as_mut() {
            Some(process) => process.receive_band(ticket),
            None => Err(PluginError { plugin: plugin.clone(), kind: ErrorKind::NotRunning }),
        };
        // This frame's failure is the death's count.
        worker.death_counted |= result.is_err() && worker.is_dead();
        result
    }

    /// Bands of one frame must describe one output, of the shape the plugin declared at start:
    /// a worker that says otherwise than the rest (the majority, among those of the declared
    /// shape) is killed, and so is a lone worker whose frame is not of that shape.
    fn check_shapes(&mut self, outputs: &[(usize, FrameDesc)]) -> Option<PluginError> {
        let declared = self.output_shape;
        let as_declared =
            |d: &FrameDesc| (d.width, d.height, d.format) == (declared.width, declared.height, declared.format as u32);
        // Every frame, as a rule: all agree, one pass; the vote below only runs on a lie.
        let first = outputs.first()?.1;
        if as_declared(&first) && outputs.iter().all(|(_, desc)| *desc == first) {
            return None;
        }
        let votes = |desc: &FrameDesc| outputs.iter().filter(|(_, other)| other == desc).count();
        let agreed = outputs.iter().map(|(_, desc)| desc).filter(|d| as_declared(d)).max_by_key(|d| votes(d));
        let mut lied = false;
        for (index, desc) in outputs {
            if Some(desc) != agreed {
                let worker = &mut self.workers[*index];
                if let Some(process) = worker.process.as_mut() {
                    process.kill();
                }
                // Counted as this frame's violation, not again as a death.
                worker.death_counted = true;
                lied = true;
            }
        }
        let why = match (outputs.len(), agreed) {
            (1, _) | (_, None) => "the frame is not of the shape it declared at start",
            _ => "its workers gave the frame's bands different shapes",
        };
        lied.then(|| PluginError { plugin: self.config.name.clone(), kind: Violation::OutputDescriptor(why).into() })
    }

    /// Makes `meta` the metadata the plugin set on a frame it finished, when it set some that
    /// decodes (copied out once, then checked); otherwise the input's stands. Bytes that do not
    /// decode are said once per stage, not once per frame.
    fn take_output_meta(&mut self, lane: &Lane, meta: &mut Vec<u8>) {
        if !self.region.read_meta(lane.slot(), Buffer::Output, &mut self.meta_scratch) {
            return;
        }
        if plugin_sdk::FrameMeta::decode(&self.meta_scratch).is_some() {
            std::mem::swap(meta, &mut self.meta_scratch);
        } else if !std::mem::replace(&mut self.bad_meta_said, true) {
            tracing::warn!("plugin \"{}\" set frame metadata that does not decode; kept the input's", self.config.name);
        }
    }

    fn not_running(&self) -> PluginError {
        PluginError { plugin: self.config.name.clone(), kind: ErrorKind::NotRunning }
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
                for worker in &mut self.workers {
                    worker.failures_in_a_row = 0;
                    if self.stats.frames == WARM_UP_FRAMES
                        && let Some(process) = worker.process.as_mut()
                    {
                        worker.warm = process.runner_stats().ok();
                    }
                }
                self.stats.latency_us.record(took.as_micros() as u64);
                let mut carried = carried;
                self.take_output_meta(&carried.lane, &mut carried.meta);
                if let Some((live, _, _)) = &self.live {
                    let (name, last) = (&self.config.name, &mut self.last_preview);
                    live.offer_buffer(name, last, &self.region, &carried.lane, Buffer::Output, &desc);
                }
                Ok(output.send(Carried { desc, ..carried }).is_ok())
            }
            Err(error) => {
                if !self.disabled() {
                    self.stats.count_failure(&error.kind);
                }
                if self.config.on_error == OnError::Fail {
                    return Err(error);
                }
                // Nothing else is in the plugin's hands here (see `serve`).
                self.apply_policy(&error, carried, output, free, false);
                Ok(true)
            }
        }
    }

    /// Whether every worker is disabled: the policy then handles every frame, reported once.
    fn disabled(&self) -> bool {
        self.workers.iter().all(|w| w.process.is_none())
    }

    /// Restarts each worker that died, takes back its bands of the frames in flight (their
    /// inputs are intact: a plugin only writes its output buffer) and hands them to the new
    /// process. A band that cannot be handed over fails its frame.
    fn recover(&mut self, pending: &mut VecDeque<Pending>) {
        for index in 0..self.workers.len() {
            if !self.workers[index].is_dead() {
                continue;
            }
            let worker = &mut self.workers[index];
            if !std::mem::take(&mut worker.death_counted) {
                self.stats.count_failure(&ErrorKind::NotRunning);
            }
            let process = worker.process.as_mut().expect("a dead worker has a process");
            for entry in pending.iter_mut() {
                for band in entry.bands.iter_mut().filter(|b| b.worker == index) {
                    if let Some(ticket) = band.ticket.take() {
                        // Void: the process is gone.
                        let _ = process.receive_band(ticket);
                    }
                }
            }
            self.restart(index);
            for entry in pending.iter_mut() {
                for band in entry.bands.iter_mut().filter(|b| b.worker == index) {
                    let Some(process) = self.workers[index].process.as_mut() else {
                        // Disabled: the rows go to another worker when the frame is collected.
                        band.orphan = true;
                        continue;
                    };
                    match process.submit_band(&entry.lane, entry.frame, &entry.input, band.rows.clone()) {
                        Ok(ticket) => band.ticket = Some(ticket),
                        Err(error) => {
                            entry.error.get_or_insert(error);
                        }
                    }
                }
            }
        }
    }

    /// Submits a frame to every running worker, a band each, or applies the policy when none
    /// can take it. Returns the entry to wait for, if any band went to a worker.
    fn submit(
        &mut self,
        carried: Carried,
        output: &SyncSender<Carried>,
        free: &Sender<Lane>,
        busy: bool,
    ) -> Result<Option<Pending>, PluginError> {
        let Carried { frame, mut lane, mut desc, meta, reading } = carried;
        // The frame's metadata beside its input; the output's is unset until the plugin sets it.
        self.region.write_meta(lane.slot(), Buffer::Input, Some(&meta));
        self.region.write_meta(lane.slot(), Buffer::Output, None);
        if let Some(converted) = self.convert_input(&mut lane, desc) {
            desc = converted;
        }
        let running = self.workers.iter().filter(|w| w.process.is_some()).count() as u32;
        let mut bands = self.spare_bands.pop().unwrap_or_default();
        let mut error = None;
        let mut k = 0;
        for index in 0..self.workers.len() {
            if self.workers[index].process.is_none() {
                continue;
            }
            let rows = band_rows(desc.height, k, running);
            k += 1;
            // An empty band is no work (a frame shorter than twice the workers).
            if rows.is_empty() {
                continue;
            }
            let worker = &mut self.workers[index];
            let process = worker.process.as_mut().expect("running workers have a process");
            match process.submit_band(&lane, frame, &desc, rows.clone()) {
                Ok(ticket) => bands.push(Band { worker: index, rows, ticket: Some(ticket), orphan: false }),
                Err(refused) => {
                    worker.death_counted |= worker.is_dead();
                    error.get_or_insert(refused);
                }
            }
        }
        let submitted = Instant::now();
        if !bands.is_empty() {
            // The state is kept after whole frames: counted as they go in.
            self.state.frame_done();
            return Ok(Some(Pending { frame, lane, input: desc, meta, reading, bands, error, submitted }));
        }
        self.spare_bands.push(bands);
        let error =
            error.unwrap_or_else(|| PluginError { plugin: self.config.name.clone(), kind: ErrorKind::NotRunning });
        if !self.disabled() {
            self.stats.count_failure(&error.kind);
        }
        if self.config.on_error == OnError::Fail {
            return Err(error);
        }
        self.apply_policy(&error, Carried { frame, lane, desc, meta, reading }, output, free, busy);
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
        let Carried { frame, mut lane, desc, meta, reading } = carried;
        // A disabled plugin was reported once, when it was disabled.
        let report = !self.disabled() || !matches!(error.kind, ErrorKind::NotRunning);
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
                // run. Workers busy with other frames are killed first (those frames are handed
                // to their replacements); then this stage waits until the reader is done.
                if busy {
                    self.kill_all();
                }
                // The next stage reads the lane's next boundary: the one copy of the failure path.
                self.region.copy_input_to_output(&mut lane, desc.byte_len() as usize);
                drop(reading);
                self.stats.copies += 1;
                let (done_reading, read) = channel();
                if output.send(Carried { frame, lane, desc, meta, reading: Some(done_reading) }).is_ok() {
                    // Ends with an error when the reader drops its end: it is done.
                    let _ = read.recv();
                }
            }
        }
    }

    /// Starts a fresh process for a worker that died (after a back-off when failures repeat);
    /// after `max_restarts` within the window, or when it cannot start, the worker stays
    /// disabled. With every worker disabled the policy handles every further frame.
    fn restart(&mut self, index: usize) {
        let mut failed_starts = 0u32;
        let charged = !std::mem::take(&mut self.workers[index].killed_by_host);
        loop {
            let (config, worker) = (&self.config, &mut self.workers[index]);
            let now = Instant::now();
            let window = config.restart_window;
            worker.recent_restarts.retain(|&at| now.duration_since(at) < window);
            let restarts = worker.recent_restarts.len();
            let over = charged && restarts >= config.max_restarts as usize;
            if over || failed_starts >= config.max_restarts.max(1) {
                // A module swapped in moments ago that keeps crashing: the one before comes back.
                if let Some(process) = worker.process.as_mut()
                    && self.swapper.roll_back(process, window, &mut self.stats)
                {
                    if let Some((live, _, _)) = &self.live {
                        live.described(&self.config.name, process.description().clone(), process.sandbox().summary());
                    }
                    worker.recent_restarts.clear();
                    worker.failures_in_a_row = 0;
                    return;
                }
                if let Some(process) = worker.process.take() {
                    self.stats.copies += process.copies();
                }
                let what = match (self.disabled(), self.config.on_error) {
                    (false, _) => "its other workers take its bands",
                    (true, OnError::Passthrough) => "passing through every further frame",
                    (true, OnError::Skip | OnError::Fail) => "skipping every further frame",
                };
                let which = match self.workers.len() {
                    1 => String::new(),
                    _ => format!(" (worker {})", index + 1),
                };
                let name = &self.config.name;
                tracing::error!(
                    "plugin \"{name}\"{which}: disabled after {restarts} restarts within {window:?}; {what}"
                );
                return;
            }
            let Some(process) = worker.process.as_mut() else { return };
            if charged {
                worker.recent_restarts.push_back(now);
                worker.failures_in_a_row += 1;
            }
            std::thread::sleep(restart_backoff(worker.failures_in_a_row));
            self.stats.restarts += 1;
            let started = Instant::now();
            match process.restart() {
                Ok(()) => {
                    self.stats.restart_us.record(started.elapsed().as_micros() as u64);
                    self.state.restore(process, &mut self.stats);
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

/// An error in the name of `process`'s plugin.
fn first_error(process: &PluginProcess, why: &str) -> PluginError {
    PluginError { plugin: process.name().to_string(), kind: ErrorKind::Spawn(std::io::Error::other(why.to_string())) }
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
