//! The report as a table for the terminal.

use super::*;

/// A duration given in µs, in a readable unit.
pub(crate) fn time(us: f64) -> String {
    if us.is_nan() {
        "-".into()
    } else if us.abs() < 10.0 {
        format!("{us:.2} µs")
    } else if us.abs() < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

pub(crate) fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// Splits `text` into lines of at most `width` characters, at spaces.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Pads `text` to `width` characters (µs and → count as one).
pub(crate) fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// The human-readable report.
pub fn print_table(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let b = &report.baselines;
    writeln!(
        out,
        "plugin-host-bench: {} cores, up to {} samples per measurement{}, warm-up discarded; p50 = median",
        report.cores,
        report.iterations,
        if report.quick { " (quick)" } else { "" }
    )?;
    if let (Some(other), Some(steal)) = (report.other_cpu_percent, report.steal_percent) {
        write!(out, "During the run other processes used {other:.0}% of all CPU time (hypervisor steal {steal:.0}%)")?;
        if other >= 5.0 {
            write!(out, ": a busy machine, so expect slower, noisier figures (spinning hand-offs need a free core)")?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    writeln!(out, "Raw baselines (same process, two threads; {} round trips each):", b.pipe_round_trip.samples)?;
    for (what, l) in [
        ("pipe round trip, 1 byte", &b.pipe_round_trip),
        ("futex round trip, wait/wake (no spin)", &b.futex_round_trip),
        ("futex hand-off algorithm (spin, then futex)", &b.handoff_round_trip),
    ] {
        writeln!(out, "  {what:<46} p50 {:>10}   p99 {:>10}", time(l.p50_us), time(l.p99_us))?;
    }
    for m in &b.memcpy {
        writeln!(
            out,
            "  {:<46} p50 {:>10}   p99 {:>10}   {:>6.1} GB/s",
            format!("memcpy {}", size_label(m.frame_bytes)),
            time(m.p50_us),
            time(m.p99_us),
            m.gb_per_s
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Frame round trip through the identity plugin (no work), per transport. shm = the lane API,")?;
    writeln!(out, "nothing copied; shm+copies = submit(&Frame) + receive(&mut OwnedFrame), a copy each way:")?;
    writeln!(
        out,
        "  {:<10} {:>9} | {:>10} {:>10} | {:>10} | {:>10} {:>10} | {:>9}",
        "frame", "bytes", "shm p50", "shm p99", "shm+copies", "pipe p50", "pipe p99", "pipe/shm"
    )?;
    for r in &report.sizes {
        writeln!(
            out,
            "  {:<10} {:>9} | {:>10} {:>10} | {:>10} | {:>10} {:>10} | {:>8.0}x",
            label(r),
            size_label(r.frame_bytes),
            time(r.shm.handoff.p50_us),
            time(r.shm.handoff.p99_us),
            time(r.shm.round_trip.p50_us),
            time(r.pipe.round_trip.p50_us),
            time(r.pipe.round_trip.p99_us),
            r.pipe.round_trip.p50_us / r.shm.handoff.p50_us
        )?;
    }
    writeln!(out)?;
    writeln!(out, "shm taken apart (identity; p50 unless said). The plugin side copies nothing; the public API")?;
    writeln!(out, "copies on the host side: submit(&Frame) into the slot, receive(&mut OwnedFrame) out of it.")?;
    writeln!(out, "  submit(), receive() = the two halves of the API round trip, timed around the same calls")?;
    writeln!(out, "  copy-in, copy-out   = those two copies alone, right after each round trip, with the functions")?;
    writeln!(out, "                        submit/receive use (Region::write_pixels/read_pixels), same-sized region")?;
    writeln!(out, "  trip - copies       = round trip minus those copies, per sample (noisy at large sizes)")?;
    writeln!(out, "  hand-off            = measured directly: frame already in the slot, handed to the plugin and")?;
    writeln!(out, "                        back, nothing copied (as a stage of a zero-copy chain sees it)")?;
    writeln!(
        out,
        "  {:<10} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>12} | {:>10} {:>10}",
        "frame", "submit()", "receive()", "copy-in", "copy-out", "round trip", "trip-copies", "hand-off", "p99"
    )?;
    for r in &report.sizes {
        writeln!(
            out,
            "  {:<10} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>12} | {:>10} {:>10}",
            label(r),
            time(r.shm.submit.p50_us),
            time(r.shm.receive.p50_us),
            time(r.shm.copy_in.p50_us),
            time(r.shm.copy_out.p50_us),
            time(r.shm.round_trip.p50_us),
            time(r.shm.round_trip_minus_copies.p50_us),
            time(r.shm.handoff.p50_us),
            time(r.shm.handoff.p99_us)
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Plugin work: invert frames/s (every slot in flight) vs the same loop native, in this process;")?;
    writeln!(
        out,
        "\"in place\" = frame already in the slots, nothing copied; \"trip\" = one frame at a time via the API:"
    )?;
    writeln!(
        out,
        "  {:<10} | {:>9} {:>10} {:>9} | {:>9} | {:>10} {:>10} | {:>7} {:>8} {:>8}",
        "frame",
        "shm fps",
        "shm trip",
        "in place",
        "pipe fps",
        "native fps",
        "native p50",
        "shm/nat",
        "place/nat",
        "pipe/nat"
    )?;
    for r in &report.sizes {
        let native = r.native_invert_frames_per_s;
        writeln!(
            out,
            "  {:<10} | {:>9.1} {:>10} {:>9.1} | {:>9.1} | {:>10.1} {:>10} | {:>7.3} {:>9.3} {:>8.3}",
            label(r),
            r.shm.invert_frames_per_s,
            time(r.shm.invert.p50_us),
            r.shm.invert_in_place_frames_per_s,
            r.pipe.invert_frames_per_s,
            native,
            time(r.native_invert.p50_us),
            r.shm.invert_frames_per_s / native,
            r.shm.invert_in_place_frames_per_s / native,
            r.pipe.invert_frames_per_s / native
        )?;
    }
    writeln!(out)?;
    let s = &report.startup;
    writeln!(out, "Start-up of {} ({} frame capacity, shm), spawn → ready:", s.plugin, size_label(s.frame_bytes))?;
    for (what, t) in [
        ("cold (empty cache folder, memory cleared)", &s.cold),
        ("from the disk cache (memory cleared)", &s.disk_cache),
        ("from the in-memory cache", &s.memory_cache),
        ("from the in-memory cache, 4 KiB slots", &s.memory_cache_4k_slots),
        ("restart after SIGKILL, standby (kill → ready)", &s.restart_after_sigkill),
        ("restart after SIGKILL, no standby", &s.restart_without_standby),
    ] {
        writeln!(
            out,
            "  {what:<42} p50 {:>7.1} ms   p99 {:>7.1} ms   ({} spawns: {} compiled, {} disk hits, {} memory hits)",
            t.p50_ms, t.p99_ms, t.spawns, t.compiled, t.disk_hits, t.memory_hits
        )?;
    }
    writeln!(out, "  (of the restart, kill → dead process reaped: p50 {:.2} ms)", s.kill_to_reaped_p50_ms)?;
    writeln!(out)?;
    let c = &report.chain;
    writeln!(
        out,
        "Pipeline at {}x{}, {} frames, test pattern → null, {} cores (ratios are against 1 worker, same run):",
        c.width, c.height, c.frames, c.cores
    )?;
    for r in c.workers.iter().chain([&c.four_stages]) {
        writeln!(
            out,
            "  {:<8} {} stage{} × {} worker{}  {:>7.1} frames/s  {:>5.2}x   page faults per frame: host {:.2}, plugins {:.2}",
            r.plugin,
            r.stages,
            if r.stages == 1 { " " } else { "s" },
            r.workers,
            if r.workers == 1 { " " } else { "s" },
            r.frames_per_s,
            r.ratio_to_one_worker,
            r.host_faults_per_frame,
            r.plugin_faults_per_frame
        )?;
    }
    writeln!(out, "  ({} frames copied between stages in the 4-stage run)", c.four_stages_copies)?;
    writeln!(out)?;
    writeln!(out, "Goals and ratios ({} cores):", report.cores)?;
    for r in &report.ratios {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        let goal = r.goal.as_deref().map(|g| format!("goal {g}")).unwrap_or_default();
        let value = if r.unit == "ms" { format!("{:.2} ms", r.value) } else { format!("{:.2}x", r.value) };
        writeln!(out, "  {value:>10}  {goal:<13} {verdict:<6}  {}", r.what)?;
    }
    writeln!(out)?;
    writeln!(out, "Shared memory vs message passing, measured on this machine:")?;
    let widths = [18, 50, 50];
    let rule = format!("  +{}+", widths.map(|w| "-".repeat(w + 2)).join("+"));
    writeln!(out, "{rule}")?;
    writeln!(
        out,
        "  | {} | {} | {} |",
        pad("", widths[0]),
        pad("Shared memory (shm)", widths[1]),
        pad("Message passing (pipe)", widths[2])
    )?;
    writeln!(out, "{rule}")?;
    for c in &report.comparison {
        let cells =
            [wrap(&c.aspect, widths[0]), wrap(&c.shared_memory, widths[1]), wrap(&c.message_passing, widths[2])];
        let lines = cells.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..lines {
            let cell = |k: usize| pad(cells[k].get(i).map_or("", String::as_str), widths[k]);
            writeln!(out, "  | {} | {} | {} |", cell(0), cell(1), cell(2))?;
        }
        writeln!(out, "{rule}")?;
    }
    writeln!(out)?;
    writeln!(out, "Notes:")?;
    for note in &report.notes {
        writeln!(out, "  - {note}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.50), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }

    #[test]
    fn native_invert_keeps_alpha() {
        let mut out = [0u8; 8];
        native_invert(&[0, 10, 200, 7, 255, 128, 1, 0], &mut out);
        assert_eq!(out, [255, 245, 55, 7, 0, 127, 254, 0]);
    }

    #[test]
    fn plans_stop_at_their_budget_after_the_minimum() {
        let plan = Plan { warm: 1, samples: 1000, min_samples: 3, budget: Duration::ZERO };
        let mut calls = 0;
        let done = plan.repeat(|_| {
            calls += 1;
            Ok(())
        });
        assert_eq!(done.unwrap(), 3);
        assert_eq!(calls, 4);
    }

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("", 5), [""]);
    }
}
