//! A run watched while it runs: the metrics endpoint, and the host's memory over a long run.

use crate::support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

/// `GET /metrics` at `addr` (`127.0.0.1:PORT`): the body.
fn get_metrics(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"), "{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// The value of a sample line `name value` (no labels).
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

#[test]
fn metrics_count_live_and_the_hosts_memory_stays_flat_over_a_long_run() {
    let mut child = Command::new(host_bin())
        .args(["run", "-q", "-i", "testsrc:16x16:10000000", "-o", "null", "invert ! flip ! invert"])
        .args(["--metrics", "127.0.0.1:0"])
        .env("PLUGIN_HOST_PATH", root().join("target/plugins"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("metrics: http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the address first: {first}"))
        .to_string();
    std::thread::spawn(move || lines.for_each(drop));
    // Memory at two points of the run, counted in frames (not seconds): a per-frame leak of a
    // few bytes per stage (as the latency vectors once were) shows as hundreds of KiB here.
    let until = |frames: u64| loop {
        let text = get_metrics(&addr);
        if sample(&text, "plugin_host_output_frames_total") >= frames {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    until(5_000);
    let early = rss_kib(child.id());
    let text = until(60_000);
    let late = rss_kib(child.id());
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(late <= early + 512, "the host grew from {early} KiB to {late} KiB over 55,000 frames");

    assert!(sample(&text, "plugin_host_input_frames_total") >= 60_000);
    assert!(text.contains("plugin_host_plugin_frames_total{plugin=\"flip\"} "), "{text}");
    assert!(text.contains("plugin_host_plugin_latency_seconds_bucket{plugin=\"invert-2\",le=\"+Inf\"} "), "{text}");
    assert!(text.ends_with("# EOF\n"));
}
