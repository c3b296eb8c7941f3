//! Start-up: cold, from the disk and memory caches, and restarts with and without standby.

use super::*;

pub(crate) struct CacheDelta(pub(crate) cache::CacheCounts);

impl CacheDelta {
    pub(crate) fn start() -> Self {
        Self(cache::counts())
    }

    pub(crate) fn finish(self, times_ms: Vec<f64>) -> SpawnTimes {
        let now = cache::counts();
        let mut times = times_ms;
        times.sort_by(f64::total_cmp);
        SpawnTimes {
            spawns: times.len(),
            p50_ms: percentile(&times, 0.50),
            p99_ms: percentile(&times, 0.99),
            compiled: now.compiled - self.0.compiled,
            disk_hits: now.disk_hits - self.0.disk_hits,
            memory_hits: now.memory_hits - self.0.memory_hits,
        }
    }
}

/// A temporary folder, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("plugin-host-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Start-up of `module` with a 1920x1080 RGBA frame capacity (shm): cold, from the disk cache,
/// from the in-memory cache, and restart after SIGKILL.
pub(crate) fn startup(options: &BenchOptions, module: &Path, spawns: usize) -> anyhow::Result<Startup> {
    let frame_bytes = 1920 * 1080 * 4;
    let temp = TempDir::new()?;
    let warm_dir = temp.0.join("warm");
    let spec_sized = |dir: &Path, frame_bytes: u64| {
        let mut spec = spec(options, "bench-startup", module, frame_bytes, Transport::SharedMemory);
        spec.cache_dir = Some(dir.to_path_buf());
        spec
    };
    let spec_in = |dir: &Path| spec_sized(dir, frame_bytes);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let time_spawn = |spec: PluginSpec| -> anyhow::Result<f64> {
        let start = Instant::now();
        let plugin = PluginProcess::spawn(spec)?;
        let took = start.elapsed();
        plugin.shutdown()?;
        Ok(ms(took))
    };

    // Cold: a fresh empty folder each time and nothing in memory. The first fills `warm_dir`.
    let delta = CacheDelta::start();
    let mut times = Vec::new();
    for i in 0..spawns {
        cache::clear_memory();
        let dir = if i == 0 { warm_dir.clone() } else { temp.0.join(format!("cold-{i}")) };
        times.push(time_spawn(spec_in(&dir))?);
    }
    let cold = delta.finish(times);

    let delta = CacheDelta::start();
    let mut times = Vec::new();
    for _ in 0..spawns {
        cache::clear_memory();
        times.push(time_spawn(spec_in(&warm_dir))?);
    }
    let disk_cache = delta.finish(times);

    let delta = CacheDelta::start();
    let mut times = Vec::new();
    for _ in 0..spawns {
        times.push(time_spawn(spec_in(&warm_dir))?);
    }
    let memory_cache = delta.finish(times);

    let delta = CacheDelta::start();
    let mut times = Vec::new();
    for _ in 0..spawns {
        times.push(time_spawn(spec_sized(&warm_dir, 4096))?);
    }
    let memory_cache_4k_slots = delta.finish(times);

    // Restart: SIGKILL the running plugin, then `restart()`: reap it (the caller's detection:
    // its pipe closes) and make a new process ready, reusing the region. With a standby, the new
    // process was started and loaded ahead; the pause between kills lets it get ready, as it
    // would between crashes in a real run.
    let restarts = |standby: bool| -> anyhow::Result<(SpawnTimes, Vec<f64>)> {
        let mut spec = spec_in(&warm_dir);
        spec.standby = standby;
        let mut running = PluginProcess::spawn(spec)?;
        let (mut times, mut reaped) = (Vec::new(), Vec::new());
        let delta = CacheDelta::start();
        for _ in 0..spawns {
            std::thread::sleep(Duration::from_millis(if standby { 200 } else { 20 }));
            let pid = running.pid().context("the plugin has no process")?;
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).context("pid out of range")?);
            let start = Instant::now();
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).context("kill -9")?;
            running.kill();
            reaped.push(ms(start.elapsed()));
            running.restart()?;
            times.push(ms(start.elapsed()));
        }
        running.shutdown()?;
        reaped.sort_by(f64::total_cmp);
        Ok((delta.finish(times), reaped))
    };
    let (restart_after_sigkill, reaped) = restarts(true)?;
    let (restart_without_standby, _) = restarts(false)?;

    Ok(Startup {
        plugin: module.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        frame_bytes,
        cold,
        disk_cache,
        memory_cache,
        memory_cache_4k_slots,
        restart_after_sigkill,
        restart_without_standby,
        kill_to_reaped_p50_ms: percentile(&reaped, 0.50),
    })
}
