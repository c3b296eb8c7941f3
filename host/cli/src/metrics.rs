//! Live metrics of a run (`plugin-host run --metrics ADDR`): OpenMetrics text at `/metrics`, so
//! that an existing Prometheus or Grafana can watch a long run. Per plugin: the frame and failure
//! counters and a latency histogram; for the run: frames in and out. With `--control ADDR` the
//! same server is the control API (docs/control.md): `GET /state`, and `POST /params`,
//! `/pause`, `/resume`, `/step` and `/keep-state`, which need the random token printed at start.
//! With `--preview` it also serves a page (its HTML and script are embedded: no file is read from
//! disk) showing any node's latest frame as a JPEG and controls built from every plugin's schema.
//! Served by [`crate::http`]: a small synchronous server with hard limits (no async runtime for
//! a handful of routes).

use crate::http::{Request, Response};
use crate::pipeline::{Live, LiveStats};
use std::fmt::Write;
use std::net::SocketAddr;

/// Reads one counter of a plugin's statistics.
type Counter = fn(&crate::pipeline::stats::PluginStats) -> u64;

/// Upper bounds of the latency histogram's buckets, in seconds (and `+Inf`).
const BUCKETS_S: [f64; 14] = [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Starts serving `live` at `addr` (`127.0.0.1:9100`; port 0 picks a free one) on a thread of
/// its own; returns the address it listens on.
/// Checks a module against a folder of golden cases before it is swapped in (`"check"` in
/// `POST /swap`): `(module, cases)`, the error says which case failed.
pub type SwapCheck = std::sync::Arc<dyn Fn(&std::path::Path, &std::path::Path) -> Result<(), String> + Send + Sync>;

pub fn serve(
    addr: &str,
    live: Live,
    token: Option<String>,
    preview: bool,
    check: SwapCheck,
) -> Result<SocketAddr, String> {
    let handler = move |request: &Request| -> Response {
        let json = |(status, body): (u16, String)| Response::new(status, "application/json", body);
        let get = request.method == "GET";
        if preview
            && get
            && let Some(response) = page(&request.path, &request.query, &live)
        {
            return response;
        }
        match (request.method.as_str(), request.path.as_str(), token.as_deref()) {
            ("POST", route, Some(token)) => json(match authorized(request, token) {
                false => answer(401, "error", "this needs the token printed at start: Authorization: Bearer TOKEN"),
                true => post(route, request, &live, &check),
            }),
            ("GET", "/state", Some(_)) => Response::new(200, "application/json", state(&live)),
            ("GET", "/metrics", _) => Response::new(
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                render(&live.snapshot()),
            ),
            _ => json(answer(404, "error", "no such route; see docs/control.md")),
        }
    };
    crate::http::serve(addr, "control", handler).map_err(|e| format!("{addr}: cannot listen there: {e}"))
}

/// The page's own files, embedded: nothing else is ever served from disk.
const PAGE: &str = include_str!("preview/page.html");
const SCRIPT: &str = include_str!("preview/preview.js");

/// The preview page's routes (`--preview`): the page, its script, and a node's last frame as a
/// JPEG (`/frame?node=NAME`); `None` for any other path.
fn page(path: &str, query: &str, live: &Live) -> Option<Response> {
    match path {
        "/" => Some(Response::new(200, "text/html; charset=utf-8", PAGE)),
        "/preview.js" => Some(Response::new(200, "text/javascript; charset=utf-8", SCRIPT)),
        "/frame" => {
            let node = query.split('&').find_map(|pair| pair.strip_prefix("node=")).unwrap_or_default();
            let frame = live.frame(&percent_decoded(node));
            Some(match frame.and_then(|f| jpeg(&f)) {
                Some(bytes) => Response::new(200, "image/jpeg", bytes),
                None => Response::new(404, "text/plain", "no frame of that node yet\n"),
            })
        }
        _ => None,
    }
}

/// `text` with `%XX` escapes (and `+`) decoded; bytes that do not make UTF-8 are replaced.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        let hex = bytes
            .get(k + 1..k + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[k], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                k += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                k += 1;
            }
            (byte, _) => {
                out.push(byte);
                k += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An RGBA frame as a JPEG (quality 80); `None` for a frame too large for the format.
fn jpeg(frame: &plugin_sdk::OwnedFrame) -> Option<Vec<u8>> {
    let (width, height) = (u16::try_from(frame.width).ok()?, u16::try_from(frame.height).ok()?);
    let packed = frame.view().packed().into_owned();
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 80);
    encoder.encode(&packed, width, height, jpeg_encoder::ColorType::Rgba).ok()?;
    Some(out)
}

/// A random token for the control API: 128 bits from the kernel, in hex.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A status and a one-line JSON answer `{key: text}`.
fn answer(status: u16, key: &str, text: &str) -> (u16, String) {
    (status, format!("{}\n", serde_json::json!({ key: text })))
}

/// Whether the request carries the token in an `Authorization: Bearer TOKEN` header.
fn authorized(request: &Request, token: &str) -> bool {
    let given = request.header("Authorization").unwrap_or_default();
    // Compared in full whatever the first difference: no timing clue to the token.
    let expected = format!("Bearer {token}");
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0, |d, (a, b)| d | (a ^ b)) == 0
}

/// `GET /state`: the run as the control API sees it, as JSON: paused or not, frames in and out,
/// and per plugin its description (parameter schema) and counters.
fn state(live: &Live) -> String {
    let stats = live.snapshot();
    let plugins: Vec<serde_json::Value> = live
        .plugins()
        .into_iter()
        .map(|(name, description, sandbox)| {
            let counters = stats.plugins.iter().find(|p| p.name == name);
            serde_json::json!({ "name": name, "description": description, "sandbox": sandbox, "stats": counters })
        })
        .collect();
    let state = serde_json::json!({
        "paused": live.is_paused(),
        "frames": live.frame_names(),
        "frames_in": stats.frames_in,
        "frames_out": stats.frames_out,
        "plugins": plugins,
    });
    format!("{state}\n")
}

/// A `POST` of the control API, the token already checked.
fn post(route: &str, request: &Request, live: &Live, check: &SwapCheck) -> (u16, String) {
    let paused = |live: &Live| (200, format!("{}\n", serde_json::json!({ "paused": live.is_paused() })));
    match route {
        "/params" => post_params(request, live),
        "/keep-state" => match read_json(request).map(|json| json["plugin"].as_str().map(str::to_string)) {
            Ok(Some(plugin)) => match live.keep_state(&plugin) {
                Ok(()) => answer(202, "applies", "before the plugin's next frame"),
                Err(message) => answer(400, "error", &message),
            },
            Ok(None) => answer(400, "error", "give {\"plugin\": NAME}"),
            Err(message) => answer(400, "error", &message),
        },
        "/swap" => match read_json(request) {
            Ok(json) => match (json["plugin"].as_str(), json["path"].as_str()) {
                (Some(plugin), Some(path)) => {
                    let path = std::path::Path::new(path);
                    let checked = match json["check"].as_str() {
                        Some(cases) => check(path, std::path::Path::new(cases)),
                        None => Ok(()),
                    };
                    match checked.and_then(|()| live.swap(plugin, path)) {
                        Ok(()) => answer(202, "applies", "once the module has loaded, at a frame boundary"),
                        Err(message) => answer(409, "error", &format!("not swapped: {message}")),
                    }
                }
                _ => answer(400, "error", "give {\"plugin\": NAME, \"path\": MODULE}"),
            },
            Err(message) => answer(400, "error", &message),
        },
        "/pause" => {
            live.pause();
            paused(live)
        }
        "/resume" => {
            live.resume();
            paused(live)
        }
        "/step" => {
            live.step();
            paused(live)
        }
        _ => answer(404, "error", "no such route; see docs/control.md"),
    }
}

/// The request's body as JSON (the server read it whole, at most 64 KiB).
fn read_json(request: &Request) -> Result<serde_json::Value, String> {
    serde_json::from_slice(&request.body).map_err(|_| "the body is not JSON".to_string())
}

/// `POST /params` with `{"plugin": NAME, "params": {KEY: VALUE, …}}`.
fn post_params(request: &Request, live: &Live) -> (u16, String) {
    let json = match read_json(request) {
        Ok(json) => json,
        Err(message) => {
            return answer(400, "error", &format!("{message}: {{\"plugin\": NAME, \"params\": {{KEY: VALUE}}}}"));
        }
    };
    let (Some(plugin), Some(params)) = (json["plugin"].as_str(), json["params"].as_object()) else {
        return answer(400, "error", "give {\"plugin\": NAME, \"params\": {KEY: VALUE}}");
    };
    let mut values = Vec::new();
    for (key, value) in params {
        use plugin_sdk::abi::ParamValue;
        let value = match value {
            serde_json::Value::Bool(b) => ParamValue::Bool(*b),
            serde_json::Value::String(s) => ParamValue::Str(s.clone()),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => ParamValue::Int(i),
                None => ParamValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            _ => return answer(400, "error", &format!("parameter \"{key}\" is not a number, boolean or string")),
        };
        values.push((key.clone(), value));
    }
    match live.set_params(plugin, values) {
        Ok(()) => answer(202, "applies", "from the next frame"),
        Err(message) => answer(400, "error", &message),
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The OpenMetrics text of a snapshot.
pub fn render(stats: &LiveStats) -> String {
    let mut out = String::new();
    for (name, help, value) in [
        ("input_frames", "Frames read from the input.", stats.frames_in),
        ("output_frames", "Frames written to the output.", stats.frames_out),
    ] {
        let _ = writeln!(out, "# TYPE plugin_host_{name} counter\n# HELP plugin_host_{name} {help}");
        let _ = writeln!(out, "plugin_host_{name}_total {value}");
    }
    let counters: [(&str, &str, Counter); 12] = [
        ("plugin_frames", "Frames the plugin processed.", |p| p.frames),
        ("plugin_errors", "Frames the plugin failed, for any reason.", |p| p.errors),
        ("plugin_traps", "Wasm traps.", |p| p.traps),
        ("plugin_deadline_misses", "Frames past the deadline.", |p| p.deadline_misses),
        ("plugin_crashes", "Plugin processes that died.", |p| p.crashes),
        ("plugin_restarts", "Plugin processes restarted.", |p| p.restarts),
        ("plugin_skipped_frames", "Frames dropped by on_error = skip.", |p| p.skipped),
        ("plugin_passed_through_frames", "Frames passed on unprocessed by on_error = passthrough.", |p| {
            p.passed_through
        }),
        ("plugin_copies", "Frame copies the host made for the plugin.", |p| p.copies),
        ("plugin_swaps", "Modules swapped in while running.", |p| p.swaps),
        ("plugin_swap_failures", "Swaps refused; the plugin went on as before.", |p| p.swap_failures),
        ("plugin_rollbacks", "Swapped-in modules swapped back after they kept crashing.", |p| p.rollbacks),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# TYPE plugin_host_{name} counter\n# HELP plugin_host_{name} {help}");
        for p in &stats.plugins {
            let _ = writeln!(out, "plugin_host_{name}_total{{plugin=\"{}\"}} {}", label(&p.name), value(p));
        }
    }
    let name = "plugin_latency_seconds";
    let _ = writeln!(out, "# TYPE plugin_host_{name} histogram\n# HELP plugin_host_{name} Time to process a frame.");
    for p in &stats.plugins {
        let plugin = label(&p.name);
        let histogram = &p.latency_us;
        for bound in BUCKETS_S {
            let count = histogram.count_up_to((bound * 1e6) as u64);
            let _ = writeln!(out, "plugin_host_{name}_bucket{{plugin=\"{plugin}\",le=\"{bound}\"}} {count}");
        }
        let total = histogram.len();
        let _ = writeln!(out, "plugin_host_{name}_bucket{{plugin=\"{plugin}\",le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "plugin_host_{name}_sum{{plugin=\"{plugin}\"}} {}", histogram.sum_us() as f64 / 1e6);
        let _ = writeln!(out, "plugin_host_{name}_count{{plugin=\"{plugin}\"}} {total}");
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stats::PluginStats;

    #[test]
    fn the_text_has_counters_cumulative_buckets_and_escaped_labels() {
        let mut plugin = PluginStats { frames: 7, skipped: 2, ..PluginStats::new("ne\"g") };
        for us in [50, 700, 700, 3_000, 9_000_000] {
            plugin.latency_us.record(us);
        }
        let text = render(&LiveStats { frames_in: 9, frames_out: 7, plugins: vec![plugin] });
        assert!(text.contains("plugin_host_input_frames_total 9\n"));
        assert!(text.contains("plugin_host_plugin_frames_total{plugin=\"ne\\\"g\"} 7\n"), "{text}");
        assert!(text.contains("plugin_host_plugin_skipped_frames_total{plugin=\"ne\\\"g\"} 2\n"));
        let buckets: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("plugin_host_plugin_latency_seconds_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(buckets.len(), BUCKETS_S.len() + 1);
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative: {buckets:?}");
        assert_eq!((buckets[0], buckets[2], buckets[4], buckets[14]), (1, 3, 4, 5));
        assert!(text.ends_with("# EOF\n"));
    }
}
