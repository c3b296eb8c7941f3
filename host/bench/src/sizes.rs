//! Frame round trips and throughput per transport and size, and the zero-copy lane path.

use super::*;

/// A pseudo-random RGBA frame, every page touched.
pub(crate) fn test_frame(width: u32, height: u32) -> OwnedFrame {
    let mut frame = OwnedFrame::new(width, height, PixelFormat::Rgba8);
    let mut x: u32 = 0x9E37_79B9;
    for byte in &mut frame.data {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte = x as u8;
    }
    frame
}

pub(crate) const PAGE: usize = 4096;

/// `len` bytes of `buffer` (which has a page to spare) starting on a page boundary, like a slot
/// buffer. With source and destination both page-aligned the memcpy baseline avoids a slow path
/// of `rep movsb` on AMD Zen that hits copies of up to ~64 KiB when `(dst - src) % 4096` is
/// just above zero (16 for two adjacent 4 KiB heap blocks: 25 times slower here).
pub(crate) fn page_aligned(buffer: &mut [u8], len: usize) -> &mut [u8] {
    let start = (PAGE - buffer.as_ptr() as usize % PAGE) % PAGE;
    &mut buffer[start..start + len]
}

/// The invert plugin's loop (plugins/invert), native.
pub(crate) fn native_invert(src: &[u8], dst: &mut [u8]) {
    let (dst_blocks, dst_rest) = dst.as_chunks_mut::<64>();
    let (src_blocks, src_rest) = src.as_chunks::<64>();
    for (d, s) in dst_blocks.iter_mut().zip(src_blocks) {
        invert_rgba(d, s);
    }
    invert_rgba(dst_rest, src_rest);
}

/// Always inlined, so that each 64-byte block is one straight run of vector code, as in the plugin
/// (left to itself, the compiler stopped inlining it when the benchmark became its own crate,
/// which halved the native figure).
#[inline(always)]
pub(crate) fn invert_rgba(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let pixel = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) ^ 0x00ff_ffff;
        d.copy_from_slice(&pixel.to_le_bytes());
    }
}

pub(crate) fn spec(
    options: &BenchOptions,
    name: &str,
    module: &Path,
    frame_bytes: u64,
    transport: Transport,
) -> PluginSpec {
    let mut spec = PluginSpec::new(name, module, frame_bytes);
    spec.limits = Limits { deadline: DEADLINE, ..Limits::default() };
    spec.runner.clone_from(&options.runner);
    spec.transport = transport;
    spec
}

pub(crate) fn spawn(
    options: &BenchOptions,
    name: &str,
    module: &Path,
    frame_bytes: u64,
    transport: Transport,
) -> anyhow::Result<PluginProcess> {
    Ok(PluginProcess::spawn(spec(options, name, module, frame_bytes, transport))?)
}

pub(crate) fn check_identity(output: &OwnedFrame, input: &OwnedFrame) -> anyhow::Result<()> {
    ensure!(
        (output.width, output.height, output.data.len()) == (input.width, input.height, input.data.len()),
        "identity returned a {}x{} frame of {} bytes",
        output.width,
        output.height,
        output.data.len()
    );
    Ok(())
}

pub(crate) fn measure_size(
    options: &BenchOptions,
    plan: &Plan,
    invert: &Path,
    width: u32,
    height: u32,
) -> anyhow::Result<SizeResult> {
    let input = test_frame(width, height);
    let bytes = input.data.len();
    let frame_bytes = bytes as u64;
    let slots = region::MIN_SLOTS as usize;

    // In-process baselines on page-aligned buffers (like slot buffers), batched so that small
    // frames are not lost in timer overhead: one memcpy, the native invert.
    let mut buffers: Vec<Vec<u8>> = (0..2).map(|_| vec![1u8; bytes + PAGE]).collect();
    let [source, destination] = &mut buffers[..] else { unreachable!("two buffers") };
    let source = page_aligned(source, bytes);
    let destination = page_aligned(destination, bytes);
    source.copy_from_slice(&input.data);
    let batch = batch_for(bytes);
    let memcpy = sample_batched(plan, batch, || {
        destination.copy_from_slice(black_box(&*source));
        black_box(&mut *destination);
    });
    let native_invert_latency = sample_batched(plan, batch, || {
        native_invert(black_box(&*source), destination);
        black_box(&mut *destination);
    });
    drop(buffers);
    let mut expected = vec![0u8; bytes];
    native_invert(&input.data, &mut expected);
    let mut output = OwnedFrame::new(width, height, PixelFormat::Rgba8);

    // shm, identity: the round trip, with submit() and receive() timed apart; after each, the
    // host API's two copies alone, on a region like the plugin's: slots used in turn, output
    // buffers that nobody writes (identity writes none either).
    let mut identity = spawn(options, "bench-identity", &options.identity, frame_bytes, Transport::SharedMemory)?;
    let copy_region = Region::create("plugin-host:bench-copies", region::MIN_SLOTS, frame_bytes)
        .map_err(|e| anyhow::anyhow!("creating a region for the copy baseline: {e}"))?;
    let mut copy_lanes = copy_region.take_lanes();
    let mut copy_output = Vec::with_capacity(bytes);
    let mut slot = 0;
    let mut times: [Vec<f64>; 6] = Default::default();
    plan.repeat(|keep| {
        let start = Instant::now();
        let ticket = identity.submit(&input.view())?;
        let submitted = Instant::now();
        identity.receive(ticket, &mut output)?;
        let received = Instant::now();
        let lane = &mut copy_lanes[slot];
        copy_region.write_pixels(lane, Buffer::Input, black_box(&input.data));
        let written = Instant::now();
        copy_region.read_pixels(lane, Buffer::Output, bytes, &mut copy_output);
        black_box(&mut copy_output);
        let read = Instant::now();
        slot = (slot + 1) % copy_lanes.len();
        if keep {
            let trip = micros(received - start);
            let copies = micros(read - received);
            for (k, v) in [
                trip,
                micros(submitted - start),
                micros(received - submitted),
                micros(written - received),
                micros(read - written),
                trip - copies,
            ]
            .into_iter()
            .enumerate()
            {
                times[k].push(v);
            }
        }
        Ok(())
    })?;
    check_identity(&output, &input)?;
    identity.shutdown()?;
    drop(copy_region);
    drop(copy_output);
    let [trips, submits, receives, copy_in, copy_out, trip_minus_copies] = times;
    let copies: Vec<f64> = copy_in.iter().zip(&copy_out).map(|(a, b)| a + b).collect();

    // The hand-off alone, and invert in place: the lane API, nothing copied by anyone.
    let mut lanes = LaneRunner::spawn(options, &options.identity, &input)?;
    let mut slot = 0;
    let handoff = sample(plan, || {
        lanes.round_trip(slot)?;
        slot = (slot + 1) % slots;
        Ok(())
    })?;
    lanes.shutdown()?;
    let mut lanes = LaneRunner::spawn(options, invert, &input)?;
    lanes.round_trip(0)?;
    if lanes.output(0) != expected {
        bail!("invert's output in place differs from the native invert");
    }
    let invert_in_place_frames_per_s = lanes.throughput(plan)?;
    lanes.shutdown()?;

    // shm, invert: one at a time, then with every slot in flight.
    let mut plugin = spawn(options, "bench-invert", invert, frame_bytes, Transport::SharedMemory)?;
    let invert_latency = sample(plan, || {
        let ticket = plugin.submit(&input.view())?;
        plugin.receive(ticket, &mut output)?;
        Ok(())
    })?;
    if output.data != expected {
        bail!("invert's output through shm differs from the native invert");
    }
    let shm_fps = throughput(&mut plugin, &input, &mut output, plan, slots)?;
    plugin.shutdown()?;

    // pipe, identity and invert.
    let mut identity = spawn(options, "bench-identity-pipe", &options.identity, frame_bytes, Transport::Pipe)?;
    let pipe_trip = sample(plan, || {
        let ticket = identity.submit(&input.view())?;
        identity.receive(ticket, &mut output)?;
        Ok(())
    })?;
    check_identity(&output, &input)?;
    identity.shutdown()?;
    let mut plugin = spawn(options, "bench-invert-pipe", invert, frame_bytes, Transport::Pipe)?;
    output.data.fill(0);
    let ticket = plugin.submit(&input.view())?;
    plugin.receive(ticket, &mut output)?;
    if output.data != expected {
        bail!("invert's output through the pipe differs from the native invert");
    }
    let pipe_fps = throughput(&mut plugin, &input, &mut output, plan, slots)?;
    plugin.shutdown()?;
    let raw_pipe = pipe_bytes_round_trip(plan, bytes)?;

    Ok(SizeResult {
        width,
        height,
        frame_bytes,
        memcpy,
        native_invert_frames_per_s: 1e6 / native_invert_latency.p50_us,
        native_invert: native_invert_latency,
        shm: ShmDetail {
            round_trip: latency(trips),
            submit: latency(submits),
            receive: latency(receives),
            copy_in: latency(copy_in),
            copy_out: latency(copy_out),
            copies: latency(copies),
            round_trip_minus_copies: latency(trip_minus_copies),
            handoff,
            invert: invert_latency,
            invert_frames_per_s: shm_fps,
            invert_in_place_frames_per_s,
        },
        pipe: PipeDetail { round_trip: pipe_trip, raw_round_trip: raw_pipe, invert_frames_per_s: pipe_fps },
    })
}

/// Frames per second through `plugin` with up to `in_flight` frames submitted at once: a
/// warm-up run, then `plan.samples` frames (fewer if the budget runs out).
pub(crate) fn throughput(
    plugin: &mut PluginProcess,
    input: &OwnedFrame,
    output: &mut OwnedFrame,
    plan: &Plan,
    in_flight: usize,
) -> anyhow::Result<f64> {
    let mut run = |count: usize, min: usize, budget: Duration| -> anyhow::Result<f64> {
        let mut tickets = VecDeque::with_capacity(in_flight);
        let start = Instant::now();
        let mut submitted = 0;
        while submitted < count && (submitted < min || start.elapsed() <= budget) {
            if tickets.len() == in_flight
                && let Some(ticket) = tickets.pop_front()
            {
                plugin.receive(ticket, output)?;
            }
            tickets.push_back(plugin.submit(&input.view())?);
            submitted += 1;
        }
        while let Some(ticket) = tickets.pop_front() {
            plugin.receive(ticket, output)?;
        }
        Ok(submitted as f64 / start.elapsed().as_secs_f64())
    };
    run(plan.warm.max(in_flight), 2, plan.budget / 4)?;
    run(plan.samples, plan.min_samples.max(in_flight), plan.budget)
}

/// A plugin driven through the zero-copy lane API ([`PluginProcess::submit_lane`] and
/// [`PluginProcess::receive_lane`]), as a stage of a chain is: the frame is written into every
/// lane once; each round trip then hands a lane over and waits for it back, nothing copied.
pub struct LaneRunner {
    pub(crate) plugin: PluginProcess,
    pub(crate) region: Region,
    pub(crate) lanes: Vec<Option<Lane>>,
    pub(crate) desc: plugin_sdk::abi::FrameDesc,
    pub(crate) frame: u64,
}

impl LaneRunner {
    /// Starts `module` (shm) with `frame` in every lane's input buffer.
    pub fn spawn(options: &BenchOptions, module: &Path, frame: &OwnedFrame) -> anyhow::Result<Self> {
        let frame_bytes = frame.data.len() as u64;
        let region = Region::create("plugin-host:bench-lanes", region::MIN_SLOTS, frame_bytes)
            .map_err(|e| anyhow::anyhow!("creating the region: {e}"))?;
        let mut lanes = region.take_lanes();
        for lane in &mut lanes {
            region.write_pixels(lane, Buffer::Input, &frame.data);
        }
        let desc = plugin_sdk::abi::FrameDesc {
            data: 0,
            capacity: u32::try_from(region.slot_capacity()).context("slot capacity")?,
            width: frame.width,
            height: frame.height,
            stride: frame.stride,
            format: frame.format as u32,
            timestamp_us: frame.timestamp_us,
        };
        let spec = spec(options, "bench-lanes", module, frame_bytes, Transport::SharedMemory);
        let plugin = PluginProcess::spawn_stage(spec, &region)?;
        Ok(Self { plugin, region, lanes: lanes.into_iter().map(Some).collect(), desc, frame: 0 })
    }

    pub(crate) fn submit(&mut self, index: usize) -> anyhow::Result<Ticket> {
        let lane = self.lanes[index].take().context("the lane is in flight")?;
        self.frame += 1;
        self.plugin.submit_lane(lane, self.frame, &self.desc).map_err(|refused| {
            let (error, lane) = *refused;
            self.lanes[index] = Some(lane);
            error.into()
        })
    }

    pub(crate) fn wait(&mut self, ticket: Ticket) -> anyhow::Result<()> {
        let (lane, result) = self.plugin.receive_lane(ticket);
        let index = lane.slot() as usize;
        self.lanes[index] = Some(lane);
        result?;
        Ok(())
    }

    /// Hands lane `index` over and waits for it back.
    pub fn round_trip(&mut self, index: usize) -> anyhow::Result<()> {
        let ticket = self.submit(index)?;
        self.wait(ticket)
    }

    /// The output the plugin left in lane `index`.
    pub fn output(&self, index: usize) -> Vec<u8> {
        let lane = self.lanes[index].as_ref().expect("lanes are home between round trips");
        let mut pixels = Vec::new();
        self.region.read_pixels(lane, Buffer::Output, self.desc.byte_len() as usize, &mut pixels);
        pixels
    }

    /// Frames per second with every lane in flight.
    pub(crate) fn throughput(&mut self, plan: &Plan) -> anyhow::Result<f64> {
        let lanes = self.lanes.len();
        let mut run = |count: usize, min: usize, budget: Duration| -> anyhow::Result<f64> {
            let mut tickets = VecDeque::with_capacity(lanes);
            let start = Instant::now();
            let mut submitted = 0;
            while submitted < count && (submitted < min || start.elapsed() <= budget) {
                if tickets.len() == lanes
                    && let Some(ticket) = tickets.pop_front()
                {
                    self.wait(ticket)?;
                }
                tickets.push_back(self.submit(submitted % lanes)?);
                submitted += 1;
            }
            while let Some(ticket) = tickets.pop_front() {
                self.wait(ticket)?;
            }
            Ok(submitted as f64 / start.elapsed().as_secs_f64())
        };
        run(plan.warm.max(lanes), 2, plan.budget / 4)?;
        run(plan.samples.max(lanes), plan.min_samples.max(lanes), plan.budget)
    }

    pub fn shutdown(self) -> anyhow::Result<()> {
        Ok(self.plugin.shutdown()?)
    }
}
