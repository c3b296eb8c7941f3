//! A chain of equal plugins through the real pipeline.

use super::*;

/// A chain of equal plugins through the real pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct ChainResult {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub one_stage_frames_per_s: f64,
    pub four_stages_frames_per_s: f64,
    /// Frames copied between lane buffers in the 4-stage run (0: ownership passed along).
    pub four_stages_copies: u64,
}

pub(crate) fn chain(invert: &Path, options: &BenchOptions) -> anyhow::Result<ChainResult> {
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
    let run = |stages: usize| -> anyhow::Result<plugin_host_cli::pipeline::stats::RunStats> {
        let plugin = |k: usize| PluginConfig {
            name: format!("invert-{k}"),
            path: invert.to_path_buf(),
            limits: Limits::default(),
            on_error: OnError::Fail,
            max_restarts: 0,
            restart_window: std::time::Duration::from_secs(60),
            transport: Transport::SharedMemory,
            sandbox: plugin_host::sys::sandbox::Level::Standard,
            snapshot_input: false,
            workers: Some(1),
            params: Vec::new(),
        };
        let config = Config {
            file: PathBuf::from("(bench)"),
            input: InputConfig::Testsrc { width, height, frames },
            plugins: (0..stages).map(plugin).collect(),
            output: OutputConfig::Null,
            ring: plugin_host_cli::config::DEFAULT_RING,
        };
        let run_options = RunOptions { max_frames: None, runner: options.runner.clone() };
        let (stats, result) = Prepared::new(&config, run_options)?.run(&mut Silent);
        result?;
        Ok(stats)
    };
    let one = run(1)?;
    let four = run(4)?;
    Ok(ChainResult {
        width,
        height,
        frames,
        one_stage_frames_per_s: one.fps(),
        four_stages_frames_per_s: four.fps(),
        four_stages_copies: four.copies,
    })
}
