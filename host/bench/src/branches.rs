//! A graph of two branches against the same two chains as separate processes: one input decoded
//! once and read in place by both branches, against each chain decoding it for itself. Both ways
//! every plugin is a process of its own and the branches run at once, on different cores.

use super::*;
use plugin_host_cli::config::Config;
use plugin_host_cli::pipeline::{Prepared, Progress, RunOptions};

/// Frames per second of the input, each way; medians of interleaved rounds.
#[derive(Debug, Clone, Serialize)]
pub struct BranchesResult {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    /// The graph: the input once, `blur -> invert` and `sobel -> threshold` from it, two outputs.
    pub graph_frames_per_s: f64,
    /// The two chains as two `plugin-host`-like processes started together, each with its own
    /// input; frames of one input over the time both take.
    pub separate_frames_per_s: f64,
    pub ratio: f64,
    pub graph_copies: u64,
    /// What the input is: an H.264 file (made with ffmpeg, when it is installed), or the test
    /// pattern.
    pub input: String,
}

pub(crate) const ROUNDS: usize = 3;

struct Silent;
impl Progress for Silent {
    fn start(&mut self, _: Option<u64>) {}
    fn frame_done(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// Runs `config` to its end in this process, silently (the hidden `--run-config`, which the
/// separate-process side of [`branches`] starts this binary with).
pub(crate) fn run_config(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, result) = Prepared::new(&config, RunOptions::default())?.run(&mut Silent);
    Ok(result?)
}

pub(crate) fn branches(plugins: &Path, options: &BenchOptions) -> anyhow::Result<BranchesResult> {
    let (width, height) = (1280, 720);
    let frames = if options.quick { 60 } else { 300 };
    let plugin = |name: &str| -> anyhow::Result<String> {
        let path = plugins.join(format!("{name}.wasm"));
        ensure!(path.is_file(), "{} is missing (build the plugins first: `cargo xtask build`)", path.display());
        Ok(std::fs::canonicalize(&path)?.display().to_string())
    };
    let dir = std::env::temp_dir().join(format!("plugin-host-bench-branches-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // A video file, when ffmpeg can make one: decoding it is work the graph does once and the
    // separate chains twice.
    let clip = dir.join("clip.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate=30:duration={}", frames / 30))
        .args(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .is_ok_and(|s| s.success());
    let (input, what) = match made {
        true => (
            format!("[[input]]\nname = \"main\"\nkind = \"video\"\npath = \"{}\"\n", clip.display()),
            format!("a {width}x{height} H.264 file of {frames} frames"),
        ),
        false => (
            format!(
                "[[input]]\nname = \"main\"\nkind = \"testsrc\"\nwidth = {width}\nheight = {height}\nframes = {frames}\n"
            ),
            format!("the test pattern, {frames} frames of {width}x{height} (no ffmpeg to make a video file)"),
        ),
    };
    let branch = |first: &str, second: &str, params: &str, from: &str| -> anyhow::Result<String> {
        Ok(format!(
            "[[plugin]]\nname = \"{first}\"\npath = \"{}\"\ninputs = [\"{from}\"]\n{params}\
             [[plugin]]\nname = \"{second}\"\npath = \"{}\"\ninputs = [\"{first}\"]\n\
             [[output]]\nfrom = \"{second}\"\nkind = \"null\"\n",
            plugin(first)?,
            plugin(second)?
        ))
    };
    let a = branch("blur", "invert", "[plugin.params]\nradius = 2\n", "main")?;
    let b = branch("sobel", "threshold", "", "main")?;
    let write = |name: &str, text: String| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let graph = write("graph.toml", format!("{input}{a}{b}"))?;
    let chains = [write("a.toml", format!("{input}{a}"))?, write("b.toml", format!("{input}{b}"))?];
    let me = std::env::current_exe()?;
    let (mut in_graph, mut apart) = (Vec::new(), Vec::new());
    let mut graph_copies = 0;
    for _ in 0..ROUNDS {
        let config = Config::load(&graph).map_err(|e| anyhow::anyhow!("{e}"))?;
        let prepared = Prepared::new(&config, RunOptions { runner: options.runner.clone(), ..RunOptions::default() })?;
        let started = Instant::now();
        let (stats, result) = prepared.run(&mut Silent);
        result?;
        in_graph.push(started.elapsed().as_secs_f64());
        graph_copies = stats.copies;
        let started = Instant::now();
        let children: Vec<std::process::Child> = chains
            .iter()
            .map(|path| std::process::Command::new(&me).arg("--run-config").arg(path).spawn())
            .collect::<Result<_, _>>()?;
        for mut child in children {
            ensure!(child.wait()?.success(), "a chain run as its own process failed");
        }
        apart.push(started.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let graph_frames_per_s = frames as f64 / median(in_graph);
    let separate_frames_per_s = frames as f64 / median(apart);
    Ok(BranchesResult {
        width,
        height,
        frames,
        graph_frames_per_s,
        separate_frames_per_s,
        ratio: graph_frames_per_s / separate_frames_per_s,
        graph_copies,
        input: what,
    })
}
