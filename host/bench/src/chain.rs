//! The real pipeline: one stage as 1, 2 and 4 workers (invert, and blur, which has work enough
//! to show what a core buys), and a chain of 4 invert stages.

use super::*;
use plugin_host_cli::pipeline::stats::RunStats;

/// Pipeline runs on the test pattern to a null output, each against its own 1-worker run.
#[derive(Debug, Clone, Serialize)]
pub struct ChainResult {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    /// The machine's cores: what the workers' ratios are bounded by.
    pub cores: usize,
    pub one_stage_frames_per_s: f64,
    pub four_stages_frames_per_s: f64,
    /// Frames copied between lane buffers in the 4-stage run (0: ownership passed along).
    pub four_stages_copies: u64,
    pub four_stages: PipelineRow,
    /// One stage as 1, 2 and 4 workers.
    pub workers: Vec<PipelineRow>,
}

/// One pipeline run.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineRow {
    pub plugin: String,
    pub stages: usize,
    pub workers: u32,
    pub frames_per_s: f64,
    /// Against the same plugin as one stage of one worker, in the same run.
    pub ratio_to_one_worker: f64,
    /// Minor page faults per frame after warm-up: the host, and the stages' processes together.
    pub host_faults_per_frame: f64,
    pub plugin_faults_per_frame: f64,
}

const WORKER_COUNTS: [u32; 3] = [1, 2, 4];

pub(crate) fn chain(plugins: &Path, options: &BenchOptions) -> anyhow::Result<ChainResult> {
    use plugin_host_cli::config::{Config, InputConfig, OnError, OutputConfig, PluginConfig};
    use plugin_host_cli::pipeline::{Prepared, Progress, RunOptions};
    struct Silent;
    impl Progress for Silent {
        fn start(&mut self, _: Option<u64>) {}
        fn frame_done(&mut self, _: u64) {}
        fn finish(&mut self) {}
    }
    let (width, height) = GOAL_SIZE;
    let frames = if options.quick { 30 } else { 200 };
    let run = |module: &str, params: &[(&str, i64)], stages: usize, workers: u32| -> anyhow::Result<RunStats> {
        let path = plugins.join(format!("{module}.wasm"));
        ensure!(path.is_file(), "{} is missing (build the plugins first: `cargo xtask build`)", path.display());
        let plugin = |k: usize| PluginConfig {
            name: format!("{module}-{k}"),
            path: path.clone(),
            limits: Limits::default(),
            on_error: OnError::Fail,
            max_restarts: 0,
            restart_window: std::time::Duration::from_secs(60),
            transport: Transport::SharedMemory,
            sandbox: plugin_host::sys::sandbox::Level::Standard,
            snapshot_input: false,
            state_every: 0,
            workers: Some(workers),
            params: params.iter().map(|&(k, v)| (k.to_string(), plugin_sdk::abi::ParamValue::Int(v))).collect(),
        };
        let config = Config::chain(
            PathBuf::from("(bench)"),
            InputConfig::Testsrc { width, height, frames },
            (0..stages).map(plugin).collect(),
            OutputConfig::Null,
        );
        let run_options =
            RunOptions { max_frames: None, runner: options.runner.clone(), live: None, changes: Vec::new() };
        let (stats, result) = Prepared::new(&config, run_options)?.run(&mut Silent);
        result?;
        Ok(stats)
    };
    let row = |module: &str, stages: usize, workers: u32, stats: &RunStats, one: f64| PipelineRow {
        plugin: module.to_string(),
        stages,
        workers,
        frames_per_s: stats.fps(),
        ratio_to_one_worker: stats.fps() / one,
        host_faults_per_frame: stats.host_faults_per_frame,
        plugin_faults_per_frame: stats.plugins.iter().map(|p| p.plugin_faults_per_frame).sum(),
    };
    let mut rows = Vec::new();
    let mut invert_one = 0.0;
    for (module, params) in [("invert", &[][..]), ("blur", &[("radius", 5)][..])] {
        let mut one = 0.0;
        for workers in WORKER_COUNTS {
            let stats = run(module, params, 1, workers)?;
            if workers == 1 {
                one = stats.fps();
            }
            rows.push(row(module, 1, workers, &stats, one));
        }
        if module == "invert" {
            invert_one = one;
        }
    }
    let four = run("invert", &[], 4, 1)?;
    Ok(ChainResult {
        width,
        height,
        frames,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        one_stage_frames_per_s: invert_one,
        four_stages_frames_per_s: four.fps(),
        four_stages_copies: four.copies,
        four_stages: row("invert", 4, 1, &four, invert_one),
        workers: rows,
    })
}
