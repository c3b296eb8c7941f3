//! `plugin-host sandbox`: each layer a plugin process gets on this machine, found by starting a
//! runner and reading its report.

use plugin_host::probe::{ProbeError, probe};
use plugin_host::sys::sandbox::{Level, Policy, Report, seccomp};
use std::io::Write;

/// Prints the report of a probe runner at the standard level; with `syscalls`, the allowlist.
pub fn print(syscalls: bool, out: &mut impl Write) -> Result<std::process::ExitCode, ProbeError> {
    let runner = plugin_host::process::default_runner().map_err(ProbeError::Spawn)?;
    // What a plugin with the default limits gets.
    let limits = plugin_host::process::Limits::default();
    let report = probe(&runner, &Policy::for_plugin(Level::Standard, limits.memory_bytes, 0, 0, false))?;
    write_report(&report, syscalls, out).map_err(ProbeError::Output)?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn write_report(report: &Report, syscalls: bool, out: &mut impl Write) -> std::io::Result<()> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let kernel = kernel.trim();
    writeln!(out, "OS sandbox of a plugin process on this machine (Linux {kernel}, sandbox = \"standard\"):")?;
    write!(out, "{}", report.table())?;
    match report.strict_refusal() {
        None => writeln!(out, "sandbox = \"strict\": available (every layer is on)")?,
        Some(refusal) => writeln!(out, "sandbox = \"strict\": not available here: {refusal}")?,
    }
    let soft: Vec<String> = seccomp::soft_failures().iter().map(|(name, how)| format!("{name} ({how})")).collect();
    writeln!(out, "seccomp: calls that fail softly instead of killing: {}", soft.join(", "))?;
    if syscalls {
        writeln!(out, "allowed system calls:")?;
        let width = seccomp::RULES.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for syscall in seccomp::RULES {
            writeln!(out, "  {:<width$}  {}", syscall.name, syscall.why)?;
        }
    }
    Ok(())
}
