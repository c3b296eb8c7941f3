//! The whole benchmark, in the order it is printed.

use super::*;

/// Measures everything; takes from a few seconds (`quick`) to a couple of minutes.
pub fn run(options: &BenchOptions) -> anyhow::Result<Report> {
    let plan = options.plan();
    let sizes = if options.quick { &SIZES[..QUICK_SIZES] } else { &SIZES[..] };
    let invert = options.plugin_dir.join("invert.wasm");
    for module in [&invert, &options.identity] {
        ensure!(module.is_file(), "{} is missing (build the plugins first: `cargo xtask build`)", module.display());
    }

    let cpu_before = CpuTimes::now();
    let round_trips = Plan { samples: plan.samples.max(1000), min_samples: plan.samples.max(1000), ..plan };
    let pipe_round_trip = pipe_round_trip(&round_trips).context("pipe round trip")?;
    let futex_round_trip = futex_round_trip(&round_trips);
    let handoff_round_trip = handoff_round_trip(&round_trips);

    let mut results = Vec::new();
    for &(width, height) in sizes {
        results.push(
            measure_size(options, &plan, &invert, width, height)
                .with_context(|| format!("measuring {width}x{height}"))?,
        );
    }
    let startup = startup(options, &invert, options.spawns()).context("measuring start-up")?;
    let chain = chain(&options.plugin_dir, options).context("measuring the pipeline")?;
    let branches = branches(&options.plugin_dir, options).context("measuring the two-branch graph")?;

    let mut rows = Vec::new();
    for r in &results {
        for (transport, trip, fps) in [
            ("shm", &r.shm.handoff, r.shm.invert_in_place_frames_per_s),
            ("shm-copying-api", &r.shm.round_trip, r.shm.invert_frames_per_s),
            ("pipe", &r.pipe.round_trip, r.pipe.invert_frames_per_s),
        ] {
            rows.push(Row {
                transport: transport.into(),
                width: r.width,
                height: r.height,
                frame_bytes: r.frame_bytes,
                p50_us: trip.p50_us,
                p99_us: trip.p99_us,
                samples: trip.samples,
                frames_per_s: fps,
            });
        }
    }
    let baselines = Baselines {
        pipe_round_trip,
        futex_round_trip,
        handoff_round_trip,
        memcpy: results
            .iter()
            .map(|r| Memcpy {
                frame_bytes: r.frame_bytes,
                p50_us: r.memcpy.p50_us,
                p99_us: r.memcpy.p99_us,
                gb_per_s: r.frame_bytes as f64 / r.memcpy.p50_us / 1e3,
            })
            .collect(),
    };
    let mut ratios = ratios(&baselines, &results, &startup);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let v = chain.four_stages_frames_per_s / chain.one_stage_frames_per_s;
    ratios.push(ratio(
        format!(
            "pipeline frames/s at {}x{}: 4 invert stages / 1 invert stage ({cores} cores; the goal is for >= 6)",
            chain.width, chain.height
        ),
        v,
        (cores >= 6).then_some((">= 0.8", v >= 0.8)),
    ));
    ratios.push(ratio(
        format!(
            "two-branch graph frames/s at {}x{} (input once, read in place by both) / the two chains as separate \
             processes",
            branches.width, branches.height
        ),
        branches.ratio,
        None,
    ));
    let comparison = comparison(&baselines, &results, &startup);
    let cpu = cpu_before.zip(CpuTimes::now()).map(|(before, after)| after.since(&before));
    Ok(Report {
        cores,
        other_cpu_percent: cpu.map(|c| c.0),
        steal_percent: cpu.map(|c| c.1),
        iterations: plan.samples,
        quick: options.quick,
        baselines,
        rows,
        sizes: results,
        startup,
        chain: chain.clone(),
        branches: branches.clone(),
        ratios,
        comparison,
        notes: vec![
            "Raw baselines run in this one process, between two threads; the scheduler places them on cores.".into(),
            "shm: the plugin reads and writes the slot buffers in place (they are mapped into its wasm memory); \
             nobody copies. The shm rows use the lane API (PluginProcess::submit_lane/receive_lane), which a \
             pipeline stage uses: the frame is written into its lane once and handed over and back. The \
             shm-copying-api rows use submit(&Frame)/receive(&mut OwnedFrame), which copy the frame into the \
             slot and the result out (two memcpy per frame), for callers that hold their frames elsewhere."
                .into(),
            "pipe: each frame travels over the control pipes as a small postcard header and its raw bytes, each way: \
             written with writev from where the frame lies, read straight into the plugin's memory and back into \
             the slot's buffer (1 MiB pipe buffers); the raw-pipe ratio compares it with plain pipes between two \
             threads moving the same bytes."
                .into(),
            "invert frames/s keeps every slot in flight (the host copies frame n+1 in while the plugin works on \
             frame n); native invert is the same byte loop compiled natively, one frame at a time, one thread."
                .into(),
            format!(
                "A measurement stops at {:?} once it has {} samples, so large frames (and the pipe) may have fewer \
                 than {}; each figure's sample count is in the JSON.",
                plan.budget, plan.min_samples, plan.samples
            ),
            format!(
                "Pipeline: `plugin-host run`'s on the test pattern (a ring of pre-made frames, copied into each lane) \
                 to a null output, {} frames: one stage as 1, 2 and 4 workers (each a process writing its band of \
                 every frame in place), then 4 invert stages of one worker. Each worker and stage needs a core to \
                 overlap fully, and the source's copy into the lane takes one too: on this machine's {cores} cores \
                 the ratios are bounded by {cores}; a machine with more cores shows its own.",
                chain.frames
            ),
            format!(
                "Two branches: {} to `blur radius=2 -> invert` and `sobel -> threshold`, null outputs; as one \
                 graph ({:.0} frames/s, {} copies), the input decoded once and read in place by both branches, and \
                 as two chains in two processes started together, each decoding its own ({:.0} frames/s): medians \
                 of {ROUNDS} interleaved rounds.",
                branches.input, branches.graph_frames_per_s, branches.graph_copies, branches.separate_frames_per_s
            ),
        ],
    })
}
